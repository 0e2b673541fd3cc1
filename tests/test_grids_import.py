"""``flask grids import FILE.geojson``: upsert by code, idempotent, all or nothing."""

from __future__ import annotations

import contextvars
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask

from core.audit import AuditEntry
from core.extensions import db
from grids.models import Area
from tests import factories

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "areas.geojson"
CODES = ("IMP-CITY", "IMP-D1", "IMP-D2", "IMP-S1", "IMP-S2", "IMP-C1", "IMP-G1", "IMP-G2", "IMP-G3")


def _feature(code: str, level: str, parent: str | None, geometry: Any = None, **props: Any) -> dict[str, Any]:
    properties = {"code": code, "name": f"{code} 名称", "level": level, "parent_code": parent, **props}
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def _collection() -> dict[str, Any]:
    """Children before parents on purpose: the import must order them itself."""
    return {
        "type": "FeatureCollection",
        "features": [
            _feature("IMP-G1", "grid", "IMP-C1", factories.square(109.84, 40.65), grid_kind="urban", households=350),
            _feature("IMP-G2", "grid", "IMP-C1", factories.square(109.85, 40.65), grid_kind="rural"),
            _feature("IMP-C1", "community", "IMP-S1"),
            _feature("IMP-S1", "subdistrict", "IMP-D1"),
            _feature("IMP-S2", "subdistrict", "IMP-D2"),
            _feature("IMP-D1", "district", "IMP-CITY"),
            _feature("IMP-D2", "district", "IMP-CITY", timezone="Asia/Urumqi"),
            _feature("IMP-CITY", "city", None, timezone="Asia/Shanghai"),
        ],
    }


def _run(app: Flask, tmp_path: Path, collection: Any, *extra: str) -> Result:
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    # Invoked from an empty context, as from a shell: the command pushes its own app context and so
    # gets its own session, whose commit or rollback leaves the test's session alone.
    runner = app.test_cli_runner()
    result = contextvars.Context().run(runner.invoke, args=["grids", "import", str(path), *extra])
    db.session.expire_all()
    return result


def _areas() -> dict[str, Area]:
    return {area.code: area for area in db.session.scalars(sa.select(Area).where(Area.code.in_(CODES)))}


def _import_audits() -> list[AuditEntry]:
    return list(
        db.session.scalars(sa.select(AuditEntry).where(AuditEntry.actor_id.is_(None)).order_by(AuditEntry.id))
    )


def test_import_creates_the_tree_in_parent_order(app: Flask, tmp_path: Path) -> None:
    result = _run(app, tmp_path, _collection())
    assert result.exit_code == 0, result.output
    assert "8 created, 0 updated, 0 unchanged" in result.output
    areas = _areas()
    city, district, sub, community, grid = (areas[c] for c in ("IMP-CITY", "IMP-D1", "IMP-S1", "IMP-C1", "IMP-G1"))
    assert city.parent_id is None and city.path == f"/{city.id}/" and city.depth == 0
    assert grid.path == f"/{city.id}/{district.id}/{sub.id}/{community.id}/{grid.id}/"
    assert grid.depth == 4 and grid.parent_id == community.id
    assert grid.households == 350 and grid.grid_kind == "urban" and grid.version == 1
    assert (grid.min_lon, grid.min_lat) == (109.84, 40.65)
    assert areas["IMP-G2"].households is None
    # Time zones are inherited unless given.
    assert areas["IMP-S2"].timezone == "Asia/Urumqi"
    assert areas["IMP-S1"].timezone == "Asia/Shanghai"
    audits = _import_audits()
    assert [entry.action for entry in audits] == ["area.create"] * 8
    assert all(entry.actor_role is None for entry in audits)


def test_import_a_second_time_changes_nothing(app: Flask, tmp_path: Path) -> None:
    assert _run(app, tmp_path, _collection()).exit_code == 0
    before = {code: (a.updated_at, a.version, a.path) for code, a in _areas().items()}
    audits_before = len(_import_audits())

    result = _run(app, tmp_path, _collection())
    assert result.exit_code == 0, result.output
    assert "0 created, 0 updated, 8 unchanged" in result.output
    assert {code: (a.updated_at, a.version, a.path) for code, a in _areas().items()} == before
    assert len(_import_audits()) == audits_before


def test_import_updates_what_differs_and_moves_on_a_parent_change(app: Flask, tmp_path: Path) -> None:
    assert _run(app, tmp_path, _collection()).exit_code == 0
    original = _areas()
    grid_version = original["IMP-G1"].version
    untouched_at = original["IMP-G2"].updated_at

    changed = _collection()
    features = {f["properties"]["code"]: f for f in changed["features"]}
    features["IMP-G1"]["geometry"] = factories.square(109.84, 40.65, 0.02)
    features["IMP-G1"]["properties"]["name"] = "东站第1网格"
    features["IMP-C1"]["properties"]["parent_code"] = "IMP-S2"  # the community moves with its grids
    changed["features"].append(_feature("IMP-G3", "grid", "IMP-C1", factories.square(109.86, 40.65), grid_kind="urban"))

    result = _run(app, tmp_path, changed)
    assert result.exit_code == 0, result.output
    assert "1 created, 2 updated, 6 unchanged" in result.output
    areas = _areas()
    grid, community, new_sub = areas["IMP-G1"], areas["IMP-C1"], areas["IMP-S2"]
    assert grid.name == "东站第1网格" and grid.version == grid_version + 1
    assert grid.max_lon == pytest.approx(109.86)
    assert community.parent_id == new_sub.id
    for code in ("IMP-G1", "IMP-G2", "IMP-G3"):
        assert areas[code].path == f"{new_sub.path}{community.id}/{areas[code].id}/"
    assert areas["IMP-G2"].updated_at > untouched_at  # its path changed with the move
    actions = [entry.action for entry in _import_audits()]
    assert actions.count("area.move") == 1 and actions.count("area.update") == 1


@pytest.mark.parametrize(
    ("mutate", "index", "expected"),
    [
        (lambda f: f[1].update(geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}),
         1, "boundary: Boundary is not a valid polygon"),
        (lambda f: f[1]["properties"].update(parent_code="NOPE"), 1, "parent_code: No area or feature has this code."),
        (lambda f: f[0].update(geometry=None), 0, "boundary: Missing data for required field."),
        (lambda f: f[2].update(geometry=factories.square(1, 1)), 2, "boundary: Only grids have this field."),
        (lambda f: f[3]["properties"].update(level="community"), 3, "level: The level must be the one directly below"),
        (lambda f: f[5]["properties"].update(timezone="Nowhere/City"), 5, "timezone: Unknown time zone."),
        (lambda f: f[0]["properties"].update(households=-5), 0, "households: Must be greater than or equal to 0"),
        (lambda f: f[4]["properties"].update(code="IMP-S1"), 4, "code: This code appears more than once"),
        (lambda f: f[4]["properties"].update(extra=1), 4, "extra: Unknown field."),
        (lambda f: f[6]["properties"].update(parent_code=None), 6, "parent_code: Missing data for required field."),
        (lambda f: f[7]["properties"].update(parent_code="IMP-D1"), 7, "parent_code: The parent codes form a loop."),
        (lambda f: f.__setitem__(3, "not a feature"), 3, "feature: Not a GeoJSON Feature"),
    ],
    ids=["bow-tie", "unknown-parent", "grid-without-geometry", "geometry-on-community", "wrong-level",
         "timezone", "households", "duplicate-code", "unknown-property", "orphan-district", "city-under-its-district",
         "not-a-feature"],
)
def test_a_bad_feature_writes_nothing(
    app: Flask, tmp_path: Path, mutate: Any, index: int, expected: str
) -> None:
    collection = _collection()
    mutate(collection["features"])
    result = _run(app, tmp_path, collection, "--lang", "en")
    assert result.exit_code == 1
    assert f"features[{index}]" in result.output
    assert expected in result.output
    assert "nothing was written" in result.output
    assert _areas() == {}
    assert _import_audits() == []


def test_a_bad_update_rolls_back_the_good_ones(app: Flask, tmp_path: Path) -> None:
    assert _run(app, tmp_path, _collection()).exit_code == 0
    before = {code: (a.name, a.updated_at, a.path) for code, a in _areas().items()}
    collection = _collection()
    collection["features"][2]["properties"]["name"] = "改过的社区"
    collection["features"][3]["properties"]["parent_code"] = "IMP-D2"  # a move that would be valid
    collection["features"][0]["geometry"]["coordinates"][0].pop()  # open ring
    result = _run(app, tmp_path, collection, "--lang", "en")
    assert result.exit_code == 1
    assert "features[0] (code IMP-G1): boundary: Each ring must be closed." in result.output
    assert {code: (a.name, a.updated_at, a.path) for code, a in _areas().items()} == before


def test_errors_are_in_chinese_by_default(app: Flask, tmp_path: Path) -> None:
    collection = _collection()
    collection["features"][5]["properties"]["timezone"] = "Nowhere/City"
    result = _run(app, tmp_path, collection)
    assert "features[5] (code IMP-D1): timezone: 未知的时区。" in result.output


@pytest.mark.parametrize(
    "content", ['{"type": "Feature"}', "[]", '{"type": "FeatureCollection", "features": {}}']
)
def test_not_a_feature_collection(app: Flask, tmp_path: Path, content: str) -> None:
    result = _run(app, tmp_path, json.loads(content), "--lang", "en")
    assert result.exit_code == 1
    assert "Not a GeoJSON FeatureCollection." in result.output


def test_not_json(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text("{not json", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["grids", "import", str(path)])
    assert result.exit_code == 1
    assert "not a JSON file" in result.output


def test_dry_run_writes_nothing(app: Flask, tmp_path: Path) -> None:
    result = _run(app, tmp_path, _collection(), "--dry-run")
    assert result.exit_code == 0
    assert "8 created" in result.output and "dry run" in result.output
    assert _areas() == {}


def test_a_parent_may_already_exist_in_the_database(app: Flask, tmp_path: Path) -> None:
    city = factories.make_area("city", code="IMP-CITY", name="已有城市")
    collection = {"type": "FeatureCollection", "features": [_feature("IMP-D1", "district", "IMP-CITY")]}
    result = _run(app, tmp_path, collection)
    assert result.exit_code == 0, result.output
    assert "1 created, 0 updated, 0 unchanged" in result.output
    assert _areas()["IMP-D1"].path.startswith(city.path)


def test_parent_codes_that_loop_are_refused(app: Flask, tmp_path: Path) -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [
            _feature("IMP-S1", "subdistrict", "IMP-D1"),
            _feature("IMP-D1", "district", "IMP-S1"),
            _feature("IMP-C1", "community", "IMP-S1"),
        ],
    }
    result = _run(app, tmp_path, collection, "--lang", "en")
    assert result.exit_code == 1
    assert "features[0] (code IMP-S1): parent_code: The parent codes form a loop." in result.output
    assert "features[2] (code IMP-C1): parent_code: The parent feature is invalid." in result.output
    assert _areas() == {}


def test_the_documented_example_imports(app: Flask, tmp_path: Path, client: Any) -> None:
    collection = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    first = _run(app, tmp_path, collection)
    assert first.exit_code == 0, first.output
    assert "6 created, 0 updated, 0 unchanged" in first.output
    response = client.get("/api/v1/areas/locate", query_string={"lat": 40.65, "lon": 109.837})
    assert response.status_code == 200
    body = response.get_json()
    assert body["code"] == "150202001001G01"
    assert [a["name"] for a in body["ancestors"]] == ["包头市", "东河区", "和平路街道", "东站社区"]
    assert "0 created, 0 updated, 6 unchanged" in _run(app, tmp_path, collection).output


# The command commits. conftest binds the session to an outer transaction, so that commit only
# releases a savepoint; these two tests prove the import's rows do not outlive the test.
def test_commit_probe_a_the_import_commits(app: Flask, tmp_path: Path) -> None:
    assert _run(app, tmp_path, _collection()).exit_code == 0
    assert len(_areas()) == 8


def test_commit_probe_b_the_next_test_sees_nothing() -> None:
    assert _areas() == {}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == 0
