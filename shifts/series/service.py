"""Repeating shifts: create a weekly series, look it up, show it, and expand it into shifts. No HTTP.

A series exists as concrete ``Shift`` rows up to ``SERIES_HORIZON_DAYS`` ahead; ``expanded_until``
records how far. Expansion is idempotent: it skips occurrences that already have a row and inserts
with ON CONFLICT DO NOTHING on (series_id, occurrence_local), so running it twice, or two runs at
once, never duplicates an occurrence. A cancelled or moved occurrence keeps its row (and its
``occurrence_local``), so it is never made again. Occurrences that would start in the past are not
made. Every occurrence lasts ``duration_minutes`` of real time, also across a DST change.

Editing and cancelling a series live in ``shifts.series.edits``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from core import audit, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from grids.service import in_subtree, referenced_area
from shifts.models import SeriesStatus, Shift, ShiftSeries, ShiftStatus
from shifts.planning.editing import template_of
from shifts.planning.service import (
    NOT_IN_PAST,
    PLANNING_WINDOW,
    WITHIN_WINDOW,
    grid_in_scope,
    max_duration,
    template_errors,
    template_from,
    too_long_message,
    zone_name,
)
from shifts.series import repeats
from shifts.series.schemas import SeriesCreateInput
from shifts.service import shift_views

#: The most shifts a series' detail view lists (a week has at most 7; the horizon is 8 weeks).
UPCOMING_LIMIT = 100
NO_FUTURE = i18n.N_("The rule has no occurrences in the future.")

i18n.register_titles(
    i18n.title("series_not_found", "Shift series not found"),
    i18n.title("series_ended", "Shift series has ended"),
)
i18n.register_messages(
    i18n.N_("Shift series not found."),
    NO_FUTURE,
    i18n.N_("The end time must differ from the start time."),
    # shifts.series.repeats is pure; its messages (marked there) are registered here.
    repeats.MESSAGES["empty"],
    repeats.MESSAGES["dtstart"],
    repeats.MESSAGES["lines"],
    repeats.MESSAGES["part"],
    repeats.MESSAGES["repeated"],
    repeats.MESSAGES["freq_missing"],
    repeats.MESSAGES["freq"],
    repeats.MESSAGES["interval"],
    repeats.MESSAGES["count"],
    repeats.MESSAGES["until"],
    repeats.MESSAGES["until_and_count"],
    repeats.MESSAGES["byday"],
    repeats.MESSAGES["wkst"],
)
i18n.register_patterns(
    {
        r"^The rule expands past (\d+) occurrences\.$": i18n.N_("The rule expands past {0} occurrences."),
        r"^(\S+) is not supported: use FREQ=WEEKLY with BYDAY, INTERVAL and UNTIL or COUNT\.$": i18n.N_(
            "{0} is not supported: use FREQ=WEEKLY with BYDAY, INTERVAL and UNTIL or COUNT."
        ),
    }
)


def horizon() -> timedelta:
    return timedelta(days=current_app.config["SERIES_HORIZON_DAYS"])


def occurrence_limit() -> int:
    return current_app.config["SERIES_MAX_OCCURRENCES"]


# --- input rules ---------------------------------------------------------------------------------------


def parse_rule(text: str, zone: ZoneInfo, errors: dict[str, Any]) -> repeats.WeeklyRule | None:
    try:
        return repeats.parse_rule(text, zone)
    except repeats.RuleError as error:
        errors["rrule"] = [error.message]
        return None


def duration_of(data: Mapping[str, Any], start_time: time, errors: dict[str, Any]) -> int | None:
    """Minutes from ``duration_minutes`` or ``end_time`` (an end at or before the start is next day)."""
    if "end_time" in data:
        start = start_time.hour * 60 + start_time.minute
        end = data["end_time"].hour * 60 + data["end_time"].minute
        if end == start:
            errors["end_time"] = ["The end time must differ from the start time."]
            return None
        minutes, field = (end - start) % (24 * 60), "end_time"
    else:
        minutes, field = data["duration_minutes"], "duration_minutes"
    if timedelta(minutes=minutes) > max_duration():
        errors[field] = [too_long_message()]
        return None
    return minutes


def check_rule(
    rule: repeats.WeeklyRule, dtstart: datetime, zone: ZoneInfo, now: datetime
) -> datetime:
    """The first occurrence still to come (the rule's new anchor), or 422 on ``rrule``."""
    first = repeats.first_after(rule, dtstart, zone, now)
    if first is None:
        raise ValidationFailed(errors={"rrule": [NO_FUTURE]})
    if repeats.exceeds(rule, first, occurrence_limit()):
        raise ValidationFailed(
            errors={"rrule": [f"The rule expands past {occurrence_limit()} occurrences."]}
        )
    return first


def anchored(rule: repeats.WeeklyRule, first: datetime, dtstart: datetime) -> repeats.WeeklyRule:
    """The rule as seen from ``first``: a COUNT counts only what is left from there."""
    if rule.count is None or first == dtstart:
        return rule
    return repeats.split(rule, dtstart, first)[1]


# --- create --------------------------------------------------------------------------------------------


def create_series(caller: Caller, data: SeriesCreateInput) -> ShiftSeries:
    """A weekly series from ``starts_on`` at ``start_time``, expanded to the horizon at once.

    The stored first occurrence is the first one still to come: if ``starts_on`` is today and the
    time has passed, today's occurrence is not made. A COUNT counts from ``starts_on``, as RFC 5545
    counts from DTSTART, so the stored rule keeps only what is left of it.
    """
    grid = grid_in_scope(caller, data["grid_id"])
    zone_text = zone_name(grid, data)
    zone = ZoneInfo(zone_text)
    now = utcnow()
    errors: dict[str, Any] = {}
    rule = parse_rule(data["rrule"], zone, errors)
    minutes = duration_of(data, data["start_time"], errors)
    today = repeats.utc_to_local(now, zone).date()
    if data["starts_on"] < today:
        errors["starts_on"] = [NOT_IN_PAST]
    elif data["starts_on"] > today + PLANNING_WINDOW:
        errors["starts_on"] = [WITHIN_WINDOW]
    template = template_from(data)
    errors.update(template_errors(template))
    if errors or rule is None or minutes is None:
        raise ValidationFailed(errors=errors)
    rule = rule.with_default_weekday(data["starts_on"])
    dtstart = datetime.combine(data["starts_on"], data["start_time"])
    first = check_rule(rule, dtstart, zone, now)
    series = ShiftSeries(
        grid_id=grid.id, status=SeriesStatus.ACTIVE, timezone=zone_text,
        rrule=anchored(rule, first, dtstart).text(), first_start_local=first,
        duration_minutes=minutes, created_by=caller.user_id, **template,
    )
    db.session.add(series)
    db.session.flush()
    audit.record(
        caller, "shift_series.create", target_type="shift_series", target_id=series.id,
        area_path=grid.path, after=series_snapshot(series),
    )
    expand(series, now)
    return series


def series_snapshot(series: ShiftSeries) -> dict[str, Any]:
    return {
        "rrule": series.rrule, "first_start_local": series.first_start_local,
        "duration_minutes": series.duration_minutes, **template_of(series),
    }


# --- lookups and views ---------------------------------------------------------------------------------


def series_not_found() -> NotFound:
    """The answer for a series id that does not exist, and for one the caller may not reach."""
    return NotFound("Shift series not found.", code="series_not_found")


def get_series(caller: Caller, series_id: int, *, lock: bool = False) -> ShiftSeries:
    """A series inside the caller's subtree (any other is not found); ``lock`` holds its row to the end of the transaction."""
    stmt = sa.select(ShiftSeries).where(ShiftSeries.id == series_id)
    if lock:
        stmt = stmt.with_for_update(of=ShiftSeries).execution_options(populate_existing=True)
    series = db.session.scalar(stmt)
    if series is None:
        raise series_not_found()
    caller.ensure_reach(series.grid.path, series_not_found)
    return series


def list_series(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Series whose grid lies in the caller's subtree (or under ``under``), by id."""
    stmt = (
        sa.select(ShiftSeries)
        .join(Area, Area.id == ShiftSeries.grid_id)
        .where(in_subtree(Area.path, caller.area_path))
    )
    if args.get("grid_id"):
        stmt = stmt.where(ShiftSeries.grid_id == args["grid_id"])
    if args.get("under"):
        root = referenced_area(args["under"], "under")
        caller.ensure_scope(root.path)
        stmt = stmt.where(in_subtree(Area.path, root.path))
    if args.get("status"):
        stmt = stmt.where(ShiftSeries.status == args["status"])
    page = paginate(stmt, [ShiftSeries.id], limit=args["limit"], cursor=args.get("cursor"))
    page["items"] = [series_view(series) for series in page["items"]]
    return page


def series_view(series: ShiftSeries, *, with_upcoming: bool = False) -> dict[str, Any]:
    rule = repeats.parse_rule(series.rrule)
    zone = ZoneInfo(series.timezone)
    start = series.first_start_local
    view = {
        "id": series.id,
        "grid_id": series.grid_id,
        "grid_name": series.grid.name,
        "status": series.status,
        "timezone": series.timezone,
        "rrule": series.rrule,
        "weekdays": repeats.weekday_codes(rule),
        "interval": rule.interval,
        "until": repeats.local_to_utc(rule.until, zone) if rule.until else None,
        "until_local": rule.until,
        "count": rule.count,
        "first_occurrence": repeats.local_to_utc(start, zone),
        "first_occurrence_local": start,
        "start_time": start.time(),
        "end_time": (start + timedelta(minutes=series.duration_minutes)).time(),
        "duration_minutes": series.duration_minutes,
        **template_of(series),
        "expanded_until": series.expanded_until.astimezone(zone) if series.expanded_until else None,
        "created_by": series.created_by,
        "created_at": series.created_at.astimezone(zone),
        "updated_at": series.updated_at.astimezone(zone),
    }
    if with_upcoming:
        upcoming = db.session.scalars(
            sa.select(Shift)
            .where(Shift.series_id == series.id, Shift.ends_at > utcnow())
            .order_by(Shift.starts_at, Shift.id)
            .limit(UPCOMING_LIMIT)
        ).all()
        view["upcoming_shifts"] = shift_views(upcoming)
    return view


# --- expansion -----------------------------------------------------------------------------------------


def expand(series: ShiftSeries, now: datetime | None = None, *, since: datetime | None = None) -> list[int]:
    """Make the series' missing occurrences up to the horizon; returns the new shift ids.

    From ``expanded_until`` on (or from ``since``, after an edit), never before ``now``. A series
    whose rule has nothing left beyond the horizon is marked ended.
    """
    now = now or utcnow()
    _lock_row(series)
    if series.status != SeriesStatus.ACTIVE:
        return []
    zone = ZoneInfo(series.timezone)
    rule = repeats.parse_rule(series.rrule, zone)
    end = now + horizon()
    start = max(now, since or series.expanded_until or now)
    found = repeats.in_utc_window(rule, series.first_start_local, zone, start, end)
    created = _insert_missing(series, found)
    if series.expanded_until is None or series.expanded_until < end:
        series.expanded_until = end
    if not has_occurrences_from(series, end):
        series.status = SeriesStatus.ENDED
    db.session.flush()
    return created


def _lock_row(series: ShiftSeries) -> None:
    """Hold the series row (re-entrant for a caller who holds it already) and reread it.

    Every writer of a series' occurrences takes this lock before inserting, so two expansions of
    one series queue up instead of deadlocking on each other's new rows.
    """
    db.session.flush()
    db.session.scalars(
        sa.select(ShiftSeries)
        .where(ShiftSeries.id == series.id)
        .with_for_update(of=ShiftSeries)
        .execution_options(populate_existing=True)
    ).one()


def has_occurrences_from(series: ShiftSeries, moment: datetime) -> bool:
    zone = ZoneInfo(series.timezone)
    rule = repeats.parse_rule(series.rrule, zone)
    just_before = moment - timedelta(microseconds=1)
    return repeats.first_after(rule, series.first_start_local, zone, just_before) is not None


def _insert_missing(series: ShiftSeries, found: list[tuple[datetime, datetime]]) -> list[int]:
    if not found:
        return []
    written = utcnow()
    existing = set(
        db.session.scalars(
            sa.select(Shift.occurrence_local).where(
                Shift.series_id == series.id,
                Shift.occurrence_local.in_([local for local, _ in found]),
            )
        )
    )
    duration = timedelta(minutes=series.duration_minutes)
    template = template_of(series)
    rows = [
        {
            "grid_id": series.grid_id, "series_id": series.id, "occurrence_local": local,
            "detached": False, "status": ShiftStatus.SCHEDULED.value, "timezone": series.timezone,
            "starts_at": starts_at, "ends_at": starts_at + duration, **template,
            "primary_count": 0, "backup_count": 0, "queue_seq": 0,
            "created_by": series.created_by, "created_at": written, "updated_at": written,
        }
        for local, starts_at in found
        if local not in existing
    ]
    if not rows:
        return []
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(Shift)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["series_id", "occurrence_local"])
        .returning(Shift.id)
    )
    return sorted(db.session.scalars(statement))
