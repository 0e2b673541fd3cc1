"""Leaderboard benchmark: ``GET /api/v1/leaderboards`` for a district of 100,000 volunteers, side by
side with the bare endpoint and a hand-written floor in plain SQL.

Usage (from the repository root; the seed takes a few minutes, each run of calls a minute or two)::

    .venv/bin/python bench/leaderboard.py [--rounds 3 --calls 20 --bare-calls 20] [--reuse]

1. Drops and recreates ``BENCH_DATABASE_URL`` (default
   ``postgresql://postgres@127.0.0.1:5432/test_bench_leaderboard``; only ``test_*`` or ``*bench*``
   names, unless BENCH_ALLOW_DROP=1), migrates it (``flask db upgrade``) and seeds it
   (``bench/leaderboard_seed.py``: 110,000 volunteers, ~13 million service records and ~14 million
   ledger entries over fourteen months). ``--reuse`` keeps a database seeded before and only mints
   fresh tokens.
2. Starts gunicorn (``-w 2 --threads 1``, sync workers, as the other benchmarks) on a free loopback
   port and checks every board: 200, a full page of ranks in order, and the same answer (ranks,
   ids, values, ``ranked``, ``me``) as the floor.
3. Times, one request at a time over loopback, in ``--rounds`` rounds whose order rotates every
   round (``bench/stats.py``): ``bare /healthz`` (the framework's cost), and for each board (the
   district's for month and year × hours and points, its top 100, its communities, a volunteer's
   city board with their own rank) ``<board> API`` and ``<board> floor``: the same reads written
   by hand in plain SQL over the same tables with psycopg (top rows with names, the grids' ranked
   counts or sums, the caller's rank), in one transaction, no HTTP: the work's own cost. During the
   run ``--changes`` (default 4,000) grid changes wait unfolded, as writes leave them between two
   folds (pairs that cancel out, in district A's grids); both API and floor read them.
4. For comparison, times once the same year's hours summed straight from ``service_records``
   (what the endpoint would cost without ``leaderboard_totals``).

Results: ``bench/results/leaderboard-<UTC timestamp>.json`` and a Markdown table on stdout.
Target (issue 19): every district board's p99 under 50 ms. Exit status 2 when an answer was wrong
or disagreed with its floor; with ``--strict`` 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from checkin_servers import free_port, wait_ready  # noqa: E402  (bench/ is the script directory)
from load import git_commit  # noqa: E402
from stats import machine, stop_group, timed_rounds  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_leaderboard"
TARGET_MS = 50.0
#: Levels from the root down, as rewards/leaderboards/service.py LEVELS (a level's depth).
LEVELS = ["city", "district", "subdistrict", "community", "grid"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def cases(district_id: int, city_id: int) -> list[tuple[str, dict[str, Any], str]]:
    """(label, query arguments, token name)."""
    out = []
    for period, value in (("month", "2026-11"), ("year", "2026")):
        for metric in ("hours", "points"):
            out.append((f"district {period} {metric}", {"area_id": district_id, "period": period, "value": value,
                                                        "metric": metric, "limit": 20}, "staff"))
    out.append(("district year hours, limit 100",
                {"area_id": district_id, "period": "year", "value": "2026", "metric": "hours", "limit": 100}, "staff"))
    out.append(("district by community, year points",
                {"area_id": district_id, "by": "community", "period": "year", "value": "2026", "metric": "points",
                 "limit": 100}, "staff"))
    out.append(("volunteer: city year hours + own rank",
                {"area_id": city_id, "period": "year", "value": "2026", "metric": "hours", "limit": 20}, "volunteer"))
    return out


def check(answer: dict[str, Any], limit: int) -> str | None:
    items = answer.get("items") or []
    if len(items) != min(limit, answer.get("ranked", 0)) or not items:
        return f"{len(items)} items for ranked {answer.get('ranked')}"
    ranks = [row["rank"] for row in items]
    if ranks != sorted(ranks) or ranks[0] != 1:
        return f"ranks out of order: {ranks[:5]}"
    key = "hours" if answer["metric"] == "hours" else "points"
    values = [row[key] for row in items]
    if values != sorted(values, reverse=True):
        return "values out of order"
    return None


# --- the floor: the same reads by hand, plain SQL over the same tables ----------------------------


def _competition_ranks(values: list[int]) -> list[int]:
    ranks: list[int] = []
    for position, value in enumerate(values, start=1):
        ranks.append(ranks[-1] if ranks and values[position - 2] == value else position)
    return ranks


# A grid's figures: its folded row and its changes not folded yet (rewards/leaderboards/totals.py).
_GRID_FIGURES = (
    "SELECT period, grid_id, minutes, points, ranked_by_minutes, ranked_by_points FROM leaderboard_grid_totals "
    "UNION ALL SELECT period, grid_id, minutes, points, ranked_by_minutes, ranked_by_points FROM leaderboard_grid_changes"
)


def unfolded_changes(connection: Any, count: int) -> None:
    """``count`` grid changes not folded yet, as writes leave them between two folds: pairs that
    add and take back the same figures in district A's grids, so every answer stays the same."""
    connection.execute(
        "INSERT INTO leaderboard_grid_changes (period, grid_id, minutes, points, ranked_by_minutes, ranked_by_points) "
        "SELECT p.period, g.id, s.sign * 60, s.sign * 10, s.sign, s.sign "
        "FROM (SELECT id FROM areas WHERE level = 'grid' AND path LIKE '/1/2/%%' ORDER BY id LIMIT %s) g "
        "CROSS JOIN (VALUES ('2026-11'), ('2026')) p(period) CROSS JOIN (VALUES (1), (-1)) s(sign)",
        (max(1, count // 4),),
    )
    connection.commit()


def floor_board(connection: Any, args: dict[str, Any], me_id: int | None) -> dict[str, Any]:
    """What the endpoint answers, read by hand: the area, the top rows with names, ``ranked`` (or
    the areas' sums), the caller's rank. Plain psycopg, one transaction."""
    column = "minutes" if args["metric"] == "hours" else "points"
    with connection.cursor() as cursor:
        cursor.execute("SELECT path, level FROM areas WHERE id = %s", (args["area_id"],))
        path, _level = cursor.fetchone()
        prefix = path + "%"
        if args.get("by"):
            cursor.execute(
                f"SELECT a.path, sum(g.minutes), sum(g.points) FROM ({_GRID_FIGURES}) g JOIN areas a ON a.id = g.grid_id "
                "WHERE g.period = %s AND a.path LIKE %s GROUP BY a.path", (args["value"], prefix))
            depth = LEVELS.index(args["by"])
            sums: dict[int, list[int]] = defaultdict(lambda: [0, 0])
            for grid_path, minutes, points in cursor.fetchall():
                parts = grid_path.strip("/").split("/")
                if len(parts) > depth:
                    total = sums[int(parts[depth])]
                    total[0] += minutes
                    total[1] += points
            index = 0 if column == "minutes" else 1
            rows = sorted(((k, v) for k, v in sums.items() if v[index] > 0), key=lambda kv: (-kv[1][index], kv[0]))
            shown = rows[: args["limit"]]
            cursor.execute("SELECT id, name FROM areas WHERE id = ANY(%s)", ([k for k, _ in shown],))
            names = dict(cursor.fetchall())
            ranks = _competition_ranks([v[index] for _, v in shown])
            items = [{"rank": r, "area_id": k, "name": names[k], "value": v[index]} for r, (k, v) in zip(ranks, shown, strict=True)]
            connection.commit()
            return {"ranked": len(rows), "items": items, "me": None}
        cursor.execute(
            f"SELECT t.volunteer_id, v.real_name, a.name, t.{column}, coalesce(p.leaderboard_opt_out, false) "
            "FROM leaderboard_totals t JOIN volunteers v ON v.id = t.volunteer_id JOIN areas a ON a.id = t.home_grid_id "
            "LEFT JOIN reward_preferences p ON p.volunteer_id = t.volunteer_id "
            f"WHERE t.period = %s AND t.volunteer_active AND t.{column} > 0 AND a.path LIKE %s "
            f"ORDER BY t.{column} DESC, t.volunteer_id LIMIT %s", (args["value"], prefix, args["limit"]))
        top = cursor.fetchall()
        ranks = _competition_ranks([row[3] for row in top])
        items = [{"rank": r, "volunteer_id": None if row[4] else row[0], "value": row[3]} for r, row in zip(ranks, top, strict=True)]
        cursor.execute(
            f"SELECT coalesce(sum(g.ranked_by_{column}), 0) FROM ({_GRID_FIGURES}) g "
            "JOIN areas a ON a.id = g.grid_id WHERE g.period = %s AND a.path LIKE %s", (args["value"], prefix))
        ranked = int(cursor.fetchone()[0])
        me = None
        if me_id is not None:
            cursor.execute(
                f"SELECT {column}, volunteer_active FROM leaderboard_totals WHERE period = %s AND volunteer_id = %s",
                (args["value"], me_id))
            own = cursor.fetchone()
            me = {"rank": None}
            if own is not None and own[1] and own[0] > 0:
                cursor.execute(
                    f"SELECT count(*) FROM leaderboard_totals t JOIN areas a ON a.id = t.home_grid_id "
                    f"WHERE t.period = %s AND t.volunteer_active AND t.{column} > %s AND a.path LIKE %s",
                    (args["value"], own[0], prefix))
                me["rank"] = 1 + int(cursor.fetchone()[0])
    connection.commit()
    return {"ranked": ranked, "items": items, "me": me}


def agrees(answer: dict[str, Any], floor: dict[str, Any]) -> str | None:
    """The API's answer as the floor has it (values in the floor's units), or what differs."""
    minutes = answer["metric"] == "hours"
    if answer["ranked"] != floor["ranked"]:
        return f"ranked {answer['ranked']} != {floor['ranked']}"
    for row, want in zip(answer["items"], floor["items"], strict=True):
        value = row["hours"] if minutes else row["points"]
        expected = round(want["value"] / 60, 2) if minutes else want["value"]
        who = ("area_id", "area_id") if "area_id" in want else ("volunteer_id", "volunteer_id")
        if (row["rank"], row[who[0]], value) != (want["rank"], want[who[1]], expected):
            return f"row {row} != {want}"
    if (answer["me"] or {}).get("rank") != (floor["me"] or {}).get("rank"):
        return f"me {answer['me']} != {floor['me']}"
    return None


# --- the run ---------------------------------------------------------------------------------------


def get(port: int, path: str, token: str | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def raw_year_hours(url: str, district_path: str) -> float:
    """The year's hours summed from service_records directly, once (the cost the totals avoid)."""
    from core.config import normalise_database_url

    engine = sa.create_engine(normalise_database_url(url))
    try:
        with engine.connect() as connection:
            began = time.perf_counter()
            connection.execute(sa.text(
                "SELECT r.volunteer_id, sum(r.minutes) AS m FROM service_records r "
                "JOIN volunteers v ON v.id = r.volunteer_id JOIN areas a ON a.id = v.home_grid_id "
                "WHERE r.voided_at IS NULL AND r.served_on >= DATE '2026-01-01' AND r.served_on < DATE '2027-01-01' "
                "AND a.path LIKE :prefix AND v.status = 'active' GROUP BY r.volunteer_id ORDER BY m DESC LIMIT 20"
            ), {"prefix": district_path + "%"}).all()
            return (time.perf_counter() - began) * 1000
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=20, help="calls of each board (API and floor) per round")
    parser.add_argument("--bare-calls", type=int, default=20, help="calls of /healthz per round")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--changes", type=int, default=4000,
                        help="grid changes left unfolded during the run (as between two folds)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    if not (1 <= args.rounds <= 20 and 1 <= args.calls <= 500 and 1 <= args.bare_calls <= 1000
            and 0 <= args.changes <= 4000):
        raise SystemExit("out of bounds: rounds [1, 20], calls [1, 500], bare calls [1, 1000], changes [0, 4000]")
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-leaderboard-"))
    os.environ.update(DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), ACCESS_TOKEN_MINUTES="120",
                      RATELIMIT_ALLOW_PER_PROCESS="1")
    os.environ.pop("REDIS_URL", None)
    load_at_start = os.getloadavg()

    import psycopg
    from leaderboard_seed import seed, tokens_for_reuse  # after the environment: create_app reads it
    from seed import recreate_database

    from core.config import normalise_database_url

    if args.reuse:
        seeded = tokens_for_reuse()
    else:
        recreate_database(url)
        seeded = seed()
    tokens = seeded.pop("tokens")
    print(f"# seeded: {json.dumps(seeded, ensure_ascii=False)}", file=sys.stderr)
    if seeded.get("totals_sample_mismatches") or seeded.get("grid_totals_mismatches"):
        print("totals disagree with a recount: " + json.dumps(
            [seeded.get("totals_sample_mismatches"), seeded.get("grid_totals_mismatches")]), file=sys.stderr)
        return 2

    port = free_port()
    server_args = ["-w", "2", "--threads", "1", "-b", f"127.0.0.1:{port}", "--timeout", "120"]
    log = open(work_dir / "gunicorn.log", "ab")  # noqa: SIM115 -- closed in the finally below
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), *server_args, "--log-level", "warning", "app:create_app()"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    floor_connection = psycopg.connect(normalise_database_url(url).replace("postgresql+psycopg", "postgresql"))
    # As the endpoint (_custom_plans): a generic plan made after five runs would not see the prefix.
    floor_connection.execute("SET plan_cache_mode = force_custom_plan")
    floor_connection.commit()
    floor_connection.execute("DELETE FROM leaderboard_grid_changes")  # a run before may have left some
    if args.changes:
        unfolded_changes(floor_connection, args.changes)
    failures: list[str] = []
    timed: dict[str, Callable[[], object]] = {}
    answers: dict[str, dict[str, Any]] = {}
    try:
        wait_ready(server, port)
        timed["bare /healthz"] = lambda: get(port, "/healthz")
        for label, query, who in cases(seeded["district_id"], seeded["city_id"]):
            path = "/api/v1/leaderboards?" + "&".join(f"{k}={v}" for k, v in query.items())
            token = tokens[who]
            me_id = 1 if who == "volunteer" else None  # the seed's volunteer (bench/leaderboard_seed.py)
            status, body = get(port, path, token)
            answer = json.loads(body) if status == 200 else {}
            problem = (check(answer, query["limit"]) or agrees(answer, floor_board(floor_connection, query, me_id))
                       if status == 200 else f"{status} {body[:300]!r}")
            if problem:
                failures.append(f"{label}: {problem}")
                continue
            answers[label] = answer

            def call(path: str = path, token: str = token, label: str = label) -> None:
                status, body = get(port, path, token)
                if status != 200:
                    failures.append(f"{label}: {status} {body[:200]!r}")

            timed[f"{label} API"] = call
            timed[f"{label} floor"] = lambda query=query, me_id=me_id: floor_board(floor_connection, query, me_id)
        for run in timed.values():  # warm-up: one untimed call each
            run()
        load_before = os.getloadavg()
        latencies, per_round = timed_rounds(timed, args.rounds, args.calls, args.bare_calls)
    finally:
        stop_group(server)
        log.close()
        floor_connection.rollback()
        floor_connection.execute("DELETE FROM leaderboard_grid_changes")
        floor_connection.commit()
        floor_connection.close()

    figures = {
        name: {"calls": len(values), "p50_ms": round(statistics.median(values), 1),
               "p99_ms": round(percentile(values, 99), 1), "max_ms": round(max(values), 1)}
        for name, values in latencies.items()
    }
    bare = figures["bare /healthz"]
    for name, figure in figures.items():
        label = name.rsplit(" ", 1)[0]
        floor = figures.get(f"{label} floor")
        if name.endswith(" API") and floor:
            figure["p50_vs_floor"] = round(figure["p50_ms"] / floor["p50_ms"], 2)
            figure["p50_vs_bare"] = round(figure["p50_ms"] / bare["p50_ms"], 2)
            figure["ranked"] = answers[label]["ranked"]
    raw_ms = raw_year_hours(url, seeded["district_path"])
    district = [f for n, f in figures.items() if n.startswith("district ") and n.endswith(" API")]
    met = not failures and bool(district) and all(f["p99_ms"] < TARGET_MS for f in district)
    now = datetime.now(UTC)
    result = {
        "at": now.isoformat(timespec="seconds"), "commit": git_commit(),
        "machine": machine(load_at_start, load_before),
        "settings": {"rounds": args.rounds, "calls": args.calls, "bare_calls": args.bare_calls,
                     "unfolded_changes": args.changes,
                     "server": f"gunicorn {' '.join(server_args)} app:create_app()",
                     "database": url.rsplit("/", 1)[-1], "floor": "psycopg, same tables, one connection"},
        "seed": seeded, "figures": figures, "rounds": per_round, "raw_year_hours_ms": round(raw_ms, 1),
        "failures": failures, "target": {"p99_ms_below": TARGET_MS, "met": met},
    }
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"leaderboard-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str))

    print("| case | calls | p50 ms | p99 ms | max ms | API ÷ floor (p50) | API ÷ bare (p50) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, f in figures.items():
        print(f"| {name} | {f['calls']} | {f['p50_ms']} | {f['p99_ms']} | {f['max_ms']} | "
              f"{f.get('p50_vs_floor', '')} | {f.get('p50_vs_bare', '')} |")
    print()
    print(f"Load average: {result['machine']['loadavg_at_start']} at start, {result['machine']['loadavg_after']} after.")
    print(f"The same year's hours summed from service_records directly: {raw_ms:.0f} ms (once).")
    print(f"Target: every district board p99 < {TARGET_MS:g} ms: {'met' if met else 'NOT met'}.")
    for failure in failures:
        print(f"FAILED {failure}")
    print(f"Results: {out}")
    if failures:
        return 2
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
