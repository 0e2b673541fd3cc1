"""Writing changes to shifts that exist: lock, refuse or apply, audit, signal. No HTTP here.

One shift edited on its own (``shifts.planning.service``) and many shifts changed through their
series (``shifts.series.edits``) go through these same steps, so both meet the same refusals, audit entries
and signals. Lock order, as everywhere: the assigned volunteers' schedule locks (ascending ids),
then the shift rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from core import audit, i18n
from core.auth import Caller
from core.db import rowcount, utcnow
from core.errors import Conflict
from core.extensions import db
from core.fields import instant_text
from shifts import rules, signals
from shifts.filling.promotion import promote_into_free_places
from shifts.models import LIVE_STATUSES, Assignment, AssignmentStatus, Shift, ShiftStatus

TEMPLATE_FIELDS = (
    "title", "instructions", "meeting_point", "min_headcount", "max_headcount", "backup_slots",
    "required_kinds",
)
TIME_FIELDS = ("starts_at", "ends_at")
CAPACITY_FIELDS = ("max_headcount", "backup_slots")

i18n.register_titles(
    i18n.title("shift_finished", "Shift already finished"),
    i18n.title("headcount_below_assigned", "Below the volunteers assigned"),
    i18n.title("backup_slots_below_assigned", "Below the backups assigned"),
)
i18n.register_messages(
    i18n.N_("The shift has already finished."),
    i18n.N_("The shift cannot be changed now."),
    i18n.N_("max_headcount cannot go below the number of volunteers assigned."),
    i18n.N_("backup_slots cannot go below the number of backups assigned."),
    i18n.N_("Assigned volunteers would have overlapping shifts."),
    i18n.N_("Assigned volunteers would have too little rest between shifts."),
)
i18n.register_patterns({r"^Must be at least (\d+)\.$": i18n.N_("Must be at least {0}.")})


def normalised_kinds(kinds: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"kind": item["kind"], "minimum": item["minimum"]} for item in kinds]


def template_of(record: Any) -> dict[str, Any]:
    """The template fields of a shift or a series as plain values."""
    values = {name: getattr(record, name) for name in TEMPLATE_FIELDS}
    values["required_kinds"] = normalised_kinds(record.required_kinds or [])
    return values


def snapshot(shift: Shift) -> dict[str, Any]:
    return {"starts_at": shift.starts_at, "ends_at": shift.ends_at, **template_of(shift)}


def ensure_editable(shift: Shift, now: datetime) -> None:
    if shift.status != ShiftStatus.SCHEDULED:
        raise Conflict("The shift has been cancelled.", code="shift_cancelled")
    if shift.ends_at <= now:
        raise Conflict("The shift has already finished.", code="shift_finished")


def assigned_volunteers(shift_ids: Iterable[int]) -> dict[int, list[int]]:
    """Shift id → ids of the volunteers holding a place on it (primary or backup), ascending."""
    ids = list(shift_ids)
    found: dict[int, list[int]] = {shift_id: [] for shift_id in ids}
    if ids:
        rows = db.session.execute(
            sa.select(Assignment.shift_id, Assignment.volunteer_id)
            .where(Assignment.shift_id.in_(ids), Assignment.status == AssignmentStatus.ASSIGNED)
            .order_by(Assignment.volunteer_id)
        )
        for shift_id, volunteer_id in rows:
            found[shift_id].append(volunteer_id)
    return found


def lock_for_change(shift_ids: Iterable[int]) -> dict[int, list[int]]:
    """Lock the assigned volunteers' schedules, then the shift rows (reloaded); returns who is assigned."""
    ids = sorted(set(shift_ids))
    first = assigned_volunteers(ids)
    held = {volunteer_id for volunteer_ids in first.values() for volunteer_id in volunteer_ids}
    rules.lock_schedules(held)
    db.session.scalars(
        sa.select(Shift)
        .where(Shift.id.in_(ids))
        .order_by(Shift.id)
        .with_for_update(of=Shift)
        .execution_options(populate_existing=True)
    ).all()
    # Someone may have signed up between the first read and the row locks; lock them too.
    current = assigned_volunteers(ids)
    late = {volunteer_id for volunteer_ids in current.values() for volunteer_id in volunteer_ids}
    rules.lock_schedules(late - held)
    return current


@dataclass
class PlannedChange:
    """New values for one shift (only those that differ from now) and what they were."""

    shift: Shift
    values: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def between(cls, shift: Shift, wanted: dict[str, Any]) -> PlannedChange:
        current = snapshot(shift)
        change = cls(shift)
        for name, value in wanted.items():
            if current[name] != value:
                change.values[name] = value
                change.before[name] = current[name]
        return change

    @property
    def moves(self) -> bool:
        return any(name in self.values for name in TIME_FIELDS)


def apply_changes(
    caller: Caller, changes: list[PlannedChange], assigned: dict[int, list[int]], *, detach: bool
) -> None:
    """Write ``changes`` to shifts locked by :func:`lock_for_change`, or refuse them all.

    Times move first and are checked afterwards, all at once, so shifts of one volunteer that move
    together are never compared with each other's old times. A refusal raises; the request's
    rollback then undoes every change.
    """
    changes = [change for change in changes if change.values]
    now = utcnow()
    for change in changes:
        _set_capacity(change)
        for name, value in change.values.items():
            if name not in CAPACITY_FIELDS:
                setattr(change.shift, name, value)
        if detach and change.shift.series_id is not None:
            change.shift.detached = True
        change.shift.updated_at = now
    db.session.flush()
    _ensure_no_clashes([change for change in changes if change.moves], assigned)
    for change in changes:
        _announce(caller, change, assigned.get(change.shift.id, []))


def _announce(caller: Caller, change: PlannedChange, volunteer_ids: list[int]) -> None:
    shift = change.shift
    audit.record(
        caller, "shift.update", target_type="shift", target_id=shift.id,
        area_path=shift.grid.path, before=change.before, after=change.values,
    )
    signals.shift_changed.send(
        signals.SENDER,
        **signals.ShiftChanged(
            shift_id=shift.id,
            changes={
                name: [_shown(change.before[name]), _shown(value)]
                for name, value in change.values.items()
            },
            volunteer_ids=volunteer_ids,
            actor_id=caller.user_id,
        ),
    )
    if change.values.get("max_headcount", 0) > change.before.get("max_headcount", 0):
        promote_into_free_places(shift, caller.user_id)


def _shown(value: Any) -> Any:
    """Times as the API shows them (UTC); the rest as they are."""
    return instant_text(value) if isinstance(value, datetime) else value


def _set_capacity(change: PlannedChange) -> None:
    """Set the places by a conditional UPDATE that never goes below the places taken."""
    if not any(name in change.values for name in CAPACITY_FIELDS):
        return
    shift = change.shift
    maximum = change.values.get("max_headcount", shift.max_headcount)
    backups = change.values.get("backup_slots", shift.backup_slots)
    updated = db.session.execute(
        sa.update(Shift)
        .where(Shift.id == shift.id, Shift.primary_count <= maximum, Shift.backup_count <= backups)
        .values(max_headcount=maximum, backup_slots=backups)
        .execution_options(synchronize_session=False)
    )
    if rowcount(updated) != 1:
        db.session.refresh(shift)
        if shift.primary_count > maximum:
            raise Conflict(
                "max_headcount cannot go below the number of volunteers assigned.",
                code="headcount_below_assigned",
                errors={"max_headcount": [f"Must be at least {shift.primary_count}."]},
            )
        raise Conflict(
            "backup_slots cannot go below the number of backups assigned.",
            code="backup_slots_below_assigned",
            errors={"backup_slots": [f"Must be at least {shift.backup_count}."]},
        )
    set_committed_value(shift, "max_headcount", maximum)
    set_committed_value(shift, "backup_slots", backups)


def _ensure_no_clashes(moved: list[PlannedChange], assigned: dict[int, list[int]]) -> None:
    overlapping: set[int] = set()
    too_close: set[int] = set()
    for change in moved:
        shift = change.shift
        for volunteer_id in assigned.get(shift.id, []):
            clashes = rules.clashing_shifts(
                volunteer_id, shift.starts_at, shift.ends_at, ignore_shift_ids=[shift.id]
            )
            if any(overlaps for _, overlaps in clashes):
                overlapping.add(volunteer_id)
            elif clashes:
                too_close.add(volunteer_id)
    if overlapping:
        raise Conflict(
            "Assigned volunteers would have overlapping shifts.",
            code="shift_overlap",
            errors={"volunteer_ids": [str(v) for v in sorted(overlapping | too_close)]},
        )
    if too_close:
        raise Conflict(
            "Assigned volunteers would have too little rest between shifts.",
            code="rest_too_short",
            errors={"volunteer_ids": [str(v) for v in sorted(too_close)]},
        )


def cancel_locked(caller: Caller | None, shift: Shift, reason: str | None, now: datetime) -> list[int]:
    """Cancel ``shift`` and end every live place on it; returns the volunteers to tell.

    The conditional UPDATE takes the row lock and settles a race with another cancellation; a
    sign-up waiting on the row then finds the shift cancelled. The place counters go back to zero
    with the places themselves.
    """
    cancelled = db.session.execute(
        sa.update(Shift)
        .where(Shift.id == shift.id, Shift.status == ShiftStatus.SCHEDULED, Shift.ends_at > now)
        .values(
            status=ShiftStatus.CANCELLED, cancelled_at=now, cancel_reason=reason,
            primary_count=0, backup_count=0, updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(shift)
    if rowcount(cancelled) != 1:
        ensure_editable(shift, now)
        raise Conflict("The shift cannot be changed now.")
    live = db.session.scalars(
        sa.select(Assignment)
        .where(Assignment.shift_id == shift.id, Assignment.status.in_(LIVE_STATUSES))
        .order_by(Assignment.id)
    ).all()
    told = sorted({a.volunteer_id for a in live if a.status != AssignmentStatus.INVITED})
    actor_id = caller.user_id if caller else None
    for assignment in live:
        assignment.status = AssignmentStatus.CANCELLED
        assignment.ended_at = now
        assignment.ended_by = actor_id
        assignment.end_reason = reason
        assignment.updated_at = now
    db.session.flush()
    audit.record(
        caller, "shift.cancel", target_type="shift", target_id=shift.id, area_path=shift.grid.path,
        before={"status": ShiftStatus.SCHEDULED.value},
        after={"status": shift.status, "reason": reason},
    )
    signals.shift_cancelled.send(
        signals.SENDER, **signals.ShiftCancelled(
            shift_id=shift.id, volunteer_ids=told, reason=reason, actor_id=actor_id
        )
    )
    return told
