"""Xiaomi MiPush delivery benchmark: our worker code against a bare loop of the same HTTP calls.

Usage (from the repository root)::

    .venv/bin/python bench/push_xiaomi.py [--volunteers 5000]

1. Starts the local MiPush server (``tests/push_servers/xiaomi.py``) in a process of its own.
2. Drops and recreates ``BENCH_DATABASE_URL`` (default
   ``postgresql://postgres@127.0.0.1:5432/test_bench_push_xiaomi``), seeds it as the notifications
   benchmark does (``bench/notifications_seed.py``: N volunteers, one device each), turns every
   device into a MiPush one (channel ``mi``) and writes one broadcast to all of them through
   ``POST /api/v1/broadcasts``.
3. Delivery, against the same server in the same run, in this order:
   - bare: one ``requests.Session`` (the same pooled adapter) posting the very forms our provider
     builds (made beforehand, untimed) to ``/v3/message/regid``, one call per notification;
   - ours: ``deliver_due`` (claim with a lease, look up devices, send through ``XiaomiProvider``,
     record the outcomes);
   - bare again, so drift on the machine shows;
   - bare with the same 8 calls in flight as ours (``XIAOMI_CONCURRENCY``).
   The ratio is ours ÷ the mean of the two bare runs, in messages per second (target ≥ 0.9); the
   ratio to the parallel bare run is printed beside it.
4. Checks: every regid reached the server exactly once per phase, and every row is ``sent``.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(1, str(HERE))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_push_xiaomi"
SECRET = "bench-mi-secret"
PACKAGE = "org.shouwang.app"
TARGET_RATIO = 0.9
PHASES = ("bare_1", "ours", "bare_2", "bare_parallel")
CONCURRENCY = 8  # XIAOMI_CONCURRENCY's default: calls in flight at once


def start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.push_servers.xiaomi", "--port", "0", "--secret", SECRET, "--package", PACKAGE],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def broadcast(app: Any, token: str, area_id: int, expected: int) -> int:
    client = app.test_client()
    response = client.post(
        "/api/v1/broadcasts", headers={"Authorization": f"Bearer {token}"},
        json={"area_id": area_id, "kinds": ["volunteer_police"], "title": "今晚需要增援",
              "body": "12号网格今晚还差两名志愿者，能来的请在应用里报名。", "urgent": False},
    )  # fmt: skip
    if response.status_code != 201 or response.get_json()["recipient_count"] != expected:
        raise SystemExit(f"broadcast: {response.status_code} {response.get_data(as_text=True)[:300]}")
    return int(response.get_json()["id"])


def forms_of(app: Any, broadcast_id: int) -> tuple[list[dict[str, str]], datetime]:
    """The forms our provider sends for the broadcast (one per notification), and when it is due."""
    from core.extensions import db
    from notifications.delivery.push import PushMessage, providers
    from notifications.devices.models import Device
    from notifications.models import Notification

    with app.app_context():
        provider = providers()["mi"]
        rows = db.session.execute(
            sa.select(Notification, Device.token).join(Device, Device.user_id == Notification.user_id)
            .where(Notification.broadcast_id == broadcast_id).order_by(Notification.id)
        ).tuples().all()  # fmt: skip
        forms = []
        for note, token in rows:
            data = {**{k: str(v) for k, v in note.data.items()}, "type": note.kind, "notification_id": str(note.id)}
            forms.append(provider.form([PushMessage(token, note.title, note.body, data, note.urgent)]))  # type: ignore[attr-defined]
        due = db.session.scalar(sa.select(sa.func.max(Notification.push_due_at)).where(Notification.broadcast_id == broadcast_id))
        db.session.remove()
    return forms, due


def bare(forms: list[dict[str, str]], base_url: str, threads: int = 1) -> dict[str, Any]:
    """The same calls in a plain loop (``threads`` > 1: that many at once, as ours makes them)."""
    from concurrent.futures import ThreadPoolExecutor

    from notifications.delivery.vendors.base import pooled_session

    session = pooled_session(base_url, CONCURRENCY + 2)
    headers = {"Authorization": f"key={SECRET}"}

    def call(form: dict[str, str]) -> bool:
        return session.post(f"{base_url}/v3/message/regid", data=form, headers=headers, timeout=30).json().get("code") == 0

    began = time.perf_counter()
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            ok = sum(pool.map(call, forms))
    else:
        ok = sum(call(form) for form in forms)
    seconds = time.perf_counter() - began
    session.close()
    return {"seconds": round(seconds, 3), "messages": len(forms), "ok": ok, "per_second": round(len(forms) / seconds, 1)}


def ours(app: Any, now: datetime) -> dict[str, Any]:
    from notifications.delivery.service import deliver_due

    with app.app_context():
        began = time.perf_counter()
        stats = deliver_due(now, budget_seconds=float("inf"))
        seconds = time.perf_counter() - began
    return {"seconds": round(seconds, 3), "messages": stats.messages, "sent": stats.sent,
            "per_second": round(stats.messages / seconds, 1)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volunteers", type=int, default=5000)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-push-xiaomi-"))
    server, base_url = start_server()
    try:
        os.environ.update(
            DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), XIAOMI_APP_SECRET=SECRET,
            XIAOMI_PACKAGE=PACKAGE, XIAOMI_ENDPOINT=base_url, CELERY_BROKER_URL="memory://localhost/",
        )  # fmt: skip
        os.environ.pop("REDIS_URL", None)
        from notifications_seed import seed
        from seed import recreate_database

        from app import create_app
        from core.extensions import db

        recreate_database(url)
        seeded = seed(args.volunteers)
        app = create_app()
        with app.app_context():
            db.session.execute(sa.text("UPDATE devices SET channel = 'mi'"))
            db.session.commit()
        broadcast_id = broadcast(app, seeded["token"], seeded["city_id"], args.volunteers)
        forms, due = forms_of(app, broadcast_id)
        results: dict[str, Any] = {}
        for phase in PHASES:
            requests.get(f"{base_url}/reset", timeout=10)
            if phase == "ours":
                results[phase] = ours(app, max(due, datetime.now(UTC)) + timedelta(seconds=1))
            else:
                results[phase] = bare(forms, base_url, CONCURRENCY if phase == "bare_parallel" else 1)
            counts = requests.get(f"{base_url}/stats", timeout=10).json()
            results[phase]["server"] = counts
            if counts["regids"] != len(forms) or counts["twice"] or counts["delivered"] != len(forms):
                print(f"check failed in {phase}: {counts}", file=sys.stderr)
                return 2
        bare_rate = statistics.mean([results["bare_1"]["per_second"], results["bare_2"]["per_second"]])
        ratio = results["ours"]["per_second"] / bare_rate
        print(json.dumps(results, ensure_ascii=False), file=sys.stderr)
        parallel = results["ours"]["per_second"] / results["bare_parallel"]["per_second"]
        print(f"| mi | {len(forms)} | {bare_rate:.0f} | {results['bare_parallel']['per_second']:.0f} | "
              f"{results['ours']['per_second']:.0f} | {ratio:.2f}× | {parallel:.2f}× |")
        return 0 if ratio >= TARGET_RATIO else 1
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    raise SystemExit(main())
