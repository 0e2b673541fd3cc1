"""The Flask application class: Flask's own, with one per-request cost taken out."""

from __future__ import annotations

from collections.abc import Callable
from inspect import iscoroutinefunction
from types import FunctionType
from typing import Any

from flask import Flask

#: Functions remembered at most: hooks, views and handlers are a few hundred; anything made per
#: request (a closure) beyond this is asked every time, as Flask does.
_REMEMBERED = 10_000


class ShouwangFlask(Flask):
    """Flask, telling a coroutine function from a plain one once per function.

    Flask passes every hook, view and error handler through :meth:`ensure_sync` on every call,
    which asks ``inspect.iscoroutinefunction`` each time: fourteen times a request here, 3% of a
    ``GET /me`` under cProfile (bench/README.md, issue 19). A function's kind does not change, so
    the answer is kept per function (a bound method's: a MethodView's view is bound to a new
    instance on every request). Flask documents ``ensure_sync`` as the method to override.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._is_coroutine: dict[FunctionType, bool] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        target = getattr(func, "__func__", func)
        if not isinstance(target, FunctionType):
            return super().ensure_sync(func)
        is_coroutine = self._is_coroutine.get(target)
        if is_coroutine is None:
            is_coroutine = iscoroutinefunction(func)
            if len(self._is_coroutine) < _REMEMBERED:
                self._is_coroutine[target] = is_coroutine
        return self.async_to_sync(func) if is_coroutine else func
