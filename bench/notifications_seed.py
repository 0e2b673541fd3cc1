"""Seed the notifications benchmark: N active volunteers with one fresh FCM device each, and a sender;
and the local FCM server the benchmark sends to, in a process of its own.

Used by ``bench/notifications.py`` (which sets DATABASE_URL and INSTANCE_PATH first, so the
sender's token is signed with the app's key).

- city → district → sub-district → community → 25 grids (no polygons: nothing here locates points);
- N users (role volunteer, one shared dummy password hash: nobody logs in) and N active volunteers
  of kind ``volunteer_police``, homed round-robin on the grids; one more volunteer, of kind
  ``alley_steward`` and without a device, whom the warm-up broadcast reaches;
- one device per volunteer: an FCM-length token (``bench-<n>-…``, 163 characters), active,
  refreshed yesterday;
- yesterday's broadcast to all of them, delivered: N ``sent`` notifications, so the outbox's
  table is not empty when ``ANALYZE`` runs (statistics of an empty table plan sequential scans,
  see the check-in benchmark);
- one staff user over the city (the sender) and an access token for them.

Rows go in with Core ``executemany`` and ids chosen here; the id sequences are moved past them.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
ACCESS_TOKEN = "bench-fcm-access-token"  # what the local FCM server expects as the bearer token
GRIDS = 25
CHUNK = 5000
TOKEN_LENGTH = 163  # a typical FCM registration token


# ------------------------------------------------------------------------------ the FCM server


def _serve_fcm(connection: Any, root: str) -> None:
    """Child process: the local FCM server (tests/fcm_server.py), answering commands over a pipe."""
    sys.path.insert(0, root)
    from tests.fcm_server import FakeFcm

    server = FakeFcm(access_token=ACCESS_TOKEN, record=False).start()
    connection.send(server.port)
    while (command := connection.recv()) != "stop":
        if command == "reset":
            server.reset()
            connection.send(True)
        else:  # counts, asked between phases (nothing is being sent then)
            statuses: dict[int, int] = {}
            for (_, status), n in list(server.replies.items()):
                statuses[status] = statuses.get(status, 0) + n
            connection.send({"delivered": dict(server.delivered_tokens()), "statuses": statuses,
                             "hits": sum(server.hits.values())})
    server.stop()
    connection.send(True)


class FcmServer:
    """The local FCM v1 server in a process of its own, so it does not share the sender's GIL."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self.process = context.Process(target=_serve_fcm, args=(child, str(ROOT)), daemon=True)
        self.process.start()
        self.base_url = f"http://127.0.0.1:{self._pipe.recv()}"

    def ask(self, command: str) -> Any:
        self._pipe.send(command)
        return self._pipe.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.ask("stop")
            self.process.join(10)


# ------------------------------------------------------------------------------ the data


def token_for(n: int) -> str:
    head = f"bench-{n}-"
    return head + (hashlib.sha256(head.encode()).hexdigest() * 3)[: TOKEN_LENGTH - len(head)]


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], *, sequence: bool = True) -> None:
    for start in range(0, len(rows), CHUNK):
        connection.execute(sa.insert(table), rows[start : start + CHUNK])
    if sequence:
        connection.execute(sa.text(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), (SELECT max(id) FROM {table.name}))"
        ))


def _areas(now: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from bulk import add_area  # bench/ is on sys.path

    rows: list[dict[str, Any]] = []

    def add(level: str, parent: dict[str, Any] | None, code: str, name: str) -> dict[str, Any]:
        if level == "grid":
            return add_area(rows, now, level, parent, code, name, grid_kind="urban", households=350)
        return add_area(rows, now, level, parent, code, name)

    city = add("city", None, "150200", "包头市")
    district = add("district", city, "150202", "东河区")
    sub = add("subdistrict", district, "150202001", "和平路街道")
    community = add("community", sub, "150202001001", "和平路第1社区")
    grids = [add("grid", community, f"150202001001{g + 1:03d}", f"和平路第1社区第{g + 1}网格") for g in range(GRIDS)]
    return rows, grids


def seed(count: int) -> dict[str, Any]:
    """Write everything into DATABASE_URL's (empty) database; returns what the driver needs."""
    from bulk import commit_and_analyse
    from seed import mint_token, seeding  # bench/ is on sys.path

    from accounts.models import User
    from accounts.passwords import hash_password
    from core import crypto
    from core.db import utcnow
    from core.extensions import db
    from grids.models import Area
    from notifications.broadcasts.models import Broadcast
    from notifications.devices.models import Device
    from notifications.models import Notification
    from volunteers.models import Volunteer, VolunteerKind

    with seeding() as run:
        timings, schema_from = run.timings, run.schema_from
        mark = time.perf_counter()
        now = utcnow()
        yesterday = now - timedelta(days=1)
        connection = db.session.connection()
        area_rows, grids = _areas(now)
        _insert(connection, Area.__table__, area_rows)
        city = area_rows[0]
        kinds = dict(db.session.execute(sa.select(VolunteerKind.code, VolunteerKind.id)).tuples().all())

        shared_hash = hash_password(uuid.uuid4().hex)  # nobody logs in; one argon2 for all
        shared_id_cipher = crypto.encrypt("150202199001010011")
        consent = run.app.config["PRIVACY_TERMS_VERSION"]
        users, volunteers, devices, history = [], [], [], []
        sender_id, extra_id = count + 1, count + 2
        for i in range(1, count + 2 + 1):
            grid = grids[i % len(grids)]
            is_sender = i == sender_id
            users.append({
                "id": i, "phone": f"+86136{i:08d}", "password_hash": shared_hash,
                "role": "staff" if is_sender else "volunteer", "display_name": f"志愿者{i}",
                "area_id": city["id"] if is_sender else grid["id"], "locale": "zh", "is_active": True,
                "created_at": now, "updated_at": now, "password_changed_at": now,
            })
            if is_sender:
                continue
            volunteers.append({
                "id": i, "user_id": i, "kind_id": kinds["alley_steward" if i == extra_id else "volunteer_police"],
                "home_grid_id": grid["id"], "status": "active", "real_name": f"志愿者{i}",
                "national_id_encrypted": shared_id_cipher,
                "national_id_hash": hashlib.sha256(f"bench-notifications-{i}".encode()).hexdigest(),
                "consent_version": consent, "consented_at": now, "created_at": now, "updated_at": now,
            })
            if i == extra_id:
                continue
            token = token_for(i)
            devices.append({
                "id": i, "user_id": i, "token": token, "token_hash": hashlib.sha256(token.encode()).hexdigest(),
                "platform": "android", "channel": "fcm", "app_version": "1.4.0", "locale": "zh", "active": True,
                "registered_at": yesterday - timedelta(days=30), "refreshed_at": yesterday,
            })
            history.append({
                "id": i, "user_id": i, "kind": "broadcast", "title": "昨日通知", "body": "昨晚巡逻顺利，感谢各位。",
                "data": {"type": "broadcast", "broadcast_id": "1"}, "urgent": False, "broadcast_id": 1,
                "created_at": yesterday, "push_status": "sent", "push_due_at": yesterday, "push_attempts": 0,
                "push_device_ids": [i], "pushed_at": yesterday,
            })
        _insert(connection, User.__table__, users)
        _insert(connection, Volunteer.__table__, volunteers)
        _insert(connection, Device.__table__, devices)
        _insert(connection, Broadcast.__table__, [{
            "id": 1, "sender_id": sender_id, "area_id": city["id"], "kinds": None, "title": "昨日通知",
            "body": "昨晚巡逻顺利，感谢各位。", "urgent": False, "recipient_count": count, "created_at": yesterday,
        }])
        _insert(connection, Notification.__table__, history)
        token = mint_token(sender_id, "staff", city["path"])
        db.session.flush()
        timings["insert_s"] = time.perf_counter() - mark
        commit_and_analyse()
    return {
        "schema_from": schema_from,
        "volunteers_with_device": count,
        "grids": len(grids),
        "city_id": city["id"],
        "token": token,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
