"""Planning one shift: create, edit and cancel it, and the input rules series share. No HTTP here.

Times come in as instants with an offset (loaded as UTC by ``core.fields.Instant``); the shift's
``timezone`` (the grid's unless given) is its local clock, for local dates, texts and calendars.
The writing itself (locks, refusals, audit, signals) lives in ``shifts.planning.editing``, which
series edits (``shifts.series.edits``) use too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from core import audit, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from grids.models import Area
from grids.service import get_grid
from shifts.models import Shift, ShiftStatus
from shifts.planning.editing import (
    TEMPLATE_FIELDS,
    PlannedChange,
    apply_changes,
    cancel_locked,
    ensure_editable,
    lock_for_change,
    normalised_kinds,
    snapshot,
    template_of,
)
from shifts.planning.schemas import ShiftCreateInput, ShiftUpdateInput
from volunteers.service import kind_by_code

#: Shifts and series are planned at most this far ahead.
PLANNING_WINDOW = timedelta(days=731)
NOT_IN_PAST = i18n.N_("Must not be in the past.")
WITHIN_WINDOW = i18n.N_("Must be within the next two years.")

i18n.register_messages(
    NOT_IN_PAST,
    WITHIN_WINDOW,
    i18n.N_("The end must be after the start."),
    i18n.N_("Must not exceed max_headcount."),
    i18n.N_("Unknown volunteer kind."),
    i18n.N_("Each kind may appear only once."),
    i18n.N_("The kind minimums add up to more than max_headcount."),
    i18n.N_("The shift has already started; its start cannot move."),
)
i18n.register_patterns({r"^A shift may last at most (\d+) hours\.$": i18n.N_("A shift may last at most {0} hours.")})


# --- input rules, shared with series -------------------------------------------------------------------


def max_duration() -> timedelta:
    return timedelta(hours=current_app.config["SHIFT_MAX_HOURS"])


def too_long_message() -> str:
    return f"A shift may last at most {current_app.config['SHIFT_MAX_HOURS']} hours."


def time_errors(
    starts_at: datetime, ends_at: datetime, now: datetime, *, check_start: bool = True
) -> dict[str, list[str]]:
    """End after start, at most SHIFT_MAX_HOURS, not over; start (if new) not past, within the window."""
    errors: dict[str, list[str]] = {}
    if ends_at <= starts_at:
        errors["ends_at"] = ["The end must be after the start."]
    elif ends_at - starts_at > max_duration():
        errors["ends_at"] = [too_long_message()]
    elif ends_at <= now:
        errors["ends_at"] = [NOT_IN_PAST]
    if check_start and starts_at < now:
        errors["starts_at"] = [NOT_IN_PAST]
    elif check_start and starts_at > now + PLANNING_WINDOW:
        errors["starts_at"] = [WITHIN_WINDOW]
    return errors


def template_errors(values: dict[str, Any]) -> dict[str, Any]:
    """Headcounts, backups and required kinds, checked together (for an edit: the merged values)."""
    errors: dict[str, Any] = {}
    ceiling = current_app.config["SHIFT_MAX_HEADCOUNT"]
    maximum = values["max_headcount"]
    for name in ("max_headcount", "backup_slots"):
        if values[name] > ceiling:
            errors[name] = [f"Must be less than or equal to {ceiling}."]
    if values["min_headcount"] > maximum:
        errors["min_headcount"] = ["Must not exceed max_headcount."]
    kinds = values["required_kinds"]
    item_errors: dict[str, Any] = {}
    for index, requirement in enumerate(kinds):
        problems: dict[str, list[str]] = {}
        if kind_by_code(requirement["kind"]) is None:
            problems["kind"] = ["Unknown volunteer kind."]
        if requirement["minimum"] > maximum:
            problems["minimum"] = ["Must not exceed max_headcount."]
        if problems:
            item_errors[str(index)] = problems
    if item_errors:
        errors["required_kinds"] = item_errors
    elif len({requirement["kind"] for requirement in kinds}) != len(kinds):
        errors["required_kinds"] = ["Each kind may appear only once."]
    elif sum(requirement["minimum"] for requirement in kinds) > maximum:
        # A volunteer has one kind, so larger minimums could never all be met.
        errors["required_kinds"] = ["The kind minimums add up to more than max_headcount."]
    return errors


def template_from(data: Mapping[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Template fields from a request body, over ``base`` (for edits)."""
    template = dict(base or {})
    template.update({name: data[name] for name in TEMPLATE_FIELDS if name in data})
    template["required_kinds"] = normalised_kinds(template["required_kinds"])
    return template


def grid_in_scope(caller: Caller, grid_id: int) -> Area:
    """The grid named in a body (unknown or not a grid: 422), inside the caller's subtree (403)."""
    grid = get_grid(grid_id, field="grid_id")
    caller.ensure_scope(grid.path)
    return grid


def zone_name(grid: Area, data: Mapping[str, Any]) -> str:
    return data.get("timezone") or grid.timezone


# --- one-off shifts -------------------------------------------------------------------------------------


def create_shift(caller: Caller, data: ShiftCreateInput) -> Shift:
    grid = grid_in_scope(caller, data["grid_id"])
    zone = zone_name(grid, data)
    starts_at, ends_at = data["starts_at"], data["ends_at"]
    template = template_from(data)
    errors = {**time_errors(starts_at, ends_at, utcnow()), **template_errors(template)}
    if errors:
        raise ValidationFailed(errors=errors)
    shift = Shift(
        grid_id=grid.id, timezone=zone, starts_at=starts_at, ends_at=ends_at,
        status=ShiftStatus.SCHEDULED, detached=False, primary_count=0, backup_count=0, queue_seq=0,
        created_by=caller.user_id, **template,
    )
    db.session.add(shift)
    db.session.flush()
    audit.record(
        caller, "shift.create", target_type="shift", target_id=shift.id, area_path=grid.path,
        after=snapshot(shift),
    )
    return shift


def update_shift(caller: Caller, shift: Shift, data: ShiftUpdateInput) -> Shift:
    """Edit one shift. Moving only the start keeps the duration; a shift of a series is detached.

    A shift under way may still change its end, texts and places, but not its start.
    """
    assigned = lock_for_change([shift.id])
    now = utcnow()
    ensure_editable(shift, now)
    starts_at = data.get("starts_at", shift.starts_at)
    if "ends_at" in data:
        ends_at = data["ends_at"]
    else:
        ends_at = starts_at + (shift.ends_at - shift.starts_at)
    moves_start = starts_at != shift.starts_at
    if moves_start and shift.starts_at <= now:
        raise Conflict("The shift has already started; its start cannot move.", code="shift_started")
    template = template_from(data, template_of(shift))
    errors = {
        **time_errors(starts_at, ends_at, now, check_start=moves_start),
        **template_errors(template),
    }
    if errors:
        raise ValidationFailed(errors=errors)
    change = PlannedChange.between(shift, {"starts_at": starts_at, "ends_at": ends_at, **template})
    apply_changes(caller, [change], assigned, detach=True)
    return shift


def cancel_shift(caller: Caller, shift: Shift, reason: str) -> Shift:
    """Cancel one shift (also one occurrence of a series); a second cancellation is 409."""
    cancel_locked(caller, shift, reason, utcnow())
    return shift
