"""How organisers handle reports (acknowledge, assign, escalate, resolve), and the report lists.

Each step is a conditional UPDATE on the report's status (two organisers acting at once cannot both
move it on), a :class:`ReportEvent` in its history and a ``report_status_changed`` signal. Once a
report is escalated to the district, only callers whose area covers that district, or the person
it was assigned to, act on it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from accounts.models import User
from core import i18n
from core.auth import MANAGERS, Caller
from core.db import rowcount, utcnow
from core.errors import Conflict, Forbidden, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area, AreaLevel
from grids.paths import ancestor_ids, path_ids
from grids.queries import in_subtree, scope_root
from patrols import signals
from patrols.reports.models import Report, ReportAction, ReportEvent, ReportStatus
from patrols.reports.schemas import AssignInput, NoteOptionalInput, NoteRequiredInput
from patrols.reports.service import get_report_for
from volunteers.models import Volunteer
from volunteers.service import own_volunteer

_OPEN, _ACK, _ASSIGNED, _ESCALATED = (
    ReportStatus.OPEN,
    ReportStatus.ACKNOWLEDGED,
    ReportStatus.ASSIGNED,
    ReportStatus.ESCALATED,
)
#: The statuses each action may start from; anything else is 409 invalid_report_transition.
ALLOWED_FROM: dict[ReportAction, tuple[ReportStatus, ...]] = {
    ReportAction.ACKNOWLEDGED: (_OPEN,),
    ReportAction.ASSIGNED: (_OPEN, _ACK, _ASSIGNED, _ESCALATED),
    ReportAction.ESCALATED: (_OPEN, _ACK, _ASSIGNED),
    ReportAction.RESOLVED: (_OPEN, _ACK, _ASSIGNED, _ESCALATED),
}
NOT_AN_ASSIGNEE = i18n.N_("Not an active organiser, staff member or admin who can handle this report.")

i18n.register_titles(
    i18n.title("invalid_report_transition", "Invalid report transition"),
    i18n.title("report_escalated", "Report escalated to the district"),
    i18n.title("no_district", "No district above this grid"),
)
i18n.register_messages(
    i18n.N_("The report cannot make this step from its current status."),
    i18n.N_("The report was escalated to the district; only the district or its assignee handles it."),
    i18n.N_("The grid has no district above it."),
    NOT_AN_ASSIGNEE,
)


def _get_managed_report(caller: Caller, report_id: int) -> Report:
    report = get_report_for(caller, report_id)  # managers only reach here: 403 out of scope
    if report.escalated_to_id is not None and report.assignee_id != caller.user_id:
        district = db.session.get(Area, report.escalated_to_id)
        if district is None or not caller.in_scope(district.path):
            raise Forbidden(
                "The report was escalated to the district; only the district or its assignee "
                "handles it.",
                code="report_escalated",
            )
    return report


def _move(
    caller: Caller,
    report: Report,
    action: ReportAction,
    to_status: ReportStatus,
    *,
    note: str | None,
    values: dict[str, Any] | None = None,
    assignee_id: int | None = None,
) -> Report:
    from_status = report.status
    if from_status not in ALLOWED_FROM[action]:
        raise _invalid()
    result = db.session.execute(
        sa.update(Report)
        .where(Report.id == report.id, Report.status == from_status)
        .values(status=to_status, updated_at=utcnow(), **(values or {}))
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise _invalid()  # another organiser moved it on meanwhile
    db.session.add(
        ReportEvent(
            report_id=report.id,
            action=action,
            from_status=from_status,
            to_status=to_status,
            actor_id=caller.user_id,
            assignee_id=assignee_id,
            note=note,
        )
    )
    db.session.flush()
    db.session.refresh(report)
    signals.report_status_changed.send(
        signals.SENDER,
        **signals.ReportStatusChanged(
            report_id=report.id,
            from_status=from_status,
            to_status=to_status,
            actor_id=caller.user_id,
            note=note,
        ),
    )
    return report


def _invalid() -> Conflict:
    return Conflict(
        "The report cannot make this step from its current status.", code="invalid_report_transition"
    )


def acknowledge(caller: Caller, report_id: int, data: NoteOptionalInput) -> Report:
    report = _get_managed_report(caller, report_id)
    return _move(caller, report, ReportAction.ACKNOWLEDGED, _ACK, note=data.get("note"))


def _may_take(caller: Caller, report: Report, user: User) -> bool:
    """Whom ``caller`` may hand ``report`` to: an active manager inside the caller's area whose
    own area covers the report's grid."""
    return (
        user.is_active
        and user.role in MANAGERS
        and caller.in_scope(user.area.path)
        and report.grid.path.startswith(user.area.path)
    )


def assignee_candidates(caller: Caller, report: Report) -> list[User]:
    """Everyone :func:`assign` accepts for this report (the console's choice of assignee): managers
    of the areas on the report's grid's path, kept by the very rule ``assign`` applies."""
    users = db.session.scalars(
        sa.select(User)
        .where(User.area_id.in_(path_ids(report.grid.path)), User.role.in_(MANAGERS), User.is_active.is_(True))
        .order_by(User.id)
    ).all()
    return [user for user in users if _may_take(caller, report, user)]


def assign(caller: Caller, report_id: int, data: AssignInput) -> Report:
    """Hand the report to an active manager inside the caller's area who can act on its grid."""
    report = _get_managed_report(caller, report_id)
    if report.status not in ALLOWED_FROM[ReportAction.ASSIGNED]:
        raise _invalid()
    assignee = db.session.get(User, data["assignee_id"])
    if assignee is None or not _may_take(caller, report, assignee):
        raise ValidationFailed(errors={"assignee_id": [NOT_AN_ASSIGNEE]})
    return _move(
        caller,
        report,
        ReportAction.ASSIGNED,
        _ASSIGNED,
        note=data.get("note"),
        values={"assignee_id": assignee.id},
        assignee_id=assignee.id,
    )


def escalate(caller: Caller, report_id: int, data: NoteOptionalInput) -> Report:
    """Hand the report to the district above its grid (大事全网联动)."""
    report = _get_managed_report(caller, report_id)
    if report.status not in ALLOWED_FROM[ReportAction.ESCALATED]:
        raise _invalid()
    district_id = db.session.scalar(
        sa.select(Area.id).where(
            Area.id.in_(ancestor_ids(report.grid.path)), Area.level == AreaLevel.DISTRICT.value
        )
    )
    if district_id is None:
        raise Conflict("The grid has no district above it.", code="no_district")
    return _move(
        caller,
        report,
        ReportAction.ESCALATED,
        _ESCALATED,
        note=data.get("note"),
        values={"escalated_to_id": district_id},
    )


def resolve(caller: Caller, report_id: int, data: NoteRequiredInput) -> Report:
    report = _get_managed_report(caller, report_id)
    return _move(
        caller,
        report,
        ReportAction.RESOLVED,
        ReportStatus.RESOLVED,
        note=data["note"],
        values={"resolution_note": data["note"], "resolved_at": utcnow()},
    )


# --- lists ---------------------------------------------------------------------------------------

_LIST_OPTIONS = (
    orm.joinedload(Report.grid).load_only(Area.id, Area.name, Area.path, Area.timezone).lazyload("*"),
    orm.joinedload(Report.volunteer).load_only(Volunteer.id, Volunteer.real_name, Volunteer.user_id).lazyload("*"),
)


def _filtered(stmt: sa.Select, args: dict[str, Any]) -> sa.Select:
    if args.get("level"):
        stmt = stmt.where(Report.level.in_(args["level"]))
    if args.get("status"):
        stmt = stmt.where(Report.status.in_(args["status"]))
    if args.get("category"):
        stmt = stmt.where(Report.category.in_(args["category"]))
    if args.get("received_from") is not None:
        stmt = stmt.where(Report.received_at >= args["received_from"])
    if args.get("received_to") is not None:
        stmt = stmt.where(Report.received_at < args["received_to"])
    return stmt


def list_reports(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Reports in grids of ``area_id``'s subtree (default: the caller's area), newest first."""
    root_path = scope_root(caller, args.get("area_id"))
    stmt = (
        sa.select(Report)
        .join(Area, Area.id == Report.grid_id)
        .where(in_subtree(Area.path, root_path))
        .options(*_LIST_OPTIONS)
    )
    if args.get("assigned_to_me"):
        stmt = stmt.where(Report.assignee_id == caller.user_id)
    return paginate(
        _filtered(stmt, args), [Report.id], limit=args["limit"], cursor=args.get("cursor"), descending=True
    )


def list_mine(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """The caller's own reports, newest first."""
    volunteer = own_volunteer(caller)
    stmt = sa.select(Report).where(Report.volunteer_id == volunteer.id).options(*_LIST_OPTIONS)
    return paginate(
        _filtered(stmt, args), [Report.id], limit=args["limit"], cursor=args.get("cursor"), descending=True
    )
