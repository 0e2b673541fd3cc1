"""Helpers the benchmark seeds share: bulk rows for the area tree, and the end of a seed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa


def add_area(
    rows: list[dict[str, Any]], now: Any, level: str, parent: dict[str, Any] | None, code: str, name: str,
    **extra: Any,
) -> dict[str, Any]:
    """Append an ``areas`` row (id, path and depth from its place in ``rows`` and its parent) for a
    bulk insert, and return it; ``extra`` sets other columns (boundary, grid_kind, …)."""
    area_id = len(rows) + 1
    row = {
        "id": area_id, "parent_id": parent["id"] if parent else None, "level": level, "code": code,
        "name": name, "timezone": "Asia/Shanghai", "path": (parent["path"] if parent else "/") + f"{area_id}/",
        "depth": parent["depth"] + 1 if parent else 0, "grid_kind": None, "households": None,
        "boundary": None, "min_lon": None, "min_lat": None, "max_lon": None, "max_lat": None,
        "created_at": now, "updated_at": now, "version": 1,
        **extra,
    }
    rows.append(row)
    return row

def commit_and_analyse() -> None:
    """Commit what a seed wrote, refresh the planner's statistics, and close the connections, so
    the server under test starts from a database as a long-running one would be."""
    from core.extensions import db

    db.session.commit()
    db.session.connection().execute(sa.text("ANALYZE"))
    db.session.commit()
    db.session.remove()
    db.engine.dispose()


def drop_secondary(connection: sa.Connection, tables: tuple[str, ...]) -> list[str]:
    """Drop ``tables``' foreign keys, unique constraints and indexes (not the primary keys); returns
    the statements that put them back. Building an index once over millions of rows is minutes
    faster than maintaining it row by row, and so is one join instead of a lookup per row."""
    restore: list[str] = []
    for table in tables:
        constraints = connection.execute(sa.text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:table AS regclass) AND contype IN ('f', 'u')"
        ), {"table": table}).all()
        indexes = connection.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = CAST(:table AS regclass))"
        ), {"table": table}).all()
        for name, definition in constraints:
            connection.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            connection.execute(sa.text(f'DROP INDEX "{name}"'))
            # A partitioned table's index reads back as "ON ONLY": made so, it would stay invalid
            # with no index on any partition. Made on the table, it is made on every partition.
            restore.append(definition.replace(" ON ONLY ", " ON ", 1))
    return restore
