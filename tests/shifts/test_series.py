"""Repeating shifts through the API: create and expand, top up, edit and cancel all or this-and-following."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from shifts.cli import shifts_cli
from shifts.models import Shift, ShiftSeries
from shifts.series import service as series_service
from shifts.series.tasks import top_up_all, top_up_series
from tests import factories, races
from tests.problems import assert_problem
from tests.shifts.test_planning import as_, count, events, people  # noqa: F401 - fixtures shared

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
HORIZON = timedelta(days=56)


def today() -> date:
    return datetime.now(SHANGHAI).date()


def next_weekday(weekday: int, weeks_ahead: int = 0) -> date:
    """The next ``weekday`` (0 = Monday) after today, plus whole weeks."""
    ahead = (weekday - today().weekday()) % 7 or 7
    return today() + timedelta(days=ahead, weeks=weeks_ahead)


def series_body(grid: Any, **changes: Any) -> dict[str, Any]:
    data = {
        "grid_id": grid.id, "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR", "starts_on": next_weekday(0).isoformat(),
        "start_time": "19:00", "end_time": "21:00", "title": "夜巡", "max_headcount": 3,
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def create(client: Any, user: Any, grid: Any, **changes: Any) -> dict[str, Any]:
    response = client.post(f"{API}/shift-series", json=series_body(grid, **changes), headers=as_(user))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def shifts_of(series_id: int) -> list[Shift]:
    db.session.expire_all()
    return list(
        db.session.scalars(sa.select(Shift).where(Shift.series_id == series_id).order_by(Shift.occurrence_local))
    )


def instant(local: str | datetime, zone: ZoneInfo = SHANGHAI) -> str:
    """How the API writes the local wall-clock time ``local`` of ``zone``: an instant in UTC."""
    local = datetime.fromisoformat(local) if isinstance(local, str) else local
    return local.replace(tzinfo=zone).astimezone(UTC).isoformat()


def occurrence_of(shift: Shift) -> str:
    """A shift's occurrence as a client may send it back: an instant, here with Shanghai's offset."""
    return shift.occurrence_local.replace(tzinfo=SHANGHAI).isoformat()


def local_start(shift: Shift) -> datetime:
    return shift.starts_at.astimezone(ZoneInfo(shift.timezone)).replace(tzinfo=None)


def expected_dates(start: date, weekdays: set[int], until: date | None = None, at: time = time(19)) -> list[date]:
    """Dates from ``start`` on the weekdays whose ``at`` falls inside the horizon from now."""
    end = datetime.now(SHANGHAI).replace(tzinfo=None) + HORIZON
    found, day = [], start
    while datetime.combine(day, at) < end and (until is None or day <= until):
        if day.weekday() in weekdays:
            found.append(day)
        day += timedelta(days=1)
    return found


def make_series(grid: Any, first: datetime, rrule: str = "FREQ=WEEKLY;BYDAY=MO,WE,FR", **template: Any) -> ShiftSeries:
    """A series straight on the model, so that it can begin in the past (the API refuses that)."""
    values = {"title": "夜巡", "min_headcount": 1, "max_headcount": 3, "backup_slots": 0, "required_kinds": []}
    values.update(template)
    series = ShiftSeries(
        grid_id=grid.id, status="active", timezone=grid.timezone, rrule=rrule, first_start_local=first,
        duration_minutes=120, **values,
    )
    db.session.add(series)
    db.session.flush()
    return series


def series_with_a_past(grid: Any) -> tuple[ShiftSeries, list[Shift], list[Shift]]:
    """A Mon/Wed/Fri 19:00 series begun two weeks ago, expanded then and now: (series, past, future)."""
    first = datetime.combine(next_weekday(0, weeks_ahead=-3), time(19))
    series = make_series(grid, first)
    series_service.expand(series, utcnow() - timedelta(days=21))
    series_service.expand(series, utcnow())
    rows = shifts_of(series.id)
    now = utcnow()
    return series, [s for s in rows if s.starts_at <= now], [s for s in rows if s.starts_at > now]


# --- create and expand ---------------------------------------------------------------------------------------


def test_a_series_is_expanded_to_the_horizon(client, tree, people) -> None:
    created = create(client, people.organiser_a, tree.grid_a, meeting_point="东门")
    monday = next_weekday(0)
    assert created["rrule"] == "FREQ=WEEKLY;BYDAY=MO,WE,FR"
    assert (created["weekdays"], created["interval"], created["until"], created["count"]) == (["MO", "WE", "FR"], 1, None, None)
    assert (created["start_time"], created["end_time"], created["duration_minutes"]) == ("19:00", "21:00", 120)
    assert created["first_occurrence"] == instant(f"{monday.isoformat()}T19:00:00")
    assert created["first_occurrence_local"] == f"{monday.isoformat()}T19:00:00"
    assert created["status"] == "active" and created["timezone"] == "Asia/Shanghai"
    rows = shifts_of(created["id"])
    assert [local_start(s).date() for s in rows] == expected_dates(monday, {0, 2, 4})
    assert all(local_start(s).time() == time(19) and s.ends_at - s.starts_at == timedelta(hours=2) for s in rows)
    assert all(s.occurrence_local == local_start(s) and not s.detached and s.meeting_point == "东门" for s in rows)
    assert [s["id"] for s in created["upcoming_shifts"]] == [s.id for s in rows]
    expanded_until = datetime.fromisoformat(created["expanded_until"])
    assert abs(expanded_until - (utcnow() + HORIZON)) < timedelta(minutes=1)
    assert count(AuditEntry, AuditEntry.action == "shift_series.create") == 1
    assert client.get(f"{API}/shift-series/{created['id']}", headers=as_(people.organiser_a)).get_json() == created


def test_a_shift_may_end_after_midnight_and_a_missing_byday_takes_the_first_day(client, tree, people) -> None:
    friday = next_weekday(4)
    created = create(
        client, people.organiser_a, tree.grid_a, rrule="FREQ=WEEKLY;COUNT=3", starts_on=friday.isoformat(),
        start_time="22:00", end_time="02:00",
    )
    assert (created["rrule"], created["duration_minutes"], created["end_time"]) == ("FREQ=WEEKLY;BYDAY=FR;COUNT=3", 240, "02:00")
    rows = shifts_of(created["id"])
    assert [local_start(s).date() for s in rows] == [friday + timedelta(weeks=n) for n in range(3)]
    assert all((s.ends_at.astimezone(SHANGHAI)).time() == time(2) for s in rows)
    assert created["status"] == "ended"  # COUNT=3: nothing left to make


def test_interval_and_until(client, tree, people) -> None:
    monday = next_weekday(0)
    until = monday + timedelta(weeks=4, days=3)
    created = create(
        client, people.organiser_a, tree.grid_a, rrule=f"FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH;UNTIL={until:%Y%m%d}",
        end_time=None, duration_minutes=90,
    )
    assert [local_start(s).date() for s in shifts_of(created["id"])] == [
        monday, monday + timedelta(days=3), monday + timedelta(weeks=2), monday + timedelta(weeks=2, days=3),
        monday + timedelta(weeks=4), monday + timedelta(weeks=4, days=3),
    ]
    assert created["until"] == instant(f"{until.isoformat()}T23:59:59")
    assert created["until_local"] == f"{until.isoformat()}T23:59:59"


def test_an_open_ended_series_is_allowed_and_made_only_to_the_horizon(client, tree, people) -> None:
    created = create(client, people.organiser_a, tree.grid_a, rrule="FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU")
    rows = shifts_of(created["id"])
    assert len(rows) == len(expected_dates(next_weekday(0), set(range(7)))) <= 56
    assert created["status"] == "active"


def test_todays_occurrence_already_past_is_not_made(client, tree, people) -> None:
    created = create(
        client, people.organiser_a, tree.grid_a, rrule="FREQ=WEEKLY;COUNT=2", starts_on=today().isoformat(),
        start_time="00:00", end_time="00:30",
    )
    assert created["first_occurrence_local"] == f"{(today() + timedelta(weeks=1)).isoformat()}T00:00:00"
    assert created["rrule"].endswith("COUNT=1")  # a COUNT counts from starts_on, as RFC 5545 does
    assert len(shifts_of(created["id"])) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rrule": "FREQ=DAILY"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;BYMONTH=1"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=MO;BYSETPOS=1"}, "rrule"),
        ({"rrule": "DTSTART:20270101T190000\nRRULE:FREQ=WEEKLY"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=MO;;"}, "rrule"),
        ({"rrule": "every monday"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;INTERVAL=53"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;COUNT=367"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;COUNT=2;UNTIL=20301231"}, "rrule"),
        ({"rrule": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;UNTIL=20281231"}, "rrule"),  # > 366
        ({"rrule": "FREQ=WEEKLY;UNTIL=20200101"}, "rrule"),  # no occurrence to come
        ({"starts_on": "2020-01-06"}, "starts_on"),
        ({"starts_on": "2099-01-05"}, "starts_on"),
        ({"end_time": None}, "duration_minutes"),
        ({"duration_minutes": 60}, "end_time"),
        ({"end_time": None, "duration_minutes": 721}, "duration_minutes"),
        ({"end_time": "19:00"}, "end_time"),
        ({"end_time": "08:00"}, "end_time"),  # 13 h, into the next day
        ({"start_time": "25:00"}, "start_time"),
        ({"timezone": "Nowhere/Town"}, "timezone"),
        ({"min_headcount": 5}, "min_headcount"),
        ({"required_kinds": [{"kind": "nobody", "minimum": 1}]}, "required_kinds"),
        ({"grid_id": 999_999}, "grid_id"),
    ],
)
def test_bad_series_input_is_422_and_writes_nothing(client, tree, people, changes, field) -> None:
    response = client.post(f"{API}/shift-series", json=series_body(tree.grid_a, **changes), headers=as_(people.organiser_a))
    problem = assert_problem(response, 422, "validation_failed")
    assert field in problem["errors"], problem
    assert count(ShiftSeries) == 0 and count(Shift) == 0 and count(AuditEntry) == 0


def test_rule_errors_say_why(client, tree, people) -> None:
    response = client.post(
        f"{API}/shift-series", json=series_body(tree.grid_a, rrule="FREQ=WEEKLY;COUNT=400"), headers=as_(people.organiser_a)
    )
    assert assert_problem(response, 422, "validation_failed")["errors"] == {"rrule": ["The rule expands past 366 occurrences."]}
    response = client.post(
        f"{API}/shift-series", json=series_body(tree.grid_a, rrule="FREQ=WEEKLY;BYMONTH=2"),
        headers=factories.headers_for(people.organiser_a),
    )
    assert assert_problem(response, 422, "validation_failed")["errors"] == {
        "rrule": ["不支持 BYMONTH：请使用 FREQ=WEEKLY，配合 BYDAY、INTERVAL 以及 UNTIL 或 COUNT。"]
    }


def test_series_are_refused_outside_the_subtree_and_to_volunteers(client, tree, people) -> None:
    assert_problem(client.post(f"{API}/shift-series", json=series_body(tree.grid_b), headers=as_(people.organiser_a)), 403, "out_of_scope")
    assert_problem(client.post(f"{API}/shift-series", json=series_body(tree.grid_b), headers=as_(people.staff_a)), 403, "out_of_scope")
    assert_problem(client.post(f"{API}/shift-series", json=series_body(tree.grid_a), headers=as_(people.volunteer_a)), 403, "forbidden")
    assert_problem(client.post(f"{API}/shift-series", json=series_body(tree.grid_a)), 401, "unauthorized")
    assert count(ShiftSeries) == 0 and count(Shift) == 0

    theirs = create(client, people.organiser_b, tree.grid_b)
    for method, path, payload in (
        ("get", f"{API}/shift-series/{theirs['id']}", None),
        ("patch", f"{API}/shift-series/{theirs['id']}", {"scope": "all", "title": "x"}),
        ("post", f"{API}/shift-series/{theirs['id']}/cancel", {"scope": "all", "reason": "x"}),
    ):
        assert_problem(getattr(client, method)(path, json=payload, headers=as_(people.organiser_a)), 404, "series_not_found")
        assert_problem(getattr(client, method)(path, json=payload, headers=as_(people.volunteer_a)), 403, "forbidden")
    assert_problem(client.get(f"{API}/shift-series/999999", headers=as_(people.admin)), 404, "series_not_found")
    assert {s.title for s in shifts_of(theirs["id"])} == {"夜巡"}


def test_listing_series_in_the_subtree(client, tree, people) -> None:
    mine = [create(client, people.organiser_a, grid)["id"] for grid in (tree.grid_a, tree.grid_a_east)]
    create(client, people.organiser_b, tree.grid_b)
    headers = as_(people.organiser_a)
    page = client.get(f"{API}/shift-series?limit=1", headers=headers).get_json()
    assert [item["id"] for item in page["items"]] == mine[:1] and page["next_cursor"]
    second = client.get(f"{API}/shift-series?limit=1&cursor={page['next_cursor']}", headers=headers).get_json()
    assert [item["id"] for item in second["items"]] == mine[1:] and second["next_cursor"] is None
    assert "upcoming_shifts" not in page["items"][0]
    by_grid = client.get(f"{API}/shift-series?grid_id={tree.grid_a_east.id}", headers=headers).get_json()
    assert [item["id"] for item in by_grid["items"]] == mine[1:]
    assert len(client.get(f"{API}/shift-series", headers=as_(people.admin)).get_json()["items"]) == 3
    assert_problem(client.get(f"{API}/shift-series?under={tree.district_b.id}", headers=headers), 403, "out_of_scope")
    assert_problem(client.get(f"{API}/shift-series", headers=as_(people.volunteer_a)), 403, "forbidden")


# --- top-up --------------------------------------------------------------------------------------------------


def test_top_up_works_through_every_due_series_batch_after_batch(client, tree, people) -> None:
    series_ids = [
        create(client, people.admin, grid)["id"] for grid in (tree.grid_a, tree.grid_a2, tree.grid_b)
    ]
    before = {series_id: len(shifts_of(series_id)) for series_id in series_ids}

    result = top_up_all(utcnow() + timedelta(days=7), batch_size=2)

    assert (result.series, result.shifts) == (3, 9)
    assert all(len(shifts_of(series_id)) == before[series_id] + 3 for series_id in series_ids)



def test_top_up_extends_the_horizon_once(client, tree, people) -> None:
    created = create(client, people.organiser_a, tree.grid_a)
    made_now = len(shifts_of(created["id"]))
    assert top_up_series() == 0  # not due yet
    week_later = utcnow() + timedelta(days=7)
    made = top_up_series(now=week_later)
    rows = shifts_of(created["id"])
    assert made == 3 and len(rows) == made_now + 3
    assert len({s.occurrence_local for s in rows}) == len(rows)
    assert top_up_series(now=week_later) == 0
    assert series_service.expand(db.session.get(ShiftSeries, created["id"]), week_later, since=utcnow()) == []
    assert len(shifts_of(created["id"])) == len(rows)


def test_a_cancelled_or_moved_occurrence_is_never_made_again(client, tree, people) -> None:
    created = create(client, people.organiser_a, tree.grid_a)
    first, second = shifts_of(created["id"])[:2]
    headers = as_(people.organiser_a)
    assert client.post(f"{API}/shifts/{first.id}/cancel", json={"reason": "停电"}, headers=headers).status_code == 200
    moved = (second.starts_at + timedelta(hours=1)).isoformat()
    assert client.patch(f"{API}/shifts/{second.id}", json={"starts_at": moved}, headers=headers).status_code == 200
    before = len(shifts_of(created["id"]))
    series_service.expand(db.session.get(ShiftSeries, created["id"]), utcnow(), since=utcnow())
    assert len(shifts_of(created["id"])) == before


def test_the_cli_tops_up_every_due_series(app, client, tree, people) -> None:
    monday = datetime.combine(next_weekday(0), time(19))
    series = make_series(tree.grid_a, monday)
    result = app.test_cli_runner().invoke(shifts_cli, ["top-up"])
    assert result.exit_code == 0, result.output
    made = len(shifts_of(series.id))
    assert made == len(expected_dates(monday.date(), {0, 2, 4})) and made > 0
    assert result.output.strip() == f"{made} shifts made for 1 series."
    again = app.test_cli_runner().invoke(shifts_cli, ["top-up"])
    assert again.output.strip() == "0 shifts made for 0 series."


def test_a_series_across_dst_in_another_zone(client, tree, people) -> None:
    # 2027-03-14 02:30 does not exist in New York (it becomes 03:30); 2027-11-07 01:30 happens twice.
    created = create(
        client, people.organiser_a, tree.grid_a, timezone="America/New_York", rrule="FREQ=WEEKLY;BYDAY=SU",
        starts_on="2027-03-07", start_time="02:30", end_time="04:30",
    )
    assert created["timezone"] == "America/New_York"
    top_up_series(now=datetime(2027, 3, 1, tzinfo=UTC))
    rows = {s.occurrence_local.date(): s for s in shifts_of(created["id"])}
    assert rows[date(2027, 3, 7)].starts_at == datetime(2027, 3, 7, 7, 30, tzinfo=UTC)  # EST
    assert rows[date(2027, 3, 14)].starts_at == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)  # 03:30 EDT
    assert rows[date(2027, 3, 21)].starts_at == datetime(2027, 3, 21, 6, 30, tzinfo=UTC)  # EDT
    assert all(s.ends_at - s.starts_at == timedelta(hours=2) for s in rows.values())


def test_ambiguous_local_times_take_the_first(client, tree, people) -> None:
    created = create(
        client, people.organiser_a, tree.grid_a, timezone="America/New_York", rrule="FREQ=WEEKLY;BYDAY=SU;COUNT=2",
        starts_on="2027-11-07", start_time="01:30", end_time=None, duration_minutes=60,
    )
    top_up_series(now=datetime(2027, 11, 1, tzinfo=UTC))
    first, second = shifts_of(created["id"])
    assert first.starts_at == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)  # 01:30 EDT, the first of the two
    assert second.starts_at == datetime(2027, 11, 14, 6, 30, tzinfo=UTC)  # 01:30 EST


# --- edit: all ------------------------------------------------------------------------------------------------


def test_editing_all_changes_future_undetached_shifts_only(client, tree, people, events) -> None:
    series, past, future = series_with_a_past(tree.grid_a)
    detached = future[1]
    detached.detached, detached.title = True, "单独修改"
    factories.make_assignment(future[0], people.volunteer_a)
    db.session.flush()

    response = client.patch(
        f"{API}/shift-series/{series.id}", json={"scope": "all", "title": "河道巡逻", "max_headcount": 4},
        headers=as_(people.organiser_a),
    )
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["series"]["id"] == series.id and result["previous_series"] is None
    assert result["series"]["title"] == "河道巡逻" and result["cancelled_shift_ids"] == []
    assert sorted(result["changed_shift_ids"]) == sorted(s.id for s in future if s is not detached)
    rows = {s.id: s for s in shifts_of(series.id)}
    assert all(rows[s.id].title == "夜巡" for s in past)
    assert rows[detached.id].title == "单独修改" and rows[detached.id].max_headcount == 3
    assert all(rows[s.id].title == "河道巡逻" and rows[s.id].max_headcount == 4 for s in future if s is not detached)
    changed = {e["shift_id"]: e for e in events.named("shift_changed")}
    assert set(changed) == set(result["changed_shift_ids"])
    assert changed[future[0].id]["volunteer_ids"] == [people.volunteer_a.id]
    assert changed[future[0].id]["changes"] == {"title": ["夜巡", "河道巡逻"], "max_headcount": [3, 4]}
    assert count(AuditEntry, AuditEntry.action == "shift_series.update") == 1
    assert count(AuditEntry, AuditEntry.action == "shift.update") == len(changed)


def test_editing_all_times_and_days_moves_cancels_and_makes_shifts(client, tree, people, events) -> None:
    series, past, future = series_with_a_past(tree.grid_a)
    wednesday_shift = next(s for s in future if s.occurrence_local.weekday() == 2)
    factories.make_assignment(wednesday_shift, people.volunteer_a)
    response = client.patch(
        f"{API}/shift-series/{series.id}",
        json={"scope": "all", "rrule": "FREQ=WEEKLY;BYDAY=MO,TH,FR", "start_time": "20:00", "reason": "改为周四"},
        headers=as_(people.organiser_a),
    )
    assert response.status_code == 200, response.get_json()
    result = response.get_json()["series"]
    assert (result["rrule"], result["start_time"], result["end_time"]) == ("FREQ=WEEKLY;BYDAY=MO,TH,FR", "20:00", "22:00")
    now = utcnow()
    rows = shifts_of(series.id)
    live_future = [s for s in rows if s.starts_at > now and s.status == "scheduled"]
    assert {local_start(s).weekday() for s in live_future} == {0, 3, 4}
    assert all(local_start(s).time() == time(20) and s.occurrence_local == local_start(s) for s in live_future)
    assert len({local_start(s).date() for s in live_future}) == len(live_future)
    cancelled = [s for s in rows if s.status == "cancelled"]
    assert {s.occurrence_local.weekday() for s in cancelled} == {2} and all(s.starts_at > now for s in cancelled)
    told = {e["shift_id"]: e for e in events.named("shift_cancelled")}
    assert set(told) == {s.id for s in cancelled}
    assert told[wednesday_shift.id]["volunteer_ids"] == [people.volunteer_a.id]
    assert told[wednesday_shift.id]["reason"] == "改为周四"
    assert all(local_start(s).time() == time(19) for s in past)  # the past stays as it was


def test_moving_all_onto_an_assigned_volunteers_other_shift_is_refused_whole(client, tree, people) -> None:
    series, _, future = series_with_a_past(tree.grid_a)
    target = future[2]
    factories.make_assignment(target, people.volunteer_a)
    elsewhere = factories.make_shift(tree.grid_a_east, starts_in=target.starts_at - utcnow() + timedelta(hours=3))
    factories.make_assignment(elsewhere, people.volunteer_a)
    before = [(s.id, s.starts_at, s.title) for s in shifts_of(series.id)]
    rrule_before = series.rrule

    response = client.patch(
        f"{API}/shift-series/{series.id}", json={"scope": "all", "start_time": "21:00", "title": "晚班"},
        headers=as_(people.organiser_a),
    )
    problem = assert_problem(response, 409, "shift_overlap")
    assert problem["errors"] == {"volunteer_ids": [str(people.volunteer_a.id)]}
    assert [(s.id, s.starts_at, s.title) for s in shifts_of(series.id)] == before
    db.session.refresh(series)
    assert series.rrule == rrule_before and series.title == "夜巡"


def test_lowering_places_below_those_taken_refuses_the_whole_series_edit(client, tree, people) -> None:
    series, _, future = series_with_a_past(tree.grid_a)
    factories.make_assignment(future[-1], people.volunteer_a)
    factories.make_assignment(future[-1], people.volunteer_a2)
    response = client.patch(
        f"{API}/shift-series/{series.id}", json={"scope": "all", "max_headcount": 1, "min_headcount": 1},
        headers=as_(people.organiser_a),
    )
    assert_problem(response, 409, "headcount_below_assigned")
    assert {s.max_headcount for s in shifts_of(series.id)} == {3}


def test_an_edit_that_changes_nothing_changes_nothing(client, tree, people, events) -> None:
    created = create(client, people.organiser_a, tree.grid_a)
    response = client.patch(
        f"{API}/shift-series/{created['id']}", json={"scope": "all", "title": "夜巡", "start_time": "19:00"},
        headers=as_(people.organiser_a),
    )
    assert response.status_code == 200
    assert response.get_json()["changed_shift_ids"] == [] and events.sent == []


@pytest.mark.parametrize(
    "payload",
    [
        {"scope": "all"},
        {"scope": "following", "title": "x"},
        {"scope": "all", "from_occurrence": "2027-01-04T19:00:00+08:00", "title": "x"},
        {"scope": "sometimes", "title": "x"},
        {"title": "x"},
        {"scope": "all", "end_time": "21:00", "duration_minutes": 60},
        {"scope": "all", "grid_id": 1},
        {"scope": "all", "rrule": "FREQ=MONTHLY"},
        {"scope": "all", "max_headcount": 101},
    ],
)
def test_bad_series_edits_are_422(client, tree, people, payload) -> None:
    created = create(client, people.organiser_a, tree.grid_a)
    response = client.patch(f"{API}/shift-series/{created['id']}", json=payload, headers=as_(people.organiser_a))
    assert_problem(response, 422, "validation_failed")
    assert {s.title for s in shifts_of(created["id"])} == {"夜巡"}


# --- edit: this and following ------------------------------------------------------------------------------------


def test_this_and_following_splits_the_series(client, tree, people, events) -> None:
    series, past, future = series_with_a_past(tree.grid_a)
    split_at, kept = future[3], future[:3]
    factories.make_assignment(future[4], people.volunteer_a)
    response = client.patch(
        f"{API}/shift-series/{series.id}",
        json={"scope": "following", "from_occurrence": occurrence_of(split_at), "title": "新规则", "end_time": "22:00"},
        headers=as_(people.organiser_a),
    )
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    new_id, old = result["series"]["id"], result["previous_series"]
    assert new_id != series.id and old["id"] == series.id
    assert old["until_local"] == (split_at.occurrence_local - timedelta(seconds=1)).isoformat()
    assert result["series"]["first_occurrence"] == instant(split_at.occurrence_local)
    assert (result["series"]["title"], result["series"]["duration_minutes"]) == ("新规则", 180)

    old_rows, new_rows = shifts_of(series.id), shifts_of(new_id)
    assert [s.id for s in old_rows] == [s.id for s in past + kept]
    assert all(s.title == "夜巡" and s.ends_at - s.starts_at == timedelta(hours=2) for s in old_rows)
    assert [s.id for s in new_rows[: len(future) - 3]] == [s.id for s in future[3:]]  # updated in place
    assert all(s.title == "新规则" and s.ends_at - s.starts_at == timedelta(hours=3) for s in new_rows)
    dates = [s.occurrence_local for s in old_rows + new_rows]
    assert dates == sorted(set(dates))  # nothing lost, nothing twice
    assert [e["volunteer_ids"] for e in events.named("shift_changed") if e["shift_id"] == future[4].id] == [[people.volunteer_a.id]]

    top_up_series(now=utcnow() + timedelta(days=14))
    assert len(shifts_of(series.id)) == len(old_rows)  # the old rule ends before the split
    assert len({s.occurrence_local for s in shifts_of(new_id)}) == len(shifts_of(new_id))


def test_this_and_following_keeps_a_count(client, tree, people) -> None:
    created = create(client, people.organiser_a, tree.grid_a, rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=6")
    rows = shifts_of(created["id"])
    response = client.patch(
        f"{API}/shift-series/{created['id']}",
        json={"scope": "following", "from_occurrence": occurrence_of(rows[2]), "meeting_point": "北门"},
        headers=as_(people.organiser_a),
    )
    result = response.get_json()
    assert result["series"]["count"] == 4 and result["previous_series"]["count"] is None
    assert len(shifts_of(created["id"])) == 2 and len(shifts_of(result["series"]["id"])) == 4


def test_this_and_following_from_the_first_occurrence_edits_in_place(client, tree, people) -> None:
    created = create(client, people.organiser_a, tree.grid_a)
    first = shifts_of(created["id"])[0]
    shown = client.get(f"{API}/shifts/{first.id}", headers=as_(people.organiser_a)).get_json()
    assert (shown["occurrence"], shown["occurrence_local"]) == (instant(first.occurrence_local), first.occurrence_local.isoformat())
    response = client.patch(  # the occurrence exactly as the API shows it
        f"{API}/shift-series/{created['id']}",
        json={"scope": "following", "from_occurrence": shown["occurrence"], "title": "全部"},
        headers=as_(people.organiser_a),
    )
    result = response.get_json()
    assert result["series"]["id"] == created["id"] and result["previous_series"] is None
    assert {s.title for s in shifts_of(created["id"])} == {"全部"}


def test_detached_occurrences_follow_the_split_but_keep_their_edits(client, tree, people) -> None:
    created = create(client, people.organiser_a, tree.grid_a)
    rows = shifts_of(created["id"])
    headers = as_(people.organiser_a)
    client.patch(f"{API}/shifts/{rows[4].id}", json={"title": "特别行动"}, headers=headers)
    client.post(f"{API}/shifts/{rows[5].id}/cancel", json={"reason": "节假日"}, headers=headers)
    response = client.patch(
        f"{API}/shift-series/{created['id']}",
        json={"scope": "following", "from_occurrence": occurrence_of(rows[2]), "start_time": "18:00"},
        headers=headers,
    )
    new_id = response.get_json()["series"]["id"]
    moved = {s.id: s for s in shifts_of(new_id)}
    assert moved[rows[4].id].title == "特别行动" and local_start(moved[rows[4].id]).time() == time(19)
    assert moved[rows[4].id].occurrence_local.time() == time(18)  # tied to the new rule's occurrence
    assert moved[rows[5].id].status == "cancelled"
    series_service.expand(db.session.get(ShiftSeries, new_id), utcnow(), since=utcnow())
    per_day = [s.occurrence_local.date() for s in shifts_of(new_id)]
    assert len(per_day) == len(set(per_day))  # no second shift on the detached or cancelled dates


def test_following_needs_an_occurrence_still_to_come(client, tree, people) -> None:
    series, past, future = series_with_a_past(tree.grid_a)
    headers = as_(people.organiser_a)
    for at, message in (
        (occurrence_of(past[-1]), "The occurrence has already started."),
        (instant(future[0].occurrence_local + timedelta(hours=1)), "Not an occurrence of this series."),
        ("2099-01-05T19:00:00+08:00", "Not an occurrence of this series."),
        (future[0].occurrence_local.isoformat(), "Datetime must have a time zone offset."),
        ("2150-01-05T19:00:00+08:00", "Must be a date between 2000 and 2099."),
    ):
        for method, path, extra in (
            ("patch", f"{API}/shift-series/{series.id}", {"title": "x"}),
            ("post", f"{API}/shift-series/{series.id}/cancel", {"reason": "x"}),
        ):
            response = getattr(client, method)(
                path, json={"scope": "following", "from_occurrence": at, **extra}, headers=headers
            )
            assert assert_problem(response, 422, "validation_failed")["errors"] == {"from_occurrence": [message]}
    assert {s.status for s in shifts_of(series.id)} == {"scheduled"}


# --- cancel ----------------------------------------------------------------------------------------------------


def test_cancelling_all_cancels_every_shift_to_come_and_ends_the_series(client, tree, people, events) -> None:
    series, past, future = series_with_a_past(tree.grid_a)
    future[1].detached = True
    factories.make_assignment(future[0], people.volunteer_a)
    db.session.flush()
    response = client.post(
        f"{API}/shift-series/{series.id}/cancel", json={"scope": "all", "reason": "项目结束"}, headers=as_(people.organiser_a)
    )
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert result["series"]["status"] == "ended"
    assert sorted(result["cancelled_shift_ids"]) == sorted(s.id for s in future)
    rows = {s.id: s for s in shifts_of(series.id)}
    assert all(rows[s.id].status == "scheduled" for s in past)
    assert all(rows[s.id].status == "cancelled" and rows[s.id].cancel_reason == "项目结束" for s in future)
    told = {e["shift_id"]: e["volunteer_ids"] for e in events.named("shift_cancelled")}
    assert set(told) == {s.id for s in future} and told[future[0].id] == [people.volunteer_a.id]
    assert count(AuditEntry, AuditEntry.action == "shift_series.cancel") == 1

    headers = as_(people.organiser_a)
    again = client.post(f"{API}/shift-series/{series.id}/cancel", json={"scope": "all", "reason": "x"}, headers=headers)
    assert_problem(again, 409, "series_ended")
    assert_problem(client.patch(f"{API}/shift-series/{series.id}", json={"scope": "all", "title": "x"}, headers=headers), 409, "series_ended")
    assert top_up_series(now=utcnow() + timedelta(days=30)) == 0


def test_cancelling_this_and_following(client, tree, people) -> None:
    created = create(client, people.organiser_a, tree.grid_a)
    rows = shifts_of(created["id"])
    at = rows[3].occurrence_local
    response = client.post(  # "…Z", as a client in UTC would send it
        f"{API}/shift-series/{created['id']}/cancel",
        json={"scope": "following", "from_occurrence": instant(at).replace("+00:00", "Z"), "reason": "改到别处"},
        headers=as_(people.organiser_a),
    )
    result = response.get_json()
    assert result["series"]["until"] == instant(at - timedelta(seconds=1))
    assert result["series"]["status"] == "ended"
    assert [s.status for s in shifts_of(created["id"])] == ["scheduled"] * 3 + ["cancelled"] * (len(rows) - 3)
    assert top_up_series(now=utcnow() + timedelta(days=30)) == 0


def test_cancel_needs_a_reason_and_a_scope(client, tree, people) -> None:
    created = create(client, people.organiser_a, tree.grid_a)
    headers = as_(people.organiser_a)
    for payload in ({"scope": "all"}, {"reason": "x"}, {"scope": "following", "reason": "x"}):
        response = client.post(f"{API}/shift-series/{created['id']}/cancel", json=payload, headers=headers)
        assert_problem(response, 422, "validation_failed")
    assert {s.status for s in shifts_of(created["id"])} == {"scheduled"}


# --- concurrency ----------------------------------------------------------------------------------------------


@pytest.mark.committing
def test_expanding_at_once_never_duplicates(app: Flask) -> None:
    with app.app_context():
        _city, _district, _subdistrict, _community, grid = factories.make_branch()
        series = make_series(grid, datetime.combine(next_weekday(0), time(19)), "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU")
        series_id = series.id
        db.session.commit()

    now = utcnow()
    barrier = races.barrier(4)
    made: list[int] = []
    failures: list[BaseException] = []

    def expand_directly() -> None:  # the unique constraint and the existing-occurrence check
        with app.app_context():
            try:
                barrier.wait()  # before any query: SQLite's first query takes the write lock
                series = db.session.get(ShiftSeries, series_id)
                made.append(len(series_service.expand(series, now)))
                db.session.commit()
            except BaseException as error:
                failures.append(error)

    def run_task() -> None:  # the periodic task, with its row lock
        with app.app_context():
            try:
                barrier.wait()
                made.append(top_up_series(now=now))
            except BaseException as error:
                failures.append(error)

    races.run_threads([expand_directly, expand_directly, run_task, run_task])

    assert failures == []
    with app.app_context():
        occurrences = db.session.scalars(sa.select(Shift.occurrence_local).where(Shift.series_id == series_id)).all()
        expected = len(expected_dates(next_weekday(0), set(range(7))))
        assert len(occurrences) == len(set(occurrences)) == expected == sum(made)
