"""Steward quotas and weekly patrol targets of grids: set per grid or for each grid of a community.

A grid's quota says how many *active* volunteers of each kind should live in it (the seeds: 1–2
alley stewards 小巷管家 per grid, one volunteer police 义警 in places); its weekly target how many
person-minutes it should be patrolled a week. Both are grid data, read by the coverage report
(``reports/coverage``). Setting replaces the grid's whole quota; each grid whose quota changes gets
an audit entry, as every other write of the area tree.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from core import audit, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area, AreaLevel, GridPatrolTarget, GridQuota
from grids.queries import get_area, in_subtree
from grids.schemas import GridQuotaSetInput

UNKNOWN_KIND = i18n.N_("Unknown volunteer kind.")
NOT_GRID_OR_COMMUNITY = i18n.N_("Quotas are set on a grid, or on a community for each of its grids.")
i18n.register_messages(UNKNOWN_KIND, NOT_GRID_OR_COMMUNITY)
i18n.register_titles(
    i18n.title("not_grid_or_community", "The area is neither a grid nor a community"),
)

#: Where quotas are set: on one grid, or on a community for each of its grids.
QUOTA_LEVELS = (AreaLevel.GRID.value, AreaLevel.COMMUNITY.value)

# The kinds table belongs to volunteers, above grids in the package order: its codes are read
# here by name (the foreign key on grid_quotas.kind_code guards the same rule), its model is not
# imported.
_KINDS = sa.table("volunteer_kinds", sa.column("code", sa.String))


def quota_area(caller: Caller, area_id: int, *, write: bool) -> Area:
    """The area whose grids' quotas are read or set: 404 if none, 403 ``out_of_scope`` outside the
    caller's subtree (areas are public); a write needs a grid or a community (404
    ``not_grid_or_community``, as settings kept per city answer ``not_a_city``)."""
    area = get_area(area_id)
    caller.ensure_scope(area.path)
    if write and area.level not in QUOTA_LEVELS:
        raise NotFound(NOT_GRID_OR_COMMUNITY, code="not_grid_or_community")
    return area


def _views(grids: list[Area]) -> list[dict[str, Any]]:
    """``GridQuotaSchema`` of each grid, in the order given, with two queries for all of them."""
    ids = [grid.id for grid in grids]
    quotas: dict[int, list[GridQuota]] = {grid_id: [] for grid_id in ids}
    for quota in db.session.scalars(
        sa.select(GridQuota).where(GridQuota.grid_id.in_(ids)).order_by(GridQuota.kind_code)
    ):
        quotas[quota.grid_id].append(quota)
    targets = {
        target.grid_id: target
        for target in db.session.scalars(sa.select(GridPatrolTarget).where(GridPatrolTarget.grid_id.in_(ids)))
    }
    views = []
    for grid in grids:
        target = targets.get(grid.id)
        changed = [row.updated_at for row in quotas[grid.id]] + ([target.updated_at] if target else [])
        views.append(
            {
                "grid_id": grid.id,
                "grid_name": grid.name,
                "path": grid.path,
                "weekly_target_minutes": target.weekly_target_minutes if target else None,
                "quotas": [{"kind": row.kind_code, "min_active": row.min_active} for row in quotas[grid.id]],
                "updated_at": max(changed) if changed else None,
            }
        )
    return views


def list_quotas(area: Area, *, limit: int, cursor: str | None) -> dict[str, Any]:
    """Every grid in ``area``'s subtree (the area itself if a grid), by id, with its quota."""
    stmt = (
        sa.select(Area)
        .options(orm.defer(Area.boundary), orm.lazyload(Area.parent))
        .where(Area.level == AreaLevel.GRID.value, in_subtree(Area.path, area.path))
    )
    page = paginate(stmt, [Area.id], limit=limit, cursor=cursor)
    return {"items": _views(page["items"]), "next_cursor": page["next_cursor"]}


def _check_kinds(data: GridQuotaSetInput) -> None:
    wanted = [quota["kind"] for quota in data["quotas"]]
    if not wanted:
        return
    known = set(db.session.scalars(sa.select(_KINDS.c.code).where(_KINDS.c.code.in_(wanted))))
    unknown = {index: {"kind": [UNKNOWN_KIND]} for index, kind in enumerate(wanted) if kind not in known}
    if unknown:
        raise ValidationFailed(errors={"quotas": unknown})


def _comparable(view: dict[str, Any]) -> dict[str, Any]:
    return {"weekly_target_minutes": view["weekly_target_minutes"], "quotas": view["quotas"]}


def set_quotas(caller: Caller, area: Area, data: GridQuotaSetInput) -> list[dict[str, Any]]:
    """Give ``area`` (a grid) or each grid of ``area`` (a community) exactly this quota and target.

    Grids already so are left untouched (no write, no audit entry). Returns every grid's quota.
    """
    _check_kinds(data)
    if area.level == AreaLevel.GRID:
        grids = [area]
    else:
        grids = list(
            db.session.scalars(
                sa.select(Area)
                .options(orm.defer(Area.boundary), orm.lazyload(Area.parent))
                .where(Area.parent_id == area.id, Area.level == AreaLevel.GRID.value)
                .order_by(Area.id)
            )
        )
    wanted_quotas = sorted(
        ({"kind": quota["kind"], "min_active": quota["min_active"]} for quota in data["quotas"]),
        key=lambda quota: str(quota["kind"]),
    )
    wanted: dict[str, Any] = {"weekly_target_minutes": data["weekly_target_minutes"], "quotas": wanted_quotas}
    now = utcnow()
    for grid, before in zip(grids, _views(grids), strict=True):
        if _comparable(before) == wanted:
            continue
        db.session.execute(sa.delete(GridQuota).where(GridQuota.grid_id == grid.id))
        db.session.execute(sa.delete(GridPatrolTarget).where(GridPatrolTarget.grid_id == grid.id))
        db.session.add_all(
            GridQuota(grid_id=grid.id, kind_code=quota["kind"], min_active=quota["min_active"], updated_at=now)
            for quota in data["quotas"]
        )
        if wanted["weekly_target_minutes"] is not None:
            db.session.add(
                GridPatrolTarget(
                    grid_id=grid.id, weekly_target_minutes=wanted["weekly_target_minutes"], updated_at=now
                )
            )
        audit.record(
            caller, "grid.quota_set", target_type="area", target_id=grid.id, area_path=grid.path,
            before=_comparable(before), after=wanted,
        )
    db.session.flush()
    return _views(grids)
