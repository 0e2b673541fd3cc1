"""The floor of the participation report as the endpoint now computes it: the same figures from the
daily roll-ups (``reports/rollups/``) by hand-written SQL, so that API ÷ floor measures what our
code adds to that work. (``reports_floor.participation`` computes them from the raw rows: what the
figures cost from scratch, and the check that the roll-ups hold the rows' figures.)

As the endpoint does: the roll-ups for the settled days (every shift starting on them ended by
``as_of``: the day's end plus ``SHIFT_MAX_HOURS``), the raw rows for the days after; "active" from
the volunteers' served days; the medians of the reports from their rows over the whole period.
The benchmark's city is one time zone, which this floor checks rather than handles (the endpoint
reads a grid of another zone from its rows).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from reports_floor import (
    _BADGES,
    _GRIDS,
    _MANUAL,
    _POINTS,
    _PRESENCE,
    _REPORTS,
    _SHIFTS,
    LEVELS,
    STAR_LEVELS,
    VOLUNTEER_COUNTS,
    VOLUNTEERS_SERVED_BY,
    _empty,
    _hours,
    _key,
    _median_minutes,
    _rate,
)

SHIFT_MAX_HOURS = 12  # the app's default (shifts/settings.py), which the benchmark's server runs with

_VOLUNTEERS = VOLUNTEERS_SERVED_BY.replace(
    "{served}",
    """
    SELECT volunteer_id FROM report_volunteer_months
    WHERE month = ANY(%(months)s) AND served_days & ({mask}) <> 0
    GROUP BY volunteer_id
""",
)

_COLUMNS = (
    "planned", "cancelled", "places_planned", "places_filled",
    "assignments", "served", "no_shows", "late_withdrawals", "in_review", "served_minutes", "manual_minutes",
    "filed", "red", "orange", "yellow", "green", "taken_up", "resolved",
    "awarded", "reversed", "redeemed", "expired", "adjusted",
)
_ROLLUPS = f"""
SELECT g.child_id, {", ".join(f"sum(d.{name})" for name in _COLUMNS)}
FROM report_grid_days d JOIN floor_grids g ON g.grid_id = d.grid_id
WHERE d.day >= %(first)s AND d.day <= %(settled)s
GROUP BY GROUPING SETS ((g.child_id), ())
"""
_ROLLUP_BADGES = """
SELECT g.child_id, b.badge, sum(b.earned)
FROM report_grid_day_badges b JOIN floor_grids g ON g.grid_id = b.grid_id
WHERE b.day >= %(first)s AND b.day <= %(settled)s
GROUP BY GROUPING SETS ((g.child_id, b.badge), (b.badge))
"""
_MEDIANS = _REPORTS  # its medians; its counts come from the roll-ups and the tail


def _months(first: date, last: date) -> dict[date, int]:
    result: dict[date, int] = {}
    month = first.replace(day=1)
    while month <= last:
        following = (month + timedelta(days=32)).replace(day=1)
        low = first.day if month == first.replace(day=1) else 1
        high = last.day if following > last else (following - timedelta(days=1)).day
        result[month] = sum(1 << (day - 1) for day in range(low, high + 1))
        month = following
    return result


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def participation(
    connection: psycopg.Connection,
    area_id: int,
    starts_at: datetime,
    ends_at: datetime,
    first: date,
    last: date,
    as_of: datetime,
) -> dict[str, Any]:
    """``{"figures": …, "children": [{"id", "figures"}, …]}`` of the area (not a grid) for the period."""
    with connection.cursor() as cursor:
        zone_name = cursor.execute("SELECT timezone FROM areas WHERE id = %s", (area_id,)).fetchone()[0]  # type: ignore[index]
        zone = ZoneInfo(zone_name)
        settled = min(last, (as_of - timedelta(hours=SHIFT_MAX_HOURS)).astimezone(zone).date() - timedelta(days=1))
        months = _months(first, last)
        params: dict[str, Any] = {
            "area": area_id, "starts": starts_at, "ends": ends_at, "first": first, "last": last, "as_of": as_of,
            "settled": settled, "months": list(months),
        }
        for statement in _GRIDS:
            cursor.execute(statement, params)
        others = cursor.execute(
            "SELECT count(*) FROM floor_grids g JOIN areas a ON a.id = g.grid_id WHERE a.timezone <> %s", (zone_name,)
        ).fetchone()
        assert others is not None and others[0] == 0, "the floor handles one time zone (the benchmark's city)"
        children = [row[0] for row in cursor.execute("SELECT id FROM areas WHERE parent_id = %(area)s ORDER BY id", params)]
        kinds = [row[0] for row in cursor.execute("SELECT code FROM volunteer_kinds ORDER BY id")]
        sums: dict[int, dict[str, int]] = {key: dict.fromkeys(_COLUMNS, 0) for key in (0, *children)}
        badges: dict[int, dict[str, int]] = {key: {} for key in (0, *children)}
        figures = {key: _empty(kinds) for key in (0, *children)}

        mask = " ".join(f"WHEN month = DATE '{month.isoformat()}' THEN {bits}" for month, bits in months.items())
        for child, kind, *counts in cursor.execute(_VOLUNTEERS.replace("{mask}", f"CASE {mask} ELSE 0 END"), params):
            volunteers = figures[_key(child)]["volunteers"]
            for name, count in zip(VOLUNTEER_COUNTS, counts, strict=True):
                volunteers[name] += count
                volunteers["by_kind"][kind][name] = count
        if settled >= first:
            for child, *values in cursor.execute(_ROLLUPS, params):
                _add(sums[_key(child)], dict(zip(_COLUMNS, values, strict=True)))
            for child, badge, count in cursor.execute(_ROLLUP_BADGES, params):
                badges[_key(child)][badge] = badges[_key(child)].get(badge, 0) + int(count)
        if settled < last:
            _tail(cursor, params, settled + timedelta(days=1), zone, sums, badges)
        medians = {
            _key(child): (rest[-2], rest[-1]) for child, *rest in cursor.execute(_MEDIANS, params)
        }
    connection.commit()
    for key, figure in figures.items():
        _lay_out(figure, sums[key], badges[key], medians.get(key, (None, None)))
    return {"figures": figures[0], "children": [{"id": child, "figures": figures[child]} for child in children]}


def _add(into: dict[str, int], values: dict[str, Any]) -> None:
    for name, value in values.items():
        into[name] += int(value or 0)


def _tail(cursor: Any, params: dict[str, Any], first: date, zone: ZoneInfo,
          sums: dict[int, dict[str, int]], badges: dict[int, dict[str, int]]) -> None:
    """The days after the settled ones, from the rows (the raw floor's statements)."""
    tail = {**params, "starts": _midnight(first, zone), "first": first}
    for child, planned, cancelled, places, filled in cursor.execute(_SHIFTS, tail):
        _add(sums[_key(child)], {"planned": planned, "cancelled": cancelled, "places_planned": places,
                                 "places_filled": filled})
    names = ("assignments", "served", "no_shows", "late_withdrawals", "served_minutes", "in_review")
    for child, *values in cursor.execute(_PRESENCE, tail):
        _add(sums[_key(child)], dict(zip(names, values, strict=True)))
    for child, minutes in cursor.execute(_MANUAL, tail):
        _add(sums[_key(child)], {"manual_minutes": minutes})
    for child, filed, *rest in cursor.execute(_REPORTS, tail):
        _add(sums[_key(child)], {"filed": filed, **dict(zip(LEVELS, rest[:4], strict=True)),
                                 "taken_up": rest[4], "resolved": rest[5]})
    for child, *amounts in cursor.execute(_POINTS, tail):
        _add(sums[_key(child)], dict(zip(("awarded", "reversed", "redeemed", "expired", "adjusted"), amounts, strict=True)))
    for child, badge, count in cursor.execute(_BADGES, tail):
        badges[_key(child)][badge] = badges[_key(child)].get(badge, 0) + int(count)


def _lay_out(figure: dict[str, Any], sums: dict[str, int], badges: dict[str, int],
             medians: tuple[float | None, float | None]) -> None:
    figure["shifts"] = {
        **{name: sums[name] for name in ("planned", "cancelled", "places_planned", "places_filled")},
        "fill_rate": _rate(sums["places_filled"], sums["places_planned"]),
    }
    figure["presence"] = {
        **{name: sums[name] for name in ("assignments", "served", "no_shows", "late_withdrawals", "in_review")},
        "attendance_rate": _rate(sums["served"], sums["assignments"]),
        "served_minutes": sums["served_minutes"],
        "served_hours": _hours(sums["served_minutes"]),
        "manual_minutes": sums["manual_minutes"],
        "manual_hours": _hours(sums["manual_minutes"]),
    }
    figure["reports"] = {
        "filed": sums["filed"],
        "by_level": {level: sums[level] for level in LEVELS},
        "taken_up": sums["taken_up"],
        "resolved": sums["resolved"],
        "median_minutes_to_take_up": _median_minutes(medians[0]),
        "median_minutes_to_resolve": _median_minutes(medians[1]),
    }
    figure["points"] = {
        **{name: sums[name] for name in ("awarded", "reversed", "redeemed", "expired", "adjusted")},
        "badges": {badge: n for badge, n in badges.items() if n},
        "star_levels": {star: badges.get(star, 0) for star in STAR_LEVELS},
    }


