"""Transaction-scoped locks on things that have no row of their own to lock.

A volunteer's schedule spans many shift rows, so "no overlapping shifts for one volunteer" cannot be
guarded by one conditional UPDATE. On PostgreSQL we take an advisory lock per volunteer for the rest
of the transaction; SQLite needs none because ``BEGIN IMMEDIATE`` already serialises every writer
(core/db.py). Take locks in ascending key order so two transactions never wait on each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

import sqlalchemy as sa

from core.extensions import db


class LockSpace(IntEnum):
    """The first half of a two-part advisory lock key: what kind of thing the second half names."""

    VOLUNTEER_SCHEDULE = 1
    PARTITION_MAINTENANCE = 2  # one maker of a table's partitions at a time (core/partitions.py)


def lock(space: LockSpace, keys: Iterable[int]) -> None:
    """Hold locks on ``keys`` in ``space`` until the transaction ends (sorted, de-duplicated)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return
    ordered = sorted(set(keys))
    if not ordered:
        return
    # One round trip for many keys (auto-fill locks thousands). PostgreSQL evaluates volatile
    # functions in the select list after ORDER BY, so the locks are taken in ascending order.
    db.session.execute(
        sa.text(
            "SELECT pg_advisory_xact_lock(:space, key) FROM unnest(CAST(:keys AS integer[])) AS key"
            " ORDER BY key"
        ),
        {"space": int(space), "keys": ordered},
    )


def lock_column(space: LockSpace, key: sa.SQLColumnExpression[int], dialect_name: str) -> sa.ColumnElement[Any]:
    """A select-list expression taking the lock on ``key`` for each row the select returns.

    Saves the round trip of :func:`lock` when the key comes out of a query anyway; only for one row
    (one key), as the order of several is not defined. The rows come from the statement's snapshot,
    taken before the lock: read what the lock protects in a later statement.
    """
    if dialect_name != "postgresql":
        return sa.null()
    return sa.func.pg_advisory_xact_lock(int(space), key)


def try_lock(space: LockSpace, key: int) -> bool:
    """Take the lock on ``key`` if nobody holds it; never waits (for locks taken out of order)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return True
    acquired = db.session.scalar(
        sa.text("SELECT pg_try_advisory_xact_lock(:space, :key)"), {"space": int(space), "key": key}
    )
    return bool(acquired)
