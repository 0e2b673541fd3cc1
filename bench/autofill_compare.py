"""Auto-fill, the current planner against a git revision's on many small random problems.

Usage (from the repository root)::

    .venv/bin/python bench/autofill_compare.py --baseline main --problems 1500

Each problem (seeded: problem ``n`` is the same every time) has up to 40 shifts over three weeks
at any quarter hour, 15 min to 4 h long, 0-3 places, required kinds (one that no volunteer has),
in three sub-districts; up to 30 volunteers in four time zones (one across the date line from the
others, one with summer time), with random availability, held shifts, minutes held in some weeks
and shifts they are already on; a minimum rest of 0, 30 or 60 minutes and a cap of 4, 8 or 15 h.
For every problem it checks that both revisions find the same candidate pairs in the same order
with the same funnels, that both flows give the same bound and fill as many places, that the
current plan keeps every rule, and it counts the identical plans (and, among them, identical
open-shift reasons). The min-cost flow only (no CP-SAT), as on a city. Exits non-zero on a
difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.autofill import load_baseline  # noqa: E402
from shifts.autofill.checks import violations  # noqa: E402
from shifts.autofill.model import (  # noqa: E402
    Problem,
    ShiftInput,
    VolunteerInput,
    find_pairs,
    local_week,
)
from shifts.autofill.solver import solve  # noqa: E402

ZONES = ("Asia/Shanghai", "Asia/Urumqi", "Europe/Berlin", "America/New_York")
FIRST = 28_900_000  # minutes since the epoch: December 2024


def random_problem(rng: random.Random) -> Problem:
    shifts = []
    for index in range(rng.randint(0, 40)):
        starts = FIRST + rng.randrange(0, 21 * 1440, 15)
        needs = tuple((kind, rng.randint(1, 2)) for kind in rng.sample(["a", "b", "c", "z"], rng.randint(0, 2)))
        shifts.append(
            ShiftInput(
                id=100 + index, starts=starts, ends=starts + rng.randint(1, 16) * 15, open_places=rng.randint(0, 3),
                grid=rng.randint(1, 4), community=rng.randint(10, 11), subdistrict=rng.randint(100, 102), needs=needs,
            )
        )
    volunteers = []
    for index in range(rng.randint(0, 30)):
        availability = tuple(sorted(
            (rng.randrange(7), start, min(start + rng.randint(60, 900), 1439))
            for start in [rng.randrange(0, 1440, 30) for _ in range(rng.randint(0, 4))]
        ))
        busy = []
        for _ in range(rng.randint(0, 3)):
            starts = FIRST + rng.randrange(0, 21 * 1440, 15)
            busy.append((starts, starts + rng.randint(4, 12) * 15))
        zone = rng.choice(ZONES)
        weeks = {week: rng.randint(0, 600) for week in rng.sample(range(739_220, 739_260), rng.randint(0, 3))}
        if shifts and rng.random() < 0.5:
            weeks[local_week(rng.choice(shifts).starts, zone)] = rng.randint(0, 480)
        live = frozenset(rng.sample([shift.id for shift in shifts], min(len(shifts), rng.randint(0, 2))))
        volunteers.append(
            VolunteerInput(
                id=1000 + index, kind=rng.choice("abc"), grid=rng.randint(1, 4), community=rng.randint(10, 11),
                subdistrict=rng.randint(100, 102), timezone=zone, availability=availability,
                busy=tuple(sorted(busy)), week_minutes=weeks, live_shifts=live,
            )
        )
    return Problem(shifts=shifts, volunteers=volunteers, min_rest=rng.choice([0, 30, 60]),
                   weekly_cap=rng.choice([240, 480, 900]))


def places_of(plan: Any) -> list[tuple[int, int, int]]:
    return [(place.shift_id, place.volunteer_id, int(place.rank)) for place in plan.places]


def open_of(plan: Any) -> list[tuple[Any, ...]]:
    return [
        (item.shift_id, item.open_places, str(item.reason), item.unmet_kinds, dataclasses.astuple(item.funnel))
        for item in plan.open_shifts
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="main", metavar="REV")
    parser.add_argument("--problems", type=int, default=1500)
    args = parser.parse_args()
    before_solver = load_baseline(args.baseline)
    before_model = sys.modules["autofill_baseline.model"]
    differences: list[str] = []
    pairs = filled = identical = same_open = 0
    for seed in range(args.problems):
        problem = random_problem(random.Random(seed))
        now, funnels = find_pairs(problem)
        then, then_funnels = before_model.find_pairs(problem)
        columns = (now.shift.tolist(), now.volunteer.tolist(), now.rank.tolist(), now.week.tolist())
        if columns != tuple(list(column) for column in (then.shift, then.volunteer, then.rank, then.week)):
            differences.append(f"problem {seed}: other candidate pairs")
        if [dataclasses.astuple(f) for f in funnels] != [dataclasses.astuple(f) for f in then_funnels]:
            differences.append(f"problem {seed}: other funnels")
        plan = solve(problem, exact_max_pairs=0)
        before = before_solver.solve(problem, exact_max_pairs=0)
        if (len(plan.places), plan.report.upper_bound) != (len(before.places), before.report.upper_bound):
            differences.append(
                f"problem {seed}: filled {len(plan.places)} of bound {plan.report.upper_bound}, "
                f"before {len(before.places)} of {before.report.upper_bound}"
            )
        broken = violations(problem, [(place.shift_id, place.volunteer_id) for place in plan.places])
        if broken:
            differences.append(f"problem {seed}: {broken[0]}")
        pairs += len(now)
        filled += len(plan.places)
        if places_of(plan) == places_of(before):
            identical += 1
            same_open += open_of(plan) == open_of(before)
    print(
        f"{args.problems} problems, {pairs:,} candidate pairs, {filled:,} places filled; "
        f"{identical} plans identical to {args.baseline}'s, {same_open} of them with identical open shifts; "
        f"{len(differences)} differences"
    )
    for line in differences[:20]:
        print(line)
    if differences:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
