"""Events of an SOS; ``notifications`` listens (urgent pushes that ignore quiet hours, inbox rows).

Sent inside the transaction that made the step, like every signal of ``patrols`` (see
``patrols/signals.py``): receivers may add rows (the outbox) but must not push themselves. The SOS
service decides who is alerted (and records them as ``SosRecipient`` rows); the payload carries
those user ids, so the listener only writes what it is given.
"""

from __future__ import annotations

from typing import TypedDict

from blinker import Namespace

SENDER = "patrols.sos"

_signals = Namespace()

sos_alerted = _signals.signal("sos-alerted", doc="People were alerted to an SOS (raised, or escalated).")


class SosAlerted(TypedDict):
    """Fires when an SOS is raised (level community) and at each escalation (district, city), with
    the users newly alerted at that step."""

    sos_id: int
    volunteer_id: int  # who raised it
    grid_id: int
    level: str  # community | district | city
    user_ids: list[int]  # newly alerted: organisers / staff / volunteers on duty nearby
    lat: float
    lon: float
    accuracy_m: float | None
    note: str | None


sos_acknowledged = _signals.signal("sos-acknowledged", doc="Someone answered an SOS (going or handled).")


class SosAcknowledged(TypedDict):
    """Fires for every acknowledgement; ``first`` is the one that stopped the escalation."""

    sos_id: int
    volunteer_id: int  # who raised it (told who answered)
    actor_id: int  # who answered
    response: str  # going | handled
    first: bool


sos_ended = _signals.signal("sos-ended", doc="An SOS was cancelled by its volunteer or closed by an organiser.")


class SosEnded(TypedDict):
    """Fires when an SOS ends: ``cancelled`` (a false alarm, by the volunteer) or ``closed`` (by an
    organiser or staff, with a note). Everyone alerted may stand down."""

    sos_id: int
    volunteer_id: int
    status: str  # cancelled | closed
    actor_id: int
    user_ids: list[int]  # everyone alerted to it
    note: str | None


sos_positions_purged = _signals.signal(
    "sos-positions-purged", doc="An ended SOS's positions were cleared (SOS_POSITION_RETENTION_DAYS)."
)


class SosPositionsPurged(TypedDict):
    """Fires when retention clears an ended SOS's positions, so that copies of them elsewhere (the
    alerts' deep links in the inboxes of those alerted) go too."""

    sos_id: int
    user_ids: list[int]  # everyone alerted to it
