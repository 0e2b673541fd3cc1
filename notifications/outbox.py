"""Waking the sender: after the transaction that wrote notifications commits, deliver them."""

from __future__ import annotations

from core.tasks import enqueue_after_commit


def wake_sender() -> None:
    """Ask for a delivery run once this transaction commits (at most once per transaction).

    Beat's periodic delivery is the safety net; this only makes pushes go out at once. Without a
    broker (the embedded default) the run happens in-process right after the commit.
    """
    from notifications.tasks import deliver_due_task  # tasks imports the sender, which imports much

    enqueue_after_commit(deliver_due_task, once=True)
