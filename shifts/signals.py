"""Events of the shifts package; notifications listen (notifications/listeners.py), nothing here imports them.

Every signal is sent with ``sender=SENDER`` and keyword arguments:

- ``assignment_created``: ``assignment_id, shift_id, volunteer_id, role, source, actor_id``
- ``assignment_cancelled``: ``assignment_id, shift_id, volunteer_id, status`` (withdrawn, removed,
  cancelled, swapped, declined), ``late`` (after the withdrawal cut-off), ``actor_id``, ``reason``
- ``invitation_sent``: ``assignment_id, shift_id, volunteer_id, role, actor_id`` (an organiser invited a
  volunteer; the place is theirs once they accept, which sends ``assignment_created``)
- ``backup_promoted``: ``assignment_id, shift_id, volunteer_id, replaced_volunteer_id, actor_id``
- ``waitlist_promoted``: ``assignment_id, shift_id, volunteer_id, actor_id`` (the volunteer now holds
  a primary place; ``assignment_created`` is not sent again for it)
- ``shift_changed``: ``shift_id, changes`` (field → [before, after]), ``volunteer_ids`` (assigned,
  to be told), ``actor_id``
- ``shift_cancelled``: ``shift_id, volunteer_ids`` (those who were assigned or waitlisted),
  ``reason, actor_id``; the assignments it ends send no ``assignment_cancelled`` of their own

Receivers run inside the request's transaction, before the commit: they may add rows (an outbox entry,
a ledger line) that commit or roll back with the change, but must not push, mail or enqueue anything
themselves — that happens after the commit, from those rows.
"""

from __future__ import annotations

from blinker import Namespace

SENDER = "shifts"

_signals = Namespace()

assignment_created = _signals.signal(
    "assignment-created", doc="A volunteer got a place (primary or backup) on a shift."
)
assignment_cancelled = _signals.signal(
    "assignment-cancelled", doc="A volunteer's place or waitlist entry ended before the shift."
)
invitation_sent = _signals.signal(
    "invitation-sent", doc="An organiser invited a volunteer to a place; no place is held yet."
)
backup_promoted = _signals.signal(
    "backup-promoted", doc="A primary dropped out and the first backup took the primary place."
)
waitlist_promoted = _signals.signal(
    "waitlist-promoted", doc="A primary place freed up and the first waiting volunteer got it."
)
shift_changed = _signals.signal("shift-changed", doc="Time, place or instructions of a shift changed.")
shift_cancelled = _signals.signal("shift-cancelled", doc="A shift was cancelled.")
