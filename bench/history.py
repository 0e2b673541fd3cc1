"""A check-in and the schedule read with a year of history beside an empty history, in one run (issue 19).

Two databases of the same city, seeded by ``bench/city_seed.py`` at the same ``--scale``:
``bench_history_empty`` with no days of history (people, grids and the week ahead only) and
``bench_history_year`` with a year of it (shifts, presences, track points, reports, points,
notifications). Each gets tonight's shifts for the same number of volunteers
(``bench/shift_change/prepare.py plan``) and its own gunicorn (repository settings, ``--workers``
sync workers, no broker: the work a request does is what is measured). A closed-loop driver then
sends, in rounds whose order rotates, phases of

- ``checkin``: each volunteer's first check-in (``POST /api/v1/assignments/{id}/check-in``, with an
  Idempotency-Key), each assignment once;
- ``schedule``: ``GET /api/v1/me/shifts?when=upcoming`` as a random volunteer,

against each database, and prints req/s, p50 and p99 per endpoint and database, the CPU of each
server and its database backends per request, and year ÷ empty. Afterwards every check-in answered
2xx must be in its database once (exit 2 otherwise, or on any non-2xx answer).

    .venv/bin/python bench/history.py [--scale 0.2] [--volunteers 1500] [--rounds 4] [--seconds 5] [--jobs 2]
    .venv/bin/python bench/history.py --reuse        # the databases seeded by an earlier run

Loopback only; the databases are dropped and recreated unless ``--reuse``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
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
sys.path[:0] = [str(ROOT), str(HERE), str(HERE / "shift_change")]

import sqlalchemy as sa  # noqa: E402
from checkin_servers import free_port, wait_ready  # noqa: E402  (bench/)
from services import start_gunicorn  # noqa: E402  (bench/shift_change)
from stats import CpuMeter, Phase, pooled, stop_group  # noqa: E402  (bench/)

SERVER = "postgresql://postgres@127.0.0.1:5432"
DATABASES = {"empty": 1, "year": 365}  # days of history (1 is the least the seed makes)
ENDPOINTS = ("checkin", "schedule")
TABLES = ("shifts", "shift_assignments", "patrols", "track_points", "notifications", "ledger_entries")


def seed(name: str, days: int, args: argparse.Namespace, log: Path) -> None:
    url = f"{SERVER}/bench_history_{name}"
    command = [sys.executable, "-m", "bench.city_seed", "--url", url, "--recreate", "--scale", str(args.scale),
               "--days", str(days), "--track-days", str(min(days, args.track_days)), "--jobs", str(args.jobs)]
    print(f"# seeding {name}: {' '.join(command[2:])}", file=sys.stderr)
    with log.open("ab") as out:
        subprocess.run(command, cwd=ROOT, check=True, stdout=out, stderr=subprocess.STDOUT)


def environment(name: str) -> dict[str, str]:
    """The app's environment for one database: its seed's instance folder (its keys: national ids
    are encrypted with it, and tokens are signed with it)."""
    manifest = json.loads((HERE / "results" / f"city-bench_history_{name}.json").read_text())
    env = {**os.environ, "DATABASE_URL": f"{SERVER}/bench_history_{name}", "INSTANCE_PATH": manifest["instance_path"]}
    for unset in ("CELERY_BROKER_URL", "FIREBASE_CREDENTIALS", "RATELIMIT_ALLOW_PER_PROCESS"):
        env.pop(unset, None)
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/8")  # shared rate-limit counters, as gunicorn requires
    return env


def prepare(name: str, args: argparse.Namespace, work_dir: Path, log: Path) -> dict[str, Any]:
    out = work_dir / f"work-{name}.json"
    with log.open("ab") as stream:
        subprocess.run(
            [sys.executable, str(HERE / "shift_change" / "prepare.py"), "plan", "--volunteers", str(args.volunteers),
             "--starts-in", "0", "--organisers", "0", "--token-hours", "3", "--out", str(out)],
            cwd=ROOT, env=environment(name), check=True, stdout=stream, stderr=subprocess.STDOUT,
        )
    return json.loads(out.read_text())


class Driver:
    """Closed-loop phases against one server: ``connections`` threads, each with its own connection."""

    def __init__(self, port: int, work: dict[str, Any]) -> None:
        self.port = port
        self.pending = list(work["volunteers"])
        self.volunteers = list(work["volunteers"])
        self.acks: list[tuple[int, str]] = []
        self.lock = threading.Lock()

    def request(self, endpoint: str, rng: random.Random) -> tuple[str, str, bytes | None, dict[str, str], Any]:
        if endpoint == "checkin":
            with self.lock:
                item = self.pending.pop() if self.pending else None
            if item is None:
                raise LookupError("every assignment checked in: raise --volunteers")
            client_id = str(uuid.uuid4())
            body = {"client_id": client_id, "lat": item["lat"], "lon": item["lon"], "accuracy_m": 12.0,
                    "device_time": datetime.now(UTC).isoformat(timespec="milliseconds")}
            headers = {"Authorization": f"Bearer {item['token']}", "Content-Type": "application/json",
                       "Idempotency-Key": client_id}
            path = f"/api/v1/assignments/{item['assignment_id']}/check-in"
            return "POST", path, json.dumps(body).encode(), headers, (item["assignment_id"], client_id)
        item = rng.choice(self.volunteers)
        return "GET", "/api/v1/me/shifts?when=upcoming", None, {"Authorization": f"Bearer {item['token']}"}, None

    def phase(self, endpoint: str, round_no: int, seconds: float, connections: int, meter: CpuMeter) -> Phase:
        phase = Phase(endpoint, round_no)
        start = threading.Event()
        deadline = [0.0]

        def worker(index: int) -> None:
            rng = random.Random(round_no * 1000 + index)
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            start.wait()
            while time.perf_counter() < deadline[0]:
                try:
                    method, path, body, headers, ack = self.request(endpoint, rng)
                except LookupError:
                    return
                began = time.perf_counter()
                try:
                    connection.request(method, path, body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                except OSError as error:
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                    status_key = type(error).__name__
                    with self.lock:
                        phase.errors[status_key] = phase.errors.get(status_key, 0) + 1
                    continue
                elapsed = time.perf_counter() - began
                with self.lock:
                    if 200 <= status < 300:
                        phase.latencies.append(elapsed)
                        if ack is not None:
                            self.acks.append(ack)
                    else:
                        phase.errors[str(status)] = phase.errors.get(str(status), 0) + 1
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
        for thread in threads:
            thread.start()
        before = meter.snapshot()
        began = time.perf_counter()
        deadline[0] = began + seconds
        start.set()
        for thread in threads:
            thread.join(seconds + 120)
        phase.seconds = time.perf_counter() - began
        phase.cpu = meter.spent(before, meter.snapshot())
        return phase


def verify(name: str, acks: list[tuple[int, str]]) -> dict[str, Any]:
    """Every acknowledged check-in is its assignment's patrol, with the client id the phone sent."""
    engine = sa.create_engine(f"{SERVER.replace('postgresql://', 'postgresql+psycopg://')}/bench_history_{name}")
    with engine.connect() as connection:
        stored = dict(connection.execute(
            sa.text("SELECT assignment_id, check_in_client_id FROM patrols WHERE assignment_id = ANY(:ids)"),
            {"ids": [assignment for assignment, _ in acks]},
        ).tuples().all())
        sizes = {
            table: connection.execute(sa.text(f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}")).one()
            for table in TABLES
        }
        database = connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    lost = [assignment for assignment, client_id in acks if stored.get(assignment) != client_id]
    return {
        "acknowledged": len(acks), "lost": lost, "database_bytes": database,
        "tables": {table: {"rows": rows, "bytes": size} for table, (rows, size) in sizes.items()},
    }


def summary(phases: list[Phase]) -> dict[str, Any]:
    """The phases of one endpoint and database pooled (``stats.pooled``), in this report's terms.
    Requests and CPU per request count refusals too; any refusal fails the run anyway."""
    figures = pooled(phases)
    cpu = figures["cpu_per_request"]
    return {
        "requests": figures["requests"], "errors": figures["error_kinds"], "req_s": figures["rps"],
        "p50_ms": figures["p50_ms"], "p99_ms": figures["p99_ms"],
        "server_cpu_ms": cpu.get("server_ms", 0.0), "database_cpu_ms": cpu.get("database_ms", 0.0),
    }


def markdown(figures: dict[str, dict[str, dict[str, Any]]], checks: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| endpoint | history | requests | req/s | p50 ms | p99 ms | server CPU ms/req | DB CPU ms/req | year ÷ empty: req/s, p99 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for endpoint in ENDPOINTS:
        for name in DATABASES:
            row = figures[endpoint][name]
            ratio = ""
            if name == "year":
                empty = figures[endpoint]["empty"]
                ratio = f"{empty['req_s'] / row['req_s']:.2f}×, {row['p99_ms'] / empty['p99_ms']:.2f}×"
            lines.append(
                f"| {endpoint} | {name} | {row['requests']} | {row['req_s']:.0f} | {row['p50_ms']:.2f} | "
                f"{row['p99_ms']:.2f} | {row['server_cpu_ms']:.2f} | {row['database_cpu_ms']:.2f} | {ratio} |"
            )
    lines += ["", "| table | empty: rows | year: rows | empty: MB | year: MB |", "|---|---:|---:|---:|---:|"]
    for table in TABLES:
        empty, year = checks["empty"]["tables"][table], checks["year"]["tables"][table]
        lines.append(f"| {table} | {empty['rows']:,} | {year['rows']:,} | {empty['bytes'] / 2**20:,.1f} | {year['bytes'] / 2**20:,.1f} |")
    lines.append(
        f"| (database) | | | {checks['empty']['database_bytes'] / 2**20:,.0f} | {checks['year']['database_bytes'] / 2**20:,.0f} |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.2, help="city_seed's --scale for both databases")
    parser.add_argument("--track-days", type=int, default=3, help="city_seed's --track-days of the year's database")
    parser.add_argument("--jobs", type=int, default=2, help="city_seed's --jobs (roll-up rebuild processes) for both seeds")
    parser.add_argument("--volunteers", type=int, default=1500, help="tonight's assignments in each database")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="per phase")
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server")
    parser.add_argument("--reuse", action="store_true", help="keep the databases an earlier run seeded")
    parser.add_argument("--prepared", type=Path, help="the work directory of an earlier run whose tonight is still unused")
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-history-"))
    log = work_dir / "run.log"
    print(f"# work directory {work_dir}", file=sys.stderr)
    if not args.reuse:
        for name, days in DATABASES.items():
            seed(name, days, args, log)
    if args.prepared:
        works = {name: json.loads((args.prepared / f"work-{name}.json").read_text()) for name in DATABASES}
    else:
        works = {name: prepare(name, args, work_dir, log) for name in DATABASES}
    servers: dict[str, subprocess.Popen[bytes]] = {}
    drivers: dict[str, Driver] = {}
    meters: dict[str, CpuMeter] = {}
    try:
        for name in DATABASES:
            port = free_port()
            servers[name] = start_gunicorn(port, args.workers, environment(name), (work_dir / f"gunicorn-{name}.log").open("ab"))
            wait_ready(servers[name], port, seconds=60)
            drivers[name] = Driver(port, works[name])
            meters[name] = CpuMeter(servers[name].pid, f"bench_history_{name}")
        for name, driver in drivers.items():  # warm-up: each worker's connections, caches, prepared plans
            driver.phase("schedule", -1, 2.0, args.connections, meters[name])
            driver.phase("checkin", -1, 2.0, args.connections, meters[name])
        phases: dict[tuple[str, str], list[Phase]] = {}
        order = [(endpoint, name) for endpoint in ENDPOINTS for name in DATABASES]
        for round_no in range(args.rounds):
            turn = order[round_no % len(order):] + order[: round_no % len(order)]
            for endpoint, name in turn:
                phase = drivers[name].phase(endpoint, round_no, args.seconds, args.connections, meters[name])
                phases.setdefault((endpoint, name), []).append(phase)
            print(f"# round {round_no + 1} of {args.rounds} done", file=sys.stderr)
    finally:
        for server in servers.values():
            stop_group(server)
    figures = {endpoint: {name: summary(phases[(endpoint, name)]) for name in DATABASES} for endpoint in ENDPOINTS}
    checks = {name: verify(name, drivers[name].acks) for name in DATABASES}
    result = {"at": datetime.now(UTC).isoformat(), "args": vars(args), "loadavg": os.getloadavg(),
              "figures": figures, "checks": checks}
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / f"history-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    print(markdown(figures, checks))
    print(f"\n(results: {path.relative_to(ROOT)}; load average {os.getloadavg()})")
    failed = any(row["errors"] for rows in figures.values() for row in rows.values())
    failed |= any(check["lost"] for check in checks.values())
    if failed:
        print("FAILED: non-2xx answers or acknowledged check-ins missing (see the JSON)", file=sys.stderr)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
