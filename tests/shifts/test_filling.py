"""Filling shifts through the API: sign-up, waitlist, withdrawal, A/B promotion, assignment, invitations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.audit import AuditEntry
from core.extensions import db
from grids.models import AreaLevel
from shifts.models import Assignment, Shift
from tests import factories
from tests.problems import EN, assert_problem
from tests.signal_events import events  # noqa: F401  (fixture)

API = "/api/v1"


def as_(volunteer_or_user: Any) -> dict[str, str]:
    user = getattr(volunteer_or_user, "user", volunteer_or_user)
    return {**factories.headers_for(user), **EN}


def sign_up(client: Any, volunteer: Any, shift: Shift, **body: Any) -> Any:
    return client.post(f"{API}/shifts/{shift.id}/signup", json=body, headers=as_(volunteer))


def counts(shift_id: int) -> tuple[int, int]:
    shift = db.session.get(Shift, shift_id)
    db.session.refresh(shift)
    return shift.primary_count, shift.backup_count


def statuses(shift_id: int) -> dict[int, tuple[str, str]]:
    rows = db.session.execute(
        sa.select(Assignment.volunteer_id, Assignment.status, Assignment.role).where(
            Assignment.shift_id == shift_id
        )
    )
    return {volunteer_id: (status, role) for volunteer_id, status, role in rows}


def volunteers(grid: Any, n: int, **kwargs: Any) -> list[Any]:
    return [factories.make_volunteer(grid, **kwargs) for _ in range(n)]


# --- sign-up -----------------------------------------------------------------------------------


def test_sign_up_takes_a_place_and_tells_listeners(client, tree, events) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=2)
    volunteer = factories.make_volunteer(tree.grid_a)

    response = sign_up(client, volunteer, shift)

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "assigned" and body["role"] == "primary" and body["source"] == "signup"
    assert body["waitlist_position"] is None
    assert body["shift"]["primary_count"] == 1 and body["shift"]["open_places"] == 1
    assert body["shift"]["starts_at"].endswith("+00:00")
    assert counts(shift.id) == (1, 0)
    [created] = events.named("assignment_created")
    assert created["volunteer_id"] == volunteer.id and created["role"] == "primary"


def test_a_full_shift_puts_later_volunteers_on_the_waitlist_in_order(client, tree, events) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1)
    first, second, third = volunteers(tree.grid_a, 3)

    assert sign_up(client, first, shift).get_json()["status"] == "assigned"
    waiting = [sign_up(client, volunteer, shift).get_json() for volunteer in (second, third)]

    assert [body["status"] for body in waiting] == ["waitlisted", "waitlisted"]
    assert [body["waitlist_position"] for body in waiting] == [1, 2]
    assert waiting[1]["shift"]["waitlist_count"] == 2
    assert counts(shift.id) == (1, 0)
    assert len(events.named("assignment_created")) == 1


def test_backup_sign_up_uses_backup_places_and_refuses_when_they_are_taken(client, tree) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1, backup_slots=1)
    first, second = volunteers(tree.grid_a, 2)

    body = sign_up(client, first, shift, role="backup").get_json()
    refused = sign_up(client, second, shift, role="backup")

    assert body["status"] == "assigned" and body["role"] == "backup"
    assert_problem(refused, 409, "backup_places_full")
    assert counts(shift.id) == (0, 1)
    assert second.id not in statuses(shift.id)


@pytest.mark.parametrize("status", ["pending", "suspended", "retired", "rejected"])
def test_only_active_volunteers_sign_up(client, tree, status) -> None:
    shift = factories.make_shift(tree.grid_a)
    volunteer = factories.make_volunteer(tree.grid_a, status=status)

    assert_problem(sign_up(client, volunteer, shift), 403, "volunteer_not_active")
    assert counts(shift.id) == (0, 0) and statuses(shift.id) == {}


def test_double_sign_up_is_refused_also_from_the_waitlist(client, tree) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1)
    assigned, waiting = volunteers(tree.grid_a, 2)
    sign_up(client, assigned, shift)
    sign_up(client, waiting, shift)

    assert_problem(sign_up(client, assigned, shift), 409, "already_on_shift")
    assert_problem(sign_up(client, waiting, shift, role="backup"), 409, "already_on_shift")
    assert counts(shift.id) == (1, 0)
    assert len(statuses(shift.id)) == 2


def test_overlapping_shifts_and_too_little_rest_are_refused(client, tree, app) -> None:
    rest = app.config["SHIFT_MIN_REST_MINUTES"]
    evening = factories.make_shift(tree.grid_a, starts_in=timedelta(days=1), hours=2)
    overlapping = factories.make_shift(tree.grid_a_east, starts_in=timedelta(days=1, hours=1))
    too_soon = factories.make_shift(
        tree.grid_a, starts_in=timedelta(days=1, hours=2, minutes=rest - 1)
    )
    rested = factories.make_shift(tree.grid_a, starts_in=timedelta(days=1, hours=2, minutes=rest))
    volunteer = factories.make_volunteer(tree.grid_a)
    assert sign_up(client, volunteer, evening).status_code == 201

    overlap = assert_problem(sign_up(client, volunteer, overlapping), 409, "shift_overlap")
    short_rest = assert_problem(sign_up(client, volunteer, too_soon), 409, "rest_too_short")

    assert overlap["errors"]["conflicting_shift_id"] == [str(evening.id)]
    assert short_rest["errors"]["conflicting_shift_id"] == [str(evening.id)]
    assert sign_up(client, volunteer, rested).status_code == 201
    assert statuses(overlapping.id) == {} and statuses(too_soon.id) == {}


def test_started_and_cancelled_shifts_take_no_sign_ups(client, tree) -> None:
    started = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-5))
    cancelled = factories.make_shift(tree.grid_a)
    cancelled.status = "cancelled"
    db.session.flush()
    volunteer = factories.make_volunteer(tree.grid_a)

    assert_problem(sign_up(client, volunteer, started), 409, "shift_started")
    assert_problem(sign_up(client, volunteer, cancelled), 409, "shift_cancelled")


def test_shifts_of_another_city_and_other_roles_are_refused(client, tree) -> None:
    other_city = factories.make_area(AreaLevel.CITY)
    district = factories.make_area(AreaLevel.DISTRICT, other_city)
    subdistrict = factories.make_area(AreaLevel.SUBDISTRICT, district)
    community = factories.make_area(AreaLevel.COMMUNITY, subdistrict)
    far_grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(110.5, 41.0))
    far_shift = factories.make_shift(far_grid)
    volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    other_district_shift = factories.make_shift(tree.grid_b)

    assert_problem(sign_up(client, volunteer, far_shift), 404, "shift_not_found")
    assert sign_up(client, volunteer, other_district_shift).status_code == 201
    response = client.post(
        f"{API}/shifts/{other_district_shift.id}/signup", json={}, headers=as_(organiser)
    )
    assert_problem(response, 403, "forbidden")
    assert_problem(sign_up(client, volunteer, factories.make_shift(tree.grid_a), role="boss"), 422,
                   "validation_failed")
    response = client.post(f"{API}/shifts/2147483647/signup", json={}, headers=as_(volunteer))
    assert_problem(response, 404, "shift_not_found")
    assert statuses(far_shift.id) == {}


# --- withdrawal and promotion --------------------------------------------------------------------


def withdraw(client: Any, who: Any, assignment_id: int, **body: Any) -> Any:
    return client.post(f"{API}/assignments/{assignment_id}/withdraw", json=body, headers=as_(who))


def test_withdrawal_frees_the_place_for_the_first_on_the_waitlist(client, tree, events) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1)
    holder, first_waiting, second_waiting = volunteers(tree.grid_a, 3)
    held = sign_up(client, holder, shift).get_json()
    first = sign_up(client, first_waiting, shift).get_json()
    second = sign_up(client, second_waiting, shift).get_json()

    response = withdraw(client, holder, held["id"], reason="家里有事")

    assert response.status_code == 200
    assert response.get_json()["status"] == "withdrawn"
    assert response.get_json()["late_withdrawal"] is False
    assert statuses(shift.id)[first_waiting.id] == ("assigned", "primary")
    assert statuses(shift.id)[second_waiting.id] == ("waitlisted", "primary")
    assert counts(shift.id) == (1, 0)
    [promoted] = events.named("waitlist_promoted")
    assert promoted["assignment_id"] == first["id"]
    [cancelled] = events.named("assignment_cancelled")
    assert cancelled["status"] == "withdrawn" and cancelled["late"] is False
    now = client.get(f"{API}/assignments/{second['id']}", headers=as_(second_waiting)).get_json()
    assert now["waitlist_position"] == 1


def test_a_primary_dropping_out_promotes_the_first_backup(client, tree, events) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1, backup_slots=2)
    primary, backup_1, backup_2, waiting = volunteers(tree.grid_a, 4)
    held = sign_up(client, primary, shift).get_json()
    first_backup = sign_up(client, backup_1, shift, role="backup").get_json()
    sign_up(client, backup_2, shift, role="backup")
    sign_up(client, waiting, shift)

    assert withdraw(client, primary, held["id"]).status_code == 200

    assert statuses(shift.id)[backup_1.id] == ("assigned", "primary")
    assert statuses(shift.id)[backup_2.id] == ("assigned", "backup")
    assert statuses(shift.id)[waiting.id] == ("waitlisted", "primary")
    assert counts(shift.id) == (1, 1)
    [promoted] = events.named("backup_promoted")
    assert promoted["assignment_id"] == first_backup["id"]
    assert promoted["replaced_volunteer_id"] == primary.id
    assert events.named("waitlist_promoted") == []


def test_waitlist_promotion_passes_over_who_can_no_longer_come(client, tree, events) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1)
    holder, suspended_later, booked_elsewhere, free = volunteers(tree.grid_a, 4)
    held = sign_up(client, holder, shift).get_json()
    for volunteer in (suspended_later, booked_elsewhere, free):
        sign_up(client, volunteer, shift)
    suspended_later.status = "suspended"
    clashing = factories.make_shift(tree.grid_a_east, starts_in=timedelta(days=1, minutes=30))
    factories.make_assignment(clashing, booked_elsewhere)

    withdraw(client, holder, held["id"])

    assert statuses(shift.id)[free.id] == ("assigned", "primary")
    assert statuses(shift.id)[suspended_later.id][0] == "waitlisted"
    assert statuses(shift.id)[booked_elsewhere.id][0] == "waitlisted"
    assert [event["volunteer_id"] for event in events.named("waitlist_promoted")] == [free.id]


def test_volunteers_withdraw_alone_only_before_the_cut_off(client, tree, app) -> None:
    cutoff = app.config["SHIFT_WITHDRAW_CUTOFF_MINUTES"]
    soon = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=cutoff - 10))
    volunteer = factories.make_volunteer(tree.grid_a)
    held = sign_up(client, volunteer, soon).get_json()
    organiser = factories.make_user("organiser", tree.community_a)

    assert_problem(withdraw(client, volunteer, held["id"]), 409, "withdrawal_cutoff_passed")
    assert statuses(soon.id)[volunteer.id][0] == "assigned"

    response = withdraw(client, organiser, held["id"], reason="volunteer phoned in sick")
    assert response.status_code == 200
    assert response.get_json()["late_withdrawal"] is True
    assert counts(soon.id) == (0, 0)
    assert_problem(withdraw(client, organiser, held["id"]), 409, "assignment_not_live")


def test_nobody_withdraws_another_volunteers_place(client, tree) -> None:
    shift = factories.make_shift(tree.grid_a)
    owner, other = volunteers(tree.grid_a, 2)
    held = sign_up(client, owner, shift).get_json()
    outsider = factories.make_user("organiser", tree.community_b)

    assert_problem(withdraw(client, other, held["id"]), 404, "assignment_not_found")
    assert_problem(withdraw(client, outsider, held["id"]), 404, "assignment_not_found")
    assert_problem(
        client.get(f"{API}/assignments/{held['id']}", headers=as_(other)), 404, "assignment_not_found"
    )
    assert statuses(shift.id)[owner.id][0] == "assigned"


# --- organisers --------------------------------------------------------------------------------


def place(client: Any, organiser: Any, shift: Shift, action: str, volunteer: Any, role: str = "primary") -> Any:
    return client.post(
        f"{API}/shifts/{shift.id}/{action}",
        json={"volunteer_id": volunteer.id, "role": role},
        headers=as_(organiser),
    )


def test_organiser_assigns_inside_their_area_and_never_overbooks(client, tree, events) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    shift = factories.make_shift(tree.grid_a, max_headcount=1)
    waiting, extra = volunteers(tree.grid_a, 2)
    holder = factories.make_volunteer(tree.grid_a_east)
    sign_up(client, holder, shift)
    sign_up(client, waiting, shift)

    assert_problem(place(client, organiser, shift, "assign", waiting), 409, "shift_full")
    withdraw(client, holder, statuses_id(shift.id, holder.id))
    # The waitlist took the place; the organiser moves another volunteer in as backup instead.
    assert statuses(shift.id)[waiting.id] == ("assigned", "primary")
    response = place(client, organiser, shift, "assign", extra, role="backup")
    assert_problem(response, 409, "backup_places_full")

    shift.backup_slots = 1
    db.session.flush()
    response = place(client, organiser, shift, "assign", extra, role="backup")
    assert response.status_code == 201
    assert response.get_json()["source"] == "organiser"
    assert counts(shift.id) == (1, 1)
    audit = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "shift.assign")).all()
    assert len(audit) == 1 and audit[0].actor_id == organiser.id


def statuses_id(shift_id: int, volunteer_id: int) -> int:
    return db.session.scalar(
        sa.select(Assignment.id).where(
            Assignment.shift_id == shift_id, Assignment.volunteer_id == volunteer_id
        )
    )


def test_organisers_act_only_inside_their_subtree(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    own_shift = factories.make_shift(tree.grid_a)
    foreign_shift = factories.make_shift(tree.grid_b)
    own_volunteer = factories.make_volunteer(tree.grid_a)
    foreign_volunteer = factories.make_volunteer(tree.grid_b)
    volunteer = factories.make_volunteer(tree.grid_a)

    for action in ("assign", "invite"):
        assert_problem(place(client, organiser, foreign_shift, action, own_volunteer), 404, "shift_not_found")
        assert_problem(place(client, volunteer, own_shift, action, own_volunteer), 403, "forbidden")
        # A volunteer outside the organiser's area answers exactly as an id that does not exist.
        foreign = place(client, organiser, own_shift, action, foreign_volunteer)
        unknown = client.post(
            f"{API}/shifts/{own_shift.id}/{action}", json={"volunteer_id": 2147483647}, headers=as_(organiser)
        )
        assert assert_problem(unknown, 422, "validation_failed")["errors"] == {"volunteer_id": ["Unknown volunteer."]}
        assert foreign.get_data() == unknown.get_data()
    assert statuses(own_shift.id) == {} and statuses(foreign_shift.id) == {}


def test_invitation_is_accepted_or_declined_by_the_invited_volunteer(client, tree, events) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    shift = factories.make_shift(tree.grid_a, max_headcount=1)
    invited, declining, someone_else = volunteers(tree.grid_a, 3)

    invitation = place(client, organiser, shift, "invite", invited).get_json()
    second = place(client, organiser, shift, "invite", declining).get_json()
    assert invitation["status"] == "invited" and counts(shift.id) == (0, 0)
    assert [event["volunteer_id"] for event in events.named("invitation_sent")] == [invited.id, declining.id]

    url = f"{API}/assignments/{invitation['id']}"
    assert_problem(client.post(f"{url}/accept", headers=as_(someone_else)), 404, "assignment_not_found")
    accepted = client.post(f"{url}/accept", headers=as_(invited))
    assert accepted.status_code == 200 and accepted.get_json()["status"] == "assigned"
    assert_problem(client.post(f"{url}/accept", headers=as_(invited)), 409, "not_an_invitation")
    assert_problem(
        client.post(f"{API}/assignments/{second['id']}/accept", headers=as_(declining)), 409, "shift_full"
    )
    declined = client.post(
        f"{API}/assignments/{second['id']}/decline", json={"reason": "出差"}, headers=as_(declining)
    )
    assert declined.get_json()["status"] == "declined"
    assert counts(shift.id) == (1, 0)
    assert [event["status"] for event in events.named("assignment_cancelled")] == ["declined"]


def test_removal_and_no_show_pass_the_place_on(client, tree, events) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    future = factories.make_shift(tree.grid_a, max_headcount=1)
    running = factories.make_shift(
        tree.grid_a_east, starts_in=timedelta(minutes=-20), max_headcount=1, backup_slots=1
    )
    removed, waiting = volunteers(tree.grid_a, 2)
    no_show, backup = volunteers(tree.grid_a2, 2)
    organiser_a2 = factories.make_user("organiser", tree.subdistrict_a)
    held = factories.make_assignment(future, removed)
    factories.make_assignment(future, waiting, status="waitlisted")
    absent = factories.make_assignment(running, no_show)
    factories.make_assignment(running, backup, role="backup")

    url = f"{API}/assignments/{held.id}"
    assert_problem(client.post(f"{url}/remove", json={}, headers=as_(organiser)), 422, "validation_failed")
    assert_problem(client.post(f"{url}/absent", json={}, headers=as_(organiser)), 409, "shift_not_started")
    response = client.post(f"{url}/remove", json={"reason": "资格复核"}, headers=as_(organiser))
    assert response.get_json()["status"] == "removed"
    assert statuses(future.id)[waiting.id] == ("assigned", "primary")

    response = client.post(f"{API}/assignments/{absent.id}/absent", json={}, headers=as_(organiser_a2))
    assert response.status_code == 200 and response.get_json()["status"] == "absent"
    assert statuses(running.id)[backup.id] == ("assigned", "primary")
    assert counts(running.id) == (1, 0)
    assert [event["volunteer_id"] for event in events.named("backup_promoted")] == [backup.id]
    volunteer_try = client.post(f"{API}/assignments/{absent.id}/absent", json={}, headers=as_(backup))
    assert_problem(volunteer_try, 403, "forbidden")


def test_suspension_ends_future_places_and_passes_them_on(client, tree, events) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    shift = factories.make_shift(tree.grid_a, max_headcount=1, backup_slots=1)
    waitlist_shift = factories.make_shift(tree.grid_a, starts_in=timedelta(days=3), max_headcount=1)
    running = factories.make_shift(tree.grid_a_east, starts_in=timedelta(minutes=-30))
    volunteer, backup, holder = volunteers(tree.grid_a, 3)
    factories.make_assignment(shift, volunteer)
    factories.make_assignment(shift, backup, role="backup")
    factories.make_assignment(waitlist_shift, holder)
    factories.make_assignment(waitlist_shift, volunteer, status="waitlisted")
    factories.make_assignment(running, volunteer)

    response = client.post(
        f"{API}/volunteers/{volunteer.id}/suspend", json={"reason": "违反纪律"}, headers=as_(organiser)
    )

    assert response.status_code == 200
    assert statuses(shift.id)[volunteer.id] == ("removed", "primary")
    assert statuses(shift.id)[backup.id] == ("assigned", "primary")
    assert statuses(waitlist_shift.id)[volunteer.id][0] == "removed"
    # A shift already under way is left to the organiser (and to no-show handling).
    assert statuses(running.id)[volunteer.id][0] == "assigned"
    assert counts(shift.id) == (1, 0)
    assert [event["volunteer_id"] for event in events.named("backup_promoted")] == [backup.id]


def test_a_retried_sign_up_with_the_same_key_counts_once(client, tree) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1, backup_slots=1)
    volunteer = factories.make_volunteer(tree.grid_a)
    headers = {**as_(volunteer), "Idempotency-Key": "5b2d0a7e-signup-1"}
    url = f"{API}/shifts/{shift.id}/signup"

    first = client.post(url, json={}, headers=headers)
    replay = client.post(url, json={}, headers=headers)
    different = client.post(url, json={"role": "backup"}, headers=headers)

    assert first.status_code == replay.status_code == 201
    assert replay.get_json() == first.get_json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert_problem(different, 409, "idempotency_key_reused")
    assert counts(shift.id) == (1, 0) and len(statuses(shift.id)) == 1
