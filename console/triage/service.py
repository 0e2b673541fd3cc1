"""The triage queue composed from ``patrols.reports.workflow.list_reports`` (the API's list): red
and orange reports first, then yellow and green, each part newest first as the API pages it; and a
report as its page shows it. No rule here: scope, filters and refusals are the service's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from accounts.models import User
from core.auth import Caller
from core.extensions import db
from core.i18n import N_
from core.timeutil import zone
from grids.models import Area
from patrols.reports import service as reports
from patrols.reports import workflow
from patrols.reports.models import URGENT_LEVELS, Report, ReportAction, ReportLevel

URGENT = [level.value for level in URGENT_LEVELS]
OTHER = [level.value for level in ReportLevel if level not in URGENT_LEVELS]

LEVEL_LABELS = {"red": N_("Red"), "orange": N_("Orange"), "yellow": N_("Yellow"), "green": N_("Green")}
STATUS_LABELS = {
    "open": N_("Open"), "acknowledged": N_("Acknowledged"), "assigned": N_("Assigned"),
    "escalated": N_("Escalated"), "resolved": N_("Resolved"),
}
CATEGORY_LABELS = {
    "dispute": N_("Dispute"), "safety_hazard": N_("Safety hazard"),
    "suspicious_activity": N_("Suspicious activity"), "help_needed": N_("Help needed"), "other": N_("Other"),
}
ACTION_LABELS = {
    "filed": N_("Filed"), "acknowledged": N_("Acknowledged"), "assigned": N_("Assigned"),
    "escalated": N_("Escalated"), "resolved": N_("Resolved"),
}
#: The console's step names and the workflow's actions they are (the API's endpoint names).
STEPS = {
    "acknowledge": ReportAction.ACKNOWLEDGED, "assign": ReportAction.ASSIGNED,
    "escalate": ReportAction.ESCALATED, "resolve": ReportAction.RESOLVED,
}

PhotoUrl = Callable[[int, int], str]


def local_time(report: Report, moment: Any) -> str:
    """An instant as the wall-clock time of the report's grid."""
    return str(moment.astimezone(zone(report.grid.timezone)).strftime("%Y-%m-%d %H:%M")) if moment else ""


def _row(report: Report, photo_url: PhotoUrl) -> dict[str, Any]:
    return {**reports.report_view(report, photo_url), "received_local": local_time(report, report.received_at),
            "urgent": report.level in URGENT}


def queue(caller: Caller, args: dict[str, Any], photo_url: PhotoUrl) -> dict[str, Any]:
    """One page of the queue: ``items`` and ``next`` (the ``group`` and ``cursor`` of the next page,
    or None). The first part's last page is topped up with the start of the second part."""
    chosen = args.get("level") or URGENT + OTHER
    parts = {"urgent": [level for level in URGENT if level in chosen], "other": [level for level in OTHER if level in chosen]}
    common = {key: value for key, value in args.items() if key not in ("group", "cursor", "level", "limit")}
    limit, group = args["limit"], args["group"]

    def listed(levels: list[str], limit: int, cursor: str | None) -> dict[str, Any]:
        return workflow.list_reports(caller, {**common, "level": levels, "limit": limit, "cursor": cursor})

    items: list[Report] = []
    following: dict[str, Any] | None = None
    cursor = args.get("cursor")
    if group == "urgent" and parts["urgent"]:
        page = listed(parts["urgent"], limit, cursor)
        items = list(page["items"])
        if page["next_cursor"]:
            following = {"group": "urgent", "cursor": page["next_cursor"]}
        cursor = None  # the second part, if reached, from its start
    if following is None and parts["other"]:
        room = limit - len(items)
        # With no room left, one row tells whether the second part has a page at all.
        page = listed(parts["other"], max(room, 1), cursor if group == "other" else None)
        if room > 0:
            items += page["items"]
            if page["next_cursor"]:
                following = {"group": "other", "cursor": page["next_cursor"]}
        elif page["items"]:
            following = {"group": "other", "cursor": None}
    return {"items": [_row(report, photo_url) for report in items], "next": following}


def report_page(caller: Caller, report_id: int, photo_url: PhotoUrl) -> dict[str, Any]:
    """The report as ``GET /api/v1/reports/{id}`` shows it (404 out of reach), with local times,
    the names of the people in its history, the steps its status allows and whom it may go to."""
    report = reports.get_report_for(caller, report_id)
    view = reports.report_view(report, photo_url, with_history=True)
    people = _names(
        [event["actor_id"] for event in view["history"]] + [event["assignee_id"] for event in view["history"]]
        + [report.assignee_id]
    )
    for event in view["history"]:
        event["at_local"] = local_time(report, event["at"])
        event["actor_name"] = people.get(event["actor_id"], "")
        event["assignee_name"] = people.get(event["assignee_id"], "")
    steps = [step for step, action in STEPS.items() if report.status in workflow.ALLOWED_FROM[action]]
    candidates = workflow.assignee_candidates(caller, report) if "assign" in steps else []
    return {
        **view,
        "received_local": local_time(report, report.received_at),
        "device_local": local_time(report, report.device_at),
        "resolved_local": local_time(report, report.resolved_at),
        "assignee_name": people.get(report.assignee_id, ""),
        "escalated_to_name": _area_name(report.escalated_to_id),
        "steps": steps,
        "candidates": [{"id": user.id, "name": user.display_name, "area": user.area.name} for user in candidates],
    }


def _names(user_ids: Iterable[int | None]) -> dict[int | None, str]:
    ids = {user_id for user_id in user_ids if user_id is not None}
    if not ids:
        return {}
    rows = db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(ids)))
    return {row.id: row.display_name for row in rows}


def _area_name(area_id: int | None) -> str:
    if area_id is None:
        return ""
    name = db.session.scalar(sa.select(Area.name).where(Area.id == area_id))
    return name or ""
