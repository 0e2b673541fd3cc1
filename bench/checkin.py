"""Check-in benchmark: ``POST /api/v1/assignments/{id}/check-in`` against the bare ``GET /healthz``.

Usage (from the repository root; about 2 minutes)::

    .venv/bin/python bench/checkin.py [--rounds 8 --seconds 4 --connections 2 --assignments 30000]

1. Drops and recreates ``BENCH_DATABASE_URL`` (default
   ``postgresql://postgres@127.0.0.1:5432/test_bench_checkin``; only ``test_*`` or ``*bench*`` names,
   unless BENCH_ALLOW_DROP=1), migrates it (``flask db upgrade``) and seeds it
   (``bench/checkin_seed.py``): 25 grids, N volunteers each with one assigned place on a shift whose
   check-in window is open, and a token per volunteer.
2. Starts gunicorn (``-w 2 --threads 1``, sync workers as ``bench/run.sh``) on a free loopback port
   with the same temporary INSTANCE_PATH, so the JWT key matches; waits for ``/readyz``.
3. Warms up, then runs rounds of bare / check-in, alternating the order, with the same number of
   connections (closed loop, ``bench/load.py``'s ``call``). Every check-in is the first check-in of
   a distinct assignment with its own token, a fresh ``client_id``, a position inside the grid, the
   device time now and (unless ``--no-idempotency-key``) a fresh ``Idempotency-Key``, as a phone sends.
4. Stops gunicorn and checks the database: every check-in that answered 200 is there exactly once
   (its assignment, its client_id), and no other check-in was written.

Results: ``bench/results/checkin-<UTC timestamp>.json`` and a Markdown table on stdout. Target:
check-in within 3× of bare on p99 and requests per second (p50 reported too). Exit status 2 when
a request failed or the database check failed; with ``--strict`` 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from load import call, git_commit  # noqa: E402  (bench/ is the script directory)
from stats import CpuMeter, Phase, drive, finish, machine, summarise  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_checkin"
TARGET_RATIO = 3.0
ENDPOINTS = ("bare", "checkin")
LABELS = {"bare": "bare `GET /healthz`", "checkin": "`POST /api/v1/assignments/{id}/check-in`"}


class Work:
    """The assignments not used yet, handed out one per check-in to any thread."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self._items = iter(items)
        self._lock = threading.Lock()
        self.done: list[tuple[int, str]] = []  # (assignment_id, client_id) of check-ins answered 200
        self.exhausted = False

    def take(self) -> dict[str, Any] | None:
        with self._lock:
            item = next(self._items, None)
        if item is None:
            self.exhausted = True
        return item


def check_in_request(item: dict[str, Any], idempotency_key: bool) -> tuple[str, dict[str, str], bytes, str]:
    client_id = str(uuid.uuid4())
    body = json.dumps({
        "client_id": client_id, "lat": item["lat"], "lon": item["lon"], "accuracy_m": 8.0,
        "device_time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }).encode()
    headers = {"Authorization": f"Bearer {item['token']}", "Content-Type": "application/json",
               "Accept": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return f"/api/v1/assignments/{item['assignment_id']}/check-in", headers, body, client_id


def run_phase(port: int, endpoint: str, round_no: int, seconds: float, connections: int, work: Work,
              idempotency_key: bool, meter: CpuMeter | None = None) -> Phase:
    phase = Phase(endpoint, round_no)
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors: list[dict[str, int]] = [{} for _ in range(connections)]
    start = threading.Event()
    box: dict[str, float] = {}

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        start.wait()
        while True:
            if endpoint == "bare":
                method, path, headers, body, client_id = "GET", "/healthz", {"Accept": "application/json"}, None, ""
                item = None
            else:
                item = work.take()
                if item is None:
                    break
                path, headers, body, client_id = check_in_request(item, idempotency_key)
                method = "POST"
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
                    work.done.append((item["assignment_id"], client_id))
            else:
                errors[index][str(status)] = errors[index].get(str(status), 0) + 1
        connection.close()

    drive(phase, worker, connections, seconds, start, box, latencies, errors, meter)
    if work.exhausted and endpoint == "checkin":
        phase.errors["assignments_exhausted"] = 1
    return phase


def ratios(figures: dict[str, dict[str, Any]]) -> dict[str, float]:
    bare, checkin = figures["bare"], figures["checkin"]
    out = {
        "p50": round(checkin["p50_ms"] / bare["p50_ms"], 2),
        "p99": round(checkin["p99_ms"] / bare["p99_ms"], 2),
        "rps": round(bare["rps"] / checkin["rps"], 2) if checkin["rps"] else float("inf"),
    }
    cpu, bare_cpu = checkin.get("cpu_per_request") or {}, bare.get("cpu_per_request") or {}
    if cpu and bare_cpu.get("server_and_database_ms"):
        out["cpu_info"] = round(cpu["server_and_database_ms"] / bare_cpu["server_and_database_ms"], 2)
    return out


def markdown(pooled: dict[str, dict[str, Any]], ratio: dict[str, float]) -> str:
    lines = [
        "| endpoint | requests | errors | req/s | p50 ms | p99 ms | p50 ÷ bare | p99 ÷ bare | bare req/s ÷ req/s "
        "| server+DB CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for endpoint in ENDPOINTS:
        f = pooled[endpoint]
        r = ratio if endpoint == "checkin" else {"p50": 1.0, "p99": 1.0, "rps": 1.0, "cpu_info": 1.0}
        cpu = f["cpu_per_request"].get("server_and_database_ms")
        cpu_cell = f"{cpu:.2f} ({r.get('cpu_info', float('nan')):.2f}×)" if cpu is not None else "n/a"
        lines.append(
            f"| {LABELS[endpoint]} | {f['requests']} | {f['errors']} | {f['rps']:.0f} | {f['p50_ms']:.2f} | "
            f"{f['p99_ms']:.2f} | {r['p50']:.2f}× | {r['p99']:.2f}× | {r['rps']:.2f}× | {cpu_cell} |"
        )
    return "\n".join(lines)


def verify(url: str, done: list[tuple[int, str]], last_assignment: int) -> dict[str, Any]:
    """Every check-in answered 200 is in the database exactly once, and nothing else was checked in.

    Yesterday's seeded patrols (assignments above ``last_assignment``) are left out.
    """
    from core.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT assignment_id, check_in_client_id, presence_status FROM patrols "
                "WHERE check_in_client_id IS NOT NULL AND assignment_id <= :last"
            ), {"last": last_assignment}).all()
            idempotency_rows = connection.execute(sa.text(
                "SELECT count(*) FROM idempotency_records WHERE request_hash <> repeat('0', 64)"
            )).scalar()
    finally:
        engine.dispose()
    stored: dict[str, list[int]] = {}
    for assignment_id, client_id, _ in rows:
        stored.setdefault(client_id, []).append(assignment_id)
    answered = dict((client_id, assignment_id) for assignment_id, client_id in done)
    missing = [c for c, a in answered.items() if stored.get(c) != [a]]
    extra = [c for c in stored if c not in answered]
    per_assignment: dict[int, int] = {}
    for assignment_id, _, _ in rows:
        per_assignment[assignment_id] = per_assignment.get(assignment_id, 0) + 1
    statuses: dict[str, int] = {}
    for _, _, status in rows:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "answered_200": len(answered),
        "checked_in_rows": len(rows),
        "missing_or_wrong": len(missing),
        "written_without_200": len(extra),
        "assignments_checked_in_twice": sum(1 for n in per_assignment.values() if n > 1),
        "presence_status": statuses,
        "idempotency_records": idempotency_rows,
        "ok": not missing and not extra and len(answered) == len(done)
        and all(n == 1 for n in per_assignment.values()),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(server: subprocess.Popen, port: int) -> None:
    for _ in range(150):
        if server.poll() is not None:
            raise SystemExit("gunicorn exited early")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not become ready on port {port}")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 4)))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", 8)))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 3)))
    parser.add_argument("--connections", type=int, default=int(os.environ.get("BENCH_CONNECTIONS", 2)))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", 2)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("BENCH_THREADS", 1)))
    parser.add_argument("--assignments", type=int, default=30_000, help="distinct assignments seeded")
    parser.add_argument("--no-idempotency-key", action="store_true", help="send no Idempotency-Key header")
    parser.add_argument("--keep", action="store_true", help="keep the instance dir and gunicorn log")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    if not (0 < args.seconds <= 600 and 0 <= args.warmup <= 120 and 1 <= args.connections <= 64
            and 1 <= args.rounds <= 20 and 1 <= args.assignments <= 500_000):
        raise SystemExit("out of bounds: seconds, warmup, connections [1, 64], rounds [1, 20], assignments")
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
    work = Work(seeded.pop("work"))
    print(f"# seeded: {json.dumps(seeded, ensure_ascii=False)}", file=sys.stderr)

    port = free_port()
    server_args = ["-w", str(args.workers), "--threads", str(args.threads), "-b", f"127.0.0.1:{port}"]
    log = open(work_dir / "gunicorn.log", "ab")  # noqa: SIM115 -- closed in the finally below
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), *server_args, "--log-level", "warning", "app:create_app()"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    phases: list[Phase] = []
    try:
        wait_ready(server, port)
        # Preflight: one check-in must be verified (inside the grid) before its speed means anything.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        item = work.take()
        assert item is not None
        path, headers, body, client_id = check_in_request(item, not args.no_idempotency_key)
        status, payload = call(connection, "POST", path, headers, body)
        answer = json.loads(payload) if status == 200 else {}
        if answer.get("presence_status") != "verified":
            raise SystemExit(f"preflight check-in: {status} {payload[:400]!r}")
        work.done.append((item["assignment_id"], client_id))
        connection.close()
        print(f"# preflight ok; warm-up {args.warmup:g}s per endpoint", file=sys.stderr)

        meter = CpuMeter(server.pid, url.rsplit("/", 1)[-1])
        for endpoint in ENDPOINTS if args.warmup else ():
            run_phase(port, endpoint, 0, args.warmup, args.connections, work, not args.no_idempotency_key)
        load_before = os.getloadavg()
        for round_no in range(1, args.rounds + 1):
            order = ENDPOINTS if round_no % 2 else tuple(reversed(ENDPOINTS))
            for endpoint in order:
                phase = run_phase(port, endpoint, round_no, args.seconds, args.connections, work,
                                  not args.no_idempotency_key, meter)
                phases.append(phase)
                s = summarise(phase.latencies, phase.errors, phase.seconds, phase.cpu)
                busy = " ".join(f"{party} {cores:.2f}" for party, cores in s["cores_busy"].items())
                print(f"# round {round_no} {endpoint:<7} {s['rps']:>7.0f} req/s  p50 {s['p50_ms']:.2f} ms  "
                      f"p99 {s['p99_ms']:.2f} ms  errors {s['errors']}  cores busy: {busy}", file=sys.stderr)
    finally:
        stop(server)
        log.close()
    database_check = verify(url, work.done, args.assignments)

    pooled = {}
    for endpoint in ENDPOINTS:
        mine = [p for p in phases if p.endpoint == endpoint]
        errors: dict[str, int] = {}
        cpu: dict[str, float] = {}
        for p in mine:
            for kind, count in p.errors.items():
                errors[kind] = errors.get(kind, 0) + count
            for party, used in p.cpu.items():
                cpu[party] = cpu.get(party, 0.0) + used
        pooled[endpoint] = summarise([x for p in mine for x in p.latencies], errors,
                                     sum(p.seconds for p in mine), cpu)
    ratio = ratios(pooled)
    per_round = [ratios({p.endpoint: summarise(p.latencies, p.errors, p.seconds) for p in phases if p.round == n})
                 for n in range(1, args.rounds + 1)]
    median_ratio = {k: round(statistics.median(r[k] for r in per_round), 2) for k in ("p50", "p99", "rps")}
    failed = any(pooled[e]["errors"] for e in ENDPOINTS) or not database_check["ok"]
    met = ratio["p99"] <= TARGET_RATIO and ratio["rps"] <= TARGET_RATIO and not failed

    now = datetime.now(UTC)
    result = {
        "at": now.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(load_at_start, load_before),
        "settings": {"connections": args.connections, "seconds_per_phase": args.seconds, "warmup": args.warmup,
                     "rounds": args.rounds, "idempotency_key": not args.no_idempotency_key,
                     "server": f"gunicorn {' '.join(server_args)} app:create_app()",
                     "database": url.rsplit("/", 1)[-1]},
        "seed": seeded,
        "assignments_used": len(work.done) + sum(pooled["checkin"]["error_kinds"].values()),
        "pooled": pooled,
        "ratios": ratio,
        "ratios_median_of_rounds": median_ratio,
        "ratios_by_round": per_round,
        "database_check": database_check,
        "target": {"max_ratio": TARGET_RATIO, "on": ["p99", "rps"], "met": met},
        "rounds": [{"round": p.round, "endpoint": p.endpoint, **summarise(p.latencies, p.errors, p.seconds, p.cpu)}
                   for p in phases],
    }
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"checkin-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2))

    print(markdown(pooled, ratio))
    print()
    print(f"Median over rounds of the ratio within each round: p50 {median_ratio['p50']:.2f}×, "
          f"p99 {median_ratio['p99']:.2f}×, req/s {median_ratio['rps']:.2f}×")
    print(f"Database: {json.dumps(database_check)}")
    print(f"Assignments used: {result['assignments_used']} of {args.assignments}")
    print(f"Target: check-in within {TARGET_RATIO:g}× of bare on p99 and req/s, no errors: "
          f"{'met' if met else 'NOT met'}.")
    print(f"Results: {out}")
    if args.keep:
        print(f"kept {work_dir}", file=sys.stderr)
    return finish(work_dir, args.keep, bool(failed), met, args.strict)


if __name__ == "__main__":
    sys.exit(main())
