"""Rules of the area tree. No HTTP here; services flush, the request commits.

The entry point other packages import from. This module holds the writes (create, update, move,
with their locking, snapshots and audit); the reads live in :mod:`grids.queries` and are
re-exported here. The GeoJSON import lives in :mod:`grids.importing`, boundary validation in
:mod:`grids.boundaries`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import orm
from sqlalchemy.exc import IntegrityError

from core import audit, i18n
from core.auth import Caller
from core.db import rowcount, utcnow
from core.errors import Conflict, Forbidden, ValidationFailed
from core.extensions import db
from grids.boundaries import boundary_summary, set_boundary, validated_boundary
from grids.models import CHILD_LEVEL, Area, AreaLevel
from grids.paths import ancestor_ids
from grids.queries import (
    NO_GRID_HERE,
    UNKNOWN_AREA,
    LocatedGrid,
    get_area,
    get_grid,
    in_subtree,
    list_areas,
    list_children,
    locate,
    locate_grid,
    referenced_area,
    scope_root,
    search_areas,
)
from grids.schemas import AreaCreateInput, AreaUpdateInput

__all__ = [
    # defined here
    "CODE_TAKEN",
    "GRID_ONLY_FIELD",
    "INTO_OWN_SUBTREE",
    "MISSING_FIELD",
    # re-exported from grids.queries for other packages
    "NO_GRID_HERE",
    "OWN_AREA_MOVE",
    "UNKNOWN_AREA",
    "WRONG_CHILD_LEVEL",
    "WRONG_PARENT_LEVEL",
    "LocatedGrid",
    "create_area",
    "create_city",
    "get_area",
    "get_grid",
    "in_subtree",
    "list_areas",
    "list_children",
    "locate",
    "locate_grid",
    "move_area",
    "referenced_area",
    "scope_root",
    "search_areas",
    "snapshot",
    "update_area",
]

MISSING_FIELD = "Missing data for required field."
GRID_ONLY_FIELD = i18n.N_("Only grids have this field.")
WRONG_CHILD_LEVEL = i18n.N_("The level must be the one directly below the parent's.")
WRONG_PARENT_LEVEL = i18n.N_("The new parent must be one level above the area.")
INTO_OWN_SUBTREE = i18n.N_("An area cannot move into its own subtree.")
CODE_TAKEN = i18n.N_("The area code is already in use.")
OWN_AREA_MOVE = i18n.N_("You cannot move the area you are responsible for.")

i18n.register_titles(
    i18n.title("area_code_taken", "The area code is already in use"),
    i18n.title("own_area_move", "You cannot move your own area"),
)
i18n.register_messages(
    i18n.N_("The area conflicts with existing data."),
    GRID_ONLY_FIELD,
    WRONG_CHILD_LEVEL,
    WRONG_PARENT_LEVEL,
    INTO_OWN_SUBTREE,
    CODE_TAKEN,
    OWN_AREA_MOVE,
)

_GRID_ONLY = ("boundary", "grid_kind", "households")


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


def _check_attributes(level: str, data: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
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
    caller: Caller | None, data: AreaCreateInput, *, locked: set[int] | None = None
) -> Area:
    """A new area under ``data["parent_id"]``; ``caller`` None means a system change (import).

    ``locked``: area ids already locked by this transaction (see :func:`_lock_with_ancestors`).
    """
    parent = referenced_area(data["parent_id"], "parent_id")
    _lock_with_ancestors([parent], exclusive=False, locked=locked)
    if caller is not None:
        caller.ensure_scope(parent.path)
    level = str(data["level"])
    if CHILD_LEVEL.get(AreaLevel(parent.level)) != level:
        raise ValidationFailed(errors={"level": [WRONG_CHILD_LEVEL]})
    cleaned = _check_attributes(level, data, creating=True)
    return _insert(caller, parent, level, cleaned)


def create_city(data: AreaUpdateInput) -> Area:
    """A root of the tree; only the import creates one (a system change, audited with no actor)."""
    cleaned = _check_attributes(AreaLevel.CITY, data, creating=True)
    return _insert(None, None, AreaLevel.CITY.value, cleaned)


def update_area(caller: Caller | None, area: Area, changes: AreaUpdateInput) -> bool:
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
    new_parent = referenced_area(new_parent_id, "parent_id")
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
            "subtree_size": rowcount(result),
        },
    )
    return True
