"""Auto-fill on CP-SAT: the exact model, for problems small enough (e.g. a community for a month)
and as the benchmark's yardstick.

Every rule is a constraint: at most ``open_places`` per shift; for each volunteer, at most one of
the shifts whose span plus the minimum rest contains any shift's start (these cliques cover every
clash, since clashes form an interval graph); minutes per local week under the room left; a
required kind counts up to its need. Solved lexicographically: the most places, then the least
``plan_cost`` with at least that many. One worker, a fixed seed and a deterministic time limit make
the answer the same for the same input.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from ortools.sat.python import cp_model

from shifts.autofill.model import BALANCE_STEP, KIND_BONUS, RANK_COST, Pairs, Problem, find_pairs


class ExactModel:
    """The exact model in CP-SAT: every rule as a constraint, both objectives available."""

    def __init__(self, problem: Problem, pairs: Pairs) -> None:
        model = self.model = cp_model.CpModel()
        # Python ints from the numpy columns: CP-SAT and dict keys want them, and the model is small.
        shift_of, volunteer_of, week_of = pairs.shift.tolist(), pairs.volunteer.tolist(), pairs.week.tolist()
        x = self.x = [model.new_bool_var(f"x{p}") for p in range(len(pairs))]
        by_shift: dict[int, list[int]] = defaultdict(list)
        by_volunteer: dict[int, list[int]] = defaultdict(list)
        for p in range(len(pairs)):
            by_shift[shift_of[p]].append(p)
            by_volunteer[volunteer_of[p]].append(p)
        for s, members in by_shift.items():
            if len(members) > problem.shifts[s].open_places:
                model.add(cp_model.LinearExpr.sum([x[p] for p in members]) <= problem.shifts[s].open_places)
        balance: list[tuple[int, cp_model.IntVar]] = []
        for v, members in by_volunteer.items():
            volunteer = problem.volunteers[v]
            for clique in clash_cliques(problem, shift_of, members):
                model.add_at_most_one(x[p] for p in clique)
            weeks: dict[int, list[int]] = defaultdict(list)
            for p in members:
                weeks[week_of[p]].append(p)
            for week, in_week in weeks.items():
                room = problem.weekly_cap - volunteer.week_minutes.get(week, 0)
                lengths = [problem.shifts[shift_of[p]].ends - problem.shifts[shift_of[p]].starts for p in in_week]
                if sum(lengths) > room:
                    model.add(cp_model.LinearExpr.weighted_sum([x[p] for p in in_week], lengths) <= room)
            steps = [model.new_bool_var(f"b{v}_{j}") for j in range(len(members))]
            model.add(cp_model.LinearExpr.sum(steps) == cp_model.LinearExpr.sum([x[p] for p in members]))
            balance += [(BALANCE_STEP * (len(volunteer.busy) + j), step) for j, step in enumerate(steps)]
        counted = []
        for s, members in by_shift.items():
            for kind, need in problem.shifts[s].needs:
                of_kind = [x[p] for p in members if problem.volunteers[volunteer_of[p]].kind == kind]
                if need > 0 and of_kind:
                    met = model.new_int_var(0, min(need, len(of_kind)), f"k{s}_{kind}")
                    model.add(met <= cp_model.LinearExpr.sum(of_kind))
                    counted.append(met)
        self.filled = cp_model.LinearExpr.sum(x)
        self.cost = (
            cp_model.LinearExpr.weighted_sum(x, [RANK_COST[rank] for rank in pairs.rank.tolist()])
            - KIND_BONUS * cp_model.LinearExpr.sum(counted)
            + cp_model.LinearExpr.weighted_sum([step for _, step in balance], [cost for cost, _ in balance])
        )

    def hint(self, chosen: Sequence[int]) -> None:
        self.model.clear_hints()
        chosen_set = set(chosen)
        for p, var in enumerate(self.x):
            self.model.add_hint(var, p in chosen_set)

    def solver(self, limit: float, workers: int, *, deterministic: bool) -> cp_model.CpSolver:
        """A solver stopped by ``limit`` deterministic work units, or wall-clock seconds."""
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = 0
        if deterministic:
            solver.parameters.max_deterministic_time = limit
        else:
            solver.parameters.max_time_in_seconds = limit
        return solver

    def chosen(self, solver: cp_model.CpSolver) -> list[int]:
        return [p for p, var in enumerate(self.x) if solver.boolean_value(var)]


def solve_exact(problem: Problem, pairs: Pairs, hint: list[int], budget: float) -> tuple[list[int], int] | None:
    """(chosen pairs, upper bound on places) from CP-SAT, or None if it found nothing in time.

    Lexicographic: the most places first, then the least cost with at least that many places.
    """
    exact = ExactModel(problem, pairs)
    exact.hint(hint)
    exact.model.maximize(exact.filled)
    solver = exact.solver(budget / 2, 1, deterministic=True)
    status = solver.solve(exact.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    best = round(solver.objective_value)
    bound = best if status == cp_model.OPTIMAL else int(solver.best_objective_bound + 1e-6)
    first = exact.chosen(solver)
    exact.model.add(exact.filled >= best)
    exact.hint(first)
    exact.model.minimize(exact.cost)
    status = solver.solve(exact.model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return exact.chosen(solver), bound
    return first, bound


def exact_max_places(problem: Problem, seconds: float, workers: int = 2) -> tuple[int, int, bool]:
    """The benchmark's yardstick: CP-SAT on the exact model, places only, wall-clock limit.

    Returns (best places found, upper bound, proven optimal).
    """
    pairs, _ = find_pairs(problem)
    exact = ExactModel(problem, pairs)
    exact.model.maximize(exact.filled)
    solver = exact.solver(seconds, workers, deterministic=False)
    status = solver.solve(exact.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return 0, len(pairs), False
    best = round(solver.objective_value)
    return best, int(solver.best_objective_bound + 1e-6), status == cp_model.OPTIMAL


def clash_cliques(problem: Problem, shift_of: Sequence[int], members: list[int]) -> list[tuple[int, ...]]:
    """For each start, the shifts whose span plus rest contains it: these cliques cover every clash
    (clashes form an interval graph). Only the maximal ones with two or more members. ``shift_of``
    maps a pair to its shift's index."""
    spans = sorted((problem.shifts[shift_of[p]].starts, problem.shifts[shift_of[p]].ends, p) for p in members)
    cliques: list[tuple[int, ...]] = []
    active: list[tuple[int, int]] = []  # (end + rest, pair) of the spans containing this start
    grew = False  # spans were added since the last clique was kept
    for start, end, p in spans:
        still = [(reach, q) for reach, q in active if reach > start]
        if len(still) < len(active) and grew:
            if len(active) > 1:
                cliques.append(tuple(q for _, q in active))
            grew = False
        active = [*still, (end + problem.min_rest, p)]
        grew = True
    if grew and len(active) > 1:
        cliques.append(tuple(q for _, q in active))
    return cliques
