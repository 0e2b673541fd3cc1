"""Auto-fill, the plan as it grows: places, kinds, held shifts and weekly room, as numpy columns.

Shared by the solver's rounds (``shifts.autofill.solver``) and one round's flow graph
(``shifts.autofill.flow``); every pair it takes is one ``model.find_pairs`` returned, re-checked
with ``model.fits`` when a volunteer takes several.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from shifts.autofill.model import Pairs, Problem, clashing, fits


class PlanState:
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
            int(self.starts[p]),
            int(self.ends[p]),
            int(self.week_column[p]),
            self.held[v],
            self.room[v],
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
