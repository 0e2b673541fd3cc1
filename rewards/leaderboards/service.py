"""Leaderboards: who served most hours or earned most points in an area, for a month or a year.

``GET /leaderboards`` ranks, inside one area's subtree (a grid, community, district, or any area):

- ``by=volunteer`` (default): the active volunteers whose home grid lies there;
- ``by=grid|community|district``: the areas of that level below it, by their volunteers' sums.

Hours are served minutes of service records not voided; points are points *earned* in the period
(served shifts, manual hours, report and streak bonuses, adjustments), less reversals of them —
spending does not lower them (``rewards/leaderboards/totals.py`` keeps the sums). Only values
above 0 are ranked; equal values share a rank (1, 2, 2, 4), listed by volunteer id.

What a request reads (a district is 100,000 volunteers): the top rows down the period's value index;
``ranked`` and the area boards from the per-grid figures (``totals.grid_figures``: a row per grid
and the changes since the last fold, not one per volunteer); the caller's own rank by counting, index-only, who is above them.

A volunteer who opted out is listed as "匿名志愿者" without id, but still counted and ranked.
Volunteers see the boards of the areas containing their home grid (and their own rank, ``me``);
organisers, staff and admins those of areas in their subtree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import aliased, defer, lazyload

from core import i18n
from core.auth import Caller, Role
from core.db import utcnow
from core.errors import NotFound, OutOfScope, ValidationFailed
from core.extensions import db
from grids.models import Area, AreaLevel
from grids.paths import id_at_depth
from grids.queries import in_subtree, referenced_area
from rewards.leaderboards import totals
from rewards.leaderboards.models import LeaderboardTotal, RewardPreference
from volunteers.models import Volunteer

#: Levels from the root down; a level's index is the depth of its areas and its place in a path.
LEVELS = [AreaLevel.CITY, AreaLevel.DISTRICT, AreaLevel.SUBDISTRICT, AreaLevel.COMMUNITY, AreaLevel.GRID]
ANONYMOUS = i18n.C_("leaderboard", "Anonymous volunteer")
BY_TOO_HIGH = i18n.N_("Rank areas of a level below the chosen area.")

HOME_ONLY = i18n.N_("Leaderboards of areas containing your home grid only.")

i18n.register_messages(BY_TOO_HIGH, HOME_ONLY)


def _volunteer_home(caller: Caller) -> tuple[int, str]:
    row = db.session.execute(
        sa.select(Volunteer.id, Area.path)
        .join(Area, Area.id == Volunteer.home_grid_id)
        .where(Volunteer.user_id == caller.user_id)
    ).first()
    if row is None:
        raise NotFound("You have no volunteer profile.", code="volunteer_not_found")
    return row[0], row[1]


def _area_by_path(path: str) -> Area | None:
    return db.session.scalar(sa.select(Area).where(Area.path == path).options(defer(Area.boundary), lazyload("*")))


def current_period(period: str, timezone: str) -> str:
    today = utcnow().astimezone(ZoneInfo(timezone)).date()
    return f"{today.year:04d}" if period == "year" else f"{today.year:04d}-{today.month:02d}"


def board(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """The leaderboard ``args`` ask for (see the module docstring); scope refusals are 403."""
    me_id, home_path = _volunteer_home(caller) if caller.role == Role.VOLUNTEER else (None, None)
    if args.get("area_id") is not None:
        area = referenced_area(args["area_id"], "area_id")
    else:
        home = _area_by_path(home_path or caller.area_path)
        if home is None:
            raise ValidationFailed(errors={"area_id": ["Unknown area."]})
        area = home
    if home_path is not None:
        if not home_path.startswith(area.path):
            raise OutOfScope(HOME_ONLY)
    else:
        caller.ensure_scope(area.path)
    key = args.get("value") or current_period(args["period"], area.timezone)
    by_hours = args["metric"] == "hours"
    _custom_plans()
    by = args.get("by") or "volunteer"
    result: dict[str, Any] = {
        "area": {"id": area.id, "name": area.name, "level": area.level},
        "by": by,
        "period": args["period"],
        "value": key,
        "metric": args["metric"],
    }
    if by == "volunteer":
        result.update(_volunteer_board(area, key, by_hours, args["limit"], me_id))
    else:
        if LEVELS.index(AreaLevel(by)) <= LEVELS.index(AreaLevel(area.level)):
            raise ValidationFailed(errors={"by": [BY_TOO_HIGH]})
        result.update(_area_board(area, key, by_hours, AreaLevel(by), args["limit"]))
        result["me"] = None
    return result


def _ranked(rows: Sequence[Any], value: Any) -> list[tuple[int, Any]]:
    """Competition ranks of rows sorted by ``value`` descending: a tie shares the first rank."""
    ranked: list[tuple[int, Any]] = []
    for position, row in enumerate(rows, start=1):
        rank = ranked[-1][0] if ranked and value(ranked[-1][1]) == value(row) else position
        ranked.append((rank, row))
    return ranked


def _grid_in_area(grid_id: sa.SQLColumnExpression[int], area: Area) -> sa.ColumnElement[bool]:
    """SQL condition: the grid ``grid_id`` lies in the area's subtree (a grid is its own subtree)."""
    if area.level == AreaLevel.GRID:
        return grid_id == area.id
    grids = aliased(Area)  # not correlated with an ``Area`` the enclosing query joins
    return grid_id.in_(sa.select(grids.id).where(in_subtree(grids.path, area.path)))


def _ranked_totals(area: Area, key: str, metric: sa.ColumnElement[int]) -> sa.Select:
    """The period's totals of the active volunteers at home in the area with a value above 0.

    Reads the total rows alone: each carries its volunteer's home grid and whether they are active
    (``LeaderboardTotal``), so no volunteer row is joined to decide who is ranked.
    """
    return sa.select(LeaderboardTotal.volunteer_id).where(
        LeaderboardTotal.period == key,
        LeaderboardTotal.volunteer_active,
        _grid_in_area(LeaderboardTotal.home_grid_id, area),
        metric > 0,
    )


def _custom_plans() -> None:
    """Plan this transaction's statements for their actual values, never generically.

    psycopg prepares a statement run five times; PostgreSQL then may switch to a generic plan,
    which cannot see that ``path LIKE '/1/2/%'`` is a prefix or how many rows a period has: the
    district board went from 110 ms to 450 ms at the tenth call (bench/README.md).
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _metric(by_hours: bool) -> Any:
    return LeaderboardTotal.minutes if by_hours else LeaderboardTotal.points


def _grid_sums(area: Area, key: str) -> sa.Select:
    """Per grid in the area: its path and the sums of its active volunteers' totals."""
    figures = totals.grid_figures(key, lambda grid_id: _grid_in_area(grid_id, area))
    return sa.select(Area.path, figures.c.minutes, figures.c.points).join(Area, Area.id == figures.c.grid_id)


def _ranked_count(area: Area, key: str, by_hours: bool) -> int:
    """How many active volunteers at home in the area have a value above 0: the grids' counts summed."""
    figures = totals.grid_figures(key, lambda grid_id: _grid_in_area(grid_id, area))
    column = figures.c.ranked_by_minutes if by_hours else figures.c.ranked_by_points
    return int(db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(column), 0))) or 0)


def _volunteer_board(area: Area, key: str, by_hours: bool, limit: int, me_id: int | None) -> dict[str, Any]:
    metric = _metric(by_hours)
    top = db.session.execute(
        _ranked_totals(area, key, metric)
        .add_columns(
            Volunteer.real_name,
            Area.name,
            LeaderboardTotal.minutes,
            LeaderboardTotal.points,
            sa.func.coalesce(RewardPreference.leaderboard_opt_out, False),
        )
        .join(Volunteer, Volunteer.id == LeaderboardTotal.volunteer_id)
        .join(Area, Area.id == LeaderboardTotal.home_grid_id)
        .outerjoin(RewardPreference, RewardPreference.volunteer_id == LeaderboardTotal.volunteer_id)
        .order_by(metric.desc(), LeaderboardTotal.volunteer_id)
        .limit(limit)
    ).all()
    value_of = (lambda row: row[3]) if by_hours else (lambda row: row[4])
    anonymous = i18n.gettext_in(i18n.current_language(), ANONYMOUS)
    items = [
        {
            "rank": rank,
            "volunteer_id": None if opted_out else volunteer_id,
            "area_id": None,
            "name": anonymous if opted_out else name,
            "grid_name": None if opted_out else grid_name,
            "anonymous": bool(opted_out),
            "hours": _hours(minutes),
            "points": points,
        }
        for rank, (volunteer_id, name, grid_name, minutes, points, opted_out) in _ranked(top, value_of)
    ]
    ranked = _ranked_count(area, key, by_hours)
    if me_id is None:
        return {"ranked": ranked, "items": items, "me": None}
    own = db.session.execute(
        sa.select(LeaderboardTotal.minutes, LeaderboardTotal.points, LeaderboardTotal.volunteer_active).where(
            LeaderboardTotal.period == key, LeaderboardTotal.volunteer_id == me_id
        )
    ).first()
    minutes, points, active = own if own is not None else (0, 0, False)
    mine: dict[str, Any] = {"rank": None, "hours": _hours(minutes), "points": points}
    # Ranked like everyone listed: active and above 0 (a suspended volunteer sees no rank).
    own_value = (minutes if by_hours else points) if active else 0
    if own_value > 0:
        # Those ahead of me: counted down the value index from my value, index-only.
        ahead = db.session.scalar(
            sa.select(sa.func.count()).select_from(_ranked_totals(area, key, metric).where(metric > own_value).subquery())
        )
        mine["rank"] = 1 + int(ahead or 0)
    return {"ranked": ranked, "items": items, "me": mine}


def _area_board(area: Area, key: str, by_hours: bool, by: AreaLevel, limit: int) -> dict[str, Any]:
    """The grids' sums (``leaderboard_grid_totals``: at most the area's grids), folded up to ``by`` here."""
    depth = LEVELS.index(by)
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for path, minutes, points in db.session.execute(_grid_sums(area, key)):
        area_id = id_at_depth(path, depth)
        if area_id is not None:
            total = sums[area_id]
            total[0] += int(minutes or 0)
            total[1] += int(points or 0)
    index = 1 if by_hours else 2  # of (area_id, minutes, points)
    rows = sorted(
        ((area_id, m, p) for area_id, (m, p) in sums.items() if (0, m, p)[index] > 0),
        key=lambda row: (-row[index], row[0]),
    )
    shown = rows[:limit]
    names: dict[int, str] = {}
    if shown:
        names = dict(
            db.session.execute(sa.select(Area.id, Area.name).where(Area.id.in_([r[0] for r in shown]))).tuples().all()
        )
    items = [
        {
            "rank": rank,
            "volunteer_id": None,
            "area_id": area_id,
            "name": names.get(area_id, ""),
            "grid_name": None,
            "anonymous": False,
            "hours": _hours(minutes),
            "points": points,
        }
        for rank, (area_id, minutes, points) in _ranked(shown, lambda row: row[index])
    ]
    return {"ranked": len(rows), "items": items}


# --- the opt-out ---------------------------------------------------------------------------------


def preference(caller: Caller) -> bool:
    volunteer_id, _path = _volunteer_home(caller)
    value = db.session.scalar(
        sa.select(RewardPreference.leaderboard_opt_out).where(RewardPreference.volunteer_id == volunteer_id)
    )
    return bool(value)


def set_preference(caller: Caller, opt_out: bool) -> bool:
    """Upsert the caller's choice (a repeat changes nothing)."""
    volunteer_id, _path = _volunteer_home(caller)
    db.session.execute(
        sa.text(
            "INSERT INTO reward_preferences (volunteer_id, leaderboard_opt_out, updated_at) "
            "VALUES (:volunteer_id, :opt_out, :now) ON CONFLICT (volunteer_id) DO UPDATE SET "
            "leaderboard_opt_out = excluded.leaderboard_opt_out, updated_at = excluded.updated_at"
        ).bindparams(
            sa.bindparam("now", type_=RewardPreference.__table__.c.updated_at.type),
            sa.bindparam("opt_out", type_=sa.Boolean()),
        ),
        {"volunteer_id": volunteer_id, "opt_out": opt_out, "now": utcnow()},
    )
    return opt_out
