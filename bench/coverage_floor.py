"""The floor of the coverage report: the same answer as ``GET /api/v1/reports/coverage`` for an area
and a period, by hand-written SQL over one psycopg connection.

The area's grids come first, into a temporary table with each grid's own bounds of the period and
of the previous one (its local midnights), its weekly target and the last local day that is over.
Then one statement per section, each set-based over that table:

- the figures: the scheduled shifts of both periods (one scan: the previous period ends where this
  one starts) with their served minutes, aggregated per grid and period, target and expected
  minutes and their basis worked out per grid, and the area's totals from the same pass
  (``GROUPING SETS``);
- the uncovered shifts: ended, nothing served; the first 50 of each grid and their count, by
  window functions;
- the days without patrol: each grid's elapsed days less the local days its served shifts touched,
  as ranges of consecutive days (gaps and islands);
- the grids below a steward quota.

Which rows count is the service's rule (``reports/coverage/service.py``). Only the percentages
(``coverage_pct``, ``coverage_change``) and the rank, which orders grids by the rounded
percentage, are worked out in Python from the SQL's integers: the service rounds a float half to
even, and PostgreSQL's ``round(numeric)`` rounds half away from zero, so an exact tie such as
0.25 % would differ. ``as_of`` is the caller's (the API's, so both count the same ended shifts and
elapsed days); nothing else is copied. The answer is laid out as the endpoint's JSON (instants and
dates as its text), so the two compare equal after a JSON round trip.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

COUNTED = "('verified', 'approved')"
#: Uncovered shifts listed per grid (the count is always complete), as the service.
UNCOVERED_SHIFTS_SHOWN = 50
FIGURES = ("shift_count", "planned_minutes", "target_minutes", "expected_minutes", "staffed_minutes", "served_minutes")

_AREA = """
SELECT id, name, level, timezone, path,
       %(first)s::timestamp AT TIME ZONE %(tz)s, (%(last)s + 1)::timestamp AT TIME ZONE %(tz)s,
       %(prev_first)s::timestamp AT TIME ZONE %(tz)s, (%(prev_last)s + 1)::timestamp AT TIME ZONE %(tz)s
FROM areas WHERE id = %(area)s
"""

_GRIDS = (
    "CREATE TEMP TABLE IF NOT EXISTS coverage_grids (grid_id int PRIMARY KEY, name text, code text, path text, "
    "timezone text, weekly_target int, prev_starts timestamptz, starts timestamptz, ends timestamptz, "
    "last_day date)",
    "TRUNCATE coverage_grids",
    """
    INSERT INTO coverage_grids
    SELECT g.id, g.name, g.code, g.path, g.timezone, t.weekly_target_minutes,
           %(prev_first)s::timestamp AT TIME ZONE g.timezone,
           %(first)s::timestamp AT TIME ZONE g.timezone,
           (%(last)s + 1)::timestamp AT TIME ZONE g.timezone,
           -- today (in the grid's zone) is not over: days count up to yesterday
           least(%(last)s, (%(as_of)s AT TIME ZONE g.timezone)::date - 1)
    FROM areas g LEFT JOIN grid_patrol_targets t ON t.grid_id = g.id
    WHERE g.level = 'grid' AND g.path LIKE %(subtree)s
    """,
    "ANALYZE coverage_grids",
)

_FIGURES = f"""
WITH scheduled AS (
    SELECT g.grid_id, s.id, s.starts_at >= g.starts AS is_now, s.max_headcount, s.primary_count,
           floor(extract(epoch FROM s.ends_at - s.starts_at))::bigint / 60 AS minutes
    FROM coverage_grids g JOIN shifts s ON s.grid_id = g.grid_id
    WHERE s.status = 'scheduled' AND s.starts_at >= g.prev_starts AND s.starts_at < g.ends
), served AS (
    SELECT p.shift_id, sum(p.served_minutes) AS minutes
    FROM scheduled sc JOIN patrols p ON p.shift_id = sc.id
    WHERE p.presence_status IN {COUNTED} AND p.served_minutes > 0
    GROUP BY p.shift_id
), by_grid AS (
    SELECT sc.grid_id, sc.is_now, count(*) AS shift_count,
           sum(sc.max_headcount * sc.minutes) AS planned, sum(sc.primary_count * sc.minutes) AS staffed,
           coalesce(sum(sv.minutes), 0) AS served
    FROM scheduled sc LEFT JOIN served sv ON sv.shift_id = sc.id
    GROUP BY sc.grid_id, sc.is_now
), grid_period AS (
    SELECT g.grid_id, p.is_now,
           coalesce(b.shift_count, 0) AS shift_count, coalesce(b.planned, 0) AS planned,
           coalesce((2 * g.weekly_target * p.days + 7) / 14, 0) AS target,  -- × days / 7, half up
           coalesce(b.staffed, 0) AS staffed, coalesce(b.served, 0) AS served
    FROM coverage_grids g
    CROSS JOIN (VALUES (true, %(days)s::int), (false, %(prev_days)s::int)) p(is_now, days)
    LEFT JOIN by_grid b ON b.grid_id = g.grid_id AND b.is_now = p.is_now
), settled AS (
    SELECT *, greatest(planned, target) AS expected FROM grid_period
)
SELECT grid_id, is_now, sum(shift_count), sum(planned), sum(target), sum(expected), sum(staffed), sum(served),
       CASE WHEN sum(expected) = 0 THEN 'none' WHEN sum(planned) >= sum(target) THEN 'shifts' ELSE 'target' END,
       count(*) FILTER (WHERE shift_count = 0)
FROM settled
GROUP BY GROUPING SETS ((grid_id, is_now), (is_now))
"""

_UNCOVERED = f"""
WITH uncovered AS (
    SELECT g.grid_id, s.id, s.starts_at, s.ends_at,
           to_char(s.starts_at AT TIME ZONE g.timezone, 'YYYY-MM-DD"T"HH24:MI:SS') AS starts_local,
           row_number() OVER (PARTITION BY g.grid_id ORDER BY s.starts_at, s.id) AS position,
           count(*) OVER (PARTITION BY g.grid_id) AS total
    FROM coverage_grids g JOIN shifts s ON s.grid_id = g.grid_id
    WHERE s.status = 'scheduled' AND s.starts_at >= g.starts AND s.starts_at < g.ends AND s.ends_at <= %(as_of)s
      AND NOT EXISTS (SELECT 1 FROM patrols p WHERE p.shift_id = s.id
                      AND p.presence_status IN {COUNTED} AND p.served_minutes > 0)
)
SELECT grid_id, id, starts_at, ends_at, starts_local, total FROM uncovered
WHERE position <= %(shown)s ORDER BY grid_id, position
"""

_DAYS_WITHOUT_PATROL = f"""
WITH patrolled AS (
    -- every local day a served shift touching the period touched (one across midnight: both)
    SELECT DISTINCT g.grid_id, touched.local_day::date AS day
    FROM coverage_grids g
    JOIN shifts s ON s.grid_id = g.grid_id
    CROSS JOIN LATERAL generate_series((s.starts_at AT TIME ZONE g.timezone)::date,
                                       ((s.ends_at - interval '1 microsecond') AT TIME ZONE g.timezone)::date,
                                       interval '1 day') AS touched(local_day)
    WHERE s.status = 'scheduled' AND s.starts_at < g.ends AND s.ends_at > g.starts
      AND EXISTS (SELECT 1 FROM patrols p WHERE p.shift_id = s.id
                  AND p.presence_status IN {COUNTED} AND p.served_minutes > 0)
), empty AS (
    SELECT g.grid_id, elapsed.local_day::date AS day
    FROM coverage_grids g
    CROSS JOIN LATERAL generate_series(%(first)s::date, g.last_day, interval '1 day') AS elapsed(local_day)
    WHERE NOT EXISTS (SELECT 1 FROM patrolled pd WHERE pd.grid_id = g.grid_id AND pd.day = elapsed.local_day::date)
), islands AS (
    -- consecutive days share day - their position
    SELECT grid_id, day, day - row_number() OVER (PARTITION BY grid_id ORDER BY day)::int AS island FROM empty
)
SELECT grid_id, min(day), max(day), count(*) FROM islands GROUP BY grid_id, island ORDER BY grid_id, min(day)
"""

_BELOW_QUOTA = """
SELECT q.grid_id, a.name, q.kind_code, q.min_active, count(v.id) AS active
FROM grid_quotas q
JOIN areas a ON a.id = q.grid_id
JOIN volunteer_kinds k ON k.code = q.kind_code
LEFT JOIN volunteers v ON v.home_grid_id = q.grid_id AND v.kind_id = k.id AND v.status = 'active'
WHERE a.path LIKE %(subtree)s
GROUP BY q.grid_id, a.name, q.kind_code, q.min_active
HAVING count(v.id) < q.min_active
ORDER BY q.min_active - count(v.id) DESC, q.grid_id, q.kind_code
"""


def _percentage(part: int, whole: int) -> float | None:
    return round(part * 100 / whole, 1) if whole else None


def _change(now: float | None, before: float | None) -> float | None:
    return None if now is None or before is None else round(now - before, 1)


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def previous_period(kind: str, first: date, last: date) -> tuple[date, date]:
    """The period of the same kind right before ``first``..``last``: as many months for a month,
    quarter or year, as many days for a range."""
    if kind == "range":
        return first - timedelta(days=(last - first).days + 1), first - timedelta(days=1)
    months = {"month": 1, "quarter": 3, "year": 12}[kind]
    index = first.year * 12 + first.month - 1 - months
    return date(index // 12, index % 12 + 1, 1), first - timedelta(days=1)


def _label(kind: str, first: date, last: date) -> str:
    if kind == "month":
        return f"{first.year:04d}-{first.month:02d}"
    if kind == "quarter":
        return f"{first.year:04d}-Q{(first.month - 1) // 3 + 1}"
    if kind == "year":
        return f"{first.year:04d}"
    return f"{first.isoformat()}/{last.isoformat()}"


def _period_view(kind: str, first: date, last: date, starts_at: datetime, ends_at: datetime) -> dict[str, Any]:
    return {
        "kind": kind,
        "label": _label(kind, first, last),
        "first": first.isoformat(),
        "last": last.isoformat(),
        "days": (last - first).days + 1,
        "starts_at": _instant(starts_at),
        "ends_at": _instant(ends_at),
    }


def _figures_view(row: tuple[Any, ...]) -> dict[str, Any]:
    """The figures of a grid or of the area from a row of ``_FIGURES`` (after grid and period)."""
    view: dict[str, Any] = {name: int(value) for name, value in zip(FIGURES, row[:6], strict=True)}
    view["coverage_pct"] = _percentage(view["served_minutes"], view["expected_minutes"])
    return view


def coverage(
    connection: psycopg.Connection,
    area_id: int,
    period_first: date,
    period_last: date,
    tz: str,
    kind: str,
    as_of: datetime,
) -> dict[str, Any]:
    """The coverage report of ``area_id`` for local dates ``period_first``..``period_last`` (a
    ``kind`` of ``month``, ``quarter``, ``year`` or ``range``; ``tz``: the zone the period is read
    in, the area's), as of ``as_of``: ``CoverageReportSchema`` as JSON."""
    prev_first, prev_last = previous_period(kind, period_first, period_last)
    params: dict[str, Any] = {
        "area": area_id,
        "first": period_first,
        "last": period_last,
        "prev_first": prev_first,
        "prev_last": prev_last,
        "days": (period_last - period_first).days + 1,
        "prev_days": (prev_last - prev_first).days + 1,
        "tz": tz,
        "as_of": as_of,
        "shown": UNCOVERED_SHIFTS_SHOWN,
    }
    with connection.cursor() as cursor:
        area = cursor.execute(_AREA, params).fetchone()
        if area is None:
            raise LookupError(f"no area {area_id}")
        identifier, name, level, timezone, path, starts, ends, prev_starts, prev_ends = area
        params["subtree"] = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        for statement in _GRIDS:
            cursor.execute(statement, params)
        grids: dict[int, dict[str, Any]] = {
            grid_id: {
                "grid_id": grid_id,
                "grid_name": grid_name,
                "grid_code": code,
                "path": grid_path,
                "timezone": grid_zone,
                "weekly_target_minutes": weekly,
                "uncovered_shift_count": 0,
                "uncovered_shifts": [],
                "days_without_patrol_count": 0,
                "days_without_patrol": [],
            }
            for grid_id, grid_name, code, grid_path, grid_zone, weekly in cursor.execute(
                "SELECT grid_id, name, code, path, timezone, weekly_target FROM coverage_grids"
            )
        }
        totals: dict[bool, dict[str, Any]] = {}
        without_shifts = 0
        for grid_id, is_now, *row in cursor.execute(_FIGURES, params):
            view = _figures_view(row)
            if grid_id is None:
                totals[is_now] = view
                if is_now:
                    without_shifts = int(row[7])
            elif is_now:
                grids[grid_id].update(view, expected_basis=row[6])
            else:
                grids[grid_id]["previous"] = {**view, "expected_basis": row[6]}
        for grid_id, shift_id, shift_starts, shift_ends, starts_local, total in cursor.execute(_UNCOVERED, params):
            grids[grid_id]["uncovered_shift_count"] = total
            grids[grid_id]["uncovered_shifts"].append(
                {
                    "shift_id": shift_id,
                    "starts_at": _instant(shift_starts),
                    "ends_at": _instant(shift_ends),
                    "starts_local": starts_local,
                }
            )
        for grid_id, first, last, count in cursor.execute(_DAYS_WITHOUT_PATROL, params):
            grids[grid_id]["days_without_patrol_count"] += count
            grids[grid_id]["days_without_patrol"].append({"first": first.isoformat(), "last": last.isoformat()})
        below_quota = [
            {"grid_id": grid_id, "grid_name": grid_name, "kind": kind_code, "min_active": minimum,
             "active": active, "missing": minimum - active}
            for grid_id, grid_name, kind_code, minimum, active in cursor.execute(_BELOW_QUOTA, params)
        ]  # fmt: skip
    connection.commit()

    for grid in grids.values():
        grid["coverage_change"] = _change(grid["coverage_pct"], grid["previous"]["coverage_pct"])
    # Weakest first: no scheduled shift at all, then by the (rounded) coverage, then served minutes.
    ranked = sorted(
        grids.values(),
        key=lambda grid: (grid["shift_count"] > 0, grid["coverage_pct"] or 0.0, grid["served_minutes"], grid["grid_id"]),
    )
    for rank, grid in enumerate(ranked, start=1):
        grid["rank"] = rank
    now = totals.get(True) or _figures_view((0,) * 6)
    before = totals.get(False) or _figures_view((0,) * 6)
    return {
        "area": {"id": identifier, "name": name, "level": level, "timezone": timezone},
        "period": _period_view(kind, period_first, period_last, starts, ends),
        "previous_period": _period_view(kind, prev_first, prev_last, prev_starts, prev_ends),
        "totals": {
            "grid_count": len(ranked),
            "grids_without_shifts": without_shifts,
            **now,
            "previous": before,
            "coverage_change": _change(now["coverage_pct"], before["coverage_pct"]),
        },
        "grids": ranked,
        "below_quota": below_quota,
    }
