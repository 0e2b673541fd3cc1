"""What the shift-change run checks in the database afterwards, and samples while it runs.

- :func:`verify_acks`: every check-in and check-out a phone saw acknowledged (2xx, ``acks.jsonl``)
  is in ``patrols`` with the phone's ``client_id`` on its assignment: lost = 0, or the list;
- :class:`OutboxSampler`: the outbox's pending and sent counts every 5 s (push backlog over time);
- :func:`verify_pushes`: every notification of the run the outbox calls sent reached the local FCM
  server once per device it names, none twice, none pending at the end.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

COLUMNS = {"check-in": "check_in_client_id", "check-out": "check_out_client_id"}


def read_acks(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def verify_acks(engine: sa.Engine, acks: list[dict[str, Any]]) -> dict[str, Any]:
    """Acknowledged events missing from the database (by assignment and client_id), per kind."""
    out: dict[str, Any] = {}
    with engine.connect() as connection:
        for kind, column in COLUMNS.items():
            mine = [a for a in acks if a["kind"] == kind]
            ids = sorted({a["assignment_id"] for a in mine})
            stored: dict[int, str | None] = {}
            for start in range(0, len(ids), 5000):
                stored.update(connection.execute(
                    sa.text(f"SELECT assignment_id, {column} FROM patrols WHERE assignment_id = ANY(:ids)"),
                    {"ids": ids[start : start + 5000]},
                ).tuples().all())
            lost = [a for a in mine if stored.get(a["assignment_id"]) != a["client_id"]]
            twice = len(mine) - len({a["assignment_id"] for a in mine})
            out[kind] = {"acknowledged": len(mine), "in_database": len(mine) - len(lost), "lost": len(lost),
                         "lost_list": lost[:50], "acknowledged_twice": twice}
    return out


def outbox_counts(connection: sa.Connection, since: datetime) -> dict[str, int]:
    rows = connection.execute(
        sa.text("SELECT push_status, count(*) FROM notifications WHERE created_at >= :since GROUP BY push_status"),
        {"since": since},
    ).tuples().all()
    return {status: count for status, count in rows}


class OutboxSampler(threading.Thread):
    """Samples the outbox every ``every`` seconds; a sample the database cannot answer is recorded as such."""

    def __init__(self, engine: sa.Engine, since: datetime, started: float, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.engine, self.since, self.started, self.every = engine, since, started, every
        self.samples: list[dict[str, Any]] = []
        self.stopping = threading.Event()

    def sample(self) -> dict[str, Any]:
        at = round(time.time() - self.started, 1)
        try:
            with self.engine.connect() as connection:
                counts = outbox_counts(connection, self.since)
        except sa.exc.DBAPIError as error:
            return {"t": at, "unavailable": type(error.orig).__name__ if error.orig else "DBAPIError"}
        return {"t": at, **counts}

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append(self.sample())
            self.stopping.wait(self.every)

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def verify_pushes(engine: sa.Engine, since: datetime, delivered: dict[str, int]) -> dict[str, Any]:
    """The FCM server's deliveries against the outbox: each sent notification once per device it names."""
    with engine.connect() as connection:
        counts = outbox_counts(connection, since)
        rows = connection.execute(sa.text(
            "SELECT d.token, count(*) FROM notifications n CROSS JOIN LATERAL jsonb_array_elements_text(n.push_device_ids) AS u(id) "
            "JOIN devices d ON d.id = CAST(u.id AS integer) WHERE n.created_at >= :since AND n.push_status = 'sent' GROUP BY d.token"
        ), {"since": since}).tuples().all()
        kinds = dict(connection.execute(sa.text(
            "SELECT kind, count(*) FROM notifications WHERE created_at >= :since GROUP BY kind"
        ), {"since": since}).tuples().all())
    expected = Counter({token: count for token, count in rows})
    got = Counter(delivered)
    twice = {t: got[t] - n for t, n in expected.items() if got[t] > n}
    missing = {t: n - got[t] for t, n in expected.items() if got[t] < n}
    unexpected = {t: n for t, n in got.items() if t not in expected}
    return {
        "outbox": counts, "kinds": kinds, "expected_deliveries": sum(expected.values()),
        "delivered": sum(got.values()), "delivered_twice": sum(twice.values()),
        "not_delivered": sum(missing.values()), "unexpected": sum(unexpected.values()),
        "examples": {"twice": list(twice)[:5], "missing": list(missing)[:5], "unexpected": list(unexpected)[:5]},
        "ok": not twice and not missing and not unexpected and not counts.get("pending"),
    }


def table_sizes(engine: sa.Engine) -> dict[str, Any]:
    """Rows and bytes (with indexes and TOAST) of the tables a night of patrols grows, for the capacity table."""
    out: dict[str, Any] = {}
    with engine.connect() as connection:
        for table in ("track_points", "patrols", "notifications", "idempotency_records", "audit_entries"):
            exists = connection.execute(sa.text("SELECT to_regclass(:t)"), {"t": table}).scalar()
            if exists is None:
                continue
            rows = connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
            size = connection.execute(sa.text(
                "SELECT pg_total_relation_size(CAST(:t AS regclass)) + coalesce((SELECT sum(pg_total_relation_size("
                "i.inhrelid)) FROM pg_inherits i WHERE i.inhparent = CAST(:t AS regclass)), 0)"
            ), {"t": table}).scalar()
            out[table] = {"rows": rows, "bytes": int(size or 0),
                          "bytes_per_row": round(int(size or 0) / rows) if rows else None}
        out["database_bytes"] = connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    return out
