"""Vendor push benchmark (issue 18), shared by bench/push_huawei.py and bench/push_honor.py.

For one vendor, in one run, against the same local server (tests/push_servers/, in a process of
its own so it does not share the sender's interpreter lock):

- bare: the same HTTP calls ours makes — one pooled ``requests`` session, one access token, one
  POST per notification with the body our provider builds (built before the clock starts), 10 at a
  time as ours makes them;
- ours: ``deliver_due`` on a seeded outbox of N due notifications, one device each on the vendor's
  channel (claim with a lease, look up devices, send through the vendor provider, record outcomes);
- bare again, so drift on the machine shows.

The ratio is ours ÷ the mean of the two bare runs, in messages per second (target ≥ 0.9). Checks:
the server delivered each token exactly once per phase, and every row is ``sent``.
Database: BENCH_DATABASE_URL (default ``postgresql://postgres@127.0.0.1:5432/test_bench_push_<vendor>``;
dropped and recreated, so only ``test_*``/``*bench*`` names).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

TARGET_RATIO = 0.9
PARALLEL = 10  # notifications.delivery.vendors.huawei.OneContentPerCall.parallel
SERVERS = {"hms": "tests.push_servers.huawei:FakeHuawei", "honor": "tests.push_servers.honor:FakeHonor"}
CREDENTIALS = {"client_id": "bench-client", "client_secret": "bench-secret", "app_id": "10086"}


def _serve(pipe: Any, root: str, channel: str) -> None:
    sys.path.insert(0, root)
    import importlib

    module, name = SERVERS[channel].split(":")
    server = getattr(importlib.import_module(module), name)(record=False, **CREDENTIALS).start()
    pipe.send(server.port)
    while True:
        command = pipe.recv()
        if command == "stop":
            server.stop()
            pipe.send(None)
            return
        if command == "reset":
            with server._lock:
                server.delivered_counts.clear()
                server.hits.clear()
            pipe.send(None)
        elif command == "delivered":
            pipe.send(dict(server.delivered_tokens()))


class Server:
    def __init__(self, channel: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, str(ROOT), channel), daemon=True)
        self.process.start()
        self.base_url = f"http://127.0.0.1:{self._pipe.recv()}"

    def ask(self, command: str) -> Any:
        self._pipe.send(command)
        return self._pipe.recv()


def environment(channel: str, base_url: str) -> dict[str, str]:
    if channel == "hms":
        return {"HMS_CLIENT_ID": CREDENTIALS["client_id"], "HMS_CLIENT_SECRET": CREDENTIALS["client_secret"],
                "HMS_APP_ID": CREDENTIALS["app_id"], "HMS_ENDPOINT": base_url, "HMS_AUTH_URL": f"{base_url}/oauth2/v3/token"}
    return {"HONOR_CLIENT_ID": CREDENTIALS["client_id"], "HONOR_CLIENT_SECRET": CREDENTIALS["client_secret"],
            "HONOR_APP_ID": CREDENTIALS["app_id"], "HONOR_ENDPOINT": base_url, "HONOR_AUTH_URL": f"{base_url}/auth/token"}  # fmt: skip


def seed(channel: str, count: int) -> None:
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
            notes.append({"id": i, "user_id": i, "kind": "broadcast", "title": "今晚需要增援",
                          "body": "12号网格今晚还差两名志愿者，能来的请在应用里报名。", "urgent": i % 10 == 0,
                          "data": {"type": "broadcast", "broadcast_id": "1"}, "created_at": now,
                          "push_status": "pending", "push_due_at": now, "push_attempts": 0, "push_device_ids": []})  # fmt: skip
        _insert(connection, User.__table__, users)
        _insert(connection, Device.__table__, devices)
        _insert(connection, Notification.__table__, notes)
        db.session.commit()


def bare_calls(app: Any, channel: str) -> tuple[str, str, list[dict[str, Any]], dict[str, str]]:
    """The vendor's token URL, send URL and bodies our provider would send, one per notification."""
    from core.extensions import db
    from notifications.delivery.push import PushMessage, providers
    from notifications.models import Notification

    with app.app_context():
        provider: Any = providers(app)[channel]
        rows = db.session.execute(sa.text(
            "SELECT n.id, n.title, n.body, n.urgent, d.token FROM notifications n JOIN devices d ON d.user_id = n.user_id ORDER BY n.id"
        )).all()  # fmt: skip
        bodies = [
            provider.body(PushMessage(r.token, r.title, r.body, {"type": "broadcast", "broadcast_id": "1", "notification_id": str(r.id)}, bool(r.urgent)), [r.token])
            for r in rows
        ]  # fmt: skip
        _ = Notification
        extra = {"timestamp": "0"} if channel == "honor" else {}
        return provider.auth_url, provider.send_url, bodies, extra


def bare(auth_url: str, send_url: str, bodies: list[dict[str, Any]], extra: dict[str, str]) -> float:
    """The same calls, side by side on as many pooled connections as ours uses (PARALLEL)."""
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=PARALLEL))
    started = time.perf_counter()
    form = {"grant_type": "client_credentials", "client_id": CREDENTIALS["client_id"], "client_secret": CREDENTIALS["client_secret"]}
    token = session.post(auth_url, data=form, timeout=10).json()["access_token"]

    def call(body: dict[str, Any]) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if extra:
            headers["timestamp"] = str(int(time.time() * 1000))
        session.post(send_url, json=body, headers=headers, timeout=10).json()

    with ThreadPoolExecutor(PARALLEL) as pool:
        list(pool.map(call, bodies))
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


def ours(app: Any) -> float:
    from core.db import utcnow
    from notifications.delivery.push import close_providers
    from notifications.delivery.service import deliver_due

    close_providers(app)  # a fresh provider: its token fetch is timed, as bare's is
    started = time.perf_counter()
    with app.app_context():
        now = utcnow() + timedelta(seconds=1)
        while deliver_due(now=now).claimed:
            pass
    return time.perf_counter() - started


def run(channel: str, count: int) -> int:
    url = os.environ.get("BENCH_DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/test_bench_push_{channel}")
    work_dir = Path(tempfile.mkdtemp(prefix=f"shouwang-push-{channel}-"))
    server = Server(channel)
    try:
        os.environ.update(DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), PUSH_BATCH_SIZE="500",
                          CELERY_BROKER_URL="memory://localhost/", **environment(channel, server.base_url))  # fmt: skip
        os.environ.pop("REDIS_URL", None)
        from seed import recreate_database

        from app import create_app

        recreate_database(url)
        seed(channel, count)
        app = create_app()
        auth_url, send_url, bodies, extra = bare_calls(app, channel)
        times: dict[str, float] = {}
        checks: dict[str, bool] = {}
        tokens = {f"{channel}-bench-{i:07d}" for i in range(1, count + 1)}
        for phase in ("bare_1", "ours", "bare_2"):
            server.ask("reset")
            times[phase] = ours(app) if phase == "ours" else bare(auth_url, send_url, bodies, extra)
            delivered = server.ask("delivered")
            checks[phase] = set(delivered) == tokens and set(delivered.values()) == {1}
            print(f"# {phase}: {count / times[phase]:.0f}/s check {checks[phase]}", file=sys.stderr)
        with app.app_context():
            from core.extensions import db

            unsent = db.session.scalar(sa.text("SELECT count(*) FROM notifications WHERE push_status <> 'sent'"))
        checks["all_rows_sent"] = unsent == 0
    finally:
        server.ask("stop")
    rates = {phase: round(count / seconds) for phase, seconds in times.items()}
    bare_rate = statistics.mean([rates["bare_1"], rates["bare_2"]])
    ratio = round(rates["ours"] / bare_rate, 2)
    ok = all(checks.values())
    print(json.dumps({"channel": channel, "messages": count, "per_second": rates, "ratio": ratio, "checks": checks}))
    print(f"| {channel} | {count} | {rates['bare_1']} / {rates['bare_2']} | {rates['ours']} | {ratio}× |")
    print(f"Target ≥ {TARGET_RATIO}×: {'met' if ratio >= TARGET_RATIO and ok else 'NOT met'}")
    return 0 if ok else 2
