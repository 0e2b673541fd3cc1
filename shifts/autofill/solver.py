"""Auto-fill, the optimisation: OR-Tools min-cost flow for the bulk, CP-SAT for small problems.

Objective, in strict order: most places filled; then required kinds met; then volunteers who live
nearer (home grid, then community, then sub-district); then balanced load (each further shift of a
volunteer costs more than the last: a convex cost that spreads shifts across volunteers).

**Min-cost flow** (any size). source → shift (capacity: open places) → [kind node: the first
``need`` units of a required kind earn ``KIND_BONUS``] → clique → (volunteer, week) → volunteer →
sink. A clique is a run of the volunteer's candidate shifts in one week that pairwise clash (overlap
or too little rest; clashes form an interval graph, so a run sorted by start is a clique) and gets
capacity 1. The (volunteer, week) node's capacity is the most shifts whose shortest lengths fit
under the weekly cap; when that is at least the week's number of cliques it constrains nothing, and
the week's cliques feed the volunteer node directly (most weeks: a quarter fewer nodes, about 40% less
time in OR-Tools). The volunteer → sink arcs are one per unit the weeks can pass, each dearer than
the last (the balance cost). These are necessary conditions, so the flow is a relaxation and its maximum is
an upper bound on the places any plan can fill (``upper_bound``). Clashes between cliques and a cap
exceeded by long shifts are then repaired: each volunteer keeps their flow shifts earliest end
first while they fit, the rest are freed, and the flow is solved again on what is still open and
still fits, until a round adds nothing. Every kept pair is checked with ``model.fits``.
If round one's flow needed no repair it is optimal outright. No volunteer is a candidate outside
their sub-district, so each sub-district is solved on its own: many small flows beat one large one.
Candidates, graphs and the re-filtering between rounds are numpy columns over all pairs (a city has
half a million): no Python object or loop per pair, only per pair a flow picked (the repair).

**CP-SAT** (``exact.py``), when the flow's plan is not proven optimal and the problem has
at most ``exact_max_pairs`` candidate pairs (e.g. a community for a month): the exact model, started
from the flow's plan; its answer replaces the flow's only if it is at least as good.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

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
    clashing,
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
    #: Seconds per part: "candidates" (find_pairs), "build" (the flow graphs), "flow" (OR-Tools),
    #: "repair" (and re-filtering between rounds), "exact" (CP-SAT), "answer" (places and open shifts).
    parts: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Plan:
    places: list[PlannedPlace]
    open_shifts: list[OpenShift]
    report: SolverReport


class _State:
    """Places, kinds, held shifts and weekly room as the plan grows.

    Per pair and per volunteer as numpy columns, so that the flow rounds build their graphs and
    re-filter their candidates in bulk; the repair walks one by one only the pairs of volunteers
    a flow gave several shifts.
    """

    def __init__(self, problem: Problem, pairs: Pairs) -> None:
        self.problem, self.pairs = problem, pairs
        shifts, volunteers = problem.shifts, problem.volunteers
        self.parts: dict[str, float] = defaultdict(float)
        self.open_left = np.fromiter((s.open_places for s in shifts), dtype=np.int64, count=len(shifts))
        self.kinds = sorted({v.kind for v in volunteers} | {kind for s in shifts for kind, _ in s.needs})
        code = {kind: c for c, kind in enumerate(self.kinds)}
        self.needs_left = np.zeros((len(shifts), max(len(self.kinds), 1)), dtype=np.int64)
        for s, shift in enumerate(shifts):
            for kind, need in shift.needs:
                self.needs_left[s, code[kind]] = need
        self.load = np.fromiter((len(v.busy) for v in volunteers), dtype=np.int64, count=len(volunteers))
        shift_starts = np.fromiter((s.starts for s in shifts), dtype=np.int64, count=len(shifts))
        shift_ends = np.fromiter((s.ends for s in shifts), dtype=np.int64, count=len(shifts))
        volunteer_kind = np.fromiter((code[v.kind] for v in volunteers), dtype=np.int64, count=len(volunteers))
        # Per pair.
        self.starts, self.ends = shift_starts[pairs.shift], shift_ends[pairs.shift]
        self.kind = volunteer_kind[pairs.volunteer]
        weeks, self.week_column = np.unique(pairs.week, return_inverse=True)
        self.week_column = self.week_column.reshape(-1)
        column = {int(week): c for c, week in enumerate(weeks.tolist())}
        # Minutes left per volunteer and local week (the weeks the candidate shifts fall in).
        self.room = np.full((len(volunteers), max(len(weeks), 1)), problem.weekly_cap, dtype=np.int64)
        for v, volunteer in enumerate(volunteers):
            for week, minutes in volunteer.week_minutes.items():
                if week in column:
                    self.room[v, column[week]] = problem.weekly_cap - minutes
        self.held: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.chosen: list[int] = []

    def fits(self, p: int) -> bool:
        v = int(self.pairs.volunteer[p])
        return bool(self.open_left[self.pairs.shift[p]] > 0) and fits(
            int(self.starts[p]), int(self.ends[p]), int(self.week_column[p]), self.held[v], self.room[v],
            self.problem.min_rest,
        )

    def fitting(self, candidates: np.ndarray, planned: np.ndarray) -> np.ndarray:
        """:meth:`fits` for many pairs at once; ``planned`` holds the chosen pairs of every
        volunteer among them (a sub-district's)."""
        pairs = self.pairs
        volunteer = pairs.volunteer[candidates]
        starts, ends = self.starts[candidates], self.ends[candidates]
        ok = (self.open_left[pairs.shift[candidates]] > 0) & (
            self.room[volunteer, self.week_column[candidates]] >= ends - starts
        )
        if len(planned):
            by_volunteer = np.argsort(pairs.volunteer[planned], kind="stable")
            planned = planned[by_volunteer]
            first = np.searchsorted(pairs.volunteer[planned], np.arange(len(self.problem.volunteers) + 1))
            ok &= ~clashing(
                volunteer, starts, ends, first, self.starts[planned], self.ends[planned], self.problem.min_rest
            )
        return ok

    def take_all(self, taken: np.ndarray) -> None:
        """:meth:`take` for pairs of distinct volunteers at once."""
        shift, volunteer = self.pairs.shift[taken], self.pairs.volunteer[taken]
        starts, ends, kind = self.starts[taken], self.ends[taken], self.kind[taken]
        np.subtract.at(self.open_left, shift, 1)
        np.subtract.at(self.needs_left, (shift, kind), 1)
        self.needs_left[shift, kind] = np.maximum(self.needs_left[shift, kind], 0)  # as "if > 0" one by one
        self.room[volunteer, self.week_column[taken]] -= ends - starts
        self.load[volunteer] += 1
        for v, start, end in zip(volunteer.tolist(), starts.tolist(), ends.tolist(), strict=True):
            self.held[v].append((start, end))
        self.chosen.extend(taken.tolist())

    def take(self, p: int) -> None:
        s, v = int(self.pairs.shift[p]), int(self.pairs.volunteer[p])
        starts, ends, kind = int(self.starts[p]), int(self.ends[p]), int(self.kind[p])
        self.open_left[s] -= 1
        if self.needs_left[s, kind] > 0:
            self.needs_left[s, kind] -= 1
        self.held[v].append((starts, ends))
        self.room[v, self.week_column[p]] -= ends - starts
        self.load[v] += 1
        self.chosen.append(p)


def solve(problem: Problem, *, exact_max_pairs: int = EXACT_MAX_PAIRS, exact_budget: float = EXACT_BUDGET) -> Plan:
    """The plan for ``problem``: deterministic, every place checked against every rule."""
    started = time.perf_counter()
    pairs, funnels = find_pairs(problem)
    state = _State(problem, pairs)
    state.parts["candidates"] = time.perf_counter() - started
    upper_bound, rounds, optimal = _flow_rounds(state)
    method = "min_cost_flow"
    if not optimal and 0 < len(pairs) <= exact_max_pairs:
        exact_started = time.perf_counter()
        exact = solve_exact(problem, pairs, state.chosen, exact_budget)
        if exact is not None:
            chosen, exact_bound = exact
            upper_bound = min(upper_bound, exact_bound)
            if (len(chosen), -plan_cost(problem, pairs, chosen)) >= (
                len(state.chosen), -plan_cost(problem, pairs, state.chosen)
            ):
                parts = state.parts
                state = _State(problem, pairs)
                state.parts = parts
                for p in chosen:
                    state.take(p)
                method = "cp_sat"
        state.parts["exact"] = time.perf_counter() - exact_started
    answer_started = time.perf_counter()
    places, open_shifts = _places(problem, pairs, state), _open(problem, funnels, state)
    state.parts["answer"] = time.perf_counter() - answer_started
    filled = len(state.chosen)
    report = SolverReport(
        method=method,
        status="optimal" if filled >= upper_bound else "feasible",
        filled=filled,
        upper_bound=upper_bound,
        seconds=round(time.perf_counter() - started, 3),
        rounds=rounds,
        pairs=len(pairs),
        parts={part: round(seconds, 3) for part, seconds in state.parts.items()},
    )
    return Plan(places=places, open_shifts=open_shifts, report=report)


_RANKS = tuple(Rank)


def _places(problem: Problem, pairs: Pairs, state: _State) -> list[PlannedPlace]:
    chosen = np.asarray(state.chosen, dtype=np.int64)
    shift, volunteer = pairs.shift[chosen], pairs.volunteer[chosen]
    shift_ids = np.fromiter((s.id for s in problem.shifts), dtype=np.int64, count=len(problem.shifts))[shift]
    volunteer_ids = np.fromiter(
        (v.id for v in problem.volunteers), dtype=np.int64, count=len(problem.volunteers)
    )[volunteer]
    order = np.lexsort((volunteer_ids, shift))
    return [
        PlannedPlace(shift_id, volunteer_id, _RANKS[rank])
        for shift_id, volunteer_id, rank in zip(
            shift_ids[order].tolist(), volunteer_ids[order].tolist(), pairs.rank[chosen][order].tolist(), strict=True
        )
    ]


def _open(problem: Problem, funnels: list[Funnel], state: _State) -> list[OpenShift]:
    """Shifts with places or kinds left, and why: the funnel counts the candidates for the places
    left, i.e. without the volunteers planned on that very shift."""
    chosen = np.asarray(state.chosen, dtype=np.int64)
    on_shift = np.bincount(state.pairs.shift[chosen], minlength=len(problem.shifts)).tolist()
    open_left = state.open_left.tolist()
    result = []
    for s in np.flatnonzero((state.open_left > 0) | (state.needs_left > 0).any(axis=1)).tolist():
        unmet = tuple(state.kinds[k] for k in np.flatnonzero(state.needs_left[s] > 0).tolist())
        taken, full = on_shift[s], funnels[s]
        funnel = Funnel(full.nearby - taken, full.available - taken, full.clear - taken, full.eligible - taken)
        result.append(OpenShift(problem.shifts[s].id, open_left[s], reason_for(funnel, open_left[s]), unmet, funnel))
    return result


# --- min-cost flow -----------------------------------------------------------------------------


def _flow_rounds(state: _State) -> tuple[int, int, bool]:
    """:func:`_component_rounds` for each sub-district: no pair links two of them, so each is
    solved on its own (many small flows are much faster than one large one).

    Returns the sum of their bounds, the most rounds any needed, and whether all were optimal.
    """
    subdistrict = np.fromiter(
        (s.subdistrict for s in state.problem.shifts), dtype=np.int64, count=len(state.problem.shifts)
    )[state.pairs.shift]
    # Stable, so each sub-district's pairs keep their order (by shift, then volunteer).
    order = np.argsort(subdistrict, kind="stable")
    bounds = np.flatnonzero(np.diff(subdistrict[order])) + 1
    upper_bound, rounds, optimal = 0, 0, True
    for candidates in np.split(order, bounds) if len(order) else []:
        bound, used, whole = _component_rounds(state, candidates)
        upper_bound += bound
        rounds = max(rounds, used)
        optimal = optimal and whole
    return upper_bound, rounds, optimal


def _component_rounds(state: _State, candidates: np.ndarray) -> tuple[int, int, bool]:
    """Flow, repair, repeat on what is left.

    Returns the upper bound (round one's maximum flow), the rounds run, and whether round one's
    flow was kept whole: then it is feasible and optimal for a relaxation, so optimal outright
    (places and costs), and no later round can add anything.
    """
    upper_bound, rounds, whole = 0, 0, False
    planned_from = len(state.chosen)
    while rounds < MAX_ROUNDS and len(candidates):
        flow_pairs, max_flow = _flow_round(state, candidates)
        rounds += 1
        started = time.perf_counter()
        kept = _repair(state, flow_pairs)
        if rounds == 1:
            upper_bound, whole = max_flow, kept == len(flow_pairs)
        if kept == 0 or whole:
            state.parts["repair"] += time.perf_counter() - started
            break
        planned = np.asarray(state.chosen[planned_from:], dtype=np.int64)
        candidates = candidates[state.fitting(candidates, planned)]
        state.parts["repair"] += time.perf_counter() - started
    return upper_bound, rounds, whole


def _flow_round(state: _State, candidates: np.ndarray) -> tuple[np.ndarray, int]:
    """One min-cost flow over ``candidates`` (ascending pair indices), built with numpy.

    Nodes and arcs are numbered as a loop over the candidates would create them: shift nodes (and
    each required kind's node) in order of first appearance, then per volunteer (ascending) their
    node, and per local week (ascending) its node if it is kept, followed by the week's cliques'
    nodes, its pairs sorted by start; the volunteer's arcs to the sink last. The numbering decides
    which of several optimal flows OR-Tools returns, so it is fixed by the problem alone.
    Returns the pairs the flow uses and its maximum (the bound).
    """
    started = time.perf_counter()
    pairs = state.pairs
    rest = state.problem.min_rest
    shift, volunteer, kind = pairs.shift[candidates], pairs.volunteer[candidates], state.kind[candidates]
    count = len(candidates)

    # source -> shift -> [kind]: candidates ascend, so their shifts do too.
    first_shift = np.ones(count, dtype=bool)
    first_shift[1:] = shift[1:] != shift[:-1]
    need = state.needs_left[shift, kind]
    with_need = np.flatnonzero(need > 0)
    first_kind = np.zeros(count, dtype=bool)
    first_kind_at = np.zeros(0, dtype=np.int64)
    kind_inverse = np.zeros(0, dtype=np.int64)
    if len(with_need):
        _, first_seen, kind_inverse = np.unique(
            shift[with_need] * state.needs_left.shape[1] + kind[with_need], return_index=True, return_inverse=True
        )
        first_kind_at = with_need[first_seen]
        first_kind[first_kind_at] = True
    created = first_shift.astype(np.int64) + first_kind
    node_at = _SINK + 1 + np.cumsum(created) - created  # the first node created at each candidate
    shift_node = node_at[first_shift][np.cumsum(first_shift) - 1]
    tail = shift_node.copy()
    if len(with_need):
        tail[with_need] = (node_at + first_shift)[first_kind_at][kind_inverse.reshape(-1)]
    next_node = _SINK + 1 + int(created.sum())
    shift_arc_count = first_shift + 2 * first_kind.astype(np.int64)
    shift_arc_at = np.cumsum(shift_arc_count) - shift_arc_count

    # [kind] -> clique -> (volunteer, week) -> volunteer -> sink, in volunteer, week, start order.
    week = state.week_column[candidates]
    starts, ends = state.starts[candidates], state.ends[candidates]
    order = np.lexsort((shift, starts, week, volunteer))
    volunteer, week, starts, ends = volunteer[order], week[order], starts[order], ends[order]
    first_volunteer = np.ones(count, dtype=bool)
    first_volunteer[1:] = volunteer[1:] != volunteer[:-1]
    first_week = first_volunteer.copy()
    first_week[1:] |= week[1:] != week[:-1]
    last_volunteer = np.ones(count, dtype=bool)
    last_volunteer[:-1] = first_volunteer[1:]
    group = np.cumsum(first_week) - 1  # (volunteer, week)
    group_at = np.flatnonzero(first_week)
    person = np.cumsum(first_volunteer) - 1
    # The most shifts of the group that fit under the room left: its shortest ones first.
    lengths = (ends - starts)[np.lexsort((ends - starts, group))]
    running = np.cumsum(lengths)
    running -= (running - lengths)[group_at][group]
    room = state.room[volunteer[group_at], week[group_at]]
    limit = np.bincount(group, weights=running <= room[group], minlength=len(group_at)).astype(np.int64)
    clique_start = _clique_starts(group, group_at, starts, ends, rest)
    clique = np.cumsum(clique_start) - 1
    shared = np.bincount(clique)[clique] > 1  # the pair's clique has its own node
    clique_node_here = clique_start & shared
    # A week passes at most one unit per clique: when the cap allows that many, its node would
    # constrain nothing, and its cliques feed the volunteer directly (a quarter fewer nodes).
    cliques = np.bincount(group[clique_start], minlength=len(group_at))
    week_kept = cliques > limit
    total = np.bincount(
        person[group_at], weights=np.minimum(limit, cliques), minlength=int(person[-1]) + 1
    ).astype(np.int64)
    week_node_here = first_week & week_kept[group]

    created = first_volunteer.astype(np.int64) + week_node_here + clique_node_here
    node_at = next_node + np.cumsum(created) - created
    volunteer_node = node_at[first_volunteer][person]
    week_node = np.where(week_kept[group], (node_at + first_volunteer)[group_at][group], volunteer_node)
    clique_node = (node_at + first_volunteer + week_node_here)[clique_start][clique]
    head = np.where(shared, clique_node, week_node)

    sink_arcs = np.where(last_volunteer, total[person], 0)
    arc_count = week_node_here + clique_node_here.astype(np.int64) + 1 + sink_arcs
    arc_at = int(shift_arc_count.sum()) + np.cumsum(arc_count) - arc_count
    pair_arc = arc_at + week_node_here + clique_node_here
    arcs = int(arc_at[-1] + arc_count[-1])
    tails = np.empty(arcs, dtype=np.int32)
    heads = np.empty(arcs, dtype=np.int32)
    capacities = np.ones(arcs, dtype=np.int64)
    costs = np.zeros(arcs, dtype=np.int64)

    def put(at: np.ndarray, arc_tail: np.ndarray | int, arc_head: np.ndarray | int,
            capacity: np.ndarray | int, cost: np.ndarray | int) -> None:
        tails[at], heads[at], capacities[at], costs[at] = arc_tail, arc_head, capacity, cost

    # Costs in units of their common divisor: the same optimum, fewer cost-scaling phases.
    at = shift_arc_at[first_shift]
    put(at, _SOURCE, shift_node[first_shift], state.open_left[shift[first_shift]], 0)
    at = shift_arc_at[first_kind] + first_shift[first_kind]
    kind_node = tail[first_kind_at] if len(first_kind_at) else np.zeros(0, dtype=np.int64)
    put(at, shift_node[first_kind], kind_node, need[first_kind], -KIND_BONUS // _COST_UNIT)
    put(at + 1, shift_node[first_kind], kind_node, state.open_left[shift[first_kind]], 0)
    kept_at = group_at[week_kept]
    put(arc_at[kept_at], week_node[kept_at], volunteer_node[kept_at], limit[week_kept], 0)
    put(arc_at[clique_node_here] + week_node_here[clique_node_here], clique_node[clique_node_here],
        week_node[clique_node_here], 1, 0)
    put(pair_arc, tail[order], head, 1, _RANK_COST[pairs.rank[candidates][order]] // _COST_UNIT)
    last = np.flatnonzero(last_volunteer & (sink_arcs > 0))
    if len(last):
        runs = sink_arcs[last]
        step = np.arange(int(runs.sum())) - np.repeat(np.cumsum(runs) - runs, runs)
        put(np.repeat(pair_arc[last] + 1, runs) + step, np.repeat(volunteer_node[last], runs), _SINK, 1,
            BALANCE_STEP // _COST_UNIT * (np.repeat(state.load[volunteer[last]], runs) + step))

    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, capacities, costs)
    supply = int(state.open_left[shift[first_shift]].sum())
    flow.set_node_supply(_SOURCE, supply)
    flow.set_node_supply(_SINK, -supply)
    solving = time.perf_counter()
    state.parts["build"] += solving - started
    status = flow.solve_max_flow_with_min_cost()
    state.parts["flow"] += time.perf_counter() - solving
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: {status}")
    used = flow.flows(pair_arc.astype(np.int32)) > 0
    return candidates[order][used], int(flow.maximum_flow())


_RANK_COST = np.asarray(RANK_COST, dtype=np.int64)
_COST_UNIT = math.gcd(KIND_BONUS, BALANCE_STEP, *RANK_COST)


def _clique_starts(group: np.ndarray, group_at: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                   rest: int) -> np.ndarray:
    """Where each group's (sorted by start) runs of pairwise clashing shifts begin.

    A run stays a clique while each new start is before every member's end + rest. Walked one
    position at a time across all groups at once: as many steps as the largest group.
    """
    position = np.arange(len(group)) - group_at[group]
    starts_run = position == 0
    reach = ends[group_at] + rest
    by_position = np.argsort(position, kind="stable")
    edges = np.cumsum(np.bincount(position))
    for step in range(1, len(edges)):
        here = by_position[edges[step - 1]:edges[step]]
        of = group[here]
        joins = starts[here] < reach[of]
        reach[of] = np.where(joins, np.minimum(reach[of], ends[here] + rest), ends[here] + rest)
        starts_run[here[~joins]] = True
    return starts_run


def _repair(state: _State, flow_pairs: np.ndarray) -> int:
    """Keep each volunteer's flow shifts, earliest end first, while they fit; returns how many.

    A volunteer given one shift by this round's flow keeps it unchecked: every candidate fitted
    when the round began, the flow respects each shift's open places, and nothing else of theirs
    changed. Only those given several are walked one by one.
    """
    pairs = state.pairs
    volunteer = pairs.volunteer[flow_pairs]
    ordered = np.lexsort((pairs.shift[flow_pairs], state.ends[flow_pairs], volunteer))
    flow_pairs, volunteer = flow_pairs[ordered], volunteer[ordered]
    several = np.zeros(len(flow_pairs), dtype=np.bool_)
    several[1:] = volunteer[1:] == volunteer[:-1]
    several[:-1] |= several[1:]
    state.take_all(flow_pairs[~several])
    kept = int((~several).sum())
    for p in flow_pairs[several].tolist():
        if state.fits(p):
            state.take(p)
            kept += 1
    return kept
