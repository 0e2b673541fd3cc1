"""Leaderboards: ranking by hours and points earned, area boards, scope, the opt-out, and the
totals they read (kept beside the records and entries, like the balance beside the ledger)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from core.extensions import db
from rewards.awarding import service as awarding
from rewards.awarding.models import ServiceRecord
from rewards.leaderboards import totals
from rewards.leaderboards.models import LeaderboardTotal
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, LedgerReason
from tests import factories
from tests.conftest import Tree
from tests.factories import headers_for
from tests.problems import EN, assert_problem

API = "/api/v1/leaderboards"
NOV = "period=month&value=2026-11"


@pytest.fixture(autouse=True)
def _ledger_agrees() -> Iterator[None]:
    yield
    assert ledger.check_invariant() == []


def serve(volunteer: Any, day: date, minutes: int, *, voided: bool = False) -> ServiceRecord:
    record = ServiceRecord(
        volunteer_id=volunteer.id, source_type="manual", source_id=uuid.uuid4().hex, minutes=minutes,
        served_on=day, grid_id=volunteer.home_grid_id,
        voided_at=datetime.now(UTC) if voided else None,
    )
    db.session.add(record)
    db.session.flush()
    return record


def earn(volunteer: Any, points: int, at: datetime, reason: str = LedgerReason.ADJUSTMENT, **extra: Any) -> LedgerEntry:
    entry = ledger.append(volunteer.id, points, reason, "test", uuid.uuid4().hex, **extra)
    assert entry is not None
    # Test data of the past: the ledger stamps entries "now".
    db.session.execute(sa.update(LedgerEntry).where(LedgerEntry.id == entry.id).values(created_at=at))
    db.session.flush()
    return entry


def settle(*volunteers: Any) -> None:
    """The totals as the writers keep them (a recount: the writers' own counting is tested below)."""
    totals.rebuild([v.id for v in volunteers])
    db.session.flush()


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+08:00")


@pytest.fixture
def people(tree: Tree) -> dict[str, Any]:
    return {
        "ann": factories.make_volunteer(tree.grid_a, real_name="安娜"),
        "bo": factories.make_volunteer(tree.grid_a, real_name="博文"),
        "cai": factories.make_volunteer(tree.grid_a_east, real_name="蔡明"),
        "dong": factories.make_volunteer(tree.grid_a2, real_name="董立"),
        "ed": factories.make_volunteer(tree.grid_b, real_name="鄂尔"),
        "organiser": factories.make_user("organiser", tree.community_a),
        "staff_a": factories.make_user("staff", tree.district_a),
        "staff_b": factories.make_user("staff", tree.district_b),
        "admin": factories.make_user("admin", tree.city),
    }


@pytest.fixture
def november(people: dict[str, Any]) -> dict[str, Any]:
    """Hours: ann 5, bo 3 (+2 voided), cai 3, dong 4, ed 9; October and other years apart."""
    ann, bo, cai, dong, ed = (people[k] for k in ("ann", "bo", "cai", "dong", "ed"))
    serve(ann, date(2026, 11, 2), 180)
    serve(ann, date(2026, 11, 20), 120)
    serve(bo, date(2026, 11, 3), 180)
    serve(bo, date(2026, 11, 4), 120, voided=True)
    serve(cai, date(2026, 11, 30), 180)
    serve(dong, date(2026, 11, 5), 240)
    serve(ed, date(2026, 11, 6), 540)
    serve(bo, date(2026, 10, 31), 600)
    serve(cai, date(2025, 11, 10), 600)
    settle(ann, bo, cai, dong, ed)
    return people


def get(client: Any, user: Any, query: str, **headers: str) -> dict[str, Any]:
    response = client.get(f"{API}?{query}", headers=headers_for(user, **headers))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def rows(board: dict[str, Any]) -> list[tuple[int, str, float]]:
    return [(row["rank"], row["name"], row["hours"]) for row in board["items"]]


# --- ranking -------------------------------------------------------------------------------------


def test_volunteers_of_a_community_by_hours_in_a_month(client, tree: Tree, november) -> None:
    board = get(client, november["organiser"], f"area_id={tree.community_a.id}&{NOV}&metric=hours")
    assert rows(board) == [(1, "安娜", 5.0), (2, "博文", 3.0), (2, "蔡明", 3.0)]
    assert board["ranked"] == 3 and board["me"] is None
    assert board["area"] == {"id": tree.community_a.id, "name": "东站社区", "level": "community"}
    first = board["items"][0]
    assert first["volunteer_id"] == november["ann"].id and first["grid_name"] and first["anonymous"] is False


def test_a_year_and_a_district(client, tree: Tree, november) -> None:
    board = get(client, november["staff_a"], f"area_id={tree.district_a.id}&period=year&value=2026&metric=hours")
    assert rows(board) == [(1, "博文", 13.0), (2, "安娜", 5.0), (3, "董立", 4.0), (4, "蔡明", 3.0)]
    board = get(client, november["admin"], f"area_id={tree.city.id}&period=year&value=2025&metric=hours")
    assert rows(board) == [(1, "蔡明", 10.0)]


def test_points_are_points_earned_less_reversals_not_spending_or_expiry(client, tree: Tree, people) -> None:
    ann, bo = people["ann"], people["bo"]
    shift = earn(ann, 100, at("2026-11-03"), LedgerReason.SERVED_SHIFT)
    earn(ann, 20, at("2026-11-04"), LedgerReason.REPORT_BONUS)
    earn(bo, 90, at("2026-11-05"))
    ledger.append(ann.id, -50, LedgerReason.REDEMPTION, "redemption", "1")
    ledger.append(bo.id, -30, LedgerReason.EXPIRY, "expiry", "1")
    # Rejected in December, what is left of November's shift points (50 were spent) is reversed:
    # November loses the whole 100.
    earn(ann, -50, at("2026-12-01"), LedgerReason.REVERSAL, reverses_id=shift.id)
    settle(ann, bo)
    board = get(client, people["staff_a"], f"area_id={tree.district_a.id}&{NOV}&metric=points")
    assert [(r["rank"], r["name"], r["points"]) for r in board["items"]] == [(1, "博文", 90), (2, "安娜", 20)]
    assert get(client, people["staff_a"], f"area_id={tree.district_a.id}&period=month&value=2026-12&metric=points")[
        "items"] == []


def test_the_month_is_local_time(client, tree: Tree, people) -> None:
    earn(people["ann"], 7, datetime(2026, 11, 30, 16, 30, tzinfo=UTC))  # 1 December, 00:30 in Baotou
    settle(people["ann"])
    query = f"area_id={tree.grid_a.id}&period=month&metric=points&value="
    assert get(client, people["staff_a"], query + "2026-11")["items"] == []
    assert [r["points"] for r in get(client, people["staff_a"], query + "2026-12")["items"]] == [7]


def test_only_active_volunteers_are_ranked(client, tree: Tree, november) -> None:
    november["ann"].status = "suspended"
    db.session.flush()
    board = get(client, november["organiser"], f"area_id={tree.community_a.id}&{NOV}&metric=hours")
    assert [name for _, name, _ in rows(board)] == ["博文", "蔡明"]
    assert get(client, november["ann"].user, f"{NOV}&metric=hours")["me"] == {"rank": None, "hours": 5.0, "points": 0}


def test_areas_ranked_by_their_volunteers(client, tree: Tree, november) -> None:
    admin = november["admin"]
    board = get(client, admin, f"area_id={tree.city.id}&by=district&{NOV}&metric=hours")
    assert [(r["rank"], r["area_id"], r["hours"]) for r in board["items"]] == [
        (1, tree.district_a.id, 15.0), (2, tree.district_b.id, 9.0)]
    board = get(client, admin, f"area_id={tree.district_a.id}&by=community&{NOV}&metric=hours")
    assert [(r["name"], r["hours"]) for r in board["items"]] == [("东站社区", 11.0), ("北梁社区", 4.0)]
    board = get(client, admin, f"area_id={tree.community_a.id}&by=grid&{NOV}&metric=hours&limit=1")
    assert [(r["area_id"], r["hours"]) for r in board["items"]] == [(tree.grid_a.id, 8.0)]
    assert board["ranked"] == 2 and board["items"][0]["volunteer_id"] is None
    problem = assert_problem(client.get(f"{API}?area_id={tree.community_a.id}&by=district&{NOV}&metric=hours",
                                        headers=headers_for(admin)), 422, "validation_failed")
    assert "by" in problem["errors"]


# --- who sees which board ------------------------------------------------------------------------


def test_volunteers_see_boards_of_areas_containing_their_home_grid_and_their_place(client, tree: Tree, november) -> None:
    bo = november["bo"].user
    for area in (tree.grid_a, tree.community_a, tree.district_a, tree.city):
        board = get(client, bo, f"area_id={area.id}&{NOV}&metric=hours")
        assert board["me"]["hours"] == 3.0
    assert get(client, bo, f"area_id={tree.community_a.id}&{NOV}&metric=hours")["me"]["rank"] == 2
    assert get(client, bo, f"area_id={tree.city.id}&{NOV}&metric=hours")["me"]["rank"] == 4
    default = get(client, bo, f"{NOV}&metric=hours")
    assert default["area"]["id"] == tree.grid_a.id
    for area in (tree.grid_a_east, tree.community_a2, tree.district_b):
        assert_problem(client.get(f"{API}?area_id={area.id}&{NOV}&metric=hours", headers=headers_for(bo)),
                       403, "out_of_scope")
    nobody = get(client, november["dong"].user, f"{NOV}&metric=points")
    assert nobody["me"] == {"rank": None, "hours": 4.0, "points": 0}


def test_managers_see_boards_of_their_subtree(client, tree: Tree, november) -> None:
    assert get(client, november["organiser"], f"{NOV}&metric=hours")["area"]["id"] == tree.community_a.id
    assert get(client, november["organiser"], f"area_id={tree.grid_a.id}&{NOV}&metric=hours")["ranked"] == 2
    for user, area in ((november["organiser"], tree.district_a), (november["staff_b"], tree.community_a)):
        assert_problem(client.get(f"{API}?area_id={area.id}&{NOV}&metric=hours", headers=headers_for(user)),
                       403, "out_of_scope")


@pytest.mark.parametrize(
    "query",
    [
        "period=month&value=2026&metric=hours",
        "period=month&value=2026-13&metric=hours",
        "period=year&value=2026-11&metric=hours",
        "period=year&value=2026%0A&metric=hours",  # `$` alone lets a trailing newline through
        "period=month&value=1999-12&metric=hours",
        "period=week&metric=hours",
        "period=month&metric=stars",
        "period=month&metric=hours&limit=0",
        "period=month&metric=hours&limit=101",
        "period=month&metric=hours&area_id=999999",
        "period=month&metric=hours&by=city",
        "metric=hours",
    ],
)
def test_bad_arguments_are_422(client, people, query) -> None:
    assert_problem(client.get(f"{API}?{query}", headers=headers_for(people["admin"])), 422, "validation_failed")


def test_the_current_period_is_the_default(client, tree: Tree, people) -> None:
    today = datetime.now(UTC).astimezone(datetime.fromisoformat("2026-01-01T00:00:00+08:00").tzinfo).date()
    serve(people["ann"], today, 60)
    settle(people["ann"])
    board = get(client, people["staff_a"], "period=month&metric=hours")
    assert board["value"] == f"{today.year:04d}-{today.month:02d}" and board["area"]["id"] == tree.district_a.id
    assert rows(board) == [(1, "安娜", 1.0)]
    assert get(client, people["staff_a"], "period=year&metric=hours")["value"] == f"{today.year:04d}"


# --- the opt-out ---------------------------------------------------------------------------------


def test_a_volunteer_who_opts_out_is_anonymous_but_still_counted(client, tree: Tree, november) -> None:
    ann = november["ann"].user
    path = "/api/v1/me/leaderboard-preference"
    assert client.get(path, headers=headers_for(ann)).get_json() == {"opt_out": False}
    for _ in range(2):
        response = client.put(path, json={"opt_out": True}, headers=headers_for(ann))
        assert response.status_code == 200 and response.get_json() == {"opt_out": True}
    assert client.get(path, headers=headers_for(ann)).get_json() == {"opt_out": True}
    board = get(client, november["organiser"], f"area_id={tree.community_a.id}&{NOV}&metric=hours")
    first = board["items"][0]
    assert (first["rank"], first["name"], first["volunteer_id"], first["grid_name"], first["anonymous"]) == (
        1, "匿名志愿者", None, None, True)
    assert board["ranked"] == 3
    english = get(client, november["organiser"], f"area_id={tree.community_a.id}&{NOV}&metric=hours", **EN)
    assert english["items"][0]["name"] == "Anonymous volunteer"
    assert get(client, ann, f"{NOV}&metric=hours")["me"]["rank"] == 1
    client.put(path, json={"opt_out": False}, headers=headers_for(ann))
    assert get(client, november["organiser"], f"area_id={tree.community_a.id}&{NOV}&metric=hours")["items"][0][
        "name"] == "安娜"


def test_the_opt_out_is_for_volunteers_and_checked(client, people) -> None:
    path = "/api/v1/me/leaderboard-preference"
    assert_problem(client.put(path, json={"opt_out": True}, headers=headers_for(people["staff_a"])), 403, "forbidden")
    for bad in ({}, {"opt_out": "maybe"}, {"opt_out": True, "name": "x"}):
        assert_problem(client.put(path, json=bad, headers=headers_for(people["ann"].user)), 422, "validation_failed")


# --- the totals ----------------------------------------------------------------------------------


def test_counting_each_record_and_entry_as_written_equals_a_recount(people) -> None:
    """Replays the writers' calls (``count_service`` per record and void, ``count_entry`` per entry)
    from empty totals: the result is what a recount from the records and entries says."""
    ann, bo = people["ann"], people["bo"]
    records = [serve(ann, date(2026, 11, 2), 90), serve(ann, date(2026, 12, 31), 30), serve(bo, date(2027, 1, 1), 45)]
    voided = serve(bo, date(2026, 11, 9), 120, voided=True)
    shift = earn(ann, 40, at("2026-11-02"), LedgerReason.SERVED_SHIFT)
    earn(bo, 15, at("2026-12-31", 23), LedgerReason.STREAK_BONUS)
    ledger.append(ann.id, -25, LedgerReason.REDEMPTION, "redemption", "7")
    earn(ann, -15, at("2027-01-02"), LedgerReason.REVERSAL, reverses_id=shift.id)
    db.session.execute(sa.delete(LeaderboardTotal))
    for record in [*records, voided]:
        totals.count_service(record.volunteer_id, record.served_on, record.minutes)
    totals.count_service(voided.volunteer_id, voided.served_on, -voided.minutes)
    for entry in db.session.scalars(sa.select(LedgerEntry).order_by(LedgerEntry.id)):
        totals.count_entry(entry)
    assert totals.mismatches([ann.id, bo.id]) == []
    assert totals.stored([ann.id, bo.id]) == {
        ("2026-11", ann.id): (90, 0), ("2026-12", ann.id): (30, 0), ("2026", ann.id): (120, 0),
        ("2027-01", bo.id): (45, 0), ("2027", bo.id): (45, 0),
        ("2026-12", bo.id): (0, 15), ("2026", bo.id): (0, 15),
    }


def test_the_ledger_and_awarding_keep_the_totals_as_they_write(tree: Tree, people) -> None:
    """No recount here: ``ledger.append`` and the awarding of hand-entered hours must count what
    they write (``rewards/leaderboards/totals.py``), or the leaderboards fall behind."""
    ann = people["ann"]
    ledger.append(ann.id, 30, LedgerReason.ADJUSTMENT, "test", uuid.uuid4().hex)
    awarding.award_manual_hours(ann.id, tree.grid_a, date(2026, 11, 2), 90, note="清扫", actor_id=people["organiser"].id)
    assert totals.mismatches([ann.id]) == []
    assert totals.stored([ann.id])[("2026-11", ann.id)][0] == 90
