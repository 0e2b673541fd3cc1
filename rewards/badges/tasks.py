"""Background work of badges: the month without absence (beat runs it every REWARDS_TASKS_MINUTES).

Evaluated after the month ended everywhere: the task looks at the
calendar month before (UTC today − 1 day), so on the 2nd of each month and after it settles the
previous month, idempotently (the badge is unique per volunteer; holders are skipped).

It commits per batch of candidates, like patrols' tasks.
"""

from __future__ import annotations

from datetime import date, timedelta

from core.db import utcnow
from core.tasks import celery, periodic
from core.transactions import commit_batch
from rewards.badges import service as badges
from rewards.settings import TASKS_INTERVAL


def month_to_settle(today: date) -> date:
    """The first day of the month before the one containing ``today`` − 1 day."""
    reference = today - timedelta(days=1)
    return (reference.replace(day=1) - timedelta(days=1)).replace(day=1)


def grant_months_without_absence(month: date | None = None, *, batch_size: int = 500) -> int:
    """Grant ``month_without_absence`` for ``month`` (default: see ``month_to_settle``); returns how many."""
    first, following = badges.month_bounds(month or month_to_settle(utcnow().date()))
    granted = 0
    after_id = 0
    while True:
        candidates = badges.served_in_month_without_badge(first, following, after_id=after_id, limit=batch_size)
        absent = badges.absent_in_month(first, following, candidates)
        for volunteer_id in candidates:
            if volunteer_id not in absent and badges.grant(
                volunteer_id, "month_without_absence", {"month": first.strftime("%Y-%m")}
            ):
                granted += 1
        commit_batch()
        if len(candidates) < batch_size:
            return granted
        after_id = candidates[-1]


@periodic(TASKS_INTERVAL)
@celery.task(name="rewards.grant_months_without_absence")
def grant_months_without_absence_task() -> int:
    """Grant the month-without-absence badge for the month that just ended; returns how many."""
    return grant_months_without_absence()
