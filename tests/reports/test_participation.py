"""Participation reports over a hand-built month (September 2026 in Asia/Shanghai): every figure
asserted exactly, children summing to their parent, the figures reconciling with the service
records and the ledger (``tests/reports/reconcile.py``), the scope refusals and bad periods.

The month holds each case the issue names: a shift across midnight (s1), shifts across a month's
end (s2 into October, s4 from August), a presence rejected after review whose service record is
voided (s2), a no-show replaced by a promoted backup (s1), a presence that counted and went back
to review (s6), and a grid in another time zone (grid U, Asia/Urumqi, two hours behind Shanghai,
under a second sub-district) whose shifts, reports and points sit on the month's edges."""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from core.extensions import db
from grids.models import Area, AreaLevel
from patrols.models import Patrol, PresenceStatus
from patrols.reports.models import Report, ReportEvent
from rewards.awarding import service as awarding
from rewards.awarding.models import ServiceRecord
from rewards.badges.models import VolunteerBadge
from rewards.ledger.models import LedgerEntry
from shifts.models import Shift
from tests import factories
from tests.problems import EN, assert_problem
from tests.reports.reconcile import assert_children_sum, assert_reconciles, assert_series_sums
from volunteers.models import StatusChange, Volunteer

SHANGHAI = ZoneInfo("Asia/Shanghai")
URUMQI = ZoneInfo("Asia/Urumqi")
_ids = itertools.count(1)


def local(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local time in Shanghai in 2026, as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def urumqi(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local time in Urumqi (UTC+6) in 2026, as UTC."""
    return datetime(2026, month, day, hour, minute, tzinfo=URUMQI).astimezone(UTC)


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


def _place(shift: Shift, volunteer: Volunteer, status: str = "assigned", role: str = "primary", **patrol: Any) -> Patrol | None:
    """A place on ``shift``; with ``patrol`` columns, its patrol, and when that was served (counted
    presence with served minutes) its service record, written as the shift_served listener does."""
    assignment = factories.make_assignment(shift, volunteer, role=role, status=status)
    if status == "withdrawn":
        assignment.late_withdrawal = True
    if not patrol:
        db.session.flush()
        return None
    row = Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id, **patrol)
    db.session.add(row)
    db.session.flush()
    if row.served_minutes is not None:
        awarding.award_served_shift(row.id, volunteer.id, shift.id, row.served_minutes)
    return row


def _promoted_backup(shift: Shift, volunteer: Volunteer, **patrol: Any) -> None:
    """A backup who took the place of a no-show: promotion turns the role to primary
    (``shifts.filling.promotion``), so the backup holds a primary place from then on."""
    shift.backup_slots = 1
    assignment = factories.make_assignment(shift, volunteer, role="backup")
    assignment.role = "primary"
    shift.backup_count, shift.primary_count = shift.backup_count - 1, shift.primary_count + 1
    row = Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id, **patrol)
    db.session.add(row)
    db.session.flush()
    awarding.award_served_shift(row.id, volunteer.id, shift.id, patrol["served_minutes"])


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
    _promoted_backup(s1, v4, presence_status="approved", served_minutes=180)
    # Across the month's end: September's. Its presence counted (an automatic close), then a
    # flagged check-out sent it to review and the organiser rejected it: the record is voided.
    s2 = _shift(grid_a, local(9, 30, 23), 2, places=1)
    rejected = _place(s2, v2, presence_status="needs_review", served_minutes=120)
    assert rejected is not None
    rejected.presence_status = PresenceStatus.REJECTED
    awarding.revoke_patrol(rejected.id, v2.id, None, "not in the grid")
    _shift(grid_b, local(9, 15, 9), 2, places=3, status="cancelled")
    s4 = _shift(grid_b, local(8, 31, 23), 2, places=1)  # August's, though it ends in September
    _place(s4, v4, presence_status="verified", served_minutes=120)
    s5 = _shift(grid_b, local(9, 20, 9), 2, places=2)
    _place(s5, v1, presence_status="needs_review")
    _place(s5, v4, status="withdrawn")
    # Counted, then back in review: the record stands until the decision; not served hours yet.
    s6 = _shift(grid_b, local(9, 25, 9), 2, places=1)
    held = _place(s6, v1, presence_status="needs_review", served_minutes=120)

    # Grid U, two hours behind Shanghai. su1 starts on 30 September in Urumqi, 1 October in
    # Shanghai; su2 on 31 August in Urumqi, 1 September in Shanghai. Its service records carry the
    # Urumqi dates (30 September, 31 August).
    subdistrict_2 = factories.make_area(AreaLevel.SUBDISTRICT, district)
    community_2 = factories.make_area(AreaLevel.COMMUNITY, subdistrict_2)
    grid_u = factories.make_area(AreaLevel.GRID, community_2, boundary=factories.square(109.90, 40.65), timezone="Asia/Urumqi")
    v5 = _volunteer(grid_u, "volunteer_police", local(6, 1), [(None, "pending", local(6, 1)), ("pending", "active", local(6, 2))])
    su1 = _shift(grid_u, urumqi(9, 30, 23), 2, places=1)
    _place(su1, v5, presence_status="verified", served_minutes=120)
    su2 = _shift(grid_u, urumqi(8, 31, 23, 30), 2, places=1)
    _place(su2, v5, presence_status="verified", served_minutes=90)

    for volunteer, minutes, day, grid, voided in (
        (v3, 90, date(2026, 9, 30), grid_b, None),
        (v1, 60, date(2026, 9, 12), grid_a, local(9, 13)),
        (v1, 45, date(2026, 10, 1), grid_a, None),
        (v5, 30, date(2026, 9, 30), grid_u, None),
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
    _report(grid_u, v5, "red", urumqi(9, 30, 23, 30), [])  # Urumqi's September, Shanghai's October
    _points(v5, 20, "served_shift", urumqi(9, 30, 23, 30))
    # Badges: the ones the awards above granted are dated now (December), outside the month.
    for volunteer, badge, at in (
        (v1, "first_patrol", local(9, 11, 3)),
        (v4, "star_1", local(9, 11, 3)),
        (v1, "star_1", local(9, 12)),
        (v1, "star_2", local(9, 12)),
        (v5, "star_1", urumqi(9, 30, 23, 40)),
    ):
        db.session.execute(sa.delete(VolunteerBadge).where(VolunteerBadge.volunteer_id == volunteer.id, VolunteerBadge.badge == badge))
        db.session.add(VolunteerBadge(volunteer_id=volunteer.id, badge=badge, earned_at=at))
    db.session.flush()
    return {
        "city": city, "district": district, "subdistrict": subdistrict, "community": community,
        "subdistrict_2": subdistrict_2, "community_2": community_2, "grid_u": grid_u,
        "grid_a": grid_a, "grid_b": grid_b, "volunteers": (v1, v2, v3, v4), "v5": v5,
        "rejected": rejected, "held": held,
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


# --- the expected figures, section by section ------------------------------------------------------


def _volunteers(registered: int, approved: int, newly: int, closed: int, active: int) -> dict[str, int]:
    return {"registered": registered, "approved": approved, "newly_approved": newly, "suspended_closed": closed, "active": active}


def _shifts(planned: int, cancelled: int, places: int, filled: int, fill_rate: float | None) -> dict[str, Any]:
    return {"planned": planned, "cancelled": cancelled, "places_planned": places, "places_filled": filled, "fill_rate": fill_rate}


def _presence(assigned: int, served: int, absent: int, late: int, review: int, attendance: float | None, minutes: int, manual: int) -> dict[str, Any]:
    return {
        "assignments": assigned, "served": served, "no_shows": absent, "late_withdrawals": late, "in_review": review,
        "attendance_rate": attendance, "served_minutes": minutes, "served_hours": round(minutes / 60, 2),
        "manual_minutes": manual, "manual_hours": round(manual / 60, 2),
    }


def _reports(levels: dict[str, int], taken_up: int, resolved: int, to_take_up: float | None, to_resolve: float | None) -> dict[str, Any]:
    return {
        "filed": sum(levels.values()), "by_level": {"red": 0, "orange": 0, "yellow": 0, "green": 0} | levels,
        "taken_up": taken_up, "resolved": resolved,
        "median_minutes_to_take_up": to_take_up, "median_minutes_to_resolve": to_resolve,
    }


def _point_figures(awarded: int, reversed_: int, redeemed: int, expired: int, adjusted: int, badges: dict[str, int]) -> dict[str, Any]:
    return {
        "awarded": awarded, "reversed": reversed_, "redeemed": redeemed, "expired": expired, "adjusted": adjusted,
        "badges": badges, "star_levels": {f"star_{n}": badges.get(f"star_{n}", 0) for n in range(1, 6)},
    }


def _figures(volunteers: dict[str, Any], by_kind: dict[str, Any], shifts: Any, presence: Any, reports: Any, points: Any) -> dict[str, Any]:
    return {
        "volunteers": volunteers | {"by_kind": by_kind}, "shifts": shifts, "presence": presence,
        "reports": reports, "points": points,
    }


NOBODY = _volunteers(0, 0, 0, 0, 0)
NO_REPORTS = _reports({}, 0, 0, None, None)
NO_POINTS = _point_figures(0, 0, 0, 0, 0, {})
#: Sub-district 1 and its one community: grids A, B and the empty one, in Shanghai's September.
COMMUNITY = _figures(
    _volunteers(2, 2, 1, 1, 2),
    {"volunteer_police": _volunteers(1, 1, 0, 1, 2), "alley_steward": _volunteers(1, 1, 1, 0, 0)},
    _shifts(4, 1, 6, 5, 0.8333),
    _presence(6, 2, 1, 1, 2, 0.3333, 420, 90),
    _reports({"red": 1, "orange": 1, "green": 1}, 2, 1, 20.0, 120.0),
    _point_figures(75, 10, 15, 3, 2, {"first_patrol": 1, "star_1": 2, "star_2": 1}),
)
GRID_A = _figures(
    _volunteers(1, 2, 1, 0, 1),
    {"volunteer_police": _volunteers(0, 1, 0, 0, 1), "alley_steward": _volunteers(1, 1, 1, 0, 0)},
    _shifts(2, 0, 3, 3, 1.0),
    _presence(4, 2, 1, 0, 0, 0.5, 420, 0),
    _reports({"red": 1, "green": 1}, 1, 1, 30.0, 120.0),
    _point_figures(45, 10, 15, 0, 2, {"first_patrol": 1, "star_1": 1, "star_2": 1}),
)
GRID_B = _figures(
    _volunteers(1, 0, 0, 1, 1),
    {"volunteer_police": _volunteers(1, 0, 0, 1, 1), "alley_steward": NOBODY},
    _shifts(2, 1, 3, 2, 0.6667),
    _presence(2, 0, 0, 1, 2, 0.0, 0, 90),
    _reports({"orange": 1}, 1, 0, 10.0, None),
    _point_figures(30, 0, 0, 3, 0, {"star_1": 1}),
)
EMPTY_GRID = _figures(
    NOBODY, {"volunteer_police": NOBODY, "alley_steward": NOBODY},
    _shifts(0, 0, 0, 0, None), _presence(0, 0, 0, 0, 0, None, 0, 0), NO_REPORTS, NO_POINTS,
)
#: Sub-district 2 (and community 2, and grid U as their child) in Shanghai's September: su2 only;
#: grid U's report, bonus and star fall on 1 October in Shanghai.
SUBDISTRICT_2 = _figures(
    _volunteers(0, 1, 0, 0, 1),
    {"volunteer_police": _volunteers(0, 1, 0, 0, 1), "alley_steward": NOBODY},
    _shifts(1, 0, 1, 1, 1.0),
    _presence(1, 1, 0, 0, 0, 1.0, 90, 30),
    NO_REPORTS,
    NO_POINTS,
)
#: Grid U's own report, in Urumqi's September: su1 and all of its edge rows, not su2.
GRID_U_OWN = _figures(
    _volunteers(0, 1, 0, 0, 1),
    {"volunteer_police": _volunteers(0, 1, 0, 0, 1), "alley_steward": NOBODY},
    _shifts(1, 0, 1, 1, 1.0),
    _presence(1, 1, 0, 0, 0, 1.0, 120, 30),
    _reports({"red": 1}, 0, 0, None, None),
    _point_figures(20, 0, 0, 0, 0, {"star_1": 1}),
)
DISTRICT = _figures(
    _volunteers(2, 3, 1, 1, 3),
    {"volunteer_police": _volunteers(1, 2, 0, 1, 3), "alley_steward": _volunteers(1, 1, 1, 0, 0)},
    _shifts(5, 1, 7, 6, 0.8571),
    _presence(7, 3, 1, 1, 2, 0.4286, 510, 120),
    COMMUNITY["reports"],
    COMMUNITY["points"],
)


def _children(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [child["figures"] for child in body["children"]]


def test_every_figure_of_the_month(client: Any, month: dict[str, Any]) -> None:
    body = _september(client, month, month["community"])
    assert body["period"] == {
        "label": "2026-09", "kind": "month", "from": "2026-09-01", "to": "2026-09-30",
        "starts_at": "2026-08-31T16:00:00+00:00", "ends_at": "2026-09-30T16:00:00+00:00", "time_zone": "Asia/Shanghai",
    }
    assert body["as_of"]
    assert body["figures"] == COMMUNITY
    assert _children(body) == [GRID_A, GRID_B, EMPTY_GRID]
    assert _september(client, month, month["subdistrict"])["figures"] == COMMUNITY


def test_every_figure_of_the_district_with_a_grid_in_another_zone(client: Any, month: dict[str, Any]) -> None:
    """The district reads every child's rows in its own September (Shanghai), grid U's too."""
    district = _september(client, month, month["district"])
    assert district["figures"] == DISTRICT
    assert [child["id"] for child in district["children"]] == [month["subdistrict"].id, month["subdistrict_2"].id]
    assert _children(district) == [COMMUNITY, SUBDISTRICT_2]
    assert _september(client, month, month["city"])["figures"] == DISTRICT
    for area in ("subdistrict_2", "community_2"):
        body = _september(client, month, month[area])
        assert body["figures"] == SUBDISTRICT_2 and _children(body) == [SUBDISTRICT_2]
    # Asked for itself, grid U reads September in its own zone: su1 and the edge rows, not su2.
    own = _september(client, month, month["grid_u"])
    assert own["period"]["time_zone"] == "Asia/Urumqi"
    assert (own["period"]["starts_at"], own["period"]["ends_at"]) == ("2026-08-31T18:00:00+00:00", "2026-09-30T18:00:00+00:00")
    assert own["figures"] == GRID_U_OWN


def test_served_hours_hours_by_hand_and_points_reconcile_with_their_rows(client: Any, month: dict[str, Any]) -> None:
    expected = {  # patrol records, of them held in review, manual records, ledger
        "community": (540, 120, 90, 49), "district": (630, 120, 120, 49), "subdistrict_2": (90, 0, 30, 0),
        "grid_a": (420, 0, 0, 45 - 10 - 15 + 2), "grid_b": (120, 120, 90, 27), "grid_u": (120, 0, 30, 20),
    }
    for name, (records, held, manual, ledger) in expected.items():
        rows = assert_reconciles(_september(client, month, month[name]), month[name])
        assert (rows.patrol_record_minutes, rows.held_in_review_minutes, rows.manual_record_minutes, rows.ledger_sum) == (
            records, held, manual, ledger,
        ), name


def test_the_rejected_presence_left_a_voided_record_and_the_held_one_a_live_record(month: dict[str, Any]) -> None:
    def record_of(patrol: Patrol) -> ServiceRecord:
        return db.session.scalars(
            sa.select(ServiceRecord).where(ServiceRecord.source_type == "patrol", ServiceRecord.source_id == str(patrol.id))
        ).one()

    assert record_of(month["rejected"]).voided_at is not None
    assert record_of(month["held"]).voided_at is None and record_of(month["held"]).minutes == 120


def test_records_by_their_date_disagree_with_the_district_by_design(client: Any, month: dict[str, Any]) -> None:
    """A patrol's record carries the local date of its shift's start in the shift's own zone; the
    district reads the shift's start in the district's zone. Grid U's records dated in September
    (su1, 30 September in Urumqi) are not the ones the district counts (su2, 1 September in
    Shanghai): summing records by ``served_on`` matches only a report read in the grid's zone."""
    grid_u = month["grid_u"]
    dated_september = db.session.scalars(
        sa.select(ServiceRecord.minutes).where(
            ServiceRecord.grid_id == grid_u.id, ServiceRecord.source_type == "patrol", ServiceRecord.voided_at.is_(None),
            ServiceRecord.served_on >= date(2026, 9, 1), ServiceRecord.served_on <= date(2026, 9, 30),
        )
    ).all()
    assert dated_september == [120]
    assert _september(client, month, grid_u)["figures"]["presence"]["served_minutes"] == 120
    district = _september(client, month, month["district"])
    assert _children(district)[1]["presence"]["served_minutes"] == 90


def test_the_export_has_a_column_per_star_level(client: Any, month: dict[str, Any]) -> None:
    response = client.get(
        "/api/v1/reports/participation/export",
        query_string={"area_id": month["community"].id, "period": "month", "value": "2026-09", "format": "csv"},
        headers=factories.headers_for(month["staff"], **EN),
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    stars = ("Reached one star", "Reached two stars", "Reached three stars", "Reached four stars", "Reached five stars")
    assert [[row[star] for star in stars] for row in rows] == [
        ["2", "1", "0", "0", "0"],  # the community
        ["1", "1", "0", "0", "0"],  # grid A
        ["1", "0", "0", "0", "0"],  # grid B
        ["0", "0", "0", "0", "0"],  # the empty grid
    ]


def test_children_sum_to_their_parent_at_every_level(client: Any, month: dict[str, Any]) -> None:
    for level in ("city", "district", "subdistrict", "community", "subdistrict_2", "community_2"):
        assert_children_sum(_september(client, month, month[level]))


def test_a_grids_children_are_its_volunteers(client: Any, month: dict[str, Any]) -> None:
    body = _september(client, month, month["grid_a"])
    assert body["children_level"] == "volunteer"
    v1, v2, _, _ = month["volunteers"]
    ids = [child["id"] for child in body["children"]]
    assert ids[:2] == [v1.id, v2.id]  # at home; v4 served here from grid B
    assert [child["at_home"] for child in body["children"]] == [True, True, False]
    assert_children_sum(body, ("volunteers", "presence", "reports"))
    assert all(child["figures"]["shifts"] is None for child in body["children"])
    assert body["children"][0]["figures"]["presence"]["served_minutes"] == 240
    own = _september(client, month, month["grid_u"])
    assert [child["id"] for child in own["children"]] == [month["v5"].id]
    assert_children_sum(own, ("volunteers", "presence", "reports", "points"))


def test_the_series_sums_to_the_month(client: Any, month: dict[str, Any]) -> None:
    body = _september(client, month, month["district"], series="day")
    series = body["series"]
    assert len(series) == 30 and series[0]["from"] == "2026-09-01"
    assert series[0]["presence"]["served_minutes"] == 90  # su2: 31 August in Urumqi, 1 September here
    assert series[9]["presence"]["served_minutes"] == 420  # the shift across midnight, on the 10th
    assert series[24]["presence"]["in_review"] == 1
    last = series[-1]
    assert last["shifts"]["planned"] == 1 and last["presence"]["manual_minutes"] == 120 and last["points"]["expired"] == 3
    assert_series_sums(body)
    for area in ("community", "grid_u"):
        assert_series_sums(_september(client, month, month[area], series="day"))
    weeks = _september(client, month, month["district"], series="week")
    assert_series_sums(weeks)
    assert sum(week["presence"]["assignments"] for week in weeks["series"]) == 7


def test_a_volunteers_own_month(client: Any, month: dict[str, Any]) -> None:
    v1 = month["volunteers"][0]
    response = client.get(
        "/api/v1/me/participation", query_string={"period": "month", "value": "2026-09"},
        headers=factories.headers_for(v1.user),
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["presence"]["assignments"] == 3 and body["presence"]["served_minutes"] == 240
    assert body["presence"]["in_review"] == 2 and body["presence"]["manual_minutes"] == 0
    assert body["points"]["awarded"] == 40 and body["points"]["reversed"] == 10 and body["points"]["redeemed"] == 15
    assert body["points"]["star_levels"] == {"star_1": 1, "star_2": 1, "star_3": 0, "star_4": 0, "star_5": 0}
    # In the home grid's zone: su1 (30 September in Urumqi) is the volunteer's September.
    response = client.get(
        "/api/v1/me/participation", query_string={"period": "month", "value": "2026-09"},
        headers=factories.headers_for(month["v5"].user),
    )
    assert response.get_json()["presence"] == _presence(1, 1, 0, 0, 0, 1.0, 120, 30)
    assert response.get_json()["points"] == _point_figures(20, 0, 0, 0, 0, {"star_1": 1})


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
