"""Events of the volunteers package; shifts (suspended, retired: their future places end) and
notifications (approved, rejected) listen.

Every signal is sent with ``sender=SENDER`` and the keyword arguments of :class:`VolunteerEvent`
(``signal.send(SENDER, **VolunteerEvent(...))``; receivers take ``**event: Unpack[VolunteerEvent]``):
``volunteer_id`` and ``actor_id`` (the user who caused it: the volunteer on self-registration and
closure, otherwise the organiser, staff member or admin); transitions add ``reason``.

Receivers run inside the request's transaction, before the commit: they may add rows (an outbox entry,
a ledger line) that commit or roll back with the change, but must not push, mail or enqueue anything
themselves — that happens after the commit, from those rows.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from blinker import Namespace

SENDER = "volunteers"

_signals = Namespace()


class VolunteerEvent(TypedDict):
    """The payload of every signal here, each of which fires on one change of a volunteer's status."""

    volunteer_id: int
    actor_id: int  # the volunteer on self-registration and closure, otherwise the manager
    reason: NotRequired[str | None]  # sent by transitions and closure, not by registration


volunteer_registered = _signals.signal("volunteer-registered", doc="A volunteer registered (pending).")
volunteer_approved = _signals.signal("volunteer-approved", doc="pending → active.")
volunteer_rejected = _signals.signal("volunteer-rejected", doc="pending → rejected.")
volunteer_suspended = _signals.signal("volunteer-suspended", doc="active → suspended.")
volunteer_reinstated = _signals.signal("volunteer-reinstated", doc="suspended → active.")
volunteer_retired = _signals.signal(
    "volunteer-retired", doc="→ retired, by a manager or by the volunteer's account closure."
)
volunteer_closure_requested = _signals.signal(
    "volunteer-closure-requested",
    doc="The volunteer closed their account (PIPL); sent after volunteer_retired if that applied.",
)
