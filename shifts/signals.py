"""Events of the shifts package; notifications listen (and, inside the package, swaps: a swap request
dies with its places, ``shifts/swaps/listeners.py``); nothing here imports them.

Every signal is sent with ``sender=SENDER`` and the keyword arguments of its payload, a TypedDict
declared below it: senders write ``signal.send(SENDER, **Payload(...))`` and receivers take
``**payload: Unpack[Payload]``, so mypy checks both ends against one declaration.

Receivers run inside the request's transaction, before the commit: they may add rows (an outbox entry,
a ledger line) that commit or roll back with the change, but must not push, mail or enqueue anything
themselves — that happens after the commit, from those rows.
"""

from __future__ import annotations

from typing import Any, TypedDict

from blinker import Namespace

SENDER = "shifts"

_signals = Namespace()

assignment_created = _signals.signal(
    "assignment-created", doc="A volunteer got a place (primary or backup) on a shift."
)


class AssignmentCreated(TypedDict):
    """Fires when a volunteer gets a primary or backup place (a waitlist promotion sends
    ``waitlist_promoted`` instead)."""

    assignment_id: int
    shift_id: int
    volunteer_id: int
    role: str  # primary or backup
    source: str  # AssignmentSource: signup, organiser, invitation, autofill, swap
    actor_id: int | None


assignment_cancelled = _signals.signal(
    "assignment-cancelled", doc="A volunteer's place or waitlist entry ended before the shift."
)


class AssignmentCancelled(TypedDict):
    """Fires when a volunteer's place, waitlist entry or invitation ends before the shift (the ends
    a shift's cancellation causes send ``shift_cancelled`` only)."""

    assignment_id: int
    shift_id: int
    volunteer_id: int
    status: str  # withdrawn, removed, cancelled, swapped, declined, absent
    late: bool  # after the withdrawal cut-off
    actor_id: int | None
    reason: str | None


invitation_sent = _signals.signal(
    "invitation-sent", doc="An organiser invited a volunteer to a place; no place is held yet."
)


class InvitationSent(TypedDict):
    """Fires when an organiser invites a volunteer; the place is theirs once they accept, which
    sends ``assignment_created``."""

    assignment_id: int
    shift_id: int
    volunteer_id: int
    role: str
    actor_id: int


backup_promoted = _signals.signal(
    "backup-promoted", doc="A primary dropped out and the first backup took the primary place."
)


class BackupPromoted(TypedDict):
    """Fires when a primary place frees up (a primary dropped out, or an organiser added places) and
    the first backup takes it."""

    assignment_id: int
    shift_id: int
    volunteer_id: int
    replaced_volunteer_id: int | None  # None when the place was added, not left
    actor_id: int | None


waitlist_promoted = _signals.signal(
    "waitlist-promoted", doc="A primary place freed up and the first waiting volunteer got it."
)


class WaitlistPromoted(TypedDict):
    """Fires when a primary place frees up and the first waiting volunteer gets it
    (``assignment_created`` is not sent again for it)."""

    assignment_id: int
    shift_id: int
    volunteer_id: int
    actor_id: int | None


shift_changed = _signals.signal("shift-changed", doc="Time, place or instructions of a shift changed.")


class ShiftChanged(TypedDict):
    """Fires when an organiser changes a shift's time, place, instructions or places."""

    shift_id: int
    changes: dict[str, list[Any]]  # field -> [before, after], as shown to volunteers
    volunteer_ids: list[int]  # assigned, to be told
    actor_id: int


shift_cancelled = _signals.signal("shift-cancelled", doc="A shift was cancelled.")


class ShiftCancelled(TypedDict):
    """Fires when a shift is cancelled (alone or with its series); the assignments it ends send no
    ``assignment_cancelled`` of their own."""

    shift_id: int
    volunteer_ids: list[int]  # those who were assigned or waitlisted
    reason: str | None
    actor_id: int | None
