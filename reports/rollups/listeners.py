"""The roll-ups follow every commit: a transaction's recorded changes are folded in before it
commits, inside it (``before_commit``), so a report never reads a roll-up behind the rows it sums.

The triggers record changes whoever writes (the ORM, Core statements, text SQL). On PostgreSQL the
database also says so: a statement that records a change sends its connection a notice with its
answer (migration 0024), which :func:`_count_notices` counts, so a transaction that recorded
nothing (a plain check-in, most writes) commits without the fold's ``DELETE … RETURNING``, a round
trip that would find nothing. A connection that cannot tell (the trigger missing, notices held
back by ``client_min_messages``) and SQLite fold at every commit that reached the database: one
indexed ``DELETE``. A transaction that never reached the database costs nothing.
Changes written outside a session (a script over a raw connection) are folded in by the sweep
task (:func:`reports.rollups.tasks.sweep_changes`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.pool import Pool

from reports.rollups import service

_CONNECTED = "reports.rollups.connected"
#: In a connection's ``info``: how many notices of a recorded change it has received (None: it
#: cannot tell, see :func:`_count_notices`).
_NOTICES = "reports.rollups.notices"
#: In a session's ``info``: that count when its transaction began on the connection.
_NOTICES_AT_BEGIN = "reports.rollups.notices_at_begin"
#: The notice's SQLSTATE (migration 0024).
NOTICE_SQLSTATE = "SWR01"
#: Whether notices of recorded changes reach this connection: the trigger is there and enabled, and
#: ``client_min_messages`` lets a NOTICE through.
_NOTICES_REACH_US = (
    "SELECT current_setting('client_min_messages') IN ('debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'log', 'notice')"
    " AND EXISTS (SELECT FROM pg_trigger WHERE tgname = 'report_rollup_notice'"
    " AND tgrelid = to_regclass('report_rollup_changes') AND tgenabled <> 'D')"
)


@sa.event.listens_for(Pool, "connect")
def _count_notices(dbapi_connection: Any, record: Any) -> None:
    """Count the notices of recorded changes a new PostgreSQL connection (psycopg 3) receives.

    They come with the answer of the statement that recorded (the client reads them before the
    statement returns). Checked once per connection, as it opens: when the database would not
    send them, the count stays None and every commit on the connection folds.
    """
    if not hasattr(dbapi_connection, "add_notice_handler"):
        return  # not psycopg 3 (SQLite)
    info = record.info
    info[_NOTICES] = None
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # the check opens no transaction
    try:
        reach = dbapi_connection.execute(_NOTICES_REACH_US).fetchone()[0]
    finally:
        dbapi_connection.autocommit = autocommit
    if not reach:
        return
    info[_NOTICES] = 0

    def counted(diagnostic: Any) -> None:
        if diagnostic.sqlstate == NOTICE_SQLSTATE:
            info[_NOTICES] += 1

    dbapi_connection.add_notice_handler(counted)


@sa.event.listens_for(orm.Session, "after_begin")
def _connected(session: orm.Session, transaction: orm.SessionTransaction, connection: sa.Connection) -> None:
    session.info[_CONNECTED] = True
    if transaction.parent is None:  # not a savepoint: the transaction's own start
        session.info[_NOTICES_AT_BEGIN] = connection.info.get(_NOTICES)


@sa.event.listens_for(orm.Session, "after_soft_rollback")
def _forget(session: orm.Session, previous_transaction: orm.SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_CONNECTED, None)


@sa.event.listens_for(orm.Session, "before_commit")
def _fold_changes(session: orm.Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the outer transaction folds its changes in when it commits
    connected = session.info.pop(_CONNECTED, False)
    if not connected and not (session.new or session.dirty or session.deleted):
        # The transaction never reached the database and has nothing to flush (a static file, a
        # refusal before any query): it wrote nothing, and a statement here would begin a
        # transaction for nothing.
        return
    if session.get_bind().dialect.name not in ("postgresql", "sqlite"):
        return
    if session is not _app_session():
        return
    session.flush()
    if _recorded_nothing(session):
        return
    service.recompute(service.affected(service.take_changes()))


def _recorded_nothing(session: orm.Session) -> bool:
    """Whether the database said that no statement of this transaction recorded a change: no
    notice since it began (on a connection that receives them). A session that shares its
    connection's transaction with another (the tests' savepoints) counts its own statements'."""
    at_begin = session.info.get(_NOTICES_AT_BEGIN)
    return at_begin is not None and session.connection().info.get(_NOTICES) == at_begin


def _app_session() -> orm.Session | None:
    """The application's current session (the roll-up service works through it), if one is active."""
    from core.extensions import db

    try:
        return db.session()
    except RuntimeError:  # outside an application context
        return None
