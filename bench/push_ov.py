"""OPPO / vivo push benchmark: delivery through our worker code against a bare loop of the same HTTP
calls to the same local vendor server, in one run (issue 18; target ≥ 0.9×).

Usage (from the repository root)::

    .venv/bin/python bench/push_oppo.py [--count 10000]
    .venv/bin/python bench/push_vivo.py [--count 10000]

1. Starts the vendor's fake server (``tests/push_servers``) in a process of its own.
2. Recreates ``BENCH_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test_bench_push_ov``),
   seeds N volunteers with one device each (``bench/notifications_seed.py``), moves the devices to
   the vendor's channel and writes one pending notification per volunteer.
3. Delivery, in this order: bare (a ``requests.Session`` posting the vendor's calls — OPPO: one
   auth, then ``unicast_batch`` of 500; vivo: one auth, then one ``/message/send`` per message —
   with the payloads our provider builds), ours (``deliver_due``: claim, devices, provider, record),
   bare again. The ratio is ours ÷ the mean of the two bare runs, in messages per second.
4. Checks: every token delivered exactly once per phase, every row ``sent``.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_push_ov"
BATCH = 500
TARGET_RATIO = 0.9
KEYS = {"oppo": ("oppo-key", "oppo-master"), "vivo": ("10004", "vivo-key", "vivo-secret")}


class Server:
    def __init__(self, vendor: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.push_servers.serve", vendor], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()

    def ask(self, command: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        return json.loads(answer) if command == "counts" else answer.strip()

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(30)


def environment(vendor: str, base_url: str) -> dict[str, str]:
    if vendor == "oppo":
        key, secret = KEYS["oppo"]
        return {"OPPO_APP_KEY": key, "OPPO_MASTER_SECRET": secret, "OPPO_ENDPOINT": base_url}
    app_id, key, secret = KEYS["vivo"]
    return {"VIVO_APP_ID": app_id, "VIVO_APP_KEY": key, "VIVO_APP_SECRET": secret, "VIVO_ENDPOINT": base_url}


def pending_rows(vendor: str) -> None:
    """The seeded devices move to the vendor's channel; one pending notification per volunteer."""
    from core.db import utcnow
    from core.extensions import db

    now = utcnow()
    db.session.execute(sa.text("UPDATE devices SET channel = :channel"), {"channel": vendor})
    db.session.execute(sa.text(
        "INSERT INTO notifications (user_id, kind, title, body, data, urgent, created_at, push_status, "
        "push_due_at, push_attempts, push_device_ids) SELECT user_id, 'shift_reminder', '排班提醒', "
        "'明晚七点的巡逻请准时到达集合点', data, false, :now, 'pending', :now, 0, '[]' FROM notifications"
    ), {"now": now})  # fmt: skip
    db.session.commit()


def messages(app: Any) -> list[Any]:
    """The PushMessages the outbox will send (the same texts and data), for the bare loop."""
    from notifications.delivery.push import PushMessage

    with app.app_context():
        from core.extensions import db

        rows = db.session.execute(sa.text(
            "SELECT n.id, d.token FROM notifications n JOIN devices d ON d.user_id = n.user_id "
            "WHERE n.push_status = 'pending' ORDER BY n.id"
        )).all()  # fmt: skip
    return [
        PushMessage(token=token, title="排班提醒", body="明晚七点的巡逻请准时到达集合点",
                    data={"type": "shift_reminder", "broadcast_id": "1", "notification_id": str(ident)})
        for ident, token in rows
    ]  # fmt: skip


def bare(app: Any, vendor: str, base_url: str, batch: list[Any]) -> dict[str, Any]:
    """The vendor's calls from a plain pooled session: auth once, then the sends, nothing recorded."""
    from notifications.delivery.vendors import oppo, vivo

    session = requests.Session()
    session.mount(base_url, requests.adapters.HTTPAdapter(pool_maxsize=10))
    with app.app_context():
        provider: Any = (oppo.OppoProvider if vendor == "oppo" else vivo.VivoProvider)(app.config, 30.0)
        payloads = [provider.message(m) for m in batch]  # built before the clock: the bare loop only sends
        provider.close()
    began = time.perf_counter()
    if vendor == "oppo":
        stamp = str(int(time.time() * 1000))
        token = session.post(f"{base_url}{oppo.AUTH_PATH}", data={"app_key": KEYS["oppo"][0], "timestamp": stamp,
                             "sign": oppo.sign(KEYS["oppo"][0], stamp, KEYS["oppo"][1])}).json()["data"]["auth_token"]
        for start in range(0, len(payloads), BATCH):
            answer = session.post(f"{base_url}{oppo.SEND_PATH}", data={"auth_token": token,
                                  "messages": json.dumps(payloads[start : start + BATCH], ensure_ascii=False)})
            assert answer.json()["code"] == 0
    else:
        app_id, key, secret = KEYS["vivo"]
        stamp = int(time.time() * 1000)
        token = session.post(f"{base_url}{vivo.AUTH_PATH}", json={"appId": int(app_id), "appKey": key, "timestamp": stamp,
                             "sign": vivo.sign(app_id, key, str(stamp), secret)}).json()["authToken"]
        for payload in payloads:
            assert session.post(f"{base_url}{vivo.SEND_PATH}", json=payload, headers={"authToken": token}).json()["result"] == 0
    seconds = time.perf_counter() - began
    session.close()
    return {"messages": len(payloads), "seconds": round(seconds, 3), "per_second": round(len(payloads) / seconds, 1)}


def ours(app: Any) -> dict[str, Any]:
    from notifications.delivery.service import deliver_due

    with app.app_context():
        began = time.perf_counter()
        stats = deliver_due(datetime.now(UTC) + timedelta(seconds=1), budget_seconds=float("inf"))
        seconds = time.perf_counter() - began
    return {"messages": stats.messages, "sent": stats.sent, "seconds": round(seconds, 3),
            "per_second": round(stats.messages / seconds, 1)}  # fmt: skip


def main(vendor: str) -> int:
    parser = argparse.ArgumentParser(description=f"{vendor} push: our delivery against a bare loop")
    parser.add_argument("--count", type=int, default=10_000, help="volunteers, one device and one message each")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix=f"shouwang-push-{vendor}-"))
    server = Server(vendor)
    try:
        os.environ.update(DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), PUSH_BATCH_SIZE=str(BATCH),
                          CELERY_BROKER_URL="memory://localhost/", **environment(vendor, server.base_url))  # fmt: skip
        os.environ.pop("REDIS_URL", None)
        from notifications_seed import seed
        from seed import recreate_database

        from app import create_app

        recreate_database(url)
        seed(args.count)
        app = create_app()
        with app.app_context():
            pending_rows(vendor)
        batch = messages(app)
        tokens = {m.token for m in batch}
        phases: dict[str, Any] = {}
        checks: dict[str, bool] = {}
        for phase in ("bare_1", "ours", "bare_2"):
            server.ask("reset")
            phases[phase] = ours(app) if phase == "ours" else bare(app, vendor, server.base_url, batch)
            delivered = server.ask("counts")["delivered"]
            checks[phase] = set(delivered) == tokens and set(delivered.values()) == {1}
            print(f"# {phase}: {json.dumps(phases[phase])} once each: {checks[phase]}", file=sys.stderr)
        with app.app_context():
            from core.extensions import db

            left = db.session.scalar(sa.text("SELECT count(*) FROM notifications WHERE push_status = 'pending'"))
        checks["all_sent"] = left == 0
    finally:
        server.stop()
    bare_rate = statistics.mean([phases["bare_1"]["per_second"], phases["bare_2"]["per_second"]])
    ratio = round(phases["ours"]["per_second"] / bare_rate, 2)
    print(f"| {vendor} | {args.count} | {bare_rate:.0f} msg/s | {phases['ours']['per_second']:.0f} msg/s | {ratio:.2f}× |")
    print(f"Checks: {json.dumps(checks)}; target ≥ {TARGET_RATIO}×: {'met' if ratio >= TARGET_RATIO and all(checks.values()) else 'NOT met'}")
    digest = hashlib.sha256(json.dumps(phases, sort_keys=True).encode()).hexdigest()[:8]
    print(f"# run {digest} at {datetime.now(UTC).isoformat(timespec='seconds')}", file=sys.stderr)
    return 0 if all(checks.values()) else 2
