"""Vendor push benchmark (issue 18), one harness for every push channel: fcm, hms, honor, mi, oppo, vivo.

Usage (from the repository root; bench/push_<vendor>.py are the entry points)::

    .venv/bin/python bench/push_oppo.py --messages N [--latency-ms L]

For one channel, in one run, against the same local server (tests/push_servers/, started by
``python -m tests.push_servers.serve <channel>`` in a process of its own, so it does not share the
sender's interpreter lock; ``--latency-ms``: each of its send/auth calls answered that much later,
a vendor a network away):

- bare: the HTTP calls our provider makes, made plainly with one pooled ``requests.Session``: the
  vendor's auth call (where it has one), then its send calls with the payloads our provider builds
  (built before the clock starts; their serialisation, ``json.dumps`` or form encoding as
  ``requests`` does it, is timed). Per-message vendors make as many calls side by side as our
  provider does (its own setting: Huawei/Honor ``parallel``, ``XIAOMI_CONCURRENCY``,
  ``VIVO_CONCURRENCY``, FCM a whole batch as firebase-admin's ``send_each`` does; OPPO one
  ``unicast_batch`` of PUSH_BATCH_SIZE at a time);
- ours: ``deliver_due`` (budget inf) on a seeded outbox, with a fresh provider (its token fetch is
  timed, as bare's is): claim with a lease, devices, the vendor provider, outcomes written;
- floor (bench/push_floor.py): the least a durable outbox must do, by hand in plain psycopg, one
  batch after another — claim with a lease, read the devices, send through the same provider,
  record every row — so against bare it shows what durability costs, and ours against it what our
  code costs beyond that work (the rows are put back afterwards and the table vacuumed);
- bare again, so drift on the machine shows.

Database: BENCH_DATABASE_URL (default ``postgresql://postgres@127.0.0.1:5432/test_bench_push_<channel>``,
dropped and recreated), N volunteers with one device each on the channel and one pending
notification each (one in ten urgent). Ratio: ours ÷ the mean of the two bare runs, in messages per
second (target ≥ 0.9). Checks: the server delivered each token exactly once per phase; every row
ends ``sent``. Prints a line per phase on stderr, then a JSON line and a markdown table row; exits 2
when a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(HERE))

import push_floor  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

TARGET_RATIO = 0.9
BATCH = 500  # PUSH_BATCH_SIZE: rows a delivery run claims at once (and OPPO's messages per call)
FCM_PROJECT = "shouwang-bench"
TITLE, BODY = "今晚需要增援", "12号网格今晚还差两名志愿者，能来的请在应用里报名。"

#: Per channel: the local server's options (its credentials) and the app settings pointing at it.
SERVER_OPTIONS: dict[str, dict[str, Any]] = {
    "fcm": {"access_token": "bench-fcm-access-token"},
    "hms": {"client_id": "bench-client", "client_secret": "bench-secret", "app_id": "10086"},
    "honor": {"client_id": "bench-client", "client_secret": "bench-secret", "app_id": "104400"},
    "mi": {"secret": "bench-mi-secret", "package": "org.shouwang.app"},
    "oppo": {"app_key": "bench-oppo-key", "master_secret": "bench-oppo-master"},
    "vivo": {"app_id": 10004, "app_key": "bench-vivo-key", "app_secret": "bench-vivo-secret"},
}


def settings(channel: str, base_url: str) -> dict[str, str]:
    o = SERVER_OPTIONS[channel]
    if channel == "fcm":
        return {"FIREBASE_CREDENTIALS": f"static-token:{o['access_token']}", "FIREBASE_PROJECT_ID": FCM_PROJECT,
                "FCM_ENDPOINT": base_url}
    if channel == "hms":
        return {"HMS_CLIENT_ID": o["client_id"], "HMS_CLIENT_SECRET": o["client_secret"], "HMS_APP_ID": o["app_id"],
                "HMS_ENDPOINT": base_url, "HMS_AUTH_URL": f"{base_url}/oauth2/v3/token"}
    if channel == "honor":
        return {"HONOR_CLIENT_ID": o["client_id"], "HONOR_CLIENT_SECRET": o["client_secret"], "HONOR_APP_ID": o["app_id"],
                "HONOR_ENDPOINT": base_url, "HONOR_AUTH_URL": f"{base_url}/auth/token"}
    if channel == "mi":
        return {"XIAOMI_APP_SECRET": o["secret"], "XIAOMI_PACKAGE": o["package"], "XIAOMI_ENDPOINT": base_url}
    if channel == "oppo":
        return {"OPPO_APP_KEY": o["app_key"], "OPPO_MASTER_SECRET": o["master_secret"], "OPPO_ENDPOINT": base_url}
    return {"VIVO_APP_ID": str(o["app_id"]), "VIVO_APP_KEY": o["app_key"], "VIVO_APP_SECRET": o["app_secret"],
            "VIVO_ENDPOINT": base_url}  # fmt: skip


class Server:
    """The channel's local server in a process of its own; ``GET /reset`` and ``/stats`` between phases."""

    def __init__(self, channel: str, latency_ms: float) -> None:
        command = [sys.executable, "-m", "tests.push_servers.serve", channel, "--latency-ms", str(latency_ms),
                   "--options", json.dumps(SERVER_OPTIONS[channel])]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url:
            raise SystemExit(f"the {channel} server did not start")

    def reset(self) -> None:
        requests.get(f"{self.base_url}/reset", timeout=30).raise_for_status()

    def delivered(self) -> dict[str, int]:
        return dict(requests.get(f"{self.base_url}/stats", timeout=30).json()["delivered"])

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()  # the server stops when its stdin closes
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def seed(channel: str, count: int) -> None:
    """N volunteers, one device each on ``channel``, one pending notification each (every tenth urgent)."""
    from notifications_seed import _areas, _insert
    from seed import seeding

    from accounts.models import User
    from core.db import utcnow
    from core.extensions import db
    from notifications.devices.models import Device
    from notifications.models import Notification

    with seeding():
        now = utcnow()
        connection = db.session.connection()
        areas, grids = _areas(now)
        _insert(connection, sa.Table("areas", sa.MetaData(), autoload_with=connection), areas)
        users, devices, notes = [], [], []
        for i in range(1, count + 1):
            users.append({"id": i, "phone": f"+86137{i:08d}", "password_hash": "x", "role": "volunteer",
                          "display_name": f"志愿者{i}", "area_id": grids[i % len(grids)]["id"], "locale": "zh",
                          "is_active": True, "created_at": now, "updated_at": now, "password_changed_at": now})
            token = f"{channel}-bench-{i:07d}"
            devices.append({"id": i, "user_id": i, "token": token, "token_hash": hashlib.sha256(token.encode()).hexdigest(),
                            "platform": "android", "channel": channel, "active": True, "registered_at": now,
                            "refreshed_at": now})
            notes.append({"id": i, "user_id": i, "kind": "broadcast", "title": TITLE, "body": BODY, "urgent": i % 10 == 0,
                          "data": {"type": "broadcast", "broadcast_id": "1"}, "created_at": now,
                          "push_status": "pending", "push_due_at": now, "push_attempts": 0, "push_device_ids": []})  # fmt: skip
        _insert(connection, User.__table__, users)
        _insert(connection, Device.__table__, devices)
        _insert(connection, Notification.__table__, notes)
        db.session.commit()


# --- the bare loop ------------------------------------------------------------------------------


@dataclass
class Bare:
    """One vendor's calls, plainly: ``auth`` gives the access token (or None), ``send`` makes one
    call (serialising its payload) and says whether the vendor took it; ``side_by_side`` calls at once."""

    payloads: list[Any]
    auth: Callable[[requests.Session], str | None]
    send: Callable[[requests.Session, str | None, Any], bool]
    side_by_side: int


def bare_calls(app: Any, channel: str) -> Bare:
    """What our provider would send for the seeded notifications, built now (before any clock)."""
    from core.extensions import db
    from notifications.delivery import targets
    from notifications.delivery.push import providers
    from notifications.delivery.vendors import huawei, oppo, vivo, xiaomi

    with app.app_context():
        provider: Any = providers(app)[channel]
        rows = db.session.execute(sa.text(
            "SELECT n.id, n.kind, n.title, n.body, n.data, n.urgent, d.token FROM notifications n "
            "JOIN devices d ON d.user_id = n.user_id ORDER BY n.id"
        )).all()  # fmt: skip
        messages = [targets.message(SimpleNamespace(**row._asdict()), row.token) for row in rows]  # type: ignore[arg-type]
        o = SERVER_OPTIONS[channel]
        ok_status = {"timeout": 30}
        if channel == "fcm":
            from firebase_admin import messaging

            from notifications.delivery.push import fcm_message

            # what send_each posts: {"message": <encoded>} with firebase-admin's headers, one call a
            # message, a whole batch (PUSH_BATCH_SIZE) side by side, each on a thread of its own
            fcm_bodies = [{"message": messaging._MessagingService.encode_message(fcm_message(m))} for m in messages]
            fcm_url = f"{provider.endpoint.rstrip('/')}/v1/projects/{FCM_PROJECT}/messages:send"
            fcm_headers = {"X-GOOG-API-FORMAT-VERSION": "2", "Authorization": f"Bearer {o['access_token']}"}

            def fcm_send(session: requests.Session, token: str | None, body: Any) -> bool:
                return session.post(fcm_url, json=body, headers=fcm_headers, **ok_status).status_code == 200

            return Bare(fcm_bodies, lambda session: None, fcm_send, provider.batch_size)
        if channel in ("hms", "honor"):
            payloads: list[Any] = [provider.body(m, [m.token]) for m in messages]
            auth_url, send_url = provider.auth_url, provider.send_url

            def oauth(session: requests.Session) -> str | None:
                form = {"grant_type": "client_credentials", "client_id": o["client_id"], "client_secret": o["client_secret"]}
                return str(session.post(auth_url, data=form, **ok_status).json()["access_token"])

            def post_json(session: requests.Session, token: str | None, body: Any) -> bool:
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json;charset=UTF-8"}
                if channel == "honor":
                    headers["timestamp"] = str(int(time.time() * 1000))
                return str(session.post(send_url, json=body, headers=headers, **ok_status).json().get("code")) == huawei.OK_CODE

            return Bare(payloads, oauth, post_json, huawei.OneContentPerCall.parallel)
        if channel == "mi":
            forms = [provider.form([m]) for m in messages]
            mi_url = f"{provider.base_url}{xiaomi.SEND_PATH}"

            def post_form(session: requests.Session, token: str | None, form: Any) -> bool:
                answer = session.post(mi_url, data=form, headers={"Authorization": f"key={o['secret']}"}, **ok_status)
                return answer.json().get("code") == 0

            return Bare(forms, lambda session: None, post_form, provider.concurrency)
        if channel == "oppo":
            payloads = [[provider.message(m) for m in messages[i : i + BATCH]] for i in range(0, len(messages), BATCH)]
            oppo_auth, oppo_send = provider.auth_url, f"{provider.base_url}{oppo.SEND_PATH}"

            def oppo_token(session: requests.Session) -> str | None:
                stamp = str(int(time.time() * 1000))
                form = {"app_key": o["app_key"], "timestamp": stamp, "sign": oppo.sign(o["app_key"], stamp, o["master_secret"])}
                return str(session.post(oppo_auth, data=form, **ok_status).json()["data"]["auth_token"])

            def oppo_batch(session: requests.Session, token: str | None, batch: Any) -> bool:
                form = {"auth_token": token, "messages": json.dumps(batch, ensure_ascii=False)}
                return session.post(oppo_send, data=form, **ok_status).json().get("code") == 0

            return Bare(payloads, oppo_token, oppo_batch, 1)
        payloads = [provider.message(m) for m in messages]
        vivo_auth, vivo_send = provider.auth_url, f"{provider.base_url}{vivo.SEND_PATH}"

        def vivo_token(session: requests.Session) -> str | None:
            stamp = int(time.time() * 1000)
            body = {"appId": o["app_id"], "appKey": o["app_key"], "timestamp": stamp,
                    "sign": vivo.sign(str(o["app_id"]), o["app_key"], str(stamp), o["app_secret"])}  # fmt: skip
            return str(session.post(vivo_auth, json=body, **ok_status).json()["authToken"])

        def vivo_one(session: requests.Session, token: str | None, body: Any) -> bool:
            return session.post(vivo_send, json=body, headers={"authToken": token or ""}, **ok_status).json().get("result") == 0

        return Bare(payloads, vivo_token, vivo_one, provider.concurrency)


def bare(calls: Bare, channel: str) -> tuple[float, int]:
    """The calls on one pooled session (as many connections as calls side by side): seconds, calls taken.

    The session is set up as our provider's is: the vendors' ``pooled_session`` (environment read
    once), FCM's a plain one as firebase-admin sets up its own (the issue's yardstick is a bare
    ``send_each`` loop; since issue 19 our FCM provider reads the environment once, which this
    plain session does not: bench/fcm_clients.py measures that difference alone)."""
    from notifications.delivery.vendors.base import pooled_session

    pool = max(calls.side_by_side, 1) + 2
    if channel == "fcm":
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=pool))
    else:
        session = pooled_session("http://", pool)
    started = time.perf_counter()
    token = calls.auth(session)
    if calls.side_by_side > 1:
        with ThreadPoolExecutor(calls.side_by_side) as pool:
            taken = sum(pool.map(lambda payload: calls.send(session, token, payload), calls.payloads))
    else:
        taken = sum(calls.send(session, token, payload) for payload in calls.payloads)
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed, taken


def ours(app: Any) -> tuple[float, int]:
    from core.db import utcnow
    from notifications.delivery.push import close_providers
    from notifications.delivery.service import deliver_due

    close_providers(app)  # a fresh provider: its token fetch is timed, as bare's is
    sent = 0
    with app.app_context():
        now = utcnow() + timedelta(seconds=1)
        started = time.perf_counter()
        while (stats := deliver_due(now=now, budget_seconds=float("inf"))).claimed:
            sent += stats.sent
        elapsed = time.perf_counter() - started
    return elapsed, sent


def run(channel: str, count: int, latency_ms: float = 0.0) -> int:
    url = os.environ.get("BENCH_DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/test_bench_push_{channel}")
    work_dir = Path(tempfile.mkdtemp(prefix=f"shouwang-push-{channel}-"))
    server = Server(channel, latency_ms)
    try:
        os.environ.update(DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), PUSH_BATCH_SIZE=str(BATCH),
                          CELERY_BROKER_URL="memory://localhost/", **settings(channel, server.base_url))  # fmt: skip
        os.environ.pop("REDIS_URL", None)
        from seed import recreate_database

        from app import create_app

        recreate_database(url)
        seed(channel, count)
        app = create_app()
        calls = bare_calls(app, channel)
        # As a worker process does once it is ready (core.tasks.settle_heap); every phase runs on it.
        from core.tasks import settle_heap

        settle_heap()
        tokens = {f"{channel}-bench-{i:07d}" for i in range(1, count + 1)}
        times: dict[str, float] = {}
        checks: dict[str, bool] = {}
        outbox = push_floor.pending(url)
        for phase in ("bare_1", "floor", "ours", "bare_2"):
            server.reset()
            if phase == "floor":
                done_floor = push_floor.deliver(app, channel, url, limit=BATCH)
                times[phase], taken = done_floor["seconds"], done_floor["messages"]
                push_floor.reset(url, outbox)  # the same outbox again for ours
            else:
                times[phase], taken = ours(app) if phase == "ours" else bare(calls, channel)
            delivered = server.delivered()
            checks[phase] = set(delivered) == tokens and set(delivered.values()) == {1}
            done = f"{taken} rows sent" if phase in ("ours", "floor") else f"{taken} calls taken"
            print(f"# {phase}: {count / times[phase]:.0f} msg/s ({times[phase]:.2f} s, {done}), "
                  f"each token once: {checks[phase]}", file=sys.stderr)  # fmt: skip
        with app.app_context():
            from core.extensions import db

            unsent = db.session.scalar(sa.text("SELECT count(*) FROM notifications WHERE push_status <> 'sent'"))
        checks["all_rows_sent"] = unsent == 0
    finally:
        server.stop()
    rates = {phase: round(count / seconds) for phase, seconds in times.items()}
    bare_rate = statistics.mean([rates["bare_1"], rates["bare_2"]])
    ratio = round(rates["ours"] / bare_rate, 2)
    to_floor = round(rates["ours"] / rates["floor"], 2)
    floor_to_bare = round(rates["floor"] / bare_rate, 2)
    ok = all(checks.values())
    print(json.dumps({"channel": channel, "messages": count, "latency_ms": latency_ms, "per_second": rates,
                      "ratio": ratio, "ours_to_floor": to_floor, "floor_to_bare": floor_to_bare,
                      "checks": checks}))  # fmt: skip
    print(f"| {channel} | {count} | {latency_ms:g} | {rates['bare_1']} / {rates['bare_2']} | {rates['floor']} "
          f"| {rates['ours']} | {ratio}× | {to_floor}× | {floor_to_bare}× |")  # fmt: skip
    print(f"Target ≥ {TARGET_RATIO}×: {'met' if ratio >= TARGET_RATIO and ok else 'NOT met'}"
          f"{'' if ok else '; a check FAILED: ' + json.dumps(checks)}")  # fmt: skip
    return 0 if ok else 2


def main(channel: str) -> int:
    """The entry point of bench/push_<vendor>.py."""
    parser = argparse.ArgumentParser(description=f"{channel} push: our delivery against a bare loop of the same calls")
    parser.add_argument("--messages", type=int, default=2000, help="due notifications, one device each")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the local server answers each call this late")
    args = parser.parse_args()
    return run(channel, args.messages, args.latency_ms)
