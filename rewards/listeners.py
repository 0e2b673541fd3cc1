"""What rewards does when patrols' events happen (it listens; patrols never imports rewards).

Each receiver runs inside the sender's transaction: the service record, ledger entries and badges
commit or roll back with the check-out, review or report step that caused them.
"""

from __future__ import annotations

from typing import Any, Unpack

from patrols import signals as patrol_signals
from patrols.models import PresenceStatus
from patrols.reports.models import ReportStatus
from rewards.awarding import service as awarding


def _on_shift_served(_sender: Any, **event: Unpack[patrol_signals.ShiftServed]) -> None:
    awarding.award_served_shift(
        event["patrol_id"], event["volunteer_id"], event["shift_id"], event["served_minutes"]
    )


def _on_presence_reviewed(_sender: Any, **event: Unpack[patrol_signals.PresenceReviewed]) -> None:
    if event["presence_status"] == PresenceStatus.REJECTED:
        awarding.revoke_patrol(event["patrol_id"], event["volunteer_id"], event["actor_id"], event["reason"])


def _on_report_status_changed(_sender: Any, **event: Unpack[patrol_signals.ReportStatusChanged]) -> None:
    # Confirmed: an organiser took the report up (it leaves "open", which happens once).
    if event["from_status"] == ReportStatus.OPEN and event["to_status"] != ReportStatus.OPEN:
        awarding.award_report(event["report_id"], event["actor_id"])


def connect() -> None:
    """Subscribe once (blinker keeps the functions by weak reference; these are module-level)."""
    patrol_signals.shift_served.connect(_on_shift_served)
    patrol_signals.presence_reviewed.connect(_on_presence_reviewed)
    patrol_signals.report_status_changed.connect(_on_report_status_changed)
