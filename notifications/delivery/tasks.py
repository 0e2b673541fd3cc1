"""Delivering the outbox in the background: the task, and waking it after a commit.

``deliver_due_task`` is what :func:`wake_sender` enqueues after a transaction that wrote
notifications commits, and beat runs it every ``PUSH_DELIVERY_SECONDS`` (10) as the safety net
(rows held back by quiet hours or a retry, a wake-up lost with a broker hiccup, a dead worker's
rows) and to notice a push service back after an outage. Several runs at once are safe: each
claims its own rows (notifications/delivery/service.py). Without a broker it runs in-process (the
embedded default).
"""

from __future__ import annotations

from typing import Any

from core.tasks import celery, enqueue_after_commit, periodic
from notifications.delivery.service import deliver_due


@periodic("PUSH_DELIVERY_SECONDS")
@celery.task(name="notifications.deliver_due")
def deliver_due_task() -> dict[str, Any]:
    """Push every due outbox row; returns the run's counts."""
    stats = deliver_due()
    if stats.more and not celery.conf.task_always_eager:
        # The time budget ran out with rows left: another run picks up at once (on any worker)
        # rather than waiting for beat. In-process there is no worker to hand over to.
        enqueue_after_commit(deliver_due_task, once=True)
    return stats.as_dict()


def wake_sender() -> None:
    """Ask for a delivery run once this transaction commits (at most once per transaction).

    Beat's periodic delivery is the safety net; this only makes pushes go out at once. Without a
    broker (the embedded default) the run happens in-process right after the commit.
    """
    enqueue_after_commit(deliver_due_task, once=True)
