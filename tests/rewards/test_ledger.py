"""The ledger: append-only entries and balances, the invariant check, history, access, expiry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.errors import Conflict
from core.extensions import db
from grids.models import AreaLevel
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, PointBalance
from rewards.ledger.tasks import expire_points
from tests import factories, races
from tests.problems import assert_problem
from tests.rewards.support import API, as_, balance, history, ledger_invariant  # noqa: F401

DAY = timedelta(days=1)


def entry_count(volunteer: Any) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(LedgerEntry).where(LedgerEntry.volunteer_id == volunteer.id)
    )


def earn(volunteer: Any, amount: int, key: str, **kwargs: Any) -> LedgerEntry:
    entry = ledger.append(volunteer.id, amount, "served_shift", "patrol", key, **kwargs)
    assert entry is not None
    return entry


# --- append ---------------------------------------------------------------------------------------


def test_append_moves_the_balance_and_a_replayed_source_is_a_no_op(tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    entry = earn(volunteer, 30, "p-1", rule_version=2, note="120 min")
    assert (entry.amount, entry.reason, entry.source_id, entry.rule_version) == (30, "served_shift", "p-1", 2)
    assert ledger.append(volunteer.id, 30, "served_shift", "patrol", "p-1") is None
    assert ledger.append(volunteer.id, 99, "served_shift", "patrol", "p-1") is None  # same source, any amount
    # Another reason for the same source is another entry (a reversal, a bonus).
    assert ledger.append(volunteer.id, 5, "streak_bonus", "patrol", "p-1") is not None
    assert ledger.balance_of(volunteer.id) == 35 == ledger.ledger_sum(volunteer.id)
    assert entry_count(volunteer) == 2


def test_a_debit_beyond_the_balance_is_refused_and_writes_nothing(tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    earn(volunteer, 10, "p-1")
    with pytest.raises(Conflict) as refused:
        ledger.append(volunteer.id, -11, "redemption", "redemption", "r-1")
    assert refused.value.code == "insufficient_points" and refused.value.status == 409
    assert ledger.balance_of(volunteer.id) == 10 and entry_count(volunteer) == 1
    # The transaction stays usable, and the same source may be tried again later.
    assert ledger.append(volunteer.id, -10, "redemption", "redemption", "r-1").amount == -10
    assert ledger.balance_of(volunteer.id) == 0
    with pytest.raises(Conflict):
        ledger.append(factories.make_volunteer(tree.grid_a).id, -1, "adjustment", "admin", "a-1")  # no balance yet
    with pytest.raises(ValueError):
        ledger.append(volunteer.id, 0, "adjustment", "admin", "a-2")


def test_the_invariant_check_finds_a_balance_that_drifted(tree) -> None:
    volunteer, other = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_b)
    earn(volunteer, 10, "p-1")
    earn(other, 7, "p-2")
    assert ledger.check_invariant() == [] and ledger.check_invariant([volunteer.id]) == []

    db.session.execute(sa.update(PointBalance).where(PointBalance.volunteer_id == volunteer.id).values(balance=13))
    db.session.execute(sa.delete(PointBalance).where(PointBalance.volunteer_id == other.id))
    try:
        assert ledger.check_invariant() == [
            {"volunteer_id": volunteer.id, "balance": 13, "ledger_sum": 10},
            {"volunteer_id": other.id, "balance": 0, "ledger_sum": 7},
        ]
        assert ledger.check_invariant(area_path=tree.community_b.path) == [
            {"volunteer_id": other.id, "balance": 0, "ledger_sum": 7}
        ]
        assert ledger.check_invariant([]) == []
    finally:
        db.session.execute(sa.update(PointBalance).where(PointBalance.volunteer_id == volunteer.id).values(balance=10))
        db.session.add(PointBalance(volunteer_id=other.id, balance=7))
        db.session.flush()


def test_the_invariant_endpoint_is_for_admins_of_the_area(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    earn(volunteer, 10, "p-1")
    admin = factories.make_user("admin", tree.city)
    url = f"{API}/rewards/invariant"
    ok = client.get(url, headers=as_(admin)).get_json()
    assert ok["ok"] is True and ok["mismatches"] == [] and ok["checked_at"]

    db.session.execute(sa.update(PointBalance).where(PointBalance.volunteer_id == volunteer.id).values(balance=4))
    db.session.flush()
    try:
        broken = client.get(url, headers=as_(admin)).get_json()
        assert broken["ok"] is False
        assert broken["mismatches"] == [{"volunteer_id": volunteer.id, "balance": 4, "ledger_sum": 10}]
        elsewhere = factories.make_user("admin", factories.make_area(AreaLevel.CITY))
        assert client.get(url, headers=as_(elsewhere)).get_json()["ok"] is True
        for caller in (factories.make_user("staff", tree.city), factories.make_user("organiser", tree.community_a),
                       volunteer):
            assert_problem(client.get(url, headers=as_(caller)), 403, "forbidden")
    finally:
        db.session.execute(sa.update(PointBalance).where(PointBalance.volunteer_id == volunteer.id).values(balance=10))
        db.session.flush()


# --- reading: own, managers, one entry --------------------------------------------------------------


def test_history_pages_newest_first_with_a_reason_filter(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    made = [earn(volunteer, n + 1, f"p-{n}").id for n in range(23)]
    made.append(ledger.append(volunteer.id, -5, "redemption", "redemption", "r-1").id)
    db.session.flush()

    first = client.get(f"{API}/me/points/history?limit=10", headers=as_(volunteer)).get_json()
    assert [e["id"] for e in first["items"]] == made[::-1][:10]
    assert [e["id"] for e in history(client, volunteer)] == made[::-1]
    assert [e["amount"] for e in history(client, volunteer, reason="redemption")] == [-5]
    assert balance(client, volunteer) == sum(range(1, 24)) - 5
    for bad in ("limit=0", "limit=101", "cursor=%%%", "reason=gift"):
        assert_problem(client.get(f"{API}/me/points/history?{bad}", headers=as_(volunteer)), 422, "validation_failed")


def test_managers_see_volunteers_of_their_subtree_only(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    earn(volunteer, 12, "p-1")
    inside = [factories.make_user("organiser", tree.community_a), factories.make_user("staff", tree.district_a),
              factories.make_user("admin", tree.city)]
    for manager in inside:
        summary = client.get(f"{API}/volunteers/{volunteer.id}/points", headers=as_(manager))
        assert summary.status_code == 200 and summary.get_json()["balance"] == 12
        page = client.get(f"{API}/volunteers/{volunteer.id}/points/history", headers=as_(manager)).get_json()
        assert [e["amount"] for e in page["items"]] == [12]
        assert client.get(f"{API}/volunteers/{volunteer.id}/badges", headers=as_(manager)).status_code == 200
    outside = factories.make_user("organiser", tree.community_b)
    other = factories.make_volunteer(tree.grid_a)
    for path in ("points", "points/history", "badges"):
        url = f"{API}/volunteers/{volunteer.id}/{path}"
        assert_problem(client.get(url, headers=as_(outside)), 404, "volunteer_not_found")
        assert_problem(client.get(url, headers=as_(other)), 403, "forbidden")  # as in volunteers/
        assert_problem(client.get(f"{API}/volunteers/999999/{path}", headers=as_(inside[0])), 404,
                       "volunteer_not_found")
    # /me is a volunteer's own: an organiser has no points of their own.
    assert_problem(client.get(f"{API}/me/points", headers=as_(inside[0])), 403, "forbidden")
    assert_problem(client.get(f"{API}/me/points"), 401, "unauthorized")


def test_one_entry_is_readable_by_its_volunteer_and_managers_in_scope(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    entry = earn(volunteer, 12, "p-1")
    url = f"{API}/ledger-entries/{entry.id}"
    assert client.get(url, headers=as_(volunteer)).get_json()["amount"] == 12
    assert client.get(url, headers=as_(factories.make_user("organiser", tree.community_a))).status_code == 200
    assert_problem(client.get(url, headers=as_(factories.make_volunteer(tree.grid_a))), 404, "ledger_entry_not_found")
    assert_problem(client.get(url, headers=as_(factories.make_user("organiser", tree.community_b))), 404,
                   "ledger_entry_not_found")
    assert_problem(client.get(f"{API}/ledger-entries/999999", headers=as_(volunteer)), 404, "ledger_entry_not_found")


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_a_ledger_entry_cannot_be_edited_or_deleted(client, tree, method) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    entry = earn(volunteer, 12, "p-1")
    admin = factories.make_user("admin", tree.city)
    for caller in (admin, volunteer):
        response = client.open(f"{API}/ledger-entries/{entry.id}", method=method, json={"amount": 9999},
                               headers=as_(caller))
        assert_problem(response, 405, "method_not_allowed")
        assert "GET" in response.headers["Allow"] and method not in response.headers["Allow"]
    stored = db.session.get(LedgerEntry, entry.id, populate_existing=True)
    assert (stored.amount, stored.reason, stored.source_id) == (12, "served_shift", "p-1")
    assert ledger.balance_of(volunteer.id) == 12 and entry_count(volunteer) == 1


# --- expiry ------------------------------------------------------------------------------------------


def test_expiry_takes_only_the_unspent_remainder_oldest_points_spent_first(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    old = earn(volunteer, 10, "p-1", expires_at=utcnow() - DAY)
    newer = earn(volunteer, 10, "p-2", expires_at=utcnow() + 10 * DAY)
    never = earn(volunteer, 5, "p-3")
    ledger.append(volunteer.id, -4, "redemption", "redemption", "r-1")  # FIFO: from the oldest, p-1
    db.session.flush()
    summary = client.get(f"{API}/me/points", headers=as_(volunteer)).get_json()
    assert summary["expiring_soon_total"] == 16  # 6 left of p-1 (due) and p-2 within 30 days
    assert [e["points"] for e in summary["expiring_soon"]] == [6, 10]

    assert expire_points() == 6
    assert expire_points() == 0  # idempotent

    [lapse] = db.session.scalars(sa.select(LedgerEntry).where(LedgerEntry.reason == "expiry")).all()
    assert (lapse.amount, lapse.source_type, lapse.source_id) == (-6, "entry", str(old.id))
    assert ledger.balance_of(volunteer.id) == 15
    later = utcnow() + 11 * DAY
    assert expire_points(later) == 10
    assert ledger.unspent(ledger.movements(volunteer.id)) == {never.id: 5}
    assert newer.amount == 10


def test_spent_points_do_not_lapse_and_a_reversal_takes_from_its_own_entry(tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    old = earn(volunteer, 10, "p-1", expires_at=utcnow() - DAY)
    fresh = earn(volunteer, 10, "p-2", expires_at=utcnow() + 300 * DAY)
    ledger.append(volunteer.id, -10, "reversal", "entry", str(fresh.id), reverses_id=fresh.id)
    ledger.append(volunteer.id, -10, "redemption", "redemption", "r-1")  # takes the old points
    db.session.flush()
    assert expire_points() == 0
    assert ledger.balance_of(volunteer.id) == 0
    assert old.id not in ledger.unspent(ledger.movements(volunteer.id))


def test_expiry_looks_back_a_month_unless_told_to_look_further(tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    earn(volunteer, 10, "p-1", expires_at=utcnow() - 40 * DAY)
    assert expire_points() == 0
    assert expire_points(since=utcnow() - 60 * DAY) == 10
    assert ledger.balance_of(volunteer.id) == 0


@pytest.mark.committing
def test_two_expiry_runs_at_once_lapse_points_once(app: Flask) -> None:
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        grid = factories.make_area(AreaLevel.GRID, city)
        volunteers = [factories.make_volunteer(grid) for _ in range(5)]
        for n, volunteer in enumerate(volunteers):
            earn(volunteer, 10 + n, f"p-{n}", expires_at=utcnow() - DAY)
        ids = [v.id for v in volunteers]
        db.session.commit()
        db.session.remove()
    barrier = races.barrier(3)
    lapsed: list[int] = []

    def run() -> None:
        with app.app_context():
            barrier.wait()
            lapsed.append(expire_points(batch_size=2))
            db.session.remove()

    races.run_threads([run] * 3)

    assert sum(lapsed) == sum(10 + n for n in range(5))
    with app.app_context():
        assert all(ledger.balance_of(v) == 0 for v in ids)
        assert db.session.scalar(sa.select(sa.func.count()).where(LedgerEntry.reason == "expiry")) == 5
