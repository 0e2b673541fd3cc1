"""Leaderboard benchmark: ``GET /api/v1/leaderboards`` for a district of 100,000 volunteers.

Usage (from the repository root; the seed takes a few minutes, each run of calls seconds)::

    .venv/bin/python bench/leaderboard.py [--calls 50 --warmup 3] [--reuse]

1. Drops and recreates ``BENCH_DATABASE_URL`` (default
   ``postgresql://postgres@127.0.0.1:5432/test_bench_leaderboard``; only ``test_*`` or ``*bench*``
   names, unless BENCH_ALLOW_DROP=1), migrates it (``flask db upgrade``) and seeds it
   (``bench/leaderboard_seed.py``: 110,000 volunteers, ~12 million service records and ~12 million
   ledger entries over fourteen months). ``--reuse`` keeps a database seeded before (it must hold
   the seed's marker row count) and only mints fresh tokens.
2. In-process, through the Flask test client (no HTTP server: the figure is the endpoint's own
   cost, its SQL included), calls the district's board for month and year × hours and points,
   ``--warmup`` times untimed and ``--calls`` times timed each; also the staff's community board
   (``by=community``) and a volunteer's city board with their own rank (``me``). Every answer must
   be 200 with a full page of ranks in order.
3. For comparison, times once the same year's hours summed straight from ``service_records``
   (what the endpoint would cost without ``leaderboard_totals``).

Results: ``bench/results/leaderboard-<UTC timestamp>.json`` and a Markdown table on stdout.
Target: p99 under 300 ms for every district board. Exit status 2 when an answer was wrong; with
``--strict`` 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from load import git_commit  # noqa: E402  (bench/ is the script directory)

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench_leaderboard"
TARGET_MS = 300.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cases(district_id: int, city_id: int) -> list[tuple[str, str, str]]:
    """(label, query, token name)."""
    out = []
    for period, value in (("month", "2026-11"), ("year", "2026")):
        for metric in ("hours", "points"):
            out.append((f"district {period} {metric}",
                        f"area_id={district_id}&period={period}&value={value}&metric={metric}&limit=20", "staff"))
    out.append(("district year hours, limit 100",
                f"area_id={district_id}&period=year&value=2026&metric=hours&limit=100", "staff"))
    out.append(("district by community, year points",
                f"area_id={district_id}&by=community&period=year&value=2026&metric=points&limit=100", "staff"))
    out.append(("volunteer: city year hours + own rank",
                f"area_id={city_id}&period=year&value=2026&metric=hours", "volunteer"))
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
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    if not (1 <= args.calls <= 1000 and 0 <= args.warmup <= 50):
        raise SystemExit("out of bounds: calls [1, 1000], warmup [0, 50]")
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE)
    work_dir = Path(tempfile.mkdtemp(prefix="shouwang-leaderboard-"))
    os.environ.update(DATABASE_URL=url, INSTANCE_PATH=str(work_dir / "instance"), ACCESS_TOKEN_MINUTES="120")
    os.environ.pop("REDIS_URL", None)

    from leaderboard_seed import seed, tokens_for_reuse  # after the environment: create_app reads it
    from seed import recreate_database

    if args.reuse:
        seeded = tokens_for_reuse()
    else:
        recreate_database(url)
        seeded = seed()
    tokens = seeded.pop("tokens")
    print(f"# seeded: {json.dumps(seeded, ensure_ascii=False)}", file=sys.stderr)
    if seeded.get("totals_sample_mismatches"):
        print("totals disagree with a recount: " + json.dumps(seeded["totals_sample_mismatches"]), file=sys.stderr)
        return 2

    from app import create_app

    app = create_app()
    client = app.test_client()
    figures, failures = [], []
    for label, query, who in cases(seeded["district_id"], seeded["city_id"]):
        headers = {"Authorization": f"Bearer {tokens[who]}"}
        limit = int(query.split("limit=")[1]) if "limit=" in query else 20
        latencies: list[float] = []
        answer: dict[str, Any] = {}
        for n in range(args.warmup + args.calls):
            began = time.perf_counter()
            response = client.get(f"/api/v1/leaderboards?{query}", headers=headers)
            elapsed = (time.perf_counter() - began) * 1000
            answer = response.get_json()
            if response.status_code != 200:
                failures.append(f"{label}: {response.status_code} {answer}")
                break
            if n >= args.warmup:
                latencies.append(elapsed)
        problem = check(answer, limit) if not failures else "failed"
        if problem:
            failures.append(f"{label}: {problem}")
        figures.append({
            "case": label, "query": query, "calls": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None,
            "ranked": answer.get("ranked"), "first": (answer.get("items") or [{}])[0], "me": answer.get("me"),
        })
        print(f"# {label:<40} p50 {figures[-1]['p50_ms']} ms  p99 {figures[-1]['p99_ms']} ms", file=sys.stderr)

    raw_ms = raw_year_hours(url, seeded["district_path"])
    district = [f for f in figures if f["case"].startswith("district ") and f["p99_ms"] is not None]
    met = not failures and all(f["p99_ms"] < TARGET_MS for f in district)
    now = datetime.now(UTC)
    result = {
        "at": now.isoformat(timespec="seconds"), "commit": git_commit(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg": os.getloadavg()},
        "settings": {"calls": args.calls, "warmup": args.warmup, "database": url.rsplit("/", 1)[-1],
                     "client": "Flask test client, in-process"},
        "seed": seeded, "figures": figures, "raw_year_hours_ms": round(raw_ms, 1), "failures": failures,
        "target": {"p99_ms_below": TARGET_MS, "met": met},
    }
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out = results / f"leaderboard-{now.strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str))

    print("| board | calls | p50 ms | p99 ms | max ms | ranked |")
    print("|---|---:|---:|---:|---:|---:|")
    for f in figures:
        print(f"| {f['case']} | {f['calls']} | {f['p50_ms']} | {f['p99_ms']} | {f['max_ms']} | {f['ranked']} |")
    print()
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
