"""``flask grids import``: create or update areas from a GeoJSON FeatureCollection, keyed by code.

Every feature passes the same rules as the API (:mod:`grids.service` does the writes). The import
only flushes; the CLI command commits or rolls back, so a bad file writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
import sqlalchemy as sa

from core import i18n
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from grids.models import Area, AreaLevel
from grids.schemas import AreaCreateInput, AreaUpdateInput, ImportPropertiesSchema
from grids.service import MISSING_FIELD, create_area, create_city, move_area, update_area

LEVEL_IS_FIXED = i18n.N_("The level of an existing area cannot change.")
CITY_HAS_NO_PARENT = i18n.N_("Only a city has no parent, and a city has none.")
DUPLICATE_IN_FILE = i18n.N_("This code appears more than once in the file.")
PARENT_NOT_IN_TREE = i18n.N_("No area or feature has this code.")
PARENT_FEATURE_INVALID = i18n.N_("The parent feature is invalid.")
PARENT_CHAIN_LOOPS = i18n.N_("The parent codes form a loop.")
NOT_A_FEATURE = i18n.N_("Not a GeoJSON Feature with properties.")
NOT_A_COLLECTION = i18n.N_("Not a GeoJSON FeatureCollection.")

i18n.register_titles(i18n.title("import_invalid", "The import file is invalid; nothing was written"))
i18n.register_messages(
    LEVEL_IS_FIXED,
    CITY_HAS_NO_PARENT,
    DUPLICATE_IN_FILE,
    PARENT_NOT_IN_TREE,
    PARENT_FEATURE_INVALID,
    PARENT_CHAIN_LOOPS,
    NOT_A_FEATURE,
    NOT_A_COLLECTION,
)


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
    attributes: AreaUpdateInput  # name, timezone?, grid_kind?, households?, boundary?


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
        attributes: AreaUpdateInput = {"name": loaded["name"]}
        if "timezone" in loaded:
            attributes["timezone"] = loaded["timezone"]
        if "grid_kind" in loaded:
            attributes["grid_kind"] = loaded["grid_kind"]
        if "households" in loaded:
            attributes["households"] = loaded["households"]
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
    if parent is None:
        return create_city({**feature.attributes, "code": feature.code})
    data: AreaCreateInput = {
        **feature.attributes,
        "parent_id": parent.id,
        "level": AreaLevel(feature.level),
        "code": feature.code,
        "name": feature.attributes["name"],  # always loaded (required by ImportPropertiesSchema)
    }
    return create_area(None, data, locked=locked)


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

