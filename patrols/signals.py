"""Events of the patrols package; rewards and notifications listen, nothing here imports them.

Every signal is sent with ``sender=SENDER`` and keyword arguments:

- ``checked_in``: ``patrol_id, assignment_id, shift_id, volunteer_id, presence_status, late_minutes``
- ``checked_out``: ``patrol_id, assignment_id, shift_id, volunteer_id, auto_closed``
- ``shift_served``: ``patrol_id, assignment_id, shift_id, volunteer_id, served_minutes`` — once per
  patrol, when both ends are known and presence counts (verified or approved)
- ``absent``: ``assignment_id, shift_id, volunteer_id`` — a no-show, for the organiser
- ``presence_reviewed``: ``patrol_id, assignment_id, volunteer_id, presence_status, reason, actor_id``
- ``report_filed``: ``report_id, grid_id, level, category, volunteer_id`` (red and orange are for the
  organisers of the grid's subtree at once)
- ``report_status_changed``: ``report_id, from_status, to_status, actor_id, note``

Receivers run inside the transaction, before the commit: they may add rows (an outbox entry, a
ledger line) but must not push, mail or enqueue anything themselves.
"""

from __future__ import annotations

from blinker import Namespace

SENDER = "patrols"

_signals = Namespace()

checked_in = _signals.signal("checked-in", doc="A check-in was recorded.")
checked_out = _signals.signal("checked-out", doc="A check-out was recorded (or closed automatically).")
shift_served = _signals.signal("shift-served", doc="A patrol's served minutes are settled.")
absent = _signals.signal("absent", doc="An assigned volunteer did not check in: marked absent.")
presence_reviewed = _signals.signal("presence-reviewed", doc="An organiser approved or rejected presence.")
report_filed = _signals.signal("report-filed", doc="A volunteer filed a report (事件上报).")
report_status_changed = _signals.signal("report-status-changed", doc="A report moved on in its workflow.")
