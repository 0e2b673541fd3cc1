"""Background work of the notifications themselves: their retention (``retention.py``).

``notifications.enforce_retention`` runs under beat every NOTIFICATION_PURGE_MINUTES and from
``flask tasks run-periodic``.
"""

from __future__ import annotations

from core.tasks import celery, periodic
from notifications.retention import enforce_retention


@periodic("NOTIFICATION_PURGE_MINUTES")
@celery.task(name="notifications.enforce_retention")
def enforce_retention_task() -> dict[str, int]:
    """Drop or delete the notifications older than NOTIFICATION_RETENTION_DAYS (with their receipts
    and dedupe keys)."""
    return enforce_retention()
