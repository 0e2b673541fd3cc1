"""marshmallow schemas of the area tree: output, create, update (partial), move and query arguments."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import marshmallow as ma

from core import i18n
from core.fields import FullMatch, Instant, UpdateSchema
from core.pagination import PageArgs
from core.validators import Text, TimeZoneName, id_field
from grids.models import MAX_QUOTA, MAX_WEEKLY_TARGET_MINUTES, AreaLevel, GridKind

MAX_HOUSEHOLDS = 100_000
CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
CODE_MESSAGE = i18n.N_("Use 1 to 32 letters, digits, '_' or '-'.")
KIND_REPEATED = i18n.N_("Each kind may appear only once.")
#: Most kinds one grid's quota names (the builtin two and a few a city adds).
MAX_QUOTA_KINDS = 20

i18n.register_messages(CODE_MESSAGE, KIND_REPEATED)


def code_field(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=FullMatch(CODE_PATTERN, error=CODE_MESSAGE),
        metadata={"example": "150202001001"},
        **kwargs,
    )


def name_field(**kwargs: Any) -> Text:
    return Text(validate=ma.validate.Length(min=1, max=100), **kwargs)


def households_field(**kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True, validate=ma.validate.Range(min=0, max=MAX_HOUSEHOLDS), **kwargs
    )


BOUNDARY_DESCRIPTION = (
    "GeoJSON Polygon or MultiPolygon in WGS84 ([longitude, latitude]); closed rings, "
    "not self-intersecting, at most GRID_MAX_VERTICES vertices."
)


# ---------------------------------------------------------------------------------------- output


class AncestorSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    level = ma.fields.String(required=True)
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class AreaSummarySchema(ma.Schema):
    """An area without its boundary polygon (list items, locate)."""

    id = ma.fields.Integer(required=True)
    parent_id = ma.fields.Integer(required=True, allow_none=True)
    level = ma.fields.String(required=True, metadata={"enum": [level.value for level in AreaLevel]})
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    timezone = ma.fields.String(required=True)
    path = ma.fields.String(required=True, metadata={"description": "Materialised path of ids"})
    depth = ma.fields.Integer(required=True)
    grid_kind = ma.fields.String(allow_none=True, metadata={"enum": [kind.value for kind in GridKind]})
    households = ma.fields.Integer(allow_none=True)
    bbox = ma.fields.Method(
        "get_bbox",
        allow_none=True,
        metadata={
            "type": "array",
            "items": {"type": "number"},
            "description": "[min_lon, min_lat, max_lon, max_lat] of a grid's boundary; null otherwise",
        },
    )
    version = ma.fields.Integer(required=True, metadata={"description": "Bumped on boundary changes"})
    created_at = Instant(required=True)
    updated_at = Instant(required=True)

    def get_bbox(self, area: Any) -> list[float] | None:
        if type(area) is dict:  # a grid read as plain values (``grids.queries.locate``): its box made
            return area["bbox"]
        if area.min_lon is None:
            return None
        return [area.min_lon, area.min_lat, area.max_lon, area.max_lat]


class AreaSchema(AreaSummarySchema):
    """The full record, with a grid's boundary."""

    boundary = ma.fields.Dict(allow_none=True, metadata={"description": BOUNDARY_DESCRIPTION})


class LocateResultSchema(AreaSummarySchema):
    """The grid (without its boundary) and the chain of areas above it."""

    ancestors = ma.fields.List(
        ma.fields.Nested(AncestorSchema),
        required=True,
        metadata={"description": "From the city down to the grid's community"},
    )

# ----------------------------------------------------------------------------------------- input


class AreaCreateSchema(ma.Schema):
    parent_id = id_field(required=True)
    level = ma.fields.Enum(AreaLevel, by_value=True, required=True)
    code = code_field(required=True)
    name = name_field(required=True)
    timezone = TimeZoneName(metadata={"description": "Defaults to the parent's"})
    boundary = ma.fields.Dict(metadata={"description": BOUNDARY_DESCRIPTION + " Grids only."})
    grid_kind = ma.fields.Enum(GridKind, by_value=True, metadata={"description": "Grids only"})
    households = households_field(metadata={"description": "Grids only"})


class AreaCreateInput(TypedDict):
    """What :class:`AreaCreateSchema` loads."""

    parent_id: int
    level: AreaLevel
    code: str
    name: str
    timezone: NotRequired[str]
    boundary: NotRequired[dict[str, Any]]
    grid_kind: NotRequired[GridKind]
    households: NotRequired[int]


class AreaUpdateSchema(UpdateSchema):
    """Every field optional; only the given ones change (at least one)."""

    code = code_field()
    name = name_field()
    timezone = TimeZoneName()
    boundary = ma.fields.Dict(metadata={"description": BOUNDARY_DESCRIPTION + " Grids only."})
    grid_kind = ma.fields.Enum(GridKind, by_value=True, metadata={"description": "Grids only"})
    households = households_field(metadata={"description": "Grids only"})


class AreaUpdateInput(TypedDict, total=False):
    """What :class:`AreaUpdateSchema` loads."""

    code: str
    name: str
    timezone: str
    boundary: dict[str, Any]
    grid_kind: GridKind
    households: int


class AreaMoveSchema(ma.Schema):
    parent_id = id_field(required=True)


class ImportPropertiesSchema(ma.Schema):
    """``properties`` of one feature of ``flask grids import``; the geometry is the boundary."""

    code = code_field(required=True)
    name = name_field(required=True)
    level = ma.fields.Enum(AreaLevel, by_value=True, required=True)
    parent_code = code_field(required=True, allow_none=True)
    timezone = TimeZoneName()
    grid_kind = ma.fields.Enum(GridKind, by_value=True)
    households = households_field()


# ----------------------------------------------------------------------------------- query args


class AreaListArgs(PageArgs):
    under = id_field(
        strict=False,
        metadata={
            "description": "Only this area's subtree (inclusive). Without it, a signed-in caller "
            "gets their own area's subtree and an anonymous one the whole tree."
        },
    )
    level = ma.fields.Enum(AreaLevel, by_value=True)
    parent_id = id_field(strict=False)


class AreaSearchArgs(PageArgs):
    q = Text(
        required=True,
        validate=ma.validate.Length(min=1, max=50),
        metadata={"description": "Part of the name, or the start of the code"},
    )
    level = ma.fields.Enum(AreaLevel, by_value=True)
    under = id_field(strict=False)


class LocateArgs(ma.Schema):
    lat = ma.fields.Float(required=True, validate=ma.validate.Range(min=-90, max=90))
    lon = ma.fields.Float(required=True, validate=ma.validate.Range(min=-180, max=180))


# ------------------------------------------------------------------------ quotas and patrol targets


class KindQuotaSchema(ma.Schema):
    kind = Text(
        required=True,
        validate=ma.validate.Length(min=2, max=32),
        metadata={"description": "Code of a volunteer kind (`GET /volunteer-kinds`)", "example": "alley_steward"},
    )
    min_active = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_QUOTA),
        metadata={"description": "Least number of active volunteers of this kind living in the grid"},
    )


class KindQuotaInput(TypedDict):
    """What :class:`KindQuotaSchema` loads."""

    kind: str
    min_active: int


def _distinct_kinds(quotas: list[KindQuotaInput]) -> None:
    kinds = [quota["kind"] for quota in quotas]
    if len(set(kinds)) != len(kinds):
        raise ma.ValidationError(KIND_REPEATED)


class GridQuotaSetSchema(ma.Schema):
    """The whole quota of a grid (or of each grid of a community): what is not given is removed."""

    weekly_target_minutes = ma.fields.Integer(
        required=True,
        allow_none=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_WEEKLY_TARGET_MINUTES),
        metadata={
            "description": "Person-minutes the grid should be patrolled each week (e.g. 840: two "
            "stewards an hour a day); null: no target"
        },
    )
    quotas = ma.fields.List(
        ma.fields.Nested(KindQuotaSchema),
        required=True,
        validate=[ma.validate.Length(max=MAX_QUOTA_KINDS), _distinct_kinds],
        metadata={"description": "Per volunteer kind, the least number of active volunteers homed "
                  "in the grid; [] removes every quota. Each kind once; an unknown kind is 422."},
    )


class GridQuotaSetInput(TypedDict):
    """What :class:`GridQuotaSetSchema` loads."""

    weekly_target_minutes: int | None
    quotas: list[KindQuotaInput]


class GridQuotaSchema(ma.Schema):
    """A grid's steward quota and weekly patrol target."""

    grid_id = ma.fields.Integer(required=True)
    grid_name = ma.fields.String(required=True)
    path = ma.fields.String(required=True)
    weekly_target_minutes = ma.fields.Integer(required=True, allow_none=True)
    quotas = ma.fields.List(ma.fields.Nested(KindQuotaSchema), required=True)
    updated_at = Instant(
        required=True, allow_none=True, metadata={"description": "Last change; null: never set"}
    )


class GridQuotaListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(GridQuotaSchema), required=True)
