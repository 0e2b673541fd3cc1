"""What rewards does when patrols' events happen (it listens; patrols never imports rewards).

Each receiver runs inside the sender's transaction: the service record, ledger entries and badges
commit or roll back with the check-out, review or report step that caused them.
"""

from __future__ import annotations

from typing import Any

from patrols import signals as patrol_signals
from patrols.models import PresenceStatus
from patrols.reports.models import ReportStatus
from rewards.awarding import service as awarding


def _on_shift_served(
    _sender: Any, *, patrol_id: int, shift_id: int, volunteer_id: int, served_minutes: int, **_: Any
) -> None:
    awarding.award_served_shift(patrol_id, volunteer_id, shift_id, served_minutes)


def _on_presence_reviewed(
    _sender: Any,
    *,
    patrol_id: int,
    volunteer_id: int,
    presence_status: str,
    reason: str | None = None,
    actor_id: int | None = None,
    **_: Any,
) -> None:
    if presence_status == PresenceStatus.REJECTED:
        awarding.revoke_patrol(patrol_id, volunteer_id, actor_id, reason)


def _on_report_status_changed(
    _sender: Any, *, report_id: int, from_status: str, to_status: str, actor_id: int | None = None, **_: Any
) -> None:
    # Confirmed: an organiser took the report up (it leaves "open", which happens once).
    if from_status == ReportStatus.OPEN and to_status != ReportStatus.OPEN:
        awarding.award_report(report_id, actor_id)


def connect() -> None:
    """Subscribe once (blinker keeps the functions by weak reference; these are module-level)."""
    patrol_signals.shift_served.connect(_on_shift_served)
    patrol_signals.presence_reviewed.connect(_on_presence_reviewed)
    patrol_signals.report_status_changed.connect(_on_report_status_changed)
