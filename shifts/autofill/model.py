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
    """Every (shift, volunteer) pair that keeps all single-shift rules, as parallel arrays of indices
    (int64): 500,000 pairs for a city, so one array per column rather than an object per pair."""

    shift: np.ndarray
    volunteer: np.ndarray
    rank: np.ndarray
    week: np.ndarray  # the shift's local week for this volunteer

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
        windows_of: dict[tuple[tuple[int, int, int], ...], list[tuple[int, int]]] = {}
        for index, volunteer in enumerate(volunteers):
            key = (volunteer.subdistrict, volunteer.timezone)
            if key not in columns:
                self.zones[volunteer.subdistrict].append(volunteer.timezone)
            owners, starts, ends = columns[key]
            pattern = tuple(volunteer.availability)
            windows = windows_of.get(pattern)
            if windows is None:  # many volunteers share a pattern ("weekday evenings")
                windows = windows_of[pattern] = weekly_windows(pattern)
            for start, end in windows:
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


def clashing(
    volunteer: np.ndarray, starts: np.ndarray, ends: np.ndarray,
    first: np.ndarray, held_starts: np.ndarray, held_ends: np.ndarray, rest: int,
) -> np.ndarray:
    """:func:`clashes` in bulk: whether each (volunteer, starts, ends) clashes with any shift the
    volunteer holds. Volunteer ``v`` holds ``held_*[first[v]:first[v + 1]]``."""
    found = np.zeros(len(volunteer), dtype=bool)
    times = first[volunteer + 1] - first[volunteer]
    holding = np.flatnonzero(times > 0)
    if len(holding):
        times = times[holding]
        offsets = np.cumsum(times) - times
        which = np.repeat(first[volunteer[holding]], times) + (np.arange(int(times.sum())) - np.repeat(offsets, times))
        clash = (np.repeat(starts[holding], times) < held_ends[which] + rest) & (
            held_starts[which] < np.repeat(ends[holding], times) + rest
        )
        found[holding[np.logical_or.reduceat(clash, offsets)]] = True
    return found


def _counts(of_shift: np.ndarray, where: np.ndarray, shifts: int) -> list[int]:
    return np.bincount(of_shift[where], minlength=shifts).tolist()


def find_pairs(problem: Problem) -> tuple[Pairs, list[Funnel]]:
    """Every pair keeping the single-shift rules, and per shift how many volunteers pass each rule.

    Pairs come out ordered by shift (in the problem's order), then the volunteers' time zones (in
    order of first appearance), then volunteer index, so the solver sees the same input for the same
    problem. The rules are applied to all pairs at once as numpy columns: a Python loop over half a
    million pairs was most of a city's planning time.
    """
    volunteers, shifts = problem.volunteers, problem.shifts
    index = _AvailabilityIndex(volunteers)
    people = len(volunteers)
    per_subdistrict: dict[int, int] = defaultdict(int)
    for volunteer in volunteers:
        per_subdistrict[volunteer.subdistrict] += 1

    # Candidates by availability, one block per (shift, zone): shifts repeat at the same local times.
    positions: dict[tuple[str, int, int], tuple[int, int, int]] = {}
    blocks: list[np.ndarray] = []
    block_shift: list[int] = []
    block_week: list[int] = []
    for shift_index, shift in enumerate(shifts):
        for zone in index.zones.get(shift.subdistrict, []):
            key = (zone, shift.starts, shift.ends)
            if key not in positions:
                positions[key] = local_position(shift.starts, shift.ends, zone)
            position, local_length, week = positions[key]
            found = index.covering(shift.subdistrict, zone, position, local_length)
            if len(found):
                blocks.append(found)
                block_shift.append(shift_index)
                block_week.append(week)
    sizes = np.fromiter((len(block) for block in blocks), dtype=np.int64, count=len(blocks))
    of_volunteer = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
    of_shift = np.repeat(np.asarray(block_shift, dtype=np.int64), sizes)
    of_week = np.repeat(np.asarray(block_week, dtype=np.int64), sizes)

    shift_starts = np.fromiter((s.starts for s in shifts), dtype=np.int64, count=len(shifts))
    shift_ends = np.fromiter((s.ends for s in shifts), dtype=np.int64, count=len(shifts))
    starts, ends = shift_starts[of_shift], shift_ends[of_shift]

    # Already live on the shift: out before any count, as if they were not nearby.
    shift_of_id = {s.id: position for position, s in enumerate(shifts)}
    live_keys = [
        shift_of_id[shift_id] * people + position
        for position, person in enumerate(volunteers)
        for shift_id in person.live_shifts
        if shift_id in shift_of_id
    ]
    live_on_shift = [0] * len(shifts)
    for live_key in live_keys:
        shift_index, position = divmod(live_key, people)
        if volunteers[position].subdistrict == shifts[shift_index].subdistrict:
            live_on_shift[shift_index] += 1
    available = (
        ~np.isin(of_shift * people + of_volunteer, np.asarray(live_keys, dtype=np.int64))
        if live_keys else np.ones(len(of_shift), dtype=np.bool_)
    )

    # Clashes with held shifts: each candidate whose volunteer holds some, against each held shift.
    held_count = np.fromiter((len(v.busy) for v in volunteers), dtype=np.int64, count=people)
    held_first = np.concatenate(([0], np.cumsum(held_count)))
    held_starts = np.fromiter((s for v in volunteers for s, _ in v.busy), dtype=np.int64, count=int(held_first[-1]))
    held_ends = np.fromiter((e for v in volunteers for _, e in v.busy), dtype=np.int64, count=int(held_first[-1]))
    clear = available & ~clashing(of_volunteer, starts, ends, held_first, held_starts, held_ends, problem.min_rest)

    # Room under the weekly cap, from the minutes held in each local week the shifts fall in.
    weeks, week_column = np.unique(of_week, return_inverse=True)
    column_of = {int(w): c for c, w in enumerate(weeks.tolist())}
    held_minutes = np.zeros((people, max(len(weeks), 1)), dtype=np.int64)
    for position, person in enumerate(volunteers):
        for held_week, minutes in person.week_minutes.items():
            column = column_of.get(held_week)
            if column is not None:
                held_minutes[position, column] = minutes
    eligible = clear & (problem.weekly_cap - held_minutes[of_volunteer, week_column] >= ends - starts)

    grid = np.fromiter((v.grid for v in volunteers), dtype=np.int64, count=people)[of_volunteer]
    community = np.fromiter((v.community for v in volunteers), dtype=np.int64, count=people)[of_volunteer]
    shift_grid = np.fromiter((s.grid for s in shifts), dtype=np.int64, count=len(shifts))[of_shift]
    shift_community = np.fromiter((s.community for s in shifts), dtype=np.int64, count=len(shifts))[of_shift]
    rank = np.where(
        grid == shift_grid, int(Rank.HOME_GRID), np.where(community == shift_community, int(Rank.COMMUNITY), int(Rank.SUBDISTRICT))
    )

    counts = [_counts(of_shift, mask, len(shifts)) for mask in (available, clear, eligible)]
    funnels = [
        Funnel(per_subdistrict.get(s.subdistrict, 0) - live_on_shift[i], counts[0][i], counts[1][i], counts[2][i])
        for i, s in enumerate(shifts)
    ]
    pairs = Pairs(shift=of_shift[eligible], volunteer=of_volunteer[eligible], rank=rank[eligible], week=of_week[eligible])
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
    picked = np.asarray(chosen, dtype=np.int64)
    shift, volunteer = pairs.shift[picked].tolist(), pairs.volunteer[picked].tolist()
    cost = sum(RANK_COST[rank] for rank in pairs.rank[picked].tolist())
    per_shift_kind: dict[tuple[int, str], int] = defaultdict(int)
    per_volunteer: dict[int, int] = defaultdict(int)
    for s, v in zip(shift, volunteer, strict=True):
        per_shift_kind[(s, problem.volunteers[v].kind)] += 1
        per_volunteer[v] += 1
    for s, shift in enumerate(problem.shifts):
        for kind, need in shift.needs:
            cost -= KIND_BONUS * min(need, per_shift_kind.get((s, kind), 0))
    for v, count in per_volunteer.items():
        base = len(problem.volunteers[v].busy)
        cost += sum(BALANCE_STEP * (base + j) for j in range(count))
    return cost
