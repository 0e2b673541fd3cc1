"""Check-in and check-out from the phone: geofence, plausibility flags, late minutes, served minutes.

Phones queue events offline and deliver them late, twice and out of order, so:

- each event carries a client UUID (a unique column); the same UUID again returns the patrol as it
  is, without a second effect;
- the patrol row exists from the first event, so a check-out may come before its check-in and the
  two are reconciled when the second arrives;
- an event's time is the device's clock unless that is ahead of our receipt time (then receipt):
  an offline phone's clock says when it really happened. Both are kept.

Nothing plausible is dropped: an event outside the grid, with poor accuracy, a clock far off or a
mock-location flag is recorded and waits for an organiser's review (``patrols.presence.review``). Only
verified or approved presence counts; served minutes are settled once, by a conditional UPDATE,
when both ends are known and presence counts, and ``shift_served`` is sent then.
"""

from __future__ import annotations

from datetime import UTC
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute

from core import i18n
from core.auth import Caller
from core.db import insert_on_conflict, utcnow
from core.errors import Conflict
from core.extensions import db
from patrols import signals
from patrols.checkpoints import service as checkpoints
from patrols.models import Patrol, PresenceStatus
from patrols.presence.place import Place, client_id_reused, take_event
from patrols.presence.rules import (
    MARKED_ABSENT,
    PhoneEvent,
    check_in_opens,
    clock_flags,
    event_time,
    late_minutes,
    position_flags,
)
from patrols.presence.settling import announce_checked_out, settle
from shifts.models import AssignmentStatus

i18n.register_titles(
    i18n.title("already_checked_in", "Already checked in"),
    i18n.title("already_checked_out", "Already checked out"),
    i18n.title("outside_check_in_window", "Outside the check-in window"),
    i18n.title("outside_check_out_window", "Outside the check-out window"),
)
i18n.register_messages(
    i18n.N_("You have already checked in to this shift."),
    i18n.N_("You have already checked out of this shift."),
    i18n.N_("This client_id was already used for another event."),
    i18n.N_("Check-in opens shortly before the start and closes at the end of the shift."),
    i18n.N_("Check-out is possible only once check-in has opened."),
)

# --- recording events --------------------------------------------------------------------------


_CHECK_IN_COLUMNS = (
    "check_in_client_id", "check_in_device_at", "check_in_received_at", "check_in_lat",
    "check_in_lon", "check_in_accuracy_m", "check_in_flags", "late_minutes",
)
_CHECK_OUT_COLUMNS = (
    "check_out_client_id", "check_out_device_at", "check_out_received_at", "check_out_lat",
    "check_out_lon", "check_out_accuracy_m", "check_out_flags", "auto_closed",
)
#: What a patrol made by any event starts with.
_NEW_PATROL = {
    "check_in_flags": [], "check_out_flags": [], "auto_closed": False, "distance_m": 0.0,
    "track_point_count": 0, "presence_status": None,
}


def _event_upsert(
    event_columns: tuple[str, ...], presence_sql: str, returning: tuple[str, ...] | None = None
) -> sa.TextualSelect:
    """Make the patrol with this event, or add the event to its row while the event is unset.

    One statement whichever of the phone's events comes first: an insert, or on the unique
    ``assignment_id`` an update guarded by ``<event>_client_id IS NULL`` (the first of two events
    wins). No row comes back when the patrol already had such an event; else the row's columns
    (``returning``, or all of them).
    """
    table = Patrol.__table__
    columns = ["assignment_id", "volunteer_id", "shift_id", "created_at", "updated_at"]
    columns += [name for name in _NEW_PATROL if name not in event_columns] + list(event_columns)
    update = {name: f"excluded.{name}" for name in event_columns}
    update |= {"presence_status": presence_sql, "updated_at": "excluded.updated_at"}
    upsert = insert_on_conflict(
        table, columns, ["assignment_id"], update=update,
        where=f"patrols.{event_columns[0]} IS NULL",
        returning=returning or [column.name for column in table.columns],
    )
    return upsert


#: What the check-in's upsert returns: the row's id and what a row already there may hold besides
#: the check-in (a check-out or an automatic close that came first, a track, a review), which the
#: answer shows. The check-in's own columns and presence are not read back: insert and update
#: both set them to the statement's parameters. All 36 columns cost psycopg a ``Column`` object
#: each per statement, about 4% of a check-in (bench/README.md, issue 19).
_CHECK_IN_RETURNING = (
    "id", "volunteer_id", "shift_id", "check_out_client_id", "auto_closed", "served_minutes", "reviewed_at",
    "distance_m", "track_point_count", "positions_purged_at",
)
# Presence is unset until the check-in (only a checked-in patrol can be reviewed), which sets it.
# Run as Core: the check-in reads the row's values (see check_in).
_CHECK_IN_UPSERT = _event_upsert(_CHECK_IN_COLUMNS, "excluded.presence_status", _CHECK_IN_RETURNING)
# A flagged check-out sends verified presence to review; a decision already taken stands.
_CHECK_OUT_UPSERT = sa.select(Patrol).from_statement(_event_upsert(
    _CHECK_OUT_COLUMNS,
    "CASE WHEN :review AND patrols.presence_status = 'verified' THEN 'needs_review'"
    " ELSE patrols.presence_status END",
))


def _event_params(place: Place, values: dict[str, Any], **extra: Any) -> dict[str, Any]:
    now = utcnow()
    return _NEW_PATROL | values | extra | {
        "assignment_id": place.id,
        "volunteer_id": place.volunteer_id,
        "shift_id": place.shift.id,
        "created_at": now,
        "updated_at": now,
    }


def _write_event(upsert: sa.Executable, place: Place, values: dict[str, Any], **extra: Any) -> Patrol | None:
    """Run an event upsert for ``place``: the patrol as written, or None (event already there)."""
    params = _event_params(place, values, **extra)
    try:
        return db.session.scalars(upsert, params, execution_options={"populate_existing": True}).one_or_none()
    except IntegrityError:
        # The UUID is another patrol's (unique column). On PostgreSQL the transaction is now
        # aborted; the 409 rolls the whole request back.
        raise client_id_reused() from None


_PATROL_OF_ASSIGNMENT = sa.select(Patrol).where(Patrol.assignment_id == sa.bindparam("assignment_id"))


def _already_written(place: Place, column: QueryableAttribute[str | None], client_id: str) -> Patrol | None:
    """The patrol after a guarded write found its event taken: itself if it was this very event."""
    patrol = db.session.scalars(
        _PATROL_OF_ASSIGNMENT,
        {"assignment_id": place.id},
        execution_options={"populate_existing": True},
    ).one()
    return patrol if getattr(patrol, column.key) == client_id else None


def _presence_after_flags(patrol: Patrol) -> str:
    if patrol.presence_status in (PresenceStatus.APPROVED, PresenceStatus.REJECTED):
        return patrol.presence_status  # an organiser's decision stands
    flagged = bool(patrol.check_in_flags) or bool(patrol.check_out_flags)
    return PresenceStatus.NEEDS_REVIEW if flagged else PresenceStatus.VERIFIED


def check_in(caller: Caller, assignment_id: int, event: PhoneEvent) -> tuple[Patrol | SimpleNamespace, str]:
    """Record the volunteer's check-in (or return it again for the same ``client_id``): the patrol
    (its row's values, or the entity when more than the check-in was to do) and its shift's zone.

    The common case, a check-in before any check-out, runs on values: the place read under the
    lock, the upserted row. A check-out that came first (its flags, the served minutes to settle)
    goes on with the patrol entity.
    """
    place, replayed = take_event(caller, assignment_id, event, Patrol.check_in_client_id)
    shift = place.shift
    if replayed is not None:
        return replayed, shift.timezone
    received_at = utcnow()
    arrived = event_time(event.device_time, received_at)
    if not check_in_opens(shift) <= arrived <= shift.ends_at:
        raise Conflict(
            "Check-in opens shortly before the start and closes at the end of the shift.",
            code="outside_check_in_window",
        )
    flags = position_flags(shift, event) + clock_flags(event.device_time, received_at)
    if place.status == AssignmentStatus.ABSENT:
        flags.append(MARKED_ABSENT)
    # Flags of a check-out that came first are taken into account just below.
    presence = PresenceStatus.NEEDS_REVIEW if flags else PresenceStatus.VERIFIED
    params = _event_params(
        place,
        {
            "check_in_client_id": event.client_id,
            "check_in_device_at": event.device_time,
            "check_in_received_at": received_at,
            "check_in_lat": event.lat,
            "check_in_lon": event.lon,
            "check_in_accuracy_m": event.accuracy_m,
            "check_in_flags": flags,
            "late_minutes": late_minutes(shift, arrived),
            "presence_status": presence.value,
        },
    )
    try:
        row = db.session.connection().execute(_CHECK_IN_UPSERT, params).first()
    except IntegrityError:
        # The UUID is another patrol's (unique column). On PostgreSQL the transaction is now
        # aborted; the 409 rolls the whole request back.
        raise client_id_reused() from None
    if row is None:
        written = _already_written(place, Patrol.check_in_client_id, event.client_id)
        if written is not None:
            return written, shift.timezone  # the same event, delivered twice at once
        raise Conflict("You have already checked in to this shift.", code="already_checked_in")
    if row.check_out_client_id == event.client_id:
        raise client_id_reused()  # the row's own check-out UUID: rolled back with the 409
    # The patrol as written: the check-in's columns are this statement's parameters (times as
    # read back, in UTC).
    as_written = {name: params[name] for name in _CHECK_IN_COLUMNS} | {
        "check_in_device_at": event.device_time.astimezone(UTC), "presence_status": params["presence_status"],
    }  # fmt: skip
    patrol: Patrol | SimpleNamespace = SimpleNamespace(assignment_id=place.id, **as_written, **row._mapping)
    # A check-out came first: its flags may change presence, and the served minutes may settle.
    # Without one, presence is what was just written (only a check-in's flags) and nothing settles.
    # (A review needs a check-in, so none is there; should one be, the entity shows it.)
    entity = None
    if row.check_out_client_id is not None or row.auto_closed or row.reviewed_at is not None:
        entity = db.session.get(Patrol, row.id, populate_existing=True)
        assert entity is not None  # written by this transaction
        patrol = entity
        if entity.presence_status != _presence_after_flags(entity):
            entity.presence_status = _presence_after_flags(entity)
            db.session.flush()
    if event.checkpoint_payload is not None:
        # Under the check-in's client_id (scans have their own table); a bad payload is a 422
        # that rolls the check-in back with it, so nothing is half-written.
        checkpoints.record_scan(
            caller,
            assignment_id,
            {
                "client_id": event.client_id,
                "payload": event.checkpoint_payload,
                "lat": event.lat,
                "lon": event.lon,
                "accuracy_m": event.accuracy_m,
                "device_time": event.device_time,
            },
            payload_field="checkpoint_payload",
        )
    signals.checked_in.send(
        signals.SENDER,
        **signals.CheckedIn(
            patrol_id=patrol.id,
            assignment_id=place.id,
            shift_id=shift.id,
            volunteer_id=place.volunteer_id,
            presence_status=patrol.presence_status,
            late_minutes=patrol.late_minutes,
        ),
    )
    if entity is not None:
        settle(entity, shift)
    return patrol, shift.timezone


def check_out(caller: Caller, assignment_id: int, event: PhoneEvent) -> tuple[Patrol, str]:
    """Record the check-out; before the check-in, or replacing an automatic close, is fine. The
    patrol and its shift's zone."""
    place, replayed = take_event(caller, assignment_id, event, Patrol.check_out_client_id)
    shift = place.shift
    if replayed is not None:
        return replayed, shift.timezone
    received_at = utcnow()
    left = event_time(event.device_time, received_at)
    if left < check_in_opens(shift):
        raise Conflict(
            "Check-out is possible only once check-in has opened.", code="outside_check_out_window"
        )
    flags = position_flags(shift, event) + clock_flags(event.device_time, received_at)
    patrol = _write_event(
        _CHECK_OUT_UPSERT,
        place,
        {
            "check_out_client_id": event.client_id,
            "check_out_device_at": event.device_time,
            "check_out_received_at": received_at,
            "check_out_lat": event.lat,
            "check_out_lon": event.lon,
            "check_out_accuracy_m": event.accuracy_m,
            "check_out_flags": flags,
            # The phone's own check-out replaces an automatic close that came first.
            "auto_closed": False,
        },
        review=bool(flags),
    )
    if patrol is None:
        patrol = _already_written(place, Patrol.check_out_client_id, event.client_id)
        if patrol is not None:
            return patrol, shift.timezone
        raise Conflict("You have already checked out of this shift.", code="already_checked_out")
    if patrol.check_in_client_id == event.client_id:
        raise client_id_reused()
    announce_checked_out(patrol)
    settle(patrol, shift)
    return patrol, shift.timezone
