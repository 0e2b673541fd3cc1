"""Synthetic auto-fill problems for the benchmark: a seeded, realistic-looking city in memory.

Shape (``Shape``): sub-districts of communities of grids; volunteers spread unevenly over grids
(a gamma-distributed density per grid, so some grids are thin); weekly availability of one to
three slots at the usual patrol times, a fifth of volunteers "weekday evenings"; shifts at the
usual patrol times over two weeks, 1-5 places, a third needing one volunteer police; a tenth of
volunteers already hold one or two shifts. Same seed, same problem.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from shifts.autofill.model import Problem, ShiftInput, VolunteerInput, epoch_minutes, local_week

ZONE = "Asia/Shanghai"
KINDS = (("volunteer_police", 0.6), ("alley_steward", 0.3), ("herder_sentinel", 0.1))
#: (local start hour, hours, weight): morning, day and evening patrols, evenings most common.
SHIFT_TIMES = ((7, 2, 1), (9, 3, 2), (14, 3, 2), (19, 2, 4), (21, 2, 1))
SLOT_STARTS = (7, 8, 9, 13, 14, 18, 19)


@dataclass(frozen=True)
class Shape:
    shifts: int
    volunteers: int
    subdistricts: int
    communities_per_subdistrict: int = 5
    grids_per_community: int = 5
    days: int = 14
    first_day: date = date(2027, 3, 1)  # a Monday
    min_rest: int = 60
    weekly_cap_hours: int = 8
    max_places: int = 5
    evening_share: float = 0.2  # volunteers available every weekday evening
    max_slots: int = 3  # otherwise one to this many weekly slots
    staggered: bool = False  # shifts start at any quarter hour from 06:00 to 21:45, 2-4 h long


SHAPES = {
    "2k": Shape(shifts=2_000, volunteers=10_000, subdistricts=20),
    "10k": Shape(shifts=10_000, volunteers=50_000, subdistricts=100),
}


@dataclass(frozen=True)
class Grid:
    id: int
    community: int
    subdistrict: int


def grids_of(shape: Shape) -> list[Grid]:
    grids, next_id = [], 1
    for s in range(shape.subdistricts):
        subdistrict = 1_000_000 + s
        for c in range(shape.communities_per_subdistrict):
            community = 2_000_000 + s * 100 + c
            for _ in range(shape.grids_per_community):
                grids.append(Grid(next_id, community, subdistrict))
                next_id += 1
    return grids


def _local_minutes(day: date, hour: int, minute: int = 0) -> int:
    return epoch_minutes(datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(ZONE)))


def _availability(rng: random.Random, shape: Shape) -> tuple[tuple[int, int, int], ...]:
    if rng.random() < shape.evening_share:
        return tuple((day, 18 * 60, 22 * 60) for day in range(5))
    slots: dict[tuple[int, int], int] = {}
    for _ in range(rng.randint(1, shape.max_slots)):
        day, start = rng.randrange(7), rng.choice(SLOT_STARTS)
        slots[(day, start * 60)] = min(start * 60 + rng.randint(2, 5) * 60, 24 * 60 - 1)
    merged: list[tuple[int, int, int]] = []
    for (day, start), end in sorted(slots.items()):
        if merged and merged[-1][0] == day and start <= merged[-1][2]:
            merged[-1] = (day, merged[-1][1], max(end, merged[-1][2]))
        else:
            merged.append((day, start, end))
    return tuple(merged)


def _shift_time(rng: random.Random, shape: Shape) -> tuple[int, int]:
    day = shape.first_day + timedelta(days=rng.randrange(shape.days))
    if shape.staggered:
        starts = _local_minutes(day, 6) + rng.randrange(64) * 15
        return starts, starts + rng.randint(8, 16) * 15
    hour, hours, _ = rng.choices(SHIFT_TIMES, weights=[w for _, _, w in SHIFT_TIMES])[0]
    starts = _local_minutes(day, hour)
    return starts, starts + hours * 60


def generate(shape: Shape, seed: int = 20270301) -> Problem:
    rng = random.Random(seed)
    grids = grids_of(shape)
    density = [rng.gammavariate(1.5, 1.0) for _ in grids]
    homes = rng.choices(grids, weights=density, k=shape.volunteers)
    volunteers = []
    for index, home in enumerate(homes):
        kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
        busy: list[tuple[int, int]] = []
        weeks: dict[int, int] = {}
        if rng.random() < 0.1:
            for _ in range(rng.randint(1, 2)):
                starts, ends = _shift_time(rng, shape)
                if all(ends + shape.min_rest <= s or e + shape.min_rest <= starts for s, e in busy):
                    busy.append((starts, ends))
                    week = local_week(starts, ZONE)
                    weeks[week] = weeks.get(week, 0) + ends - starts
        volunteers.append(
            VolunteerInput(
                id=index + 1, kind=kind, grid=home.id, community=home.community,
                subdistrict=home.subdistrict, timezone=ZONE, availability=_availability(rng, shape),
                busy=tuple(sorted(busy)), week_minutes=weeks,
            )
        )
    shift_grids = rng.choices(grids, weights=[0.5 + d for d in density], k=shape.shifts)
    shifts = []
    for index, grid in enumerate(shift_grids):
        starts, ends = _shift_time(rng, shape)
        needs = (("volunteer_police", 1),) if rng.random() < 1 / 3 else ()
        shifts.append(
            ShiftInput(
                id=index + 1, starts=starts, ends=ends, open_places=rng.randint(1, shape.max_places), grid=grid.id,
                community=grid.community, subdistrict=grid.subdistrict, needs=needs,
            )
        )
    shifts.sort(key=lambda shift: (shift.starts, shift.id))
    return Problem(
        shifts=tuple(shifts), volunteers=tuple(volunteers), min_rest=shape.min_rest,
        weekly_cap=shape.weekly_cap_hours * 60,
    )


def utc(minutes: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
