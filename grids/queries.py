"""Reads of the area tree: lookups, lists, search, and finding the grid that covers a point.

The lower half of the grids service: :mod:`grids.service` (the writes) builds on these lookups and
re-exports them, so other packages keep importing from ``grids.service``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from core import geo, i18n
from core.auth import Caller
from core.errors import MAX_DB_INT, NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area, AreaLevel

UNKNOWN_AREA = i18n.N_("Unknown area.")
NO_GRID_HERE = i18n.N_("No grid contains this point.")

i18n.register_titles(
    i18n.title("no_grid_here", "No grid covers this location"),
    i18n.title("not_a_city", "The area is not a city"),
)
i18n.register_messages(UNKNOWN_AREA, NO_GRID_HERE)

#: Columns a list never shows; a grid's polygon can be tens of kilobytes.
_LIST_OPTIONS = (orm.defer(Area.boundary), orm.lazyload(Area.parent))


def get_area(area_id: int) -> Area:
    """The area with this id (from a URL, which the app's converter bounds); 404 if there is none."""
    area = db.session.get(Area, area_id)
    if area is None:
        raise NotFound("Area not found.", code="area_not_found")
    return area


def get_city(area_id: int, detail: str) -> Area:
    """The city with this id, for settings kept per city: 404 ``area_not_found`` if there is no
    such area, 404 ``not_a_city`` (with ``detail``, saying what exists per city) if it is another level."""
    area = get_area(area_id)
    if area.level != AreaLevel.CITY:
        raise NotFound(detail, code="not_a_city")
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


def in_subtree(path_column: sa.SQLColumnExpression[str], root_path: str) -> sa.ColumnElement[bool]:
    """SQL condition: ``path_column`` lies in the subtree rooted at ``root_path`` (inclusive)."""
    return path_column.startswith(root_path, autoescape=True)


def grid_boundaries(root_path: str) -> dict[int, dict[str, Any]]:
    """The boundary of every grid under ``root_path`` that has one, by grid id (one query; for maps).
    Boundaries are public, as ``GET /areas/<id>`` answers them."""
    rows = db.session.execute(
        sa.select(Area.id, Area.boundary).where(
            Area.level == AreaLevel.GRID.value, in_subtree(Area.path, root_path), Area.boundary.is_not(None)
        )
    )
    return {area_id: boundary for area_id, boundary in rows if boundary}


# ------------------------------------------------------------------------------ lists and search


def referenced_area(area_id: int, field: str) -> Area:
    """An area named in a request body or query; a missing one is the client's validation error."""
    area = db.session.get(Area, area_id)
    if area is None:
        raise ValidationFailed(errors={field: [UNKNOWN_AREA]})
    return area


def scope_root(caller: Caller, area_id: int | None, field: str = "area_id") -> str:
    """The subtree a list covers: ``area_id``'s when given (403 outside the caller's), else the caller's."""
    if area_id is None:
        return caller.area_path
    area = referenced_area(area_id, field)
    caller.ensure_scope(area.path)
    return area.path


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
    root_path = referenced_area(under, "under").path if under is not None else default_root_path
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
        stmt = stmt.where(in_subtree(Area.path, referenced_area(under, "under").path))
    return paginate(stmt, [Area.id], limit=limit, cursor=cursor)


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
#: What the answer shows of the grid (``LocateResultSchema`` without its box and ancestors).
_GRID_FIELDS = (
    "id", "parent_id", "level", "code", "name", "timezone", "path", "depth", "grid_kind", "households",
    "version", "created_at", "updated_at",
)
_BOX = ("min_lon", "min_lat", "max_lon", "max_lat")


def _grid_with_ancestors() -> sa.Select:
    """The grids whose box holds ``:lon``, ``:lat``, lowest id first: the answer's columns, the
    cache key's (id, version, updated_at), the boundary as JSON text, then each of the four
    ancestors' id, level, code and name by primary-key joins. Table columns: plain Core rows.

    Built once, with the point as bound parameters: building it per call (fresh aliases, new
    cache key) cost more than the query itself (bench/profile_request.py).
    """
    areas = Area.__table__
    chain = [areas.alias(f"ancestor_{n}") for n in range(_GRID_ANCESTOR_LEVELS)]
    # As text: the driver would parse every candidate's GeoJSON on every request; core.geo parses
    # it only when its prepared polygon is not cached yet (bench/README.md, issue 19).
    boundary = sa.cast(areas.c.boundary, sa.Text)
    stmt = sa.select(
        *(areas.c[name] for name in (*_GRID_FIELDS, *_BOX)),
        boundary,
        *(ancestor.c[name] for ancestor in chain for name in _ANCESTOR_FIELDS),
    ).select_from(areas)
    child: Any = areas
    for ancestor in chain:
        stmt = stmt.outerjoin(ancestor, ancestor.c.id == child.c.parent_id)
        child = ancestor
    lon, lat = sa.bindparam("lon", type_=sa.Float), sa.bindparam("lat", type_=sa.Float)
    return stmt.where(
        areas.c.min_lat <= lat,
        areas.c.max_lat >= lat,
        areas.c.min_lon <= lon,
        areas.c.max_lon >= lon,
        # A literal, not a bound parameter: once psycopg prepares this statement, PostgreSQL's
        # generic plan for "level = $n" scanned every grid in ix_areas_level_path (bench/README.md).
        areas.c.level == sa.literal_column(f"'{AreaLevel.GRID.value}'"),
    ).order_by(areas.c.id)


_LOCATE_WITH_ANCESTORS = _grid_with_ancestors()
_ID, _VERSION, _UPDATED_AT = (_GRID_FIELDS.index(name) for name in ("id", "version", "updated_at"))
_BOUNDARY = len(_GRID_FIELDS) + len(_BOX)


def locate(lon: float, lat: float) -> dict[str, Any]:
    """The grid whose boundary covers the point, with its ancestors from the city down, as the
    ``LocateResultSchema`` dict (``bbox`` included); 404 ``no_grid_here`` when none does.

    One query: the bounding-box columns narrow the grids to a handful through an index; each
    candidate comes with its parent chain; the exact test runs on prepared polygons that core.geo
    caches by (id, version, updated_at). A point on a shared border belongs to both grids: the
    lower id wins, so the answer is stable.
    """
    # The boundaries come with the candidates on purpose. Measured on the 10,000-grid bench seed,
    # loading them only on a cache miss cost a round trip per miss (+0.5 ms a call while the cache
    # fills) and saved nothing measurable once it was warm.
    rows = db.session.connection().execute(_LOCATE_WITH_ANCESTORS, {"lon": lon, "lat": lat}).tuples()
    for row in rows:
        boundary = row[_BOUNDARY]
        if boundary and geo.contains((row[_ID], row[_VERSION], row[_UPDATED_AT]), boundary, lon, lat):
            answer = dict(zip(_GRID_FIELDS, row, strict=False))
            box = row[len(_GRID_FIELDS) : _BOUNDARY]
            answer["bbox"] = None if box[0] is None else list(box)
            width, chain = len(_ANCESTOR_FIELDS), row[_BOUNDARY + 1 :]
            answer["ancestors"] = [
                dict(zip(_ANCESTOR_FIELDS, chain[i : i + width], strict=True))
                for i in range(len(chain) - width, -1, -width)  # city first
                if chain[i] is not None
            ]
            return answer
    raise NotFound(NO_GRID_HERE, code="no_grid_here")


def locate_grid(lon: float, lat: float) -> LocatedGrid:
    """:func:`locate`'s grid as the entity, with its ancestors (for services that keep it)."""
    found = locate(lon, lat)
    grid = db.session.get(Area, found["id"])
    assert grid is not None, "located a moment ago"
    return LocatedGrid(grid, found["ancestors"])
