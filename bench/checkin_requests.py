"""What ``bench/checkin.py`` sends (and ``checkin_cpu.py``, ``profile_checkin.py``): each check-in the
first of a distinct assignment with its own token, the reads cycling through readers' tokens."""

from __future__ import annotations

import json
import random
import threading
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

READ_PATHS = {"me": "/api/v1/me", "shifts": "/api/v1/me/shifts"}
#: Volunteers whose tokens the reads use, in turn (their check-ins are left to the write phases).
READERS = 1000


class Work:
    """The assignments not used yet, handed out one per check-in to any thread."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self._items = iter(items)
        self._lock = threading.Lock()
        self.done: list[tuple[int, str]] = []  # (assignment_id, client_id) of check-ins answered 200
        self.exhausted = False

    def take(self) -> dict[str, Any] | None:
        with self._lock:
            item = next(self._items, None)
        if item is None:
            self.exhausted = True
        return item


def check_in_request(item: dict[str, Any], idempotency_key: bool) -> tuple[str, dict[str, str], bytes, str]:
    client_id = str(uuid.uuid4())
    body = json.dumps({
        "client_id": client_id, "lat": item["lat"], "lon": item["lon"], "accuracy_m": 8.0,
        "device_time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }).encode()
    headers = {"Authorization": f"Bearer {item['token']}", "Content-Type": "application/json",
               "Accept": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return f"/api/v1/assignments/{item['assignment_id']}/check-in", headers, body, client_id


class Requests:
    """What each endpoint sends: check-ins take a fresh assignment each, reads cycle through readers."""

    def __init__(self, work: Work, readers: list[dict[str, Any]], idempotency_key: bool) -> None:
        self.work, self.readers, self.idempotency_key = work, readers, idempotency_key

    def next(self, endpoint: str, rng: random.Random) -> tuple[str, str, dict[str, str], bytes | None,
                                                                   dict[str, Any] | None, str]:
        """(method, path, headers, body, the check-in's work item, its client_id); path "" when exhausted."""
        base = endpoint.removesuffix("_floor")
        if base == "bare":
            return "GET", "/healthz", {"Accept": "application/json"}, None, None, ""
        if base == "checkin":
            item = self.work.take()
            if item is None:
                return "POST", "", {}, None, None, ""
            path, headers, body, client_id = check_in_request(item, self.idempotency_key)
            return "POST", path, headers, body, item, client_id
        reader = self.readers[rng.randrange(len(self.readers))]
        headers = {"Accept": "application/json", "Authorization": f"Bearer {reader['token']}"}
        if base == "locate":
            return "GET", "/api/v1/areas/locate?" + urlencode({"lat": reader["lat"], "lon": reader["lon"]}), \
                {"Accept": "application/json"}, None, None, ""
        return "GET", READ_PATHS[base], headers, None, None, ""
