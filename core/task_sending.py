"""Sending a task after its transaction committed, whatever the broker does: a refusal is logged,
counted and owed, and this process resends it until the broker takes it (:class:`_Owed`).

:mod:`core.tasks` calls :func:`send_after_commit` for what a commit enqueued, and sets the resend
interval from ``TASK_RESEND_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from typing import Any

from celery import Task

from core.metrics import Sample, register_gauges

log = logging.getLogger("core.tasks")  # the name operators filter these lines by, as before the split


class _Owed:
    """Tasks of this process that the broker did not take, resent until it does.

    What a commit asked for is owed, not lost: the commit has happened and cannot be undone, so a
    broker that is down must not turn a saved write into a 500 (a client would retry it and do it
    twice). While anything is owed, new sends join the queue at once instead of making each
    request wait for a broker known to be down; one thread per process tries again every
    ``TASK_RESEND_SECONDS``. Everything a commit enqueues is idempotent (tasks are delivered at
    least once anyway), and periodic sweeps (the outbox's delivery) stand behind a process that
    dies still owing.
    """

    #: Distinct tasks kept at most; beyond, a send is dropped (and counted): periodic sweeps cover it.
    LIMIT = 1000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.emptied = threading.Condition(self.lock)
        self.tasks: dict[str, tuple[Task, tuple[Any, ...], dict[str, Any]]] = {}
        self.failures: Counter[str] = Counter()  # sends the broker refused, per task name
        self.dropped: Counter[str] = Counter()  # sends given up because too much was owed
        self.resent: Counter[str] = Counter()  # owed sends the broker took later
        self.interval = 5.0  # seconds between resends; 0: no thread, the next send tries again
        self._thread: threading.Thread | None = None

    def owe(self, task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        key = json.dumps([task.name, args, kwargs], sort_keys=True, default=str)
        with self.lock:
            if key not in self.tasks and len(self.tasks) >= self.LIMIT:
                self.dropped[task.name] += 1
                return
            self.tasks.setdefault(key, (task, tuple(args), dict(kwargs)))
            if self.interval > 0 and (self._thread is None or not self._thread.is_alive()):
                # Also after a fork: the parent's thread does not exist in the child.
                self._thread = threading.Thread(target=self._resend_until_taken, name="task-resend", daemon=True)
                self._thread.start()

    def _resend_until_taken(self) -> None:
        while True:
            time.sleep(self.interval)
            resend_owed_tasks()
            with self.lock:  # owe() starts a new thread once this one is gone, never in between
                if not self.tasks:
                    self._thread = None
                    return

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "owed": len(self.tasks),
                "failures": dict(self.failures),
                "dropped": dict(self.dropped),
                "resent": dict(self.resent),
            }


owed_tasks = _Owed()


def send_after_commit(task: Task, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> bool:
    """Hand ``task`` to the broker (or run it, without one); never raises: True if it was taken.

    A refusal is logged (task name and error type only), counted (:func:`task_send_counts`) and
    owed: resent by this process once the broker takes tasks again.
    """
    kwargs = kwargs or {}
    if owed_tasks.tasks and owed_tasks.interval > 0:
        # The broker failed lately: queue behind what is owed rather than make this request wait
        # for a broker known to be down (connecting may take seconds); the thread tries for all.
        owed_tasks.owe(task, args, kwargs)
        return False
    try:
        task.apply_async(args=args, kwargs=kwargs)
    except Exception as error:  # kombu's OperationalError, a socket error, anything: the commit stands
        with owed_tasks.lock:
            owed_tasks.failures[task.name] += 1
        log.warning(
            "task not enqueued after commit; owed and resent later",
            extra={"task": task.name, "error": type(error).__name__, "pid": os.getpid()},
        )
        owed_tasks.owe(task, args, kwargs)
        return False
    if owed_tasks.tasks:  # no resend thread (TASK_RESEND_SECONDS=0): the broker is back, the owed follow
        resend_owed_tasks()
    return True


def resend_owed_tasks() -> int:
    """Try once to send everything this process owes; how many the broker took.

    The resend thread calls this; tests call it to drive the resending step by step.
    """
    with owed_tasks.lock:
        owed = list(owed_tasks.tasks.items())
    taken = 0
    for key, (task, args, kwargs) in owed:
        try:
            task.apply_async(args=args, kwargs=kwargs)
        except Exception as error:
            log.info("owed task still not enqueued", extra={"task": task.name, "error": type(error).__name__})
            return taken  # the broker is still down: the rest waits for the next try
        with owed_tasks.lock:
            owed_tasks.tasks.pop(key, None)
            owed_tasks.resent[task.name] += 1
            if not owed_tasks.tasks:
                owed_tasks.emptied.notify_all()
        taken += 1
    if taken:
        log.warning("owed tasks enqueued", extra={"count": taken, "pid": os.getpid()})
    return taken


def wait_until_nothing_owed(timeout: float) -> bool:
    """Wait (at most ``timeout`` seconds) until this process owes the broker nothing; False if it
    still does (tests wait for the resend thread with it)."""
    with owed_tasks.emptied:
        return owed_tasks.emptied.wait_for(lambda: not owed_tasks.tasks, timeout)


def task_send_counts() -> dict[str, Any]:
    """This process's counts: tasks owed now, and sends refused, dropped and resent by task name."""
    return owed_tasks.snapshot()


def _task_send_samples() -> list[Sample]:
    counts, pid = task_send_counts(), str(os.getpid())
    samples = [Sample("shouwang_tasks_owed", "Tasks this process owes the broker (refused, to be resent)",
                      counts["owed"], labels={"pid": pid})]
    for key, help in (
        ("failures", "Task sends the broker refused after a commit (the write itself stood)"),
        ("dropped", "Task sends given up because too many were owed (periodic sweeps cover them)"),
        ("resent", "Owed task sends the broker took later"),
    ):
        samples += [
            Sample(f"shouwang_task_sends_{key}_total", help, value, "counter", {"task": task, "pid": pid})
            for task, value in sorted(counts[key].items())
        ]
    return samples


register_gauges(_task_send_samples)
