"""core.db.rowcount: the count of rows a conditional UPDATE, a DELETE or an INSERT … SELECT matched,
which services compare with 1 ("did we win?") and periodic jobs report; never a guess."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from accounts.models import User
from core.auth import Role
from core.db import UTCDateTime, rowcount, utcnow
from core.extensions import db
from core.idempotency import IdempotencyRecord
from grids.models import Area
from tests.factories import make_branch, make_user


def test_an_update_counts_the_rows_it_matched() -> None:
    city, *_, grid = make_branch()
    subtree = Area.path.startswith(city.path)
    renamed = db.session.execute(
        sa.update(Area).where(subtree, Area.id != grid.id).values(name="x")
        .execution_options(synchronize_session=False)
    )
    assert rowcount(renamed) == 4
    # Matched, not changed: the same values again still count (what a conditional UPDATE relies on).
    again = db.session.execute(
        sa.update(Area).where(subtree).values(name="x").execution_options(synchronize_session=False)
    )
    assert rowcount(again) == 5
    nothing = db.session.execute(
        sa.update(Area).where(Area.id == -1).values(name="x").execution_options(synchronize_session=False)
    )
    assert rowcount(nothing) == 0


def test_an_update_that_fetches_the_rows_it_changed_counts_them_too() -> None:
    # grids.service.move_area reports the size of the moved subtree this way.
    city, *_ = make_branch()
    moved = db.session.execute(
        sa.update(Area).where(Area.path.startswith(city.path)).values(name="y")
        .execution_options(synchronize_session="fetch")
    )
    assert rowcount(moved) == 5


def test_a_delete_and_an_insert_from_a_select_count_their_rows() -> None:
    city, *_ = make_branch()
    ids = [make_user(Role.STAFF, city).id for _ in range(3)]
    one_record_per_user = sa.select(
        User.id, sa.literal("key"), sa.literal("POST"), sa.literal("/"), sa.literal("0" * 64),
        sa.literal(utcnow(), UTCDateTime()),
    ).where(User.id.in_(ids))
    written = db.session.execute(
        sa.insert(IdempotencyRecord).from_select(
            ["user_id", "key", "method", "path", "request_hash", "created_at"], one_record_per_user
        ).execution_options(preserve_rowcount=True)  # else only UPDATE/DELETE keep it (psycopg: -1)
    )
    assert rowcount(written) == 3
    deleted = db.session.execute(
        sa.delete(IdempotencyRecord).where(IdempotencyRecord.user_id.in_(ids[:2]))
        .execution_options(synchronize_session=False)
    )
    assert rowcount(deleted) == 2


def test_a_select_has_no_rowcount_to_read() -> None:
    with pytest.raises(TypeError, match="not an UPDATE, DELETE or INSERT"):
        rowcount(db.session.execute(sa.select(sa.literal(1))))


def test_a_count_the_driver_did_not_keep_is_refused_not_returned() -> None:
    # psycopg drops an INSERT's count unless asked to keep it (preserve_rowcount): -1 would read
    # as "no recipients" in a broadcast, or as "lost the race" in a conditional write.
    city, *_ = make_branch()
    ids = [make_user(Role.STAFF, city).id for _ in range(2)]
    written = db.session.execute(
        sa.insert(IdempotencyRecord).from_select(
            ["user_id", "key", "method", "path", "request_hash", "created_at"],
            sa.select(
                User.id, sa.literal("key"), sa.literal("POST"), sa.literal("/"), sa.literal("0" * 64),
                sa.literal(utcnow(), UTCDateTime()),
            ).where(User.id.in_(ids)),
        )
    )
    if db.session.get_bind().dialect.name == "postgresql":
        assert written.rowcount == -1  # what services read before core.db.rowcount
        with pytest.raises(RuntimeError, match="did not count the rows"):
            rowcount(written)
    else:
        assert rowcount(written) == 2  # sqlite3 keeps every DML count
