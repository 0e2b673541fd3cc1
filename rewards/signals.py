"""Events of the rewards package; notifications listen, nothing here imports them.

Every signal is sent with ``sender=SENDER`` and keyword arguments:

- ``badge_earned``: ``volunteer_id, badge`` (code from ``rewards/badges/service.py``), ``earned_at``
- ``redemption_status_changed``: ``redemption_id, volunteer_id, item_id, item_name, status``
  (requested, approved, fulfilled, cancelled, rejected), ``pickup_code`` (when approved), ``reason``,
  ``actor_id``

Receivers run inside the sender's transaction, before the commit: they may add rows (an outbox
entry) that commit or roll back with the change, but must not push or enqueue anything themselves.
"""

from __future__ import annotations

from blinker import Namespace

SENDER = "rewards"

_signals = Namespace()

badge_earned = _signals.signal("badge-earned", doc="A volunteer earned a badge (once per badge).")
redemption_status_changed = _signals.signal(
    "redemption-status-changed", doc="A redemption was requested, approved, fulfilled, cancelled or rejected."
)
