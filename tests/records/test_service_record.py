"""The service record through the API: reading it (own, in scope, refused), totals by local year,
trainings and evaluations with their corrections, corrections of service hours through rewards
(voided original, replacement, points, hours, leaderboard, audit), bad input, and the race of two
corrections at once on real commits."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel
from patrols import signals as patrol_signals
from patrols.presence.tasks import close_forgotten_check_outs
from patrols.service import patrol_for
from records import hours
from records.entries.models import ServiceCorrection, Training
from rewards.awarding.models import ServiceRecord
from rewards.leaderboards import totals as leaderboard_totals
from rewards.ledger import service as ledger
from rewards.rules.models import PointRule
from tests import factories, races
from tests.problems import assert_problem
from tests.rewards.support import FAR, as_, check_in, check_out, event, ledger_invariant, shift_for  # noqa: F401

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NO_SUCH_ID = 2_000_000_000


# --- the world -------------------------------------------------------------------------------------


class World:
    """City → district → sub-district → community K (grid G) and its sibling K″ whose id is K's
    with a digit appended (``/…/9100004/`` vs ``/…/91000043/``: a string prefix), grid G″ there."""

    def __init__(self, base: int) -> None:
        area = factories.make_area
        self.city = area(AreaLevel.CITY, name="包头市", code=f"15{base}", area_id=base + 1)
        district = area(AreaLevel.DISTRICT, self.city, area_id=base + 2)
        subdistrict = area(AreaLevel.SUBDISTRICT, district, area_id=base + 3)
        self.community = area(AreaLevel.COMMUNITY, subdistrict, name="东站社区", area_id=base + 4)
        self.sibling = area(AreaLevel.COMMUNITY, subdistrict, name="北梁社区", area_id=(base + 4) * 10 + 3)
        assert self.sibling.path.startswith(self.community.path.rstrip("/"))
        self.grid = area(AreaLevel.GRID, self.community, name="一网格", area_id=base + 5,
                         boundary=factories.square(109.84, 40.65))
        self.grid_sibling = area(AreaLevel.GRID, self.sibling, area_id=(base + 5) * 10 + 3,
                                 boundary=factories.square(109.90, 40.65))
        self.volunteer = factories.make_volunteer(self.grid, real_name="张三丰", id_number=factories.national_id(7))
        self.neighbour = factories.make_volunteer(self.grid, real_name="李四")
        self.stranger = factories.make_volunteer(self.grid_sibling, real_name="王五")
        self.organiser = factories.make_user("organiser", self.community, display_name="赵组织")
        self.sibling_organiser = factories.make_user("organiser", self.sibling)
        self.staff = factories.make_user("staff", district)
        self.admin = factories.make_user("admin", self.city)


@pytest.fixture
def world() -> World:
    return World(9_100_000)


def get(client: Any, url: str, who: Any, **query: Any) -> Any:
    return client.get(f"{API}{url}", query_string=query, headers=as_(who))


def post(client: Any, url: str, who: Any, body: Any) -> Any:
    """JSON as a client writes it: ``json.dumps`` escapes a lone surrogate (``\\ud800``), which the
    test client's own encoding could not send."""
    return client.post(f"{API}{url}", data=json.dumps(body), content_type="application/json", headers=as_(who))


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def served_at(volunteer: Any, grid: Any, starts_at: datetime, minutes: int, *, title: str = "夜间巡逻") -> ServiceRecord:
    """A shift served at ``starts_at``: its patrol row, and the event patrols sends once served."""
    shift = factories.make_shift(grid, starts_in=starts_at - utcnow(), hours=minutes / 60, title=title)
    shift.starts_at = starts_at
    shift.ends_at = starts_at + timedelta(minutes=minutes)
    shift.meeting_point = "东门"
    assignment = factories.make_assignment(shift, volunteer)
    patrol = patrol_for(assignment)
    patrol_signals.shift_served.send(
        patrol_signals.SENDER, patrol_id=patrol.id, assignment_id=assignment.id, shift_id=shift.id,
        volunteer_id=volunteer.id, served_minutes=minutes,
    )
    db.session.flush()
    return db.session.scalars(
        sa.select(ServiceRecord).where(ServiceRecord.source_type == "patrol", ServiceRecord.source_id == str(patrol.id))
    ).one()


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=SHANGHAI).astimezone(UTC)


def today() -> date:
    return utcnow().astimezone(SHANGHAI).date()


def hand_entered(client: Any, organiser: Any, volunteer: Any, minutes: int, note: str = "社区防汛值守") -> dict[str, Any]:
    return ok(post(client, "/service-hours", organiser, {
        "volunteer_id": volunteer.id, "served_on": (today() - timedelta(days=2)).isoformat(),
        "minutes": minutes, "note": note,
    }), 201)


def add_rule(city: Area, **values: Any) -> None:
    db.session.add(PointRule(city_id=city.id, version=1, effective_from=utcnow() - timedelta(days=800),
                             points_per_hour=10, rounding_minutes=15, report_bonus={}, **values))
    db.session.flush()


def all_entries(client: Any, url: str, who: Any, **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = ok(get(client, url, who, limit=1, **query, **({"cursor": cursor} if cursor else {})))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def audit_of(action: str) -> list[AuditEntry]:
    return list(db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


# --- reading ---------------------------------------------------------------------------------------


def test_a_volunteer_reads_their_record_identity_service_trainings_awards_and_evaluations(client, world) -> None:
    add_rule(world.city)
    shift_record = served_at(world.volunteer, world.grid, local(today() - timedelta(days=3), 19), 120)
    manual = hand_entered(client, world.organiser, world.volunteer, 90)
    ok(post(client, "/records/trainings", world.organiser, {
        "volunteer_ids": [world.volunteer.id], "title": "急救培训", "held_on": today().isoformat(), "minutes": 180,
    }), 201)
    ok(post(client, "/records/evaluations", world.organiser, {
        "volunteer_id": world.volunteer.id, "year": today().year, "rating": "excellent", "comment": "认真负责",
    }), 201)

    record = ok(get(client, "/me/record", world.volunteer))

    assert record["identity"] == {
        "name": "张三丰", "id_type": "居民身份证", "id_number": "1502" + "*" * 10 + factories.national_id(7)[-4:],
        "volunteer_number": f"{world.city.code}-{world.volunteer.id:08d}",
    }
    # By the local year of each day served: two years in the first days of January.
    by_year: dict[int, int] = {}
    for served_on, minutes in ((today() - timedelta(days=3), 120), (today() - timedelta(days=2), 90)):
        by_year[served_on.year] = by_year.get(served_on.year, 0) + minutes
    assert record["service"] == {"minutes": 210, "hours": 3.5, "by_year": [
        {"year": year, "minutes": minutes, "hours": minutes / 60} for year, minutes in sorted(by_year.items())]}
    # Training is kept apart: not in the service hours.
    assert record["training"] == {"minutes": 180, "hours": 3.0, "by_year": [{"year": today().year, "minutes": 180, "hours": 3.0}]}
    [training] = record["trainings"]
    assert (training["title"], training["in_force"], training["organisation"]["id"]) == ("急救培训", True, world.community.id)
    assert [award["badge"] for award in record["awards"]] == ["first_patrol"]
    [evaluation] = record["evaluations"]
    assert (evaluation["rating"], evaluation["comment"], evaluation["in_force"]) == ("excellent", "认真负责", True)

    newest, oldest = all_entries(client, "/me/record/entries", world.volunteer)
    assert (newest["id"], newest["kind"], newest["minutes"], newest["content"]) == (manual["id"], "manual", 90, "社区防汛值守")
    assert newest["entered_by"] == {"user_id": world.organiser.id, "name": "赵组织"}
    assert newest["start_time"] is None and newest["counts"] is True
    assert oldest["id"] == shift_record.id and oldest["kind"] == "shift"
    assert (oldest["served_on"], oldest["start_time"], oldest["end_time"]) == (
        (today() - timedelta(days=3)).isoformat(), "19:00", "21:00")
    assert (oldest["content"], oldest["place"], oldest["hours"]) == ("夜间巡逻", "东门", 2.0)
    assert oldest["grid"] == {"id": world.grid.id, "name": "一网格", "code": world.grid.code}
    assert oldest["organisation"] == {"id": world.community.id, "name": "东站社区", "code": world.community.code}
    assert oldest["entered_by"] is None and oldest["corrects"] is None and oldest["corrected"] is None


def test_totals_by_year_split_at_local_midnight_not_utc(client, world) -> None:
    # 23:00 on 31 December and 00:30 on 1 January, Shanghai time: both on 31 December in UTC.
    last_year = today().year - 1
    december = served_at(world.volunteer, world.grid, local(date(last_year, 12, 31), 23), 60)
    january = served_at(world.volunteer, world.grid, local(date(last_year + 1, 1, 1), 0, 30), 45)
    assert december.served_on.year == last_year and january.served_on.year == last_year + 1

    record = ok(get(client, f"/records/volunteers/{world.volunteer.id}", world.organiser))

    assert record["service"]["by_year"] == [
        {"year": last_year, "minutes": 60, "hours": 1.0}, {"year": last_year + 1, "minutes": 45, "hours": 0.75},
    ]
    assert [e["id"] for e in all_entries(client, "/me/record/entries", world.volunteer, year=last_year)] == [december.id]
    assert [e["id"] for e in all_entries(client, "/me/record/entries", world.volunteer, year=last_year + 1)] == [january.id]


def test_managers_in_scope_read_a_volunteers_record_and_others_learn_nothing(client, world) -> None:
    for manager in (world.organiser, world.staff, world.admin):
        assert ok(get(client, f"/records/volunteers/{world.volunteer.id}", manager))["volunteer_id"] == world.volunteer.id
        ok(get(client, f"/records/volunteers/{world.volunteer.id}/entries", manager))
    for url in ("/records/volunteers/{}", "/records/volunteers/{}/entries"):
        missing = get(client, url.format(NO_SUCH_ID), world.sibling_organiser)
        hidden = get(client, url.format(world.volunteer.id), world.sibling_organiser)
        assert_problem(missing, 404, "volunteer_not_found")
        assert (hidden.status_code, hidden.get_data()) == (missing.status_code, missing.get_data())
        # The organiser of K does not reach K″'s volunteer either.
        across = get(client, url.format(world.stranger.id), world.organiser)
        assert (across.status_code, across.get_data()) == (missing.status_code, missing.get_data())
        # A volunteer reads only their own, through /me.
        assert_problem(get(client, url.format(world.neighbour.id), world.volunteer), 403, "forbidden")
    assert_problem(get(client, "/me/record", world.organiser), 403, "forbidden")


# --- trainings -------------------------------------------------------------------------------------


def training_body(*volunteers: Any, **overrides: Any) -> dict[str, Any]:
    return {"volunteer_ids": [v.id for v in volunteers], "title": "消防安全培训", "held_on": today().isoformat(),
            "minutes": 120, **overrides}


def training_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Training)) or 0


def test_an_organiser_records_a_training_for_several_volunteers(client, world) -> None:
    body = ok(post(client, "/records/trainings", world.organiser,
                   training_body(world.volunteer, world.neighbour, note="第一期")), 201)

    assert [item["volunteer_id"] for item in body["items"]] == [world.volunteer.id, world.neighbour.id]
    assert {(i["minutes"], i["hours"], i["organisation"]["id"], i["note"]) for i in body["items"]} == {
        (120, 2.0, world.community.id, "第一期")}
    assert len(audit_of("record.training_recorded")) == 2
    # Staff record for a community of their district.
    ok(post(client, "/records/trainings", world.staff, training_body(world.volunteer, area_id=world.community.id)), 201)
    assert ok(get(client, "/me/record", world.volunteer))["training"]["minutes"] == 240


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"volunteer_ids": "stranger"}, 422, "validation_failed"),  # out of reach: as unknown
        ({"volunteer_ids": [NO_SUCH_ID]}, 422, "validation_failed"),
        ({"volunteer_ids": "twice"}, 422, "validation_failed"),
        ({"volunteer_ids": []}, 422, "validation_failed"),
        ({"area_id": "sibling"}, 403, "out_of_scope"),
        ({"held_on": "tomorrow"}, 422, "validation_failed"),
        ({"held_on": "two years ago"}, 422, "validation_failed"),
        ({"minutes": 0}, 422, "validation_failed"),
        ({"minutes": 1441}, 422, "validation_failed"),
        ({"minutes": "60"}, 422, "validation_failed"),
        ({"title": "x" * 101}, 422, "validation_failed"),
        ({"title": "\ud800"}, 422, "validation_failed"),
        ({"title": "   "}, 422, "validation_failed"),
    ],
)
def test_a_bad_training_is_refused_and_writes_nothing(client, world, change, status, code) -> None:
    values = {
        "stranger": [world.volunteer.id, world.stranger.id], "twice": [world.volunteer.id] * 2,
        "sibling": world.sibling.id, "tomorrow": (today() + timedelta(days=1)).isoformat(),
        "two years ago": (today() - timedelta(days=730)).isoformat(),
    }
    body = training_body(world.volunteer) | {key: values.get(value, value) if isinstance(value, str) else value
                                            for key, value in change.items()}
    response = post(client, "/records/trainings", world.organiser, body)
    assert_problem(response, status, code)
    assert training_count() == 0


def test_the_unknown_volunteer_answer_is_the_same_for_one_out_of_reach(client, world) -> None:
    missing = post(client, "/records/trainings", world.organiser, training_body(world.volunteer) | {"volunteer_ids": [NO_SUCH_ID]})
    hidden = post(client, "/records/trainings", world.organiser, training_body(world.stranger))
    assert hidden.get_data().replace(str(world.stranger.id).encode(), b"") == missing.get_data().replace(
        str(NO_SUCH_ID).encode(), b"")
    assert_problem(post(client, "/records/trainings", world.volunteer, training_body(world.volunteer)), 403, "forbidden")


def test_a_training_replayed_with_its_idempotency_key_is_recorded_once(client, world) -> None:
    body = json.dumps(training_body(world.volunteer, world.neighbour))
    headers = as_(world.organiser, **{"Idempotency-Key": "training-2026-12-01"})
    first = client.post(f"{API}/records/trainings", data=body, content_type="application/json", headers=headers)
    again = client.post(f"{API}/records/trainings", data=body, content_type="application/json", headers=headers)
    assert (first.status_code, again.status_code) == (201, 201) and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true" and training_count() == 2


def test_a_training_is_corrected_by_a_new_entry_once(client, world) -> None:
    [first] = ok(post(client, "/records/trainings", world.organiser, training_body(world.volunteer)), 201)["items"]

    assert_problem(post(client, f"/records/trainings/{first['id']}/corrections", world.organiser, {"minutes": 90}),
                   422, "validation_failed")  # no reason
    assert_problem(post(client, f"/records/trainings/{first['id']}/corrections", world.organiser,
                        {"minutes": 120, "reason": "同"}), 422, "validation_failed")  # changes nothing
    corrected = ok(post(client, f"/records/trainings/{first['id']}/corrections", world.staff,
                        {"minutes": 90, "reason": "实际提前结束"}), 201)

    assert (corrected["corrects_id"], corrected["correction_reason"], corrected["minutes"]) == (first["id"], "实际提前结束", 90)
    assert corrected["title"] == first["title"] and corrected["in_force"] is True
    record = ok(get(client, "/me/record", world.volunteer))
    assert record["training"]["minutes"] == 90
    shown = {t["id"]: t for t in record["trainings"]}
    assert shown[first["id"]]["in_force"] is False and shown[first["id"]]["corrected_by_id"] == corrected["id"]
    assert_problem(post(client, f"/records/trainings/{first['id']}/corrections", world.organiser,
                        {"minutes": 60, "reason": "再改"}), 409, "already_corrected")
    # The newest of the chain can be corrected: 0 minutes says it did not happen.
    ok(post(client, f"/records/trainings/{corrected['id']}/corrections", world.organiser,
            {"minutes": 0, "reason": "培训取消"}), 201)
    assert ok(get(client, "/me/record", world.volunteer))["training"] == {"minutes": 0, "hours": 0.0, "by_year": []}
    [entry, _second] = audit_of("record.training_corrected")
    assert entry.actor_id == world.staff.id and entry.target_id == str(first["id"])
    assert (entry.before["minutes"], entry.after["minutes"], entry.after["reason"]) == (120, 90, "实际提前结束")
    # Another organisation's organiser: the entry is not found, as an id that does not exist.
    missing = post(client, f"/records/trainings/{NO_SUCH_ID}/corrections", world.sibling_organiser, {"minutes": 5, "reason": "x"})
    hidden = post(client, f"/records/trainings/{corrected['id']}/corrections", world.sibling_organiser, {"minutes": 5, "reason": "x"})
    assert_problem(missing, 404, "training_not_found")
    assert (hidden.status_code, hidden.get_data()) == (missing.status_code, missing.get_data())


# --- evaluations -----------------------------------------------------------------------------------


def test_an_evaluation_per_year_and_organisation_corrected_once(client, world) -> None:
    year = today().year
    body = {"volunteer_id": world.volunteer.id, "year": year, "rating": "good", "comment": "按时到岗"}
    first = ok(post(client, "/records/evaluations", world.organiser, body), 201)
    assert (first["organisation"]["id"], first["rating"], first["corrects_id"]) == (world.community.id, "good", None)

    assert_problem(post(client, "/records/evaluations", world.organiser, body | {"rating": "pass"}), 409, "evaluation_exists")
    ok(post(client, "/records/evaluations", world.organiser, body | {"year": year - 1}), 201)  # another year
    assert_problem(post(client, f"/records/evaluations/{first['id']}/corrections", world.organiser, {"rating": "fail"}),
                   422, "validation_failed")  # no reason
    corrected = ok(post(client, f"/records/evaluations/{first['id']}/corrections", world.organiser,
                        {"rating": "excellent", "reason": "漏记了表彰"}), 201)
    assert (corrected["rating"], corrected["comment"], corrected["corrects_id"]) == ("excellent", "按时到岗", first["id"])
    assert_problem(post(client, f"/records/evaluations/{first['id']}/corrections", world.organiser,
                        {"rating": "pass", "reason": "再改"}), 409, "already_corrected")
    shown = ok(get(client, "/me/record", world.volunteer))["evaluations"]
    assert [(e["year"], e["rating"], e["in_force"]) for e in shown] == [
        (year, "excellent", True), (year, "good", False), (year - 1, "good", True)]
    [entry] = audit_of("record.evaluation_corrected")
    assert (entry.before["rating"], entry.after["rating"], entry.after["reason"]) == ("good", "excellent", "漏记了表彰")
    missing = post(client, f"/records/evaluations/{NO_SUCH_ID}/corrections", world.sibling_organiser, {"rating": "pass", "reason": "x"})
    hidden = post(client, f"/records/evaluations/{corrected['id']}/corrections", world.sibling_organiser, {"rating": "pass", "reason": "x"})
    assert_problem(missing, 404, "evaluation_not_found")
    assert (hidden.status_code, hidden.get_data()) == (missing.status_code, missing.get_data())


@pytest.mark.parametrize(
    "change",
    [{"rating": "优秀"}, {"rating": None}, {"year": 1999}, {"year": "2026"}, {"year": "next"}, {"comment": "评" * 501},
     {"volunteer_id": "stranger"}, {"volunteer_id": True}],
)
def test_a_bad_evaluation_is_refused(client, world, change) -> None:
    values = {"next": today().year + 1, "stranger": world.stranger.id}
    body = {"volunteer_id": world.volunteer.id, "year": today().year, "rating": "pass"} | {
        key: values.get(value, value) if isinstance(value, str) else value for key, value in change.items()}
    assert_problem(post(client, "/records/evaluations", world.organiser, body), 422, "validation_failed")
    assert ok(get(client, "/me/record", world.volunteer))["evaluations"] == []


# --- corrections of service hours ------------------------------------------------------------------


def my_hours_and_points(client: Any, volunteer: Any, year: int) -> tuple[float, int, int]:
    """What the volunteer's leaderboard (of the served shift's local year: last year's on the night
    of 1 January, for a shift served the day before), balance and records/hours see."""
    board = ok(get(client, "/leaderboards", volunteer, period="year", metric="hours", value=str(year)))["me"]
    balance = ok(get(client, "/me/points", volunteer))["balance"]
    return board["hours"], balance, hours.counted_minutes(volunteer.id)


def test_correcting_a_served_shift_voids_it_and_a_replacement_counts_everywhere(client, world) -> None:
    add_rule(world.city)
    original = served_at(world.volunteer, world.grid, local(today() - timedelta(days=1), 9), 120)
    assert my_hours_and_points(client, world.volunteer, original.served_on.year) == (2.0, 20, 120)

    correction = ok(post(client, f"/records/service-entries/{original.id}/corrections", world.organiser,
                         {"minutes": 90, "reason": "提前离岗30分钟"}), 201)

    assert (correction["original_id"], correction["minutes_before"], correction["minutes_after"]) == (original.id, 120, 90)
    assert correction["corrected_by"]["user_id"] == world.organiser.id and correction["points_unrecovered"] == 0
    # Hours and points as the leaderboard, the ledger and records/hours see them: 90 minutes, 15 points.
    assert my_hours_and_points(client, world.volunteer, original.served_on.year) == (1.5, 15, 90)
    assert leaderboard_totals.mismatches([world.volunteer.id]) == []
    replacement = db.session.get_one(ServiceRecord, correction["replacement_id"])
    assert (replacement.minutes, replacement.served_on, replacement.grid_id) == (90, original.served_on, original.grid_id)
    assert db.session.get_one(ServiceRecord, original.id).voided_at is not None
    # Shown side by side: the replacement keeps the shift's details, the original stays, void.
    new, old = all_entries(client, "/me/record/entries", world.volunteer)
    assert (new["id"], new["kind"], new["minutes"], new["counts"], new["content"], new["start_time"]) == (
        replacement.id, "shift", 90, True, "夜间巡逻", "09:00")
    assert new["corrects"]["id"] == correction["id"] and new["corrects"]["reason"] == "提前离岗30分钟"
    assert (old["id"], old["counts"], old["corrected"]["replacement_id"]) == (original.id, False, replacement.id)
    [entry] = audit_of("record.service_corrected")
    assert (entry.actor_id, entry.target_type, entry.target_id) == (world.organiser.id, "service_record", str(original.id))
    assert (entry.before["minutes"], entry.before["points"], entry.after["minutes"], entry.after["points"]) == (120, 20, 90, 15)
    assert entry.after["reason"] == "提前离岗30分钟"

    # Once corrected, the original is 409; the replacement (the newest) can be corrected, to nothing.
    assert_problem(post(client, f"/records/service-entries/{original.id}/corrections", world.organiser,
                        {"minutes": 60, "reason": "再改"}), 409, "already_corrected")
    last = ok(post(client, f"/records/service-entries/{replacement.id}/corrections", world.staff,
                   {"minutes": 0, "reason": "当日未到岗"}), 201)
    assert last["replacement_id"] is None
    assert my_hours_and_points(client, world.volunteer, original.served_on.year) == (0.0, 0, 0)
    assert leaderboard_totals.mismatches([world.volunteer.id]) == []
    assert ok(get(client, "/me/record", world.volunteer))["service"]["minutes"] == 0


def test_points_already_spent_are_kept_off_the_replacement(client, world) -> None:
    add_rule(world.city)
    original = served_at(world.volunteer, world.grid, local(today() - timedelta(days=1), 9), 120)  # 20 points
    ledger.append(world.volunteer.id, -15, "redemption", "redemption", "test-spent")
    db.session.flush()

    correction = ok(post(client, f"/records/service-entries/{original.id}/corrections", world.organiser,
                         {"minutes": 150, "reason": "漏记30分钟"}), 201)

    # 5 unspent points reversed, 15 could not be: 150 minutes earn 25, of which 15 were already had.
    assert correction["points_unrecovered"] == 15
    assert my_hours_and_points(client, world.volunteer, original.served_on.year)[1:] == (10, 150)
    earned = db.session.scalar(sa.text(
        "SELECT SUM(amount) FROM ledger_entries WHERE volunteer_id = :v AND reason != 'redemption'"),
        {"v": world.volunteer.id})
    assert earned == 25  # what 150 minutes earn, never the original's 20 on top


def test_hand_entered_hours_corrected_to_nothing(client, world) -> None:
    manual = hand_entered(client, world.organiser, world.volunteer, 240)

    correction = ok(post(client, f"/records/service-entries/{manual['id']}/corrections", world.organiser,
                         {"minutes": 0, "reason": "重复录入"}), 201)

    assert correction["replacement_id"] is None and hours.counted_minutes(world.volunteer.id) == 0
    [entry] = all_entries(client, f"/records/volunteers/{world.volunteer.id}/entries", world.organiser)
    assert entry["counts"] is False and entry["corrected"]["reason"] == "重复录入"
    assert_problem(post(client, f"/records/service-entries/{manual['id']}/corrections", world.organiser,
                        {"minutes": 60, "reason": "再改"}), 409, "already_corrected")


def corrections_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ServiceCorrection)) or 0


@pytest.mark.parametrize(
    "body",
    [{"minutes": 60}, {"minutes": 60, "reason": ""}, {"minutes": 60, "reason": "\udfff"}, {"minutes": 60, "reason": "因" * 501},
     {"minutes": -1, "reason": "x"}, {"minutes": 1441, "reason": "x"}, {"minutes": 1.5, "reason": "x"},
     {"minutes": "60", "reason": "x"}, {"minutes": 120, "reason": "未变"}, {"minutes": 60, "reason": "x", "extra": 1}, []],
)
def test_a_bad_service_correction_is_refused_and_changes_nothing(client, world, body) -> None:
    original = served_at(world.volunteer, world.grid, local(today() - timedelta(days=1), 9), 120)
    response = post(client, f"/records/service-entries/{original.id}/corrections", world.organiser, body)
    assert_problem(response, 422, "validation_failed")
    assert corrections_count() == 0 and hours.counted_minutes(world.volunteer.id) == 120


def test_a_day_keeps_at_most_24_hours_after_a_correction(client, world) -> None:
    day = today() - timedelta(days=1)
    original = served_at(world.volunteer, world.grid, local(day, 9), 120)
    served_at(world.volunteer, world.grid, local(day, 12), 600)
    assert_problem(post(client, f"/records/service-entries/{original.id}/corrections", world.organiser,
                        {"minutes": 841, "reason": "多记"}), 422, "validation_failed")
    ok(post(client, f"/records/service-entries/{original.id}/corrections", world.organiser,
            {"minutes": 840, "reason": "漏记"}), 201)


def test_service_corrections_out_of_reach_answer_as_missing(client, world) -> None:
    original = served_at(world.volunteer, world.grid, local(today() - timedelta(days=1), 9), 120)
    body = {"minutes": 60, "reason": "x"}
    missing = post(client, f"/records/service-entries/{NO_SUCH_ID}/corrections", world.sibling_organiser, body)
    hidden = post(client, f"/records/service-entries/{original.id}/corrections", world.sibling_organiser, body)
    assert_problem(missing, 404, "service_record_not_found")
    assert (hidden.status_code, hidden.get_data()) == (missing.status_code, missing.get_data())
    assert_problem(post(client, f"/records/service-entries/{original.id}/corrections", world.volunteer, body), 403, "forbidden")
    assert corrections_count() == 0


def test_a_service_record_voided_by_a_rejected_presence_cannot_be_corrected(client, world) -> None:
    original = served_at(world.volunteer, world.grid, local(today() - timedelta(days=1), 9), 120)
    original.voided_at = utcnow()  # as rewards does when the presence is rejected after review
    db.session.flush()
    assert_problem(post(client, f"/records/service-entries/{original.id}/corrections", world.organiser,
                        {"minutes": 60, "reason": "x"}), 409, "service_record_void")


def test_a_presence_rejected_after_a_correction_voids_what_counts_now(client, world) -> None:
    add_rule(world.city)
    shift, assignment = shift_for(world.grid, world.volunteer, started_ago=timedelta(hours=3))
    assert check_in(client, world.volunteer, assignment, event(shift.starts_at)).status_code == 200
    assert close_forgotten_check_outs() == 1  # served and paid: 120 minutes, 20 points
    patrol = check_out(client, world.volunteer, assignment, event(shift.ends_at, at=FAR)).get_json()
    assert patrol["presence_status"] == "needs_review"
    original = db.session.scalars(sa.select(ServiceRecord).where(ServiceRecord.source_id == str(patrol["id"]))).one()
    ok(post(client, f"/records/service-entries/{original.id}/corrections", world.organiser,
            {"minutes": 60, "reason": "只巡了一小时"}), 201)
    assert my_hours_and_points(client, world.volunteer, original.served_on.year) == (1.0, 10, 60)

    ok(post(client, f"/patrols/{patrol['id']}/reject", world.organiser, {"reason": "定位造假"}))

    assert my_hours_and_points(client, world.volunteer, original.served_on.year) == (0.0, 0, 0)
    assert leaderboard_totals.mismatches([world.volunteer.id]) == []


@pytest.mark.parametrize("query", [{"year": 1999}, {"year": "x"}, {"limit": 0}, {"limit": 101}, {"cursor": "!!"},
                                   {"cursor": "WyJ4Il0"}, {"cursor": "WyJ4IiwxXQ"}])
def test_bad_list_arguments_are_422(client, world, query) -> None:
    assert_problem(get(client, "/me/record/entries", world.volunteer, **query), 422, "validation_failed")


# --- the race --------------------------------------------------------------------------------------


@pytest.mark.committing
def test_two_corrections_of_one_record_at_once_correct_it_once(app: Flask) -> None:
    with app.app_context():
        world = World(9_200_000)
        add_rule(world.city)
        original = served_at(world.volunteer, world.grid, local(today() - timedelta(days=1), 9), 120)
        ids = {"record": original.id, "volunteer": world.volunteer.id}
        headers = [factories.headers_for(user) for user in (world.organiser, world.staff, world.admin, world.organiser)]
        db.session.commit()
        db.session.remove()

    calls = [("post", f"{API}/records/service-entries/{ids['record']}/corrections",
              {"minutes": 30 + 15 * index, "reason": f"第{index}次"}, headers[index]) for index in range(4)]
    statuses = sorted(response.status_code for response in races.at_once(app, calls))

    assert statuses == [201, 409, 409, 409]
    with app.app_context():
        [correction] = db.session.scalars(sa.select(ServiceCorrection).where(ServiceCorrection.original_id == ids["record"]))
        counted = hours.counted_minutes(ids["volunteer"])
        assert counted == correction.minutes_after
        assert ledger.balance_of(ids["volunteer"]) == ledger.ledger_sum(ids["volunteer"]) == counted * 10 // 60
        assert leaderboard_totals.mismatches([ids["volunteer"]]) == []
        db.session.remove()


@pytest.mark.committing
def test_two_corrections_of_one_training_at_once_make_one_entry(app: Flask) -> None:
    with app.app_context():
        world = World(9_300_000)
        training = Training(volunteer_id=world.volunteer.id, area_id=world.community.id, title="急救培训",
                            held_on=today(), minutes=120, created_by=world.organiser.id)
        db.session.add(training)
        db.session.flush()
        training_id = training.id
        headers = [factories.headers_for(user) for user in (world.organiser, world.staff, world.admin)]
        db.session.commit()
        db.session.remove()

    calls = [("post", f"{API}/records/trainings/{training_id}/corrections",
              {"minutes": 30 * (index + 1), "reason": f"第{index}次"}, headers[index]) for index in range(3)]
    responses = races.at_once(app, calls)

    assert sorted(response.status_code for response in responses) == [201, 409, 409]
    assert {response.get_json()["code"] for response in responses if response.status_code == 409} == {"already_corrected"}
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Training.corrects_id == training_id)) == 1
        db.session.remove()


def test_the_record_shows_the_star_level_pending_during_publicity_then_certified(client, world) -> None:
    from records.stars import service as stars

    assert ok(get(client, "/me/record", world.volunteer))["star_level"] is None
    proposed_at = utcnow() - timedelta(days=8)
    level = stars.propose(world.volunteer.id, "star_1", proposed_at)
    assert level is not None

    shown = ok(get(client, "/me/record", world.volunteer))["star_level"]
    assert (shown["level"], shown["status"], shown["certified_level"], shown["certified_at"]) == (1, "pending", None, None)

    assert stars.certify(level.id, level.publicity_ends_at)
    shown = ok(get(client, f"/records/volunteers/{world.volunteer.id}", world.organiser))["star_level"]
    assert (shown["level"], shown["status"], shown["certified_level"]) == (1, "certified", 1)
