"""Console overview benchmark: the overview page of a district (``/console/overview/``) with the
reports benchmark's data, side by side with the bare endpoint and with the API calls the page makes.

Usage (from the repository root; the database must already hold ``bench/reports_seed.py``'s seed,
as ``make bench-reports`` leaves it: this script never seeds, drops or writes anything but a login)::

    .venv/bin/python bench/console_overview.py [--rounds 5] [--calls 1] [--bare-calls 20] [--month 2026-11]
    # against another database, e.g. the demo city (flask prepare-demo), as its district staff:
    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/mine \\
        .venv/bin/python bench/console_overview.py --phone +8613900000002 --rounds 2

1. Finds the staff user (``--phone``, default the seed's district staff) and their area (the district)
   in ``BENCH_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test_bench_reports``),
   and, in an app context sharing the server's instance keys, opens a console login for them
   (``accounts.sessions.open_browser_session``: the ``console_token`` cookie a browser holds after
   signing in) and mints an API token (``bench/seed.py`` ``mint_token``, as ``bench/reports.py``).
2. Starts gunicorn (``-w 2 --threads 1``, sync workers, as the other benchmarks) on a free loopback
   port and checks that each page answers 200 with its figures.
3. Times, one request at a time, in ``--rounds`` rounds whose order rotates every round:
   - ``bare /healthz``: the framework's cost;
   - ``overview this month``: ``GET /console/overview/?area=<district>``, the page as it opens
     (this month so far against last month);
   - ``overview <month>``: the same with ``&month=<month>`` (default 2026-11, the seed's full
     month of a million check-ins, against October: the heaviest month there is);
   - for each overview, ``... API calls``: the calls of ``/api/v1`` that return what the page
     shows, one after the other with the same staff member — the participation report of the month
     with ``series=day``, of the month before, the coverage report (with its change against the
     month before), and three lists of "needs attention" (``/coverage-gaps?within_hours=48``,
     ``/patrols/review``, ``/reports?level=red&level=orange&status=open``, each ``limit=100``) —
     the floor: what the page costs without the console. Not ``/volunteers?status=pending``: its
     views decrypt each ID number, which the page does not (it reads the same query's rows for the
     names), and the seed's ID numbers are encrypted under the key of the instance that seeded
     them, so that call fails with any other instance (the page never decrypts).
   Latency is measured at the client over loopback: the server time of a page plus a loopback
   round trip (``/healthz`` shows how little that is).

Prints p50/p99 per case and the ratio of each page to its API calls (p50, and the median of the
rounds' ratios). Target (issue 15): the overview of the district under 1.5 s server time; exit
status 1 with ``--strict`` when missed, 2 when a request failed. Results also go to
``bench/results/console-overview-<UTC>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from checkin_servers import free_port, wait_ready  # noqa: E402  (bench/ is the script directory)
from load import git_commit  # noqa: E402
from stats import machine, timed_rounds  # noqa: E402


def _bench_reports() -> Any:
    """bench/reports.py's helpers (its name is also the app's ``reports`` package: loaded by path)."""
    spec = importlib.util.spec_from_file_location("bench_reports", HERE / "reports.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_reports = _bench_reports()
DEFAULT_DATABASE = bench_reports.DEFAULT_DATABASE
TARGET_MS = 1500.0
LIST_LIMIT = 100  # console/overview/service.py COUNT_CAP


def get(port: int, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def logins(phone: str) -> dict[str, Any]:
    """The staff user's area and time zone, a console cookie and an API token (fresh logins)."""
    import sqlalchemy as sa
    from seed import mint_token

    from accounts import sessions
    from accounts.models import User
    from app import create_app
    from core.extensions import db

    app = create_app()
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.phone == phone))
        if user is None or user.area is None:
            raise SystemExit(f"no staff user with phone {phone} in this database (seed it with make bench-reports)")
        found = {
            "area_id": user.area_id,
            "area_name": user.area.name,
            "timezone": user.area.timezone,
            "cookie": "console_token=" + sessions.open_browser_session(user, timedelta(hours=3)),
            "token": mint_token(user.id, user.role, user.area.path),
        }
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return found


def previous_month(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year - 1}-12" if number == 1 else f"{year:04d}-{number - 1:02d}"


def api_paths(area_id: int, month: str) -> list[str]:
    """The /api/v1 calls answering what the overview of ``month`` shows."""
    base = f"area_id={area_id}&period=month"
    return [
        f"/api/v1/reports/participation?{base}&value={month}&series=day",
        f"/api/v1/reports/participation?{base}&value={previous_month(month)}",
        f"/api/v1/reports/coverage?{base}&value={month}",
        f"/api/v1/coverage-gaps?area_id={area_id}&within_hours=48&limit={LIST_LIMIT}",
        f"/api/v1/patrols/review?limit={LIST_LIMIT}",
        f"/api/v1/reports?area_id={area_id}&level=red&level=orange&status=open&limit={LIST_LIMIT}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1, help="calls of each case per round")
    parser.add_argument("--bare-calls", type=int, default=20, help="calls of /healthz per round")
    parser.add_argument("--month", default="2026-11", help="the month of the second overview (YYYY-MM)")
    parser.add_argument("--phone", help="the staff user (default: the reports seed's district staff)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    if not (1 <= args.rounds <= 50 and 1 <= args.calls <= 50 and 1 <= args.bare_calls <= 1000):
        raise SystemExit("out of bounds: rounds [1, 50], calls [1, 50], bare calls [1, 1000]")
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-console-"))
    # The server and this process share the instance directory, so the keys the logins are signed
    # with are the server's.
    os.environ.update(DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), RATELIMIT_ALLOW_PER_PROCESS="1")
    os.environ.pop("REDIS_URL", None)
    from zoneinfo import ZoneInfo

    from reports_seed import STAFF_PHONES

    from reports.periods import PeriodKind, current_value

    found = logins(args.phone or STAFF_PHONES["district"])
    this_month = current_value(PeriodKind.MONTH, ZoneInfo(found["timezone"]))
    area = found["area_id"]
    page_headers = {"Cookie": found["cookie"]}
    api_headers = {"Authorization": f"Bearer {found['token']}"}
    print(f"# {found['area_name']} (area {area}); this month {this_month}, and {args.month}", file=sys.stderr)

    port = free_port()
    server_args = ["-w", "2", "--threads", "1", "-b", f"127.0.0.1:{port}", "--timeout", "900"]
    log = open(work_dir / "gunicorn.log", "ab")  # noqa: SIM115 -- closed in the finally below
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), *server_args, "--log-level", "warning", "app:create_app()"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    failures: list[str] = []

    def expect(path: str, headers: dict[str, str], marker: bytes | None = None) -> None:
        status, body = get(port, path, headers)
        if status != 200 or (marker is not None and marker not in body):
            failures.append(f"{path}: {status} {body[:200]!r}")

    def calls(paths: list[str]) -> Callable[[], None]:
        def run() -> None:
            for path in paths:
                expect(path, api_headers)
        return run

    cases: dict[str, Callable[[], None]] = {"bare /healthz": lambda: expect("/healthz", {})}
    pairs: list[tuple[str, str]] = []
    for label, month, query in (("this month", this_month, ""), (args.month, args.month, f"&month={args.month}")):
        page = f"/console/overview/?area={area}{query}"
        cases[f"overview {label}"] = lambda page=page: expect(page, page_headers, b'data-test="figures"')
        cases[f"overview {label} API calls"] = calls(api_paths(area, month))
        pairs.append((f"overview {label}", f"overview {label} API calls"))

    load_at_start = os.getloadavg()
    try:
        wait_ready(server, port)
        for run in cases.values():  # warm-up, and the answers checked (failures listed below)
            run()
        latencies, per_round = timed_rounds(cases, args.rounds, args.calls, args.bare_calls)
    finally:
        bench_reports.stop_group(server)
        log.close()

    figures = {
        name: {"calls": len(values), "p50_ms": round(statistics.median(values), 1),
               "p99_ms": round(bench_reports.percentile(values, 99), 1), "max_ms": round(max(values), 1)}
        for name, values in latencies.items()
    }
    ratios = {
        page: {"p50": round(figures[page]["p50_ms"] / figures[floor]["p50_ms"], 2),
               "median_of_rounds": round(statistics.median(r[page] / r[floor] for r in per_round), 2)}
        for page, floor in pairs if page in figures and floor in figures
    }
    met = {page: bool(page in figures and figures[page]["p99_ms"] < TARGET_MS) for page, _ in pairs}
    print("| case | calls | p50 ms | p99 ms | max ms | page ÷ its API calls (p50; median of rounds) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, f in figures.items():
        ratio = ratios.get(name)
        cell = f"{ratio['p50']:.2f}×; {ratio['median_of_rounds']:.2f}×" if ratio else ""
        print(f"| {name} | {f['calls']} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['max_ms']:.1f} | {cell} |")
    print("\nTarget (p99 under 1.5 s): " + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in met.items()))
    for failure in failures[:20]:
        print(f"FAILED {failure}")
    now = datetime.now(UTC)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"console-overview-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({
        "at": now.isoformat(timespec="seconds"), "commit": git_commit(),
        "machine": machine(load_at_start, os.getloadavg()),
        "settings": {"rounds": args.rounds, "calls": args.calls, "bare_calls": args.bare_calls,
                     "database": url.rsplit("/", 1)[-1], "area_id": area, "months": [this_month, args.month],
                     "server": f"gunicorn {' '.join(server_args)} app:create_app()"},
        "figures": figures, "ratios_to_api_calls": ratios, "rounds": per_round, "failures": failures, "targets": met,
    }, ensure_ascii=False, indent=2))
    print(f"Results: {out}")
    import shutil

    shutil.rmtree(work_dir, ignore_errors=True)
    if failures:
        return 2
    return 1 if args.strict and not all(met.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
