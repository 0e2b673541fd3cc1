"""Where a request's time goes: cProfile and SQL timing of one endpoint, in-process, no HTTP server.

Runs ``--requests`` requests through the Flask test client against a database seeded by
``bench/seed.py`` (same DATABASE_URL and INSTANCE_PATH as the seed, so the JWT key matches) and
prints: mean wall time per request, SQL statements per request with their share of the time (from
SQLAlchemy cursor events, so driver round trips included), pool checkouts, and the top functions.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test_bench INSTANCE_PATH=/tmp/x \\
        .venv/bin/python bench/profile_request.py --seed-info /tmp/x/seed.json --endpoint me
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed-info", type=Path, required=True)
    parser.add_argument("--endpoint", choices=("bare", "me", "locate"), required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", choices=("tottime", "cumulative"))
    args = parser.parse_args()

    from app import create_app

    seed_info = json.loads(args.seed_info.read_text())
    app = create_app()
    client = app.test_client()
    user = seed_info["user"]
    login = client.post("/api/v1/auth/login", json={"phone": user["phone"], "password": user["password"]})
    token = login.get_json()["access_token"] if login.status_code == 200 else seed_info["fallback_token"]
    extent = seed_info["extent"]
    rng = random.Random(7)

    def one() -> int:
        if args.endpoint == "bare":
            return client.get("/healthz").status_code
        if args.endpoint == "me":
            return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code
        lon = rng.uniform(extent["min_lon"] + 1e-5, extent["max_lon"] - 1e-5)
        lat = rng.uniform(extent["min_lat"] + 1e-5, extent["max_lat"] - 1e-5)
        return client.get(f"/api/v1/areas/locate?lat={lat:.6f}&lon={lon:.6f}").status_code

    profile(app, one, args.endpoint, args.requests, args.top, args.sort)


def profile(
    app: Any, one: Callable[[], int], name: str, n: int, top: int = 30, sort: str = "tottime", cpu: bool = False
) -> None:
    """Warm up, time ``n`` calls of ``one`` plain, then ``n`` more under cProfile, and print the report.

    ``cpu``: this process's CPU time instead of the wall clock, in the timings and the profile, so
    waits on the database and other processes' use of the cores (a shared machine) drop out.
    """
    clock = time.process_time if cpu else time.perf_counter
    from core.extensions import db

    statements: Counter[str] = Counter()
    sql_seconds: dict[str, float] = defaultdict(float)
    checkouts = [0]
    with app.app_context():
        engine = db.engine

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        key = " ".join(statement.split())[:110]
        statements[key] += 1
        sql_seconds[key] += time.perf_counter() - conn.info.pop("bench_started")

    @sa.event.listens_for(engine, "checkout")
    def _checkout(*_: Any) -> None:
        checkouts[0] += 1

    # Warm every cache the way a long-running worker would have (for locate: the prepared polygons).
    for _ in range(min(n, 500)):
        one()
    statements.clear()
    sql_seconds.clear()
    checkouts[0] = 0

    began = clock()
    statuses = Counter(one() for _ in range(n))
    plain = clock() - began
    statements.clear()
    sql_seconds.clear()
    checkouts[0] = 0

    profiler = cProfile.Profile(clock)
    began = clock()
    profiler.enable()
    statuses.update(one() for _ in range(n))
    profiler.disable()
    wall = clock() - began

    print(f"endpoint {name}: {n} requests twice, statuses {dict(statuses)}")
    print(f"  {'CPU' if cpu else 'wall'} per request: {plain / n * 1000:.3f} ms plain, "
          f"{wall / n * 1000:.3f} ms under cProfile")
    print(f"  pool checkouts per request: {checkouts[0] / n:.2f}")
    total_sql = sum(sql_seconds.values())
    print("  (SQL figures below are from the profiled pass)")
    print(f"  SQL per request: {sum(statements.values()) / n:.2f} statements, {total_sql / n * 1000:.3f} ms")
    for key, count in statements.most_common():
        print(f"    {count / n:5.2f}×  {sql_seconds[key] / count * 1000:7.3f} ms  {key}")
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), (_cc, _nc, own, _cum, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[package_of(filename)] += own
    profiled_total = sum(by_package.values())
    print("  own time by package (share of the profiled pass):")
    for package, own in sorted(by_package.items(), key=lambda item: -item[1])[:14]:
        print(f"    {own / profiled_total * 100:5.1f}%  {package}")
    if top:
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats(sort).print_stats(top)
        print(stream.getvalue())



def package_of(filename: str) -> str:
    """site-packages/<name>/…, our own top-level package, the standard library, or built-ins."""
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    if path.is_relative_to(ROOT):
        return "shouwang:" + path.relative_to(ROOT).parts[0].removesuffix(".py")
    if filename.startswith("<") or filename == "~":
        return "built-in (C calls: socket waits, json, …)"
    return "python stdlib"


if __name__ == "__main__":
    main()
