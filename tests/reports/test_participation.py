"""Participation reports over a hand-built month (September 2026 in Asia/Shanghai): every figure
asserted exactly, children summing to their parent, the scope refusals and bad periods."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.extensions import db
from grids.models import Area, AreaLevel
from patrols.models import Patrol
from patrols.reports.models import Report, ReportEvent
from rewards.awarding.models import ServiceRecord
from rewards.badges.models import VolunteerBadge
from rewards.ledger.models import LedgerEntry
from shifts.models import Shift
from tests import factories
from tests.problems import assert_problem
from volunteers.models import StatusChange, Volunteer

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


def local(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local time in Shanghai in 2026, as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def _volunteer(grid: Area, kind: str, created: datetime, changes: list[tuple[str | None, str, datetime]]) -> Volunteer:
    volunteer = factories.make_volunteer(grid, status=changes[-1][1], kind_code=kind, real_name=f"志愿者{next(_ids)}")
    volunteer.created_at = created
    for before, after, at in changes:
        db.session.add(StatusChange(volunteer_id=volunteer.id, from_status=before, to_status=after, at=at))
    db.session.flush()
    return volunteer


def _shift(grid: Area, start: datetime, hours: float, places: int, status: str = "scheduled") -> Shift:
    shift = factories.make_shift(grid, max_headcount=places)
    shift.starts_at, shift.ends_at, shift.status = start, start + timedelta(hours=hours), status
    db.session.flush()
    return shift


def _place(shift: Shift, volunteer: Volunteer, status: str = "assigned", role: str = "primary", **patrol: Any) -> Any:
    assignment = factories.make_assignment(shift, volunteer, role=role, status=status)
    if status == "withdrawn":
        assignment.late_withdrawal = True
    if patrol:
        db.session.add(Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id, **patrol))
    db.session.flush()
    return assignment


def _report(grid: Area, volunteer: Volunteer, level: str, received: datetime, steps: list[tuple[str, int]]) -> None:
    report = Report(
        client_id=str(uuid.uuid4()), volunteer_id=volunteer.id, grid_id=grid.id, category="other", level=level,
        description="情况", lat=40.65, lon=109.84, device_at=received, received_at=received,
    )
    db.session.add(report)
    db.session.flush()
    db.session.add(ReportEvent(report_id=report.id, action="filed", to_status="open", created_at=received))
    for action, minutes in steps:
        db.session.add(ReportEvent(report_id=report.id, action=action, to_status=action, created_at=received + timedelta(minutes=minutes)))
        if action == "resolved":
            report.status, report.resolved_at = "resolved", received + timedelta(minutes=minutes)
    db.session.flush()


def _points(volunteer: Volunteer, amount: int, reason: str, at: datetime) -> None:
    db.session.add(
        LedgerEntry(volunteer_id=volunteer.id, amount=amount, reason=reason, source_type="test",
                    source_id=str(next(_ids)), created_at=at)
    )


@pytest.fixture
def month() -> dict[str, Any]:
    city, district, subdistrict, community, grid_a = factories.make_branch()
    grid_b = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(109.86, 40.65))
    factories.make_area(AreaLevel.GRID, community, boundary=factories.square(109.88, 40.65))  # nothing at all
    v1 = _volunteer(grid_a, "volunteer_police", local(8, 1), [(None, "pending", local(8, 1)), ("pending", "active", local(8, 2))])
    v2 = _volunteer(grid_a, "alley_steward", local(9, 3), [(None, "pending", local(9, 3)), ("pending", "active", local(9, 5))])
    v3 = _volunteer(grid_b, "volunteer_police", local(9, 10), [(None, "pending", local(9, 10))])
    v4 = _volunteer(
        grid_b, "volunteer_police", local(7, 1),
        [(None, "pending", local(7, 1)), ("pending", "active", local(7, 2)), ("active", "suspended", local(9, 20))],
    )
    _volunteer(grid_b, "volunteer_police", local(10, 2), [(None, "pending", local(10, 2))])  # after the month

    # Across midnight; v2 no show, replaced by v4, a backup promoted to primary.
    s1 = _shift(grid_a, local(9, 10, 22), 4, places=2)
    _place(s1, v1, presence_status="verified", served_minutes=240)
    _place(s1, v2, status="absent")
    _place(s1, v4, presence_status="approved", served_minutes=180)
    # Across the month's end: September's. Its presence was rejected after review.
    s2 = _shift(grid_a, local(9, 30, 23), 2, places=1)
    _place(s2, v2, presence_status="rejected", served_minutes=120)  # had counted before the review
    _shift(grid_b, local(9, 15, 9), 2, places=3, status="cancelled")
    s4 = _shift(grid_b, local(8, 31, 23), 2, places=1)  # August's, though it ends in September
    _place(s4, v4, presence_status="verified", served_minutes=120)
    s5 = _shift(grid_b, local(9, 20, 9), 2, places=2)
    _place(s5, v1, presence_status="needs_review")
    _place(s5, v4, status="withdrawn")

    for volunteer, minutes, day, grid, voided in (
        (v3, 90, date(2026, 9, 30), grid_b, None),
        (v1, 60, date(2026, 9, 12), grid_a, local(9, 13)),
        (v1, 45, date(2026, 10, 1), grid_a, None),
    ):
        db.session.add(ServiceRecord(volunteer_id=volunteer.id, source_type="manual", source_id=str(next(_ids)),
                                     minutes=minutes, served_on=day, grid_id=grid.id, voided_at=voided))

    _report(grid_a, v1, "red", local(9, 5, 10), [("acknowledged", 30), ("resolved", 120)])
    _report(grid_a, v2, "green", local(9, 6, 10), [])
    _report(grid_b, v4, "orange", local(9, 7, 10), [("assigned", 10)])
    _report(grid_b, v4, "yellow", local(10, 1, 0, 30), [])  # 30 September 16:30 UTC: October's

    _points(v1, 40, "served_shift", local(9, 11, 3))
    _points(v4, 30, "served_shift", local(9, 11, 3))
    _points(v2, 5, "report_bonus", local(9, 6, 11))
    _points(v1, -10, "reversal", local(9, 12))
    _points(v1, -20, "redemption", local(9, 13))
    _points(v1, 5, "redemption_refund", local(9, 14))
    _points(v4, -3, "expiry", local(9, 30, 23, 59))
    _points(v2, 2, "adjustment", local(9, 1))
    _points(v1, 100, "served_shift", local(10, 1))
    db.session.add(VolunteerBadge(volunteer_id=v1.id, badge="first_shift", earned_at=local(9, 11, 3)))
    db.session.flush()
    return {
        "city": city, "district": district, "subdistrict": subdistrict, "community": community,
        "grid_a": grid_a, "grid_b": grid_b, "volunteers": (v1, v2, v3, v4),
        "staff": factories.make_user("staff", district),
        "admin": factories.make_user("admin", city),
    }


def _get(client: Any, user: Any, **query: Any) -> Any:
    return client.get("/api/v1/reports/participation", query_string=query, headers=factories.headers_for(user))


def _september(client: Any, month: dict[str, Any], area: Area, **extra: Any) -> dict[str, Any]:
    caller = month["admin"] if area is month["city"] else month["staff"]
    response = _get(client, caller, area_id=area.id, period="month", value="2026-09", **extra)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_every_figure_of_the_month(client: Any, month: dict[str, Any]) -> None:
    body = _september(client, month, month["community"])
    assert body["period"] == {
        "label": "2026-09", "kind": "month", "from": "2026-09-01", "to": "2026-09-30",
        "starts_at": "2026-08-31T16:00:00+00:00", "ends_at": "2026-09-30T16:00:00+00:00", "time_zone": "Asia/Shanghai",
    }
    assert body["as_of"]
    figures = body["figures"]
    volunteers = figures["volunteers"]
    assert {k: v for k, v in volunteers.items() if k != "by_kind"} == {
        "registered": 2, "approved": 2, "newly_approved": 1, "suspended_closed": 1, "active": 2,
    }
    assert volunteers["by_kind"]["alley_steward"] == {
        "registered": 1, "approved": 1, "newly_approved": 1, "suspended_closed": 0, "active": 0,
    }
    assert volunteers["by_kind"]["volunteer_police"] == {
        "registered": 1, "approved": 1, "newly_approved": 0, "suspended_closed": 1, "active": 2,
    }
    assert figures["shifts"] == {"planned": 3, "cancelled": 1, "places_planned": 5, "places_filled": 4, "fill_rate": 0.8}
    assert figures["presence"] == {
        "assignments": 5, "served": 2, "no_shows": 1, "late_withdrawals": 1, "in_review": 1,
        "attendance_rate": 0.4, "served_minutes": 420, "served_hours": 7.0, "manual_minutes": 90, "manual_hours": 1.5,
    }
    assert figures["reports"] == {
        "filed": 3, "by_level": {"red": 1, "orange": 1, "yellow": 0, "green": 1}, "taken_up": 2, "resolved": 1,
        "median_minutes_to_take_up": 20.0, "median_minutes_to_resolve": 120.0,
    }
    assert figures["points"] == {
        "awarded": 75, "reversed": 10, "redeemed": 15, "expired": 3, "adjusted": 2, "badges": {"first_shift": 1},
    }


def test_points_reconcile_with_the_ledger(client: Any, month: dict[str, Any]) -> None:
    points = _september(client, month, month["community"])["figures"]["points"]
    ledger = sum(
        entry.amount
        for entry in db.session.query(LedgerEntry).filter(
            LedgerEntry.volunteer_id.in_([v.id for v in month["volunteers"]]),
            LedgerEntry.created_at >= local(9, 1), LedgerEntry.created_at < local(10, 1),
        )
    )
    assert points["awarded"] - points["reversed"] - points["redeemed"] - points["expired"] + points["adjusted"] == ledger == 49


ADDITIVE = {
    "volunteers": ("registered", "approved", "newly_approved", "suspended_closed", "active"),
    "shifts": ("planned", "cancelled", "places_planned", "places_filled"),
    "presence": ("assignments", "served", "no_shows", "late_withdrawals", "in_review", "served_minutes", "manual_minutes"),
    "reports": ("filed", "taken_up", "resolved"),
    "points": ("awarded", "reversed", "redeemed", "expired", "adjusted"),
}


def _assert_children_sum(body: dict[str, Any], sections: tuple[str, ...] = tuple(ADDITIVE)) -> None:
    for section in sections:
        for name in ADDITIVE[section]:
            total = sum(child["figures"][section][name] for child in body["children"])
            assert total == body["figures"][section][name], (section, name)


def test_children_sum_to_their_parent_at_every_level(client: Any, month: dict[str, Any]) -> None:
    for level in ("city", "district", "subdistrict", "community"):
        body = _september(client, month, month[level])
        _assert_children_sum(body)
    community = _september(client, month, month["community"])
    assert community["children_level"] == "grid" and len(community["children"]) == 3
    grid_a, grid_b, empty = community["children"]
    assert grid_a["figures"]["presence"]["served_minutes"] == 420 and grid_b["figures"]["presence"]["in_review"] == 1
    assert empty["figures"]["shifts"]["planned"] == 0 and empty["figures"]["volunteers"]["approved"] == 0
    assert grid_a["figures"]["shifts"]["places_filled"] == 3 and grid_b["figures"]["shifts"]["cancelled"] == 1


def test_a_grids_children_are_its_volunteers(client: Any, month: dict[str, Any]) -> None:
    body = _september(client, month, month["grid_a"])
    assert body["children_level"] == "volunteer"
    v1, v2, _, _ = month["volunteers"]
    ids = [child["id"] for child in body["children"]]
    assert ids[:2] == [v1.id, v2.id]  # at home; v4 served here from grid B
    assert [child["at_home"] for child in body["children"]] == [True, True, False]
    _assert_children_sum(body, ("volunteers", "presence", "reports"))
    assert all(child["figures"]["shifts"] is None for child in body["children"])
    assert body["children"][0]["figures"]["presence"]["served_minutes"] == 240


def test_the_series_sums_to_the_month(client: Any, month: dict[str, Any]) -> None:
    body = _september(client, month, month["community"], series="day")
    series = body["series"]
    assert len(series) == 30 and series[0]["from"] == "2026-09-01"
    last = series[-1]
    assert last["shifts"]["planned"] == 1 and last["presence"]["manual_minutes"] == 90 and last["points"]["expired"] == 3
    assert series[9]["presence"]["served_minutes"] == 420  # the shift across midnight, on the 10th
    for section in ("shifts", "presence", "reports", "points"):
        for name in ADDITIVE[section]:
            assert sum(point[section][name] for point in series) == body["figures"][section][name], (section, name)
    weeks = _september(client, month, month["community"], series="week")["series"]
    assert sum(week["presence"]["assignments"] for week in weeks) == 5


def test_a_volunteers_own_month(client: Any, month: dict[str, Any]) -> None:
    v1 = month["volunteers"][0]
    response = client.get(
        "/api/v1/me/participation", query_string={"period": "month", "value": "2026-09"},
        headers=factories.headers_for(v1.user),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["presence"]["assignments"] == 2 and body["presence"]["served_minutes"] == 240
    assert body["presence"]["in_review"] == 1 and body["presence"]["manual_minutes"] == 0
    assert body["points"]["awarded"] == 40 and body["points"]["reversed"] == 10 and body["points"]["redeemed"] == 15


def test_scope_refusals(client: Any, month: dict[str, Any]) -> None:
    district = month["district"]
    inside = factories.make_area(AreaLevel.SUBDISTRICT, district, area_id=2_000_002)
    sibling = factories.make_area(AreaLevel.SUBDISTRICT, district, area_id=2_000_0023)
    organiser = factories.make_user("organiser", inside)
    assert _get(client, organiser, area_id=inside.id, period="month", value="2026-09").status_code == 200
    assert_problem(_get(client, organiser, area_id=sibling.id, period="month", value="2026-09"), 403, "out_of_scope")
    other_district = factories.make_area(AreaLevel.DISTRICT, month["city"])
    other_staff = factories.make_user("staff", other_district)
    assert_problem(_get(client, other_staff, area_id=district.id, period="month", value="2026-09"), 403, "out_of_scope")
    volunteer_user = month["volunteers"][0].user
    assert _get(client, volunteer_user, area_id=month["grid_a"].id, period="month", value="2026-09").status_code == 403


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"period": "month", "value": "2026-9"}, "value"),
        ({"period": "quarter", "value": "2026-Q5"}, "value"),
        ({"from": "2026-09-30", "to": "2026-09-01"}, "to"),
        ({"from": "2026-01-01", "to": "2029-06-01"}, "to"),
        ({}, "period"),
        ({"from": "2020-01-01", "to": "2022-12-31", "series": "day"}, "series"),
    ],
)
def test_bad_periods_are_422_naming_the_field(client: Any, month: dict[str, Any], query: dict[str, str], field: str) -> None:
    body = assert_problem(_get(client, month["staff"], area_id=month["district"].id, **query), 422, "validation_failed")
    assert field in body["errors"]
