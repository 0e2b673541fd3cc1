"""An SOS's events become urgent notifications: the alert, its escalations, the answer, the stand-down.

The SOS service decides who is told (its ``SosRecipient`` rows) and sends their user ids in the
signal; here they are only written, through ``listeners.queue_event`` like every other event, so
the rows commit or roll back with the step that caused them (the raise, the escalation task's
batch, the acknowledgement). All are urgent: pushed at once, even in the recipients' quiet hours —
someone may be in danger, and whoever set out at night must hear as soon that they can stand down.

- ``sos_alerted`` → ``sos_alert`` (level community) or ``sos_escalated`` (district, city) to the
  users newly alerted, with the deep link ``{sos_id, lat, lon, level}``, the raiser's name and note.
- ``sos_acknowledged`` → ``sos_acknowledged`` to the raiser: who answered (name, role) and how.
- ``sos_ended`` → ``sos_ended`` to everyone alerted but the one who ended it: cancelled as a false
  alarm, or closed (with the note); a closed SOS is also told to its raiser (``closed_own``), who
  learns who closed it and why.

When retention clears an ended SOS's positions (``sos_positions_purged``), the position leaves the
deep links of its alerts too; the notifications themselves stay.

Dedupe keys make each step one notification per user, whether the escalation task is delivered
twice or a signal is sent again: ``sos_alert:<id>:community``, ``sos_escalated:<id>:<level>``,
``sos_acknowledged:<id>:<actor>:<response>``, ``sos_ended:<id>``.
"""

from __future__ import annotations

from typing import Any, Unpack

import sqlalchemy as sa

from accounts.models import User
from core.extensions import db
from grids.models import Area
from notifications.listeners import QueuedEvent, queue_event
from notifications.models import Notification
from notifications.service import CHUNK
from patrols.sos import signals as sos_signals
from patrols.sos.models import SosAlert, SosLevel


def _grid_name(grid_id: int) -> str:
    grid = db.session.get(Area, grid_id)
    return grid.name if grid else ""


def _on_sos_alerted(_sender: Any, **event: Unpack[sos_signals.SosAlerted]) -> None:
    sos_id, level = event["sos_id"], event["level"]
    kind = "sos_alert" if level == SosLevel.COMMUNITY else "sos_escalated"
    queue_event(
        QueuedEvent(
            kind,
            {"sos_id": sos_id, "lat": event["lat"], "lon": event["lon"], "level": level},
            {"grid_name": _grid_name(event["grid_id"]), "note": event["note"], "sos_level": level},
            user_ids=tuple(event["user_ids"]),
            name_of=event["volunteer_id"],
            urgent=True,
            dedupe_key=f"{kind}:{sos_id}:{level}",
        )
    )


def _responder(user_id: int) -> dict[str, str]:
    user = db.session.get(User, user_id)
    return {"responder_name": user.display_name, "responder_role": user.role} if user else {}


def _on_sos_acknowledged(_sender: Any, **event: Unpack[sos_signals.SosAcknowledged]) -> None:
    sos_id, actor_id, response = event["sos_id"], event["actor_id"], event["response"]
    queue_event(
        QueuedEvent(
            "sos_acknowledged",
            {"sos_id": sos_id, "response": response},
            {**_responder(actor_id), "status": response},  # status: the text of "going" or "handled"
            volunteer_ids=(event["volunteer_id"],),
            actor_id=actor_id,
            urgent=True,  # they are waiting for it
            dedupe_key=f"sos_acknowledged:{sos_id}:{actor_id}:{response}",
        )
    )


def _on_sos_ended(_sender: Any, **event: Unpack[sos_signals.SosEnded]) -> None:
    sos_id, status, actor_id = event["sos_id"], event["status"], event["actor_id"]
    sos = db.session.get(SosAlert, sos_id)  # for its grid's name: the signal carries no grid
    queue_event(
        QueuedEvent(
            "sos_ended",
            {"sos_id": sos_id, "status": status},
            {
                **_responder(actor_id), "status": status, "note": event["note"],
                "grid_name": _grid_name(sos.grid_id) if sos else "",
            },
            user_ids=tuple(event["user_ids"]),
            name_of=event["volunteer_id"],
            actor_id=actor_id,
            urgent=True,  # whoever set out, at any hour, may turn back now
            dedupe_key=f"sos_ended:{sos_id}",
        )
    )
    if status == "closed":
        queue_event(
            QueuedEvent(
                "sos_ended",
                {"sos_id": sos_id, "status": status},
                {**_responder(actor_id), "status": "closed_own", "note": event["note"]},
                volunteer_ids=(event["volunteer_id"],),
                actor_id=actor_id,
                urgent=True,
                dedupe_key=f"sos_ended:{sos_id}",
            )
        )


#: The deep-link fields that hold an SOS's position.
_POSITION_FIELDS = ("lat", "lon")


def _on_sos_positions_purged(_sender: Any, **event: Unpack[sos_signals.SosPositionsPurged]) -> None:
    sos_id, user_ids = event["sos_id"], event["user_ids"]
    keys = [f"sos_alert:{sos_id}:{SosLevel.COMMUNITY}"] + [
        f"sos_escalated:{sos_id}:{level}" for level in (SosLevel.DISTRICT, SosLevel.CITY)
    ]
    for first in range(0, len(user_ids), CHUNK):
        # By (user, dedupe key): the unique index finds them, however large the table.
        rows = db.session.execute(
            sa.select(Notification.id, Notification.data).where(
                Notification.user_id.in_(user_ids[first : first + CHUNK]), Notification.dedupe_key.in_(keys)
            )
        ).tuples()
        for notification_id, data in rows:
            kept = {key: value for key, value in (data or {}).items() if key not in _POSITION_FIELDS}
            if kept != data:
                db.session.execute(
                    sa.update(Notification).where(Notification.id == notification_id).values(data=kept)
                    .execution_options(synchronize_session=False)
                )


_RECEIVERS = (
    (sos_signals.sos_alerted, _on_sos_alerted),
    (sos_signals.sos_acknowledged, _on_sos_acknowledged),
    (sos_signals.sos_ended, _on_sos_ended),
    (sos_signals.sos_positions_purged, _on_sos_positions_purged),
)


def connect() -> None:
    """Subscribe once (blinker keeps the functions by weak reference; these are module-level)."""
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver)
