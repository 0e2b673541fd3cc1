"""Monthly range partitions on PostgreSQL for the tables that grow without bound (SQLite: plain tables).

A model opts in with :func:`by_month` in its ``__table_args__`` (and, since PostgreSQL wants every
unique key of a partitioned table to hold the partition key, a primary key from
:func:`primary_key_with`). On PostgreSQL the table is then ``PARTITION BY RANGE (column)`` with

- one partition per calendar month **in UTC** (``<table>_pYYYY_MM``, bounds written with their
  offset, so no session time zone shifts them), made ahead by :func:`ensure_months`, which the
  periodic task ``core.maintain_partitions`` runs for the months from now to
  ``PARTITION_MONTHS_AHEAD`` ahead;
- one ``DEFAULT`` partition (``<table>_default``), made with the table: a row whose month has no
  partition (a clock far off, a task that has not run) is stored there rather than refused. It should
  stay empty; when a month's partition is made later, its rows move out of it.

Dropping a month is the owner's decision (its retention rule says when every row of a month is
due: ``patrols/privacy/retention.py`` for track points, ``notifications/retention.py`` for
notifications); this module lists the partitions and drops the months before a horizon
(:func:`drop_months_before`), asking the owner about each. DDL here takes its locks with ``lock_timeout`` (:data:`LOCK_TIMEOUT`): rather than queue
behind a long query while every request on the table queues behind it, it fails, and the next
run tries again. Making a partition takes SHARE UPDATE EXCLUSIVE on the table (readers and
writers go on), ACCESS EXCLUSIVE on the default partition (empty, so held for a moment) and a
share lock on the referenced tables while the foreign key is added; dropping one takes ACCESS
EXCLUSIVE on the table for a moment (``DETACH ... CONCURRENTLY`` is not allowed beside a default
partition).
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler

from core.extensions import db
from core.locks import LockSpace, lock
from core.transactions import commit_batch

log = logging.getLogger(__name__)

#: ``Table.info`` key naming the column a table is partitioned on by month.
MONTHLY = "partitioned_by_month"
#: ``PrimaryKeyConstraint.info`` key: the partition key PostgreSQL adds to the primary key.
PARTITION_KEY_IN_PRIMARY_KEY = "with_partition_key"
#: How long partition DDL waits for a lock before giving up until the next run.
LOCK_TIMEOUT = "2s"

_MONTH_SUFFIX = re.compile(r"_p(\d{4})_(\d{2})$")
_BOUNDS = r"FROM \('([^']*)'\) TO \('([^']*)'\)"


# --- declaring a partitioned table -----------------------------------------------------------------


def by_month(column: str) -> dict[str, Any]:
    """``__table_args__`` keywords: range-partitioned by the month of ``column`` on PostgreSQL."""
    return {"postgresql_partition_by": f"RANGE ({column})", "info": {MONTHLY: column}}


def primary_key_with(partition_column: str, *columns: str, name: str) -> sa.PrimaryKeyConstraint:
    """The primary key ``columns``, made (``columns``, ``partition_column``) on PostgreSQL, where a
    partitioned table's unique keys must hold the partition key. SQLite's table is not partitioned
    and keeps ``columns`` (a single INTEGER key autoincrements there); so does the ORM's identity."""
    return sa.PrimaryKeyConstraint(*columns, name=name, info={PARTITION_KEY_IN_PRIMARY_KEY: partition_column})


@compiles(sa.PrimaryKeyConstraint, "postgresql")
def _primary_key_with_partition_key(constraint: sa.PrimaryKeyConstraint, compiler: DDLCompiler, **kw: Any) -> str:
    extra = constraint.info.get(PARTITION_KEY_IN_PRIMARY_KEY)
    if not extra:
        return compiler.visit_primary_key_constraint(constraint, **kw)
    text = ""
    if constraint.name is not None:
        text = f"CONSTRAINT {compiler.preparer.format_constraint(constraint)} "
    names = [column.name for column in constraint.columns] + [extra]
    return text + "PRIMARY KEY (" + ", ".join(compiler.preparer.quote(name) for name in names) + ")"


def partition_column(table: sa.Table) -> str | None:
    column: str | None = table.info.get(MONTHLY)
    return column


def partitioned_tables() -> list[sa.Table]:
    """Every model table partitioned by month, in name order."""
    return sorted((t for t in db.metadata.tables.values() if partition_column(t)), key=lambda t: t.name)


@sa.event.listens_for(sa.Table, "after_create")
def _default_partition_with_the_table(table: sa.Table, connection: sa.Connection, **_: Any) -> None:
    # create_all (benchmarks, tests of the models) makes a usable table: rows go to the default
    # partition until the task makes the months'. Migrations make theirs themselves.
    if connection.dialect.name == "postgresql" and partition_column(table):
        connection.execute(sa.text(create_default_partition_sql(table.name)))


# --- names and bounds ------------------------------------------------------------------------------


def month_start(moment: datetime) -> date:
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_from(first: date, count: int) -> list[date]:
    """``count`` months from the month of ``first`` on."""
    months = [date(first.year, first.month, 1)]
    while len(months) < count:
        months.append(next_month(months[-1]))
    return months[:count]


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The first instant of ``month`` and of the next, in UTC."""
    after = next_month(month)
    return datetime(month.year, month.month, 1, tzinfo=UTC), datetime(after.year, after.month, 1, tzinfo=UTC)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month.year:04d}_{month.month:02d}"


def default_partition_name(table: str) -> str:
    return f"{table}_default"


def is_partition_name(name: str) -> bool:
    """Whether ``name`` is a partition of a model's partitioned table (Alembic compares parents only)."""
    for table in partitioned_tables():
        if name == default_partition_name(table.name):
            return True
        if name.startswith(table.name) and _MONTH_SUFFIX.fullmatch(name[len(table.name):]):
            return True
    return False


def include_in_autogenerate(name: str | None, type_: str, _parent_names: Any) -> bool:
    """Alembic's ``include_name``: leave partitions out of autogenerate and its comparisons."""
    return not (type_ == "table" and name is not None and is_partition_name(name))


def _literal(moment: datetime) -> str:
    # With its offset, so the session's TimeZone does not move the bound.
    return "'" + moment.astimezone(UTC).isoformat(sep=" ") + "'"


def create_default_partition_sql(table: str) -> str:
    return f'CREATE TABLE IF NOT EXISTS "{default_partition_name(table)}" PARTITION OF "{table}" DEFAULT'


# --- what is there ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None: the default partition
    upper: datetime | None


def partitions(table: str) -> list[Partition]:
    """The table's partitions as the catalog has them, months in order, the default last."""
    rows = db.session.execute(
        sa.text(
            "SELECT c.relname, CAST(b.m[1] AS timestamptz), CAST(b.m[2] AS timestamptz) "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid), :bounds) AS m) b "
            "WHERE i.inhparent = CAST(:table AS regclass)"
        ),
        {"table": table, "bounds": _BOUNDS},
    ).all()
    found = [Partition(name, lower, upper) for name, lower, upper in rows]
    return sorted(found, key=lambda p: (p.lower is None, p.lower or datetime.min.replace(tzinfo=UTC)))


def monthly_partitions(table: str) -> Iterator[Partition]:
    return (partition for partition in partitions(table) if partition.lower is not None)


# --- making and dropping ---------------------------------------------------------------------------


def _on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _table_key(table: str) -> int:
    return zlib.crc32(table.encode()) & 0x7FFFFFFF


def ensure_months(table: sa.Table, months: Iterable[date]) -> list[str]:
    """Make the partitions of ``months`` that ``table`` lacks (and its default partition); the names
    made. Idempotent, and safe two at once: one maker per table at a time (an advisory lock), each
    looking at the catalog only once it holds the lock. Rows of such a month already kept in the
    default partition move into the new one. Flushes only; the caller commits. Nothing on SQLite."""
    if not _on_postgresql() or not (column := partition_column(table)):
        return []
    lock(LockSpace.PARTITION_MAINTENANCE, [_table_key(table.name)])
    db.session.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    have = {partition.name for partition in partitions(table.name)}
    if default_partition_name(table.name) not in have:  # made with the table; made here if lost
        db.session.execute(sa.text(create_default_partition_sql(table.name)))
    made = []
    for month in sorted(set(months)):
        name = partition_name(table.name, month)
        if name in have:
            continue
        _attach_month(table.name, column, month)
        made.append(name)
        have.add(name)
    return made


def _attach_month(table: str, column: str, month: date) -> None:
    """The month's partition as a table of its own, the month's rows moved into it from the default
    partition, then attached: ATTACH takes only SHARE UPDATE EXCLUSIVE on the parent where
    ``CREATE TABLE ... PARTITION OF`` would take ACCESS EXCLUSIVE."""
    lower, upper = month_bounds(month)
    name, default = partition_name(table, month), default_partition_name(table)
    within = f'"{column}" >= {_literal(lower)} AND "{column}" < {_literal(upper)}'
    db.session.execute(sa.text(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'))
    db.session.execute(
        sa.text(
            f'WITH moved AS (DELETE FROM "{default}" WHERE {within} RETURNING *) '
            f'INSERT INTO "{name}" SELECT * FROM moved'
        )
    )
    db.session.execute(
        sa.text(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" FOR VALUES FROM ({_literal(lower)}) TO ({_literal(upper)})')
    )


def ensure_ahead(now: datetime, months_ahead: int) -> dict[str, list[str]]:
    """Every partitioned table's partitions from the month of ``now`` to ``months_ahead`` after it;
    the names made, per table."""
    months = months_from(month_start(now), months_ahead + 1)
    return {table.name: ensure_months(table, months) for table in partitioned_tables()}


def drop_partition(table: str, partition: Partition) -> None:
    """Drop one month's partition with every row in it; flushes only. The caller has decided that
    each of its rows is due (and holds the partition locked against writers meanwhile)."""
    if partition.lower is None or partition.name not in {p.name for p in partitions(table)}:
        raise ValueError(f"{partition.name} is not a month's partition of {table}")
    db.session.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    db.session.execute(sa.text(f'DROP TABLE "{partition.name}"'))


def is_lock_timeout(error: sa.exc.DBAPIError) -> bool:
    """Whether ``error`` is PostgreSQL giving up on a lock after ``lock_timeout`` (55P03)."""
    return getattr(error.orig, "sqlstate", None) == "55P03"


def lock_against_writers(partition: Partition) -> None:
    """Hold ``partition`` in SHARE mode (reads go on, writes wait) until the transaction ends."""
    db.session.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    db.session.execute(sa.text(f'LOCK TABLE "{partition.name}" IN SHARE MODE'))


def drop_months_before(
    table: str,
    horizon: datetime,
    *,
    keeps: Callable[[Partition], bool] | None = None,
    before_drop: Callable[[Partition], None] | None = None,
) -> list[str]:
    """PostgreSQL: drop each month of ``table`` that ends at or before ``horizon``; their names.

    One transaction per month, committed: the month is first held against writers, then
    ``keeps(month)`` may still keep it (a row in it not due after all), and ``before_drop(month)``
    removes what hangs on its rows elsewhere (tables without a foreign key into it). A month whose
    lock is not had within :data:`LOCK_TIMEOUT` (a long read of the table) waits for the next run;
    the rest goes on. The default partition is never dropped. Nothing on SQLite."""
    if not _on_postgresql():
        return []
    dropped = []
    for partition in monthly_partitions(table):
        if partition.upper is None or partition.upper > horizon:
            break  # months in order: the later ones end later still
        try:
            with db.session.begin_nested():  # a lock not had in time is let go with its savepoint
                lock_against_writers(partition)
                if keeps is None or not keeps(partition):
                    if before_drop is not None:
                        before_drop(partition)
                    drop_partition(table, partition)
                    dropped.append(partition.name)
        except sa.exc.OperationalError as error:
            if not is_lock_timeout(error):
                raise
            log.warning("partition %s busy; its drop waits for the next run", partition.name)
        commit_batch()
    return dropped
