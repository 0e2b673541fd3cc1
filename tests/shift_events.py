"""Records every signal of the shifts package sent during a test (the ``events`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shifts import signals

NAMES = (
    "assignment_created", "assignment_cancelled", "invitation_sent", "backup_promoted",
    "waitlist_promoted", "shift_changed", "shift_cancelled",
)


class Events:
    """Every shifts signal sent during a test, as (name, kwargs)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for sent_name, kwargs in self.sent if sent_name == name]


@pytest.fixture
def events() -> Iterator[Events]:
    recorded = Events()
    receivers = []
    for name in NAMES:
        def receiver(sender: str, _name: str = name, **kwargs: Any) -> None:
            assert sender == signals.SENDER
            recorded.sent.append((_name, kwargs))

        receivers.append(receiver)
        getattr(signals, name).connect(receiver)
    yield recorded
    for name, receiver in zip(NAMES, receivers):
        getattr(signals, name).disconnect(receiver)
