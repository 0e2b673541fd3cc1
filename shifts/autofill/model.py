"""Auto-fill, the pure part: the problem, who may take which shift, and why a place stays open.

No database and no solver here, so the rules can be unit-tested on hand-made cases and the benchmark
can build problems in memory. Times are whole minutes since the Unix epoch (UTC); weekly availability
is local wall-clock time in the volunteer's home time zone. The solver (``shifts.autofill.solver``) only
ever chooses among the pairs :func:`find_pairs` returns and re-checks every choice with
:func:`fits`, so a plan never breaks a rule whatever the optimisation does.

Rules kept, for one volunteer: weekly availability covers the whole shift; no overlap with, and at
least ``min_rest`` minutes between, any two of their assigned or planned shifts; assigned plus
planned minutes in one local week (Monday to Sunday, counted by start) at most ``weekly_cap``; not
already live (invited, assigned, waitlisted) on the shift; "nearby": the shift lies in the
volunteer's sub-district (home grid first, then the same community, then the sub-district).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from zoneinfo import ZoneInfo

import numpy as np

DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES
#: Availability is entered as HH:MM, so "until midnight" can only be written 23:59; it means 24:00.
LAST_MINUTE = DAY_MINUTES - 1


#: The objective after "most places filled", as costs both solvers minimise (``plan_cost``): a
#: required kind met outweighs living nearer, which outweighs balance (the j-th further shift of a
#: volunteer who already holds n costs BALANCE_STEP * (n + j): convex, so load spreads out).
KIND_BONUS = 10_000
RANK_COST = (0, 1_000, 2_000)
BALANCE_STEP = 10


class Rank(IntEnum):
    """How near the volunteer lives to the shift; lower is preferred."""

    HOME_GRID = 0
    COMMUNITY = 1
    SUBDISTRICT = 2


RANK_NAMES = {Rank.HOME_GRID: "home_grid", Rank.COMMUNITY: "community", Rank.SUBDISTRICT: "subdistrict"}


class Reason(StrEnum):
    """Why places of a shift stay open: the first step of the candidate funnel that left nobody."""

    NO_VOLUNTEERS_NEARBY = "no_volunteers_nearby"  # no active volunteer in the sub-district (and scope)
    NO_VOLUNTEER_AVAILABLE = "no_volunteer_available"  # none whose weekly availability covers it
    CLASH_OR_REST = "clash_or_rest"  # the available ones hold a shift that overlaps or is too close
    WEEKLY_CAP_REACHED = "weekly_cap_reached"  # the rest have no room left under the weekly cap
    USED_ELSEWHERE = "used_elsewhere"  # the rest are planned on other shifts of this plan
    REQUIRED_KIND_MISSING = "required_kind_missing"  # places filled, but a required kind is short


@dataclass(frozen=True, slots=True)
class ShiftInput:
    id: int
    starts: int  # UTC minutes since the epoch
    ends: int
    open_places: int  # primary places still free
    grid: int
    community: int
    subdistrict: int
    needs: tuple[tuple[str, int], ...] = ()  # required kinds still short: (kind code, how many)


@dataclass(frozen=True, slots=True)
class VolunteerInput:
    id: int
    kind: str
    grid: int
    community: int
    subdistrict: int
    timezone: str
    availability: tuple[tuple[int, int, int], ...]  # (weekday 0=Monday, start, end) minutes of day
    busy: tuple[tuple[int, int], ...] = ()  # assigned shifts already held: (starts, ends)
    week_minutes: Mapping[int, int] = field(default_factory=dict)  # local week -> minutes held
    live_shifts: frozenset[int] = frozenset()  # shifts they are already invited to, on, or waiting for


@dataclass(frozen=True)
class Problem:
    shifts: Sequence[ShiftInput]
    volunteers: Sequence[VolunteerInput]
    min_rest: int  # minutes
    weekly_cap: int  # minutes


@dataclass
class Funnel:
    """How many volunteers pass each rule for one shift (before the plan uses any of them)."""

    nearby: int = 0
    available: int = 0
    clear: int = 0  # available and without a clashing assigned shift
    eligible: int = 0  # ... and with room under the weekly cap


@dataclass
class Pairs:
    """Every (shift, volunteer) pair that keeps all single-shift rules, as parallel lists of indices."""

    shift: list[int] = field(default_factory=list)
    volunteer: list[int] = field(default_factory=list)
    rank: list[int] = field(default_factory=list)
    week: list[int] = field(default_factory=list)  # the shift's local week for this volunteer

    def __len__(self) -> int:
        return len(self.shift)


# --- time --------------------------------------------------------------------------------------


def epoch_minutes(moment: datetime) -> int:
    """Whole minutes since the epoch, rounded down."""
    return int(moment.timestamp()) // 60


def epoch_minutes_ceil(moment: datetime) -> int:
    """Whole minutes since the epoch, rounded up (the end of a shift that ends mid-minute)."""
    return math.ceil(moment.timestamp() / 60)


def from_epoch_minutes(minutes: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)


def local_week(minutes: int, timezone: str) -> int:
    """The local week of an instant: the proleptic ordinal of its Monday in ``timezone``."""
    local = from_epoch_minutes(minutes).astimezone(ZoneInfo(timezone))
    return local.date().toordinal() - local.weekday()


def local_position(starts: int, ends: int, timezone: str) -> tuple[int, int, int]:
    """(minute of the local week it starts, wall-clock length in minutes, local week)."""
    zone = ZoneInfo(timezone)
    start = from_epoch_minutes(starts).astimezone(zone)
    end = from_epoch_minutes(ends).astimezone(zone)
    length = int((end.replace(tzinfo=None) - start.replace(tzinfo=None)).total_seconds()) // 60
    position = start.weekday() * DAY_MINUTES + start.hour * 60 + start.minute
    return position, length, start.date().toordinal() - start.weekday()


def weekly_windows(slots: Sequence[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """Availability as merged [start, end) minutes of the week; a window running past Sunday
    midnight into Monday is one window ending after ``WEEK_MINUTES``."""
    spans = sorted(
        (day * DAY_MINUTES + start, day * DAY_MINUTES + (DAY_MINUTES if end == LAST_MINUTE else end))
        for day, start, end in slots
        if start < end
    )
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    if merged and merged[0][0] == 0 and merged[-1][1] == WEEK_MINUTES:
        merged[-1][1] = WEEK_MINUTES + merged[0][1]  # (all week long: up to two weeks)
    return [(start, end) for start, end in merged]


def clashes(starts: int, ends: int, other_starts: int, other_ends: int, rest: int) -> bool:
    """Two shifts overlap or leave less than ``rest`` minutes between them."""
    return starts < other_ends + rest and other_starts < ends + rest


def fits(
    starts: int,
    ends: int,
    week: int,
    held: Sequence[tuple[int, int]],
    week_left: Mapping[int, int],
    rest: int,
) -> bool:
    """A volunteer holding ``held`` with ``week_left`` minutes of room may also take this shift."""
    if week_left[week] < ends - starts:
        return False
    return not any(clashes(starts, ends, other_start, other_end, rest) for other_start, other_end in held)


# --- candidates --------------------------------------------------------------------------------


def rank_of(shift: ShiftInput, volunteer: VolunteerInput) -> Rank:
    if volunteer.grid == shift.grid:
        return Rank.HOME_GRID
    if volunteer.community == shift.community:
        return Rank.COMMUNITY
    return Rank.SUBDISTRICT


class _AvailabilityIndex:
    """The volunteers of one sub-district whose availability covers a weekly position, vectorised.

    Shifts repeat at the same local times, so answers are cached by (sub-district, zone, position,
    length): the 10,000-shift benchmark asks a few hundred distinct questions, not 10,000.
    """

    def __init__(self, volunteers: Sequence[VolunteerInput]) -> None:
        columns: dict[tuple[int, str], tuple[list[int], list[int], list[int]]] = defaultdict(
            lambda: ([], [], [])
        )
        self.zones: dict[int, list[str]] = defaultdict(list)
        for index, volunteer in enumerate(volunteers):
            key = (volunteer.subdistrict, volunteer.timezone)
            if key not in columns:
                self.zones[volunteer.subdistrict].append(volunteer.timezone)
            owners, starts, ends = columns[key]
            for start, end in weekly_windows(volunteer.availability):
                owners.append(index)
                starts.append(start)
                ends.append(end)
        self.arrays = {
            key: (np.asarray(o, dtype=np.int64), np.asarray(s, dtype=np.int64), np.asarray(e, dtype=np.int64))
            for key, (o, s, e) in columns.items()
        }
        self._cache: dict[tuple[int, str, int, int], np.ndarray] = {}

    def covering(self, subdistrict: int, zone: str, position: int, length: int) -> np.ndarray:
        key = (subdistrict, zone, position, length)
        found = self._cache.get(key)
        if found is None:
            owners, starts, ends = self.arrays[(subdistrict, zone)]
            found = np.unique(owners[(starts <= position) & (ends >= position + length)])
            self._cache[key] = found
        return found


def find_pairs(problem: Problem) -> tuple[Pairs, list[Funnel]]:
    """Every pair keeping the single-shift rules, and per shift how many volunteers pass each rule.

    Pairs come out ordered by shift (in the problem's order) then volunteer index, so the solver
    sees the same input for the same problem.
    """
    volunteers = problem.volunteers
    index = _AvailabilityIndex(volunteers)
    by_subdistrict: dict[int, list[int]] = defaultdict(list)
    live: dict[int, set[int]] = defaultdict(set)
    for position, volunteer in enumerate(volunteers):
        by_subdistrict[volunteer.subdistrict].append(position)
        for shift_id in volunteer.live_shifts:
            live[shift_id].add(position)
    positions: dict[tuple[str, int], tuple[int, int, int]] = {}
    pairs = Pairs()
    funnels: list[Funnel] = []
    for shift_index, shift in enumerate(problem.shifts):
        funnel = Funnel()
        funnels.append(funnel)
        already_on = live.get(shift.id, set())
        nearby = by_subdistrict.get(shift.subdistrict, [])
        funnel.nearby = len(nearby) - sum(1 for v in already_on if volunteers[v].subdistrict == shift.subdistrict)
        length = shift.ends - shift.starts
        for zone in index.zones.get(shift.subdistrict, []):
            key = (zone, shift_index)
            if key not in positions:
                positions[key] = local_position(shift.starts, shift.ends, zone)
            position, local_length, week = positions[key]
            for volunteer_index in index.covering(shift.subdistrict, zone, position, local_length).tolist():
                if volunteer_index in already_on:
                    continue
                funnel.available += 1
                volunteer = volunteers[volunteer_index]
                if volunteer.busy and any(
                    clashes(shift.starts, shift.ends, start, end, problem.min_rest)
                    for start, end in volunteer.busy
                ):
                    continue
                funnel.clear += 1
                if problem.weekly_cap - volunteer.week_minutes.get(week, 0) < length:
                    continue
                funnel.eligible += 1
                pairs.shift.append(shift_index)
                pairs.volunteer.append(volunteer_index)
                pairs.rank.append(int(rank_of(shift, volunteer)))
                pairs.week.append(week)
    return pairs, funnels


def reason_for(funnel: Funnel, open_left: int) -> Reason:
    """The first rule that left no candidate; if candidates were left, the plan used them."""
    if open_left <= 0:
        return Reason.REQUIRED_KIND_MISSING
    if funnel.nearby <= 0:
        return Reason.NO_VOLUNTEERS_NEARBY
    if funnel.available == 0:
        return Reason.NO_VOLUNTEER_AVAILABLE
    if funnel.clear == 0:
        return Reason.CLASH_OR_REST
    if funnel.eligible == 0:
        return Reason.WEEKLY_CAP_REACHED
    return Reason.USED_ELSEWHERE


def plan_cost(problem: Problem, pairs: Pairs, chosen: Sequence[int]) -> int:
    """The objective after places filled, for chosen pair indices (lower is better)."""
    cost = sum(RANK_COST[pairs.rank[p]] for p in chosen)
    per_shift_kind: dict[tuple[int, str], int] = defaultdict(int)
    per_volunteer: dict[int, int] = defaultdict(int)
    for p in chosen:
        per_shift_kind[(pairs.shift[p], problem.volunteers[pairs.volunteer[p]].kind)] += 1
        per_volunteer[pairs.volunteer[p]] += 1
    for s, shift in enumerate(problem.shifts):
        for kind, need in shift.needs:
            cost -= KIND_BONUS * min(need, per_shift_kind.get((s, kind), 0))
    for v, count in per_volunteer.items():
        base = len(problem.volunteers[v].busy)
        cost += sum(BALANCE_STEP * (base + j) for j in range(count))
    return cost


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
