"""Swap requests through the HTTP API: propose, answer, decide, lists, scope and every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from accounts.models import User
from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from shifts import signals
from shifts.models import Assignment, Shift
from shifts.swaps.models import SwapRequest
from tests import factories, races
from tests.problems import EN, assert_problem
from volunteers.models import Volunteer

API = "/api/v1/swap-requests"


class Cast:
    """Ann (grid A) holds a place and offers it; Bo (grid A east, same community) is asked.

    Dai lives in Ann's grid too: Bo and Dai are within Ann's reach (her community). Cai lives in
    community A2 of the same city and Far in another city: both out of Ann's reach. Organiser A runs
    community A, organiser A2 community A2, organiser B community B; staff A runs district A (A and
    A2).
    """

    def __init__(self, tree: Any) -> None:
        self.tree = tree
        self.ann = factories.make_volunteer(tree.grid_a, real_name="安")
        self.bo = factories.make_volunteer(tree.grid_a_east, real_name="波")
        self.cai = factories.make_volunteer(tree.grid_a2, real_name="蔡")
        self.dai = factories.make_volunteer(tree.grid_a, real_name="戴")
        other_city = factories.make_area(AreaLevel.CITY, name="乌海市")
        district = factories.make_area(AreaLevel.DISTRICT, other_city)
        subdistrict = factories.make_area(AreaLevel.SUBDISTRICT, district)
        community = factories.make_area(AreaLevel.COMMUNITY, subdistrict)
        self.far_grid = factories.make_area(
            AreaLevel.GRID, community, boundary=factories.square(106.80, 39.65)
        )
        self.far = factories.make_volunteer(self.far_grid, real_name="远")
        self.organiser_a = factories.make_user("organiser", tree.community_a)
        self.organiser_a2 = factories.make_user("organiser", tree.community_a2)
        self.organiser_b = factories.make_user("organiser", tree.community_b)
        self.staff_a = factories.make_user("staff", tree.district_a)
        self.shift = factories.make_shift(tree.grid_a, starts_in=timedelta(days=1), max_headcount=3)
        self.place = factories.make_assignment(self.shift, self.ann)


@pytest.fixture
def cast(tree) -> Cast:
    return Cast(tree)


@pytest.fixture
def announced() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every assignment_created / assignment_cancelled sent during the test, in order."""
    seen: list[tuple[str, dict[str, Any]]] = []

    def created(_sender: Any, **kwargs: Any) -> None:
        seen.append(("created", kwargs))

    def cancelled(_sender: Any, **kwargs: Any) -> None:
        seen.append(("cancelled", kwargs))

    signals.assignment_created.connect(created)
    signals.assignment_cancelled.connect(cancelled)
    yield seen
    signals.assignment_created.disconnect(created)
    signals.assignment_cancelled.disconnect(cancelled)


def as_(who: Volunteer | User, **extra: str) -> dict[str, str]:
    user = who.user if isinstance(who, Volunteer) else who
    return factories.headers_for(user, **extra)


def propose(client, volunteer: Volunteer, assignment: Assignment, to: Volunteer, **body: Any):
    payload = {"assignment_id": assignment.id, "to_volunteer_id": to.id, **body}
    return client.post(API, json=payload, headers=as_(volunteer, **EN))


def act(client, who: Volunteer | User, swap_id: int, action: str, **body: Any):
    return client.post(f"{API}/{swap_id}/{action}", json=body, headers=as_(who, **EN))


def proposed(client, cast: Cast, **body: Any) -> int:
    response = propose(client, cast.ann, cast.place, cast.bo, **body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def accepted(client, cast: Cast, **body: Any) -> int:
    swap_id = proposed(client, cast, **body)
    assert act(client, cast.bo, swap_id, "accept").status_code == 200
    return swap_id


def places(shift: Shift) -> list[tuple[int, str, str, str, int | None]]:
    rows = db.session.scalars(
        sa.select(Assignment).where(Assignment.shift_id == shift.id).order_by(Assignment.id)
    )
    return [(a.volunteer_id, a.status, a.role, a.source, a.queue_seq) for a in rows]


def swap_status(swap_id: int) -> str:
    return db.session.get(SwapRequest, swap_id).status


def swap_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(SwapRequest))


def counters(shift: Shift) -> tuple[int, int, int]:
    db.session.refresh(shift)
    return shift.primary_count, shift.backup_count, shift.queue_seq


# --- the whole way through ---------------------------------------------------------------------


def test_handover_proposed_accepted_approved_moves_the_place(client, cast, announced) -> None:
    before = counters(cast.shift)
    response = propose(client, cast.ann, cast.place, cast.bo, message="家里有事，麻烦替我一下")
    assert response.status_code == 201
    body = response.get_json()
    assert body["kind"] == "handover" and body["status"] == "proposed"
    assert (body["from_volunteer_id"], body["to_volunteer_id"]) == (cast.ann.id, cast.bo.id)
    assert (body["from_volunteer_name"], body["to_volunteer_name"]) == ("安", "波")
    assert body["from_assignment"]["id"] == cast.place.id
    assert body["from_assignment"]["shift"]["id"] == cast.shift.id
    assert body["to_assignment"] is None and body["message"] == "家里有事，麻烦替我一下"
    assert body["created_at"].endswith("+00:00")  # instants are shown in UTC

    accept = act(client, cast.bo, body["id"], "accept")
    assert accept.status_code == 200 and accept.get_json()["status"] == "accepted"
    approve = act(client, cast.organiser_a, body["id"], "approve", reason="同意")
    assert approve.status_code == 200, approve.get_json()
    done = approve.get_json()
    assert done["status"] == "approved" and done["decision_reason"] == "同意"
    assert done["from_assignment"]["status"] == "swapped"

    queue_seq = cast.place.queue_seq
    assert places(cast.shift) == [
        (cast.ann.id, "swapped", "primary", "organiser", queue_seq),
        (cast.bo.id, "assigned", "primary", "swap", queue_seq),
    ]
    assert counters(cast.shift) == before  # one place replaced by another
    new_id = db.session.scalar(
        sa.select(Assignment.id).where(
            Assignment.shift_id == cast.shift.id, Assignment.volunteer_id == cast.bo.id
        )
    )
    assert announced == [
        (
            "cancelled",
            {
                "assignment_id": cast.place.id,
                "shift_id": cast.shift.id,
                "volunteer_id": cast.ann.id,
                "status": "swapped",
                "late": False,
                "actor_id": cast.organiser_a.id,
                "reason": "同意",
            },
        ),
        (
            "created",
            {
                "assignment_id": new_id,
                "shift_id": cast.shift.id,
                "volunteer_id": cast.bo.id,
                "role": "primary",
                "source": "swap",
                "actor_id": cast.organiser_a.id,
            },
        ),
    ]
    entry = db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "shift_swap.approve")
    )
    assert entry.actor_id == cast.organiser_a.id and entry.target_id == str(body["id"])
    assert entry.after["created_assignment_ids"] == [new_id]
    assert entry.after["swapped_assignment_ids"] == [cast.place.id]


def test_exchange_of_overlapping_shifts_trades_places_and_ignores_each_ones_own_shift(
    client, cast, tree, announced
) -> None:
    # Bo's shift overlaps Ann's: each is free for the other's only because they leave their own.
    bo_shift = factories.make_shift(
        tree.grid_a_east, starts_in=timedelta(days=1, hours=1), backup_slots=1
    )
    bo_place = factories.make_assignment(bo_shift, cast.bo, role="backup")
    swap_id = accepted(client, cast, to_assignment_id=bo_place.id)
    before = (counters(cast.shift), counters(bo_shift))

    response = act(client, cast.organiser_a, swap_id, "approve")

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["kind"] == "exchange" and body["to_assignment"]["status"] == "swapped"
    assert places(cast.shift)[1][:4] == (cast.bo.id, "assigned", "primary", "swap")
    assert places(bo_shift) == [
        (cast.bo.id, "swapped", "backup", "organiser", bo_place.queue_seq),
        (cast.ann.id, "assigned", "backup", "swap", bo_place.queue_seq),
    ]
    assert (counters(cast.shift), counters(bo_shift)) == before
    assert [(kind, kw["volunteer_id"], kw["shift_id"]) for kind, kw in announced] == [
        ("cancelled", cast.ann.id, cast.shift.id),
        ("created", cast.bo.id, cast.shift.id),
        ("cancelled", cast.bo.id, bo_shift.id),
        ("created", cast.ann.id, bo_shift.id),
    ]


def test_backup_place_is_handed_over_as_a_backup(client, cast, tree) -> None:
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(days=3), backup_slots=2)
    factories.make_assignment(shift, cast.cai)
    place = factories.make_assignment(shift, cast.ann, role="backup")
    response = propose(client, cast.ann, place, cast.bo)
    swap_id = response.get_json()["id"]
    act(client, cast.bo, swap_id, "accept")
    assert act(client, cast.organiser_a, swap_id, "approve").status_code == 200
    assert places(shift)[-1] == (cast.bo.id, "assigned", "backup", "swap", place.queue_seq)
    assert counters(shift)[:2] == (1, 1)


# --- proposing: refusals -----------------------------------------------------------------------


def test_proposal_refusals_for_bad_references(client, cast, tree) -> None:
    bo_place = factories.make_assignment(
        factories.make_shift(tree.grid_a_east, starts_in=timedelta(days=4)), cast.bo
    )
    cases = [
        ({"assignment_id": bo_place.id, "to_volunteer_id": cast.cai.id}, "assignment_id"),
        ({"assignment_id": 2_000_000_000, "to_volunteer_id": cast.bo.id}, "assignment_id"),
        ({"assignment_id": cast.place.id, "to_volunteer_id": cast.ann.id}, "to_volunteer_id"),
        ({"assignment_id": cast.place.id, "to_volunteer_id": cast.far.id}, "to_volunteer_id"),
        ({"assignment_id": cast.place.id, "to_volunteer_id": 2_000_000_000}, "to_volunteer_id"),
        ({"assignment_id": cast.place.id, "to_volunteer_id": cast.cai.id}, "to_volunteer_id"),
        (
            {
                "assignment_id": cast.place.id,
                "to_volunteer_id": cast.dai.id,
                "to_assignment_id": bo_place.id,
            },
            "to_assignment_id",
        ),
        (
            {"assignment_id": cast.place.id, "to_volunteer_id": cast.bo.id, "status": "approved"},
            "status",
        ),
        ({"assignment_id": cast.place.id}, "to_volunteer_id"),
        (
            {"assignment_id": cast.place.id, "to_volunteer_id": cast.bo.id, "message": "  "},
            "message",
        ),
        ({"assignment_id": "1", "to_volunteer_id": cast.bo.id}, "assignment_id"),
    ]
    for body, field in cases:
        response = client.post(API, json=body, headers=as_(cast.ann, **EN))
        problem = assert_problem(response, 422, "validation_failed")
        assert field in problem["errors"], (body, problem)
    assert swap_count() == 0


def test_exchange_for_a_place_on_the_same_shift_is_refused(client, cast) -> None:
    bo_place = factories.make_assignment(cast.shift, cast.bo)
    response = propose(client, cast.ann, cast.place, cast.bo, to_assignment_id=bo_place.id)
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"] == {"to_assignment_id": ["Choose a place on another shift."]}


@pytest.mark.parametrize("status", ["waitlisted", "invited"])
def test_only_an_assigned_place_can_be_offered(client, cast, tree, status) -> None:
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(days=2))
    place = factories.make_assignment(shift, cast.ann, status=status)
    assert_problem(propose(client, cast.ann, place, cast.bo), 409, "assignment_not_swappable")
    assert swap_count() == 0


def test_a_place_on_a_begun_or_cancelled_shift_cannot_be_offered(client, cast, tree) -> None:
    begun = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-30), hours=2)
    assert_problem(
        propose(client, cast.ann, factories.make_assignment(begun, cast.ann), cast.bo),
        409,
        "shift_started",
    )
    cast.shift.status = "cancelled"
    db.session.flush()
    assert_problem(propose(client, cast.ann, cast.place, cast.bo), 409, "shift_cancelled")
    assert swap_count() == 0


def test_the_exchanged_place_must_be_assigned_and_open_too(client, cast, tree) -> None:
    bo_shift = factories.make_shift(tree.grid_a_east, starts_in=timedelta(days=3))
    waiting = factories.make_assignment(bo_shift, cast.bo, status="waitlisted")
    response = propose(client, cast.ann, cast.place, cast.bo, to_assignment_id=waiting.id)
    assert_problem(response, 409, "assignment_not_swappable")


def test_an_exchanged_place_in_another_city_is_refused(client, cast) -> None:
    # Bo holds a place in another city (an organiser there put him on it): Ann cannot take it.
    far_place = factories.make_assignment(
        factories.make_shift(cast.far_grid, starts_in=timedelta(days=5)), cast.bo
    )
    response = propose(client, cast.ann, cast.place, cast.bo, to_assignment_id=far_place.id)
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"] == {"to_assignment_id": ["The shift is not in your city."]}


@pytest.mark.parametrize("status", ["suspended", "pending", "retired"])
def test_a_volunteer_not_active_is_out_of_reach_like_an_unknown_id(client, cast, status) -> None:
    # Not 403 volunteer_not_active: that would tell Ann her neighbour's status.
    cast.bo.status = status
    db.session.flush()
    response = propose(client, cast.ann, cast.place, cast.bo)
    problem = assert_problem(response, 422, "validation_failed")
    assert problem["errors"] == {"to_volunteer_id": ["Unknown volunteer."]}
    nobody = client.post(
        API,
        json={"assignment_id": cast.place.id, "to_volunteer_id": 2_000_000_000},
        headers=as_(cast.ann, **EN),
    )
    assert response.get_data() == nobody.get_data()
    assert swap_count() == 0


def test_in_an_exchange_the_requester_must_be_active_too(client, cast, tree) -> None:
    bo_place = factories.make_assignment(
        factories.make_shift(tree.grid_a_east, starts_in=timedelta(days=3)), cast.bo
    )
    cast.ann.status = "suspended"
    db.session.flush()
    response = propose(client, cast.ann, cast.place, cast.bo, to_assignment_id=bo_place.id)
    assert_problem(response, 403, "volunteer_not_active")
    # A plain hand-over from a suspended volunteer is welcome: the place stays covered.
    assert propose(client, cast.ann, cast.place, cast.bo).status_code == 201


def test_the_volunteer_taking_the_place_must_not_be_on_that_shift(client, cast) -> None:
    factories.make_assignment(cast.shift, cast.bo, status="waitlisted")
    assert_problem(propose(client, cast.ann, cast.place, cast.bo), 409, "already_on_shift")


def test_overlap_and_rest_are_checked_for_whoever_takes_a_place(client, cast, tree) -> None:
    overlapping = factories.make_shift(tree.grid_a2, starts_in=timedelta(days=1, minutes=30))
    factories.make_assignment(overlapping, cast.bo)
    problem = assert_problem(propose(client, cast.ann, cast.place, cast.bo), 409, "shift_overlap")
    assert problem["errors"] == {"conflicting_shift_id": [str(overlapping.id)]}

    # Dai's shift ends 30 minutes before Ann's starts (minimum rest 60).
    too_close = factories.make_shift(
        tree.grid_a2, starts_in=timedelta(days=1, hours=-2, minutes=-30)
    )
    factories.make_assignment(too_close, cast.dai)
    assert_problem(propose(client, cast.ann, cast.place, cast.dai), 409, "rest_too_short")

    # In an exchange Ann's side is checked as well: Ann already has a shift when Dai's starts.
    dai_shift = factories.make_shift(tree.grid_a2, starts_in=timedelta(days=6))
    dai_place = factories.make_assignment(dai_shift, cast.dai)
    busy = factories.make_shift(tree.grid_a, starts_in=timedelta(days=6, hours=1))
    factories.make_assignment(busy, cast.ann)
    other = factories.make_shift(tree.grid_a, starts_in=timedelta(days=8))
    other_place = factories.make_assignment(other, cast.ann)
    response = propose(client, cast.ann, other_place, cast.dai, to_assignment_id=dai_place.id)
    assert_problem(response, 409, "shift_overlap")
    assert swap_count() == 0


def test_one_open_request_per_place(client, cast) -> None:
    first = proposed(client, cast)
    response = client.post(
        API,
        json={"assignment_id": cast.place.id, "to_volunteer_id": cast.dai.id},
        headers=as_(cast.ann),
    )
    problem = assert_problem(response, 409, "swap_already_open")
    assert problem["title"] == "该排班已有进行中的换班申请"  # Chinese unless asked otherwise
    act(client, cast.bo, first, "accept")
    assert_problem(propose(client, cast.ann, cast.place, cast.dai), 409, "swap_already_open")
    assert act(client, cast.ann, first, "cancel").status_code == 200
    assert propose(client, cast.ann, cast.place, cast.dai).status_code == 201
    assert swap_count() == 2


@pytest.mark.parametrize("role", ["organiser", "staff", "admin"])
def test_managers_cannot_propose(client, cast, tree, role) -> None:
    user = factories.make_user(role, tree.city)
    response = client.post(
        API, json={"assignment_id": cast.place.id, "to_volunteer_id": cast.bo.id}, headers=as_(user)
    )
    assert_problem(response, 403, "forbidden")


def test_anonymous_callers_are_refused(client, cast) -> None:
    assert_problem(client.get(f"{API}/mine"), 401, "unauthorized")
    assert_problem(client.post(API, json={}), 401, "unauthorized")


# --- answering ---------------------------------------------------------------------------------


def test_only_the_volunteer_asked_accepts_or_declines(client, cast) -> None:
    swap_id = proposed(client, cast)
    assert_problem(act(client, cast.ann, swap_id, "accept"), 403, "not_swap_recipient")
    assert_problem(act(client, cast.ann, swap_id, "decline"), 403, "not_swap_recipient")
    # A stranger does not learn the request exists.
    assert_problem(act(client, cast.cai, swap_id, "accept"), 404, "swap_not_found")
    assert_problem(act(client, cast.organiser_a, swap_id, "accept"), 403, "forbidden")
    assert swap_status(swap_id) == "proposed"


def test_decline_with_a_reason_ends_the_request(client, cast) -> None:
    swap_id = proposed(client, cast)
    response = act(client, cast.bo, swap_id, "decline", reason="那天要上班")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "declined" and body["decision_reason"] == "那天要上班"
    assert body["decided_by"] == cast.bo.user_id
    assert_problem(act(client, cast.bo, swap_id, "accept"), 409, "invalid_swap_transition")
    assert_problem(act(client, cast.ann, swap_id, "cancel"), 409, "invalid_swap_transition")


def test_the_recipient_may_still_decline_after_accepting(client, cast) -> None:
    swap_id = accepted(client, cast)
    assert act(client, cast.bo, swap_id, "decline").get_json()["status"] == "declined"
    assert_problem(
        act(client, cast.organiser_a, swap_id, "approve"), 409, "invalid_swap_transition"
    )


def test_accepting_twice_is_409(client, cast) -> None:
    swap_id = accepted(client, cast)
    assert_problem(act(client, cast.bo, swap_id, "accept"), 409, "invalid_swap_transition")


def test_only_the_requester_cancels(client, cast) -> None:
    swap_id = proposed(client, cast)
    assert_problem(act(client, cast.bo, swap_id, "cancel"), 403, "not_swap_requester")
    response = act(client, cast.ann, swap_id, "cancel", reason="不用了")
    assert response.get_json()["status"] == "cancelled"
    assert response.get_json()["decided_by"] == cast.ann.user_id


def test_accepting_checks_the_recipients_rules_again(client, cast, tree) -> None:
    swap_id = proposed(client, cast)
    factories.make_assignment(
        factories.make_shift(tree.grid_a2, starts_in=timedelta(days=1)), cast.bo
    )
    assert_problem(act(client, cast.bo, swap_id, "accept"), 409, "shift_overlap")
    assert swap_status(swap_id) == "proposed"  # may still work out


def test_accepting_a_request_whose_shift_began_cancels_it(client, cast) -> None:
    swap_id = proposed(client, cast)
    cast.shift.starts_at = utcnow() - timedelta(minutes=5)
    db.session.flush()
    problem = assert_problem(
        act(client, cast.bo, swap_id, "accept"), 409, "swap_no_longer_possible"
    )
    assert problem["detail"] == "The shift has already started."
    # The cancellation is kept although the answer is an error.
    assert swap_status(swap_id) == "cancelled"


def test_bad_decision_bodies_are_422(client, cast) -> None:
    swap_id = accepted(client, cast)
    assert_problem(act(client, cast.organiser_a, swap_id, "reject"), 422, "validation_failed")
    response = act(client, cast.organiser_a, swap_id, "reject", reason="x" * 501)
    assert_problem(response, 422, "validation_failed")
    assert_problem(act(client, cast.bo, swap_id, "decline", extra=1), 422, "validation_failed")
    assert swap_status(swap_id) == "accepted"


# --- deciding ----------------------------------------------------------------------------------


def test_reject_with_a_reason_is_audited(client, cast) -> None:
    swap_id = accepted(client, cast)
    response = act(client, cast.organiser_a, swap_id, "reject", reason="波还在培训期")
    assert response.status_code == 200
    assert response.get_json()["status"] == "rejected"
    assert response.get_json()["decision_reason"] == "波还在培训期"
    assert places(cast.shift) == [
        (cast.ann.id, "assigned", "primary", "organiser", cast.place.queue_seq)
    ]
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "shift_swap.reject"))
    assert entry.before == {"status": "accepted"} and entry.after["reason"] == "波还在培训期"
    assert_problem(
        act(client, cast.organiser_a, swap_id, "approve"), 409, "invalid_swap_transition"
    )


def test_an_organiser_may_reject_before_the_recipient_answers_but_not_approve(client, cast) -> None:
    swap_id = proposed(client, cast)
    assert_problem(
        act(client, cast.organiser_a, swap_id, "approve"), 409, "invalid_swap_transition"
    )
    assert act(client, cast.organiser_a, swap_id, "reject", reason="不行").status_code == 200


def test_a_swap_outside_ones_area_is_not_found_and_changes_nothing(client, cast) -> None:
    swap_id = accepted(client, cast)
    for user in (cast.organiser_b, cast.organiser_a2):
        assert_problem(act(client, user, swap_id, "approve"), 404, "swap_not_found")
        assert_problem(act(client, user, swap_id, "reject", reason="不行"), 404, "swap_not_found")
        assert_problem(client.get(f"{API}/{swap_id}", headers=as_(user)), 404, "swap_not_found")
    assert_problem(act(client, cast.bo, swap_id, "approve"), 403, "forbidden")
    assert swap_status(swap_id) == "accepted"
    assert places(cast.shift)[0][1] == "assigned" and len(places(cast.shift)) == 1


def test_an_exchange_across_communities_needs_a_manager_of_both(client, cast, tree) -> None:
    # Bo (Ann's community) holds a place in community A2: Ann would patrol there.
    bo_place = factories.make_assignment(
        factories.make_shift(tree.grid_a2, starts_in=timedelta(days=3)), cast.bo
    )
    response = propose(client, cast.ann, cast.place, cast.bo, to_assignment_id=bo_place.id)
    swap_id = response.get_json()["id"]
    act(client, cast.bo, swap_id, "accept")
    for organiser in (cast.organiser_a, cast.organiser_a2):
        # Each sees it, names included (one of its shifts is theirs), but may not decide it.
        seen = client.get(f"{API}/{swap_id}", headers=as_(organiser))
        assert seen.status_code == 200
        assert (seen.get_json()["from_volunteer_name"], seen.get_json()["to_volunteer_name"]) == (
            "安",
            "波",
        )
        assert_problem(act(client, organiser, swap_id, "approve"), 403, "out_of_scope")
    assert act(client, cast.staff_a, swap_id, "approve").status_code == 200


def test_approval_checks_every_rule_again_and_leaves_the_request_open(client, cast, tree) -> None:
    swap_id = accepted(client, cast)
    clash = factories.make_assignment(
        factories.make_shift(tree.grid_a2, starts_in=timedelta(days=1, hours=1)), cast.bo
    )
    assert_problem(act(client, cast.organiser_a, swap_id, "approve"), 409, "shift_overlap")
    assert swap_status(swap_id) == "accepted"
    clash.status = "withdrawn"
    cast.bo.status = "suspended"
    db.session.flush()
    assert_problem(act(client, cast.organiser_a, swap_id, "approve"), 403, "volunteer_not_active")
    assert swap_status(swap_id) == "accepted"
    assert len(places(cast.shift)) == 1
    cast.bo.status = "active"
    db.session.flush()
    assert act(client, cast.organiser_a, swap_id, "approve").status_code == 200


def test_approval_of_a_request_whose_place_ended_cancels_it(client, cast) -> None:
    swap_id = accepted(client, cast)
    # Ended by a path that sends no signal (as a no-show recorded elsewhere might).
    cast.place.status = "absent"
    db.session.flush()
    problem = assert_problem(
        act(client, cast.organiser_a, swap_id, "approve"), 409, "swap_no_longer_possible"
    )
    assert problem["detail"] == "A place in this swap has ended."
    body = client.get(f"{API}/{swap_id}", headers=as_(cast.ann)).get_json()
    assert body["status"] == "cancelled" and body["decided_by"] == cast.organiser_a.id
    assert body["decision_reason"] == "换班涉及的排班已经结束。"  # system reasons shown translated
    assert [row[0] for row in places(cast.shift)] == [cast.ann.id]


@pytest.mark.parametrize("change", ["started", "cancelled"])
def test_approval_after_the_shift_began_or_was_cancelled_cancels_the_request(
    client, cast, change
) -> None:
    swap_id = accepted(client, cast)
    if change == "started":
        cast.shift.starts_at = utcnow() - timedelta(minutes=1)
    else:
        cast.shift.status = "cancelled"
    db.session.flush()
    assert_problem(
        act(client, cast.organiser_a, swap_id, "approve"), 409, "swap_no_longer_possible"
    )
    assert swap_status(swap_id) == "cancelled"
    assert len(places(cast.shift)) == 1


def test_withdrawing_the_place_cancels_its_open_requests(client, cast, tree) -> None:
    swap_id = accepted(client, cast)
    response = client.post(
        f"/api/v1/assignments/{cast.place.id}/withdraw", json={}, headers=as_(cast.ann)
    )
    assert response.status_code == 200, response.get_json()
    body = client.get(f"{API}/{swap_id}", headers=as_(cast.bo, **EN)).get_json()
    assert body["status"] == "cancelled"
    assert body["decision_reason"] == "A place in this swap ended before the swap was approved."


def test_approval_supersedes_other_open_requests_on_the_same_places(client, cast, tree) -> None:
    swap_id = accepted(client, cast)
    # Dai asks Ann to exchange Dai's place for the very place Ann is handing to Bo.
    dai_place = factories.make_assignment(
        factories.make_shift(tree.grid_a, starts_in=timedelta(days=4)), cast.dai
    )
    competing = propose(client, cast.dai, dai_place, cast.ann, to_assignment_id=cast.place.id)
    assert competing.status_code == 201, competing.get_json()
    competing_id = competing.get_json()["id"]

    assert act(client, cast.organiser_a, swap_id, "approve").status_code == 200
    assert swap_status(competing_id) == "cancelled"
    assert swap_status(swap_id) == "approved"


def test_approving_twice_is_409(client, cast) -> None:
    swap_id = accepted(client, cast)
    assert act(client, cast.organiser_a, swap_id, "approve").status_code == 200
    assert_problem(act(client, cast.staff_a, swap_id, "approve"), 409, "invalid_swap_transition")
    assert len(places(cast.shift)) == 2


# --- reading -----------------------------------------------------------------------------------


def test_one_request_is_seen_by_its_volunteers_and_managers_in_scope(client, cast, tree) -> None:
    swap_id = proposed(client, cast)
    for who in (cast.ann, cast.bo, cast.organiser_a, cast.staff_a):
        assert client.get(f"{API}/{swap_id}", headers=as_(who)).status_code == 200
    assert_problem(client.get(f"{API}/{swap_id}", headers=as_(cast.cai)), 404, "swap_not_found")
    assert_problem(
        client.get(f"{API}/{swap_id + 1000}", headers=as_(cast.ann)), 404, "swap_not_found"
    )


def test_my_requests_sent_and_received_paginated(client, cast, tree) -> None:
    later = [
        factories.make_assignment(
            factories.make_shift(tree.grid_a, starts_in=timedelta(days=d)), cast.ann
        )
        for d in (3, 5)
    ]
    sent = [proposed(client, cast)] + [
        propose(client, cast.ann, place, cast.dai).get_json()["id"] for place in later
    ]
    bo_place = factories.make_assignment(
        factories.make_shift(tree.grid_a_east, starts_in=timedelta(days=7)), cast.bo
    )
    received = propose(client, cast.bo, bo_place, cast.ann).get_json()["id"]
    act(client, cast.ann, sent[2], "cancel")

    def ids(query: str, who: Volunteer = cast.ann) -> list[int]:
        response = client.get(f"{API}/mine{query}", headers=as_(who))
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids("") == [received, *reversed(sent)]
    assert ids("?box=sent") == list(reversed(sent))
    assert ids("?box=received") == [received]
    assert ids("?status=cancelled") == [sent[2]]
    assert ids("", cast.bo) == [received, sent[0]]
    assert ids("", cast.far) == []

    first = client.get(f"{API}/mine?limit=3", headers=as_(cast.ann)).get_json()
    assert [item["id"] for item in first["items"]] == [received, sent[2], sent[1]]
    rest = client.get(
        f"{API}/mine?limit=3&cursor={first['next_cursor']}", headers=as_(cast.ann)
    ).get_json()
    assert [item["id"] for item in rest["items"]] == [sent[0]] and rest["next_cursor"] is None

    assert_problem(
        client.get(f"{API}/mine?box=all", headers=as_(cast.ann)), 422, "validation_failed"
    )
    assert_problem(
        client.get(f"{API}/mine?cursor=xyz", headers=as_(cast.ann)), 422, "validation_failed"
    )
    assert_problem(client.get(f"{API}/mine", headers=as_(cast.organiser_a)), 403, "forbidden")


def test_awaiting_approval_lists_what_the_manager_may_decide(client, cast, tree) -> None:
    waiting = accepted(client, cast)
    # Proposed only: not yet for the organiser.
    other = factories.make_assignment(
        factories.make_shift(tree.grid_a, starts_in=timedelta(days=3)), cast.ann
    )
    propose(client, cast.ann, other, cast.bo)
    # An exchange reaching into community A2: only for a manager of both communities.
    dai_place = factories.make_assignment(
        factories.make_shift(tree.grid_a2, starts_in=timedelta(days=5)), cast.dai
    )
    mine = factories.make_assignment(
        factories.make_shift(tree.grid_a, starts_in=timedelta(days=8)), cast.ann
    )
    across = propose(client, cast.ann, mine, cast.dai, to_assignment_id=dai_place.id).get_json()[
        "id"
    ]
    act(client, cast.dai, across, "accept")
    # Accepted, but its shift has begun since: nothing left to decide.
    begun = factories.make_shift(tree.grid_a, starts_in=timedelta(days=9))
    begun_place = factories.make_assignment(begun, cast.ann)
    stale = propose(client, cast.ann, begun_place, cast.bo).get_json()["id"]
    act(client, cast.bo, stale, "accept")
    begun.starts_at = utcnow() - timedelta(minutes=1)
    db.session.flush()

    def ids(user: User, query: str = "") -> list[int]:
        response = client.get(f"{API}/awaiting-approval{query}", headers=as_(user))
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids(cast.organiser_a) == [waiting]
    assert ids(cast.staff_a) == [waiting, across]
    assert ids(cast.organiser_a2) == []
    assert ids(cast.organiser_b) == []
    page = client.get(f"{API}/awaiting-approval?limit=1", headers=as_(cast.staff_a)).get_json()
    assert [item["id"] for item in page["items"]] == [waiting] and page["next_cursor"]
    assert_problem(client.get(f"{API}/awaiting-approval", headers=as_(cast.ann)), 403, "forbidden")


# --- races -------------------------------------------------------------------------------------


def at_once(
    app: Flask, calls: list[tuple[str, dict[str, Any], dict[str, str]]]
) -> list[tuple[int, Any, Any]]:
    """POST each (path, json, headers) at once; (status, json, headers) per call, in order."""
    responses = races.at_once(app, [("POST", path, body, headers) for path, body, headers in calls])
    return [(response.status_code, response.get_json(), response.headers) for response in responses]


def committed_cast(app: Flask) -> dict[str, Any]:
    """Ann's place on a shift, Bo and Cai in her grid, two organisers: committed for race tests."""
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        district = factories.make_area(AreaLevel.DISTRICT, city)
        subdistrict = factories.make_area(AreaLevel.SUBDISTRICT, district)
        community = factories.make_area(AreaLevel.COMMUNITY, subdistrict)
        grid = factories.make_area(
            AreaLevel.GRID, community, boundary=factories.square(109.84, 40.65)
        )
        ann, bo, cai = (
            factories.make_volunteer(grid, real_name=name) for name in ("安", "波", "蔡")
        )
        shift = factories.make_shift(grid)
        place = factories.make_assignment(shift, ann)
        organisers = [factories.make_user("organiser", community) for _ in range(2)]
        setup = {
            "ann": factories.headers_for(ann.user),
            "bo": factories.headers_for(bo.user),
            "organisers": [factories.headers_for(user) for user in organisers],
            "bo_id": bo.id,
            "cai_id": cai.id,
            "place_id": place.id,
            "shift_id": shift.id,
        }
        db.session.commit()
        return setup


@pytest.mark.committing
def test_two_proposals_of_one_place_at_once_give_one_request(app: Flask) -> None:
    setup = committed_cast(app)
    calls = [
        (API, {"assignment_id": setup["place_id"], "to_volunteer_id": to}, setup["ann"])
        for to in (setup["bo_id"], setup["cai_id"])
    ]
    results = at_once(app, calls)
    assert sorted(status for status, *_ in results) == [201, 409], results
    assert next(body for status, body, _ in results if status == 409)["code"] == "swap_already_open"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SwapRequest)) == 1
        db.session.remove()


@pytest.mark.committing
def test_two_organisers_approving_at_once_carry_the_swap_out_once(app: Flask) -> None:
    setup = committed_cast(app)
    client = app.test_client()
    body = {"assignment_id": setup["place_id"], "to_volunteer_id": setup["bo_id"]}
    swap_id = client.post(API, json=body, headers=setup["ann"]).get_json()["id"]
    assert client.post(f"{API}/{swap_id}/accept", headers=setup["bo"]).status_code == 200

    results = at_once(app, [(f"{API}/{swap_id}/approve", {}, h) for h in setup["organisers"]])

    assert sorted(status for status, *_ in results) == [200, 409], results
    assert (
        next(body for status, body, _ in results if status == 409)["code"]
        == "invalid_swap_transition"
    )
    with app.app_context():
        rows = db.session.execute(
            sa.select(Assignment.volunteer_id, Assignment.status).where(
                Assignment.shift_id == setup["shift_id"]
            )
        ).all()
        assert sorted(status for _, status in rows) == ["assigned", "swapped"]
        shift = db.session.get(Shift, setup["shift_id"])
        assert shift.primary_count == 1
        db.session.remove()
