"""Auto-fill, the optimisation: OR-Tools min-cost flow for the bulk, CP-SAT for small problems.

Objective, in strict order: most places filled; then required kinds met; then volunteers who live
nearer (home grid, then community, then sub-district); then balanced load (each further shift of a
volunteer costs more than the last: a convex cost that spreads shifts across volunteers).

**Min-cost flow** (any size). source → shift (capacity: open places) → [kind node: the first
``need`` units of a required kind earn ``KIND_BONUS``] → clique → (volunteer, week) → volunteer →
sink. A clique is a run of the volunteer's candidate shifts in one week that pairwise clash (overlap
or too little rest; clashes form an interval graph, so a run sorted by start is a clique) and gets
capacity 1. The (volunteer, week) node's capacity is the most shifts whose shortest lengths fit
under the weekly cap. These are necessary conditions, so the flow is a relaxation and its maximum is
an upper bound on the places any plan can fill (``upper_bound``). Clashes between cliques and a cap
exceeded by long shifts are then repaired: each volunteer keeps their flow shifts earliest end
first while they fit, the rest are freed, and the flow is solved again on what is still open and
still fits, until a round adds nothing. Every kept pair is checked with ``model.fits``.
If round one's flow needed no repair it is optimal outright. No volunteer is a candidate outside
their sub-district, so each sub-district is solved on its own: many small flows beat one large one.

**CP-SAT** (``exact.py``), when the flow's plan is not proven optimal and the problem has
at most ``exact_max_pairs`` candidate pairs (e.g. a community for a month): the exact model, started
from the flow's plan; its answer replaces the flow's only if it is at least as good.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from shifts.autofill.exact import solve_exact
from shifts.autofill.model import (
    BALANCE_STEP,
    KIND_BONUS,
    RANK_COST,
    Funnel,
    Pairs,
    Problem,
    Rank,
    Reason,
    find_pairs,
    fits,
    plan_cost,
    reason_for,
)

EXACT_MAX_PAIRS = 20_000
#: CP-SAT's deterministic time budget (work units, not seconds: about 3-6 s of one core here).
EXACT_BUDGET = 0.5
MAX_ROUNDS = 50
_SOURCE, _SINK = 0, 1


@dataclass(frozen=True)
class PlannedPlace:
    shift_id: int
    volunteer_id: int
    rank: Rank


@dataclass(frozen=True)
class OpenShift:
    shift_id: int
    open_places: int  # still open after the plan
    reason: Reason
    unmet_kinds: tuple[str, ...]
    funnel: Funnel


@dataclass(frozen=True)
class SolverReport:
    method: str  # "min_cost_flow" or "cp_sat": whose plan this is
    status: str  # "optimal": no plan fills more places; "feasible": maybe one does (see upper_bound)
    filled: int
    upper_bound: int
    seconds: float
    rounds: int  # flow rounds (the first one gives the bound)
    pairs: int  # candidate (shift, volunteer) pairs


@dataclass(frozen=True)
class Plan:
    places: list[PlannedPlace]
    open_shifts: list[OpenShift]
    report: SolverReport


class _State:
    """Places, kinds, held shifts and weekly room as the plan grows."""

    def __init__(self, problem: Problem, pairs: Pairs) -> None:
        self.problem, self.pairs = problem, pairs
        self.open_left = [shift.open_places for shift in problem.shifts]
        self.needs_left = [dict(shift.needs) for shift in problem.shifts]
        self.held: dict[int, list[tuple[int, int]]] = {}
        self.room: dict[int, defaultdict[int, int]] = {}
        self.load: dict[int, int] = {}
        self.chosen: list[int] = []
        for v in sorted(set(pairs.volunteer)):
            volunteer = problem.volunteers[v]
            self.held[v] = []
            self.room[v] = defaultdict(lambda: problem.weekly_cap)
            for week, minutes in volunteer.week_minutes.items():
                self.room[v][week] = problem.weekly_cap - minutes
            self.load[v] = len(volunteer.busy)

    def fits(self, p: int) -> bool:
        shift = self.problem.shifts[self.pairs.shift[p]]
        v = self.pairs.volunteer[p]
        return self.open_left[self.pairs.shift[p]] > 0 and fits(
            shift.starts, shift.ends, self.pairs.week[p], self.held[v], self.room[v], self.problem.min_rest
        )

    def take(self, p: int) -> None:
        s, v = self.pairs.shift[p], self.pairs.volunteer[p]
        shift, kind = self.problem.shifts[s], self.problem.volunteers[v].kind
        self.open_left[s] -= 1
        if self.needs_left[s].get(kind, 0) > 0:
            self.needs_left[s][kind] -= 1
        self.held[v].append((shift.starts, shift.ends))
        self.room[v][self.pairs.week[p]] -= shift.ends - shift.starts
        self.load[v] += 1
        self.chosen.append(p)


def solve(problem: Problem, *, exact_max_pairs: int = EXACT_MAX_PAIRS, exact_budget: float = EXACT_BUDGET) -> Plan:
    """The plan for ``problem``: deterministic, every place checked against every rule."""
    started = time.perf_counter()
    pairs, funnels = find_pairs(problem)
    state = _State(problem, pairs)
    upper_bound, rounds, optimal = _flow_rounds(state)
    method = "min_cost_flow"
    if not optimal and 0 < len(pairs) <= exact_max_pairs:
        exact = solve_exact(problem, pairs, state.chosen, exact_budget)
        if exact is not None:
            chosen, exact_bound = exact
            upper_bound = min(upper_bound, exact_bound)
            if (len(chosen), -plan_cost(problem, pairs, chosen)) >= (
                len(state.chosen), -plan_cost(problem, pairs, state.chosen)
            ):
                state = _State(problem, pairs)
                for p in chosen:
                    state.take(p)
                method = "cp_sat"
    filled = len(state.chosen)
    report = SolverReport(
        method=method,
        status="optimal" if filled >= upper_bound else "feasible",
        filled=filled,
        upper_bound=upper_bound,
        seconds=round(time.perf_counter() - started, 3),
        rounds=rounds,
        pairs=len(pairs),
    )
    return Plan(places=_places(problem, pairs, state), open_shifts=_open(problem, funnels, state), report=report)


def _places(problem: Problem, pairs: Pairs, state: _State) -> list[PlannedPlace]:
    ordered = sorted(state.chosen, key=lambda p: (pairs.shift[p], problem.volunteers[pairs.volunteer[p]].id))
    return [
        PlannedPlace(problem.shifts[pairs.shift[p]].id, problem.volunteers[pairs.volunteer[p]].id, Rank(pairs.rank[p]))
        for p in ordered
    ]


def _open(problem: Problem, funnels: list[Funnel], state: _State) -> list[OpenShift]:
    """Shifts with places or kinds left, and why: the funnel counts the candidates for the places
    left, i.e. without the volunteers planned on that very shift."""
    on_shift: dict[int, int] = defaultdict(int)
    for p in state.chosen:
        on_shift[state.pairs.shift[p]] += 1
    result = []
    for s, shift in enumerate(problem.shifts):
        unmet = tuple(sorted(kind for kind, need in state.needs_left[s].items() if need > 0))
        if state.open_left[s] > 0 or unmet:
            taken, full = on_shift[s], funnels[s]
            funnel = Funnel(full.nearby - taken, full.available - taken, full.clear - taken, full.eligible - taken)
            result.append(OpenShift(shift.id, state.open_left[s], reason_for(funnel, state.open_left[s]), unmet, funnel))
    return result


# --- min-cost flow -----------------------------------------------------------------------------


def _flow_rounds(state: _State) -> tuple[int, int, bool]:
    """:func:`_component_rounds` for each sub-district: no pair links two of them, so each is
    solved on its own (many small flows are much faster than one large one).

    Returns the sum of their bounds, the most rounds any needed, and whether all were optimal.
    """
    components: dict[int, list[int]] = defaultdict(list)
    for p in range(len(state.pairs)):
        components[state.problem.shifts[state.pairs.shift[p]].subdistrict].append(p)
    upper_bound, rounds, optimal = 0, 0, True
    for subdistrict in sorted(components):
        bound, used, whole = _component_rounds(state, components[subdistrict])
        upper_bound += bound
        rounds = max(rounds, used)
        optimal = optimal and whole
    return upper_bound, rounds, optimal


def _component_rounds(state: _State, candidates: list[int]) -> tuple[int, int, bool]:
    """Flow, repair, repeat on what is left.

    Returns the upper bound (round one's maximum flow), the rounds run, and whether round one's
    flow was kept whole: then it is feasible and optimal for a relaxation, so optimal outright
    (places and costs), and no later round can add anything.
    """
    upper_bound, rounds, whole = 0, 0, False
    while rounds < MAX_ROUNDS and candidates:
        flow_pairs, max_flow = _flow_round(state, candidates)
        rounds += 1
        kept = _repair(state, flow_pairs)
        if rounds == 1:
            upper_bound, whole = max_flow, kept == len(flow_pairs)
        if kept == 0 or whole:
            break
        candidates = [p for p in candidates if state.fits(p)]
    return upper_bound, rounds, whole


def _flow_round(state: _State, candidates: list[int]) -> tuple[list[int], int]:
    problem, pairs = state.problem, state.pairs
    rest = problem.min_rest
    tails: list[int] = []
    heads: list[int] = []
    capacities: list[int] = []
    costs: list[int] = []

    def arc(tail: int, head: int, capacity: int, cost: int) -> int:
        tails.append(tail)
        heads.append(head)
        capacities.append(capacity)
        costs.append(cost)
        return len(tails) - 1

    next_node = 2
    shift_node: dict[int, int] = {}
    kind_node: dict[tuple[int, str], int] = {}
    by_volunteer: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for p in candidates:
        s, v = pairs.shift[p], pairs.volunteer[p]
        if s not in shift_node:
            shift_node[s] = next_node
            arc(_SOURCE, next_node, state.open_left[s], 0)
            next_node += 1
        kind = problem.volunteers[v].kind
        need = state.needs_left[s].get(kind, 0)
        if need > 0 and (s, kind) not in kind_node:
            kind_node[(s, kind)] = next_node
            arc(shift_node[s], next_node, need, -KIND_BONUS)
            arc(shift_node[s], next_node, state.open_left[s], 0)
            next_node += 1
        by_volunteer[v][pairs.week[p]].append(p)

    pair_arc: dict[int, int] = {}
    for v in sorted(by_volunteer):
        volunteer_node, next_node = next_node, next_node + 1
        total = 0
        for week in sorted(by_volunteer[v]):
            members = sorted(by_volunteer[v][week], key=lambda p: (problem.shifts[pairs.shift[p]].starts, pairs.shift[p]))
            limit = _most_that_fit(sorted(problem.shifts[pairs.shift[p]].ends - problem.shifts[pairs.shift[p]].starts
                                          for p in members), state.room[v][week])
            week_node, next_node = next_node, next_node + 1
            arc(week_node, volunteer_node, limit, 0)
            total += limit
            for clique in _cliques(problem, pairs, members, rest):
                head = week_node
                if len(clique) > 1:
                    head, next_node = next_node, next_node + 1
                    arc(head, week_node, 1, 0)
                for p in clique:
                    s = pairs.shift[p]
                    tail = kind_node.get((s, problem.volunteers[v].kind), shift_node[s])
                    pair_arc[p] = arc(tail, head, 1, RANK_COST[pairs.rank[p]])
        for j in range(total):
            arc(volunteer_node, _SINK, 1, BALANCE_STEP * (state.load[v] + j))

    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(
        np.asarray(tails, dtype=np.int32), np.asarray(heads, dtype=np.int32),
        np.asarray(capacities, dtype=np.int64), np.asarray(costs, dtype=np.int64),
    )
    supply = sum(state.open_left[s] for s in shift_node)
    flow.set_node_supply(_SOURCE, supply)
    flow.set_node_supply(_SINK, -supply)
    status = flow.solve_max_flow_with_min_cost()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: {status}")
    ordered = list(pair_arc)
    flows = flow.flows(np.asarray([pair_arc[p] for p in ordered], dtype=np.int32))
    return [p for p, used in zip(ordered, flows.tolist(), strict=True) if used], int(flow.maximum_flow())


def _most_that_fit(lengths: Sequence[int], room: int) -> int:
    count, total = 0, 0
    for length in lengths:
        total += length
        if total > room:
            break
        count += 1
    return count


def _cliques(problem: Problem, pairs: Pairs, members: list[int], rest: int) -> list[list[int]]:
    """Split one volunteer's shifts (sorted by start) into runs that pairwise clash."""
    cliques: list[list[int]] = []
    reach = 0  # a run stays a clique while each new start is before every member's end + rest
    for p in members:
        shift = problem.shifts[pairs.shift[p]]
        if cliques and shift.starts < reach:
            cliques[-1].append(p)
            reach = min(reach, shift.ends + rest)
        else:
            cliques.append([p])
            reach = shift.ends + rest
    return cliques


def _repair(state: _State, flow_pairs: list[int]) -> int:
    """Keep each volunteer's flow shifts, earliest end first, while they fit; returns how many."""
    problem, pairs = state.problem, state.pairs
    kept = 0
    for p in sorted(flow_pairs, key=lambda p: (pairs.volunteer[p], problem.shifts[pairs.shift[p]].ends, pairs.shift[p])):
        if state.fits(p):
            state.take(p)
            kept += 1
    return kept
