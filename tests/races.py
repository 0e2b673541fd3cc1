"""Requests released together from threads of their own, each with its own test client (race tests)."""

from __future__ import annotations

import threading
from typing import Any

from flask import Flask

#: (method, path, JSON body or None, headers)
Call = tuple[str, str, Any, dict[str, str]]


def at_once(app: Flask, calls: list[Call]) -> list[Any]:
    """Send every call from its own thread, all released by one barrier; the responses, in order.

    Each thread has its own client, hence its own app context and database session, so with the
    ``committing`` marker the requests really run side by side against the database.
    """
    barrier = threading.Barrier(len(calls))
    responses: list[Any] = [None] * len(calls)

    def send(index: int, method: str, path: str, body: Any, headers: dict[str, str]) -> None:
        client = app.test_client()
        barrier.wait()
        responses[index] = client.open(path, method=method.upper(), json=body, headers=headers)

    threads = [threading.Thread(target=send, args=(i, *call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses
