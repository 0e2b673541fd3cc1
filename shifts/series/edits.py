"""Editing and cancelling a repeating series, as a whole or from one occurrence on. No HTTP here.

One occurrence alone is edited or cancelled as a shift (``shifts.planning``); an edit detaches it.

- ``following`` (this and following) splits the series at an occurrence: the old series gets an
  UNTIL just before it and a new series carries the change from it on. From the very first
  occurrence there is nothing to split off, and the series changes in place.
- ``all`` changes the series in place from its first occurrence still to come.

The change reaches the series' shifts from that occurrence on that are scheduled, not started and
not detached: each is updated in place (with the refusals, audit and signals of a single edit) or,
if the new rule has no occurrence on its date, cancelled. Detached, cancelled and started shifts
are left as they are, but follow the series to the occurrence on their date, so expanding it never
makes a second shift for that date. Past shifts are never changed. Cancelling ends the rule just
before the occurrence and cancels every later shift not yet started, detached ones included: a
cancelled series should leave no patrol behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core import audit, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from shifts.models import SeriesStatus, Shift, ShiftSeries, ShiftStatus
from shifts.planning.editing import PlannedChange, apply_changes, cancel_locked, lock_for_change, template_of
from shifts.planning.service import PLANNING_WINDOW, template_errors, template_from
from shifts.series import repeats
from shifts.series.schemas import SeriesCancelInput, SeriesUpdateInput
from shifts.series.service import (
    anchored,
    check_rule,
    duration_of,
    expand,
    get_series,
    has_occurrences_from,
    parse_rule,
    series_snapshot,
)

SCOPE_ALL = "all"
SCOPE_FOLLOWING = "following"
NOT_AN_OCCURRENCE = i18n.N_("Not an occurrence of this series.")

i18n.register_messages(
    NOT_AN_OCCURRENCE,
    i18n.N_("The occurrence has already started."),
    i18n.N_("The series has no future occurrences."),
)


@dataclass
class Outcome:
    """What an edit or cancellation did: the series now carrying the change and the shifts touched."""

    series: ShiftSeries
    previous: ShiftSeries | None = None  # the series cut short by a split
    changed: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    created: list[int] = field(default_factory=list)


def edit_series(caller: Caller, series_id: int, data: SeriesUpdateInput) -> Outcome:
    series = get_series(caller, series_id, lock=True)
    now = utcnow()
    zone = ZoneInfo(series.timezone)
    old_rule = repeats.parse_rule(series.rrule, zone)
    anchor = _anchor(series, old_rule, data, now, zone)

    errors: dict[str, Any] = {}
    start_time = data.get("start_time", series.first_start_local.time())
    minutes: int | None = series.duration_minutes
    if "end_time" in data or "duration_minutes" in data:
        minutes = duration_of(data, start_time, errors)
    given_rule = parse_rule(data["rrule"], zone, errors) if "rrule" in data else None
    template = template_from(data, template_of(series))
    errors.update(template_errors(template))
    if errors or minutes is None:
        raise ValidationFailed(errors=errors)

    carried = repeats.split(old_rule, series.first_start_local, anchor)[1]
    new_rule = given_rule.with_default_weekday(anchor.date()) if given_rule else carried
    retimed = (
        new_rule != carried
        or start_time != series.first_start_local.time()
        or minutes != series.duration_minutes
    )
    if not retimed and template == template_of(series):
        return Outcome(series)
    first = anchor
    if retimed:
        dtstart = datetime.combine(anchor.date(), start_time)
        first = check_rule(new_rule, dtstart, zone, now)
        new_rule = anchored(new_rule, first, dtstart)

    before = series_snapshot(series)
    splitting = data["scope"] == SCOPE_FOLLOWING and anchor != series.first_start_local
    if splitting:
        target = ShiftSeries(
            grid_id=series.grid_id, status=SeriesStatus.ACTIVE, timezone=series.timezone,
            rrule=new_rule.text(), first_start_local=first, duration_minutes=minutes,
            created_by=caller.user_id, **template,
        )
        db.session.add(target)
        series.rrule = old_rule.ending_before(anchor).text()
        series.updated_at = now
        db.session.flush()
        audit.record(
            caller, "shift_series.create", target_type="shift_series", target_id=target.id,
            area_path=series.grid.path, after={**series_snapshot(target), "split_from": series.id},
        )
    else:
        target = series
        if retimed:
            series.rrule, series.first_start_local = new_rule.text(), first
            series.duration_minutes = minutes
        for name, value in template.items():
            setattr(series, name, value)
        series.status = SeriesStatus.ACTIVE  # a fully expanded series may grow again
        series.updated_at = now
        db.session.flush()

    outcome = Outcome(target, previous=series if splitting else None)
    _carry_shifts(caller, series, target, anchor, now, outcome, data.get("reason"))
    outcome.created = expand(target, now, since=now)
    if splitting:
        _settle(series, now)
    audit.record(
        caller, "shift_series.update", target_type="shift_series", target_id=series.id,
        area_path=series.grid.path, before=before,
        after={
            **series_snapshot(series), "scope": data["scope"], "from_occurrence_local": anchor,
            "new_series_id": target.id if splitting else None,
        },
    )
    return outcome


def cancel_series(caller: Caller, series_id: int, data: SeriesCancelInput) -> Outcome:
    series = get_series(caller, series_id, lock=True)
    now = utcnow()
    zone = ZoneInfo(series.timezone)
    rule = repeats.parse_rule(series.rrule, zone)
    anchor = _anchor(series, rule, data, now, zone)
    stmt = sa.select(Shift).where(
        Shift.series_id == series.id, Shift.status == ShiftStatus.SCHEDULED, Shift.starts_at > now
    )
    if data["scope"] == SCOPE_FOLLOWING:
        stmt = stmt.where(Shift.occurrence_local >= anchor)
    outcome = Outcome(series)
    for shift in db.session.scalars(stmt.order_by(Shift.id)).all():
        cancel_locked(caller, shift, data["reason"], now)
        outcome.cancelled.append(shift.id)
    before = series_snapshot(series)
    series.rrule = rule.ending_before(anchor).text()
    series.updated_at = now
    _settle(series, now)
    audit.record(
        caller, "shift_series.cancel", target_type="shift_series", target_id=series.id,
        area_path=series.grid.path, before=before,
        after={
            "rrule": series.rrule, "status": series.status, "scope": data["scope"],
            "from_occurrence_local": anchor, "reason": data["reason"],
        },
    )
    return outcome


def _anchor(
    series: ShiftSeries, rule: repeats.WeeklyRule, data: SeriesUpdateInput | SeriesCancelInput, now: datetime,
    zone: ZoneInfo,
) -> datetime:
    """The occurrence a change starts from: the one given (``following``) or the next to come."""
    if data["scope"] == SCOPE_FOLLOWING:
        given = data["from_occurrence"]
        at = repeats.occurrence_at(rule, series.first_start_local, zone, given)
        if at is None or given > now + PLANNING_WINDOW:
            raise ValidationFailed(errors={"from_occurrence": [NOT_AN_OCCURRENCE]})
        if given <= now:
            raise ValidationFailed(errors={"from_occurrence": ["The occurrence has already started."]})
        return at
    first = repeats.first_after(rule, series.first_start_local, zone, now)
    if first is None:
        raise Conflict("The series has no future occurrences.", code="series_ended")
    return first


def _occurrence(shift: Shift) -> datetime:
    """The local start a series gave ``shift`` (every shift found by its occurrence has one)."""
    if shift.occurrence_local is None:
        raise ValueError(f"shift {shift.id} is not an occurrence of a series")
    return shift.occurrence_local


def _carry_shifts(
    caller: Caller, source: ShiftSeries, target: ShiftSeries, anchor: datetime, now: datetime,
    outcome: Outcome, reason: str | None,
) -> None:
    """Bring the source series' shifts from ``anchor`` on to the target series' rule and template."""
    ids = db.session.scalars(
        sa.select(Shift.id).where(Shift.series_id == source.id, Shift.occurrence_local >= anchor)
    ).all()
    if not ids:
        return
    assigned = lock_for_change(ids)
    rows = db.session.scalars(
        sa.select(Shift).where(Shift.id.in_(ids)).order_by(Shift.occurrence_local, Shift.id)
    ).all()
    zone = ZoneInfo(target.timezone)
    rule = repeats.parse_rule(target.rrule, zone)
    last_day = max(_occurrence(row) for row in rows).date()
    on_date = {
        occurrence.date(): occurrence
        for occurrence in repeats.occurrences(
            rule, target.first_start_local,
            not_before=datetime.combine(anchor.date(), time.min),
            until=datetime.combine(last_day, time.max),
        )
    }
    duration = timedelta(minutes=target.duration_minutes)
    template = template_of(target)
    changes = []
    for shift in rows:
        occurrence = on_date.get(_occurrence(shift).date())
        left_alone = shift.detached or shift.status != ShiftStatus.SCHEDULED or shift.starts_at <= now
        if occurrence is None:
            if not left_alone:
                cancel_locked(caller, shift, reason, now)
                outcome.cancelled.append(shift.id)
            continue
        shift.series_id, shift.occurrence_local = target.id, occurrence
        if left_alone:
            continue
        starts_at = repeats.local_to_utc(occurrence, zone)
        change = PlannedChange.between(
            shift, {"starts_at": starts_at, "ends_at": starts_at + duration, **template}
        )
        if change.values:
            changes.append(change)
            outcome.changed.append(shift.id)
    apply_changes(caller, changes, assigned, detach=False)


def _settle(series: ShiftSeries, now: datetime) -> None:
    """Mark the series ended once its rule has nothing left to expand."""
    reached = max(now, series.expanded_until or now)
    if not has_occurrences_from(series, reached):
        series.status = SeriesStatus.ENDED
    db.session.flush()
