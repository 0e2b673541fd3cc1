"""Rules of the area tree. No HTTP here; services flush, the request commits.

The entry point other packages import from. The GeoJSON import lives in :mod:`grids.importing`,
boundary validation in :mod:`grids.boundaries`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import orm
from sqlalchemy.exc import IntegrityError

from core import audit, geo, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import MAX_DB_INT, Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.boundaries import boundary_summary, set_boundary, validated_boundary
from grids.models import CHILD_LEVEL, Area, AreaLevel

MISSING_FIELD = "Missing data for required field."
UNKNOWN_AREA = "Unknown area."
GRID_ONLY_FIELD = "Only grids have this field."
WRONG_CHILD_LEVEL = "The level must be the one directly below the parent's."
WRONG_PARENT_LEVEL = "The new parent must be one level above the area."
INTO_OWN_SUBTREE = "An area cannot move into its own subtree."
CODE_TAKEN = "The area code is already in use."
NO_GRID_HERE = "No grid contains this point."
OWN_AREA_MOVE = "You cannot move the area you are responsible for."

i18n.register_titles(
    {
        "area_code_taken": ("区域编码已被使用", "The area code is already in use"),
        "no_grid_here": ("该位置不在任何网格内", "No grid covers this location"),
        "own_area_move": ("不能移动您负责的区域", "You cannot move your own area"),
    }
)
i18n.register_messages(
    {
        UNKNOWN_AREA: "区域不存在。",
        GRID_ONLY_FIELD: "只有网格才有此字段。",
        WRONG_CHILD_LEVEL: "层级必须是上级区域的下一级。",
        WRONG_PARENT_LEVEL: "新的上级区域必须比该区域高一级。",
        INTO_OWN_SUBTREE: "区域不能移动到自身的下级区域中。",
        CODE_TAKEN: "该区域编码已被使用。",
        NO_GRID_HERE: "没有网格包含该位置。",
        OWN_AREA_MOVE: "您不能移动自己负责的区域。",
    }
)

#: Columns a list never shows; a grid's polygon can be tens of kilobytes.
_LIST_OPTIONS = (orm.defer(Area.boundary), orm.lazyload(Area.parent))
_GRID_ONLY = ("boundary", "grid_kind", "households")


def get_area(area_id: int) -> Area:
    """The area with this id (from a URL, which the app's converter bounds); 404 if there is none."""
    area = db.session.get(Area, area_id)
    if area is None:
        raise NotFound("Area not found.", code="area_not_found")
    return area


def get_grid(area_id: int, field: str = "home_grid_id") -> Area:
    """The grid with this id; a missing id or a non-grid area is a validation error on ``field``.

    Other packages pass ids from their own request bodies, so an id out of the column's range is
    refused here rather than sent to the database.
    """
    area = db.session.get(Area, area_id) if 1 <= area_id <= MAX_DB_INT else None
    if area is None or area.level != AreaLevel.GRID:
        raise ValidationFailed(errors={field: ["Not a grid."]})
    return area


def in_subtree(path_column: sa.ColumnElement[str], root_path: str) -> sa.ColumnElement[bool]:
    """SQL condition: ``path_column`` lies in the subtree rooted at ``root_path`` (inclusive)."""
    return path_column.startswith(root_path, autoescape=True)


# ----------------------------------------------------------------------------------------- reads


def _referenced_area(area_id: int, field: str) -> Area:
    """An area named in a request body or query; a missing one is the client's validation error."""
    area = db.session.get(Area, area_id)
    if area is None:
        raise ValidationFailed(errors={field: [UNKNOWN_AREA]})
    return area


def list_children(area_id: int, *, limit: int, cursor: str | None) -> dict[str, Any]:
    parent = get_area(area_id)
    stmt = sa.select(Area).options(*_LIST_OPTIONS).where(Area.parent_id == parent.id)
    return paginate(stmt, [Area.id], limit=limit, cursor=cursor)


def list_areas(
    *,
    under: int | None,
    default_root_path: str | None,
    level: AreaLevel | None,
    parent_id: int | None,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """Areas in ``under``'s subtree, else in ``default_root_path``'s (the caller's), else all."""
    root_path = _referenced_area(under, "under").path if under is not None else default_root_path
    stmt = sa.select(Area).options(*_LIST_OPTIONS)
    if root_path is not None:
        stmt = stmt.where(in_subtree(Area.path, root_path))
    if level is not None:
        stmt = stmt.where(Area.level == level.value)
    if parent_id is not None:
        stmt = stmt.where(Area.parent_id == parent_id)
    return paginate(stmt, [Area.id], limit=limit, cursor=cursor)


def search_areas(
    query: str, *, level: AreaLevel | None, under: int | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Areas whose name contains ``query`` or whose code starts with it (case-insensitive)."""
    stmt = (
        sa.select(Area)
        .options(*_LIST_OPTIONS)
        .where(
            sa.or_(
                Area.name.icontains(query, autoescape=True),
                Area.code.istartswith(query, autoescape=True),
            )
        )
    )
    if level is not None:
        stmt = stmt.where(Area.level == level.value)
    if under is not None:
        stmt = stmt.where(in_subtree(Area.path, _referenced_area(under, "under").path))
    return paginate(stmt, [Area.id], limit=limit, cursor=cursor)


def ancestor_ids(path: str) -> list[int]:
    """Ids above the area, from the root down: ``/1/4/17/`` → ``[1, 4]``."""
    return [int(part) for part in path.strip("/").split("/")[:-1]]


@dataclass(frozen=True)
class LocatedGrid:
    """A grid found by position, with its ancestors; reads through to the grid's attributes."""

    grid: Area
    ancestors: list[dict[str, Any]]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.grid, name)


#: Above a grid: community, sub-district, district, city (CHILD_LEVEL fixes the depth).
_GRID_ANCESTOR_LEVELS = 4
_ANCESTOR_FIELDS = ("id", "level", "code", "name")


def _grid_with_ancestors() -> sa.Select:
    # Built once, with the point as bound parameters: building it per call (fresh aliases, new
    # cache key) cost more than the query itself (bench/profile_request.py).
    chain = [orm.aliased(Area, name=f"ancestor_{n}") for n in range(_GRID_ANCESTOR_LEVELS)]
    stmt = sa.select(Area, *(getattr(a, f) for a in chain for f in _ANCESTOR_FIELDS)).options(
        orm.lazyload(Area.parent)
    )
    child: Any = Area
    for ancestor in chain:
        stmt = stmt.outerjoin(ancestor, ancestor.id == child.parent_id)
        child = ancestor
    lon, lat = sa.bindparam("lon", type_=sa.Float), sa.bindparam("lat", type_=sa.Float)
    return stmt.where(
        Area.min_lat <= lat,
        Area.max_lat >= lat,
        Area.min_lon <= lon,
        Area.max_lon >= lon,
        # A literal, not a bound parameter: once psycopg prepares this statement, PostgreSQL's
        # generic plan for "level = $n" scanned every grid in ix_areas_level_path (bench/README.md).
        Area.level == sa.literal_column(f"'{AreaLevel.GRID.value}'"),
    ).order_by(Area.id)


_LOCATE_WITH_ANCESTORS = _grid_with_ancestors()


def locate_grid(lon: float, lat: float) -> LocatedGrid:
    """The grid whose boundary covers the point, and its ancestors, in one query.

    The bounding-box columns narrow the grids to a handful through an index; each candidate comes
    with its parent chain by primary-key joins; the exact test runs on prepared polygons that
    core.geo caches by (id, version, updated_at). A point on a shared border belongs to both
    grids: the lower id wins, so the answer is stable.
    """
    # The boundaries come with the candidates on purpose. Measured on the 10,000-grid bench seed,
    # loading them only on a cache miss cost a round trip per miss (+0.5 ms a call while the cache
    # fills) and saved nothing measurable once it was warm.
    rows = db.session.execute(_LOCATE_WITH_ANCESTORS, {"lon": lon, "lat": lat}).all()
    for grid, *columns in rows:
        if grid.boundary and geo.contains((grid.id, grid.version, grid.updated_at), grid.boundary, lon, lat):
            width = len(_ANCESTOR_FIELDS)
            ancestors = [
                dict(zip(_ANCESTOR_FIELDS, columns[i : i + width]))
                for i in range(0, len(columns), width)
                if columns[i] is not None
            ]
            return LocatedGrid(grid, ancestors[::-1])  # city first
    raise NotFound(NO_GRID_HERE, code="no_grid_here")


# ---------------------------------------------------------------------------------------- writes


def snapshot(area: Area) -> dict[str, Any]:
    return {
        "parent_id": area.parent_id,
        "level": area.level,
        "code": area.code,
        "name": area.name,
        "timezone": area.timezone,
        "path": area.path,
        "grid_kind": area.grid_kind,
        "households": area.households,
        "version": area.version,
        "boundary": boundary_summary(area.boundary),
    }


def _check_attributes(level: str, data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Apply the grid/non-grid field rules; returns ``data`` with the boundary normalised."""
    errors: dict[str, list[str]] = {}
    cleaned = dict(data)
    if level == AreaLevel.GRID:
        if creating:
            for name in ("boundary", "grid_kind"):
                if name not in data:
                    errors[name] = [MISSING_FIELD]
        if "boundary" in data:
            try:
                cleaned["boundary"] = validated_boundary(data["boundary"])
            except ValidationFailed as failure:
                errors.update(failure.errors or {})
    else:
        for name in _GRID_ONLY:
            if data.get(name) is not None:
                errors[name] = [GRID_ONLY_FIELD]
    if errors:
        raise ValidationFailed(errors=errors)
    return cleaned


def _flush_new_area(area: Area) -> None:
    """Insert ``area`` in a savepoint, so a concurrent duplicate code becomes a 409."""
    try:
        with db.session.begin_nested():
            db.session.add(area)
            db.session.flush()
    except IntegrityError:
        if _code_in_use(area.code):
            raise Conflict(CODE_TAKEN, code="area_code_taken") from None
        raise Conflict("The area conflicts with existing data.") from None


def _code_in_use(code: str, except_id: int | None = None) -> bool:
    stmt = sa.select(Area.id).where(Area.code == code)
    if except_id is not None:
        stmt = stmt.where(Area.id != except_id)
    return db.session.scalar(stmt.limit(1)) is not None


def _ensure_code_free(code: str, except_id: int | None = None) -> None:
    if _code_in_use(code, except_id):
        raise Conflict(CODE_TAKEN, code="area_code_taken")


def _insert(
    caller: Caller | None, parent: Area | None, level: str, data: dict[str, Any]
) -> Area:
    area = Area(
        parent_id=parent.id if parent else None,
        level=level,
        code=data["code"],
        name=data["name"],
        timezone=data.get("timezone")
        or (parent.timezone if parent else current_app.config["DEFAULT_TIMEZONE"]),
        # Unique placeholder until the id, and so the real path, is known.
        path=f"/pending-{uuid.uuid4().hex}/",
        depth=parent.depth + 1 if parent else 0,
        grid_kind=str(data["grid_kind"]) if data.get("grid_kind") else None,
        households=data.get("households"),
        version=1,
    )
    if data.get("boundary"):
        set_boundary(area, data["boundary"])
    _ensure_code_free(area.code)
    _flush_new_area(area)
    area.path = (parent.path if parent else "/") + f"{area.id}/"
    db.session.flush()
    audit.record(
        caller, "area.create", target_type="area", target_id=area.id, area_path=area.path,
        after=snapshot(area),
    )
    return area


def _lock_with_ancestors(
    areas: Iterable[Area], *, exclusive: bool, locked: set[int] | None = None
) -> None:
    """Lock ``areas`` and all their ancestors, and reload them, so the paths read next are current.

    A move rewrites a subtree's paths in one UPDATE whose snapshot is taken when it starts: a
    create or move running at the same time must neither build on a path that is being rewritten
    nor insert a row that UPDATE cannot see. Holding a lock on every area on the way to the root
    serialises them: creates take shared locks (they do not block each other), moves exclusive ones,
    in id order. If a concurrent move changed the ancestry meanwhile, the new ancestors are locked
    too. SQLite has no row locks but runs one writer at a time (BEGIN IMMEDIATE), to the same end.

    ``locked``: ids this transaction already holds (a bulk import passes one set for all its
    features, so each ancestor is locked once); it is updated.
    """
    areas = list(areas)
    locked = set() if locked is None else locked
    if {i for area in areas for i in (*ancestor_ids(area.path), area.id)} <= locked:
        return
    db.session.flush()
    while True:
        wanted = {i for area in areas for i in (*ancestor_ids(area.path), area.id)}
        if wanted <= locked:
            return
        db.session.scalars(
            sa.select(Area)
            .options(orm.lazyload(Area.parent))
            .where(Area.id.in_(sorted(wanted)))
            .order_by(Area.id)
            .with_for_update(read=not exclusive)
            .execution_options(populate_existing=True)
        ).all()
        locked |= wanted


def create_area(
    caller: Caller | None, data: dict[str, Any], *, locked: set[int] | None = None
) -> Area:
    """A new area under ``data["parent_id"]``; ``caller`` None means a system change (import).

    ``locked``: area ids already locked by this transaction (see :func:`_lock_with_ancestors`).
    """
    parent = _referenced_area(data["parent_id"], "parent_id")
    _lock_with_ancestors([parent], exclusive=False, locked=locked)
    if caller is not None:
        caller.ensure_scope(parent.path)
    level = str(data["level"])
    if CHILD_LEVEL.get(AreaLevel(parent.level)) != level:
        raise ValidationFailed(errors={"level": [WRONG_CHILD_LEVEL]})
    cleaned = _check_attributes(level, data, creating=True)
    return _insert(caller, parent, level, cleaned)


def create_city(data: dict[str, Any]) -> Area:
    """A root of the tree; only the import creates one (a system change, audited with no actor)."""
    cleaned = _check_attributes(AreaLevel.CITY, data, creating=True)
    return _insert(None, None, AreaLevel.CITY.value, cleaned)


def update_area(caller: Caller | None, area: Area, changes: dict[str, Any]) -> bool:
    """Change the given attributes; only values that differ are written. Returns whether any did."""
    if caller is not None:
        caller.ensure_scope(area.path)
    cleaned = _check_attributes(area.level, changes, creating=False)
    if "grid_kind" in cleaned and cleaned["grid_kind"] is not None:
        cleaned["grid_kind"] = str(cleaned["grid_kind"])
    differing = {
        name: value
        for name, value in cleaned.items()
        if name in ("code", "name", "timezone", "grid_kind", "households", "boundary")
        and getattr(area, name) != value
    }
    if not differing:
        return False
    if "code" in differing:
        _ensure_code_free(differing["code"], except_id=area.id)
    before = snapshot(area)
    for name, value in differing.items():
        if name == "boundary":
            set_boundary(area, value)
            # Incremented in SQL: two concurrent boundary edits get two different versions.
            area.version = Area.version + 1
        else:
            setattr(area, name, value)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise Conflict(CODE_TAKEN, code="area_code_taken") from None
    after = snapshot(area)
    audit.record(
        caller, "area.update", target_type="area", target_id=area.id, area_path=area.path,
        before={name: before[name] for name in before if before[name] != after[name]},
        after={name: after[name] for name in after if before[name] != after[name]},
    )
    return True


def move_area(caller: Caller | None, area: Area, new_parent_id: int) -> bool:
    """Hang ``area`` and its subtree under another parent. Returns whether anything moved."""
    if caller is not None:
        caller.ensure_scope(area.path)
    new_parent = _referenced_area(new_parent_id, "parent_id")
    _lock_with_ancestors([area, new_parent], exclusive=True)
    if caller is not None:  # again, on the paths as they are now that nothing can move them
        caller.ensure_scope(area.path)
        if area.path == caller.area_path:
            raise Forbidden(OWN_AREA_MOVE, code="own_area_move")
        caller.ensure_scope(new_parent.path)
    if new_parent.path.startswith(area.path):
        raise ValidationFailed(errors={"parent_id": [INTO_OWN_SUBTREE]})
    if CHILD_LEVEL.get(AreaLevel(new_parent.level)) != area.level:
        raise ValidationFailed(errors={"parent_id": [WRONG_PARENT_LEVEL]})
    if new_parent.id == area.parent_id:
        return False

    before = {"parent_id": area.parent_id, "path": area.path, "depth": area.depth}
    old_prefix = area.path
    new_prefix = f"{new_parent.path}{area.id}/"
    depth_change = new_parent.depth + 1 - area.depth
    # One statement rewrites the whole subtree: no descendant is ever left with a stale path.
    result = db.session.execute(
        sa.update(Area)
        .where(in_subtree(Area.path, old_prefix))
        .values(
            path=sa.cast(sa.literal(new_prefix), sa.String)
            + sa.func.substr(Area.path, len(old_prefix) + 1),
            depth=Area.depth + depth_change,
            parent_id=sa.case((Area.id == area.id, new_parent.id), else_=Area.parent_id),
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session="fetch")
    )
    db.session.expire(area, ["parent"])
    audit.record(
        caller, "area.move", target_type="area", target_id=area.id, area_path=new_prefix,
        before=before,
        after={
            "parent_id": new_parent.id,
            "path": new_prefix,
            "depth": area.depth,
            "subtree_size": result.rowcount,
        },
    )
    return True
