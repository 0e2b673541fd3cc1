"""The checks around a ``bench/checkin.py`` run: ours and the floor answer alike before it, and
every check-in answered 200 is in the database exactly once after it."""

from __future__ import annotations

import http.client
import json
import random
from typing import Any

import sqlalchemy as sa
from checkin_requests import Requests
from load import call


def verify(url: str, done: list[tuple[int, str]], last_assignment: int) -> dict[str, Any]:
    """Every check-in answered 200 is in the database exactly once, and nothing else was checked in.

    Yesterday's seeded patrols (assignments above ``last_assignment``) are left out.
    """
    from core.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT assignment_id, check_in_client_id, presence_status FROM patrols "
                "WHERE check_in_client_id IS NOT NULL AND assignment_id <= :last"
            ), {"last": last_assignment}).all()
            idempotency_rows = connection.execute(sa.text(
                "SELECT count(*) FROM idempotency_records WHERE request_hash <> repeat('0', 64)"
            )).scalar()
    finally:
        engine.dispose()
    stored: dict[str, list[int]] = {}
    for assignment_id, client_id, _ in rows:
        stored.setdefault(client_id, []).append(assignment_id)
    answered = dict((client_id, assignment_id) for assignment_id, client_id in done)
    missing = [c for c, a in answered.items() if stored.get(c) != [a]]
    extra = [c for c in stored if c not in answered]
    per_assignment: dict[int, int] = {}
    for assignment_id, _, _ in rows:
        per_assignment[assignment_id] = per_assignment.get(assignment_id, 0) + 1
    statuses: dict[str, int] = {}
    for _, _, status in rows:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "answered_200": len(answered),
        "checked_in_rows": len(rows),
        "missing_or_wrong": len(missing),
        "written_without_200": len(extra),
        "assignments_checked_in_twice": sum(1 for n in per_assignment.values() if n > 1),
        "presence_status": statuses,
        "idempotency_records": idempotency_rows,
        "ok": not missing and not extra and len(answered) == len(done)
        and all(n == 1 for n in per_assignment.values()),
    }


def same_answers(ports: dict[str, int], requests: Requests) -> None:
    """Ours and the floor answer the reads with the same JSON, and a check-in through each is verified."""
    rng = random.Random(1)
    for endpoint in ("me", "shifts", "locate"):
        for _ in range(5):
            method, path, headers, _body, _item, _ = requests.next(endpoint, rng)
            answers = []
            for server in ("ours", "floor"):
                connection = http.client.HTTPConnection("127.0.0.1", ports[server], timeout=30)
                status, payload = call(connection, method, path, headers)
                connection.close()
                answers.append((status, json.loads(payload) if status == 200 else payload[:300]))
            if answers[0] != answers[1] or answers[0][0] != 200:
                raise SystemExit(f"{endpoint}: ours and the floor differ: {answers!r}")
    for server in ("ours", "floor"):
        method, path, headers, body, item, client_id = requests.next("checkin", rng)
        assert item is not None
        connection = http.client.HTTPConnection("127.0.0.1", ports[server], timeout=30)
        status, payload = call(connection, method, path, headers, body)
        connection.close()
        answer = json.loads(payload) if status == 200 else {}
        if answer.get("presence_status") != "verified":
            raise SystemExit(f"preflight check-in ({server}): {status} {payload[:400]!r}")
        requests.work.done.append((item["assignment_id"], client_id))
