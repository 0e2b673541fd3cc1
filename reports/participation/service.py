"""Participation of an area in a period: which rows each figure counts.

Every figure is a grouped aggregate in SQL; the same query gives the area's total (one group), its
children (one group per child area, or per volunteer under a grid) and the time series (one group
per day or week, :func:`reports.periods.bucket_index`). An area above a grid reads its children and
series from the daily roll-ups (:mod:`reports.rollups`), which these same queries fill, for one grid
and a run of days at a time; the figures are the same. Rows belong to an area through one path each:

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
  in the period, per badge (star levels included); ``star_levels``: volunteers reaching each star
  level (``star_1``…``star_5``, every level listed) in the period.

A grid's children are volunteers: those at home in the grid (every one registered by the period's
end, zeros included) and anyone else with an assignment or report in the grid in the period; their
rows group the same figures by volunteer (shifts are no one's and are left out there). Children of
an area sum to the area for every count and hour; rates and medians are recomputed, not summed.
Every row is read in the reported area's zone, a child grid's in another zone too; what the figures
reconcile with (service records, the ledger) and why records summed by ``served_on`` may not: README
"What reconciles with what".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core.auth import Caller
from core.extensions import db
from core.timeutil import zone
from grids.models import CHILD_LEVEL, Area, AreaLevel
from grids.queries import referenced_area
from reports.participation.figures import (
    EMPTY_POINTS,
    EMPTY_PRESENCE,
    EMPTY_REPORTS,
    EMPTY_SHIFTS,
    empty_volunteers,
    points_section,
    presence_section,
    reports_section,
    shifts_section,
    volunteers_section,
)
from reports.participation.grouping import Grouping
from reports.participation.medians import NO_MEDIANS, report_medians
from reports.participation.totals import summed
from reports.periods import Bucket, Period, SeriesStep, resolve
from reports.replica import figures_as_of
from reports.rollups import read as rollups
from volunteers.models import Volunteer, VolunteerKind
from volunteers.service import own_volunteer


@dataclass
class _Sections:
    volunteers: dict[Any, dict[str, Any]]
    shifts: dict[Any, dict[str, Any]] | None
    presence: dict[Any, dict[str, Any]]
    reports: dict[Any, dict[str, Any]]
    points: dict[Any, dict[str, Any]]
    #: The medians of all the rows (an area's children read from the roll-ups give them).
    whole_medians: dict[str, float | None] | None = None

    def keys(self) -> set[Any]:
        keys: set[Any] = set()
        for section in (self.volunteers, self.shifts or {}, self.presence, self.reports, self.points):
            keys |= section.keys()
        return keys

    def figures(self, key: Any, kinds: list[str]) -> dict[str, Any]:
        return {
            "volunteers": self.volunteers.get(key, empty_volunteers(kinds)),
            "shifts": None if self.shifts is None else self.shifts.get(key, EMPTY_SHIFTS),
            "presence": self.presence.get(key, EMPTY_PRESENCE),
            "reports": self.reports.get(key, EMPTY_REPORTS),
            "points": self.points.get(key, EMPTY_POINTS),
        }


def _sections(period: Period, by: Grouping, kinds: list[str], as_of: datetime, with_shifts: bool = True) -> _Sections:
    """An area's children or series from the roll-ups (:mod:`reports.rollups.read`); a grid's own
    figures and its volunteers, a few rows each, from the live queries. A series has no volunteers
    (stocks are not per day: :func:`_series_figures`), so none are counted for one."""
    if by.mode == "series":
        volunteers: dict[Any, dict[str, Any]] = {}
    if by.area is not None and by.area.level != AreaLevel.GRID and by.mode in ("children", "series"):
        flows, whole_medians = rollups.flows(period, by, as_of)
        if by.mode != "series":
            volunteers = volunteers_section(period, by, kinds, served=rollups.active_volunteers(period, by.area))
        return _Sections(
            volunteers=volunteers,
            shifts=flows["shifts"],
            presence=flows["presence"],
            reports=flows["reports"],
            points=flows["points"],
            whole_medians=whole_medians,
        )
    return _Sections(
        volunteers=volunteers if by.mode == "series" else volunteers_section(period, by, kinds),
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
    as_of = figures_as_of()
    kinds = _kinds()
    children, medians = _children(area, period, kinds, as_of)
    if area.level == AreaLevel.GRID:
        figures = _sections(period, Grouping(area, "total"), kinds, as_of).figures(0, kinds)
    else:
        if medians is None:
            medians = report_medians(period, Grouping(area, "total")).get(0, NO_MEDIANS)
        figures = summed([child["figures"] for child in children], kinds, medians)
    body: dict[str, Any] = {
        "area": _area_ref(area),
        "period": period_body(period),
        "as_of": as_of,
        "figures": figures,
        "children_level": "volunteer" if area.level == AreaLevel.GRID else CHILD_LEVEL[AreaLevel(area.level)].value,
        "children": children,
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


def area_sums(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """The area's own figures for the period, and its series when ``args["series"]`` asks, as
    :func:`area_report` answers them but without the children and without the medians of time to
    take up and to resolve (null here): for a dashboard that shows sums (the console's overview). An
    area above a grid reads its flows from the daily roll-ups in one pass (the series' buckets, or
    one bucket for the whole period) and its volunteers in one total; a grid's answer is
    :func:`area_report`'s, whose figures are a few rows. Refuses as :func:`area_report` does."""
    area = referenced_area(args["area_id"], "area_id")
    caller.ensure_scope(area.path)
    if area.level == AreaLevel.GRID:
        return area_report(caller, args)
    period = resolve(args, _zone(area))
    as_of = figures_as_of()
    kinds = _kinds()
    step = args.get("series")
    whole = Bucket(period.label, period.first, period.last, period.starts_at, period.ends_at)
    buckets = period.buckets(SeriesStep(step)) if step is not None else [whole]
    flows, _ = rollups.flows(period, Grouping(area, "series", buckets), as_of, with_medians=False)
    sections = _Sections(volunteers={}, shifts=flows["shifts"], presence=flows["presence"],
                         reports=flows["reports"], points=flows["points"])
    points = [sections.figures(index, kinds) for index in range(len(buckets))]
    figures = summed(points, kinds, NO_MEDIANS)
    by = Grouping(area, "total")
    figures["volunteers"] = volunteers_section(
        period, by, kinds, served=rollups.active_volunteers(period, area)
    ).get(0, empty_volunteers(kinds))
    series = None
    if step is not None:
        series = [
            {"label": bucket.label, "from": bucket.first, "to": bucket.last,
             **_series_figures(summed([point], kinds, NO_MEDIANS))}
            for bucket, point in zip(buckets, points, strict=True)
        ]
    return {"area": _area_ref(area), "period": period_body(period), "as_of": as_of, "figures": figures,
            "series": series}


def _series_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """A series point: the flows of the period (stocks such as approved volunteers are not per day)."""
    return {name: figures[name] for name in ("shifts", "presence", "reports", "points")}


def _children(
    area: Area, period: Period, kinds: list[str], as_of: datetime
) -> tuple[list[dict[str, Any]], dict[str, float | None] | None]:
    """The children's rows, and the medians of the whole area when computing them gave those."""
    if area.level != AreaLevel.GRID:
        sections = _sections(period, Grouping(area, "children"), kinds, as_of)
        children = db.session.scalars(sa.select(Area).where(Area.parent_id == area.id).order_by(Area.id))
        return [{**_area_ref(child), "figures": sections.figures(child.id, kinds)} for child in children], (
            sections.whole_medians
        )
    sections = _sections(period, Grouping(area, "volunteers"), kinds, as_of, with_shifts=False)
    at_home = sa.and_(Volunteer.home_grid_id == area.id, Volunteer.created_at < period.ends_at)
    volunteers = db.session.execute(
        sa.select(Volunteer.id, Volunteer.real_name, Volunteer.home_grid_id)
        .where(sa.or_(at_home, Volunteer.id.in_(list(sections.keys()))))
        .order_by(Volunteer.id)
    ).all()
    rows = [
        {
            "id": row.id,
            "name": row.real_name,
            "level": "volunteer",
            "at_home": row.home_grid_id == area.id,
            "figures": sections.figures(row.id, kinds),
        }
        for row in volunteers
    ]
    return rows, None


def _area_ref(area: Area) -> dict[str, Any]:
    return {"id": area.id, "name": area.name, "level": area.level}


def _zone(area: Area) -> ZoneInfo:
    return zone(area.timezone)


def my_report(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """A volunteer's own hours, shifts, attendance and points in a period (home grid's zone)."""
    volunteer = own_volunteer(caller)
    period = resolve(args, _zone(volunteer.home_grid))
    as_of = figures_as_of()
    mine = Grouping(None, "total", volunteer_id=volunteer.id)
    presence = presence_section(period, mine, as_of).get(0, EMPTY_PRESENCE)
    points = points_section(period, mine).get(0, EMPTY_POINTS)
    return {"period": period_body(period), "as_of": as_of, "presence": presence, "points": points}

