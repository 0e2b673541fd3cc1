"""Auto-fill, a plan checked rule by rule: against fresh state before it is applied (``recheck``),
and independently of the solver for tests and the benchmark (``violations``).

One pair at a time in plan order, in plain Python: the solver's numpy columns are not used here, so
a bug in them cannot hide itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from shifts.autofill.model import (
    Problem,
    Reason,
    ShiftInput,
    VolunteerInput,
    clashes,
    local_position,
    local_week,
    weekly_windows,
)


def recheck(
    problem: Problem, planned: Sequence[tuple[int, int]]
) -> tuple[list[tuple[int, int]], list[tuple[int, int, str]]]:
    """Re-validate planned (shift id, volunteer id) pairs against fresh state, in plan order.

    ``problem`` holds the planned shifts (with the places open now) and the candidate volunteers as
    they are now (a volunteer missing from it is no longer active, or no longer a candidate).
    Returns the pairs that still hold and the others with the rule they now break.
    """
    shifts = {shift.id: shift for shift in problem.shifts}
    volunteers = {volunteer.id: volunteer for volunteer in problem.volunteers}
    places_left = {shift.id: shift.open_places for shift in problem.shifts}
    held: dict[int, list[tuple[int, int]]] = {}
    room: dict[int, defaultdict[int, int]] = {}
    kept: list[tuple[int, int]] = []
    refused: list[tuple[int, int, str]] = []
    for shift_id, volunteer_id in planned:
        shift, volunteer = shifts[shift_id], volunteers.get(volunteer_id)
        reason = _broken_rule(problem, shift, volunteer, held, room)
        if reason is None and places_left[shift_id] <= 0:
            reason = "shift_full"
        if reason is not None:
            refused.append((shift_id, volunteer_id, reason))
            continue
        assert volunteer is not None
        week = local_week(shift.starts, volunteer.timezone)
        held[volunteer_id].append((shift.starts, shift.ends))
        room[volunteer_id][week] -= shift.ends - shift.starts
        places_left[shift_id] -= 1
        kept.append((shift_id, volunteer_id))
    return kept, refused


def _broken_rule(
    problem: Problem,
    shift: ShiftInput,
    volunteer: VolunteerInput | None,
    held: dict[int, list[tuple[int, int]]],
    room: dict[int, defaultdict[int, int]],
) -> str | None:
    if volunteer is None:
        return "volunteer_not_active"
    if shift.id in volunteer.live_shifts:
        return "already_on_shift"
    position, length, week = local_position(shift.starts, shift.ends, volunteer.timezone)
    windows = weekly_windows(volunteer.availability)
    if not any(start <= position and position + length <= end for start, end in windows):
        return Reason.NO_VOLUNTEER_AVAILABLE.value
    if volunteer.id not in held:
        held[volunteer.id] = list(volunteer.busy)
        room[volunteer.id] = defaultdict(lambda: problem.weekly_cap)
        for held_week, minutes in volunteer.week_minutes.items():
            room[volunteer.id][held_week] = problem.weekly_cap - minutes
    if any(clashes(shift.starts, shift.ends, s, e, problem.min_rest) for s, e in held[volunteer.id]):
        return Reason.CLASH_OR_REST.value
    if room[volunteer.id][week] < shift.ends - shift.starts:
        return Reason.WEEKLY_CAP_REACHED.value
    return None


def violations(problem: Problem, planned: Sequence[tuple[int, int]]) -> list[str]:
    """Every rule a plan of (shift id, volunteer id) pairs breaks against ``problem``; [] if none.

    For tests and the benchmark: an independent check of what the solver returns.
    """
    shifts = {shift.id: shift for shift in problem.shifts}
    volunteers = {volunteer.id: volunteer for volunteer in problem.volunteers}
    found = [f"shift {s}, volunteer {v}: {rule}" for s, v, rule in recheck(problem, planned)[1]]
    for shift_id, volunteer_id in planned:
        volunteer = volunteers.get(volunteer_id)
        if volunteer is not None and volunteer.subdistrict != shifts[shift_id].subdistrict:
            found.append(f"shift {shift_id}, volunteer {volunteer_id}: not nearby")
    return found
