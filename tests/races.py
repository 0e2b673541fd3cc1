"""Requests released together from threads of their own (race tests), which never hang the suite.

Every barrier and join here has a timeout: a deadlock, or a thread that died before reaching the
barrier, fails the test with a message saying so instead of hanging CI. (pytest-timeout, set in
pyproject.toml, is the last resort behind this.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

#: Far longer than any race here takes on a loaded machine, far shorter than CI's patience.
TIMEOUT_SECONDS = 60.0

#: (method, path, JSON body or None, headers)
Call = tuple[str, str, Any, dict[str, str]]


def barrier(parties: int, timeout: float = TIMEOUT_SECONDS) -> threading.Barrier:
    """A barrier whose ``wait()`` raises ``BrokenBarrierError`` after ``timeout`` instead of hanging."""
    return threading.Barrier(parties, timeout=timeout)


def join_all(threads: Sequence[threading.Thread], timeout: float = TIMEOUT_SECONDS) -> None:
    """Join every thread within one shared deadline; fail the test if any is still running then."""
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    if stuck:
        pytest.fail(
            f"{len(stuck)} of {len(threads)} threads still running after {timeout:.0f} s "
            f"(a deadlock, or a lock never released): {', '.join(stuck)}",
            pytrace=False,
        )


def run_threads(targets: Sequence[Callable[[], Any]], timeout: float = TIMEOUT_SECONDS) -> list[Any]:
    """Run each target in a thread of its own; their return values, in order.

    The first exception a thread raised is raised here (a broken barrier included), and a thread
    still running after ``timeout`` fails the test. Threads are daemons, so one that is stuck
    does not keep the test process alive either.
    """
    results: list[Any] = [None] * len(targets)
    errors: list[tuple[int, BaseException]] = []

    def run(index: int, target: Callable[[], Any]) -> None:
        try:
            results[index] = target()
        except BaseException as error:  # handed to the test below, not lost in the thread
            errors.append((index, error))

    threads = [
        threading.Thread(target=run, args=(index, target), name=f"race-{index}", daemon=True)
        for index, target in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    join_all(threads, timeout)
    if errors:
        index, error = min(errors, key=lambda pair: pair[0])
        raise AssertionError(f"thread race-{index} raised {error!r}") from error
    return results


def at_once(app: Flask, calls: list[Call], timeout: float = TIMEOUT_SECONDS) -> list[Any]:
    """Send every call from its own thread, all released by one barrier; the responses, in order.

    Each thread has its own client, hence its own app context and database session, so with the
    ``committing`` marker the requests really run side by side against the database.
    """
    start = barrier(len(calls), timeout)

    def sender(method: str, path: str, body: Any, headers: dict[str, str]) -> Callable[[], Any]:
        def send() -> Any:
            client = app.test_client()
            start.wait()
            return client.open(path, method=method.upper(), json=body, headers=headers)

        return send

    return run_threads([sender(*call) for call in calls], timeout)


_LOCK_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    " AND query LIKE :prefix"
)


def hold_until_waited_on(app: Flask, statement_prefix: str, done: threading.Event, timeout: float = TIMEOUT_SECONDS) -> bool:
    """Wait (PostgreSQL) until another backend runs a statement starting with ``statement_prefix``
    and waits for a lock (True), or until ``done`` is set (False): what a transaction holding a row
    lock does before it commits, so a race test can prove the other side waited for it rather than
    read around it."""
    from core.extensions import db

    deadline = time.monotonic() + timeout
    with app.app_context():
        while time.monotonic() < deadline:
            with db.engine.connect() as watcher:  # a new transaction: pg_stat_activity as of now
                if watcher.execute(sa.text(_LOCK_WAITERS), {"prefix": statement_prefix + "%"}).scalar():
                    return True
            if done.wait(0.02):
                return False
    pytest.fail(f"nothing waited on the lock nor finished within {timeout:.0f} s", pytrace=False)
