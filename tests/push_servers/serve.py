"""``python -m tests.push_servers.serve <channel> [--port 0] [--latency-ms 0] [--options JSON]``: a local
push server in a process of its own (benchmarks: it does not share the sender's interpreter lock).

Prints its base URL, then serves until stdin closes or it is terminated; ``GET /stats`` gives the
totals (``delivered`` per token), ``GET /reset`` forgets what was sent and gives them too.
``--options`` are the server's keyword arguments (credentials), as JSON.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from tests.fcm_server import FakeFcm
from tests.push_servers.base import FakeServer
from tests.push_servers.honor import FakeHonor
from tests.push_servers.huawei import FakeHuawei
from tests.push_servers.oppo import FakeOppo
from tests.push_servers.vivo import FakeVivo
from tests.push_servers.xiaomi import FakeMiPush

#: The local server of each push channel (a device's ``channel``).
SERVERS: dict[str, type[FakeServer[Any]]] = {
    "fcm": FakeFcm, "hms": FakeHuawei, "honor": FakeHonor, "mi": FakeMiPush, "oppo": FakeOppo, "vivo": FakeVivo,
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("channel", choices=sorted(SERVERS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="every send/auth call answered this late")
    parser.add_argument("--options", default="{}", help="the server's keyword arguments, as JSON")
    args = parser.parse_args()
    options = {"record": False, **json.loads(args.options)}
    server = SERVERS[args.channel](args.port, latency_ms=args.latency_ms, **options).start()
    print(server.base_url, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()


if __name__ == "__main__":
    main()
