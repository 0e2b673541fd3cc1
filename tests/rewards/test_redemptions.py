"""Redemptions: every refusal writes nothing, the workflow with refunds, lists, and the races.

The race tests commit for real from many threads at once (``committing``); on PostgreSQL they are
the proof that stock, points and the per-volunteer limit never go wrong.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.auth import Caller, Role
from core.db import utcnow
from core.errors import Conflict
from core.extensions import db
from grids.models import AreaLevel
from rewards import signals
from rewards.catalogue.models import CatalogueItem
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, LedgerReason, PointBalance
from rewards.redemptions import service as redemptions
from rewards.redemptions.models import Redemption
from tests import factories, races
from tests.conftest import Tree
from tests.factories import headers_for
from tests.problems import assert_problem

API = "/api/v1"


@pytest.fixture(autouse=True)
def _ledger_agrees(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not request.node.get_closest_marker("committing"):
        assert ledger.check_invariant() == []


@pytest.fixture
def reversals_cleared(app: Flask) -> Iterator[None]:
    """For committing tests: the shared clean-up deletes whole tables, and SQLite checks
    ``reverses_id``'s ON DELETE RESTRICT row by row, so compensating entries go first."""
    yield
    with app.app_context():
        db.session.execute(sa.delete(LedgerEntry).where(LedgerEntry.reverses_id.is_not(None)))
        db.session.commit()
        db.session.remove()


@pytest.fixture
def changes() -> Iterator[list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def receiver(sender: str, **kwargs: Any) -> None:
        sent.append(kwargs)

    signals.redemption_status_changed.connect(receiver)
    yield sent
    signals.redemption_status_changed.disconnect(receiver)


@pytest.fixture
def people(tree: Tree) -> dict[str, Any]:
    return {
        "volunteer": factories.make_volunteer(tree.grid_a),
        "neighbour": factories.make_volunteer(tree.grid_a_east),
        "volunteer_b": factories.make_volunteer(tree.grid_b),
        "organiser": factories.make_user("organiser", tree.community_a),
        "staff_a": factories.make_user("staff", tree.district_a),
        "staff_b": factories.make_user("staff", tree.district_b),
    }


def give(volunteer: Any, points: int) -> None:
    ledger.append(volunteer.id, points, LedgerReason.ADJUSTMENT, "test", uuid.uuid4().hex, note="test points")
    db.session.flush()


def make_item(area: Any, **values: Any) -> CatalogueItem:
    item = CatalogueItem(
        area_id=area.id, name=values.pop("name", "保温杯"), description="",
        points_cost=values.pop("points_cost", 30), stock=values.pop("stock", 5),
        active=values.pop("active", True), **values,
    )
    db.session.add(item)
    db.session.flush()
    return item


def redeem(client: Any, volunteer: Any, item: Any, client_id: str | None = None, **headers: str) -> Any:
    return client.post(f"{API}/catalogue-items/{item.id}/redemptions", json={"client_id": client_id or str(uuid.uuid4())},
                       headers=headers_for(volunteer.user, **headers))


def state(volunteer: Any, item: Any) -> tuple[int, int, int]:
    """(balance, stock, redemptions of the item)."""
    db.session.expire_all()
    stock = db.session.get(CatalogueItem, item.id).stock
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Redemption).where(Redemption.item_id == item.id))
    return ledger.balance_of(volunteer.id), stock, count


# --- redeeming -----------------------------------------------------------------------------------


def test_redeeming_deducts_points_and_takes_one_from_stock_in_one_go(client, tree: Tree, people, changes) -> None:
    volunteer = people["volunteer"]
    give(volunteer, 100)
    item = make_item(tree.district_a, points_cost=30, stock=5)
    response = redeem(client, volunteer, item)
    assert response.status_code == 201, response.get_json()
    view = response.get_json()
    assert (view["status"], view["points"], view["item_name"], view["pickup_code"]) == ("requested", 30, "保温杯", None)
    assert state(volunteer, item) == (70, 4, 1)
    entry = db.session.scalar(sa.select(LedgerEntry).where(LedgerEntry.reason == LedgerReason.REDEMPTION))
    assert (entry.amount, entry.source_type, entry.source_id) == (-30, "redemption", str(view["id"]))
    assert [(c["status"], c["redemption_id"], c["item_name"]) for c in changes] == [("requested", view["id"], "保温杯")]


def test_the_same_client_id_or_idempotency_key_redeems_once(client, tree: Tree, people) -> None:
    volunteer = people["volunteer"]
    give(volunteer, 100)
    item = make_item(tree.district_a)
    client_id = str(uuid.uuid4())
    first = redeem(client, volunteer, item, client_id)
    again = redeem(client, volunteer, item, client_id)
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    keyed_id = str(uuid.uuid4())
    keyed = [redeem(client, volunteer, item, keyed_id, **{"Idempotency-Key": "k1"}) for _ in range(2)]
    assert keyed[1].headers.get("Idempotent-Replayed") == "true"
    assert keyed[0].get_json()["id"] == keyed[1].get_json()["id"]
    assert_problem(redeem(client, volunteer, item, None, **{"Idempotency-Key": "k1"}), 409, "idempotency_key_reused")
    assert state(volunteer, item) == (40, 3, 2)


def test_a_client_id_of_another_volunteer_is_409(client, tree: Tree, people) -> None:
    for who in ("volunteer", "neighbour"):
        give(people[who], 100)
    item = make_item(tree.district_a)
    client_id = str(uuid.uuid4())
    assert redeem(client, people["volunteer"], item, client_id).status_code == 201
    assert_problem(redeem(client, people["neighbour"], item, client_id), 409, "client_id_taken")
    assert state(people["neighbour"], item) == (100, 4, 1)


@pytest.mark.parametrize(
    "setup, status, code",
    [
        ({"points": 29}, 409, "insufficient_points"),
        ({"points": 0}, 409, "insufficient_points"),
        ({"item": {"stock": 0}}, 409, "out_of_stock"),
        ({"item": {"active": False}}, 409, "item_inactive"),
        ({"item": {"valid_from": +1}}, 409, "outside_item_dates"),
        ({"item": {"valid_until": -1}}, 409, "outside_item_dates"),
        # An item not for the volunteer's home grid is out of reach: as an id that does not exist.
        ({"area": "district_b"}, 404, "catalogue_item_not_found"),
        ({"area": "grid_a_east"}, 404, "catalogue_item_not_found"),
        ({"status": "suspended"}, 403, "volunteer_not_active"),
    ],
)
def test_each_refusal_writes_nothing(client, tree: Tree, people, changes, setup, status, code) -> None:
    volunteer = people["volunteer"]
    if setup.get("points", 100):
        give(volunteer, setup.get("points", 100))
    values = dict(setup.get("item", {}))
    for field in ("valid_from", "valid_until"):
        if field in values:
            values[field] = utcnow() + timedelta(hours=values[field])
    item = make_item(getattr(tree, setup.get("area", "district_a")), **values)
    if "status" in setup:
        volunteer.status = setup["status"]
        db.session.flush()
    before = state(volunteer, item)
    assert_problem(redeem(client, volunteer, item), status, code)
    assert state(volunteer, item) == before
    assert changes == []


def test_the_service_alone_writes_nothing_on_a_refusal(tree: Tree, people) -> None:
    """Without the request's rollback (a task or a test that carries on): a debit refused after
    the redemption row was flushed takes the row back."""
    volunteer = people["volunteer"]
    give(volunteer, 10)
    item = make_item(tree.district_a, points_cost=30)
    caller = Caller(volunteer.user_id, Role.VOLUNTEER, tree.grid_a.path, "session")
    with pytest.raises(Conflict) as refused:
        redemptions.redeem(caller, item.id, str(uuid.uuid4()))
    assert refused.value.code == "insufficient_points"
    assert state(volunteer, item) == (10, 5, 0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(
        LedgerEntry.reason == LedgerReason.REDEMPTION)) == 0


def test_the_per_volunteer_limit_counts_all_but_cancelled_and_rejected(client, tree: Tree, people) -> None:
    volunteer = people["volunteer"]
    give(volunteer, 1000)
    item = make_item(tree.district_a, per_volunteer_limit=2, stock=10)
    first = redeem(client, volunteer, item).get_json()
    assert redeem(client, volunteer, item).status_code == 201
    assert_problem(redeem(client, volunteer, item), 409, "redemption_limit_reached")
    assert state(volunteer, item) == (940, 8, 2)
    cancel = client.post(f"{API}/redemptions/{first['id']}/cancel", json={}, headers=headers_for(volunteer.user))
    assert cancel.status_code == 200
    assert redeem(client, volunteer, item).status_code == 201
    assert redeem(client, people["neighbour"], item).status_code == 409  # no points: the limit is per person
    assert state(volunteer, item) == (940, 8, 3)


def test_unknown_items_and_other_roles(client, tree: Tree, people) -> None:
    item = make_item(tree.district_a)
    assert_problem(client.post(f"{API}/catalogue-items/999999/redemptions", json={"client_id": str(uuid.uuid4())},
                               headers=headers_for(people["volunteer"].user)), 404, "catalogue_item_not_found")
    assert_problem(client.post(f"{API}/catalogue-items/{item.id}/redemptions", json={"client_id": str(uuid.uuid4())},
                               headers=headers_for(people["staff_a"])), 403, "forbidden")
    assert_problem(client.post(f"{API}/catalogue-items/{item.id}/redemptions", json={"client_id": "nope"},
                               headers=headers_for(people["volunteer"].user)), 422, "validation_failed")


# --- the workflow --------------------------------------------------------------------------------


def requested(client: Any, people: dict[str, Any], tree: Tree, **item_values: Any) -> tuple[dict[str, Any], Any]:
    give(people["volunteer"], 100)
    item = make_item(tree.district_a, **item_values)
    response = redeem(client, people["volunteer"], item)
    assert response.status_code == 201
    return response.get_json(), item


def step(client: Any, user: Any, redemption_id: int, action: str, **body: Any) -> Any:
    return client.post(f"{API}/redemptions/{redemption_id}/{action}", json=body, headers=headers_for(user))


def test_approve_then_fulfil_with_the_pickup_code(client, tree: Tree, people, changes) -> None:
    redemption, item = requested(client, people, tree)
    staff, volunteer = people["staff_a"], people["volunteer"]
    approved = step(client, staff, redemption["id"], "approve")
    assert approved.status_code == 200 and approved.get_json()["status"] == "approved"
    assert approved.get_json()["pickup_code"] is None  # staff are shown it by the volunteer
    mine = client.get(f"{API}/redemptions/{redemption['id']}", headers=headers_for(volunteer.user)).get_json()
    code = mine["pickup_code"]
    assert len(code) == 8 and code.isalnum() and code.upper() == code
    found = client.get(f"{API}/redemptions?pickup_code={code.lower()}", headers=headers_for(staff)).get_json()
    assert [r["id"] for r in found["items"]] == [redemption["id"]]

    wrong = "22222222" if code != "22222222" else "33333333"
    assert_problem(step(client, staff, redemption["id"], "fulfil", pickup_code=wrong), 422, "wrong_pickup_code")
    done = step(client, staff, redemption["id"], "fulfil", pickup_code=code.lower())
    assert done.status_code == 200
    assert done.get_json()["status"] == "fulfilled" and done.get_json()["fulfilled_at"]
    assert_problem(step(client, staff, redemption["id"], "cancel"), 409, "invalid_redemption_transition")
    assert [c["status"] for c in changes] == ["requested", "approved", "fulfilled"]
    assert changes[1]["pickup_code"] == code and changes[1]["actor_id"] == staff.id
    assert state(volunteer, item) == (70, 4, 1)


@pytest.mark.parametrize("given", ["注册信息", "ÄBCDEFGH", "٣٣٣٣٣٣٣٣"])
def test_a_pickup_code_in_any_script_is_just_wrong(client, tree: Tree, people, given: str) -> None:
    """Found by the API fuzz: a non-ASCII code made compare_digest raise, a 500."""
    redemption, item = requested(client, people, tree)
    step(client, people["staff_a"], redemption["id"], "approve")
    assert_problem(step(client, people["staff_a"], redemption["id"], "fulfil", pickup_code=given), 422, "wrong_pickup_code")
    assert state(people["volunteer"], item) == (70, 4, 1)  # still approved, nothing changed


def refunds(redemption_id: int) -> list[LedgerEntry]:
    return list(db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.reason == LedgerReason.REDEMPTION_REFUND, LedgerEntry.source_id == str(redemption_id))))


def test_the_volunteer_cancels_while_requested_and_is_refunded(client, tree: Tree, people, changes) -> None:
    redemption, item = requested(client, people, tree)
    volunteer = people["volunteer"]
    response = step(client, volunteer.user, redemption["id"], "cancel", reason="不需要了")
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert state(volunteer, item) == (100, 5, 1)
    [refund] = refunds(redemption["id"])
    debit = db.session.scalar(sa.select(LedgerEntry).where(LedgerEntry.reason == LedgerReason.REDEMPTION))
    assert refund.amount == 30 and refund.reverses_id == debit.id
    assert_problem(step(client, volunteer.user, redemption["id"], "cancel"), 409, "invalid_redemption_transition")
    assert len(refunds(redemption["id"])) == 1
    assert [c["status"] for c in changes] == ["requested", "cancelled"]


def test_once_approved_only_staff_cancel(client, tree: Tree, people) -> None:
    redemption, item = requested(client, people, tree)
    assert step(client, people["staff_a"], redemption["id"], "approve").status_code == 200
    assert_problem(step(client, people["volunteer"].user, redemption["id"], "cancel"), 409,
                   "invalid_redemption_transition")
    assert state(people["volunteer"], item) == (70, 4, 1)
    response = step(client, people["staff_a"], redemption["id"], "cancel", reason="活动取消")
    assert response.get_json()["status"] == "cancelled" and response.get_json()["decided_by"] == people["staff_a"].id
    assert state(people["volunteer"], item) == (100, 5, 1)


def test_rejecting_needs_a_reason_refunds_and_is_final(client, tree: Tree, people) -> None:
    redemption, item = requested(client, people, tree)
    staff = people["staff_a"]
    assert_problem(step(client, staff, redemption["id"], "reject"), 422, "validation_failed")
    response = step(client, staff, redemption["id"], "reject", reason="库存核对有误")
    assert response.get_json()["status"] == "rejected" and response.get_json()["reason"] == "库存核对有误"
    assert state(people["volunteer"], item) == (100, 5, 1)
    for action, extra in (("reject", {"reason": "again"}), ("approve", {}), ("cancel", {})):
        assert_problem(step(client, staff, redemption["id"], action, **extra), 409, "invalid_redemption_transition")
    assert len(refunds(redemption["id"])) == 1


def test_refunds_stay_right_after_the_item_is_repriced_and_withdrawn(client, tree: Tree, people) -> None:
    redemption, item = requested(client, people, tree, points_cost=30)
    item.points_cost, item.active = 500, False
    db.session.flush()
    step(client, people["staff_a"], redemption["id"], "reject", reason="下架")
    assert state(people["volunteer"], item) == (100, 5, 1)


def test_staff_elsewhere_organisers_and_other_volunteers_are_refused(client, tree: Tree, people) -> None:
    redemption, item = requested(client, people, tree)
    for action in ("approve", "reject", "cancel", "fulfil"):
        extra = {"reason": "x"} if action == "reject" else {"pickup_code": "X"} if action == "fulfil" else {}
        assert_problem(step(client, people["staff_b"], redemption["id"], action, **extra), 404, "redemption_not_found")
        assert_problem(step(client, people["organiser"], redemption["id"], action, **extra), 403, "forbidden")
    assert_problem(step(client, people["neighbour"].user, redemption["id"], "cancel"), 404, "redemption_not_found")
    assert_problem(client.get(f"{API}/redemptions/{redemption['id']}", headers=headers_for(people["neighbour"].user)),
                   404, "redemption_not_found")
    assert_problem(client.get(f"{API}/redemptions/{redemption['id']}", headers=headers_for(people["staff_b"])),
                   404, "redemption_not_found")
    assert_problem(step(client, people["staff_a"], 999999, "approve"), 404, "redemption_not_found")
    assert state(people["volunteer"], item) == (70, 4, 1)


def test_lists_mine_and_in_my_area(client, tree: Tree, people) -> None:
    give(people["volunteer"], 300)
    give(people["volunteer_b"], 300)
    item_a, item_b = make_item(tree.district_a, stock=10), make_item(tree.district_b, stock=10)
    mine = [redeem(client, people["volunteer"], item_a).get_json()["id"] for _ in range(3)]
    theirs = redeem(client, people["volunteer_b"], item_b).get_json()["id"]
    step(client, people["staff_a"], mine[0], "approve")

    def ids(path: str, user: Any) -> list[int]:
        response = client.get(f"{API}{path}", headers=headers_for(user))
        assert response.status_code == 200, response.get_json()
        return [r["id"] for r in response.get_json()["items"]]

    volunteer = people["volunteer"].user
    assert ids("/redemptions/mine", volunteer) == mine[::-1]
    assert ids("/redemptions/mine?status=approved", volunteer) == [mine[0]]
    assert ids("/redemptions/mine?limit=2", volunteer) == mine[:0:-1]
    assert ids("/redemptions", people["staff_a"]) == mine[::-1]
    assert ids("/redemptions?status=requested&status=approved", people["staff_b"]) == [theirs]
    assert ids(f"/redemptions?volunteer_id={people['volunteer'].id}&item_id={item_a.id}", people["staff_a"]) == mine[::-1]
    assert_problem(client.get(f"{API}/redemptions?area_id={tree.district_b.id}", headers=headers_for(people["staff_a"])),
                   403, "out_of_scope")
    assert_problem(client.get(f"{API}/redemptions", headers=headers_for(people["organiser"])), 403, "forbidden")
    assert_problem(client.get(f"{API}/redemptions?status=lost", headers=headers_for(people["staff_a"])), 422,
                   "validation_failed")


# --- races, with real commits from many threads ---------------------------------------------------


def run_at_once(app: Flask, requests: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[tuple[int, Any]]:
    """POST each (path, json, headers) at once; (status, json) per request."""
    responses = races.at_once(app, [("POST", path, body, headers) for path, body, headers in requests])
    return [(response.status_code, response.get_json()) for response in responses]


def committed_setup(app: Flask, volunteers: int, points: int, **item_values: Any) -> tuple[int, list[int], list[dict[str, str]], dict[str, str]]:
    """A district with ``volunteers`` volunteers holding ``points`` each and one item; committed."""
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        district = factories.make_area(AreaLevel.DISTRICT, city)
        community = factories.make_area(AreaLevel.COMMUNITY, factories.make_area(AreaLevel.SUBDISTRICT, district))
        grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(109.84, 40.65))
        people = [factories.make_volunteer(grid, id_number=factories.national_id(sequence=i % 1000, birth=f"19{50 + i // 1000:02d}0101"))
                  for i in range(volunteers)]
        for volunteer in people:
            ledger.append(volunteer.id, points, LedgerReason.ADJUSTMENT, "test", f"race-{volunteer.id}")
        item = make_item(district, **item_values)
        headers = [headers_for(volunteer.user) for volunteer in people]
        staff = headers_for(factories.make_user("staff", district))
        result = item.id, [v.id for v in people], headers, staff
        db.session.commit()
        db.session.remove()
    return result


def committed_state(app: Flask, item_id: int, volunteer_ids: list[int]) -> dict[str, Any]:
    with app.app_context():
        stock = db.session.scalar(sa.select(CatalogueItem.stock).where(CatalogueItem.id == item_id))
        redemptions = db.session.scalar(sa.select(sa.func.count()).select_from(Redemption).where(Redemption.item_id == item_id))
        lowest = db.session.scalar(sa.select(sa.func.min(PointBalance.balance)).where(PointBalance.volunteer_id.in_(volunteer_ids)))
        balances = {v: ledger.balance_of(v) for v in volunteer_ids}
        mismatches = ledger.check_invariant(volunteer_ids)
        db.session.remove()
    return {"stock": stock, "redemptions": redemptions, "lowest": lowest, "balances": balances, "mismatches": mismatches}


def path(item_id: int) -> str:
    return f"{API}/catalogue-items/{item_id}/redemptions"


@pytest.mark.committing
def test_100_volunteers_redeem_an_item_with_stock_10_at_once_and_exactly_10_succeed(app: Flask) -> None:
    item_id, volunteer_ids, headers, _ = committed_setup(app, 100, 50, points_cost=30, stock=10)
    results = run_at_once(app, [(path(item_id), {"client_id": str(uuid.uuid4())}, h) for h in headers])
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] * 10 + [409] * 90, statuses
    assert {answer["code"] for status, answer in results if status == 409} == {"out_of_stock"}
    after = committed_state(app, item_id, volunteer_ids)
    assert (after["stock"], after["redemptions"], after["mismatches"]) == (0, 10, [])
    assert sorted(after["balances"].values()) == [20] * 10 + [50] * 90


@pytest.mark.committing
def test_one_volunteer_with_100_points_fires_10_redemptions_of_30_at_once_and_at_most_3_succeed(app: Flask) -> None:
    item_id, volunteer_ids, headers, _ = committed_setup(app, 1, 100, points_cost=30, stock=100)
    results = run_at_once(app, [(path(item_id), {"client_id": str(uuid.uuid4())}, headers[0]) for _ in range(10)])
    succeeded = [answer for status, answer in results if status == 201]
    assert len(succeeded) <= 3
    assert len(succeeded) == 3  # and not fewer: each waits for the one before, then sees its balance
    assert {answer["code"] for status, answer in results if status != 201} == {"insufficient_points"}
    after = committed_state(app, item_id, volunteer_ids)
    assert (after["stock"], after["redemptions"], after["lowest"], after["mismatches"]) == (97, 3, 10, [])


@pytest.mark.committing
def test_the_per_volunteer_limit_holds_under_parallel_requests(app: Flask) -> None:
    item_id, volunteer_ids, headers, _ = committed_setup(app, 1, 1000, points_cost=10, stock=100, per_volunteer_limit=2)
    results = run_at_once(app, [(path(item_id), {"client_id": str(uuid.uuid4())}, headers[0]) for _ in range(10)])
    assert sorted(status for status, _ in results) == [201] * 2 + [409] * 8
    assert {answer["code"] for status, answer in results if status == 409} == {"redemption_limit_reached"}
    after = committed_state(app, item_id, volunteer_ids)
    assert (after["stock"], after["redemptions"], after["balances"][volunteer_ids[0]], after["mismatches"]) == (98, 2, 980, [])


@pytest.mark.committing
def test_a_cancel_and_a_reject_at_once_refund_once(app: Flask, reversals_cleared: None) -> None:
    item_id, volunteer_ids, headers, staff = committed_setup(app, 1, 100, points_cost=30, stock=5)
    response = app.test_client().post(path(item_id), json={"client_id": str(uuid.uuid4())}, headers=headers[0])
    redemption_id = response.get_json()["id"]
    results = run_at_once(app, [
        (f"{API}/redemptions/{redemption_id}/cancel", {}, headers[0]),
        (f"{API}/redemptions/{redemption_id}/reject", {"reason": "重复"}, staff),
    ] * 3)
    assert sorted(status for status, _ in results) == [200] + [409] * 5
    after = committed_state(app, item_id, volunteer_ids)
    assert (after["stock"], after["balances"][volunteer_ids[0]], after["mismatches"]) == (5, 100, [])
