"""An area's participation figures as the sum of its child areas' (areas above a grid).

Every grid under an area lies under exactly one of its children, and every count and minute of the
report is counted by a grid (the shift's, the report's, the record's or the volunteer's home grid),
so the children's figures add up to the area's: computing them once, by child, and summing gives the
area's total without a second pass over the same rows. Rates and hours are recomputed from the sums;
medians do not add up and come from their own query (:func:`reports.participation.medians.report_medians`).
A grid's children are volunteers, who do not partition it (a visitor's points belong to their home
grid): a grid's total is computed directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from reports.participation.figures import LEVELS, _presence_figures, _shift_figures, empty_volunteers, star_levels

_SHIFT_COUNTS = ("planned", "cancelled", "places_planned", "places_filled")
_PRESENCE_COUNTS = ("assignments", "served", "no_shows", "late_withdrawals", "in_review", "served_minutes")
_REPORT_COUNTS = ("filed", "taken_up", "resolved")
_POINT_SUMS = ("awarded", "reversed", "redeemed", "expired", "adjusted")


def _add(into: dict[str, Any], other: dict[str, Any], names: Iterable[str]) -> None:
    for name in names:
        into[name] = into.get(name, 0) + other[name]


def summed(children: list[dict[str, Any]], kinds: list[str], medians: dict[str, float | None]) -> dict[str, Any]:
    """The figures of an area from its children's ``figures`` (``ParticipationFiguresSchema``)."""
    volunteers = empty_volunteers(kinds)
    shifts: dict[str, Any] = {}
    presence: dict[str, Any] = {}
    manual_minutes = 0
    reports: dict[str, Any] = {**dict.fromkeys(_REPORT_COUNTS, 0), "by_level": dict.fromkeys(LEVELS, 0)}
    points: dict[str, Any] = {**dict.fromkeys(_POINT_SUMS, 0), "badges": {}}
    for figures in children:
        child_volunteers = figures["volunteers"]
        _add(volunteers, child_volunteers, (name for name in volunteers if name != "by_kind"))
        for code, counts in child_volunteers["by_kind"].items():
            _add(volunteers["by_kind"].setdefault(code, {}), counts, counts)
        if figures["shifts"] is not None:
            _add(shifts, figures["shifts"], _SHIFT_COUNTS)
        _add(presence, figures["presence"], _PRESENCE_COUNTS)
        manual_minutes += figures["presence"]["manual_minutes"]
        _add(reports, figures["reports"], _REPORT_COUNTS)
        _add(reports["by_level"], figures["reports"]["by_level"], figures["reports"]["by_level"])
        _add(points, figures["points"], _POINT_SUMS)
        _add(points["badges"], figures["points"]["badges"], figures["points"]["badges"])
    reports.update(medians)
    points["star_levels"] = star_levels(points["badges"])
    return {
        "volunteers": volunteers,
        "shifts": _shift_figures(shifts),
        "presence": _presence_figures(presence, manual_minutes),
        "reports": reports,
        "points": points,
    }
