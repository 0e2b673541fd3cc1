"""Closed-loop HTTP load driver (standard library only) for the foundation benchmark.

Measures requests per second and p50/p99 latency of three endpoints on one running server:

* ``bare``   ``GET /healthz``: the bare JSON endpoint, the yardstick;
* ``me``     ``GET /api/v1/me`` with a bearer access token (obtained through ``POST /api/v1/auth/login``);
* ``locate`` ``GET /api/v1/areas/locate?lat=..&lon=..``: which of the 10,000 grids contains a point
  drawn at random (seeded) inside the lattice.

``--connections`` threads each keep one ``http.client`` connection (reopened when the server closes
it, as gunicorn's sync workers do after every response) and send the next request as soon as the last
answer arrived, for ``--seconds`` per phase. Phases run in rounds, in a rotating order (bare, me,
locate; me, locate, bare; …) so drift in the machine hits every endpoint alike. Any non-2xx answer or
socket error counts as an error, is reported, and is left out of the latency percentiles.

Before measuring, the driver checks the answers are right: the login works, ``/me`` is the seeded user,
and each probe point resolves to the grid the seed says contains it. It refuses any host that is not
loopback. Results go to ``bench/results/<timestamp>.json``; a Markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from stats import (  # bench/ is the script directory
    ENDPOINTS,
    CpuMeter,
    Phase,
    drive,
    machine,
    markdown,
    ratios,
    summarise,
)

TARGET_RATIO = 2.5
HERE = Path(__file__).resolve().parent


class Target:
    """Where and how to call each endpoint."""

    def __init__(self, base_url: str, token: str, extent: dict[str, float], seed: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise SystemExit(f"--base must be http://127.0.0.1:PORT, not {base_url!r}")
        address = socket.gethostbyname(parts.hostname)
        if not ipaddress.ip_address(address).is_loopback:
            raise SystemExit(f"refusing to load a non-loopback host: {parts.hostname} ({address})")
        self.host, self.port = address, parts.port or 80
        self.token = token
        self.extent = extent
        self.seed = seed

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request_for(self, endpoint: str, rng: random.Random) -> tuple[str, dict[str, str]]:
        headers = {"Accept": "application/json"}
        if endpoint == "bare":
            return "/healthz", headers
        if endpoint == "me":
            return "/api/v1/me", {**headers, "Authorization": f"Bearer {self.token}"}
        e = self.extent
        # Stay a hair inside the outline: a point exactly on the lattice edge is in no grid's interior.
        lon = rng.uniform(e["min_lon"] + 1e-5, e["max_lon"] - 1e-5)
        lat = rng.uniform(e["min_lat"] + 1e-5, e["max_lat"] - 1e-5)
        return "/api/v1/areas/locate?" + urlencode({"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"}), headers


def call(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes | None = None,
) -> tuple[int, bytes]:
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    if response.will_close:
        connection.close()  # http.client reopens it on the next request
    return response.status, payload


def run_phase(target: Target, endpoint: str, round_no: int, seconds: float, connections: int,
              max_requests: int, meter: CpuMeter | None = None, record: bool = True) -> Phase:
    phase = Phase(endpoint, round_no)
    per_thread_latencies: list[list[float]] = [[] for _ in range(connections)]
    per_thread_errors: list[dict[str, int]] = [{} for _ in range(connections)]
    quota = max(1, max_requests // connections)
    start = threading.Event()
    box: dict[str, float] = {}

    def worker(index: int) -> None:
        rng = random.Random(f"{target.seed}/{endpoint}/{round_no}/{index}/{record}")
        latencies, errors = per_thread_latencies[index], per_thread_errors[index]
        connection = target.connection()
        start.wait()
        deadline = box["deadline"]
        done = 0
        while done < quota:
            path, headers = target.request_for(endpoint, rng)
            began = time.perf_counter()
            if began >= deadline:
                break
            try:
                status, _ = call(connection, "GET", path, headers)
            except (OSError, http.client.HTTPException) as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                connection.close()
                done += 1
                continue
            elapsed = time.perf_counter() - began
            if 200 <= status < 300:
                latencies.append(elapsed)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1
            done += 1
        connection.close()

    return drive(phase, worker, connections, seconds, start, box, per_thread_latencies, per_thread_errors, meter)


def obtain_token(target_base: Target, seed_info: dict[str, Any]) -> tuple[str, str]:
    """Log in as the seeded organiser; fall back to the seed's minted token only if there is no login."""
    user = seed_info["user"]
    connection = target_base.connection()
    body = json.dumps({"phone": user["phone"], "password": user["password"]}).encode()
    status, payload = call(
        connection, "POST", "/api/v1/auth/login", {"Content-Type": "application/json", "Accept": "application/json"},
        body,
    )
    connection.close()
    if status in (404, 405):
        return seed_info["fallback_token"], "minted by bench/seed.py (no login endpoint)"
    if status != 200:
        raise SystemExit(f"login failed: {status} {payload[:300]!r}")
    answer = json.loads(payload)
    token = answer.get("access_token") or (answer.get("tokens") or {}).get("access_token")
    if not token:
        raise SystemExit(f"login answered without an access_token: {list(answer)}")
    return token, "POST /api/v1/auth/login"


def preflight(target: Target, seed_info: dict[str, Any]) -> None:
    """The endpoints must give the right answers before their speed means anything."""
    connection = target.connection()
    status, payload = call(connection, "GET", "/healthz", {})
    if status != 200 or json.loads(payload) != {"status": "ok"}:
        raise SystemExit(f"/healthz: {status} {payload[:200]!r}")
    path, headers = target.request_for("me", random.Random(0))
    status, payload = call(connection, "GET", path, headers)
    if status != 200:
        raise SystemExit(f"/api/v1/me: {status} {payload[:300]!r}")
    me = json.loads(payload)
    user = seed_info["user"]
    if me.get("id") != user["id"] and me.get("phone") != user["phone"]:
        raise SystemExit(f"/api/v1/me is not the seeded user: {payload[:300]!r}")
    wrong = []
    for probe in seed_info["probes"]:
        query = urlencode({"lat": probe["lat"], "lon": probe["lon"]})
        status, payload = call(connection, "GET", f"/api/v1/areas/locate?{query}", {"Accept": "application/json"})
        answer = json.loads(payload) if status == 200 else {}
        found = (answer.get("grid") or answer).get("code")
        if found != probe["code"]:
            wrong.append((probe, status, payload[:200]))
    connection.close()
    if wrong:
        raise SystemExit(f"locate gave {len(wrong)} wrong answers out of {len(seed_info['probes'])}, e.g. {wrong[0]!r}")


def git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent, capture_output=True,
                              text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=HERE.parent, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        return head + ("+dirty" if dirty else "") if head else None
    except (OSError, subprocess.SubprocessError):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description="Closed-loop load driver for bench/ (loopback only).")
    parser.add_argument("--base", required=True, help="server, e.g. http://127.0.0.1:8123")
    parser.add_argument("--seed-info", type=Path, required=True, help="JSON written by bench/seed.py")
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds per endpoint first")
    parser.add_argument("--connections", type=int, default=2, help="concurrent connections (threads)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of bare/me/locate")
    parser.add_argument("--max-requests", type=int, default=500_000, help="cap per phase")
    parser.add_argument("--seed", type=int, default=2026, help="seeds the random points")
    parser.add_argument("--results", type=Path, default=HERE / "results", help="directory for the JSON result")
    parser.add_argument("--server-note", default="", help="how the server was started, for the record")
    parser.add_argument("--server-pid", type=int, help="gunicorn master pid, to count its workers' CPU")
    parser.add_argument("--database", help="database name, to count its backends' CPU")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is not met")
    args = parser.parse_args()
    if not (0 < args.seconds <= 600 and 0 <= args.warmup <= 120 and 1 <= args.connections <= 64
            and 1 <= args.rounds <= 20):
        raise SystemExit("out of bounds: seconds (0, 600], warmup [0, 120], connections [1, 64], rounds [1, 20]")

    load_at_start = os.getloadavg()
    seed_info = json.loads(args.seed_info.read_text())
    probe = Target(args.base, "", seed_info["extent"], args.seed)
    token, token_source = obtain_token(probe, seed_info)
    target = Target(args.base, token, seed_info["extent"], args.seed)
    preflight(target, seed_info)
    print(f"# preflight ok (token: {token_source}); warm-up {args.warmup:g}s per endpoint", file=sys.stderr)

    meter = CpuMeter(args.server_pid, args.database)
    if args.warmup:
        for endpoint in ENDPOINTS:
            run_phase(target, endpoint, 0, args.warmup, args.connections, args.max_requests, record=False)
    load_before = os.getloadavg()

    phases: list[Phase] = []
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % len(ENDPOINTS)
        for endpoint in ENDPOINTS[shift:] + ENDPOINTS[:shift]:
            phase = run_phase(target, endpoint, round_no, args.seconds, args.connections, args.max_requests, meter)
            phases.append(phase)
            s = summarise(phase.latencies, phase.errors, phase.seconds, phase.cpu)
            busy = " ".join(f"{party} {cores:.2f}" for party, cores in s["cores_busy"].items())
            print(f"# round {round_no} {endpoint:<6} {s['rps']:>7.0f} req/s  p50 {s['p50_ms']:.2f} ms  "
                  f"p99 {s['p99_ms']:.2f} ms  errors {s['errors']}  cores busy: {busy}", file=sys.stderr)

    pooled = {}
    for endpoint in ENDPOINTS:
        mine = [p for p in phases if p.endpoint == endpoint]
        errors: dict[str, int] = {}
        for p in mine:
            for kind, count in p.errors.items():
                errors[kind] = errors.get(kind, 0) + count
        cpu: dict[str, float] = {}
        for p in mine:
            for party, used in p.cpu.items():
                cpu[party] = cpu.get(party, 0.0) + used
        pooled[endpoint] = summarise(
            [x for p in mine for x in p.latencies], errors, sum(p.seconds for p in mine), cpu
        )
    ratio = ratios(pooled)
    # The same ratios within each round (phases seconds apart), then their median: steadier than the
    # pooled figures when other work on the machine comes and goes.
    per_round = []
    for round_no in range(1, args.rounds + 1):
        in_round = {p.endpoint: summarise(p.latencies, p.errors, p.seconds) for p in phases if p.round == round_no}
        per_round.append(ratios(in_round))
    median_ratio = {
        endpoint: {k: round(statistics.median(r[endpoint][k] for r in per_round), 2) for k in ("p50", "p99", "rps")}
        for endpoint in ("me", "locate")
    }
    met = all(r[k] <= TARGET_RATIO for r in ratio.values() for k in ("p50", "p99", "rps")) and not any(
        pooled[e]["errors"] for e in ENDPOINTS
    )

    now = datetime.now(UTC)
    result = {
        "at": now.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(load_at_start, load_before),
        "settings": {
            "base": args.base,
            "connections": args.connections,
            "seconds_per_phase": args.seconds,
            "warmup_per_endpoint": args.warmup,
            "rounds": args.rounds,
            "seed": args.seed,
            "token": token_source,
            "server": args.server_note,
            "grids": seed_info["areas"].get("grid"),
        },
        "pooled": pooled,
        "ratios": ratio,
        "ratios_median_of_rounds": median_ratio,
        "ratios_by_round": per_round,
        "target": {"max_ratio": TARGET_RATIO, "met": met},
        "rounds": [
            {"round": p.round, "endpoint": p.endpoint, **summarise(p.latencies, p.errors, p.seconds, p.cpu)}
            for p in phases
        ],
    }
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2))

    print(markdown(pooled, ratio))
    print()
    print("Median over rounds of the ratio within each round: " + "; ".join(
        f"{e} p50 {r['p50']:.2f}×, p99 {r['p99']:.2f}×, req/s {r['rps']:.2f}×" for e, r in median_ratio.items()
    ))
    print(f"Target: me and locate within {TARGET_RATIO}× of bare on p50, p99 and req/s, no errors: "
          f"{'met' if met else 'NOT met'}.")
    print(f"Results: {out}")
    if any(pooled[e]["errors"] for e in ENDPOINTS):
        return 2
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
