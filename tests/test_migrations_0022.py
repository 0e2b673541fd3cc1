"""Migration 0022 on a database that holds places: every place kept, each given its shift's times,
the triggers that keep them working, and the downgrade gives back the places as they were. Both
dialects (PostgreSQL's triggers and SQLite's are not the same SQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from core.config import normalise_database_url
from core.extensions import db
from tests.test_migrations import _flask, factories_on, new_database  # noqa: F401 - the fixture, shared

#: Shifts with starts and ends at odd instants (microseconds, a month edge, a long night), by index.
SHIFT_TIMES = [
    (datetime(2025, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(2026, 1, 1, 2, 0, tzinfo=UTC)),
    (datetime(2026, 9, 30, 16, 0, tzinfo=UTC), datetime(2026, 10, 1, 4, 30, 0, 250000, tzinfo=UTC)),
    (datetime(2027, 6, 1, 11, 0, tzinfo=UTC), datetime(2027, 6, 1, 13, 0, tzinfo=UTC)),
]
#: (shift index, volunteer index, status) of each place: live and ended, several per shift.
PLACES = [
    (0, 0, "assigned"), (0, 1, "absent"), (0, 2, "withdrawn"), (1, 0, "assigned"), (1, 1, "cancelled"),
    (2, 0, "invited"), (2, 1, "waitlisted"), (2, 2, "assigned"),
]
PLACE_ROWS = (
    "SELECT id, shift_id, volunteer_id, status, role, source, queue_seq, late_withdrawal, created_by, created_at, "
    "updated_at, ended_at, ended_by, end_reason FROM shift_assignments ORDER BY id"
)
COPIES = (
    "SELECT a.id, a.shift_starts_at, a.shift_ends_at, s.starts_at, s.ends_at FROM shift_assignments a "
    "JOIN shifts s ON s.id = a.shift_id ORDER BY a.id"
)
INSERT_PLACE = (
    "INSERT INTO shift_assignments (shift_id, volunteer_id, status, role, source, queue_seq, late_withdrawal, "
    "created_at, updated_at) VALUES (:shift, :volunteer, :status, 'primary', 'organiser', 1, :late, "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


def _shifts_at(url: str, app: Flask) -> tuple[list[int], list[int]]:
    """Shifts at SHIFT_TIMES and three volunteers, made through the factories and committed; their ids."""
    from tests import factories

    with factories_on(url, app):
        grid = factories.make_branch()[-1]
        shifts = []
        for starts_at, ends_at in SHIFT_TIMES:
            shift = factories.make_shift(grid)
            shift.starts_at, shift.ends_at = starts_at, ends_at
            shifts.append(shift)
        volunteers = [factories.make_volunteer(grid) for _ in range(3)]
        db.session.flush()
        return [shift.id for shift in shifts], [volunteer.id for volunteer in volunteers]


def _utc(value: datetime | str | None) -> datetime | None:
    """A timestamp as either dialect reads it back in plain SQL (SQLite: text), in UTC."""
    if value is None or isinstance(value, datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _copies(connection: sa.Connection) -> list[tuple[int, datetime | None, datetime | None, datetime, datetime]]:
    return [(row.id, *(_utc(value) for value in row[1:])) for row in connection.execute(sa.text(COPIES))]


def _triggers(connection: sa.Connection) -> set[str]:
    if connection.dialect.name == "postgresql":
        sql = "SELECT tgname || ' ON ' || CAST(tgrelid AS regclass) FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'shift_times%'"
    else:
        sql = "SELECT name || ' ON ' || tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'shift_times%'"
    return set(connection.execute(sa.text(sql)).scalars())


def test_0022_gives_every_place_its_shifts_times_keeps_them_after_and_its_downgrade_brings_the_places_back(
    app: Flask, new_database: Callable[[], str], tmp_path: Path
) -> None:
    url = new_database()
    assert _flask(["db", "upgrade", "0021"], url, tmp_path).returncode == 0
    shift_ids, volunteer_ids = _shifts_at(url, app)
    engine = sa.create_engine(normalise_database_url(url))
    try:
        with engine.begin() as connection:
            for shift, volunteer, status in PLACES:
                connection.execute(sa.text(INSERT_PLACE), {
                    "shift": shift_ids[shift], "volunteer": volunteer_ids[volunteer], "status": status,
                    "late": status == "withdrawn",
                })
            before = connection.execute(sa.text(PLACE_ROWS)).all()
        assert len(before) == len(PLACES)

        result = _flask(["db", "upgrade", "0022"], url, tmp_path)
        assert result.returncode == 0, result.stderr
        with engine.begin() as connection:
            assert connection.execute(sa.text(PLACE_ROWS)).all() == before
            copies = _copies(connection)
            expected = [
                (row.id, *SHIFT_TIMES[shift], *SHIFT_TIMES[shift]) for row, (shift, _, _) in zip(before, PLACES, strict=True)
            ]
            assert copies == expected
            dialect = connection.dialect.name
            assert _triggers(connection) == (
                {"shift_times ON shift_assignments", "shift_times ON shifts", "shift_times_lock ON shifts"} if dialect == "postgresql"
                else {"shift_times_insert ON shift_assignments", "shift_times_update ON shift_assignments",
                      "shift_times_follow ON shifts"}
            )
            # The triggers the migration made keep the copies: a new place, a moved shift.
            connection.execute(sa.text(INSERT_PLACE), {
                "shift": shift_ids[2], "volunteer": volunteer_ids[1], "status": "withdrawn", "late": False,
            })
            new_end = SHIFT_TIMES[1][1] + timedelta(hours=1, microseconds=1)
            connection.execute(
                sa.text("UPDATE shifts SET ends_at = :ends WHERE id = :id"),
                {"ends": new_end if dialect == "postgresql" else new_end.strftime("%Y-%m-%d %H:%M:%S.%f"), "id": shift_ids[1]},
            )
            after = _copies(connection)
        assert after[-1][1:3] == SHIFT_TIMES[2]
        assert [row[1:3] for row in after if row[0] in {before[3].id, before[4].id}] == [(SHIFT_TIMES[1][0], new_end)] * 2
        assert all(row[1:3] == row[3:5] for row in after)

        down = _flask(["db", "downgrade", "0021"], url, tmp_path)
        assert down.returncode == 0, down.stderr
        with engine.connect() as connection:
            rows = connection.execute(sa.text(PLACE_ROWS)).all()
            triggers = _triggers(connection)
        assert rows[:-1] == before and len(rows) == len(before) + 1
        assert triggers == set()
        inspector = sa.inspect(engine)
        assert {"shift_starts_at", "shift_ends_at"}.isdisjoint(c["name"] for c in inspector.get_columns("shift_assignments"))
        assert {"ix_shift_assignments_volunteer_shift_ends_at", "ix_shift_assignments_volunteer_shift_starts_at"}.isdisjoint(
            ix["name"] for ix in inspector.get_indexes("shift_assignments")
        )
    finally:
        engine.dispose()
