"""Events of the patrols package; notifications and rewards listen, nothing here imports them.

Every signal is sent with ``sender=SENDER`` and the keyword arguments of its payload, a TypedDict
declared below it: senders write ``signal.send(SENDER, **Payload(...))`` and receivers take
``**payload: Unpack[Payload]``, so mypy checks both ends against one declaration.

Receivers run inside the transaction, before the commit: they may add rows (an outbox entry, a
ledger line) but must not push, mail or enqueue anything themselves.
"""

from __future__ import annotations

from typing import TypedDict

from blinker import Namespace

SENDER = "patrols"

_signals = Namespace()

checked_in = _signals.signal("checked-in", doc="A check-in was recorded.")


class CheckedIn(TypedDict):
    """Fires when a volunteer's check-in is recorded."""

    patrol_id: int
    assignment_id: int
    shift_id: int
    volunteer_id: int
    presence_status: str | None  # verified or needs_review
    late_minutes: int | None


checked_out = _signals.signal("checked-out", doc="A check-out was recorded (or closed automatically).")


class CheckedOut(TypedDict):
    """Fires when a check-out is recorded, or a patrol left open is closed automatically."""

    patrol_id: int
    assignment_id: int
    shift_id: int
    volunteer_id: int
    auto_closed: bool


shift_served = _signals.signal("shift-served", doc="A patrol's served minutes are settled.")


class ShiftServed(TypedDict):
    """Fires once per patrol, when both ends are known and presence counts (verified or approved)."""

    patrol_id: int
    assignment_id: int
    shift_id: int
    volunteer_id: int
    served_minutes: int


absent = _signals.signal("absent", doc="An assigned volunteer did not check in: marked absent.")


class Absent(TypedDict):
    """Fires when an assigned volunteer is marked a no-show (for the organiser)."""

    assignment_id: int
    shift_id: int
    volunteer_id: int


presence_reviewed = _signals.signal("presence-reviewed", doc="An organiser approved or rejected presence.")


class PresenceReviewed(TypedDict):
    """Fires when an organiser approves or rejects presence that needed review."""

    patrol_id: int
    assignment_id: int
    volunteer_id: int
    presence_status: str  # approved or rejected
    reason: str | None
    actor_id: int


report_filed = _signals.signal("report-filed", doc="A volunteer filed a report (事件上报).")


class ReportFiled(TypedDict):
    """Fires when a volunteer files a report (red and orange are for the organisers of the grid's
    subtree at once)."""

    report_id: int
    grid_id: int
    level: str
    category: str
    volunteer_id: int


report_status_changed = _signals.signal("report-status-changed", doc="A report moved on in its workflow.")


class ReportStatusChanged(TypedDict):
    """Fires when a report moves on in its workflow (acknowledged, assigned, escalated, resolved)."""

    report_id: int
    from_status: str
    to_status: str
    actor_id: int
    note: str | None
