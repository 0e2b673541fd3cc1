"""``python -m tests.push_servers.serve oppo|vivo [--port 0]``: a fake vendor server in a process of
its own (benchmarks: it does not share the sender's interpreter). Prints its base URL, then serves
until stdin closes; ``counts`` on stdin prints the messages delivered per target as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from tests.push_servers.oppo import FakeOppo
from tests.push_servers.vivo import FakeVivo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vendor", choices=["oppo", "vivo"])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = (FakeOppo if args.vendor == "oppo" else FakeVivo)(args.port, record=False).start()
    print(server.base_url, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "counts":
            print(json.dumps({"delivered": dict(server.delivered_targets()), "fetches": server.token_fetches,
                              "requests": server.send_requests}), flush=True)
        elif command == "reset":
            with server._lock:
                server.answered.clear()
                server.hits.clear()
                server.send_requests = 0
                getattr(server, "_sent_ids", set()).clear()  # OPPO's app_message_id memory: each phase sends anew
            print("ok", flush=True)
    server.stop()


if __name__ == "__main__":
    main()
