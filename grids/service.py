"""Rules of the area tree. No HTTP here; services flush, the request commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app
from shapely.errors import GEOSException
from sqlalchemy import orm
from sqlalchemy.exc import IntegrityError

from core import audit, geo, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import CHILD_LEVEL, Area, AreaLevel
from grids.schemas import MAX_AREA_ID, ImportPropertiesSchema

MISSING_FIELD = "Missing data for required field."
UNKNOWN_AREA = "Unknown area."
GRID_ONLY_FIELD = "Only grids have this field."
WRONG_CHILD_LEVEL = "The level must be the one directly below the parent's."
WRONG_PARENT_LEVEL = "The new parent must be one level above the area."
INTO_OWN_SUBTREE = "An area cannot move into its own subtree."
LEVEL_IS_FIXED = "The level of an existing area cannot change."
CITY_HAS_NO_PARENT = "Only a city has no parent, and a city has none."
DUPLICATE_IN_FILE = "This code appears more than once in the file."
PARENT_NOT_IN_TREE = "No area or feature has this code."
PARENT_FEATURE_INVALID = "The parent feature is invalid."
PARENT_CHAIN_LOOPS = "The parent codes form a loop."
NOT_A_FEATURE = "Not a GeoJSON Feature with properties."
NOT_A_COLLECTION = "Not a GeoJSON FeatureCollection."
CODE_TAKEN = "The area code is already in use."
NO_GRID_HERE = "No grid contains this point."
OWN_AREA_MOVE = "You cannot move the area you are responsible for."

i18n.register_titles(
    {
        "area_code_taken": ("区域编码已被使用", "The area code is already in use"),
        "no_grid_here": ("该位置不在任何网格内", "No grid covers this location"),
        "own_area_move": ("不能移动您负责的区域", "You cannot move your own area"),
        "import_invalid": ("导入文件有误，未写入任何数据", "The import file is invalid; nothing was written"),
    }
)
i18n.register_messages(
    {
        UNKNOWN_AREA: "区域不存在。",
        GRID_ONLY_FIELD: "只有网格才有此字段。",
        WRONG_CHILD_LEVEL: "层级必须是上级区域的下一级。",
        WRONG_PARENT_LEVEL: "新的上级区域必须比该区域高一级。",
        INTO_OWN_SUBTREE: "区域不能移动到自身的下级区域中。",
        LEVEL_IS_FIXED: "已有区域的层级不能更改。",
        CITY_HAS_NO_PARENT: "只有市级区域没有上级，且市级区域不能有上级。",
        DUPLICATE_IN_FILE: "该编码在文件中出现了多次。",
        PARENT_NOT_IN_TREE: "没有使用该编码的区域或要素。",
        PARENT_FEATURE_INVALID: "上级要素无效。",
        PARENT_CHAIN_LOOPS: "上级编码形成了循环。",
        NOT_A_FEATURE: "不是带 properties 的 GeoJSON Feature。",
        NOT_A_COLLECTION: "不是 GeoJSON FeatureCollection。",
        CODE_TAKEN: "该区域编码已被使用。",
        NO_GRID_HERE: "没有网格包含该位置。",
        OWN_AREA_MOVE: "您不能移动自己负责的区域。",
        # core.geo.validate_boundary
        "Boundary must be a GeoJSON Polygon or MultiPolygon.": "边界必须是 GeoJSON Polygon 或 MultiPolygon。",
        "Boundary coordinates are missing.": "缺少边界坐标。",
        "Boundary coordinates are malformed.": "边界坐标格式错误。",
        "Each ring needs at least 4 positions.": "每个环至少需要 4 个坐标点。",
        "Each position must be [longitude, latitude].": "每个坐标点必须是 [经度, 纬度]。",
        "Coordinates are outside WGS84 ranges.": "坐标超出 WGS84 范围。",
        "Each ring must be closed.": "每个环必须首尾闭合。",
        "Boundary is not a valid polygon (self-intersecting or degenerate).": "边界不是有效的多边形（自相交或退化）。",
    }
)

#: Columns a list never shows; a grid's polygon can be tens of kilobytes.
_LIST_OPTIONS = (orm.defer(Area.boundary), orm.lazyload(Area.parent))
_GRID_ONLY = ("boundary", "grid_kind", "households")


def get_area(area_id: int) -> Area:
    area = db.session.get(Area, area_id) if 1 <= area_id <= MAX_AREA_ID else None
    if area is None:
        raise NotFound("Area not found.", code="area_not_found")
    return area


def get_grid(area_id: int, field: str = "home_grid_id") -> Area:
    """The grid with this id; a missing id or a non-grid area is a validation error on ``field``."""
    area = db.session.get(Area, area_id) if 1 <= area_id <= MAX_AREA_ID else None
    if area is None or area.level != AreaLevel.GRID:
        raise ValidationFailed(errors={field: ["Not a grid."]})
    return area


def in_subtree(path_column: sa.ColumnElement[str], root_path: str) -> sa.ColumnElement[bool]:
    """SQL condition: ``path_column`` lies in the subtree rooted at ``root_path`` (inclusive)."""
    return path_column.startswith(root_path, autoescape=True)


# ----------------------------------------------------------------------------------------- reads


def _referenced_area(area_id: int, field: str) -> Area:
    """An area named in a request body or query; a missing one is the client's validation error."""
    area = db.session.get(Area, area_id) if 1 <= area_id <= MAX_AREA_ID else None
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


def ancestors_of(area: Area) -> list[dict[str, Any]]:
    """The chain from the city down to the area's parent, in one query."""
    ids = ancestor_ids(area.path)
    if not ids:
        return []
    rows = db.session.execute(
        sa.select(Area.id, Area.level, Area.code, Area.name).where(Area.id.in_(ids))
    ).all()
    by_id = {row.id: row._asdict() for row in rows}
    return [by_id[area_id] for area_id in ids if area_id in by_id]


@dataclass(frozen=True)
class LocatedGrid:
    """A grid found by position, with its ancestors; reads through to the grid's attributes."""

    grid: Area
    ancestors: list[dict[str, Any]]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.grid, name)


def locate_grid(lon: float, lat: float) -> LocatedGrid:
    """The grid whose boundary covers the point, and its ancestors.

    The bounding-box columns narrow the grids to a handful in one indexed query; the exact test runs
    on cached prepared polygons. A point on a shared border belongs to both grids: the lower id wins,
    so the answer is stable.
    """
    candidates = db.session.scalars(
        sa.select(Area)
        .options(orm.lazyload(Area.parent))
        .where(
            Area.min_lat <= lat,
            Area.max_lat >= lat,
            Area.min_lon <= lon,
            Area.max_lon >= lon,
            Area.level == AreaLevel.GRID.value,
        )
        .order_by(Area.id)
    ).all()
    for grid in candidates:
        if grid.boundary and geo.contains((grid.id, grid.version), grid.boundary, lon, lat):
            return LocatedGrid(grid, ancestors_of(grid))
    raise NotFound(NO_GRID_HERE, code="no_grid_here")


# ---------------------------------------------------------------------------------------- writes


def boundary_summary(boundary: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the audit log keeps of a polygon: its shape, size and extent, not every vertex."""
    if not boundary:
        return None
    polygons = boundary["coordinates"] if boundary["type"] == "MultiPolygon" else [boundary["coordinates"]]
    return {
        "type": boundary["type"],
        "polygons": len(polygons),
        "vertices": sum(len(ring) for polygon in polygons for ring in polygon),
        "bbox": [round(value, 7) for value in geo.bounds(boundary)],
    }


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


def _validated_boundary(geometry: Any) -> dict[str, Any]:
    limit = int(current_app.config["GRID_MAX_VERTICES"])
    # The limit is configuration, so its message cannot be registered once at import time.
    i18n.register_messages({f"Boundary has more than {limit} vertices.": f"边界顶点数超过 {limit} 个。"})
    try:
        return geo.validate_boundary(geometry, limit)
    except GEOSException:
        raise ValidationFailed(
            errors={"boundary": ["Boundary is not a valid polygon (self-intersecting or degenerate)."]}
        ) from None


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
                cleaned["boundary"] = _validated_boundary(data["boundary"])
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


def _set_boundary(area: Area, boundary: dict[str, Any]) -> None:
    area.boundary = boundary
    area.min_lon, area.min_lat, area.max_lon, area.max_lat = geo.bounds(boundary)


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
        _set_boundary(area, data["boundary"])
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


def _create_city(data: dict[str, Any]) -> Area:
    """A root of the tree; only the import creates one."""
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
            _set_boundary(area, value)
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


# ---------------------------------------------------------------------------------------- import


@dataclass
class ImportProblem:
    index: int | None
    code: str | None
    errors: dict[str, Any]


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


class ImportFailed(ValidationFailed):
    """Some features are invalid; the caller must roll back (nothing of the file may stay)."""

    code = "import_invalid"

    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.index is not None, p.index or 0))
        super().__init__(
            f"{len(problems)} invalid feature(s); nothing was written.",
            errors={_problem_key(p): p.errors for p in self.problems},
        )


def _problem_key(problem: ImportProblem) -> str:
    if problem.index is None:
        return "collection"
    return f"features[{problem.index}]" + (f" {problem.code}" if problem.code else "")


@dataclass
class _Feature:
    index: int
    code: str
    parent_code: str | None
    level: str
    attributes: dict[str, Any]  # name, timezone?, grid_kind?, households?, boundary?


def _parse_features(collection: Any) -> tuple[list[_Feature], list[ImportProblem]]:
    if (
        not isinstance(collection, dict)
        or collection.get("type") != "FeatureCollection"
        or not isinstance(collection.get("features"), list)
    ):
        return [], [ImportProblem(None, None, {"type": [NOT_A_COLLECTION]})]
    features: list[_Feature] = []
    problems: list[ImportProblem] = []
    seen: set[str] = set()
    schema = ImportPropertiesSchema()
    for index, raw in enumerate(collection["features"]):
        properties = raw.get("properties") if isinstance(raw, dict) else None
        raw_code = properties.get("code") if isinstance(properties, dict) else None
        label = raw_code if isinstance(raw_code, str) else None
        if not isinstance(raw, dict) or raw.get("type") != "Feature" or not isinstance(properties, dict):
            problems.append(ImportProblem(index, label, {"feature": [NOT_A_FEATURE]}))
            continue
        try:
            loaded = schema.load(properties)
        except ma.ValidationError as error:
            problems.append(ImportProblem(index, label, error.normalized_messages()))
            continue
        if loaded["code"] in seen:
            problems.append(ImportProblem(index, label, {"code": [DUPLICATE_IN_FILE]}))
            continue
        seen.add(loaded["code"])
        attributes = {
            name: loaded[name] for name in ("name", "timezone", "grid_kind", "households") if name in loaded
        }
        if raw.get("geometry") is not None:
            attributes["boundary"] = raw["geometry"]
        features.append(
            _Feature(index, loaded["code"], loaded["parent_code"], loaded["level"].value, attributes)
        )
    return features, problems


def _parents_first(
    features: list[_Feature], problems: list[ImportProblem]
) -> list[_Feature]:
    """Order so every feature comes after the feature naming its parent (stable otherwise)."""
    by_code = {feature.code: feature for feature in features}
    depth: dict[str, int] = {}
    looping: set[str] = set()
    for feature in features:
        chain: list[str] = []
        code: str | None = feature.code
        while code in by_code and code not in depth and code not in chain:
            chain.append(code)
            code = by_code[code].parent_code
        base = depth.get(code, -1) if code is not None and code not in chain else -1
        if code is not None and code in chain:
            looping.update(chain[chain.index(code):])
        for offset, member in enumerate(reversed(chain)):
            depth[member] = base + offset + 1
    for code in looping:
        feature = by_code[code]
        problems.append(ImportProblem(feature.index, code, {"parent_code": [PARENT_CHAIN_LOOPS]}))
    ordered = [feature for feature in features if feature.code not in looping]
    return sorted(ordered, key=lambda feature: (depth[feature.code], feature.index))


def _areas_by_code(codes: Iterable[str]) -> dict[str, Area]:
    wanted = sorted(set(codes))
    found: dict[str, Area] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for area in db.session.scalars(sa.select(Area).where(Area.code.in_(chunk))):
            found[area.code] = area
    return found


def import_areas(collection: Any) -> ImportResult:
    """Create or update the areas of a GeoJSON FeatureCollection, keyed by ``code``.

    Every feature passes the API's rules. Unchanged areas are not written at all, so importing the
    same file twice changes nothing. Raises :class:`ImportFailed` listing every invalid feature;
    the caller then rolls back, so a bad file writes nothing. Changes are audited with no actor.
    """
    features, problems = _parse_features(collection)
    ordered = _parents_first(features, problems)
    areas = _areas_by_code(
        [feature.code for feature in ordered]
        + [feature.parent_code for feature in ordered if feature.parent_code]
    )
    failed: set[str] = {problem.code for problem in problems if problem.code}
    file_codes = {feature.code for feature in features}
    result = ImportResult()
    locked: set[int] = set()
    for feature in ordered:
        try:
            parent = _import_parent(feature, areas, failed, file_codes)
            existing = areas.get(feature.code)
            if existing is None:
                areas[feature.code] = _import_new(feature, parent, locked)
                result.created += 1
            elif _import_existing(feature, existing, parent):
                result.updated += 1
            else:
                result.unchanged += 1
        except (ValidationFailed, Conflict) as failure:
            failed.add(feature.code)
            field = "code" if failure.code == "area_code_taken" else "feature"
            errors = failure.errors or {field: [failure.detail]}
            problems.append(ImportProblem(feature.index, feature.code, errors))
    if problems:
        raise ImportFailed(problems)
    return result


def _import_parent(
    feature: _Feature, areas: dict[str, Area], failed: set[str], file_codes: set[str]
) -> Area | None:
    if feature.parent_code is None:
        if feature.level != AreaLevel.CITY:
            raise ValidationFailed(errors={"parent_code": [MISSING_FIELD]})
        return None
    if feature.parent_code in failed:
        raise ValidationFailed(errors={"parent_code": [PARENT_FEATURE_INVALID]})
    parent = areas.get(feature.parent_code)
    if parent is None:
        message = PARENT_FEATURE_INVALID if feature.parent_code in file_codes else PARENT_NOT_IN_TREE
        raise ValidationFailed(errors={"parent_code": [message]})
    return parent


def _import_new(feature: _Feature, parent: Area | None, locked: set[int]) -> Area:
    data = {"code": feature.code, "level": feature.level, **feature.attributes}
    if parent is None:
        return _create_city(data)
    return create_area(None, {**data, "parent_id": parent.id}, locked=locked)


def _import_existing(feature: _Feature, area: Area, parent: Area | None) -> bool:
    if feature.level != area.level:
        raise ValidationFailed(errors={"level": [LEVEL_IS_FIXED]})
    if (parent is None) != (area.parent_id is None):
        raise ValidationFailed(errors={"parent_code": [CITY_HAS_NO_PARENT]})
    if area.level == AreaLevel.GRID and "boundary" not in feature.attributes:
        raise ValidationFailed(errors={"boundary": [MISSING_FIELD]})
    moved = parent is not None and move_area(None, area, parent.id)
    updated = update_area(None, area, feature.attributes)
    return moved or updated

