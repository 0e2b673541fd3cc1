"""Background work of reminders: writing the ones now due (beat runs it every REMINDER_MINUTES)."""

from __future__ import annotations

from core.tasks import celery, periodic
from notifications.reminders.service import schedule_due_reminders


@periodic("REMINDER_MINUTES")
@celery.task(name="notifications.schedule_reminders")
def schedule_reminders_task() -> int:
    """Write the reminders now due before assigned shifts (each once, however often this runs)."""
    return schedule_due_reminders()
