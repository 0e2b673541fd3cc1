"""Notifications benchmark: a broadcast to 100,000 devices — time to enqueue, and delivery throughput.

Usage (from the repository root; about 10 minutes at 100,000 on 2 cores)::

    .venv/bin/python bench/notifications.py [--volunteers 100000]

1. Starts the local FCM v1 server (``tests/fcm_server.py``, threaded, backlog 1024) in a process of
   its own, so it does not share the sender's interpreter lock.
2. Drops and recreates ``BENCH_DATABASE_URL`` (default
   ``postgresql://postgres@127.0.0.1:5432/test_bench_notifications``; only ``test_*`` or ``*bench*``
   names, unless BENCH_ALLOW_DROP=1), migrates it and seeds it (``bench/notifications_seed.py``):
   N active volunteers with one fresh device each, yesterday's broadcast delivered, a staff sender.
3. **Enqueue**: ``POST /api/v1/broadcasts`` to the whole city, in-process through the Flask test
   client (after one warm-up broadcast that reaches a single volunteer): the request writes the
   broadcast and its N inbox/outbox rows and commits. Celery is given an in-memory broker, so the
   wake-up after the commit is a queued message and the delivery is not run inside the request.
4. **Delivery**, against the same server in the same run, in this order:
   - bare: firebase-admin ``messaging.send_each`` over the same N tokens and payloads, in batches
     of 500, on an App of its own whose only change is the endpoint (the private ``_fcm_url``, as
     notifications/delivery/push.py sets it);
   - ours: ``notifications.delivery.service.deliver_due`` in this one process (claim with a lease, look up
     devices, send through ``FcmProvider`` (``send_each``, 500 per batch), record the outcomes), with
     the clock set to when the last row is due (a non-urgent broadcast sent in the recipients'
     quiet hours waits until 07:00);
   - bare again, so drift on the machine shows;
   - bare with 500 pooled keep-alive connections, as push.py configures ours (firebase-admin keeps
     10): shows how much of the comparison is the connection pool rather than the outbox.
   The ratio is ours ÷ the mean of the two bare runs, in messages per second (target ≥ 0.8); the
   ratio to the pooled bare run is reported beside it.
5. Checks: every token reached the server exactly once in each phase (and no other token), all N
   rows are ``sent`` with their device, and nothing was retried.

CPU seconds of this process, the FCM server and the database's backends are read from /proc per
phase. Results: ``bench/results/notifications-<UTC timestamp>.json`` and a Markdown table on
stdout. Exit status 2 when a check failed; with ``--strict`` 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from load import git_commit  # noqa: E402  (bench/ is the script directory)
from notifications_seed import ACCESS_TOKEN, FcmServer  # noqa: E402
from stats import CpuMeter, finish  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_notifications"
PROJECT = "shouwang-bench"
BATCH = 500
TARGET_RATIO = 0.8
#: In this order: drift on the machine shows in the two bare runs around ours.
PHASES = ("bare_1", "ours", "bare_2", "bare_pooled")
TITLE = "今晚需要增援"
BODY = "12号网格今晚还差两名志愿者，能来的请在应用里报名。"


# ------------------------------------------------------------------------------ phases


def enqueue(app: Any, token: str, area_id: int, expected: int) -> dict[str, Any]:
    """The timed POST /api/v1/broadcasts, after a warm-up; its statements and their times."""
    from core.extensions import db

    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    warm = client.post("/api/v1/broadcasts", json={"area_id": area_id, "kinds": ["alley_steward"], "title": "预热",
                                                     "body": "预热", "urgent": True}, headers=headers)
    if warm.status_code != 201 or warm.get_json()["recipient_count"] != 1:
        raise SystemExit(f"warm-up broadcast: {warm.status_code} {warm.get_data(as_text=True)[:300]}")

    statements: list[list[Any]] = []
    started: dict[int, float] = {}

    def before(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append([" ".join(statement.split())[:90], time.perf_counter() - started.pop(id(cursor), 0.0)])

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    began = time.perf_counter()
    response = client.post("/api/v1/broadcasts", json={"area_id": area_id, "kinds": ["volunteer_police"],
                                                         "title": TITLE, "body": BODY, "urgent": False}, headers=headers)
    seconds = time.perf_counter() - began
    sa.event.remove(engine, "before_cursor_execute", before)
    sa.event.remove(engine, "after_cursor_execute", after)
    sent = response.get_json()
    if response.status_code != 201 or sent["recipient_count"] != expected:
        raise SystemExit(f"broadcast: {response.status_code} {response.get_data(as_text=True)[:300]}")
    statements.sort(key=lambda s: -s[1])
    return {
        "seconds": round(seconds, 3),
        "rows_per_second": round(expected / seconds),
        "broadcast_id": sent["id"],
        "reached": sent["reached"],
        "statements": len(statements),
        "slowest_statements": [[text, round(t, 3)] for text, t in statements[:4]],
    }


def messages_of(app: Any, broadcast_id: int) -> tuple[list[tuple[int, str]], datetime]:
    """(notification id, token) of the broadcast in id order, and when its last row is due."""
    from core.extensions import db
    from notifications.devices.models import Device
    from notifications.models import Notification

    with app.app_context():
        rows = db.session.execute(
            sa.select(Notification.id, Device.token)
            .join(Device, Device.user_id == Notification.user_id)
            .where(Notification.broadcast_id == broadcast_id, Device.active.is_(True))
            .order_by(Notification.id)
        ).tuples().all()
        last_due = db.session.scalar(
            sa.select(sa.func.max(Notification.push_due_at)).where(Notification.broadcast_id == broadcast_id)
        )
        db.session.remove()
    return list(rows), last_due


def bare(messages: list[tuple[int, str]], broadcast_id: int, fcm_url: str, name: str, pooled: bool = False) -> dict[str, Any]:
    """firebase-admin alone: send_each over the tokens in batches of 500, only the endpoint changed.

    ``pooled``: also keep up to 500 connections alive, as notifications/delivery/push.py does (firebase-admin
    keeps 10, so most of a 500-thread batch opens a new connection per message).
    """
    import firebase_admin
    import google.oauth2.credentials
    import requests.adapters
    from firebase_admin import credentials, messaging

    class Token(credentials.Base):
        def get_credential(self) -> google.oauth2.credentials.Credentials:
            return google.oauth2.credentials.Credentials(token=ACCESS_TOKEN)

    app = firebase_admin.initialize_app(Token(), {"projectId": PROJECT, "httpTimeout": 30}, name=name)
    service = messaging._get_messaging_service(app)
    service._fcm_url = fcm_url
    if pooled:
        session = service._client.session
        retries = session.get_adapter(fcm_url).max_retries  # firebase-admin's own retry settings
        session.mount(fcm_url.split("/v1/")[0], requests.adapters.HTTPAdapter(
            pool_connections=1, pool_maxsize=BATCH, max_retries=retries))
    ok = failed = 0
    began = time.perf_counter()
    for start in range(0, len(messages), BATCH):
        batch = []
        for notification_id, token in messages[start : start + BATCH]:
            message = messaging.Message(
                notification=messaging.Notification(title=TITLE, body=BODY),
                data={"type": "broadcast", "broadcast_id": str(broadcast_id), "notification_id": str(notification_id)},
                android=messaging.AndroidConfig(priority="normal"),
                apns=messaging.APNSConfig(headers={"apns-priority": "5", "apns-push-type": "alert"},
                                          payload=messaging.APNSPayload(aps=messaging.Aps())),
            )
            message.token = token  # as push.py does: the token field without the deprecation warning
            batch.append(message)
        response = messaging.send_each(batch, app=app)
        ok += response.success_count
        failed += response.failure_count
    seconds = time.perf_counter() - began
    firebase_admin.delete_app(app)
    return {"seconds": round(seconds, 3), "messages": ok + failed, "ok": ok, "failed": failed,
            "per_second": round((ok + failed) / seconds, 1)}


def ours(app: Any, now: datetime) -> dict[str, Any]:
    from notifications.delivery.service import deliver_due

    with app.app_context():
        began = time.perf_counter()
        stats = deliver_due(now, budget_seconds=float("inf"))
        seconds = time.perf_counter() - began
    figures = stats.as_dict()
    return {"seconds": round(seconds, 3), **figures, "per_second": round(figures["messages"] / seconds, 1)}


def timed(meter: CpuMeter, run: Any) -> dict[str, Any]:
    before = meter.snapshot()
    result = run()
    spent = meter.spent(before, meter.snapshot())
    count = result["messages"] or 1
    result["cpu_s"] = {party: round(seconds, 2) for party, seconds in spent.items()}
    result["cpu_ms_per_message"] = {party: round(seconds / count * 1000, 3) for party, seconds in spent.items()}
    return result


# ------------------------------------------------------------------------------ checks


def server_check(server: FcmServer, tokens: list[str]) -> dict[str, Any]:
    counts = server.ask("counts")
    delivered = counts["delivered"]
    expected = set(tokens)
    return {
        "hits": counts["hits"],
        "statuses": counts["statuses"],
        "tokens_once": sum(1 for token in tokens if delivered.get(token) == 1),
        "tokens_missing": sum(1 for token in tokens if token not in delivered),
        "tokens_more_than_once": sum(1 for n in delivered.values() if n > 1),
        "unexpected_tokens": sum(1 for token in delivered if token not in expected),
        "ok": counts["hits"] == len(tokens) and all(delivered.get(token) == 1 for token in tokens)
        and set(delivered) == expected,
    }


def database_check(app: Any, broadcast_id: int, expected: int) -> dict[str, Any]:
    from core.extensions import db
    from notifications.devices.models import Device
    from notifications.models import Notification

    with app.app_context():
        statuses = dict(db.session.execute(
            sa.select(Notification.push_status, sa.func.count())
            .where(Notification.broadcast_id == broadcast_id).group_by(Notification.push_status)
        ).tuples().all())
        wrong_device = db.session.scalar(
            sa.select(sa.func.count()).select_from(Notification)
            .join(Device, Device.user_id == Notification.user_id)
            .where(Notification.broadcast_id == broadcast_id,
                   sa.cast(Notification.push_device_ids, sa.Text) != sa.func.concat("[", Device.id, "]"))
        )
        retried = db.session.scalar(
            sa.select(sa.func.count()).select_from(Notification)
            .where(Notification.broadcast_id == broadcast_id, Notification.push_attempts > 0)
        )
        db.session.remove()
    return {"statuses": statuses, "rows_with_other_devices": wrong_device, "rows_retried": retried,
            "ok": statuses == {"sent": expected} and not wrong_device and not retried}


# ------------------------------------------------------------------------------ main


def markdown(result: dict[str, Any]) -> str:
    enqueue_figures = result["enqueue"]
    lines = [
        f"Enqueue: `POST /api/v1/broadcasts` to {result['settings']['volunteers']:,} volunteers: "
        f"**{enqueue_figures['seconds']:.2f} s** ({enqueue_figures['rows_per_second']:,} rows/s, "
        f"{enqueue_figures['statements']} statements).",
        "",
        "| delivery | messages | seconds | messages/s | CPU ms/msg: this process | FCM server | PostgreSQL |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, key in (("bare `send_each` loop (1st)", "bare_1"), ("ours: `deliver_due`", "ours"),
                       ("bare `send_each` loop (2nd)", "bare_2"),
                       ("bare, 500 pooled connections like ours", "bare_pooled")):
        f = result["delivery"][key]
        cpu = f["cpu_ms_per_message"]
        lines.append(f"| {label} | {f['messages']:,} | {f['seconds']:.1f} | {f['per_second']:,.0f} | "
                     f"{cpu.get('driver', float('nan')):.2f} | {cpu.get('server', float('nan')):.2f} | "
                     f"{cpu.get('database', float('nan')):.3f} |")
    lines += ["", f"Ratio ours ÷ mean of the two bare runs (messages/s): **{result['ratio']:.2f}** "
              f"(target ≥ {TARGET_RATIO}); ÷ the pooled bare run: {result['ratio_to_pooled_bare']:.2f}."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volunteers", type=int, default=100_000, help="volunteers, one device each")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the instance directory")
    args = parser.parse_args()
    if not 1 <= args.volunteers <= 1_000_000:
        raise SystemExit("--volunteers must be between 1 and 1,000,000")
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-notifications-"))
    load_at_start = os.getloadavg()

    server = FcmServer()
    try:
        os.environ.update(
            DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"),
            FIREBASE_CREDENTIALS=f"static-token:{ACCESS_TOKEN}", FIREBASE_PROJECT_ID=PROJECT,
            FCM_ENDPOINT=server.base_url, PUSH_BATCH_SIZE=str(BATCH),
            # A broker nobody consumes: the wake-up after the broadcast's commit is queued in memory,
            # so the request is timed without a delivery run inside it (the embedded default's way).
            CELERY_BROKER_URL="memory://localhost/",
        )
        os.environ.pop("REDIS_URL", None)

        from notifications_seed import seed  # after the environment: create_app reads it
        from seed import recreate_database

        from app import create_app

        recreate_database(url)
        seeded = seed(args.volunteers)
        token = seeded.pop("token")
        print(f"# seeded: {json.dumps(seeded, ensure_ascii=False)}", file=sys.stderr)
        app = create_app()
        meter = CpuMeter(server.process.pid, url.rsplit("/", 1)[-1])

        queued = enqueue(app, token, seeded["city_id"], args.volunteers)
        print(f"# enqueue: {json.dumps(queued, ensure_ascii=False)}", file=sys.stderr)
        messages, last_due = messages_of(app, queued["broadcast_id"])
        tokens = [token for _, token in messages]
        fcm_url = f"{server.base_url}/v1/projects/{PROJECT}/messages:send"

        delivery: dict[str, Any] = {}
        checks: dict[str, Any] = {}
        for key in PHASES:
            server.ask("reset")
            if key == "ours":
                now = max(last_due, datetime.now(UTC)) + timedelta(seconds=1)
                delivery[key] = timed(meter, partial(ours, app, now))
                checks["database"] = database_check(app, queued["broadcast_id"], len(messages))
            else:
                delivery[key] = timed(meter, partial(bare, messages, queued["broadcast_id"], fcm_url, key,
                                                           pooled=key == "bare_pooled"))
            checks[key] = server_check(server, tokens)
            print(f"# {key}: {json.dumps(delivery[key])} check {json.dumps(checks[key])}", file=sys.stderr)
    finally:
        server.stop()

    bare_rate = statistics.mean([delivery["bare_1"]["per_second"], delivery["bare_2"]["per_second"]])
    ratio = round(delivery["ours"]["per_second"] / bare_rate, 2)
    ratio_pooled = round(delivery["ours"]["per_second"] / delivery["bare_pooled"]["per_second"], 2)
    failed = not all(check["ok"] for check in checks.values())
    met = ratio >= TARGET_RATIO and not failed
    now_utc = datetime.now(UTC)
    result = {
        "at": now_utc.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_at_start": load_at_start, "loadavg_after": os.getloadavg()},
        "settings": {"volunteers": args.volunteers, "batch": BATCH, "database": url.rsplit("/", 1)[-1],
                     "quiet_hours_held_until": last_due.isoformat()},
        "seed": seeded,
        "enqueue": queued,
        "delivery": delivery,
        "ratio": ratio,
        "ratio_to_pooled_bare": ratio_pooled,
        "checks": checks,
        "target": {"min_ratio": TARGET_RATIO, "met": met},
    }
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"notifications-{now_utc.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(markdown(result))
    print(f"\nChecks: {'all passed' if not failed else json.dumps(checks)}")
    print(f"Target: delivery within {TARGET_RATIO:g}× of the bare loop, checks passed: {'met' if met else 'NOT met'}.")
    print(f"Results: {out}")
    return finish(work_dir, args.keep, bool(failed), met, args.strict)


if __name__ == "__main__":
    sys.exit(main())
