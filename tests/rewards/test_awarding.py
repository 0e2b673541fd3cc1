"""Awarding through the API: served shifts (rounding, daily cap, streaks, replays), rejected presence,
confirmed reports, hand-entered hours; races on real commits."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from patrols import signals as patrol_signals
from patrols.models import Patrol
from patrols.presence.tasks import close_forgotten_check_outs
from rewards.awarding import service as awarding
from rewards.awarding.models import ServiceRecord
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry
from rewards.rules.models import PointRule
from tests import factories, races
from tests.problems import assert_problem
from tests.rewards.support import (  # noqa: F401
    API,
    FAR,
    INSIDE,
    as_,
    balance,
    check_in,
    check_out,
    event,
    history,
    ledger_invariant,
    serve,
    set_rule,
    shift_for,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(days_ago: int, hour: int, tz: ZoneInfo = SHANGHAI) -> datetime:
    """``hour`` o'clock on the local day ``days_ago`` before today, in UTC."""
    today = utcnow().astimezone(tz).date()
    return datetime.combine(today - timedelta(days=days_ago), time(hour), tzinfo=tz).astimezone(UTC)


def serve_at(client: Any, grid: Any, volunteer: Any, starts_at: datetime, hours: float = 2) -> dict[str, Any]:
    return serve(client, grid, volunteer, started_ago=utcnow() - starts_at, hours=hours)


def entries(volunteer: Any, reason: str | None = None) -> list[LedgerEntry]:
    stmt = sa.select(LedgerEntry).where(LedgerEntry.volunteer_id == volunteer.id).order_by(LedgerEntry.id)
    if reason:
        stmt = stmt.where(LedgerEntry.reason == reason)
    return list(db.session.scalars(stmt))


def records(volunteer: Any) -> list[ServiceRecord]:
    return list(db.session.scalars(
        sa.select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id).order_by(ServiceRecord.id)
    ))


@pytest.fixture
def admin(tree: Any) -> Any:
    return factories.make_user("admin", tree.city)


# --- served shifts -------------------------------------------------------------------------------


def test_a_served_shift_records_service_and_pays_by_the_rule(client, tree, admin) -> None:
    set_rule(client, admin, tree.city, expiry_years=1)
    volunteer = factories.make_volunteer(tree.grid_a)

    served = serve(client, tree.grid_a, volunteer)

    assert served["patrol"]["served_minutes"] == 120
    [record] = records(volunteer)
    assert (record.source_type, record.source_id, record.minutes) == ("patrol", str(served["patrol"]["id"]), 120)
    assert record.served_on == served["shift"].starts_at.astimezone(SHANGHAI).date()
    assert record.grid_id == tree.grid_a.id and record.voided_at is None
    [item] = history(client, volunteer)
    assert (item["amount"], item["reason"], item["rule_version"]) == (20, "served_shift", 1)
    assert (item["source_type"], item["source_id"]) == ("patrol", str(served["patrol"]["id"]))
    # Earned in the (local) year of the shift, lapses at the end of the next one, in the city's time
    # zone: the shift's year, not today's (it began three hours ago: last year, early on 1 January).
    year = served["shift"].starts_at.astimezone(SHANGHAI).year
    assert datetime.fromisoformat(item["expires_at"]) == datetime(year + 2, 1, 1, tzinfo=SHANGHAI)
    summary = client.get(f"{API}/me/points", headers=as_(volunteer)).get_json()
    assert summary["balance"] == 20 and summary["service_minutes"] == 120 and summary["service_hours"] == 2.0


@pytest.mark.parametrize(
    ("rounding", "points_per_hour", "minutes", "points"),
    [(15, 10, 50, 7), (15, 10, 59, 7), (15, 10, 60, 10), (30, 10, 44, 5), (1, 7, 61, 7), (60, 10, 59, 0)],
)
def test_served_minutes_round_down_to_the_unit(client, tree, admin, rounding, points_per_hour, minutes, points) -> None:
    set_rule(client, admin, tree.city, rounding_minutes=rounding, points_per_hour=points_per_hour)
    volunteer = factories.make_volunteer(tree.grid_a)

    served = serve(client, tree.grid_a, volunteer, minutes=minutes)

    assert served["patrol"]["served_minutes"] == minutes
    assert balance(client, volunteer) == points
    assert len(entries(volunteer)) == (1 if points else 0)
    assert [r.minutes for r in records(volunteer)] == [minutes]  # service counts unrounded


def test_replays_of_the_served_event_pay_once(client, tree, admin) -> None:
    set_rule(client, admin, tree.city)
    volunteer = factories.make_volunteer(tree.grid_a)
    shift, assignment = shift_for(tree.grid_a, volunteer, started_ago=timedelta(hours=3))
    check_in(client, volunteer, assignment, event(shift.starts_at))
    out = event(shift.ends_at)

    first = check_out(client, volunteer, assignment, out, **{"Idempotency-Key": "out-1"})
    again = check_out(client, volunteer, assignment, out)  # the phone sends the same check-out twice
    keyed = check_out(client, volunteer, assignment, out, **{"Idempotency-Key": "out-1"})
    assert first.status_code == again.status_code == keyed.status_code == 200
    assert keyed.headers.get("Idempotent-Replayed") == "true"
    assert_problem(check_out(client, volunteer, assignment, event(shift.ends_at)), 409, "already_checked_out")
    # The event itself delivered again (a redelivered message, a second listener run).
    patrol = first.get_json()
    for _ in range(2):
        patrol_signals.shift_served.send(
            patrol_signals.SENDER, patrol_id=patrol["id"], assignment_id=assignment.id, shift_id=shift.id,
            volunteer_id=volunteer.id, served_minutes=patrol["served_minutes"],
        )
    db.session.flush()

    assert [(e.reason, e.amount) for e in entries(volunteer)] == [("served_shift", 20)]
    assert len(records(volunteer)) == 1
    assert balance(client, volunteer) == 20


def test_without_a_rule_service_counts_but_earns_nothing(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    serve(client, tree.grid_a, volunteer)
    assert [r.minutes for r in records(volunteer)] == [120]
    assert entries(volunteer) == [] and balance(client, volunteer) == 0


def test_the_daily_cap_limits_points_per_local_day(client, tree, admin) -> None:
    set_rule(client, admin, tree.city, daily_cap=25)
    volunteer = factories.make_volunteer(tree.grid_a)

    for hour in (8, 13, 18):  # three 2-hour shifts yesterday (local): 20 + 5 (cut) + 0
        serve_at(client, tree.grid_a, volunteer, local(1, hour))
    serve_at(client, tree.grid_a, volunteer, local(2, 10))  # the day before: its own cap

    assert [e.amount for e in entries(volunteer, "served_shift")] == [20, 5, 20]
    assert len(records(volunteer)) == 4  # every shift still counts as service
    assert balance(client, volunteer) == 45


def test_the_local_day_is_the_grids_time_zone(client, tree) -> None:
    """03:00 UTC is 11:00 the same day in Shanghai and 19:00 the day before in Los Angeles."""
    starts = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)
    la_grid = factories.make_area(AreaLevel.GRID, tree.community_b, timezone="America/Los_Angeles",
                                  boundary=factories.square(109.80, 40.63))
    days = {}
    for grid in (tree.grid_a, la_grid):
        volunteer = factories.make_volunteer(grid)
        shift = factories.make_shift(grid, starts_in=starts - utcnow())
        awarding.award_served_shift(900_000 + grid.id, volunteer.id, shift.id, 60)
        days[grid.timezone] = records(volunteer)[0].served_on
    assert days == {"Asia/Shanghai": date(2026, 1, 10), "America/Los_Angeles": date(2026, 1, 9)}


# --- streaks -------------------------------------------------------------------------------------


class Streaks:
    """Served-shift events for one volunteer on chosen local days (the event, as patrols sends it)."""

    def __init__(self, grid: Any) -> None:
        self.grid = grid
        self.volunteer = factories.make_volunteer(grid)
        self.patrol_ids: dict[int, int] = {}

    def serve(self, days_ago: int, hour: int = 10) -> int:
        shift = factories.make_shift(self.grid, starts_in=local(days_ago, hour) - utcnow())
        patrol_id = 800_000 + shift.id
        self.patrol_ids[days_ago] = patrol_id
        patrol_signals.shift_served.send(
            patrol_signals.SENDER, patrol_id=patrol_id, assignment_id=0, shift_id=shift.id,
            volunteer_id=self.volunteer.id, served_minutes=60,
        )
        return patrol_id

    def bonuses(self) -> list[str]:
        return [e.source_id.split(":", 1)[1] for e in entries(self.volunteer, "streak_bonus")]

    def window(self, first_ago: int, last_ago: int) -> str:
        today = utcnow().astimezone(SHANGHAI).date()
        return f"{today - timedelta(days=first_ago)}:{today - timedelta(days=last_ago)}"


@pytest.fixture
def streak_rule(client: Any, tree: Any, admin: Any) -> dict[str, Any]:
    return set_rule(client, admin, tree.city, streak_days=3, streak_bonus=15,
                    effective_from=(utcnow() - timedelta(days=60)).isoformat())


def test_a_streak_pays_once_per_run_of_n_days(tree, streak_rule) -> None:
    run = Streaks(tree.grid_a)
    for days_ago in (20, 19):
        run.serve(days_ago)
    assert run.bonuses() == []
    run.serve(18)
    assert run.bonuses() == [run.window(20, 18)]
    run.serve(18, hour=16)  # a second shift the same day is not another day
    for days_ago in (17, 16, 15, 14):
        run.serve(days_ago)
    # 7 days in a row: windows never share a day, so two bonuses, the 7th day starts a new run.
    assert run.bonuses() == [run.window(20, 18), run.window(17, 15)]
    assert [e.amount for e in entries(run.volunteer, "streak_bonus")] == [15, 15]
    assert all(e.rule_version == 1 for e in entries(run.volunteer, "streak_bonus"))


def test_a_gap_breaks_the_streak(tree, streak_rule) -> None:
    run = Streaks(tree.grid_a)
    for days_ago in (10, 9, 7, 6):
        run.serve(days_ago)
    assert run.bonuses() == []


def test_days_arriving_out_of_order_pay_the_same_window_once(tree, streak_rule) -> None:
    run = Streaks(tree.grid_a)
    for days_ago in (10, 8, 9):  # the middle day synced last
        run.serve(days_ago)
    assert run.bonuses() == [run.window(10, 8)]
    run.serve(11)  # an earlier day arriving later overlaps the paid window: no second bonus
    assert run.bonuses() == [run.window(10, 8)]


def test_a_replayed_day_pays_no_second_streak(tree, streak_rule) -> None:
    run = Streaks(tree.grid_a)
    for days_ago in (5, 4, 3):
        run.serve(days_ago)
    patrol_signals.shift_served.send(
        patrol_signals.SENDER, patrol_id=run.patrol_ids[3], assignment_id=0,
        shift_id=factories.make_shift(tree.grid_a, starts_in=local(3, 10) - utcnow()).id,
        volunteer_id=run.volunteer.id, served_minutes=60,
    )
    assert run.bonuses() == [run.window(5, 3)]
    assert len(records(run.volunteer)) == 3


def test_a_rejected_day_takes_its_streak_back(tree, streak_rule) -> None:
    run = Streaks(tree.grid_a)
    for days_ago in (5, 4, 3):
        run.serve(days_ago)
    assert ledger.balance_of(run.volunteer.id) == 3 * 10 + 15

    patrol_signals.presence_reviewed.send(
        patrol_signals.SENDER, patrol_id=run.patrol_ids[4], assignment_id=0, volunteer_id=run.volunteer.id,
        presence_status="rejected", reason="定位造假", actor_id=None,
    )

    reversals = entries(run.volunteer, "reversal")
    assert sorted(-e.amount for e in reversals) == [10, 15]
    assert ledger.balance_of(run.volunteer.id) == 20
    run.serve(4, hour=15)  # served again that day (another shift): the window is paid already
    assert len(entries(run.volunteer, "streak_bonus")) == 1


# --- presence rejected after points were given -----------------------------------------------------


def served_then_flagged(client: Any, tree: Any, volunteer: Any) -> dict[str, Any]:
    """Checked in, closed automatically (served, paid), then a check-out from 5 km away: review."""
    shift, assignment = shift_for(tree.grid_a, volunteer, started_ago=timedelta(hours=3))
    assert check_in(client, volunteer, assignment, event(shift.starts_at)).status_code == 200
    assert close_forgotten_check_outs() == 1
    late = check_out(client, volunteer, assignment, event(shift.ends_at, at=FAR)).get_json()
    assert late["presence_status"] == "needs_review" and late["served_minutes"] == 120
    return late


def test_presence_rejected_after_points_reverses_them_and_voids_the_service(client, tree, admin) -> None:
    set_rule(client, admin, tree.city)
    volunteer = factories.make_volunteer(tree.grid_a)
    patrol = served_then_flagged(client, tree, volunteer)
    assert balance(client, volunteer) == 20
    organiser = factories.make_user("organiser", tree.community_a)

    response = client.post(f"{API}/patrols/{patrol['id']}/reject", json={"reason": "定位造假"}, headers=as_(organiser))

    assert response.status_code == 200, response.get_json()
    earned, reversal = entries(volunteer)
    assert (reversal.amount, reversal.reason, reversal.reverses_id) == (-20, "reversal", earned.id)
    assert (reversal.source_type, reversal.source_id, reversal.actor_id) == ("entry", str(earned.id), organiser.id)
    assert "定位造假" in reversal.note
    assert earned.amount == 20  # the original entry is untouched
    [record] = records(volunteer)
    assert record.voided_at is not None
    summary = client.get(f"{API}/me/points", headers=as_(volunteer)).get_json()
    assert summary["balance"] == 0 and summary["service_minutes"] == 0
    # The review event again (redelivered): nothing more.
    patrol_signals.presence_reviewed.send(
        patrol_signals.SENDER, patrol_id=patrol["id"], assignment_id=patrol["assignment_id"],
        volunteer_id=volunteer.id, presence_status="rejected", reason="again", actor_id=organiser.id,
    )
    assert len(entries(volunteer)) == 2


def test_points_already_spent_stay_spent_and_the_reversal_says_so(client, tree, admin) -> None:
    set_rule(client, admin, tree.city)
    volunteer = factories.make_volunteer(tree.grid_a)
    patrol = served_then_flagged(client, tree, volunteer)
    ledger.append(volunteer.id, -15, "redemption", "redemption", "test-1")
    db.session.flush()
    organiser = factories.make_user("organiser", tree.community_a)

    client.post(f"{API}/patrols/{patrol['id']}/reject", json={"reason": "定位造假"}, headers=as_(organiser))

    [reversal] = entries(volunteer, "reversal")
    assert reversal.amount == -5 and "15 of 20 points were already spent" in reversal.note
    assert balance(client, volunteer) == 0


def test_approved_presence_keeps_its_points(client, tree, admin) -> None:
    set_rule(client, admin, tree.city)
    volunteer = factories.make_volunteer(tree.grid_a)
    patrol = served_then_flagged(client, tree, volunteer)
    organiser = factories.make_user("organiser", tree.community_a)
    client.post(f"{API}/patrols/{patrol['id']}/approve", json={"reason": "ok"}, headers=as_(organiser))
    assert balance(client, volunteer) == 20 and records(volunteer)[0].voided_at is None


# --- confirmed reports -----------------------------------------------------------------------------


def file_report(client: Any, volunteer: Any, level: str) -> int:
    body = {
        "client_id": str(uuid.uuid4()), "category": "safety_hazard", "level": level, "description": "井盖缺失",
        "lat": INSIDE[0], "lon": INSIDE[1], "accuracy_m": 8.0,
        "device_time": (utcnow() - timedelta(minutes=3)).isoformat(),
    }
    response = client.post(f"{API}/reports", json=body, headers=as_(volunteer))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_a_confirmed_report_earns_its_levels_bonus_once(client, tree, admin) -> None:
    set_rule(client, admin, tree.city, report_bonus={"red": 20, "green": 2})
    volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    red, green, yellow = (file_report(client, volunteer, level) for level in ("red", "green", "yellow"))
    assert balance(client, volunteer) == 0  # filed is not confirmed

    assert client.post(f"{API}/reports/{red}/acknowledge", json={}, headers=as_(organiser)).status_code == 200
    client.post(f"{API}/reports/{red}/resolve", json={"note": "已修复"}, headers=as_(organiser))
    client.post(f"{API}/reports/{green}/resolve", json={"note": "已处理"}, headers=as_(organiser))
    client.post(f"{API}/reports/{yellow}/acknowledge", json={}, headers=as_(organiser))  # no bonus set

    bonuses = entries(volunteer, "report_bonus")
    assert [(e.source_id, e.amount, e.actor_id) for e in bonuses] == [
        (str(red), 20, organiser.id), (str(green), 2, organiser.id)
    ]
    patrol_signals.report_status_changed.send(
        patrol_signals.SENDER, report_id=red, from_status="open", to_status="acknowledged",
        actor_id=organiser.id, note=None,
    )
    assert balance(client, volunteer) == 22


# --- hours entered by hand -------------------------------------------------------------------------


def post_hours(client: Any, caller: Any, volunteer: Any, **overrides: Any) -> Any:
    body = {"volunteer_id": volunteer.id, "served_on": local(1, 12).astimezone(SHANGHAI).date().isoformat(),
            "minutes": 95, "note": "社区防疫值守"}
    body.update(overrides)
    extra = body.pop("headers", {})
    return client.post(f"{API}/service-hours", json=body, headers=as_(caller, **extra))


def test_hand_entered_hours_count_as_service_but_earn_only_if_the_rule_says(client, tree, admin) -> None:
    set_rule(client, admin, tree.city)  # v1 (from a month ago): hand-entered hours earn nothing
    set_rule(client, admin, tree.city, manual_hours_earn_points=True, daily_cap=20,
             effective_from=local(2, 0).isoformat())  # v2 from the day before yesterday: they do
    volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    day = lambda days_ago: local(days_ago, 12).astimezone(SHANGHAI).date().isoformat()  # noqa: E731

    response = post_hours(client, organiser, volunteer, served_on=day(5))

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["minutes"], body["source_type"], body["points_awarded"], body["created_by"]) == (
        95, "manual", 0, organiser.id)
    assert body["served_on"] == day(5) and body["grid_id"] == tree.grid_a.id
    assert balance(client, volunteer) == 0
    assert client.get(f"{API}/me/points", headers=as_(volunteer)).get_json()["service_minutes"] == 95

    paid = post_hours(client, organiser, volunteer, minutes=100, served_on=day(1)).get_json()
    assert paid["points_awarded"] == 15  # 100 min → 90 → 15 points
    capped = post_hours(client, organiser, volunteer, minutes=60, served_on=day(1)).get_json()
    assert capped["points_awarded"] == 5  # the day's cap of 20
    assert [(e.reason, e.rule_version) for e in entries(volunteer)] == [("manual_hours", 2)] * 2
    assert capped["ledger_entry_id"] == entries(volunteer)[-1].id


def test_hand_entered_hours_are_refused_outside_scope_and_for_bad_days(client, tree, admin) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    tomorrow = (utcnow().astimezone(SHANGHAI).date() + timedelta(days=1)).isoformat()
    # Outside the organiser's area is the same answer as an id that does not exist.
    outside = post_hours(client, factories.make_user("organiser", tree.community_b), volunteer)
    unknown = post_hours(client, organiser, volunteer, volunteer_id=999_999)
    assert assert_problem(unknown, 422, "validation_failed")["errors"] == {"volunteer_id": ["Unknown volunteer."]}
    assert outside.get_data() == unknown.get_data()
    assert_problem(post_hours(client, volunteer, volunteer), 403, "forbidden")
    for overrides, field in (
        ({"served_on": tomorrow}, "served_on"),
        ({"served_on": "2020-01-01"}, "served_on"),
        ({"minutes": 0}, "minutes"),
        ({"minutes": 1441}, "minutes"),
        ({"minutes": 1.5}, "minutes"),
        ({"note": "  "}, "note"),
        ({"extra": 1}, "extra"),
    ):
        problem = assert_problem(post_hours(client, organiser, volunteer, **overrides), 422, "validation_failed")
        assert field in problem["errors"]
    assert post_hours(client, organiser, volunteer, minutes=1400).status_code == 201
    full = assert_problem(post_hours(client, organiser, volunteer, minutes=41), 422, "validation_failed")
    assert "minutes" in full["errors"]
    pending = factories.make_volunteer(tree.grid_a, status="pending")
    assert_problem(post_hours(client, organiser, pending), 409, "volunteer_not_vetted")
    assert [r.minutes for r in records(volunteer)] == [1400] and records(pending) == []


def test_hand_entered_hours_replay_with_the_same_idempotency_key(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    key = {"Idempotency-Key": "hours-1"}
    first = post_hours(client, organiser, volunteer, headers=key)
    again = post_hours(client, organiser, volunteer, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert_problem(post_hours(client, organiser, volunteer, minutes=30, headers=key), 409, "idempotency_key_reused")
    assert len(records(volunteer)) == 1


# --- races on real commits -------------------------------------------------------------------------


def _committed_city(app: Flask, **rule: Any) -> dict[str, Any]:
    with app.app_context():
        city, _district, _subdistrict, _community, grid = factories.make_branch()
        db.session.add(PointRule(city_id=city.id, version=1, effective_from=utcnow() - timedelta(days=30),
                                 points_per_hour=10, rounding_minutes=15, report_bonus={}, **rule))
        volunteer = factories.make_volunteer(grid)
        shifts = [factories.make_shift(grid, starts_in=local(1, hour) - utcnow()) for hour in (8, 13)]
        assignments = [factories.make_assignment(shift, volunteer) for shift in shifts]
        ids = {
            "volunteer_id": volunteer.id,
            "headers": factories.headers_for(volunteer.user),
            "shifts": [(s.id, s.starts_at, s.ends_at) for s in shifts],
            "assignments": [a.id for a in assignments],
        }
        db.session.commit()
        db.session.remove()
    return ids


def _at_once(count: int, work: Any) -> list[Any]:
    barrier = races.barrier(count)

    def runner(index: int) -> Any:
        def run() -> Any:
            barrier.wait()
            return work(index)

        return run

    return races.run_threads([runner(i) for i in range(count)])


def _ledger_of(app: Flask, volunteer_id: int) -> tuple[list[tuple[str, int]], int]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(LedgerEntry.reason, LedgerEntry.amount).where(LedgerEntry.volunteer_id == volunteer_id)
        ).all()
        count = db.session.scalar(
            sa.select(sa.func.count()).select_from(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer_id)
        )
        return [tuple(row) for row in rows], count


@pytest.mark.committing
def test_the_same_served_event_processed_at_once_pays_once(app: Flask) -> None:
    ids = _committed_city(app)
    shift_id = ids["shifts"][0][0]

    def deliver(_index: int) -> None:
        with app.app_context():
            patrol_signals.shift_served.send(
                patrol_signals.SENDER, patrol_id=424242, assignment_id=ids["assignments"][0], shift_id=shift_id,
                volunteer_id=ids["volunteer_id"], served_minutes=120,
            )
            db.session.commit()
            db.session.remove()

    _at_once(6, deliver)

    assert _ledger_of(app, ids["volunteer_id"]) == ([("served_shift", 20)], 1)


@pytest.mark.committing
def test_the_same_check_out_sent_at_once_pays_once(app: Flask) -> None:
    ids = _committed_city(app)
    _shift_id, starts_at, ends_at = ids["shifts"][0]
    assignment_id = ids["assignments"][0]
    client = app.test_client()
    body_in = event(starts_at)
    assert client.post(f"{API}/assignments/{assignment_id}/check-in", json=body_in, headers=ids["headers"]).status_code == 200
    body_out = event(ends_at)

    def send(_index: int) -> int:
        response = app.test_client().post(
            f"{API}/assignments/{assignment_id}/check-out", json=body_out, headers=ids["headers"]
        )
        return response.status_code

    assert set(_at_once(6, send)) == {200}
    assert _ledger_of(app, ids["volunteer_id"]) == ([("served_shift", 20)], 1)
    with app.app_context():
        assert db.session.scalar(sa.select(Patrol.served_minutes).where(Patrol.assignment_id == assignment_id)) == 120


@pytest.mark.committing
def test_two_shifts_of_one_day_served_at_once_keep_the_daily_cap(app: Flask) -> None:
    ids = _committed_city(app, daily_cap=25)

    def deliver(index: int) -> None:
        with app.app_context():
            patrol_signals.shift_served.send(
                patrol_signals.SENDER, patrol_id=515_000 + index, assignment_id=ids["assignments"][index],
                shift_id=ids["shifts"][index][0], volunteer_id=ids["volunteer_id"], served_minutes=120,
            )
            db.session.commit()
            db.session.remove()

    _at_once(2, deliver)

    rows, count = _ledger_of(app, ids["volunteer_id"])
    assert count == 2 and sorted(amount for _, amount in rows) == [5, 20]
