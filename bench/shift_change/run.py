"""A city at shift change under Locust, with faults (issue 19); all on loopback, bounded in time.

Usage (from the repository root; ``make bench-shift-change`` installs the ``bench`` extra first)::

    make bench-shift-change ARGS="--volunteers 10000 --minutes 20 --checkin-window 600 --checkout-window 300 \\
        --restart-postgres-at 420 --stop-broker-at 900 --broker-down-seconds 60"
    .venv/bin/python bench/shift_change/run.py --volunteers 500 --minutes 3      # a quick one

1. Starts, in a temporary directory: a PostgreSQL instance of its own (port ``--pg-port``, 55432),
   a RabbitMQ node of its own (``--amqp-port``, 5673), the local FCM server; seeds the database
   (``--seed small``: ``seed_small.py``; ``--seed city``: ``bench/city_seed.py``'s 包头).
2. Starts gunicorn (repository's gunicorn.conf.py, ``--workers`` sync workers, 2) and a Celery
   worker with beat (``--celery-concurrency``, 1) against them, Redis db ``--redis-db`` (6) for the
   limiter, and nginx in front of gunicorn as in production (``proxy.py``: buffering requests and
   answers, stamping ``X-Request-Start``; ``--no-proxy``: the phones talk to gunicorn directly),
   checked before the load (``Nginx.preflight``); then ``prepare.py plan``: tonight's shifts
   starting just after the load begins, assignments through the API (their pushes go to the
   outbox), devices, consents, tokens.
3. Runs Locust headless (``locustfile.py``) for ``--minutes``: ``--volunteers`` phones spawned
   evenly over ``--checkin-window`` seconds (each checks in as it starts), track batches every
   30 s, schedule and inbox reads, check-outs over ``--checkout-window`` seconds (default the last
   fifth of the run) ending 15 s before its end; organisers open coverage views.
   Meanwhile: the outbox is sampled every 5 s; ``--restart-postgres-at S`` restarts PostgreSQL
   (``pg_ctl restart -m fast``); ``--stop-broker-at S`` stops the broker for
   ``--broker-down-seconds`` (``rabbitmqctl stop_app``, then ``start_app``).
4. Waits for the outbox to drain (``--drain-seconds``), then checks: every acknowledged check-in and
   check-out is in the database (lost = 0, or the list); no 5xx other than 503 with Retry-After (the
   designed answer while the database is away), no request unanswered; every notification of the
   run delivered to the FCM server exactly once per device. Then, with ``--cpu-seconds`` > 0, each
   endpoint alone to read CPU per request (``cpu.py``).

Results: ``bench/results/shift-change-<UTC>.json``, Locust's CSV beside it, a Markdown summary on
stdout. Exit status 2 when a check failed (lost write, 5xx, hang, push lost or doubled), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE.parent)]

import sqlalchemy as sa  # noqa: E402
from checkin_servers import free_port, wait_ready  # noqa: E402  (bench/)
from checks import OutboxSampler, read_acks, table_sizes, verify_acks, verify_pushes  # noqa: E402
from cpu import endpoint_phases, spent, tree_ticks, wait_idle  # noqa: E402
from proxy import Nginx, access_summary  # noqa: E402
from report import markdown, read_locust, status_of  # noqa: E402
from services import (  # noqa: E402
    BIN,
    FcmServer,
    Postgres,
    RabbitMq,
    app_environment,
    remove_tree,
    start_celery,
    start_gunicorn,
)

DATABASE = "shouwang_load"
SPARE = 600  # assignments beyond --volunteers, for the isolated check-in phase of the CPU figures


class Faults(threading.Thread):
    """Restarts PostgreSQL and stops the broker at their times (seconds after the load began)."""

    def __init__(self, args: argparse.Namespace, pg: Postgres, broker: RabbitMq, started: float) -> None:
        super().__init__(daemon=True)
        self.args, self.pg, self.broker, self.started = args, pg, broker, started
        self.log: list[dict[str, Any]] = []

    def at(self, seconds: float) -> None:
        time.sleep(max(0.0, self.started + seconds - time.time()))

    def run(self) -> None:
        plan = []
        if self.args.restart_postgres_at is not None:
            plan.append((self.args.restart_postgres_at, "postgres"))
        if self.args.stop_broker_at is not None:
            plan.append((self.args.stop_broker_at, "broker"))
        for when, what in sorted(plan):
            self.at(when)
            t = round(time.time() - self.started, 1)
            if what == "postgres":
                took = self.pg.restart()
                self.log.append({"fault": "postgres restart (pg_ctl restart -m fast)", "at": t,
                                 "back_at": round(time.time() - self.started, 1), "restart_s": round(took, 2)})
            else:
                self.broker.stop_app()
                self.log.append({"fault": "broker stopped (rabbitmqctl stop_app)", "at": t})
                time.sleep(self.args.broker_down_seconds)
                self.broker.start_app()
                self.log.append({"fault": "broker started (rabbitmqctl start_app)",
                                 "at": round(time.time() - self.started, 1)})


def run_locust(args: argparse.Namespace, port: int, work_path: Path, out: Path, started_at: float,
               organisers: int) -> subprocess.Popen[bytes]:
    window = max(1.0, args.checkin_window)
    # Check-outs spread over --checkout-window seconds, done 15 s before the run's end.
    checkout_window = args.checkout_window
    env = {
        **os.environ, "SHIFT_CHANGE_WORK": str(work_path), "SHIFT_CHANGE_OUT": str(out),
        "SHIFT_CHANGE_CHECKOUT_AT": str(started_at + args.minutes * 60 - checkout_window - 15),
        "SHIFT_CHANGE_CHECKOUT_WINDOW": str(checkout_window),
        "SHIFT_CHANGE_ORGANISERS": str(organisers),
        **({"SHIFT_CHANGE_PLANT": "lost-ack"} if args.plant_lost_ack else {}),
        **({"SHIFT_CHANGE_STAMP_QUEUE_START": "1"} if args.stamp_queue_start else {}),
    }
    return subprocess.Popen(
        [str(BIN / "locust"), "-f", str(HERE / "locustfile.py"), "--headless", "--host", f"http://127.0.0.1:{port}",
         "--users", str(args.volunteers + organisers), "--spawn-rate", f"{(args.volunteers + organisers) / window:.3f}",
         "--run-time", f"{int(args.minutes * 60)}s", "--stop-timeout", "5", "--csv", str(out / "locust"),
         "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"],
        env=env, stdout=(out / "locust.log").open("ab"), stderr=subprocess.STDOUT, cwd=ROOT,
    )


def drain(engine: sa.Engine, since: datetime, seconds: float) -> float:
    """Wait until nothing of the run is pending in the outbox; returns how long that took."""
    began = time.time()
    while time.time() - began < seconds:
        with engine.connect() as connection:
            pending = connection.execute(sa.text(
                "SELECT count(*) FROM notifications WHERE created_at >= :since AND push_status = 'pending'"
            ), {"since": since}).scalar()
        if not pending:
            break
        time.sleep(2)
    return round(time.time() - began, 1)


def judge(answers: dict[str, Any], acks: dict[str, Any], pushes: dict[str, Any]) -> list[str]:
    """The reasons the run failed (empty when it passed)."""
    failures = []
    for key, count in answers["counts"].items():
        status = status_of(key)
        if status == "0":
            failures.append(f"{count} × no answer (connection error or hang over 30 s): {key}")
        elif status.startswith("5") and not (status == "503" and key.endswith("retry-after")):
            failures.append(f"{count} × {key}")
    for kind, figures in acks.items():
        if figures["lost"]:
            failures.append(f"{figures['lost']} acknowledged {kind}s lost: {figures['lost_list'][:5]}")
        if figures["acknowledged_twice"]:
            failures.append(f"{figures['acknowledged_twice']} assignments acknowledged {kind} twice")
    if pushes["delivered_twice"] or pushes["not_delivered"] or pushes["unexpected"] or pushes["outbox"].get("pending"):
        failures.append(f"pushes: twice {pushes['delivered_twice']}, not delivered {pushes['not_delivered']}, "
                        f"unexpected {pushes['unexpected']}, still pending {pushes['outbox'].get('pending', 0)}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--volunteers", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=4)
    parser.add_argument("--checkin-window", type=float, default=None,
                        help="seconds over which the volunteers arrive (default: 40%% of the run, at most 600)")
    parser.add_argument("--checkout-window", type=float, default=None,
                        help="seconds over which they check out, ending 15 s before the end (default: the "
                             "last fifth of the run, at most 300)")
    parser.add_argument("--seed", choices=("small", "city"), default="small")
    parser.add_argument("--organisers", type=int, default=4, help="Locust users opening coverage views")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--celery-concurrency", type=int, default=1)
    parser.add_argument("--restart-postgres-at", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--stop-broker-at", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--broker-down-seconds", type=float, default=60)
    parser.add_argument("--drain-seconds", type=float, default=180)
    parser.add_argument("--cpu-seconds", type=float, default=8, help="per endpoint alone afterwards; 0: skip")
    parser.add_argument("--pg-port", type=int, default=55432)
    parser.add_argument("--amqp-port", type=int, default=5673)
    parser.add_argument("--redis-db", type=int, default=6)
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, data)")
    parser.add_argument("--no-proxy", action="store_true",
                        help="phones talk to gunicorn directly (the runs before nginx); default: through nginx, "
                        "which stamps X-Request-Start itself")
    parser.add_argument(
        "--stamp-queue-start", action="store_true",
        help="with --no-proxy: phones stamp X-Request-Start on each try, standing in for a balancer: requests that "
        "waited longer than REQUEST_QUEUE_TIMEOUT_SECONDS are shed (503 overloaded, retried after Retry-After)",
    )
    parser.add_argument("--plant-lost-ack", action="store_true",
                        help="self-test: one acknowledged check-in names an event never sent; the run must fail")
    args = parser.parse_args()
    if not (1 <= args.volunteers <= 100_000 and 1 <= args.minutes <= 60):
        raise SystemExit("out of bounds: --volunteers [1, 100000], --minutes [1, 60]")
    if args.stamp_queue_start and not args.no_proxy:
        raise SystemExit("--stamp-queue-start needs --no-proxy: through nginx, nginx stamps each request "
                         "once it has read it, and replaces a phone's stamp")
    if args.checkin_window is None:
        args.checkin_window = min(600.0, args.minutes * 60 * 0.4)
    if args.checkout_window is None:
        args.checkout_window = min(300.0, args.minutes * 60 * 0.2)

    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-shift-change-"))
    os.chmod(work_dir, 0o755)  # the postgres and rabbitmq users enter it
    out = work_dir / "out"
    out.mkdir()
    log = (work_dir / "servers.log").open("ab")
    pg, broker = Postgres(work_dir, args.pg_port), RabbitMq(work_dir, args.amqp_port)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    fcm: FcmServer | None = None
    nginx: Nginx | None = None
    started: float | None = None
    engine: sa.Engine | None = None
    result: dict[str, Any] = {"settings": vars(args).copy(), "at": datetime.now(UTC).isoformat(timespec="seconds")}
    failures: list[str] = []
    try:
        print(f"# run directory {work_dir}", file=sys.stderr)
        pg.start()
        pg.create_database(DATABASE)
        broker.start()
        fcm = FcmServer(log)
        env = app_environment(pg.url(DATABASE), work_dir / "instance", broker.url, fcm.base_url,
                              f"redis://127.0.0.1:6379/{args.redis_db}")
        total = args.volunteers + (SPARE if args.cpu_seconds > 0 else 0)
        subprocess.run([str(BIN / "python"), str(HERE / "prepare.py"), "seed", "--seed", args.seed,
                        "--volunteers", str(total)], env=env, check=True, stdout=log, stderr=log)
        port = free_port()
        upstream = None if args.no_proxy else work_dir / "gunicorn.sock"
        if upstream is not None:
            env["TRUSTED_PROXY_HOPS"] = "1"  # nginx appends the phone's address: per-phone login limits
        processes["gunicorn"] = start_gunicorn(port, args.workers, env, log, unix_socket=upstream)
        processes["celery"] = start_celery(args.celery_concurrency, env, log)
        wait_ready(processes["gunicorn"], port, seconds=60)
        phones_port = port  # where Locust sends the phones: gunicorn, or nginx in front of it
        if upstream is not None:
            nginx = Nginx(work_dir, free_port(), upstream)
            nginx.start(log)
            result["proxy"] = {"nginx_port": nginx.port, **nginx.preflight(port, args.workers)}
            print(f"# nginx in front: {json.dumps(result['proxy'])}", file=sys.stderr)
            phones_port = nginx.port

        # The shifts start a minute or two after the load begins (prepare.py moves them there at its end).
        since = datetime.now(UTC)
        mark = time.time()
        work_path = work_dir / "work.json"
        subprocess.run([str(BIN / "python"), str(HERE / "prepare.py"), "plan", "--volunteers", str(total),
                        "--starts-in", "60", "--token-hours", str(2 + args.minutes / 60),
                        "--out", str(work_path)], env=env, check=True, stdout=log, stderr=log)
        work = json.loads(work_path.read_text())
        spare = work["volunteers"][args.volunteers:]
        work["volunteers"] = work["volunteers"][: args.volunteers]
        work_path.write_text(json.dumps(work))
        result["prepare"] = {"seconds": round(time.time() - mark, 1), "starts_at": work["starts_at"],
                             "shifts": work["shifts"], "assigned": work["assigned"], "refused": work["refused"],
                             "timings": work["timings"]}
        print(f"# prepared: {json.dumps(result['prepare'], ensure_ascii=False)}", file=sys.stderr)

        engine = sa.create_engine(pg.url(DATABASE).replace("postgresql://", "postgresql+psycopg://"),
                                  pool_pre_ping=True)
        started = time.time()
        sampler = OutboxSampler(engine, since, started)
        sampler.start()
        roots = {"gunicorn": processes["gunicorn"].pid, "celery": processes["celery"].pid,
                 "postgres": int((pg.data / "postmaster.pid").read_text().split()[0]), "fcm": fcm.process.pid}
        if nginx is not None and nginx.process is not None:
            roots["nginx"] = nginx.process.pid
        locust = run_locust(args, phones_port, work_path, out, started,
                            min(args.organisers, len(work["organisers"])))
        roots["locust"] = locust.pid
        before = tree_ticks(roots)
        faults = Faults(args, pg, broker, started)
        faults.start()
        # Locust's own CPU is read while it lives (its ticks go with it), the last reading a second
        # before it ends; PostgreSQL's postmaster changes with a restart, so its pid is read again.
        last_locust = before["locust"]
        while locust.poll() is None:
            last_locust = tree_ticks({"locust": locust.pid})["locust"] or last_locust
            time.sleep(1)
        load_seconds = time.time() - started
        roots["postgres"] = int((pg.data / "postmaster.pid").read_text().split()[0])
        after = tree_ticks(roots)
        after["locust"] = last_locust
        cpu_load = spent(before, after)
        faults.join(timeout=args.broker_down_seconds + 120)
        result["faults"] = faults.log
        result["drain_seconds"] = drain(engine, since, args.drain_seconds)
        time.sleep(3)  # a last sample after the drain
        sampler.stop()
        result["outbox_samples"] = sampler.samples

        answers = json.loads((out / "answers.json").read_text())
        acks = verify_acks(engine, read_acks(out / "acks.jsonl"))
        pushes = verify_pushes(engine, since, fcm.stats()["delivered"])
        locust_figures = read_locust(out)
        result.update(answers=answers["counts"], first_error=answers["first_error"],
                      non_2xx=answers["non_2xx"][:2000], acks=acks, pushes=pushes,
                      locust=locust_figures, load_seconds=round(load_seconds, 1),
                      cpu_during_load_s=cpu_load)
        failures = judge(answers, acks, pushes)
        result["table_sizes"] = table_sizes(engine)
        if args.cpu_seconds > 0:
            result["idle_wait_before_cpu_phases_s"] = wait_idle(processes["gunicorn"].pid)
            result["cpu_per_endpoint"] = endpoint_phases(port, work, spare, {k: roots[k] for k in ("gunicorn",
                                                                                                  "postgres")},
                                                         args.cpu_seconds)
    finally:
        for name in ("gunicorn", "celery"):
            process = processes.get(name)
            if process is not None and process.poll() is None:
                from stats import stop_group  # bench/stats.py

                stop_group(process)
        if nginx is not None:
            nginx.stop()  # its access log is complete once it has stopped
        if fcm is not None:
            fcm.stop()
        if engine is not None:
            engine.dispose()
        broker.stop()
        pg.stop()
        log.close()

    if nginx is not None and started is not None:
        result["nginx_access"] = access_summary(nginx.folder, started)
    result["failures"] = failures
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"shift-change-{stamp}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1))
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv", "acks.jsonl"):
        if (out / name).exists():
            (results / f"shift-change-{stamp}-{name}").write_bytes((out / name).read_bytes())
    print(markdown(result))
    print(f"\nResults: {path}")
    if args.keep:
        print(f"kept {work_dir}", file=sys.stderr)
    else:
        remove_tree(work_dir)
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 2
    print("Checks passed: no acknowledged write lost, no 5xx but the designed 503s, every push once.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
