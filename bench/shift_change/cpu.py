"""CPU seconds of process trees, from /proc, and the isolated phases that give CPU per request.

:func:`tree_ticks` sums user + system time of a process and all its descendants (gunicorn's
master and workers, PostgreSQL's postmaster and backends, Celery with its pool and beat, Locust),
so the cost of the run is read per party even on a machine other work shares.

:func:`endpoint_phases` runs each endpoint alone for a few seconds, closed loop with two
connections (``bench/load.py``'s ``call``), after the load run, and divides the CPU of gunicorn +
PostgreSQL by the requests answered: CPU ms per request by endpoint, what the capacity table in
``docs/deploy.md`` is derived from.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, int]]:
    """pid → (ppid, utime + stime ticks) of every process."""
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            out[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return out


def tree_ticks(roots: dict[str, int]) -> dict[str, dict[int, int]]:
    """Per party, the ticks of each process under its root pid (the root included)."""
    table = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, dict[int, int]] = {}
    for party, root in roots.items():
        seen: dict[int, int] = {}
        stack = [root]
        while stack:
            pid = stack.pop()
            if pid in table and pid not in seen:
                seen[pid] = table[pid][1]
                stack.extend(children.get(pid, ()))
        out[party] = seen
    return out


def spent(before: dict[str, dict[int, int]], after: dict[str, dict[int, int]]) -> dict[str, float]:
    """CPU seconds per party between two readings (a process born in between counts in full; one that
    died in between is lost, which the long-lived servers here do not do)."""
    return {party: round(sum(t - before.get(party, {}).get(pid, 0) for pid, t in pids.items()) / TICK, 2)
            for party, pids in after.items()}


def wait_idle(root: int, seconds: float = 300, quiet: float = 0.1) -> float:
    """Wait until the tree under ``root`` uses under ``quiet`` of a core for three seconds running:
    after an overloaded run gunicorn still works through requests whose clients gave up. Returns
    how long that took."""
    began = time.monotonic()
    calm = 0
    last = sum(tree_ticks({"p": root})["p"].values())
    while calm < 3 and time.monotonic() - began < seconds:
        time.sleep(1)
        now = sum(tree_ticks({"p": root})["p"].values())
        calm = calm + 1 if (now - last) / TICK < quiet else 0
        last = now
    return round(time.monotonic() - began, 1)


def _call(connection: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str],
          body: bytes | None) -> int:
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.will_close:
        connection.close()
    return response.status


def _requests(name: str, work: dict[str, Any], spare: list[dict[str, Any]], checked_in: list[dict[str, Any]],
              rng: random.Random) -> tuple[str, str, dict[str, str], bytes | None] | None:
    """The next request of endpoint ``name`` (None when its supply of fresh assignments is used up)."""
    def auth(token: str, key: bool = False) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return headers

    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    if name == "check-in":
        if not spare:
            return None
        item = spare.pop()
        checked_in.append(item)
        body = {"client_id": str(uuid.uuid4()), "lat": item["lat"], "lon": item["lon"], "accuracy_m": 12.0,
                "device_time": now}
        return "POST", f"/api/v1/assignments/{item['assignment_id']}/check-in", auth(item["token"], True), \
            json.dumps(body).encode()
    if name == "check-out":
        if not checked_in:
            return None
        item = checked_in.pop()
        body = {"client_id": str(uuid.uuid4()), "lat": item["lat"], "lon": item["lon"], "accuracy_m": 12.0,
                "device_time": now}
        return "POST", f"/api/v1/assignments/{item['assignment_id']}/check-out", auth(item["token"], True), \
            json.dumps(body).encode()
    if name == "track":
        item = checked_in[rng.randrange(len(checked_in))]
        points = [{"lat": item["lat"] + rng.uniform(-2e-4, 2e-4), "lon": item["lon"] + rng.uniform(-2e-4, 2e-4),
                   "accuracy_m": 10.0, "time": datetime.fromtimestamp(time.time() - 5 * n - rng.random(), UTC)
                   .isoformat(timespec="microseconds")} for n in range(6)]
        return "POST", f"/api/v1/assignments/{item['assignment_id']}/track", auth(item["token"], True), \
            json.dumps({"points": points}).encode()
    volunteer = work["volunteers"][rng.randrange(len(work["volunteers"]))]
    organiser = work["organisers"][rng.randrange(len(work["organisers"]))]
    paths = {
        "me/shifts": ("/api/v1/me/shifts?when=upcoming", volunteer["token"]),
        "me/notifications": ("/api/v1/me/notifications", volunteer["token"]),
        "coverage-gaps": ("/api/v1/coverage-gaps?within_hours=6", organiser["token"]),
        "reports/coverage": (f"/api/v1/reports/coverage?area_id={organiser['area_id']}&period=month", organiser["token"]),
    }
    path, token = paths[name]
    return "GET", path, auth(token), None


ENDPOINTS = ("check-in", "track", "me/shifts", "me/notifications", "coverage-gaps", "reports/coverage", "check-out")


def endpoint_phases(port: int, work: dict[str, Any], spare: list[dict[str, Any]], roots: dict[str, int],
                    seconds: float, connections: int = 2) -> dict[str, Any]:
    """Each endpoint alone for ``seconds``; CPU of each party ÷ requests answered 2xx."""
    checked_in: list[dict[str, Any]] = []
    results: dict[str, Any] = {}
    lock = threading.Lock()
    for name in ENDPOINTS:
        if name in ("track", "check-out") and not checked_in:
            continue
        counts = {"ok": 0, "other": 0}
        deadline = time.monotonic() + seconds

        def worker(index: int, name: str = name, counts: dict[str, int] = counts, deadline: float = deadline) -> None:
            rng = random.Random(f"{name}/{index}")
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while time.monotonic() < deadline:
                with lock:
                    request = _requests(name, work, spare, checked_in, rng)
                if request is None:
                    break
                try:
                    status = _call(connection, *request)
                except (OSError, http.client.HTTPException):
                    connection.close()
                    status = 0
                with lock:
                    counts["ok" if 200 <= status < 300 else "other"] += 1
            connection.close()

        before = tree_ticks(roots)
        began = time.monotonic()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - began
        used = spent(before, tree_ticks(roots))
        ok = counts["ok"]
        results[name] = {
            "requests_2xx": ok, "other": counts["other"], "seconds": round(elapsed, 1),
            "rps": round(ok / elapsed, 1) if elapsed else 0.0,
            "cpu_ms_per_request": {party: round(1000 * s / ok, 2) if ok else None for party, s in used.items()},
        }
    return results
