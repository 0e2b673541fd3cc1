"""Participation of an area in a period: which rows each figure counts.

Every figure is a grouped aggregate in SQL; the same query gives the area's total (one group), its
children (one group per child area, or per volunteer under a grid) and the time series (one group
per day or week, :func:`reports.periods.bucket_index`). Rows belong to an area through one path each:

- **volunteers** — ``volunteers`` rows by their *home grid* (as it is now). ``registered``: created in
  the period; ``approved``: whose status at the end of the period was active, and
  ``suspended_closed``: suspended or retired then (the last ``volunteer_status_changes`` row before
  the end; registration writes the first); ``newly_approved``: a change pending → active inside the
  period; ``active``: at least one served patrol (below) on a shift starting in the period, wherever
  it was. Each also per volunteer kind (``by_kind``, every kind listed).
- **shifts** — ``shifts`` rows by their grid, in the period of their *start* (``starts_at`` in the
  grid's zone through the area's period; a shift across midnight or across a month's end belongs
  to the day and month it starts). ``planned``: not cancelled; ``cancelled``; ``places_planned``: sum
  of ``max_headcount`` of planned shifts; ``places_filled``: primary assignments that held a place
  at the shift (``assigned`` or ``absent``), at most ``max_headcount`` per shift (a promoted backup
  replacing a no-show fills the same place); ``fill_rate`` = filled ÷ planned places.
- **presence** — primary ``assignments`` holding a place (``assigned`` or ``absent``) on planned
  shifts of the period that have *ended* by ``as_of``, by the shift's grid (where the service was).
  ``served``: those whose patrol's presence is verified or approved with served minutes;
  ``no_shows``: ``absent``; ``late_withdrawals``: ``withdrawn`` after the cut-off
  (``late_withdrawal``); ``attendance_rate`` = served ÷ assignments; ``served_hours``: their served
  minutes ÷ 60 (a rejected presence counts nothing); ``in_review``: presence ``needs_review``;
  ``manual_hours``: hours entered by hand (``service_records`` of source ``manual``, not voided,
  ``served_on`` in the period's dates, by their grid), shown apart and never in ``served_hours``.
- **reports** — ``patrol_reports`` by their grid, *received* in the period: ``filed`` by level
  (red/orange/yellow/green) and in all; ``taken_up``: with any handling step after filing;
  ``resolved``; ``median_minutes_to_take_up`` (to the first step) and ``_to_resolve`` (to
  ``resolved_at``), over the reports taken up / resolved, null when none.
- **points** — ``ledger_entries`` created in the period, by the volunteer's home grid: ``awarded``
  (served shifts, hand-entered hours, report and streak bonuses), ``reversed``, ``redeemed``
  (redemptions less refunds), ``expired``, ``adjusted`` (an admin's corrections, signed) so that
  awarded − reversed − redeemed − expired + adjusted is the ledger's sum; ``badges``: badges earned
  in the period, per badge.

A grid's children are volunteers: those at home in the grid (every one registered by the period's
end, zeros included) and anyone else with an assignment or report in the grid in the period; their
rows group the same figures by volunteer (shifts are no one's and are left out there). Children of
an area sum to the area for every count and hour; rates and medians are recomputed, not summed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from core.auth import Caller
from core.db import utcnow
from core.extensions import db
from core.timeutil import zone
from grids.models import CHILD_LEVEL, Area, AreaLevel
from grids.queries import in_subtree, referenced_area
from patrols.models import COUNTED_PRESENCE, Patrol, PresenceStatus
from patrols.reports.models import Report, ReportAction, ReportEvent, ReportLevel
from reports.periods import Bucket, Period, SeriesStep, bucket_index, resolve
from rewards.awarding.models import ServiceRecord
from rewards.badges.models import VolunteerBadge
from rewards.ledger.models import LedgerEntry, LedgerReason
from shifts.models import Assignment, AssignmentRole, AssignmentStatus, Shift, ShiftStatus
from volunteers.models import StatusChange, Volunteer, VolunteerKind, VolunteerStatus
from volunteers.service import own_volunteer

#: Ledger reasons that earn points.
EARNING = (LedgerReason.SERVED_SHIFT, LedgerReason.MANUAL_HOURS, LedgerReason.REPORT_BONUS, LedgerReason.STREAK_BONUS)
HELD_PLACE = (AssignmentStatus.ASSIGNED, AssignmentStatus.ABSENT)
LEVELS = tuple(level.value for level in ReportLevel)


class minutes_between(FunctionElement[float]):
    """Minutes from the first timestamp to the second (SQLite keeps no interval type)."""

    type = sa.Float()
    inherit_cache = True


@compiles(minutes_between)
def _minutes_between(element: minutes_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)})) / 60.0)"


@compiles(minutes_between, "sqlite")
def _minutes_between_sqlite(element: minutes_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"((julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)})) * 1440.0)"


@dataclass(frozen=True)
class Grouping:
    """How a section's rows are grouped: the whole area, its children, the volunteers of a grid,
    series buckets; or one volunteer's own rows (``volunteer_id``)."""

    area: Area | None
    mode: str  # "total" | "children" | "volunteers" | "series"
    buckets: list[Bucket] = field(default_factory=list)
    volunteer_id: int | None = None

    def apply(
        self, stmt: sa.Select[Any], path: Any, volunteer: Any, moment: Any
    ) -> tuple[sa.Select[Any], Any]:
        """``stmt`` limited to the area (or the volunteer), and the key its rows are grouped by."""
        if self.volunteer_id is not None:
            return stmt.where(volunteer == self.volunteer_id), sa.literal(0)
        assert self.area is not None
        stmt = stmt.where(in_subtree(path, self.area.path))
        if self.mode == "series":
            return stmt, bucket_index(moment, self.buckets)
        if self.mode == "volunteers":
            return stmt, volunteer
        if self.mode == "children":
            child = orm.aliased(Area)
            # Paths hold only digits and slashes, so the prefix needs no escaping.
            stmt = stmt.join(child, sa.and_(child.parent_id == self.area.id, path.startswith(child.path)))
            return stmt, child.id
        return stmt, sa.literal(0)


def _grouped(stmt: sa.Select[Any], key: sa.ColumnElement[Any], *columns: Any) -> dict[Any, dict[str, Any]]:
    rows = db.session.execute(stmt.with_only_columns(key.label("key"), *columns).group_by(key)).mappings()
    return {row["key"]: dict(row) for row in rows}


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _sum_if(condition: sa.ColumnElement[bool], value: Any) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, value), else_=0)), 0)


def _in_period(column: Any, period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.starts_at, column < period.ends_at)


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _hours(minutes: float | None) -> float:
    return round((minutes or 0) / 60, 2)


# ------------------------------------------------------------------------------------- sections


def _served(period: Period) -> sa.ColumnElement[bool]:
    """A volunteer has served a shift starting in the period (presence counted)."""
    return (
        sa.select(Patrol.id)
        .join(Shift, Shift.id == Patrol.shift_id)
        .where(
            Patrol.volunteer_id == Volunteer.id,
            Patrol.presence_status.in_(COUNTED_PRESENCE),
            Patrol.served_minutes.is_not(None),
            Shift.status != ShiftStatus.CANCELLED,
            _in_period(Shift.starts_at, period),
        )
        .exists()
    )


def volunteers_section(period: Period, by: Grouping, kinds: list[str]) -> dict[Any, dict[str, Any]]:
    last_status = (
        sa.select(StatusChange.to_status)
        .where(StatusChange.volunteer_id == Volunteer.id, StatusChange.at < period.ends_at)
        .order_by(StatusChange.at.desc(), StatusChange.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    newly_approved = (
        sa.select(StatusChange.id)
        .where(
            StatusChange.volunteer_id == Volunteer.id,
            StatusChange.from_status == VolunteerStatus.PENDING,
            StatusChange.to_status == VolunteerStatus.ACTIVE,
            _in_period(StatusChange.at, period),
        )
        .exists()
    )
    home = orm.aliased(Area)
    stmt = (
        sa.select(Volunteer.id)
        .join(home, home.id == Volunteer.home_grid_id)
        .join(VolunteerKind, VolunteerKind.id == Volunteer.kind_id)
        .where(Volunteer.created_at < period.ends_at)
    )
    stmt, key = by.apply(stmt, home.path, Volunteer.id, Volunteer.created_at)
    kind = VolunteerKind.code
    rows = db.session.execute(
        stmt.with_only_columns(
            key.label("key"),
            kind.label("kind"),
            _count_if(_in_period(Volunteer.created_at, period)).label("registered"),
            _count_if(last_status == VolunteerStatus.ACTIVE).label("approved"),
            _count_if(newly_approved).label("newly_approved"),
            _count_if(last_status.in_([VolunteerStatus.SUSPENDED, VolunteerStatus.RETIRED])).label("suspended_closed"),
            _count_if(_served(period)).label("active"),
        ).group_by(key, kind)
    ).mappings()
    names = ("registered", "approved", "newly_approved", "suspended_closed", "active")
    result: dict[Any, dict[str, Any]] = {}
    for row in rows:  # one row per (group, kind): a handful, never one per volunteer
        figures = result.setdefault(row["key"], _empty_volunteers(kinds))
        for name in names:
            figures[name] += row[name]
            figures["by_kind"][row["kind"]][name] = row[name]
    return result


def _empty_volunteers(kinds: list[str]) -> dict[str, Any]:
    names = ("registered", "approved", "newly_approved", "suspended_closed", "active")
    return {**dict.fromkeys(names, 0), "by_kind": {code: dict.fromkeys(names, 0) for code in kinds}}


def shifts_section(period: Period, by: Grouping) -> dict[Any, dict[str, Any]]:
    filled = (
        sa.select(sa.func.count(Assignment.id))
        .where(
            Assignment.shift_id == Shift.id,
            Assignment.role == AssignmentRole.PRIMARY,
            Assignment.status.in_(HELD_PLACE),
        )
        .scalar_subquery()
    )
    capped = sa.case((filled > Shift.max_headcount, Shift.max_headcount), else_=filled)
    grid = orm.aliased(Area)
    planned = Shift.status != ShiftStatus.CANCELLED
    stmt = sa.select(Shift.id).join(grid, grid.id == Shift.grid_id).where(_in_period(Shift.starts_at, period))
    stmt, key = by.apply(stmt, grid.path, sa.null(), Shift.starts_at)
    rows = _grouped(
        stmt,
        key,
        _count_if(planned).label("planned"),
        _count_if(sa.not_(planned)).label("cancelled"),
        _sum_if(planned, Shift.max_headcount).label("places_planned"),
        _sum_if(planned, capped).label("places_filled"),
    )
    return {k: _shift_figures(row) for k, row in rows.items()}


def _shift_figures(row: dict[str, Any]) -> dict[str, Any]:
    figures = {name: int(row.get(name) or 0) for name in ("planned", "cancelled", "places_planned", "places_filled")}
    return {**figures, "fill_rate": _rate(figures["places_filled"], figures["places_planned"])}


def presence_section(period: Period, by: Grouping, as_of: datetime) -> dict[Any, dict[str, Any]]:
    grid = orm.aliased(Area)
    held = sa.and_(Assignment.role == AssignmentRole.PRIMARY, Assignment.status.in_(HELD_PLACE))
    served = sa.and_(held, Patrol.presence_status.in_(COUNTED_PRESENCE), Patrol.served_minutes.is_not(None))
    stmt = (
        sa.select(Assignment.id)
        .join(Shift, Shift.id == Assignment.shift_id)
        .join(grid, grid.id == Shift.grid_id)
        .outerjoin(Patrol, Patrol.assignment_id == Assignment.id)
        .where(_in_period(Shift.starts_at, period), Shift.status != ShiftStatus.CANCELLED, Shift.ends_at <= as_of)
    )
    stmt, key = by.apply(stmt, grid.path, Assignment.volunteer_id, Shift.starts_at)
    rows = _grouped(
        stmt,
        key,
        _count_if(held).label("assignments"),
        _count_if(served).label("served"),
        _count_if(Assignment.status == AssignmentStatus.ABSENT).label("no_shows"),
        _count_if(
            sa.and_(Assignment.status == AssignmentStatus.WITHDRAWN, Assignment.late_withdrawal.is_(True))
        ).label("late_withdrawals"),
        _sum_if(served, Patrol.served_minutes).label("served_minutes"),
        _count_if(sa.and_(held, Patrol.presence_status == PresenceStatus.NEEDS_REVIEW)).label("in_review"),
    )
    manual = _manual_minutes(period, by)
    return {k: _presence_figures(rows.get(k, {}), manual.get(k, 0)) for k in rows.keys() | manual.keys()}


def _manual_minutes(period: Period, by: Grouping) -> dict[Any, int]:
    grid = orm.aliased(Area)
    stmt = (
        sa.select(ServiceRecord.id)
        .join(grid, grid.id == ServiceRecord.grid_id)
        .where(
            ServiceRecord.source_type == "manual",
            ServiceRecord.voided_at.is_(None),
            ServiceRecord.served_on >= period.first,
            ServiceRecord.served_on <= period.last,
        )
    )
    # Records carry a local date, not an instant: the series buckets them by date.
    stmt, key = by.apply(stmt, grid.path, ServiceRecord.volunteer_id, sa.null())
    if by.mode == "series" and by.volunteer_id is None:
        key = _day_bucket(by.buckets)
    rows = _grouped(stmt, key, sa.func.sum(ServiceRecord.minutes).label("minutes"))
    return {k: int(row["minutes"] or 0) for k, row in rows.items()}


def _day_bucket(buckets: list[Bucket]) -> sa.ColumnElement[int]:
    """The bucket a local date (``served_on``) falls in."""
    if len(buckets) == 1:
        return sa.literal(0)
    return sa.case(
        *((ServiceRecord.served_on <= bucket.last, index) for index, bucket in enumerate(buckets)),
        else_=len(buckets) - 1,
    )


def _presence_figures(row: dict[str, Any], manual_minutes: int) -> dict[str, Any]:
    counts = {
        name: int(row.get(name) or 0)
        for name in ("assignments", "served", "no_shows", "late_withdrawals", "in_review")
    }
    return {
        **counts,
        "attendance_rate": _rate(counts["served"], counts["assignments"]),
        "served_minutes": int(row.get("served_minutes") or 0),
        "served_hours": _hours(row.get("served_minutes")),
        "manual_minutes": manual_minutes,
        "manual_hours": _hours(manual_minutes),
    }


def reports_section(period: Period, by: Grouping) -> dict[Any, dict[str, Any]]:
    taken_up_at = (
        sa.select(ReportEvent.report_id, sa.func.min(ReportEvent.created_at).label("at"))
        .where(ReportEvent.action != ReportAction.FILED)
        .group_by(ReportEvent.report_id)
        .subquery()
    )
    grid = orm.aliased(Area)
    base = (
        sa.select(Report.id)
        .join(grid, grid.id == Report.grid_id)
        .outerjoin(taken_up_at, taken_up_at.c.report_id == Report.id)
        .where(_in_period(Report.received_at, period))
    )
    stmt, key = by.apply(base, grid.path, Report.volunteer_id, Report.received_at)
    rows = _grouped(
        stmt,
        key,
        sa.func.count(Report.id).label("filed"),
        *(_count_if(Report.level == level).label(level) for level in LEVELS),
        _count_if(taken_up_at.c.at.is_not(None)).label("taken_up"),
        _count_if(Report.resolved_at.is_not(None)).label("resolved"),
    )
    to_take_up = _medians(stmt, key, minutes_between(Report.received_at, taken_up_at.c.at), taken_up_at.c.at)
    to_resolve = _medians(stmt, key, minutes_between(Report.received_at, Report.resolved_at), Report.resolved_at)
    return {
        k: {
            "filed": int(row["filed"]),
            "by_level": {level: int(row[level]) for level in LEVELS},
            "taken_up": int(row["taken_up"]),
            "resolved": int(row["resolved"]),
            "median_minutes_to_take_up": to_take_up.get(k),
            "median_minutes_to_resolve": to_resolve.get(k),
        }
        for k, row in rows.items()
    }


def _medians(stmt: sa.Select[Any], key: sa.ColumnElement[Any], minutes: Any, present: Any) -> dict[Any, float]:
    """The median of ``minutes`` per group, in SQL: the middle row (or the mean of the middle two)
    by row number within the group (window functions: SQLite ≥ 3.25 and PostgreSQL alike)."""
    ranked = (
        stmt.where(present.is_not(None))
        .with_only_columns(
            key.label("key"),
            minutes.label("minutes"),
            sa.func.row_number().over(partition_by=key, order_by=minutes).label("position"),
            sa.func.count().over(partition_by=key).label("size"),
        )
        .subquery()
    )
    middle = sa.select(ranked.c.key, sa.func.avg(ranked.c.minutes).label("median")).where(
        ranked.c.position.in_([(ranked.c.size + 1) // 2, (ranked.c.size + 2) // 2])
    )
    rows = db.session.execute(middle.group_by(ranked.c.key)).all()
    return {row.key: round(float(row.median), 1) for row in rows}


def points_section(period: Period, by: Grouping) -> dict[Any, dict[str, Any]]:
    home = orm.aliased(Area)
    stmt = (
        sa.select(LedgerEntry.id)
        .join(Volunteer, Volunteer.id == LedgerEntry.volunteer_id)
        .join(home, home.id == Volunteer.home_grid_id)
        .where(_in_period(LedgerEntry.created_at, period))
    )
    stmt, key = by.apply(stmt, home.path, LedgerEntry.volunteer_id, LedgerEntry.created_at)
    reason = LedgerEntry.reason
    rows = _grouped(
        stmt,
        key,
        _sum_if(reason.in_(EARNING), LedgerEntry.amount).label("awarded"),
        _sum_if(reason == LedgerReason.REVERSAL, -LedgerEntry.amount).label("reversed"),
        _sum_if(
            reason.in_([LedgerReason.REDEMPTION, LedgerReason.REDEMPTION_REFUND]), -LedgerEntry.amount
        ).label("redeemed"),
        _sum_if(reason == LedgerReason.EXPIRY, -LedgerEntry.amount).label("expired"),
        _sum_if(reason == LedgerReason.ADJUSTMENT, LedgerEntry.amount).label("adjusted"),
    )
    badges = _badges(period, by)
    return {
        k: {
            **{name: int(rows.get(k, {}).get(name) or 0) for name in ("awarded", "reversed", "redeemed", "expired", "adjusted")},
            "badges": badges.get(k, {}),
        }
        for k in rows.keys() | badges.keys()
    }


def _badges(period: Period, by: Grouping) -> dict[Any, dict[str, int]]:
    home = orm.aliased(Area)
    stmt = (
        sa.select(VolunteerBadge.id)
        .join(Volunteer, Volunteer.id == VolunteerBadge.volunteer_id)
        .join(home, home.id == Volunteer.home_grid_id)
        .where(_in_period(VolunteerBadge.earned_at, period))
    )
    stmt, key = by.apply(stmt, home.path, VolunteerBadge.volunteer_id, VolunteerBadge.earned_at)
    rows = db.session.execute(
        stmt.with_only_columns(key.label("key"), VolunteerBadge.badge, sa.func.count().label("n")).group_by(
            key, VolunteerBadge.badge
        )
    ).all()
    result: dict[Any, dict[str, int]] = {}
    for row in rows:  # one row per (group, badge)
        result.setdefault(row.key, {})[row.badge] = int(row.n)
    return result


# --------------------------------------------------------------------------------------- report

EMPTY_SHIFTS = _shift_figures({})
EMPTY_PRESENCE = _presence_figures({}, 0)
EMPTY_REPORTS: dict[str, Any] = {
    "filed": 0,
    "by_level": dict.fromkeys(LEVELS, 0),
    "taken_up": 0,
    "resolved": 0,
    "median_minutes_to_take_up": None,
    "median_minutes_to_resolve": None,
}
EMPTY_POINTS: dict[str, Any] = {**dict.fromkeys(("awarded", "reversed", "redeemed", "expired", "adjusted"), 0), "badges": {}}


@dataclass
class _Sections:
    volunteers: dict[Any, dict[str, Any]]
    shifts: dict[Any, dict[str, Any]] | None
    presence: dict[Any, dict[str, Any]]
    reports: dict[Any, dict[str, Any]]
    points: dict[Any, dict[str, Any]]

    def keys(self) -> set[Any]:
        keys: set[Any] = set()
        for section in (self.volunteers, self.shifts or {}, self.presence, self.reports, self.points):
            keys |= section.keys()
        return keys

    def figures(self, key: Any, kinds: list[str]) -> dict[str, Any]:
        return {
            "volunteers": self.volunteers.get(key, _empty_volunteers(kinds)),
            "shifts": None if self.shifts is None else self.shifts.get(key, EMPTY_SHIFTS),
            "presence": self.presence.get(key, EMPTY_PRESENCE),
            "reports": self.reports.get(key, EMPTY_REPORTS),
            "points": self.points.get(key, EMPTY_POINTS),
        }


def _sections(period: Period, by: Grouping, kinds: list[str], as_of: datetime, with_shifts: bool = True) -> _Sections:
    return _Sections(
        volunteers=volunteers_section(period, by, kinds),
        shifts=shifts_section(period, by) if with_shifts else None,
        presence=presence_section(period, by, as_of),
        reports=reports_section(period, by),
        points=points_section(period, by),
    )


def _kinds() -> list[str]:
    return list(db.session.scalars(sa.select(VolunteerKind.code).order_by(VolunteerKind.id)))


def period_body(period: Period) -> dict[str, Any]:
    return {
        "label": period.label,
        "kind": period.kind.value,
        "from": period.first,
        "to": period.last,
        "starts_at": period.starts_at,
        "ends_at": period.ends_at,
        "time_zone": period.zone.key,
    }


def area_report(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """The participation report of ``args["area_id"]`` (403 out_of_scope, computing nothing, when
    the area is outside the caller's subtree)."""
    area = referenced_area(args["area_id"], "area_id")
    caller.ensure_scope(area.path)
    period = resolve(args, _zone(area))
    as_of = utcnow()
    kinds = _kinds()
    total = _sections(period, Grouping(area, "total"), kinds, as_of)
    body: dict[str, Any] = {
        "area": _area_ref(area),
        "period": period_body(period),
        "as_of": as_of,
        "figures": total.figures(0, kinds),
        "children_level": "volunteer" if area.level == AreaLevel.GRID else CHILD_LEVEL[AreaLevel(area.level)].value,
        "children": _children(area, period, kinds, as_of),
        "series": None,
    }
    step = args.get("series")
    if step is not None:
        buckets = period.buckets(SeriesStep(step))
        series = _sections(period, Grouping(area, "series", buckets), kinds, as_of)
        body["series"] = [
            {"label": bucket.label, "from": bucket.first, "to": bucket.last, **_series_figures(series.figures(index, kinds))}
            for index, bucket in enumerate(buckets)
        ]
    return body


def _series_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """A series point: the flows of the period (stocks such as approved volunteers are not per day)."""
    return {name: figures[name] for name in ("shifts", "presence", "reports", "points")}


def _children(area: Area, period: Period, kinds: list[str], as_of: datetime) -> list[dict[str, Any]]:
    if area.level != AreaLevel.GRID:
        sections = _sections(period, Grouping(area, "children"), kinds, as_of)
        children = db.session.scalars(sa.select(Area).where(Area.parent_id == area.id).order_by(Area.id))
        return [{**_area_ref(child), "figures": sections.figures(child.id, kinds)} for child in children]
    sections = _sections(period, Grouping(area, "volunteers"), kinds, as_of, with_shifts=False)
    at_home = sa.and_(Volunteer.home_grid_id == area.id, Volunteer.created_at < period.ends_at)
    volunteers = db.session.execute(
        sa.select(Volunteer.id, Volunteer.real_name, Volunteer.home_grid_id)
        .where(sa.or_(at_home, Volunteer.id.in_(list(sections.keys()))))
        .order_by(Volunteer.id)
    ).all()
    return [
        {
            "id": row.id,
            "name": row.real_name,
            "level": "volunteer",
            "at_home": row.home_grid_id == area.id,
            "figures": sections.figures(row.id, kinds),
        }
        for row in volunteers
    ]


def _area_ref(area: Area) -> dict[str, Any]:
    return {"id": area.id, "name": area.name, "level": area.level}


def _zone(area: Area) -> ZoneInfo:
    return zone(area.timezone)


def my_report(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """A volunteer's own hours, shifts, attendance and points in a period (home grid's zone)."""
    volunteer = own_volunteer(caller)
    period = resolve(args, _zone(volunteer.home_grid))
    as_of = utcnow()
    mine = Grouping(None, "total", volunteer_id=volunteer.id)
    presence = presence_section(period, mine, as_of).get(0, EMPTY_PRESENCE)
    points = points_section(period, mine).get(0, EMPTY_POINTS)
    return {"period": period_body(period), "as_of": as_of, "presence": presence, "points": points}

