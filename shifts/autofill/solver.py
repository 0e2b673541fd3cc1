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

import time
from dataclasses import dataclass, field

import numpy as np

from shifts.autofill.exact import solve_exact
from shifts.autofill.flow import flow_round
from shifts.autofill.model import Funnel, Pairs, Problem, Rank, Reason, find_pairs, plan_cost, reason_for
from shifts.autofill.state import PlanState

EXACT_MAX_PAIRS = 20_000
#: CP-SAT's deterministic time budget (work units, not seconds: about 3-6 s of one core here).
EXACT_BUDGET = 0.5
MAX_ROUNDS = 50


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


def solve(problem: Problem, *, exact_max_pairs: int = EXACT_MAX_PAIRS, exact_budget: float = EXACT_BUDGET) -> Plan:
    """The plan for ``problem``: deterministic, every place checked against every rule."""
    started = time.perf_counter()
    pairs, funnels = find_pairs(problem)
    state = PlanState(problem, pairs)
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
                len(state.chosen),
                -plan_cost(problem, pairs, state.chosen),
            ):
                parts = state.parts
                state = PlanState(problem, pairs)
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


def _places(problem: Problem, pairs: Pairs, state: PlanState) -> list[PlannedPlace]:
    chosen = np.asarray(state.chosen, dtype=np.int64)
    shift, volunteer = pairs.shift[chosen], pairs.volunteer[chosen]
    shift_ids = np.fromiter((s.id for s in problem.shifts), dtype=np.int64, count=len(problem.shifts))[shift]
    volunteer_ids = np.fromiter((v.id for v in problem.volunteers), dtype=np.int64, count=len(problem.volunteers))[
        volunteer
    ]
    order = np.lexsort((volunteer_ids, shift))
    return [
        PlannedPlace(shift_id, volunteer_id, _RANKS[rank])
        for shift_id, volunteer_id, rank in zip(
            shift_ids[order].tolist(), volunteer_ids[order].tolist(), pairs.rank[chosen][order].tolist(), strict=True
        )
    ]


def _open(problem: Problem, funnels: list[Funnel], state: PlanState) -> list[OpenShift]:
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


# --- min-cost flow rounds (one round's graph: flow.py) ----------------------------------------


def _flow_rounds(state: PlanState) -> tuple[int, int, bool]:
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


def _component_rounds(state: PlanState, candidates: np.ndarray) -> tuple[int, int, bool]:
    """Flow, repair, repeat on what is left.

    Returns the upper bound (round one's maximum flow), the rounds run, and whether round one's
    flow was kept whole: then it is feasible and optimal for a relaxation, so optimal outright
    (places and costs), and no later round can add anything.
    """
    upper_bound, rounds, whole = 0, 0, False
    planned_from = len(state.chosen)
    while rounds < MAX_ROUNDS and len(candidates):
        flow_pairs, max_flow = flow_round(state, candidates)
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


def _repair(state: PlanState, flow_pairs: np.ndarray) -> int:
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
