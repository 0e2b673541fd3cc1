"""What the overview shows, composed from the services the API calls with the same caller — the
participation report (this month with its daily series, and last month), the coverage figures (which
carries its own change against the previous month), and the API's lists for what needs attention —
so scope, masking and every figure are theirs. Nothing here queries the database itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from core.auth import Caller
from core.db import utcnow
from core.pagination import paginate
from core.timeutil import zone
from grids.paths import own_id
from patrols.models import Patrol, PresenceStatus
from patrols.presence import review
from patrols.reports import workflow
from patrols.reports.models import URGENT_LEVELS, Report, ReportStatus
from patrols.sos import views as sos_views
from patrols.sos.models import LIVE_SOS, SosStatus
from reports.coverage.service import area_coverage_figures
from reports.participation.service import area_sums
from reports.replica import reading_reports
from shifts.schedules.coverage import coverage_gaps
from volunteers.models import Volunteer, VolunteerStatus
from volunteers.service import select_volunteers

#: The weakest grids listed.
WEAKEST_GRIDS = 10
#: Items listed under each "needs attention" heading; the count reads up to COUNT_CAP (then "100+": past
#: that the queue itself is the place to look, and a count of every row would cost more than the page).
ATTENTION_SHOWN = 5
COUNT_CAP = 100
#: "Shifts short of people": those under way or starting within this many hours.
GAP_HOURS = 48
_LEVELS = ("red", "orange", "yellow", "green")


def overview(caller: Caller, area_id: int | None, month: str | None) -> dict[str, Any]:
    """The overview of ``area_id`` (default the caller's area) for ``month`` (``YYYY-MM``, default the
    month under way in the area's zone). An area outside the caller's subtree is 403 out_of_scope and
    an unknown one 422, from the first report asked, before anything is computed."""
    area_id = area_id if area_id is not None else own_id(caller.area_path)
    with reading_reports():
        # The sums only (no children, no medians: the page shows neither), read from the roll-ups.
        now = area_sums(caller, _month_args(area_id, month, series="day"))
        label = now["period"]["label"]
        before = area_sums(caller, _month_args(area_id, _previous_month(now["period"]["from"])))
        # The figures only (no days without patrol, no quotas: not shown here), with the count of
        # unserved shifts for the weakest grids shown alone.
        coverage = area_coverage_figures(caller, _month_args(area_id, label), uncovered_for=WEAKEST_GRIDS)
    return {
        "area": now["area"],
        "period": now["period"],
        "previous_label": before["period"]["label"],
        "as_of": now["as_of"],
        "figures": _figures(now["figures"], before["figures"], coverage["totals"]),
        "trend": _trend(now["series"] or []),
        "weakest": coverage["grids"][:WEAKEST_GRIDS],
        "grid_count": coverage["totals"]["grid_count"],
        "attention": attention(caller, area_id),
    }


def _month_args(area_id: int, month: str | None, series: str | None = None) -> dict[str, Any]:
    """The arguments the reports' query schemas load for ``period=month&value=...``."""
    args: dict[str, Any] = {"area_id": area_id, "period": "month"}
    if month is not None:
        args["value"] = month
    if series is not None:
        args["series"] = series
    return args


def _previous_month(first: date) -> str:
    last = first - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}"


def _change(now: float | None, before: float | None, digits: int = 1) -> float | None:
    return None if now is None or before is None else round(now - before, digits)


def _percent(rate: float | None) -> float | None:
    """A rate (0..1) as a percentage with one decimal."""
    return None if rate is None else round(rate * 100, 1)


def _figures(now: dict[str, Any], before: dict[str, Any], coverage: dict[str, Any]) -> dict[str, Any]:
    attendance, attendance_before = (
        _percent(now["presence"]["attendance_rate"]), _percent(before["presence"]["attendance_rate"])
    )
    return {
        "active_volunteers": {
            "value": now["volunteers"]["active"],
            "change": now["volunteers"]["active"] - before["volunteers"]["active"],
        },
        "served_hours": {
            "value": now["presence"]["served_hours"],
            "change": _change(now["presence"]["served_hours"], before["presence"]["served_hours"]),
        },
        # The report's attendance_rate: served ÷ assignments of the shifts ended so far.
        "attendance": {"value": attendance, "change": _change(attendance, attendance_before)},
        "reports": {
            level: {
                "value": now["reports"]["by_level"].get(level, 0),
                "change": now["reports"]["by_level"].get(level, 0) - before["reports"]["by_level"].get(level, 0),
            }
            for level in _LEVELS
        },
        "coverage": {"value": coverage["coverage_pct"], "change": coverage["coverage_change"]},
    }


def _trend(series: list[dict[str, Any]]) -> dict[str, Any]:
    """The chart's data: per day of the month, served hours, attendance % and reports filed."""
    return {
        "days": [point["from"].isoformat() for point in series],
        "served_hours": [point["presence"]["served_hours"] for point in series],
        "attendance": [_percent(point["presence"]["attendance_rate"]) for point in series],
        "reports": [point["reports"]["filed"] for point in series],
    }


def _counted(page: dict[str, Any], shown: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """A list's count (``capped`` when there are more than ``COUNT_CAP``) and its first items as shown."""
    return {"count": len(page["items"]), "capped": page["next_cursor"] is not None,
            "items": [shown(item) for item in page["items"][:ATTENTION_SHOWN]]}


def _local(instant: datetime | None, timezone: str) -> str:
    return "" if instant is None else instant.astimezone(zone(timezone)).strftime("%m-%d %H:%M")


def _gap(gap: dict[str, Any]) -> dict[str, Any]:
    return {"id": gap["id"], "title": gap["title"], "grid_name": gap["grid_name"],
            "when": _local(gap["starts_at"], gap["timezone"]), "missing": gap["missing_headcount"],
            "unmet_kinds": gap["unmet_kinds"], "in_progress": gap["in_progress"]}


def _patrol(patrol: Patrol) -> dict[str, Any]:
    shift = patrol.assignment.shift
    return {"id": patrol.id, "volunteer": patrol.assignment.volunteer.real_name, "grid_name": shift.grid.name,
            "when": _local(shift.starts_at, shift.timezone)}


def _report(report: Report) -> dict[str, Any]:
    return {"id": report.id, "level": report.level, "grid_name": report.grid.name, "category": report.category,
            "when": _local(report.received_at, report.grid.timezone)}


def _unanswered_first(page: dict[str, Any]) -> dict[str, Any]:
    """The SOS nobody has acknowledged yet before those someone is on (each newest first, as listed)."""
    return {**page, "items": sorted(page["items"], key=lambda sos: sos["status"] != SosStatus.OPEN)}


def _sos(sos: dict[str, Any], now: datetime) -> dict[str, Any]:
    # How long it has been open rather than a local time: the list's items carry no time zone, and
    # for someone in danger the minutes are what matter.
    return {"id": sos["id"], "volunteer": sos["volunteer_name"], "grid_name": sos["grid_name"], "level": sos["level"],
            "since": sos["received_at"], "minutes": max(0, int((now - sos["received_at"]).total_seconds() // 60)),
            "acknowledged": sos["status"] == SosStatus.ACKNOWLEDGED, "false_alarms": sos["false_alarms"]}


def _volunteer(volunteer: Volunteer) -> dict[str, Any]:
    return {"id": volunteer.id, "name": volunteer.real_name, "grid_name": volunteer.home_grid.name,
            "when": _local(volunteer.created_at, volunteer.home_grid.timezone)}


def attention(caller: Caller, area_id: int) -> dict[str, dict[str, Any]]:
    """What needs someone today in ``area_id``'s subtree, from the lists the API serves: live SOS
    first, acknowledged or not (``GET /sos?status=open&status=acknowledged``), then shifts
    under way or starting within 48 h below their minimum headcount or missing a required kind
    (``GET /coverage-gaps``), presence awaiting review (``GET /patrols/review``), red and orange
    reports nobody has taken up yet (``GET /reports?status=open``), volunteers awaiting vetting
    (``GET /volunteers?status=pending``)."""
    page: dict[str, Any] = {"limit": COUNT_CAP, "cursor": None}
    urgent = {**page, "area_id": area_id, "level": list(URGENT_LEVELS), "status": [ReportStatus.OPEN]}
    now = utcnow()
    live = {**page, "area_id": area_id, "status": list(LIVE_SOS)}
    return {
        "open_sos": _counted(_unanswered_first(sos_views.responder_list(caller, live)), lambda sos: _sos(sos, now)),
        "short_shifts": _counted(
            coverage_gaps(caller, {**page, "area_id": area_id, "within_hours": GAP_HOURS}), _gap
        ),
        "presence_review": _counted(
            review.review_queue(caller, PresenceStatus.NEEDS_REVIEW, area_id=area_id, limit=COUNT_CAP, cursor=None), _patrol
        ),
        "urgent_reports": _counted(workflow.list_reports(caller, urgent), _report),
        # The rows of GET /volunteers?status=pending, not its views: a name is all the list shows, and
        # a view decrypts each ID number.
        "pending_volunteers": _counted(paginate(
            select_volunteers(caller, {"under": area_id, "status": VolunteerStatus.PENDING}),
            [Volunteer.id], limit=COUNT_CAP, cursor=None,
        ), _volunteer),
    }
