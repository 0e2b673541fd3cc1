"""Planning one shift through the API: create, read, edit, cancel; scope, roles, refusals, signals, audit."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core.audit import AuditEntry
from core.extensions import db
from shifts.models import Assignment, Shift
from tests import factories
from tests.problems import EN, assert_problem
from tests.signal_events import events  # noqa: F401  (fixture)

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")


class People:
    def __init__(self, tree: Any) -> None:
        self.organiser_a = factories.make_user("organiser", tree.community_a)
        self.organiser_b = factories.make_user("organiser", tree.community_b)
        self.staff_a = factories.make_user("staff", tree.district_a)
        self.admin = factories.make_user("admin", tree.city)
        self.volunteer_a = factories.make_volunteer(tree.grid_a)
        self.volunteer_a2 = factories.make_volunteer(tree.grid_a)


@pytest.fixture
def people(tree: Any) -> People:
    return People(tree)


def as_(user: Any, **extra: str) -> dict[str, str]:
    user = getattr(user, "user", user)
    return {**factories.headers_for(user), **EN, **extra}


def local(days: int = 2, hour: int = 19, minute: int = 0) -> str:
    """A wall-clock time in Shanghai, ``days`` from today, with its offset (+08:00)."""
    day = datetime.now(SHANGHAI).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), SHANGHAI).isoformat()


def in_utc(text: str) -> str:
    """How the API writes the instant ``text``: in UTC."""
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()


def body(grid: Any, **changes: Any) -> dict[str, Any]:
    data = {
        "grid_id": grid.id, "starts_at": local(2, 19), "ends_at": local(2, 21),
        "title": "夜间巡逻", "max_headcount": 3,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def count(model: type, *where: Any) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def fresh(shift: Shift) -> Shift:
    db.session.refresh(shift)
    return shift


def state(shift: Shift) -> dict[str, Any]:
    shift = fresh(shift)
    return {
        "times": (shift.starts_at, shift.ends_at), "title": shift.title, "status": shift.status,
        "max": shift.max_headcount, "backups": shift.backup_slots, "detached": shift.detached,
        "counts": (shift.primary_count, shift.backup_count),
        "places": sorted(
            db.session.execute(
                sa.select(Assignment.volunteer_id, Assignment.status).where(Assignment.shift_id == shift.id)
            ).tuples()
        ),
        "audits": count(AuditEntry, AuditEntry.target_type == "shift", AuditEntry.target_id == str(shift.id)),
    }


# --- create ------------------------------------------------------------------------------------------


def test_an_organiser_plans_a_shift_in_local_time(client, tree, people) -> None:
    response = client.post(
        f"{API}/shifts",
        json=body(
            tree.grid_a, instructions="  带好手电  ", meeting_point="东门岗亭", min_headcount=2,
            backup_slots=1, required_kinds=[{"kind": "volunteer_police", "minimum": 1}],
        ),
        headers=as_(people.organiser_a),
    )
    assert response.status_code == 201, response.get_json()
    shown = response.get_json()
    assert shown["starts_at"] == in_utc(local(2, 19)) and shown["starts_at"].endswith("+00:00")
    assert shown["ends_at"] == in_utc(local(2, 21))
    assert (shown["timezone"], shown["grid_id"], shown["status"]) == ("Asia/Shanghai", tree.grid_a.id, "scheduled")
    assert (shown["instructions"], shown["meeting_point"]) == ("带好手电", "东门岗亭")
    assert (shown["min_headcount"], shown["max_headcount"], shown["backup_slots"]) == (2, 3, 1)
    assert shown["required_kinds"] == [{"kind": "volunteer_police", "minimum": 1, "assigned": 0, "met": False}]
    assert shown["unmet_kinds"] == ["volunteer_police"] and shown["series_id"] is None
    stored = db.session.get(Shift, shown["id"])
    assert stored.starts_at == datetime.fromisoformat(local(2, 19))
    assert stored.created_by == people.organiser_a.id
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.target_id == str(stored.id)))
    assert (entry.action, entry.actor_id, entry.area_path) == ("shift.create", people.organiser_a.id, tree.grid_a.path)

    fetched = client.get(f"{API}/shifts/{stored.id}", headers=as_(people.volunteer_a))
    assert fetched.status_code == 200 and fetched.get_json() == shown


def test_defaults_staff_and_admin_may_plan_too(client, tree, people) -> None:
    for user in (people.staff_a, people.admin):
        response = client.post(f"{API}/shifts", json=body(tree.grid_a), headers=as_(user))
        assert response.status_code == 201
        shown = response.get_json()
        assert (shown["min_headcount"], shown["backup_slots"], shown["required_kinds"]) == (1, 0, [])
        assert shown["instructions"] is None and shown["meeting_point"] is None


def test_a_given_time_zone_and_any_offset_are_respected(client, tree, people) -> None:
    response = client.post(
        f"{API}/shifts", json=body(tree.grid_a, timezone="Asia/Urumqi"), headers=as_(people.organiser_a)
    )
    assert response.status_code == 201
    shown = response.get_json()
    assert shown["timezone"] == "Asia/Urumqi"
    assert shown["starts_at"] == in_utc(local(2, 19))  # the instant given; the zone is the shift's clock

    aware_start = datetime.fromisoformat(local(3, 12)).astimezone(UTC).replace(tzinfo=None)
    response = client.post(
        f"{API}/shifts",
        json=body(tree.grid_a, starts_at=f"{aware_start.isoformat()}Z", ends_at=f"{(aware_start + timedelta(hours=2)).isoformat()}z"),
        headers=as_(people.organiser_a),
    )
    assert response.status_code == 201
    assert response.get_json()["starts_at"] == f"{aware_start.isoformat()}+00:00"


def test_a_time_without_an_offset_is_refused(client, tree, people) -> None:
    naive = local(2, 19).removesuffix("+08:00")
    response = client.post(f"{API}/shifts", json=body(tree.grid_a, starts_at=naive), headers=as_(people.organiser_a))
    assert assert_problem(response, 422, "validation_failed")["errors"] == {
        "starts_at": ["Datetime must have a time zone offset."]
    }
    response = client.post(f"{API}/shifts", json=body(tree.grid_a, starts_at=naive), headers=factories.headers_for(people.organiser_a))
    assert assert_problem(response, 422, "validation_failed")["errors"] == {"starts_at": ["日期时间必须带时区偏移。"]}
    assert count(Shift) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ends_at": local(2, 19)}, "ends_at"),
        ({"ends_at": local(2, 18)}, "ends_at"),
        ({"ends_at": local(3, 7, 1)}, "ends_at"),  # 12 h 1 min
        ({"starts_at": local(-1, 19), "ends_at": local(-1, 21)}, "starts_at"),
        ({"starts_at": local(800, 19), "ends_at": local(800, 21)}, "starts_at"),
        ({"starts_at": "2150-01-01T19:00:00+08:00", "ends_at": "2150-01-01T21:00:00+08:00"}, "starts_at"),
        ({"ends_at": local(2, 21).removesuffix("+08:00")}, "ends_at"),
        ({"ends_at": local(2, 21).replace("T", " ")}, "ends_at"),  # RFC 3339 needs the T
        ({"min_headcount": 4}, "min_headcount"),
        ({"max_headcount": 101, "min_headcount": 1}, "max_headcount"),
        ({"max_headcount": 0}, "max_headcount"),
        ({"backup_slots": 101}, "backup_slots"),
        ({"required_kinds": [{"kind": "no_such_kind", "minimum": 1}]}, "required_kinds"),
        ({"required_kinds": [{"kind": "volunteer_police", "minimum": 4}]}, "required_kinds"),
        ({"required_kinds": [{"kind": "volunteer_police", "minimum": 0}]}, "required_kinds"),
        ({"required_kinds": [{"kind": "volunteer_police", "minimum": 1}] * 2}, "required_kinds"),
        (
            {"required_kinds": [{"kind": "volunteer_police", "minimum": 2}, {"kind": "alley_steward", "minimum": 2}]},
            "required_kinds",
        ),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"title": "   "}, "title"),
        ({"status": "cancelled"}, "status"),  # no mass assignment
        ({"grid_id": 2**31 + 5}, "grid_id"),
    ],
)
def test_bad_input_is_422_and_writes_nothing(client, tree, people, changes, field) -> None:
    response = client.post(f"{API}/shifts", json=body(tree.grid_a, **changes), headers=as_(people.organiser_a))
    problem = assert_problem(response, 422, "validation_failed")
    assert field in problem["errors"], problem
    assert count(Shift) == 0 and count(AuditEntry) == 0


def test_a_grid_that_is_not_a_grid_or_unknown_is_422(client, tree, people) -> None:
    for grid_id in (tree.community_a.id, 999_999):
        response = client.post(f"{API}/shifts", json=body(tree.grid_a, grid_id=grid_id), headers=as_(people.admin))
        assert assert_problem(response, 422, "validation_failed")["errors"] == {"grid_id": ["Not a grid."]}
    assert count(Shift) == 0


def test_messages_are_chinese_by_default(client, tree, people) -> None:
    headers = factories.headers_for(people.organiser_a)
    response = client.post(
        f"{API}/shifts", json=body(tree.grid_a, ends_at=local(3, 8)), headers=headers
    )
    assert assert_problem(response, 422, "validation_failed")["errors"] == {"ends_at": ["班次时长不能超过 12 小时。"]}


def test_refused_outside_the_subtree_and_for_wrong_roles(client, tree, people) -> None:
    for user in (people.organiser_a, people.staff_a):
        response = client.post(f"{API}/shifts", json=body(tree.grid_b), headers=as_(user))
        assert_problem(response, 403, "out_of_scope")
    # Another community of the same sub-district is outside an organiser's own community too.
    assert_problem(client.post(f"{API}/shifts", json=body(tree.grid_a2), headers=as_(people.organiser_a)), 403, "out_of_scope")
    assert_problem(client.post(f"{API}/shifts", json=body(tree.grid_a), headers=as_(people.volunteer_a)), 403, "forbidden")
    assert_problem(client.post(f"{API}/shifts", json=body(tree.grid_a)), 401, "unauthorized")
    assert count(Shift) == 0


# --- read ----------------------------------------------------------------------------------------------


def test_who_may_see_a_shift(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_b)
    assert client.get(f"{API}/shifts/{shift.id}", headers=as_(people.admin)).status_code == 200
    assert client.get(f"{API}/shifts/{shift.id}", headers=as_(people.organiser_b)).status_code == 200
    # A volunteer sees shifts anywhere in their home city; an organiser only in their area.
    assert client.get(f"{API}/shifts/{shift.id}", headers=as_(people.volunteer_a)).status_code == 200
    assert_problem(client.get(f"{API}/shifts/{shift.id}", headers=as_(people.organiser_a)), 404, "shift_not_found")
    assert_problem(client.get(f"{API}/shifts/999999", headers=as_(people.admin)), 404, "shift_not_found")
    assert_problem(client.get(f"{API}/shifts/{shift.id}"), 401, "unauthorized")


# --- edit ----------------------------------------------------------------------------------------------


def test_an_edit_is_saved_audited_and_told_to_the_assigned(client, tree, people, events) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=3, backup_slots=1)
    factories.make_assignment(shift, people.volunteer_a)
    factories.make_assignment(shift, people.volunteer_a2, role="backup")
    waiting = factories.make_volunteer(tree.grid_a)
    factories.make_assignment(shift, waiting, status="waitlisted")
    old_start = shift.starts_at

    response = client.patch(
        f"{API}/shifts/{shift.id}",
        json={"starts_at": (old_start + timedelta(hours=1)).isoformat(), "title": "巡河", "meeting_point": "桥头"},
        headers=as_(people.organiser_a),
    )
    assert response.status_code == 200, response.get_json()
    shown = response.get_json()
    assert shown["title"] == "巡河" and shown["meeting_point"] == "桥头"
    shift = fresh(shift)
    assert shift.starts_at == old_start + timedelta(hours=1)
    assert shift.ends_at - shift.starts_at == timedelta(hours=2)  # moving the start keeps the duration
    assert shift.detached is False  # not a series shift

    [changed] = events.named("shift_changed")
    assert changed["shift_id"] == shift.id and changed["actor_id"] == people.organiser_a.id
    assert sorted(changed["volunteer_ids"]) == sorted([people.volunteer_a.id, people.volunteer_a2.id])
    assert set(changed["changes"]) == {"starts_at", "ends_at", "title", "meeting_point"}
    assert changed["changes"]["title"] == ["夜间巡逻", "巡河"]
    assert changed["changes"]["starts_at"][1] == (old_start + timedelta(hours=1)).astimezone(UTC).isoformat()
    entry = db.session.scalar(
        sa.select(AuditEntry).where(AuditEntry.action == "shift.update", AuditEntry.target_id == str(shift.id))
    )
    assert entry.before["title"] == "夜间巡逻" and entry.after["title"] == "巡河"


def test_an_edit_that_changes_nothing_is_silent(client, tree, people, events) -> None:
    shift = factories.make_shift(tree.grid_a)
    before = state(shift)
    response = client.patch(f"{API}/shifts/{shift.id}", json={"title": "夜间巡逻"}, headers=as_(people.organiser_a))
    assert response.status_code == 200
    assert events.sent == [] and state(shift) == before


def test_an_empty_or_unknown_edit_is_422(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a)
    assert_problem(client.patch(f"{API}/shifts/{shift.id}", json={}, headers=as_(people.organiser_a)), 422, "validation_failed")
    for bad in ({"grid_id": tree.grid_a.id}, {"primary_count": 0}, {"min_headcount": 4}, {"title": None}):
        response = client.patch(f"{API}/shifts/{shift.id}", json=bad, headers=as_(people.organiser_a))
        assert_problem(response, 422, "validation_failed")


def test_editing_one_occurrence_of_a_series_detaches_it(client, tree, people) -> None:
    created = client.post(
        f"{API}/shift-series",
        json={
            "grid_id": tree.grid_a.id, "rrule": "FREQ=WEEKLY;BYDAY=MO;COUNT=2", "title": "周一巡逻",
            "starts_on": local(1)[:10], "start_time": "19:00", "duration_minutes": 120, "max_headcount": 3,
        },
        headers=as_(people.organiser_a),
    ).get_json()
    first, second = created["upcoming_shifts"]
    response = client.patch(f"{API}/shifts/{first['id']}", json={"title": "改期"}, headers=as_(people.organiser_a))
    assert response.status_code == 200
    assert (response.get_json()["detached"], response.get_json()["series_id"]) == (True, created["id"])
    assert db.session.get(Shift, second["id"]).detached is False


def test_places_cannot_drop_below_those_taken(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=3, backup_slots=2)
    factories.make_assignment(shift, people.volunteer_a)
    factories.make_assignment(shift, people.volunteer_a2)
    factories.make_assignment(shift, factories.make_volunteer(tree.grid_a), role="backup")
    before = state(shift)
    response = client.patch(
        f"{API}/shifts/{shift.id}", json={"max_headcount": 1, "min_headcount": 1}, headers=as_(people.organiser_a)
    )
    assert assert_problem(response, 409, "headcount_below_assigned")["errors"] == {"max_headcount": ["Must be at least 2."]}
    response = client.patch(f"{API}/shifts/{shift.id}", json={"backup_slots": 0, "title": "x"}, headers=as_(people.organiser_a))
    assert assert_problem(response, 409, "backup_slots_below_assigned")["errors"] == {"backup_slots": ["Must be at least 1."]}
    assert state(shift) == before
    response = client.patch(f"{API}/shifts/{shift.id}", json={"max_headcount": 2, "backup_slots": 1}, headers=as_(people.organiser_a))
    assert response.status_code == 200
    assert (response.get_json()["max_headcount"], response.get_json()["open_places"]) == (2, 0)


def test_moving_a_shift_onto_an_assigned_volunteers_other_shift_is_refused(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(days=1), hours=2)
    other = factories.make_shift(tree.grid_a_east, starts_in=timedelta(days=1, hours=4), hours=2)
    factories.make_assignment(shift, people.volunteer_a)
    factories.make_assignment(shift, people.volunteer_a2)
    factories.make_assignment(other, people.volunteer_a)
    before = state(shift)

    response = client.patch(
        f"{API}/shifts/{shift.id}", json={"ends_at": (other.starts_at + timedelta(minutes=30)).isoformat()},
        headers=as_(people.organiser_a),
    )
    assert assert_problem(response, 409, "shift_overlap")["errors"] == {"volunteer_ids": [str(people.volunteer_a.id)]}
    response = client.patch(
        f"{API}/shifts/{shift.id}", json={"ends_at": (other.starts_at - timedelta(minutes=30)).isoformat()},
        headers=as_(people.organiser_a),
    )
    assert assert_problem(response, 409, "rest_too_short")["errors"] == {"volunteer_ids": [str(people.volunteer_a.id)]}
    assert state(shift) == before
    # An hour's rest is enough (SHIFT_MIN_REST_MINUTES = 60).
    response = client.patch(
        f"{API}/shifts/{shift.id}", json={"ends_at": (other.starts_at - timedelta(hours=1)).isoformat()},
        headers=as_(people.organiser_a),
    )
    assert response.status_code == 200


def test_cancelled_finished_and_started_shifts(client, tree, people) -> None:
    cancelled = factories.make_shift(tree.grid_a)
    cancelled.status = "cancelled"
    finished = factories.make_shift(tree.grid_a, starts_in=-timedelta(hours=3), hours=2)
    under_way = factories.make_shift(tree.grid_a, starts_in=-timedelta(minutes=30), hours=2)
    db.session.flush()
    headers = as_(people.organiser_a)
    assert_problem(client.patch(f"{API}/shifts/{cancelled.id}", json={"title": "x"}, headers=headers), 409, "shift_cancelled")
    assert_problem(client.patch(f"{API}/shifts/{finished.id}", json={"title": "x"}, headers=headers), 409, "shift_finished")
    moved = (under_way.starts_at + timedelta(minutes=10)).isoformat()
    assert_problem(client.patch(f"{API}/shifts/{under_way.id}", json={"starts_at": moved}, headers=headers), 409, "shift_started")
    # A shift under way may still get new instructions or a later end.
    later_end = (under_way.ends_at + timedelta(minutes=30)).isoformat()
    response = client.patch(
        f"{API}/shifts/{under_way.id}", json={"instructions": "改到东门集合", "ends_at": later_end}, headers=headers
    )
    assert response.status_code == 200
    past_end = (under_way.starts_at + timedelta(minutes=10)).isoformat()
    response = client.patch(f"{API}/shifts/{under_way.id}", json={"ends_at": past_end}, headers=headers)
    assert assert_problem(response, 422, "validation_failed")["errors"] == {"ends_at": ["Must not be in the past."]}
    moved_to_past = {"starts_at": local(-1, 19), "ends_at": local(-1, 20)}
    fresh_shift = factories.make_shift(tree.grid_a)
    response = client.patch(f"{API}/shifts/{fresh_shift.id}", json=moved_to_past, headers=headers)
    assert "starts_at" in assert_problem(response, 422, "validation_failed")["errors"]


def test_edits_are_refused_outside_the_subtree_and_to_volunteers(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_b)
    before = state(shift)
    assert_problem(client.patch(f"{API}/shifts/{shift.id}", json={"title": "x"}, headers=as_(people.organiser_a)), 404, "shift_not_found")
    assert_problem(client.patch(f"{API}/shifts/{shift.id}", json={"title": "x"}, headers=as_(people.staff_a)), 404, "shift_not_found")
    assert_problem(client.patch(f"{API}/shifts/{shift.id}", json={"title": "x"}, headers=as_(people.volunteer_a)), 403, "forbidden")
    assert_problem(client.patch(f"{API}/shifts/999999", json={"title": "x"}, headers=as_(people.admin)), 404, "shift_not_found")
    assert state(shift) == before


# --- cancel --------------------------------------------------------------------------------------------


def test_cancelling_ends_every_live_place_and_tells_them_once(client, tree, people, events) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1, backup_slots=1)
    invited, withdrawn, waiting = (factories.make_volunteer(tree.grid_a) for _ in range(3))
    factories.make_assignment(shift, people.volunteer_a)
    factories.make_assignment(shift, people.volunteer_a2, role="backup")
    factories.make_assignment(shift, waiting, status="waitlisted")
    factories.make_assignment(shift, invited, status="invited")
    factories.make_assignment(shift, withdrawn, status="withdrawn")

    response = client.post(f"{API}/shifts/{shift.id}/cancel", json={"reason": "暴雨预警"}, headers=as_(people.organiser_a))
    assert response.status_code == 200, response.get_json()
    shown = response.get_json()
    assert (shown["status"], shown["cancel_reason"], shown["primary_count"], shown["backup_count"]) == ("cancelled", "暴雨预警", 0, 0)
    assert shown["cancelled_at"].endswith("+00:00")
    places = {a.volunteer_id: a for a in db.session.scalars(sa.select(Assignment).where(Assignment.shift_id == shift.id))}
    for volunteer in (people.volunteer_a, people.volunteer_a2, waiting, invited):
        place = places[volunteer.id]
        assert (place.status, place.ended_by, place.end_reason) == ("cancelled", people.organiser_a.id, "暴雨预警")
        assert place.ended_at is not None
    assert places[withdrawn.id].status == "withdrawn"

    [told] = events.named("shift_cancelled")
    assert told == {
        "shift_id": shift.id, "reason": "暴雨预警", "actor_id": people.organiser_a.id,
        "volunteer_ids": sorted([people.volunteer_a.id, people.volunteer_a2.id, waiting.id]),
    }
    assert events.named("assignment_cancelled") == []
    assert count(AuditEntry, AuditEntry.action == "shift.cancel", AuditEntry.target_id == str(shift.id)) == 1

    again = client.post(f"{API}/shifts/{shift.id}/cancel", json={"reason": "再次"}, headers=as_(people.organiser_a))
    assert_problem(again, 409, "shift_cancelled")
    assert len(events.named("shift_cancelled")) == 1
    assert fresh(shift).cancel_reason == "暴雨预警"


def test_cancel_needs_a_reason_scope_and_an_unfinished_shift(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a)
    finished = factories.make_shift(tree.grid_a, starts_in=-timedelta(hours=3), hours=2)
    before = state(shift)
    assert_problem(client.post(f"{API}/shifts/{shift.id}/cancel", json={}, headers=as_(people.organiser_a)), 422, "validation_failed")
    assert_problem(client.post(f"{API}/shifts/{shift.id}/cancel", json={"reason": "x"}, headers=as_(people.organiser_b)), 404, "shift_not_found")
    assert_problem(client.post(f"{API}/shifts/{shift.id}/cancel", json={"reason": "x"}, headers=as_(people.volunteer_a)), 403, "forbidden")
    assert_problem(client.post(f"{API}/shifts/{finished.id}/cancel", json={"reason": "x"}, headers=as_(people.organiser_a)), 409, "shift_finished")
    assert state(shift) == before


# --- last: raising the places promotes (shifts.filling.promotion) -------------------------------


def test_raising_max_headcount_promotes_backups_then_the_waitlist(client, tree, people, events) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1, backup_slots=1)
    factories.make_assignment(shift, people.volunteer_a)
    factories.make_assignment(shift, people.volunteer_a2, role="backup")
    waiting = factories.make_volunteer(tree.grid_a)
    factories.make_assignment(shift, waiting, status="waitlisted")

    response = client.patch(f"{API}/shifts/{shift.id}", json={"max_headcount": 3}, headers=as_(people.organiser_a))
    assert response.status_code == 200, response.get_json()
    shown = response.get_json()
    assert (shown["primary_count"], shown["backup_count"], shown["waitlist_count"]) == (3, 0, 0)
    assert [e["volunteer_id"] for e in events.named("backup_promoted")] == [people.volunteer_a2.id]
    assert [e["volunteer_id"] for e in events.named("waitlist_promoted")] == [waiting.id]
