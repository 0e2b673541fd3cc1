"""Locust users of the shift change: volunteers' phones and organisers' consoles (run by ``run.py``).

Environment (set by ``run.py``): ``SHIFT_CHANGE_WORK`` the work list ``prepare.py`` wrote,
``SHIFT_CHANGE_OUT`` the run directory, ``SHIFT_CHANGE_CHECKOUT_AT`` (epoch seconds) when the
volunteers start checking out, over ``SHIFT_CHANGE_CHECKOUT_WINDOW`` seconds, ``SHIFT_CHANGE_TRACK_SECONDS`` (30) between track batches.

A volunteer takes the next assignment of the work list and:

1. checks in from inside their grid, with an ``Idempotency-Key`` and a ``client_id`` made once for
   the event; a 503 is retried after its ``Retry-After`` with the SAME key and body, as a phone
   does (so a check-in committed before a lost answer is replayed, never counted twice); every
   check-in answered 2xx is appended to ``acks.jsonl`` at once (flushed), for the check afterwards;
2. while on duty, uploads a batch of six GPS fixes every 30 s (same retry rule), and now and then
   reads their schedule (``GET /me/shifts``) and inbox (``GET /me/notifications``);
3. at a moment of the check-out window checks out (same rule, acknowledged too), then stays idle.

An organiser opens the coverage views of their area every 5 to 15 s: coverage gaps, the coverage
report and the area's schedule.

Every answer is also counted here by (endpoint, status, Retry-After or not) with the time of every
non-2xx one, written to ``answers.json`` when the run stops: ``run.py`` tells a designed 503 (with
``Retry-After``) from an error and times the recovery after a fault.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, between, constant, events, task

WORK = json.loads(Path(os.environ["SHIFT_CHANGE_WORK"]).read_text())
OUT = Path(os.environ["SHIFT_CHANGE_OUT"])
CHECKOUT_AT = float(os.environ["SHIFT_CHANGE_CHECKOUT_AT"])
CHECKOUT_WINDOW = float(os.environ.get("SHIFT_CHANGE_CHECKOUT_WINDOW", "60"))
TRACK_SECONDS = float(os.environ.get("SHIFT_CHANGE_TRACK_SECONDS", "30"))
MAX_TRIES = 30  # a phone keeps retrying a 503; at Retry-After 1 s this outlasts a database restart
PLANT_LOST_ACK = os.environ.get("SHIFT_CHANGE_PLANT") == "lost-ack"
#: Stand in for a balancer: stamp when each try was sent, so the app sheds what waited too long.
STAMP_QUEUE_START = os.environ.get("SHIFT_CHANGE_STAMP_QUEUE_START") == "1"
TIMEOUT = 30.0  # seconds: an answer later than this is a hang, counted as such

_volunteers = iter(WORK["volunteers"])
_organisers = WORK["organisers"]
_planted = False
_acks = (OUT / "acks.jsonl").open("a", buffering=1)  # line-buffered: each ack is written when it is made
ANSWERS: Counter[str] = Counter()
NON_2XX: list[tuple[float, str, int, bool]] = []  # (time, endpoint, status, with Retry-After)
FIRST_ERROR: dict[str, str] = {}  # per endpoint and status, the first refusal's body (what went wrong)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@events.quitting.add_listener
def _write_answers(**_: Any) -> None:
    (OUT / "answers.json").write_text(json.dumps({"counts": dict(ANSWERS), "non_2xx": NON_2XX,
                                                     "first_error": FIRST_ERROR}))
    _acks.close()


class Phone(FastHttpUser):
    abstract = True
    network_timeout = TIMEOUT
    connection_timeout = TIMEOUT
    token = ""

    def send(self, method: str, path: str, name: str, body: dict[str, Any] | None = None,
             key: str | None = None) -> tuple[int, Any]:
        """One request, retried after a 503's Retry-After with the same key and body; (status, JSON)."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        status, answer = 0, None
        for _ in range(MAX_TRIES):
            if STAMP_QUEUE_START:
                headers["X-Request-Start"] = f"t={time.time():.3f}"
            with self.client.request(method, path, name=name, json=body, headers=headers,
                                     catch_response=True) as response:
                status = response.status_code or 0
                retry_after = response.headers.get("Retry-After") if response.headers else None
                ANSWERS[f"{name} {status}{' retry-after' if retry_after else ''}"] += 1
                if 200 <= status < 300:
                    response.success()
                    try:
                        answer = response.json()
                    except ValueError:
                        answer = None
                    return status, answer
                NON_2XX.append((time.time(), name, status, bool(retry_after)))
                if status == 503 and retry_after:
                    response.failure("503 with Retry-After (designed answer; retried with the same key)")
                    gevent.sleep(float(retry_after))
                    continue
                text = (response.text or "")[:300]
                FIRST_ERROR.setdefault(f"{name} {status}", text)
                response.failure(f"{status} {text[:120]}")
                return status, None
        return status, answer


class Volunteer(Phone):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.item: dict[str, Any] = next(_volunteers, {})
        self.token = self.item.get("token", "")

    def event(self) -> dict[str, Any]:
        return {"client_id": str(uuid.uuid4()), "lat": self.item["lat"], "lon": self.item["lon"],
                "accuracy_m": 12.0, "device_time": _now()}

    def presence(self, kind: str) -> None:
        body = self.event()
        key = body["client_id"]  # the phone's event id is its idempotency key too
        path = f"/api/v1/assignments/{self.item['assignment_id']}/{kind}"
        status, answer = self.send("POST", path, f"POST /assignments/{{id}}/{kind}", body, key)
        if 200 <= status < 300:
            global _planted
            client_id = body["client_id"]
            if PLANT_LOST_ACK and not _planted and kind == "check-in":
                # The harness's self-test (run.py --plant-lost-ack): one ack names an event the server never
                # saw, as if its write had been lost after the answer; the check afterwards must catch it.
                _planted, client_id = True, str(uuid.uuid4())
            _acks.write(json.dumps({"kind": kind, "assignment_id": self.item["assignment_id"],
                                    "client_id": client_id, "status": status,
                                    "presence_status": (answer or {}).get("presence_status"),
                                    "at": time.time()}) + "\n")

    def track_batch(self, rng: random.Random) -> None:
        now = datetime.now(UTC)
        points = [
            {"lat": round(self.item["lat"] + rng.uniform(-2e-4, 2e-4), 6),
             "lon": round(self.item["lon"] + rng.uniform(-2e-4, 2e-4), 6), "accuracy_m": 10.0,
             "time": (now - timedelta(seconds=5 * n)).isoformat(timespec="milliseconds")}
            for n in range(6)
        ]
        self.send("POST", f"/api/v1/assignments/{self.item['assignment_id']}/track", "POST /assignments/{id}/track",
                  {"points": points}, str(uuid.uuid4()))

    @task
    def shift(self) -> None:
        if not self.item:  # more Locust users than assignments: nothing to do
            gevent.sleep(3600)
            return
        rng = random.Random(self.item["assignment_id"])
        self.presence("check-in")
        # Phones are not in step: the first batch comes a random part of the interval after check-in.
        next_batch = time.time() + rng.uniform(1, TRACK_SECONDS)
        checkout_at = CHECKOUT_AT + rng.uniform(0, CHECKOUT_WINDOW)  # the end of duty, spread as phones are
        while next_batch < checkout_at:
            gevent.sleep(max(0.0, next_batch - time.time()))
            self.track_batch(rng)
            if rng.random() < 0.25:
                self.send("GET", "/api/v1/me/shifts?when=upcoming", "GET /me/shifts")
            if rng.random() < 0.25:
                self.send("GET", "/api/v1/me/notifications", "GET /me/notifications")
            next_batch += TRACK_SECONDS
        gevent.sleep(max(0.0, checkout_at - time.time()))
        self.presence("check-out")
        gevent.sleep(3600)  # done for the night; the run ends before this does


class Organiser(Phone):
    wait_time = between(5, 15)
    fixed_count = int(os.environ.get("SHIFT_CHANGE_ORGANISERS", "4"))

    def on_start(self) -> None:
        me = _organisers[random.randrange(len(_organisers))]
        self.token, self.area_id = me["token"], me["area_id"]

    @task
    def coverage_gaps(self) -> None:
        self.send("GET", "/api/v1/coverage-gaps?within_hours=6", "GET /coverage-gaps")

    @task
    def coverage_report(self) -> None:
        self.send("GET", f"/api/v1/reports/coverage?area_id={self.area_id}&period=month", "GET /reports/coverage")

    @task
    def area_schedule(self) -> None:
        self.send("GET", f"/api/v1/areas/{self.area_id}/shifts", "GET /areas/{id}/shifts")
