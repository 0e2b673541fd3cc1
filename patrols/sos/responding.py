"""The steps after the alert: the phone's positions, acknowledgements, the volunteer's cancel, the
organiser's close. No HTTP here.

Each step changes the SOS by a conditional UPDATE on its status, so two people acting at once (or a
step racing the escalation task) each get a consistent answer: the first acknowledgement stops the
escalation and later ones are only recorded; an ended SOS takes no step (409 ``sos_not_live``).
Every step adds an :class:`SosEvent` (never updated), an audit entry and its signal.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app

from core import i18n
from core.auth import Caller
from core.db import insert_on_conflict, rowcount, utcnow
from core.errors import Forbidden, ValidationFailed
from core.extensions import db
from patrols.sos import signals
from patrols.sos.models import LIVE_SOS, SosAlert, SosEventKind, SosPosition, SosRecipient, SosStatus
from patrols.sos.service import (
    add_event,
    get_sos,
    manages,
    own_sos,
    raiser_user_id,
    record_step,
    sos_for,
    sos_not_found,
    sos_not_live,
)

TOO_MANY_POSITIONS = "At most {limit} positions per upload."

i18n.register_titles(i18n.title("own_sos", "Your own SOS"))
i18n.register_messages(i18n.N_("Someone else answers your SOS; you may cancel it."))
i18n.register_patterns({r"^At most (\d+) positions per upload\.$": i18n.N_("At most {0} positions per upload.")})

_INSERT_POSITION = insert_on_conflict(
    SosPosition.__table__,
    ["sos_id", "device_at", "received_at", "lat", "lon", "accuracy_m"],
    ["sos_id", "device_at"],
)


# --- positions -----------------------------------------------------------------------------------


def add_positions(caller: Caller, sos_id: int, positions: list[dict[str, Any]]) -> dict[str, Any]:
    """Keep the positions the phone sent while its SOS is live; repeats (same device time) change
    nothing. No location consent is needed: the SOS protects the person's safety (PIPL art. 13)."""
    limit = current_app.config["SOS_MAX_POSITIONS"]
    if len(positions) > limit:
        message = TOO_MANY_POSITIONS.format(limit=limit)
        raise ValidationFailed(message, code="batch_too_large", errors={"positions": [message]})
    sos = own_sos(caller, sos_id)
    if sos.status not in LIVE_SOS:
        raise sos_not_live()
    received_at = utcnow()
    unique: dict[Any, dict[str, Any]] = {}
    for position in positions:
        unique.setdefault(position["time"], position)  # one position per device time: the first
    stored = 0
    for when, position in sorted(unique.items()):
        stored += len(
            db.session.execute(
                _INSERT_POSITION,
                {
                    "sos_id": sos.id, "device_at": when, "received_at": received_at,
                    "lat": position["lat"], "lon": position["lon"], "accuracy_m": position.get("accuracy_m"),
                },
            ).all()
        )
    return {"sos_id": sos.id, "received": len(positions), "stored": stored, "duplicates": len(positions) - stored}


# --- acknowledging -------------------------------------------------------------------------------


def acknowledge(caller: Caller, sos_id: int, response: str, note: str | None) -> tuple[SosAlert, bool]:
    """Answer an SOS (going | handled): managers in scope and the people alerted to it. The first
    answer stops the escalation; each is recorded and sent. Returns the SOS and whether it was first."""
    sos = sos_for(caller, sos_id)
    if raiser_user_id(sos) == caller.user_id:
        raise Forbidden("Someone else answers your SOS; you may cancel it.", code="own_sos")
    if sos.status not in LIVE_SOS:
        raise sos_not_live()
    now = utcnow()
    first = rowcount(
        db.session.execute(
            sa.update(SosAlert)
            .where(SosAlert.id == sos.id, SosAlert.status == SosStatus.OPEN)
            .values(status=SosStatus.ACKNOWLEDGED, acknowledged_at=now, escalate_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    ) == 1
    sos = get_sos(sos.id, reload=True)
    if sos.status not in LIVE_SOS:
        raise sos_not_live()  # ended meanwhile
    add_event(sos, SosEventKind.ACKNOWLEDGED, caller.user_id, now, level=sos.level, response=response, note=note)
    db.session.flush()
    record_step(caller, "acknowledged", sos, response=response, first=first)
    signals.sos_acknowledged.send(
        signals.SENDER,
        **signals.SosAcknowledged(
            sos_id=sos.id, volunteer_id=sos.volunteer_id, actor_id=caller.user_id, response=response, first=first
        ),
    )
    return sos, first


# --- ending --------------------------------------------------------------------------------------


def _end(caller: Caller, sos: SosAlert, status: SosStatus, note: str | None) -> SosAlert:
    now = utcnow()
    ended = db.session.execute(
        sa.update(SosAlert)
        .where(SosAlert.id == sos.id, SosAlert.status.in_(LIVE_SOS))
        .values(status=status, ended_at=now, ended_by=caller.user_id, end_note=note, escalate_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(ended) != 1:
        raise sos_not_live()
    sos = get_sos(sos.id, reload=True)
    kind = SosEventKind.CANCELLED if status == SosStatus.CANCELLED else SosEventKind.CLOSED
    add_event(sos, kind, caller.user_id, now, level=sos.level, note=note)
    db.session.flush()
    record_step(caller, kind.value, sos, note=note)
    everyone = list(
        db.session.scalars(sa.select(SosRecipient.user_id).where(SosRecipient.sos_id == sos.id).order_by(SosRecipient.user_id))
    )
    signals.sos_ended.send(
        signals.SENDER,
        **signals.SosEnded(
            sos_id=sos.id, volunteer_id=sos.volunteer_id, status=status.value, actor_id=caller.user_id,
            user_ids=everyone, note=note,
        ),
    )
    return sos


def cancel(caller: Caller, sos_id: int, note: str | None) -> SosAlert:
    """The volunteer calls off their own SOS: a false alarm (counted for the organisers)."""
    return _end(caller, own_sos(caller, sos_id), SosStatus.CANCELLED, note)


def close(caller: Caller, sos_id: int, note: str) -> SosAlert:
    """An organiser, staff member or admin whose subtree holds the SOS closes it with a note."""
    sos = sos_for(caller, sos_id)
    if not manages(caller, sos):
        raise sos_not_found()
    return _end(caller, sos, SosStatus.CLOSED, note)
