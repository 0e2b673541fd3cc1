"""firebase-admin's FCM clients side by side, without the outbox (issue 19: which one should ours use?).

Usage (from the repository root)::

    .venv/bin/python bench/fcm_clients.py --messages 2000 [--latency-ms 0] [--rounds 3]

Against the local FCM server in a process of its own (``python -m tests.push_servers.serve fcm``), the
same messages (built before the clock, as ``notifications.delivery.push.fcm_message`` builds them) go
out in batches of 500, round after round, each client in turn:

- ``send_each``: ``messaging.send_each`` on an App as firebase-admin sets it up (only the endpoint
  pointed at the local server); its requests session reads the environment (proxies, CA bundle,
  .netrc) on every call;
- ``send_each (ours)``: the same on an App set up as our provider sets it up
  (``push._point_at``: the connection pool, no urllib3 retries, the environment read once);
- ``send_each_async``: ``messaging.send_each_async`` with firebase-admin's own httpx client, on one
  event loop kept for the whole run (so httpx keeps its connections).

Prints each client's messages a second per round and their median; every round must be answered
200 for every message, or the script exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import firebase_admin  # noqa: E402
from firebase_admin import messaging  # noqa: E402

from notifications.delivery.push import PushMessage, StaticTokenCredential, _point_at, fcm_message  # noqa: E402

TOKEN, PROJECT, BATCH = "bench-fcm-access-token", "shouwang-bench", 500


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    options = json.dumps({"access_token": TOKEN, "record": False})
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.push_servers.serve", "fcm", "--latency-ms", str(args.latency_ms), "--options", options],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None and server.stdin is not None
    base_url = server.stdout.readline().strip()
    try:
        return run(base_url, args.messages, args.rounds)
    finally:
        server.stdin.close()
        server.wait(30)


def run(base_url: str, count: int, rounds: int) -> int:
    def app(name: str) -> firebase_admin.App:
        return firebase_admin.initialize_app(
            StaticTokenCredential(TOKEN), {"projectId": PROJECT, "httpTimeout": 30}, name=name
        )

    plain, ours, for_async = app("plain"), app("ours"), app("async")
    for made in (plain, for_async):
        service = messaging._get_messaging_service(made)
        service._fcm_url = f"{base_url}/v1/projects/{PROJECT}/messages:send"
    _point_at(ours, base_url, BATCH)
    messages = [
        fcm_message(PushMessage(token=f"fcm-bench-{i:07d}", title="今晚需要增援", body="12号网格今晚还差两名志愿者。",
                                data={"type": "broadcast", "notification_id": str(i)}, urgent=i % 10 == 0))
        for i in range(count)
    ]  # fmt: skip
    batches = [messages[start : start + BATCH] for start in range(0, count, BATCH)]
    loop = asyncio.new_event_loop()

    def each(on: firebase_admin.App) -> Callable[[], int]:
        return lambda: sum(messaging.send_each(batch, app=on).success_count for batch in batches)

    def each_async() -> int:
        return sum(loop.run_until_complete(messaging.send_each_async(b, app=for_async)).success_count for b in batches)

    clients: dict[str, Callable[[], int]] = {
        "send_each": each(plain), "send_each (ours)": each(ours), "send_each_async": each_async,
    }  # fmt: skip
    gc.freeze()  # as a worker does once it is ready (core.tasks.settle_heap)
    rates: dict[str, list[float]] = {name: [] for name in clients}
    ok = True
    for round_ in range(1, rounds + 1):
        for name, send in clients.items():
            started = time.perf_counter()
            answered = send()
            rate = count / (time.perf_counter() - started)
            rates[name].append(rate)
            ok = ok and answered == count
            print(f"# round {round_}: {name}: {rate:.0f} msg/s ({answered} of {count} answered 200)", file=sys.stderr)
    loop.close()
    for name, measured in rates.items():
        print(f"| {name} | {count} | {statistics.median(measured):.0f} | {' / '.join(f'{r:.0f}' for r in measured)} |")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
