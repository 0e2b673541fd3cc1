"""The application class (core/application.py): Flask's ``ensure_sync`` with its answer kept per function."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

import core.application


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The functions ``inspect.iscoroutinefunction`` is asked about."""
    seen: list[Any] = []
    real = core.application.iscoroutinefunction

    def spy(func: Any) -> bool:
        seen.append(func)
        return real(func)

    monkeypatch.setattr(core.application, "iscoroutinefunction", spy)
    return seen


def test_a_plain_function_is_called_as_it_is_and_asked_about_once(app: Flask, asked: list[Any]) -> None:
    def view() -> str:
        return "ok"

    assert app.ensure_sync(view) is view
    assert app.ensure_sync(view) is view
    assert asked == [view]


def test_a_coroutine_function_goes_through_async_to_sync_every_time(
    app: Flask, asked: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def view() -> str:
        return "ok"

    wrapped: list[Any] = []
    monkeypatch.setattr(app, "async_to_sync", lambda func: wrapped.append(func) or "wrapped")
    assert app.ensure_sync(view) == "wrapped"
    assert app.ensure_sync(view) == "wrapped"
    assert wrapped == [view, view] and asked == [view]


def test_bound_methods_of_new_instances_are_asked_about_once(app: Flask, asked: list[Any]) -> None:
    class View:
        def get(self) -> str:
            return "ok"

    first, second = View().get, View().get
    assert app.ensure_sync(first) == first and app.ensure_sync(second) == second
    assert asked == [first]


def test_what_is_not_a_function_is_left_to_flask_and_not_remembered(app: Flask) -> None:
    class Callable:
        def __call__(self) -> str:
            return "ok"

    thing = Callable()
    remembered = dict(app._is_coroutine)  # type: ignore[attr-defined]
    assert app.ensure_sync(thing) is thing and app.ensure_sync(thing) is thing
    assert app._is_coroutine == remembered  # type: ignore[attr-defined]
