"""Reports benchmark: the participation and coverage reports of a district of 20,000 volunteers with
1,000,000 check-ins in a month and a year of history, against the bare endpoint and a hand-written
SQL floor in the same run.

Usage (from the repository root)::

    .venv/bin/python bench/reports.py [--rounds 5 --calls 3] [--history-slots 5] [--reseed] [--no-export]

1. Seeds ``BENCH_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test_bench_reports``;
   only ``test_*`` or ``*bench*`` names are dropped, unless BENCH_ALLOW_DROP=1) with
   ``bench/reports_seed.py`` unless it already holds a finished seed of the same shape (its marker
   row); ``--reseed`` always seeds again. With ``--city-url`` it seeds nothing and reports on a
   city that ``bench/city_seed.py`` seeded (its manifest names the areas): 昆都仑区, its first
   street and community, and the city.
2. Starts gunicorn (``-w 2 --threads 1``, sync workers, as the other benchmarks) on a free loopback
   port and checks the answers first: the participation report of the district for November 2026,
   of its first sub-district (the drill-down: children are communities) and of the city for 2026
   must equal, figure for figure and child for child, what ``bench/reports_floor.py`` computes
   with plain SQL over one psycopg connection; the district's coverage report for November must
   equal, grid for grid, what ``bench/coverage_floor.py`` computes (at the API's ``as_of``).
3. Times, one request at a time, in ``--rounds`` rounds whose order rotates every round (so drift on
   the machine hits every case alike), ``--calls`` calls of each report and ``--bare-calls`` of
   the bare endpoint (``/healthz``): each participation report through HTTP and its floor, the
   district's coverage report and its floor, and its first community's participation report
   (children: grids).
   The checks of step 2 are the warm-up of the reports and floors.
4. Runs ``bench/export_memory.py --only xlsx --no-tracemalloc`` (a 100,000-row XLSX export) for its
   time and memory (skipped with ``--no-export``).

Results: ``bench/results/reports-<UTC timestamp>.json`` and a Markdown table on stdout. Targets
(issue 14): the district month report under 1 s and within 1.5× of its floor; the city year under
5 s. Exit status 2 when an answer disagreed with its floor or a request failed; with ``--strict`` 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from checkin_servers import free_port, wait_ready  # noqa: E402  (bench/ is the script directory)
from load import git_commit  # noqa: E402
from report_differences import coverage_differences, differences  # noqa: E402
from stats import machine, stop_group, timed_rounds  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_reports"
DISTRICT_MONTH_MS, CITY_YEAR_MS, FLOOR_RATIO = 1000.0, 5000.0, 1.5
MONTH = ("2026-11", date(2026, 11, 1), date(2026, 11, 30))
#: The zone the seed's areas read their periods in (bench/reports_seed.py).
ZONE = "Asia/Shanghai"
YEAR = ("2026", date(2026, 1, 1), date(2026, 12, 31))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def get(port: int, path: str, token: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def participation_path(area_id: int, period: str, value: str) -> str:
    return f"/api/v1/reports/participation?area_id={area_id}&period={period}&value={value}"


def export_figures() -> dict[str, Any]:
    """``bench/export_memory.py``'s 100,000-row XLSX, untraced: time, growth of max RSS, output."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(HERE / "export_memory.py"), "--only", "xlsx", "--no-tracemalloc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("xlsx"))
    growth, seconds, size = re.search(r"\+\s*([\d.]+) MiB\s+([\d.]+) s\s+output\s+([\d.]+) MiB", line).groups()
    peak = re.search(r"of the process: ([\d.]+) MiB", done.stdout).group(1)
    return {
        "rows": 100_000,
        "seconds": float(seconds),
        "max_rss_growth_mib": float(growth),
        "max_rss_mib": float(peak),
        "output_mib": float(size),
        "wall_s": round(time.perf_counter() - began, 1),
        "stdout": done.stdout.strip().splitlines(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--calls", type=int, default=1, help="calls of each report case per round")
    parser.add_argument("--bare-calls", type=int, default=20, help="calls of /healthz per round")
    parser.add_argument(
        "--history-slots",
        type=int,
        default=5,
        help="daily shifts (of 5) in the year before the month: 5 = the month's rate",
    )
    parser.add_argument("--reseed", action="store_true", help="seed again even if a seed of this shape is there")
    parser.add_argument(
        "--city-url",
        help="report on this database seeded by bench/city_seed.py (its 昆都仑区 and the city) instead of the own seed",
    )
    parser.add_argument("--no-export", action="store_true", help="skip the 100,000-row XLSX export")
    parser.add_argument("--keep", action="store_true", help="keep the instance dir and gunicorn log")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if not (
        1 <= args.rounds <= 20
        and 1 <= args.calls <= 50
        and 1 <= args.bare_calls <= 1000
        and 0 <= args.history_slots <= 5
    ):
        raise SystemExit("out of bounds: rounds [1, 20], calls [1, 50], bare calls [1, 1000], history slots [0, 5]")
    url = args.city_url or os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-reports-"))
    os.environ.update(
        DATABASE_URL=url,
        INSTANCE_PATH=str(work_dir / "instance"),
        ACCESS_TOKEN_MINUTES="120",
        RATELIMIT_ALLOW_PER_PROCESS="1",
    )
    os.environ.pop("REDIS_URL", None)
    load_at_start = os.getloadavg()

    import psycopg
    from coverage_floor import coverage as coverage_floor
    from reports_floor import participation
    from reports_floor_rollups import participation as participation_from_rollups
    from reports_seed import marker, seed, seeded_marker, targets
    from seed import recreate_database

    from core.config import normalise_database_url

    if args.city_url:
        from bench.city_seed import load_manifest
        from bench.city_seed import targets as city_targets

        manifest = load_manifest(args.city_url)
        seeded = {"city": True, "scale": manifest["scale"], "seeded_at": manifest["seeded_at"]}
        found = city_targets(manifest)
    else:
        seeded = {"reused": True, "marker": seeded_marker(url)}
        if args.reseed or seeded["marker"] != marker(args.history_slots):
            recreate_database(url)
            seeded = seed(args.history_slots)
        found = targets()
    print(f"# seeded: {json.dumps(seeded, ensure_ascii=False)}", file=sys.stderr)
    district, city = found["district"], found["city"]

    port = free_port()
    server_args = ["-w", "2", "--threads", "1", "-b", f"127.0.0.1:{port}", "--timeout", "900"]
    log = open(work_dir / "gunicorn.log", "ab")  # noqa: SIM115 -- closed in the finally below
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), *server_args, "--log-level", "warning", "app:create_app()"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so that stopping it takes the workers too
    )
    floor_connection = psycopg.connect(normalise_database_url(url).replace("postgresql+psycopg", "postgresql"))
    # As the endpoint (reports.replica.custom_plans): psycopg prepares a statement run five times,
    # and a generic plan made later without the arguments would make a floor slower than written.
    floor_connection.execute("SET plan_cache_mode = force_custom_plan")
    floor_connection.commit()
    failures: list[str] = []
    try:
        wait_ready(server, port)
        reports = {
            "district month": (district["area_id"], "month", MONTH, district["token"]),
            "sub-district month": (found["subdistrict_id"], "month", MONTH, district["token"]),
            "city year": (city["area_id"], "year", YEAR, city["token"]),
        }
        cases: dict[str, Callable[[], object]] = {"bare /healthz": lambda: _expect(get(port, "/healthz"), failures)}
        for label, (area_id, period, (value, first, last), token) in reports.items():
            path = participation_path(area_id, period, value)
            status, body = get(port, path, token)
            if status != 200:
                failures.append(f"{label}: {status} {body[:300]!r}")
                continue
            answer = json.loads(body)
            bounds = answer["period"]

            # Both floors at the API's as_of, so that each counts the same ended shifts.
            bound = (floor_connection, area_id, _instant(bounds["starts_at"]), _instant(bounds["ends_at"]), first, last,
                     _instant(answer["as_of"]))
            floors = {"floor": partial(participation, *bound), "roll-up floor": partial(participation_from_rollups, *bound)}
            for name, computed in floors.items():
                mismatch = differences(answer, computed())
                print(f"# {label}: API and {name} agree" if not mismatch else f"# {label} {name}: {mismatch[:3]}",
                      file=sys.stderr)
                failures.extend(f"{label} {name}: {difference}" for difference in mismatch[:10])
                cases[f"{label} {name}"] = computed
            cases[f"{label} API"] = lambda path=path, token=token: _expect(get(port, path, token), failures)
        coverage = f"/api/v1/reports/coverage?area_id={district['area_id']}&period=month&value={MONTH[0]}"

        def coverage_floor_at(as_of: datetime) -> dict[str, Any]:
            return coverage_floor(floor_connection, district["area_id"], MONTH[1], MONTH[2], ZONE, "month", as_of)

        status, body = get(port, coverage, district["token"])
        if status != 200:
            failures.append(f"district month coverage: {status} {body[:300]!r}")
        else:
            answer = json.loads(body)  # the floor counts the shifts ended and the days over at the API's as_of
            mismatch = coverage_differences(answer, coverage_floor_at(_instant(answer["as_of"])))
            print(
                "# district month coverage: API and floor agree" if not mismatch
                else f"# district month coverage: {mismatch[:3]}",
                file=sys.stderr,
            )
            failures.extend(f"district month coverage: {difference}" for difference in mismatch[:10])
        cases["district month coverage API"] = lambda: _expect(get(port, coverage, district["token"]), failures)
        cases["district month coverage floor"] = lambda: coverage_floor_at(datetime.now(UTC))
        community = participation_path(found["community_id"], "month", MONTH[0])
        cases["community month API"] = lambda: _expect(get(port, community, district["token"]), failures)
        for name, run in cases.items():  # warm-up: the checks above were the reports' and floors' own
            if not name.endswith((" API", " floor")) or "community" in name:
                run()
        load_before = os.getloadavg()
        latencies, per_round = timed_rounds(cases, args.rounds, args.calls, args.bare_calls)
    finally:
        stop_group(server)
        log.close()
        floor_connection.close()

    figures = {
        name: {
            "calls": len(values),
            "p50_ms": round(statistics.median(values), 1),
            "p99_ms": round(percentile(values, 99), 1),
            "min_ms": round(min(values), 1),
            "max_ms": round(max(values), 1),
        }
        for name, values in latencies.items()
    }
    ratios: dict[str, dict[str, dict[str, float]]] = {}
    for label in ("district month", "sub-district month", "district month coverage", "city year"):
        for floor_name in ("floor", "roll-up floor"):
            api, floor = figures.get(f"{label} API"), figures.get(f"{label} {floor_name}")
            if api and floor:
                ratios.setdefault(label, {})[floor_name] = {
                    "p50": round(api["p50_ms"] / floor["p50_ms"], 2),
                    "median_of_rounds": round(
                        statistics.median(r[f"{label} API"] / r[f"{label} {floor_name}"] for r in per_round), 2
                    ),
                }
    export = None if args.no_export else export_figures()
    month, year = figures.get("district month API"), figures.get("city year API")
    met = {
        "district_month_under_1s": bool(month and month["p99_ms"] < DISTRICT_MONTH_MS),
        # The floor doing the same work: the same figures from the same roll-ups, in plain SQL.
        "district_month_within_1_5x_floor": bool(
            ratios.get("district month", {}).get("roll-up floor", {}).get("p50", 99) <= FLOOR_RATIO
        ),
        "city_year_under_5s": bool(year and year["p99_ms"] < CITY_YEAR_MS),
    }
    now = datetime.now(UTC)
    result = {
        "at": now.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine(load_at_start, load_before),
        "settings": {
            "rounds": args.rounds,
            "calls": args.calls,
            "bare_calls": args.bare_calls,
            "history_slots": args.history_slots,
            "server": f"gunicorn {' '.join(server_args)} app:create_app()",
            "database": url.rsplit("/", 1)[-1],
            "connections": 1,
        },
        "seed": seeded,
        "figures": figures,
        "ratios_to_floor": ratios,
        "rounds": per_round,
        "export": export,
        "failures": failures,
        "targets": met,
    }
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"reports-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str))

    print(markdown(figures, ratios))
    if export:
        print(
            f"\n100,000-row XLSX export: {export['seconds']:.1f} s, max RSS +{export['max_rss_growth_mib']:.1f} MiB "
            f"(process {export['max_rss_mib']:.0f} MiB), output {export['output_mib']:.1f} MiB"
        )
    print("\nTargets: " + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in met.items()))
    for failure in failures:
        print(f"FAILED {failure}")
    print(f"Results: {out}")
    if not args.keep:
        import shutil

        shutil.rmtree(work_dir, ignore_errors=True)
    if failures:
        return 2
    return 1 if args.strict and not all(met.values()) else 0


def _expect(answer: tuple[int, bytes], failures: list[str]) -> None:
    status, body = answer
    if status != 200:
        failures.append(f"{status} {body[:200]!r}")


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def markdown(figures: dict[str, dict[str, Any]], ratios: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        "| case | calls | p50 ms | p99 ms | min ms | API ÷ roll-up floor (p50; median of rounds) "
        "| API ÷ floor over the rows (p50; median of rounds) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in figures.items():
        label = name.removesuffix(" API")
        cells = []
        for floor_name in ("roll-up floor", "floor"):
            ratio = ratios.get(label, {}).get(floor_name) if name.endswith(" API") else None
            cells.append(f"{ratio['p50']:.2f}×; {ratio['median_of_rounds']:.2f}×" if ratio else "")
        lines.append(
            f"| {name} | {f['calls']} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['min_ms']:.1f} | {' | '.join(cells)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
