"""Records the signals a package sends during a test: the ``events`` fixture of the shifts tests,
and :func:`recording` for any other package's signals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest

from shifts import signals as shifts_signals

SHIFTS_SIGNALS = (
    "assignment_created", "assignment_cancelled", "invitation_sent", "backup_promoted",
    "waitlist_promoted", "shift_changed", "shift_cancelled",
)


class Events:
    """Every signal sent during a test, as (name, kwargs)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for sent_name, kwargs in self.sent if sent_name == name]


@contextmanager
def recording(signals: ModuleType, names: tuple[str, ...]) -> Iterator[Events]:
    """Record the named signals of ``signals`` (a package's signals module) while inside; each must
    come from that package's ``SENDER``."""
    recorded = Events()
    receivers = []
    for name in names:
        def receiver(sender: str, _name: str = name, **kwargs: Any) -> None:
            assert sender == signals.SENDER
            recorded.sent.append((_name, kwargs))

        receivers.append(receiver)
        getattr(signals, name).connect(receiver)
    try:
        yield recorded
    finally:
        for name, receiver in zip(names, receivers, strict=True):
            getattr(signals, name).disconnect(receiver)


@pytest.fixture
def events() -> Iterator[Events]:
    """Every shifts signal sent during the test."""
    with recording(shifts_signals, SHIFTS_SIGNALS) as recorded:
        yield recorded
