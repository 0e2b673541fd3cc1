"""Benchmark of auto-fill: the solver on synthetic cities in memory, and the endpoint on PostgreSQL.

Usage (from the repository root)::

    .venv/bin/python bench/autofill.py                    # solver: 2k and 10k, standard and staggered
    .venv/bin/python bench/autofill.py --endpoint         # ... and POST /api/v1/autofill on PostgreSQL

Solver cases (``bench/autofill_data.py``, seeded): "2k" is 2,000 shifts × 10,000 volunteers in 20
sub-districts, "10k" is 10,000 × 50,000 in 100; two weeks. "standard" shifts start at the usual
patrol times; "staggered" ones at any quarter hour, 2-4 h long, which makes clashes that the flow's
cliques miss (the repair rounds' hard case). Each case is solved ``--repeat`` times as the endpoint
would (``shifts.autofill.solver.solve``), checked rule by rule
(``shifts.autofill.checks.violations``) and for determinism, and its places filled are compared with
upper bounds on the optimum of the same model: the flow relaxation's maximum (no plan can fill more)
and, with ``--exact-seconds``, CP-SAT on the exact model (best plan found and its bound, 2 workers,
wall-clock limit).

Side by side (``--baseline REV``, e.g. ``main``): the planner as it was at git revision REV is
loaded from git into a temporary package and solves each case alternately with the current one in
the same run; the table then shows both times (wall and CPU: the machine is shared, and CPU seconds
vary less with the load), both plans' places, and whether the plans are the same. The current plan's
time is also split into its parts (``SolverReport.parts``).

Endpoint case (``--endpoint``): drops and recreates ``BENCH_DATABASE_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test_bench``; only ``test_*`` or ``*bench*`` names), writes the
2k standard problem into it (``bench/autofill_seed.py``), then times the dry run and the apply through
the Flask test client in-process (no HTTP server: the figure is the request's own cost), as staff of
the district. Results go to ``bench/results/autofill-<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ortools  # noqa: E402

from bench.autofill_data import SHAPES, generate  # noqa: E402
from shifts.autofill.checks import violations  # noqa: E402
from shifts.autofill.exact import exact_max_places  # noqa: E402
from shifts.autofill.solver import solve  # noqa: E402

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/test_bench"


def load_baseline(revision: str) -> ModuleType:
    """``shifts.autofill.solver`` as it was at ``revision``, importable beside the current one."""
    root = Path(tempfile.mkdtemp(prefix="autofill-baseline-"))
    package = root / "autofill_baseline"
    package.mkdir()
    (package / "__init__.py").write_text("")
    # The planner's modules at any revision: state, flow and checks were split out of model and
    # solver later, so a module the revision does not have is left out.
    for name in ("model", "exact", "solver", "state", "flow", "checks"):
        shown = subprocess.run(
            ["git", "show", f"{revision}:shifts/autofill/{name}.py"], cwd=ROOT, capture_output=True, text=True
        )
        if shown.returncode != 0 and name in ("state", "flow", "checks"):
            continue
        shown.check_returncode()
        (package / f"{name}.py").write_text(shown.stdout.replace("shifts.autofill.", "autofill_baseline."))
    sys.path.insert(0, str(root))
    return importlib.import_module("autofill_baseline.solver")


def timed(solver: Any, problem: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    plan = solver(problem)
    return plan, time.perf_counter() - wall, time.process_time() - cpu


def solver_case(
    name: str, variant: str, repeat: int, exact_seconds: float, baseline: ModuleType | None = None
) -> dict[str, Any]:
    shape = dataclasses.replace(SHAPES[name], staggered=variant == "staggered")
    started = time.perf_counter()
    problem = generate(shape)
    generate_s = time.perf_counter() - started
    seconds, cpu_seconds, plans = [], [], []
    before_seconds, before_cpu, before_plans = [], [], []
    for _ in range(repeat):
        if baseline is not None:  # alternately, so both see the same load
            plan, wall, cpu = timed(baseline.solve, problem)
            before_plans.append(plan)
            before_seconds.append(wall)
            before_cpu.append(cpu)
        plan, wall, cpu = timed(solve, problem)
        plans.append(plan)
        seconds.append(wall)
        cpu_seconds.append(cpu)
    plan = plans[0]
    broken = violations(problem, [(p.shift_id, p.volunteer_id) for p in plan.places])
    deterministic = all(other.places == plan.places and other.open_shifts == plan.open_shifts for other in plans)
    places = sum(shift.open_places for shift in problem.shifts)
    filled = len(plan.places)
    parts = {part: round(statistics.median(p.report.parts.get(part, 0.0) for p in plans), 3) for part in plan.report.parts}
    case: dict[str, Any] = {
        "case": f"{name} {variant}", "shifts": len(problem.shifts), "volunteers": len(problem.volunteers),
        "places": places, "pairs": plan.report.pairs, "generate_s": round(generate_s, 2),
        "seconds": [round(s, 3) for s in seconds], "median_s": round(statistics.median(seconds), 3),
        "cpu_seconds": [round(s, 3) for s in cpu_seconds], "median_cpu_s": round(statistics.median(cpu_seconds), 3),
        "parts_s": parts,
        "filled": filled, "coverage": round(filled / places, 4), "method": plan.report.method,
        "status": plan.report.status, "rounds": plan.report.rounds, "flow_bound": plan.report.upper_bound,
        "violations": len(broken), "deterministic": deterministic,
    }
    if baseline is not None:
        before = before_plans[0]
        case.update(
            before_seconds=[round(s, 3) for s in before_seconds], before_median_s=round(statistics.median(before_seconds), 3),
            before_cpu_seconds=[round(s, 3) for s in before_cpu], before_median_cpu_s=round(statistics.median(before_cpu), 3),
            before_filled=len(before.places), before_flow_bound=before.report.upper_bound,
            # As tuples: the baseline's PlannedPlace is another class, so the dataclasses never compare equal.
            same_plan=[dataclasses.astuple(place) for place in before.places]
            == [dataclasses.astuple(place) for place in plan.places],
        )
    bound = plan.report.upper_bound
    if exact_seconds > 0:
        started = time.perf_counter()
        best, cp_bound, proven = exact_max_places(problem, exact_seconds, workers=2)
        case.update(cp_best=best, cp_bound=cp_bound, cp_proven=proven, cp_s=round(time.perf_counter() - started, 1))
        bound = min(bound, cp_bound)
    case["best_bound"] = bound
    case["gap_to_bound"] = round((bound - filled) / bound, 5) if bound else 0.0
    return case


def next_monday(after_days: int = 7) -> date:
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=after_days)
    return today + timedelta(days=(7 - today.weekday()) % 7)


def endpoint_case(database_url: str, repeat: int) -> dict[str, Any]:
    from bench.autofill_seed import seed_problem
    from bench.seed import create_schema, mint_token, recreate_database, rollup_triggers

    recreate_database(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="shouwang-autofill-"))
    import sqlalchemy as sa

    from app import create_app
    from core.extensions import db
    from grids.models import Area
    from shifts.models import Assignment

    shape = dataclasses.replace(SHAPES["2k"], first_day=next_monday())
    problem = generate(shape)
    expected = solve(problem)
    app = create_app()
    timings: dict[str, Any] = {}
    with app.app_context():
        create_schema()
        started = time.perf_counter()
        ids = seed_problem(shape, problem)
        db.session.commit()
        rollup_triggers(enabled=True)  # off for the load (create_schema); the run writes as the app does
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
        timings["seed_s"] = round(time.perf_counter() - started, 1)
        district = db.session.get(Area, ids["district"])
        token = mint_token(ids["staff_user"], "staff", district.path)
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "area_id": ids["district"], "from": shape.first_day.isoformat(),
        "to": (shape.first_day + timedelta(days=shape.days - 1)).isoformat(), "weekly_cap_hours": shape.weekly_cap_hours,
    }
    dry_seconds, solver_seconds, answers = [], [], []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.post("/api/v1/autofill", json=body, headers=headers)
        dry_seconds.append(time.perf_counter() - started)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        answers.append(response.get_json())
        solver_seconds.append(answers[-1]["solver"]["seconds"])
    dry = answers[0]
    started = time.perf_counter()
    response = client.post("/api/v1/autofill", json=body | {"apply": True, "plan_token": dry["plan_token"]}, headers=headers)
    apply_s = time.perf_counter() - started
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    applied = response.get_json()
    with app.app_context():
        written = db.session.scalar(sa.select(sa.func.count()).select_from(Assignment).where(Assignment.source == "autofill"))
        db.session.remove()
        db.engine.dispose()
    return {
        "case": "endpoint 2k standard (PostgreSQL)", "shifts": dry["summary"]["shifts"],
        "volunteers": dry["summary"]["volunteers_considered"], "places": dry["summary"]["open_places"],
        "filled": dry["summary"]["planned"], "solver_alone_filled": len(expected.places),
        "same_plan_each_time": all(answer["plan_token"] == dry["plan_token"] for answer in answers),
        "dry_run_s": [round(s, 3) for s in dry_seconds], "dry_run_median_s": round(statistics.median(dry_seconds), 3),
        "solver_s": solver_seconds, "apply_s": round(apply_s, 3), "assigned": applied["summary"]["assigned"],
        "skipped": len(applied["skipped"]), "rows_written": written, **timings,
    }


def markdown(solver_cases: list[dict[str, Any]], endpoint: dict[str, Any] | None) -> str:
    lines = [
        "| case | shifts × volunteers | places | pairs | solve s (median) | filled | coverage | "
        "flow bound | CP-SAT best / bound | gap to best bound |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in solver_cases:
        cp = f"{case['cp_best']} / {case['cp_bound']}" if "cp_best" in case else "–"
        lines.append(
            f"| {case['case']} | {case['shifts']:,} × {case['volunteers']:,} | {case['places']:,} | {case['pairs']:,} | "
            f"{case['median_s']:.2f} | {case['filled']:,} | {case['coverage']:.1%} | {case['flow_bound']:,} | {cp} | "
            f"{case['gap_to_bound']:.2%} |"
        )
    lines += ["", "| case | parts of the plan's time, s (median) |", "|---|---|"]
    for case in solver_cases:
        lines.append(f"| {case['case']} | " + ", ".join(f"{part} {s:.2f}" for part, s in case["parts_s"].items()) + " |")
    if any("before_filled" in case for case in solver_cases):
        lines += [
            "",
            "| case | before: wall s / CPU s (median) | after: wall s / CPU s (median) | CPU ratio | "
            "filled before / after | flow bound before / after | same plan |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        for case in solver_cases:
            if "before_filled" in case:
                lines.append(
                    f"| {case['case']} | {case['before_median_s']:.2f} / {case['before_median_cpu_s']:.2f} | "
                    f"{case['median_s']:.2f} / {case['median_cpu_s']:.2f} | "
                    f"{case['before_median_cpu_s'] / case['median_cpu_s']:.2f}× | "
                    f"{case['before_filled']:,} / {case['filled']:,} | "
                    f"{case['before_flow_bound']:,} / {case['flow_bound']:,} | {'yes' if case['same_plan'] else 'no'} |"
                )
    if endpoint:
        lines += [
            "",
            f"Endpoint, 2k standard on PostgreSQL: dry run {endpoint['dry_run_median_s']:.2f} s median "
            f"(solver {statistics.median(endpoint['solver_s']):.2f} s of it), apply {endpoint['apply_s']:.2f} s "
            f"writing {endpoint['assigned']:,} assignments; filled {endpoint['filled']:,} "
            f"(solver alone {endpoint['solver_alone_filled']:,}).",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="2k,10k")
    parser.add_argument("--variants", default="standard,staggered")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--exact-seconds", type=float, default=120, help="CP-SAT yardstick per case (0: none)")
    parser.add_argument("--exact-shapes", default="2k", help="shapes that get the CP-SAT yardstick")
    parser.add_argument("--endpoint", action="store_true", help="also time the endpoint on PostgreSQL")
    parser.add_argument("--baseline", metavar="REV", help="also run the planner of this git revision, side by side")
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE))
    args = parser.parse_args()

    load_before = os.getloadavg()
    baseline = load_baseline(args.baseline) if args.baseline else None
    exact_shapes = set(args.exact_shapes.split(","))
    solver_cases = []
    for name in args.shapes.split(","):
        for variant in args.variants.split(","):
            exact = args.exact_seconds if name in exact_shapes else 0
            case = solver_case(name, variant, args.repeat, exact, baseline)
            print(json.dumps(case), file=sys.stderr)
            solver_cases.append(case)
    endpoint = endpoint_case(args.database, args.repeat) if args.endpoint else None
    if endpoint:
        print(json.dumps(endpoint), file=sys.stderr)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result = {
        "at": stamp, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "ortools": ortools.__version__, "load_before": load_before,
                                 "load_after": os.getloadavg()},
        "baseline": args.baseline, "solver": solver_cases, "endpoint": endpoint,
    }
    out = ROOT / "bench" / "results" / f"autofill-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(markdown(solver_cases, endpoint))
    print(f"\n(results: {out.relative_to(ROOT)})")
    if any(case["violations"] or not case["deterministic"] for case in solver_cases):
        raise SystemExit("a plan broke a rule or differed between runs")


if __name__ == "__main__":
    main()
