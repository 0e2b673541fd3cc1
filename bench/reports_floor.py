"""The floor of the participation report: the same figures as ``GET /api/v1/reports/participation``
(the area and each child area, no series), by hand-written SQL over one psycopg connection.

Each section is one statement grouped by ``GROUPING SETS ((child), ())``, so the area's total and
its children come from one pass over the rows; the grids of the area and the child each belongs to
come first, in a temporary table. Which rows count is the service's rule
(``reports/participation/service.py``); the figures are laid out as the endpoint's JSON, so that the
two can be compared for equality before either is timed.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg

COUNTED = "('verified', 'approved')"
EARNING = "('served_shift', 'manual_hours', 'report_bonus', 'streak_bonus')"
LEVELS = ("red", "orange", "yellow", "green")
VOLUNTEER_COUNTS = ("registered", "approved", "newly_approved", "suspended_closed", "active")

_GRIDS = (
    "CREATE TEMP TABLE IF NOT EXISTS floor_grids (grid_id int PRIMARY KEY, child_id int NOT NULL)",
    "TRUNCATE floor_grids",
    "INSERT INTO floor_grids SELECT g.id, c.id FROM areas c "
    "JOIN areas g ON g.level = 'grid' AND g.path LIKE c.path || '%%' WHERE c.parent_id = %(area)s",
    "ANALYZE floor_grids",
)

#: The volunteers' figures; ``{served}`` is the statement of the period's served volunteers
#: (from the patrols here, from the served-day bits in ``reports_floor_rollups``).
VOLUNTEERS_SERVED_BY = """
WITH last_status AS (
    SELECT DISTINCT ON (volunteer_id) volunteer_id, to_status FROM volunteer_status_changes
    WHERE at < %(ends)s ORDER BY volunteer_id, at DESC, id DESC
), approved_in AS (
    SELECT DISTINCT volunteer_id FROM volunteer_status_changes
    WHERE from_status = 'pending' AND to_status = 'active' AND at >= %(starts)s AND at < %(ends)s
), served AS ({served})
SELECT g.child_id, k.code,
       count(*) FILTER (WHERE v.created_at >= %(starts)s),
       count(*) FILTER (WHERE ls.to_status = 'active'),
       count(ai.volunteer_id),
       count(*) FILTER (WHERE ls.to_status IN ('suspended', 'retired')),
       count(sv.volunteer_id)
FROM volunteers v
JOIN floor_grids g ON g.grid_id = v.home_grid_id
JOIN volunteer_kinds k ON k.id = v.kind_id
LEFT JOIN last_status ls ON ls.volunteer_id = v.id
LEFT JOIN approved_in ai ON ai.volunteer_id = v.id
LEFT JOIN served sv ON sv.volunteer_id = v.id
WHERE v.created_at < %(ends)s
GROUP BY GROUPING SETS ((g.child_id, k.code), (k.code))
"""
_VOLUNTEERS = VOLUNTEERS_SERVED_BY.replace(
    "{served}",
    f"""
    SELECT DISTINCT p.volunteer_id FROM shifts s JOIN patrols p ON p.shift_id = s.id
    WHERE s.starts_at >= %(starts)s AND s.starts_at < %(ends)s AND s.status <> 'cancelled'
      AND p.presence_status IN {COUNTED} AND p.served_minutes IS NOT NULL
""",
)

_SHIFTS = """
SELECT g.child_id,
       count(*) FILTER (WHERE s.status <> 'cancelled'),
       count(*) FILTER (WHERE s.status = 'cancelled'),
       coalesce(sum(s.max_headcount) FILTER (WHERE s.status <> 'cancelled'), 0),
       coalesce(sum(least(coalesce(f.filled, 0), s.max_headcount)) FILTER (WHERE s.status <> 'cancelled'), 0)
FROM shifts s
JOIN floor_grids g ON g.grid_id = s.grid_id
LEFT JOIN (
    SELECT a.shift_id, count(*) AS filled FROM shift_assignments a JOIN shifts s ON s.id = a.shift_id
    WHERE s.starts_at >= %(starts)s AND s.starts_at < %(ends)s
      AND a.role = 'primary' AND a.status IN ('assigned', 'absent')
    GROUP BY a.shift_id
) f ON f.shift_id = s.id
WHERE s.starts_at >= %(starts)s AND s.starts_at < %(ends)s
GROUP BY GROUPING SETS ((g.child_id), ())
"""

_PRESENCE = f"""
SELECT g.child_id,
       count(*) FILTER (WHERE held),
       count(*) FILTER (WHERE held AND served),
       count(*) FILTER (WHERE a.status = 'absent'),
       count(*) FILTER (WHERE a.status = 'withdrawn' AND a.late_withdrawal),
       coalesce(sum(p.served_minutes) FILTER (WHERE held AND served), 0),
       count(*) FILTER (WHERE held AND p.presence_status = 'needs_review')
FROM shifts s
JOIN floor_grids g ON g.grid_id = s.grid_id
JOIN shift_assignments a ON a.shift_id = s.id
LEFT JOIN patrols p ON p.assignment_id = a.id
CROSS JOIN LATERAL (SELECT a.role = 'primary' AND a.status IN ('assigned', 'absent') AS held,
                           p.presence_status IN {COUNTED} AND p.served_minutes IS NOT NULL AS served) x
WHERE s.starts_at >= %(starts)s AND s.starts_at < %(ends)s AND s.status <> 'cancelled' AND s.ends_at <= %(as_of)s
GROUP BY GROUPING SETS ((g.child_id), ())
"""

_MANUAL = """
SELECT g.child_id, sum(r.minutes)
FROM service_records r JOIN floor_grids g ON g.grid_id = r.grid_id
WHERE r.source_type = 'manual' AND r.voided_at IS NULL AND r.served_on >= %(first)s AND r.served_on <= %(last)s
GROUP BY GROUPING SETS ((g.child_id), ())
"""

_REPORTS = """
WITH r AS (
    SELECT g.child_id, r.level, r.resolved_at,
           floor(extract(epoch FROM t.at - r.received_at))::bigint AS take_up_s,
           t.at IS NOT NULL AS taken,
           floor(extract(epoch FROM r.resolved_at - r.received_at))::bigint AS resolve_s
    FROM patrol_reports r
    JOIN floor_grids g ON g.grid_id = r.grid_id
    LEFT JOIN LATERAL (SELECT min(e.created_at) AS at FROM patrol_report_events e
                       WHERE e.report_id = r.id AND e.action <> 'filed') t ON true
    WHERE r.received_at >= %(starts)s AND r.received_at < %(ends)s
)
SELECT child_id, count(*),
       {levels},
       count(*) FILTER (WHERE taken), count(resolved_at),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY take_up_s),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY resolve_s)
FROM r GROUP BY GROUPING SETS ((child_id), ())
""".replace("{levels}", ", ".join(f"count(*) FILTER (WHERE level = '{level}')" for level in LEVELS))

_POINTS = f"""
SELECT g.child_id,
       coalesce(sum(e.amount) FILTER (WHERE e.reason IN {EARNING}), 0),
       coalesce(sum(-e.amount) FILTER (WHERE e.reason = 'reversal'), 0),
       coalesce(sum(-e.amount) FILTER (WHERE e.reason IN ('redemption', 'redemption_refund')), 0),
       coalesce(sum(-e.amount) FILTER (WHERE e.reason = 'expiry'), 0),
       coalesce(sum(e.amount) FILTER (WHERE e.reason = 'adjustment'), 0)
FROM ledger_entries e
JOIN volunteers v ON v.id = e.volunteer_id
JOIN floor_grids g ON g.grid_id = v.home_grid_id
WHERE e.created_at >= %(starts)s AND e.created_at < %(ends)s
GROUP BY GROUPING SETS ((g.child_id), ())
"""

_BADGES = """
SELECT g.child_id, b.badge, count(*)
FROM volunteer_badges b
JOIN volunteers v ON v.id = b.volunteer_id
JOIN floor_grids g ON g.grid_id = v.home_grid_id
WHERE b.earned_at >= %(starts)s AND b.earned_at < %(ends)s
GROUP BY GROUPING SETS ((g.child_id, b.badge), (b.badge))
"""


#: The star-level badges, in order (rewards/badges/service.py).
STAR_LEVELS = ("star_1", "star_2", "star_3", "star_4", "star_5")


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _hours(minutes: float | None) -> float:
    return round((minutes or 0) / 60, 2)


def _median_minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def _key(child: int | None) -> int:
    return 0 if child is None else child


def _empty(kinds: list[str]) -> dict[str, Any]:
    return {
        "volunteers": {
            **dict.fromkeys(VOLUNTEER_COUNTS, 0),
            "by_kind": {code: dict.fromkeys(VOLUNTEER_COUNTS, 0) for code in kinds},
        },
        "shifts": {"planned": 0, "cancelled": 0, "places_planned": 0, "places_filled": 0, "fill_rate": None},
        "presence": {
            "assignments": 0,
            "served": 0,
            "no_shows": 0,
            "late_withdrawals": 0,
            "in_review": 0,
            "attendance_rate": None,
            "served_minutes": 0,
            "served_hours": 0.0,
            "manual_minutes": 0,
            "manual_hours": 0.0,
        },
        "reports": {
            "filed": 0,
            "by_level": dict.fromkeys(LEVELS, 0),
            "taken_up": 0,
            "resolved": 0,
            "median_minutes_to_take_up": None,
            "median_minutes_to_resolve": None,
        },
        "points": {**dict.fromkeys(("awarded", "reversed", "redeemed", "expired", "adjusted"), 0), "badges": {}},
    }


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
    params = {"area": area_id, "starts": starts_at, "ends": ends_at, "first": first, "last": last, "as_of": as_of}
    with connection.cursor() as cursor:
        for statement in _GRIDS:
            cursor.execute(statement, params)
        children = [
            row[0] for row in cursor.execute("SELECT id FROM areas WHERE parent_id = %(area)s ORDER BY id", params)
        ]
        kinds = [row[0] for row in cursor.execute("SELECT code FROM volunteer_kinds ORDER BY id")]
        figures = {key: _empty(kinds) for key in (0, *children)}

        for child, kind, *counts in cursor.execute(_VOLUNTEERS, params):
            volunteers = figures[_key(child)]["volunteers"]
            for name, count in zip(VOLUNTEER_COUNTS, counts, strict=True):
                volunteers[name] += count
                volunteers["by_kind"][kind][name] = count
        for child, planned, cancelled, places, filled in cursor.execute(_SHIFTS, params):
            figures[_key(child)]["shifts"] = {
                "planned": planned,
                "cancelled": cancelled,
                "places_planned": int(places),
                "places_filled": int(filled),
                "fill_rate": _rate(int(filled), int(places)),
            }
        for child, assignments, served, no_shows, late, minutes, in_review in cursor.execute(_PRESENCE, params):
            figures[_key(child)]["presence"].update(
                assignments=assignments,
                served=served,
                no_shows=no_shows,
                late_withdrawals=late,
                in_review=in_review,
                attendance_rate=_rate(served, assignments),
                served_minutes=int(minutes),
                served_hours=_hours(int(minutes)),
            )
        for child, minutes in cursor.execute(_MANUAL, params):
            # The sum of no rows is NULL: a child with no hand-entered hours (a seeded city has none).
            figures[_key(child)]["presence"].update(
                manual_minutes=int(minutes or 0), manual_hours=_hours(int(minutes or 0))
            )
        for child, filed, *rest in cursor.execute(_REPORTS, params):
            by_level = dict(zip(LEVELS, rest[:4], strict=True))
            taken_up, resolved, take_up_s, resolve_s = rest[4:]
            figures[_key(child)]["reports"] = {
                "filed": filed,
                "by_level": by_level,
                "taken_up": taken_up,
                "resolved": resolved,
                "median_minutes_to_take_up": _median_minutes(take_up_s),
                "median_minutes_to_resolve": _median_minutes(resolve_s),
            }
        for child, *amounts in cursor.execute(_POINTS, params):
            names = ("awarded", "reversed", "redeemed", "expired", "adjusted")
            figures[_key(child)]["points"].update(
                {name: int(value) for name, value in zip(names, amounts, strict=True)}
            )
        for child, badge, count in cursor.execute(_BADGES, params):
            figures[_key(child)]["points"]["badges"][badge] = count
    for figure in figures.values():  # a star level is its badge: volunteers who earned it in the period
        points = figure["points"]
        points["star_levels"] = {star: points["badges"].get(star, 0) for star in STAR_LEVELS}
    connection.commit()
    return {"figures": figures[0], "children": [{"id": child, "figures": figures[child]} for child in children]}
