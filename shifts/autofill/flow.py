"""Auto-fill, one min-cost flow round: its graph built with numpy, solved by OR-Tools.

The network (source → shift → [kind] → clique → (volunteer, week) → volunteer → sink) and why each
layer is there are described in ``shifts.autofill.solver``; this module only builds and solves one
round over the candidates still open, and returns the pairs the flow uses.
"""

from __future__ import annotations

import math
import time

import numpy as np
from ortools.graph.python import min_cost_flow

from shifts.autofill.model import BALANCE_STEP, KIND_BONUS, RANK_COST
from shifts.autofill.state import PlanState

_SOURCE, _SINK = 0, 1


def flow_round(state: PlanState, candidates: np.ndarray) -> tuple[np.ndarray, int]:
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
    total = np.bincount(person[group_at], weights=np.minimum(limit, cliques), minlength=int(person[-1]) + 1).astype(
        np.int64
    )
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

    def put(
        at: np.ndarray,
        arc_tail: np.ndarray | int,
        arc_head: np.ndarray | int,
        capacity: np.ndarray | int,
        cost: np.ndarray | int,
    ) -> None:
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
    put(
        arc_at[clique_node_here] + week_node_here[clique_node_here],
        clique_node[clique_node_here],
        week_node[clique_node_here],
        1,
        0,
    )
    put(pair_arc, tail[order], head, 1, _RANK_COST[pairs.rank[candidates][order]] // _COST_UNIT)
    last = np.flatnonzero(last_volunteer & (sink_arcs > 0))
    if len(last):
        runs = sink_arcs[last]
        step = np.arange(int(runs.sum())) - np.repeat(np.cumsum(runs) - runs, runs)
        put(
            np.repeat(pair_arc[last] + 1, runs) + step,
            np.repeat(volunteer_node[last], runs),
            _SINK,
            1,
            BALANCE_STEP // _COST_UNIT * (np.repeat(state.load[volunteer[last]], runs) + step),
        )

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


def _clique_starts(
    group: np.ndarray, group_at: np.ndarray, starts: np.ndarray, ends: np.ndarray, rest: int
) -> np.ndarray:
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
        here = by_position[edges[step - 1] : edges[step]]
        of = group[here]
        joins = starts[here] < reach[of]
        reach[of] = np.where(joins, np.minimum(reach[of], ends[here] + rest), ends[here] + rest)
        starts_run[here[~joins]] = True
    return starts_run
