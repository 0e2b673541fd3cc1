"""Star levels with publicity (公示): proposed when counted hours pass a star, pending while publicised
to the community, objections lodged by organisers and decided by district staff, certified by the
task at the publicity's end instant; scopes, refusals, bad input, and the races on PostgreSQL.

Time is moved the way the app's own rules read it: the task takes the instant it runs at, and a
level's publicity end is set back where a request must come after it (no sleeps, no clock mocks).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from records.stars import service as stars
from records.stars.models import StarLevel, StarObjection
from records.stars.tasks import certify_due, propose_unproposed
from rewards.awarding.models import ServiceRecord
from rewards.badges.models import VolunteerBadge
from tests import factories, races
from tests.problems import EN, assert_problem

API = "/api/v1"
NO_SUCH_ID = 2_000_000_000
# Sibling ids whose paths are string prefixes of each other (tests/test_reach.py).
CITY, DISTRICT, DISTRICT_2, SUBDISTRICT = 9_150_001, 9_150_002, 91_500_023, 9_150_003
COMMUNITY, COMMUNITY_SIBLING = 9_150_004, 91_500_043
GRID, GRID_SIBLING, GRID_DISTRICT_2 = 9_150_005, 91_500_053, 9_150_006


class World:
    """City C: district D (sub-district S: community K with grid G, and its sibling K″ whose id
    starts with K's) and district D″ (id starting with D's). Ann and Bo live in K, Sid in K″, Di
    in D″. Managers: organiser K, organiser K″, staff D, staff D″, admin C."""

    def __init__(self) -> None:
        area = factories.make_area
        self.city = area(AreaLevel.CITY, name="包头市", code="150200", area_id=CITY)
        self.district = area(AreaLevel.DISTRICT, self.city, area_id=DISTRICT)
        self.district_2 = area(AreaLevel.DISTRICT, self.city, area_id=DISTRICT_2)
        subdistrict = area(AreaLevel.SUBDISTRICT, self.district, area_id=SUBDISTRICT)
        self.community = area(AreaLevel.COMMUNITY, subdistrict, area_id=COMMUNITY)
        self.sibling = area(AreaLevel.COMMUNITY, subdistrict, area_id=COMMUNITY_SIBLING)
        community_2 = area(AreaLevel.COMMUNITY, area(AreaLevel.SUBDISTRICT, self.district_2), area_id=9_150_007)
        self.grid = area(AreaLevel.GRID, self.community, area_id=GRID)
        self.sibling_grid = area(AreaLevel.GRID, self.sibling, area_id=GRID_SIBLING)
        self.district_2_grid = area(AreaLevel.GRID, community_2, area_id=GRID_DISTRICT_2)
        assert self.sibling.path.startswith(self.community.path.rstrip("/"))
        assert self.district_2.path.startswith(self.district.path.rstrip("/"))

        self.ann = factories.make_volunteer(self.grid, real_name="张三丰")
        self.bo = factories.make_volunteer(self.grid, real_name="李四")
        self.sid = factories.make_volunteer(self.sibling_grid, real_name="王五")
        self.di = factories.make_volunteer(self.district_2_grid, real_name="赵六")
        self.organiser = factories.make_user("organiser", self.community)
        self.organiser_2 = factories.make_user("organiser", self.community)
        self.organiser_sibling = factories.make_user("organiser", self.sibling)
        self.staff = factories.make_user("staff", self.district)
        self.staff_2 = factories.make_user("staff", self.district_2)
        self.admin = factories.make_user("admin", self.city)


@pytest.fixture
def world() -> World:
    return World()


def as_(who: Any, **extra: str) -> dict[str, str]:
    return {**factories.headers_for(getattr(who, "user", who)), **EN, **extra}


def seed_service(volunteer: Any, minutes: int, first_day: date = date(2024, 3, 1)) -> None:
    """Counted service written directly (past days, no badge check): the hours already on record."""
    day = first_day
    while minutes > 0:
        chunk = min(minutes, 1440)
        db.session.add(ServiceRecord(
            volunteer_id=volunteer.id, source_type="manual", source_id=uuid.uuid4().hex, minutes=chunk,
            served_on=day, grid_id=volunteer.home_grid_id,
        ))
        minutes -= chunk
        day += timedelta(days=1)
    db.session.flush()


def enter_hours(client: Any, organiser: Any, volunteer: Any, minutes: int, days_ago: int = 1) -> None:
    """Hours entered by an organiser through the API (rewards grants the star badges from them)."""
    day = (utcnow() + timedelta(hours=8)).date() - timedelta(days=days_ago)
    response = client.post(
        f"{API}/service-hours",
        json={"volunteer_id": volunteer.id, "served_on": day.isoformat(), "minutes": minutes, "note": "值守"},
        headers=as_(organiser),
    )
    assert response.status_code == 201, response.get_json()


def proposed(volunteer: Any, hours: int = 100, badge: str = "star_1") -> StarLevel:
    """A level proposed as the listener proposes it (the proposal itself is tested through the API)."""
    seed_service(volunteer, hours * 60)
    row = stars.propose(volunteer.id, badge, utcnow())
    assert row is not None
    return row


def mine(client: Any, volunteer: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/me/star-levels", headers=as_(volunteer))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def end_publicity(row: StarLevel, ago: timedelta = timedelta(seconds=1)) -> None:
    """Move the level's publicity end into the past (the time a request after the end would see)."""
    db.session.execute(sa.update(StarLevel).where(StarLevel.id == row.id).values(publicity_ends_at=utcnow() - ago))
    db.session.flush()
    db.session.expire_all()


def lodge(client: Any, who: Any, row: StarLevel | int, reason: str = "时长记录有误") -> Any:
    level_id = row if isinstance(row, int) else row.id
    return client.post(f"{API}/star-levels/{level_id}/objections", json={"reason": reason}, headers=as_(who))


def decide(client: Any, who: Any, objection_id: int, outcome: str, note: str = "已核实") -> Any:
    return client.post(
        f"{API}/star-objections/{objection_id}/decision", json={"outcome": outcome, "note": note}, headers=as_(who)
    )


def audit_actions(target_type: str, target_id: int) -> list[str]:
    return list(db.session.scalars(
        sa.select(AuditEntry.action)
        .where(AuditEntry.target_type == target_type, AuditEntry.target_id == str(target_id))
        .order_by(AuditEntry.id)
    ))


# --- proposal ------------------------------------------------------------------------------------


def test_exactly_100_hours_proposes_one_star_and_5999_minutes_do_not(client, world, app) -> None:
    seed_service(world.ann, 5760)
    enter_hours(client, world.organiser, world.ann, 239)  # 5999 minutes
    assert mine(client, world.ann) == []

    enter_hours(client, world.organiser, world.ann, 1, days_ago=2)  # 6000 minutes: 100 hours
    [level] = mine(client, world.ann)
    assert (level["level"], level["status"], level["minutes_at_proposal"]) == (1, "pending", 6000)
    assert level["certified_at"] is None and level["rejected_at"] is None
    row = db.session.scalar(sa.select(StarLevel).where(StarLevel.volunteer_id == world.ann.id))
    assert (row.area_id, row.area_path) == (world.community.id, world.community.path)
    assert row.publicity_ends_at - row.proposed_at == timedelta(days=app.config["RECORDS_STAR_PUBLICITY_DAYS"])
    assert audit_actions("star_level", row.id) == ["star_level.proposed"]

    enter_hours(client, world.organiser, world.ann, 60, days_ago=3)  # more hours, same star: no second row
    assert len(mine(client, world.ann)) == 1


def test_jumping_two_stars_at_once_proposes_the_higher_only(client, world) -> None:
    seed_service(world.ann, 300 * 60 - 200)
    enter_hours(client, world.organiser, world.ann, 200)  # 99.x → 300 hours: star_1 and star_2 at once

    assert [(item["level"], item["status"]) for item in mine(client, world.ann)] == [(2, "pending")]
    badges = client.get(f"{API}/me/badges", headers=as_(world.ann)).get_json()["items"]
    assert {"star_1", "star_2"} <= {badge["badge"] for badge in badges}


def test_a_level_is_proposed_once_and_never_below_one_proposed(world) -> None:
    # Hours voided since star_2 was earned leave 100 hours: a late star_1 proposes nothing.
    row = proposed(world.ann, hours=100, badge="star_2")
    assert stars.propose(world.ann.id, "star_2", utcnow()) is None  # the same badge again
    assert stars.propose(world.ann.id, "star_1", utcnow()) is None  # a lower star, late
    assert stars.propose(world.ann.id, "first_patrol", utcnow()) is None  # not a star
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StarLevel)) == 1
    assert row.level == 2


def test_publicity_lasts_at_least_seven_days_whatever_the_setting(app, world, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "RECORDS_STAR_PUBLICITY_DAYS", 2)
    row = proposed(world.ann)
    assert row.publicity_ends_at - row.proposed_at == timedelta(days=7)
    monkeypatch.setitem(app.config, "RECORDS_STAR_PUBLICITY_DAYS", 10)
    higher = proposed(world.bo, hours=300, badge="star_2")
    assert higher.publicity_ends_at - higher.proposed_at == timedelta(days=10)


def test_star_badges_earned_before_star_levels_existed_are_proposed_by_the_periodic_task_once(client, world) -> None:
    seed_service(world.ann, 320 * 60)
    seed_service(world.bo, 120 * 60)
    # As a city that ran before this feature: the badges are there, no listener proposed anything.
    db.session.add_all([
        VolunteerBadge(volunteer_id=world.ann.id, badge="star_1"),
        VolunteerBadge(volunteer_id=world.ann.id, badge="star_2"),
        VolunteerBadge(volunteer_id=world.bo.id, badge="star_1"),
        VolunteerBadge(volunteer_id=world.bo.id, badge="first_patrol"),
    ])
    db.session.flush()
    assert mine(client, world.ann) == [] and mine(client, world.bo) == []

    now = utcnow()
    assert propose_unproposed(now, batch_size=1) == 2  # batches move on by volunteer
    [ann] = mine(client, world.ann)
    assert (ann["level"], ann["status"], ann["minutes_at_proposal"]) == (2, "pending", 320 * 60)
    [bo] = mine(client, world.bo)
    assert bo["level"] == 1
    assert propose_unproposed(now) == 0  # once

    # A level rejected after its publicity is not proposed again by the sweep.
    bo_row = db.session.scalars(sa.select(StarLevel).where(StarLevel.volunteer_id == world.bo.id)).one()
    objection = lodge(client, world.organiser, bo_row).get_json()
    assert decide(client, world.staff, objection["id"], "upheld").status_code == 200
    assert propose_unproposed(utcnow()) == 0
    assert [(item["level"], item["status"]) for item in mine(client, world.bo)] == [(1, "rejected")]
    # A higher star badge above a level already there is proposed.
    db.session.add(VolunteerBadge(volunteer_id=world.bo.id, badge="star_2"))
    db.session.flush()
    assert propose_unproposed(utcnow()) == 1
    assert [(item["level"], item["status"]) for item in mine(client, world.bo)] == [(1, "rejected"), (2, "pending")]


# --- publicity and certification -----------------------------------------------------------------


def test_pending_during_publicity_and_certified_at_the_exact_end_instant(client, world) -> None:
    row = proposed(world.ann)
    ends = row.publicity_ends_at
    assert certify_due(ends - timedelta(seconds=1)) == 0
    assert [item["status"] for item in mine(client, world.ann)] == ["pending"]
    assert stars.certified_level(world.ann.id) is None
    assert stars.level_status(world.ann.id)["status"] == "pending"

    assert certify_due(ends) == 1
    [item] = mine(client, world.ann)
    assert item["status"] == "certified"
    assert datetime.fromisoformat(item["certified_at"]) == ends
    assert certify_due(ends + timedelta(days=1)) == 0  # once
    assert stars.certified_level(world.ann.id) == 1
    status = stars.level_status(world.ann.id)
    assert (status["level"], status["status"], status["certified_level"]) == (1, "certified", 1)
    assert audit_actions("star_level", row.id) == ["star_level.proposed", "star_level.certified"]


def test_the_volunteer_is_told_once_when_certified_and_not_when_rejected(client, world) -> None:
    world.ann.user.locale = "en"
    row = proposed(world.ann)
    certify_due(row.publicity_ends_at)
    certify_due(row.publicity_ends_at + timedelta(hours=1))
    bo_level = proposed(world.bo)
    objection = lodge(client, world.organiser, bo_level).get_json()
    decide(client, world.staff, objection["id"], "upheld")

    def told(volunteer: Any) -> list[dict[str, Any]]:
        response = client.get(f"{API}/me/notifications", headers=as_(volunteer))
        assert response.status_code == 200, response.get_json()
        return [item for item in response.get_json()["items"] if item["kind"] == "star_level_certified"]

    [item] = told(world.ann)
    assert (item["title"], item["body"]) == (
        "Star level certified",
        "Congratulations! The publicity is over: you are certified as “One-star volunteer (100 hours)”.",
    )
    assert item["data"] == {"type": "star_level_certified", "star_level_id": str(row.id), "star_level": "1"}
    assert told(world.bo) == []


def test_a_pending_higher_level_does_not_replace_the_certified_one(world) -> None:
    first = proposed(world.ann)
    certify_due(first.publicity_ends_at)
    seed_service(world.ann, 200 * 60, first_day=date(2023, 1, 1))
    assert stars.propose(world.ann.id, "star_2", utcnow()) is not None
    status = stars.level_status(world.ann.id)
    assert (status["level"], status["status"], status["certified_level"]) == (2, "pending", 1)
    assert stars.certified_level(world.ann.id) == 1
    assert stars.level_status(world.bo.id) is None


# --- objections ----------------------------------------------------------------------------------


def test_an_open_objection_holds_certification_and_dismissing_it_after_the_end_certifies_at_once(
    client, world
) -> None:
    row = proposed(world.ann)
    response = lodge(client, world.organiser, row)
    assert response.status_code == 201, response.get_json()
    objection = response.get_json()
    assert (objection["status"], objection["lodged_by"], objection["reason"]) == (
        "open", world.organiser.id, "时长记录有误"
    )
    assert_problem(lodge(client, world.organiser, row), 409, "objection_exists")
    assert certify_due(row.publicity_ends_at + timedelta(hours=1)) == 0  # held
    assert [item["status"] for item in mine(client, world.ann)] == ["pending"]

    end_publicity(row)
    response = decide(client, world.staff, objection["id"], "dismissed")
    assert response.status_code == 200, response.get_json()
    level = response.get_json()
    assert (level["status"], level["open_objections"]) == ("certified", 0)
    assert level["objections"][0]["status"] == "dismissed"
    assert level["objections"][0]["decided_by"] == world.staff.id
    assert [item["status"] for item in mine(client, world.ann)] == ["certified"]
    assert_problem(decide(client, world.admin, objection["id"], "upheld"), 409, "objection_decided")
    assert audit_actions("star_objection", objection["id"]) == ["star_objection.lodged", "star_objection.decided"]
    assert audit_actions("star_level", row.id)[-1] == "star_level.certified"


def test_dismissing_during_publicity_leaves_it_to_the_task_and_any_open_objection_holds_it(client, world) -> None:
    row = proposed(world.ann)
    organiser_3 = factories.make_user("organiser", world.community)
    first, second, third = (lodge(client, who, row).get_json() for who in (world.organiser, world.organiser_2, organiser_3))
    level = decide(client, world.staff, first["id"], "dismissed").get_json()
    assert (level["status"], level["open_objections"]) == ("pending", 2)  # publicity runs: the task decides
    end_publicity(row)
    level = decide(client, world.staff, second["id"], "dismissed").get_json()
    assert (level["status"], level["open_objections"]) == ("pending", 1)  # the third still holds it
    assert certify_due(utcnow()) == 0
    level = decide(client, world.admin, third["id"], "dismissed").get_json()
    assert (level["status"], level["open_objections"]) == ("certified", 0)  # the last open one


def test_an_upheld_objection_rejects_the_level_for_good(client, world) -> None:
    row = proposed(world.ann)
    objection = lodge(client, world.organiser, row).get_json()
    level = decide(client, world.staff, objection["id"], "upheld", note="系重复录入").get_json()
    assert (level["status"], level["open_objections"]) == ("rejected", 0)
    assert level["rejected_at"] is not None
    assert level["objections"][0]["decision_note"] == "系重复录入"
    assert certify_due(row.publicity_ends_at + timedelta(days=30)) == 0
    assert [item["status"] for item in mine(client, world.ann)] == ["rejected"]
    assert stars.certified_level(world.ann.id) is None and stars.level_status(world.ann.id) is None
    assert_problem(lodge(client, world.organiser_2, row), 409, "star_level_not_pending")
    assert audit_actions("star_level", row.id) == ["star_level.proposed", "star_level.rejected"]

    # Not proposed again at the same star; the next star is proposed as usual.
    assert stars.propose(world.ann.id, "star_1", utcnow()) is None
    seed_service(world.ann, 200 * 60, first_day=date(2023, 1, 1))
    assert stars.propose(world.ann.id, "star_2", utcnow()) is not None
    assert [(item["level"], item["status"]) for item in mine(client, world.ann)] == [(1, "rejected"), (2, "pending")]


def test_objections_close_at_the_end_of_publicity(client, world) -> None:
    row = proposed(world.ann)
    end_publicity(row, ago=timedelta(microseconds=1))
    assert_problem(lodge(client, world.organiser, row), 409, "publicity_ended")
    certify_due(utcnow())
    assert_problem(lodge(client, world.organiser, row), 409, "star_level_not_pending")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StarObjection)) == 0


# --- scopes --------------------------------------------------------------------------------------


def test_managers_see_the_board_of_their_subtree_only(client, world) -> None:
    ann, sid, di = proposed(world.ann), proposed(world.sid), proposed(world.di)

    def board(who: Any, **query: Any) -> list[int]:
        response = client.get(f"{API}/star-levels", query_string=query, headers=as_(who))
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert board(world.organiser) == [ann.id]
    assert board(world.organiser_sibling) == [sid.id]  # the prefix sibling sees only its own
    assert board(world.staff) == [sid.id, ann.id]
    assert board(world.staff_2) == [di.id]
    assert board(world.admin) == [di.id, sid.id, ann.id]
    assert board(world.admin, area_id=world.sibling.id) == [sid.id]
    assert board(world.admin, status="certified") == []
    assert board(world.admin, level=2) == []
    certify_due(ann.publicity_ends_at)
    assert board(world.staff, status=["certified", "rejected"]) == [ann.id]
    assert board(world.staff, status="pending") == [sid.id]
    first = client.get(f"{API}/star-levels", query_string={"limit": 1}, headers=as_(world.admin)).get_json()
    rest = client.get(
        f"{API}/star-levels", query_string={"limit": 5, "cursor": first["next_cursor"]}, headers=as_(world.admin)
    ).get_json()
    assert [item["id"] for item in first["items"] + rest["items"]] == [di.id, sid.id, ann.id]
    assert rest["next_cursor"] is None
    [item] = client.get(f"{API}/star-levels", headers=as_(world.organiser)).get_json()["items"]
    assert (item["volunteer_id"], item["volunteer_name"], item["level"]) == (world.ann.id, "张三丰", 1)

    assert_problem(
        client.get(f"{API}/star-levels", query_string={"area_id": world.sibling.id}, headers=as_(world.organiser)),
        403, "out_of_scope",
    )
    assert_problem(client.get(f"{API}/star-levels", headers=as_(world.ann)), 403, "forbidden")


def test_a_level_out_of_reach_answers_as_a_missing_one(client, world) -> None:
    ann, sid = proposed(world.ann), proposed(world.sid)
    objection = lodge(client, world.organiser_sibling, sid).get_json()

    def same_as_missing(method: str, path: str, who: Any, body: Any = None, missing_path: str | None = None) -> None:
        response = client.open(path, method=method, json=body, headers=as_(who))
        missing = client.open(missing_path, method=method, json=body, headers=as_(who))
        assert response.status_code == missing.status_code == 404, response.get_json()
        assert response.get_data() == missing.get_data()

    same_as_missing("GET", f"{API}/star-levels/{sid.id}", world.organiser, missing_path=f"{API}/star-levels/{NO_SUCH_ID}")
    same_as_missing("GET", f"{API}/star-levels/{ann.id}", world.staff_2, missing_path=f"{API}/star-levels/{NO_SUCH_ID}")
    same_as_missing(
        "POST", f"{API}/star-levels/{sid.id}/objections", world.organiser, {"reason": "x"},
        missing_path=f"{API}/star-levels/{NO_SUCH_ID}/objections",
    )
    same_as_missing(
        "POST", f"{API}/star-objections/{objection['id']}/decision", world.staff_2,
        {"outcome": "upheld", "note": "x"}, missing_path=f"{API}/star-objections/{NO_SUCH_ID}/decision",
    )
    assert client.get(f"{API}/star-levels/{sid.id}", headers=as_(world.staff)).status_code == 200  # in reach
    # Roles: only organisers object, only staff and admins decide, volunteers manage nothing.
    assert_problem(lodge(client, world.staff, ann), 403, "forbidden")
    assert_problem(lodge(client, world.ann, ann), 403, "forbidden")
    assert_problem(decide(client, world.organiser_sibling, objection["id"], "upheld"), 403, "forbidden")
    assert_problem(client.get(f"{API}/star-levels/{ann.id}", headers=as_(world.ann)), 403, "forbidden")
    assert db.session.get(StarObjection, objection["id"]).status == "open"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StarObjection)) == 1


def test_the_community_board_shows_masked_names_and_levels_of_the_own_community_only(client, world) -> None:
    ann, _sid = proposed(world.ann), proposed(world.sid)
    bo_level = proposed(world.bo, hours=300, badge="star_2")

    def board(who: Any) -> list[dict[str, Any]]:
        response = client.get(f"{API}/me/community/star-publicity", headers=as_(who))
        assert response.status_code == 200, response.get_json()
        return response.get_json()["items"]

    items = board(world.bo)
    assert [(item["masked_name"], item["level"]) for item in items] == [("李*", 2), ("张*丰", 1)]
    assert set(items[0]) == {"masked_name", "level", "publicity_starts_at", "publicity_ends_at"}
    text = client.get(f"{API}/me/community/star-publicity", headers=as_(world.bo)).get_data(as_text=True)
    assert "张三丰" not in text and "王" not in text
    assert [item["masked_name"] for item in board(world.sid)] == ["王*"]  # the prefix sibling: its own only
    assert board(world.di) == []

    certify_due(ann.publicity_ends_at)  # certified: off the board
    assert [item["level"] for item in board(world.ann)] == [bo_level.level]
    assert_problem(client.get(f"{API}/me/community/star-publicity", headers=as_(world.organiser)), 403, "forbidden")
    pending = factories.make_volunteer(world.grid, real_name="钱七", status="pending")
    assert_problem(client.get(f"{API}/me/community/star-publicity", headers=as_(pending)), 403, "forbidden")


# --- bad input -----------------------------------------------------------------------------------


def as_body(body: Any) -> dict[str, Any]:
    """A JSON body; a string is sent as the raw JSON text it is (escapes such as lone surrogates)."""
    if isinstance(body, str):
        return {"data": body, "content_type": "application/json"}
    return {"json": body}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": "x" * 501},
        {"reason": 5},
        {"reason": ["x"]},
        '{"reason": "a\\ud800b"}',  # a lone surrogate, as JSON escapes it
        {"reason": "x", "extra": 1},
    ],
)
def test_a_bad_objection_is_422_and_lodges_nothing(client, world, body) -> None:
    row = proposed(world.ann)
    response = client.post(f"{API}/star-levels/{row.id}/objections", headers=as_(world.organiser), **as_body(body))
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StarObjection)) == 0
    assert db.session.get(StarLevel, row.id).open_objections == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"outcome": "maybe", "note": "x"}, {"outcome": "upheld"}, {"outcome": "upheld", "note": "x" * 501},
     {"outcome": None, "note": "x"}, '{"outcome": "upheld", "note": "\\udfff"}'],
)
def test_a_bad_decision_is_422_and_decides_nothing(client, world, body) -> None:
    row = proposed(world.ann)
    objection = lodge(client, world.organiser, row).get_json()
    response = client.post(
        f"{API}/star-objections/{objection['id']}/decision", headers=as_(world.staff), **as_body(body)
    )
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert db.session.get(StarObjection, objection["id"]).status == "open"


@pytest.mark.parametrize(
    "query",
    [{"status": "maybe"}, {"level": 6}, {"level": "x"}, {"limit": 0}, {"limit": 101}, {"cursor": "!!"},
     {"area_id": 0}, {"area_id": NO_SUCH_ID}],
)
def test_a_bad_board_query_is_422(client, world, query) -> None:
    response = client.get(f"{API}/star-levels", query_string=query, headers=as_(world.admin))
    assert_problem(response, 422, "validation_failed")


def test_the_reason_is_kept_as_given_up_to_500_characters(client, world) -> None:
    row = proposed(world.ann)
    reason = "异" * 500
    assert lodge(client, world.organiser, row, reason=reason).get_json()["reason"] == reason


# --- races (PostgreSQL proves them; SQLite serialises writers) -------------------------------------


def committed_level(app: Flask, *, ends_in: timedelta, objection: bool) -> tuple[dict[str, dict[str, str]], int, int | None]:
    """A committed world with Ann's level whose publicity ends ``ends_in`` from now, with an open
    objection or not; the headers of its managers, the level's id and the objection's."""
    with app.app_context():
        world = World()
        row = proposed(world.ann)
        objection_id = None
        if objection:
            found = StarObjection(star_level_id=row.id, lodged_by=world.organiser.id, reason="有误", status="open")
            db.session.add(found)
            row.open_objections = 1
            db.session.flush()
            objection_id = found.id
        row.publicity_ends_at = utcnow() + ends_in
        headers = {name: as_(getattr(world, name)) for name in ("organiser", "staff", "admin")}
        level_id = row.id
        db.session.commit()
        db.session.remove()
    return headers, level_id, objection_id


def settled(app: Flask, level_id: int) -> tuple[str, int, list[str]]:
    with app.app_context():
        row = db.session.get(StarLevel, level_id)
        assert row is not None
        result = (row.status, row.open_objections, audit_actions("star_level", level_id))
        db.session.remove()
    return result


def run_task(app: Flask, start: Any, now: Any = None) -> Any:
    def task() -> int:
        with app.app_context():
            start.wait()
            return certify_due(now)

    return task


@pytest.mark.committing
def test_two_officials_deciding_one_objection_at_once_decide_it_once(app) -> None:
    headers, level_id, objection_id = committed_level(app, ends_in=-timedelta(seconds=1), objection=True)
    path = f"{API}/star-objections/{objection_id}/decision"
    responses = races.at_once(
        app,
        [("post", path, {"outcome": "upheld", "note": "甲"}, headers["staff"]),
         ("post", path, {"outcome": "dismissed", "note": "乙"}, headers["admin"])],
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.get_json() for r in responses]
    loser = next(r.get_json() for r in responses if r.status_code == 409)
    assert loser["code"] == "objection_decided"
    winner = next(r.get_json() for r in responses if r.status_code == 200)
    status, open_objections, actions = settled(app, level_id)
    assert (status, open_objections) == (winner["status"], 0)
    assert status in ("rejected", "certified")
    assert actions == ["star_level.proposed", f"star_level.{status}"]
    with app.app_context():
        assert audit_actions("star_objection", objection_id) == ["star_objection.decided"]
        db.session.remove()


@pytest.mark.committing
def test_the_task_and_a_dismissal_racing_certify_once(app) -> None:
    headers, level_id, objection_id = committed_level(app, ends_in=-timedelta(seconds=1), objection=True)
    start = races.barrier(2)

    def dismiss() -> Any:
        client = app.test_client()
        start.wait()
        return client.post(
            f"{API}/star-objections/{objection_id}/decision", json={"outcome": "dismissed", "note": "无误"},
            headers=headers["staff"],
        )

    response, by_task = races.run_threads([dismiss, run_task(app, start)])
    assert response.status_code == 200, response.get_json()
    status, open_objections, actions = settled(app, level_id)
    assert (status, open_objections) == ("certified", 0)
    assert actions == ["star_level.proposed", "star_level.certified"]
    # The objection stays open until the decision commits, so the task never certifies it first.
    assert by_task == 0


@pytest.mark.committing
def test_two_task_runs_at_once_certify_once(app) -> None:
    _headers, level_id, _ = committed_level(app, ends_in=-timedelta(seconds=1), objection=False)
    start = races.barrier(2)
    counts = races.run_threads([run_task(app, start), run_task(app, start)])
    assert sorted(counts) == [0, 1]
    status, _open, actions = settled(app, level_id)
    assert status == "certified"
    assert actions == ["star_level.proposed", "star_level.certified"]


@pytest.mark.committing
def test_an_objection_racing_the_task_at_the_end_either_holds_or_is_refused(app) -> None:
    ends_in = timedelta(minutes=5)  # the request runs before the end, the task at the end
    headers, level_id, _ = committed_level(app, ends_in=ends_in, objection=False)
    with app.app_context():
        ends = db.session.get(StarLevel, level_id).publicity_ends_at
        db.session.remove()
    start = races.barrier(2)

    def object_() -> Any:
        client = app.test_client()
        start.wait()
        return client.post(f"{API}/star-levels/{level_id}/objections", json={"reason": "有误"}, headers=headers["organiser"])

    response, certified = races.run_threads([object_, run_task(app, start, ends)])
    status, open_objections, actions = settled(app, level_id)
    if response.status_code == 201:
        assert (certified, status, open_objections) == (0, "pending", 1)
    else:
        assert response.get_json()["code"] == "star_level_not_pending"
        assert (certified, status, open_objections) == (1, "certified", 0)
    assert actions.count("star_level.certified") == certified
