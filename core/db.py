"""Declarative base, naming convention and column types shared by every model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Ids of the tables that grow without bound (ledger entries, notifications, track points): 64-bit on
#: PostgreSQL; SQLite's INTEGER PRIMARY KEY is already 64-bit and only autoincrements as INTEGER.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no offset, so values are normalised to UTC on the way in and tagged UTC on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def render_migration_item(type_: str, obj: Any, _context: Any) -> str | bool:
    """Alembic autogenerate: write our column types as plain SQLAlchemy, so migrations stay frozen."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure_sqlite(engine: sa.Engine) -> None:
    """Make SQLite behave for a transactional web app.

    pysqlite's own transaction handling breaks SAVEPOINT and defers locks; we emit BEGIN IMMEDIATE
    ourselves so a writer takes the lock up front (no lock-upgrade deadlocks between concurrent
    requests), enforce foreign keys, and use WAL so readers do not block the writer.
    """

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        if engine.url.database and engine.url.database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:
        # Every model maps one Table (DeclarativeBase says FromClause, which may also be a join or
        # a select): insert_on_conflict, dialect_insert and table.c[...] need the Table.
        __table__: ClassVar[sa.Table]


def rowcount(result: sa.Result[Any]) -> int:
    """How many rows the UPDATE, DELETE or INSERT … SELECT that gave ``result`` matched.

    ``Session.execute`` is typed to return a plain ``Result``, which has no count: only the
    ``CursorResult`` of a DML statement does (a SELECT's is the driver's guess, -1 on SQLite and
    the rows fetched on PostgreSQL). Anything else, or a driver that answers -1 ("not known"), is a
    programming error here, not a count that a conditional UPDATE would read as "someone else got
    there first".
    """
    if not (isinstance(result, sa.CursorResult) and result.context.is_crud):
        raise TypeError("rowcount of a statement that is not an UPDATE, DELETE or INSERT")
    if result.rowcount < 0:
        raise RuntimeError("the database driver did not count the rows this statement matched")
    return result.rowcount


def dialect_insert(table: sa.Table) -> Any:
    """PostgreSQL's or SQLite's INSERT (both have ON CONFLICT, which plain ``sa.insert`` lacks), for
    the dialect of the current session."""
    from core.extensions import db  # core.extensions builds on this module

    dialect = db.session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def insert_on_conflict(
    table: sa.Table,
    columns: Sequence[str],
    conflict: Sequence[str],
    *,
    update: Mapping[str, str] | None = None,
    where: str | None = None,
    returning: Sequence[str] = ("id",),
) -> sa.TextualSelect:
    """``INSERT … ON CONFLICT … RETURNING`` as text, built once: the same SQL on PostgreSQL and SQLite.

    SQLAlchemy's dialect ``on_conflict_do_*`` constructs have no cache key (2.0), so they are
    compiled on every execution, which on the phone's hot path costs more than the round trip
    itself; a text statement is compiled once. Bind parameters are named after ``columns`` and
    typed by them (JSON and UTC times convert as in the ORM). ``update`` maps a column to an SQL
    expression (``excluded.<column>`` is the row proposed); without it the conflict does nothing
    and no row comes back. ``where`` guards the update.
    """
    action = "DO NOTHING"
    if update:
        action = "DO UPDATE SET " + ", ".join(f"{name} = {sql}" for name, sql in update.items())
        if where:
            action += f" WHERE {where}"
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + name for name in columns)}) "
        f"ON CONFLICT ({', '.join(conflict)}) {action} "
        f"RETURNING {', '.join(f'{table.name}.{name}' for name in returning)}"
    )
    binds = [sa.bindparam(name, type_=table.c[name].type) for name in columns]
    return sa.text(sql).bindparams(*binds).columns(*(table.c[name] for name in returning))
