"""Check-in and the hottest reads against their hand-written floors and the bare endpoint (issues 4, 19).

Usage (from the repository root; about 4 minutes)::

    make bench-checkin     # = .venv/bin/python bench/checkin.py [--rounds 6 --seconds 3 --connections 2]

1. Drops and recreates ``BENCH_DATABASE_URL`` (default
   ``postgresql://postgres@127.0.0.1:5432/test_bench_checkin``; only ``test_*`` or ``*bench*`` names,
   unless BENCH_ALLOW_DROP=1), migrates it (``flask db upgrade``) and seeds it
   (``bench/checkin_seed.py``): 25 grids, N volunteers each with one assigned place on a shift whose
   check-in window is open, and a token per volunteer.
2. Starts two gunicorns with the same settings (``-w 2 --threads 1``, sync workers as ``bench/run.sh``,
   the repository's ``gunicorn.conf.py``) on free loopback ports and the same temporary INSTANCE_PATH
   (so the JWT key matches): ours (``app:create_app()``) and the hand-written floor
   (``bench/checkin_floor.py``: plain WSGI, PyJWT, psycopg on the same tables); waits for ``/readyz``.
3. Checks that both give the same answers (``/me``, ``/me/shifts``, ``/areas/locate`` equal field by
   field; a check-in through each verified), warms up, then runs rounds over the endpoints below,
   the order rotating every round, with the same number of connections (closed loop,
   ``bench/load.py``'s ``call``):

   - ``bare``: our ``GET /healthz`` (no I/O: the framework's cost);
   - ``checkin`` / ``checkin_floor``: ``POST /api/v1/assignments/{id}/check-in``, every one the first
     check-in of a distinct assignment with its own token, a fresh ``client_id``, a position inside
     the grid, the device time now and (unless ``--no-idempotency-key``) a fresh ``Idempotency-Key``;
   - ``me`` / ``me_floor``: ``GET /api/v1/me`` with a volunteer's token (1,000 volunteers in turn);
   - ``shifts`` / ``shifts_floor``: ``GET /api/v1/me/shifts``, the volunteer's upcoming places;
   - ``locate`` / ``locate_floor``: ``GET /api/v1/areas/locate`` at positions inside the 25 grids.
4. Stops both servers and checks the database: every check-in that answered 200 (ours or the
   floor's) is there exactly once (its assignment, its client_id), and no other check-in was written.

Results: ``bench/results/checkin-<UTC timestamp>.json`` and a Markdown table on stdout with each
endpoint's ratio to its floor. Target (issue 19): ours within 1.5× of the floor on p99 and requests
per second, for the check-in and each read. Exit status 2 when a request failed or the database check
failed; with ``--strict`` 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from checkin_checks import same_answers, verify  # noqa: E402  (bench/ is the script directory)
from checkin_requests import READERS, Requests, Work  # noqa: E402
from checkin_servers import free_port, start_server, stop, wait_ready  # noqa: E402
from load import call, git_commit  # noqa: E402
from stats import CpuMeter, Phase, drive, finish, machine, pooled, summarise  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_checkin"
TARGET_RATIO = 1.5
#: What is measured, each against its floor (the bare endpoint has none).
PAIRS = {"checkin": "checkin_floor", "me": "me_floor", "shifts": "shifts_floor", "locate": "locate_floor"}
ENDPOINTS = ("bare", *(name for pair in PAIRS.items() for name in pair))
LABELS = {
    "bare": "bare `GET /healthz`",
    "checkin": "`POST /api/v1/assignments/{id}/check-in`",
    "me": "`GET /api/v1/me`",
    "shifts": "`GET /api/v1/me/shifts`",
    "locate": "`GET /api/v1/areas/locate`",
}


def label(endpoint: str) -> str:
    base = endpoint.removesuffix("_floor")
    return f"floor: {LABELS[base]}" if endpoint.endswith("_floor") else LABELS[base]


def run_phase(ports: dict[str, int], endpoint: str, round_no: int, seconds: float, connections: int,
              requests: Requests, meter: CpuMeter | None = None) -> Phase:
    phase = Phase(endpoint, round_no)
    port = ports["floor" if endpoint.endswith("_floor") else "ours"]
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[dict[str, int]] = [{} for _ in range(connections)]
    start = threading.Event()
    box: dict[str, float] = {}

    def worker(index: int) -> None:
        rng = random.Random(f"{endpoint}/{round_no}/{index}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start.wait()
        while True:
            method, path, headers, body, item, client_id = requests.next(endpoint, rng)
            if not path:
                break
            began = time.perf_counter()
            if began >= box["deadline"]:
                break
            try:
                status, _ = call(connection, method, path, headers, body)
            except (OSError, http.client.HTTPException) as error:
                errors[index][type(error).__name__] = errors[index].get(type(error).__name__, 0) + 1
                connection.close()
                continue
            elapsed = time.perf_counter() - began
            if status == 200:
                latencies[index].append(elapsed)
                if item is not None:
                    requests.work.done.append((item["assignment_id"], client_id))
            else:
                errors[index][str(status)] = errors[index].get(str(status), 0) + 1
        connection.close()

    drive(phase, worker, connections, seconds, start, box, latencies, errors, meter)
    if requests.work.exhausted and endpoint.startswith("checkin"):
        phase.errors["assignments_exhausted"] = 1
    return phase


def ratios(figures: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each endpoint against the bare one, and ours against its floor (p99, throughput; CPU for information)."""
    def against(mine: dict[str, Any], yardstick: dict[str, Any]) -> dict[str, float]:
        out = {
            "p50": round(mine["p50_ms"] / yardstick["p50_ms"], 2),
            "p99": round(mine["p99_ms"] / yardstick["p99_ms"], 2),
            "rps": round(yardstick["rps"] / mine["rps"], 2) if mine["rps"] else float("inf"),
        }
        cpu, base_cpu = mine.get("cpu_per_request") or {}, yardstick.get("cpu_per_request") or {}
        if cpu.get("server_and_database_ms") and base_cpu.get("server_and_database_ms"):
            out["cpu"] = round(cpu["server_and_database_ms"] / base_cpu["server_and_database_ms"], 2)
        return out

    out: dict[str, dict[str, float]] = {}
    for endpoint in ENDPOINTS:
        if endpoint in figures and endpoint != "bare" and "bare" in figures:
            out[f"{endpoint}/bare"] = against(figures[endpoint], figures["bare"])
    for ours, floor in PAIRS.items():
        if ours in figures and floor in figures:
            out[f"{ours}/floor"] = against(figures[ours], figures[floor])
    return out


def markdown(pooled: dict[str, dict[str, Any]], ratio: dict[str, dict[str, float]]) -> str:
    lines = [
        "| endpoint | requests | errors | req/s | p50 ms | p99 ms | server+DB CPU ms/req | ÷ bare (req/s, p99) "
        "| ÷ floor: req/s | ÷ floor: p99 | ÷ floor: CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for endpoint in ENDPOINTS:
        f = pooled[endpoint]
        cpu = f["cpu_per_request"].get("server_and_database_ms")
        bare = ratio.get(f"{endpoint}/bare")
        floor = ratio.get(f"{endpoint}/floor")
        lines.append(
            f"| {label(endpoint)} | {f['requests']} | {f['errors']} | {f['rps']:.0f} | {f['p50_ms']:.2f} | "
            f"{f['p99_ms']:.2f} | {'n/a' if cpu is None else f'{cpu:.2f}'} | "
            + (f"{bare['rps']:.2f}×, {bare['p99']:.2f}× | " if bare else "1 | ")
            + (f"**{floor['rps']:.2f}×** | **{floor['p99']:.2f}×** | {floor.get('cpu', float('nan')):.2f}× |"
               if floor else " | | |")
        )
    return "\n".join(lines)


def pool(phases: list[Phase], endpoint: str) -> dict[str, Any]:
    return pooled([p for p in phases if p.endpoint == endpoint])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 3)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 6)))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 2)))
    parser.add_argument("--connections", type=int, default=int(os.environ.get("BENCH_CONNECTIONS", 2)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 2)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", 1)))
    parser.add_argument("--assignments", type=int, default=50_000, help="distinct assignments seeded")
    parser.add_argument("--only", default="", help="comma-separated endpoints (e.g. bare,checkin,checkin_floor)")
    parser.add_argument("--no-idempotency-key", action="store_true", help="send no Idempotency-Key header")
    parser.add_argument("--keep", action="store_true", help="keep the instance dir and gunicorn logs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    if not (0 < args.seconds <= 600 and 0 <= args.warmup <= 120 and 1 <= args.connections <= 64
            and 1 <= args.rounds <= 20 and READERS + 2 <= args.assignments <= 500_000):
        raise SystemExit("out of bounds: seconds, warmup, connections [1, 64], rounds [1, 20], assignments")
    endpoints = tuple(e for e in ENDPOINTS if not args.only or e in args.only.split(","))
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-checkin-"))
    # One node; the login limit is not what is measured, so no Redis for its counters.
    os.environ.update(DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), ACCESS_TOKEN_MINUTES="120",
                      RATELIMIT_ALLOW_PER_PROCESS="1")
    os.environ.pop("REDIS_URL", None)
    load_at_start = os.getloadavg()

    from checkin_seed import seed  # after the environment: create_app reads it
    from seed import recreate_database

    recreate_database(url)
    seeded = seed(args.assignments)
    items = seeded.pop("work")
    # The last READERS volunteers read; the others check in, first to last.
    requests = Requests(Work(items[:-READERS]), items[-READERS:], not args.no_idempotency_key)
    print(f"# seeded: {json.dumps(seeded, ensure_ascii=False)}", file=sys.stderr)

    ports = {"ours": free_port(), "floor": free_port()}
    settings = f"-w {args.workers} --threads {args.threads}"
    log = open(work_dir / "gunicorn.log", "ab")  # noqa: SIM115 -- closed in the finally below
    servers = {
        "ours": start_server("app:create_app()", ports["ours"], args.workers, args.threads, log),
        "floor": start_server("checkin_floor:application", ports["floor"], args.workers, args.threads, log),
    }
    phases: list[Phase] = []
    try:
        for name, server in servers.items():
            wait_ready(server, ports[name])
        same_answers(ports, requests)
        print(f"# preflight ok (same answers; a check-in verified through each); warm-up {args.warmup:g}s "
              "per endpoint", file=sys.stderr)

        database = url.rsplit("/", 1)[-1]
        meters = {name: CpuMeter(server.pid, database) for name, server in servers.items()}
        for endpoint in endpoints if args.warmup else ():
            run_phase(ports, endpoint, 0, args.warmup, args.connections, requests)
        load_before = os.getloadavg()
        for round_no in range(1, args.rounds + 1):
            shift = (round_no - 1) % len(endpoints)
            for endpoint in endpoints[shift:] + endpoints[:shift]:
                meter = meters["floor" if endpoint.endswith("_floor") else "ours"]
                phase = run_phase(ports, endpoint, round_no, args.seconds, args.connections, requests, meter)
                phases.append(phase)
                s = summarise(phase.latencies, phase.errors, phase.seconds, phase.cpu)
                busy = " ".join(f"{party} {cores:.2f}" for party, cores in s["cores_busy"].items())
                print(f"# round {round_no} {endpoint:<13} {s['rps']:>7.0f} req/s  p50 {s['p50_ms']:.2f} ms  "
                      f"p99 {s['p99_ms']:.2f} ms  errors {s['errors']}  cores busy: {busy}", file=sys.stderr)
    finally:
        for server in servers.values():
            stop(server)
        log.close()
    database_check = verify(url, requests.work.done, args.assignments)

    pooled = {endpoint: pool(phases, endpoint) for endpoint in endpoints}
    ratio = ratios(pooled)
    per_round = [ratios({p.endpoint: summarise(p.latencies, p.errors, p.seconds) for p in phases if p.round == n})
                 for n in range(1, args.rounds + 1)]
    median_ratio = {
        key: {k: round(statistics.median(r[key][k] for r in per_round), 2) for k in ("p50", "p99", "rps")}
        for key in ratio
    }
    failed = any(pooled[e]["errors"] for e in endpoints) or not database_check["ok"]
    against_floor = {key: r for key, r in ratio.items() if key.endswith("/floor")}
    met = bool(against_floor) and not failed and all(
        r["p99"] <= TARGET_RATIO and r["rps"] <= TARGET_RATIO for r in against_floor.values()
    )

    now = datetime.now(UTC)
    result = {
        "at": now.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(load_at_start, load_before),
        "settings": {"connections": args.connections, "seconds_per_phase": args.seconds, "warmup": args.warmup,
                     "rounds": args.rounds, "idempotency_key": not args.no_idempotency_key,
                     "server": f"gunicorn {settings} app:create_app() and checkin_floor:application",
                     "database": url.rsplit("/", 1)[-1], "endpoints": list(endpoints)},
        "seed": seeded,
        "assignments_used": len(requests.work.done),
        "pooled": pooled,
        "ratios": ratio,
        "ratios_median_of_rounds": median_ratio,
        "ratios_by_round": per_round,
        "database_check": database_check,
        "target": {"max_ratio_to_floor": TARGET_RATIO, "on": ["p99", "rps"], "met": met},
        "rounds": [{"round": p.round, "endpoint": p.endpoint, **summarise(p.latencies, p.errors, p.seconds, p.cpu)}
                   for p in phases],
    }
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"checkin-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2))

    print(markdown({e: pooled[e] for e in endpoints}, ratio) if endpoints == ENDPOINTS else
          "\n".join(f"{label(e)}: {pooled[e]['rps']:.0f} req/s, p99 {pooled[e]['p99_ms']:.2f} ms" for e in endpoints))
    print()
    print("Median over rounds of ours ÷ floor within each round: " + "; ".join(
        f"{key.split('/')[0]} req/s {r['rps']:.2f}×, p99 {r['p99']:.2f}×"
        for key, r in median_ratio.items() if key.endswith("/floor")))
    print(f"Database: {json.dumps(database_check)}")
    print(f"Assignments used: {result['assignments_used']} of {args.assignments - READERS}")
    print(f"Target: ours within {TARGET_RATIO:g}× of the floor on p99 and req/s, no errors: "
          f"{'met' if met else 'NOT met'}.")
    print(f"Results: {out}")
    if args.keep:
        print(f"kept {work_dir}", file=sys.stderr)
    return finish(work_dir, args.keep, bool(failed), met, args.strict)


if __name__ == "__main__":
    sys.exit(main())
