"""The rewards catalogue: who manages items, validation, who sees what, stock changes, photos."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image

from core.db import utcnow
from core.extensions import db
from rewards.catalogue.models import CatalogueItem
from rewards.ledger import service as ledger
from tests import factories
from tests.conftest import Tree
from tests.factories import headers_for
from tests.problems import assert_problem

API = "/api/v1/catalogue-items"


@pytest.fixture(autouse=True)
def _ledger_agrees() -> Iterator[None]:
    yield
    assert ledger.check_invariant() == []


# Photos in the test's own folder, local storage (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("photo_dir")


@pytest.fixture
def people(tree: Tree) -> dict[str, Any]:
    return {
        "volunteer": factories.make_volunteer(tree.grid_a),
        "volunteer_b": factories.make_volunteer(tree.grid_b),
        "organiser": factories.make_user("organiser", tree.community_a),
        "staff_a": factories.make_user("staff", tree.district_a),
        "staff_b": factories.make_user("staff", tree.district_b),
        "admin": factories.make_user("admin", tree.city),
    }


def body(**extra: Any) -> dict[str, Any]:
    return {"name": "保温杯", "description": "印有守望标志", "points_cost": 120, "stock": 5, **extra}


def item_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(CatalogueItem))


def make_item(area: Any, **values: Any) -> CatalogueItem:
    item = CatalogueItem(
        area_id=area.id,
        name=values.pop("name", f"item-{area.id}"),
        description="",
        points_cost=values.pop("points_cost", 10),
        stock=values.pop("stock", 3),
        active=values.pop("active", True),
        **values,
    )
    db.session.add(item)
    db.session.flush()
    return item


# --- creating ------------------------------------------------------------------------------------


def test_staff_create_an_item_for_their_district(client, tree: Tree, people) -> None:
    response = client.post(API, json=body(area_id=tree.district_a.id, per_volunteer_limit=2),
                           headers=headers_for(people["staff_a"]))
    assert response.status_code == 201, response.get_json()
    item = response.get_json()
    assert item["area_id"] == tree.district_a.id and item["area_name"] == "东河区"
    assert (item["points_cost"], item["stock"], item["per_volunteer_limit"]) == (120, 5, 2)
    assert item["active"] is True and item["available_now"] is True and item["photo_url"] is None
    stored = db.session.get(CatalogueItem, item["id"])
    assert stored.created_by == people["staff_a"].id


def test_the_area_defaults_to_the_callers_own(client, tree: Tree, people) -> None:
    response = client.post(API, json=body(), headers=headers_for(people["admin"]))
    assert response.status_code == 201
    assert response.get_json()["area_id"] == tree.city.id


@pytest.mark.parametrize("who", ["organiser", "volunteer"])
def test_organisers_and_volunteers_do_not_manage_the_catalogue(client, people, who) -> None:
    user = people[who] if who == "organiser" else people[who].user
    assert_problem(client.post(API, json=body(), headers=headers_for(user)), 403, "forbidden")
    assert item_count() == 0


def test_an_area_outside_mine_is_403_and_nothing_is_written(client, tree: Tree, people) -> None:
    response = client.post(API, json=body(area_id=tree.community_b.id), headers=headers_for(people["staff_a"]))
    assert_problem(response, 403, "out_of_scope")
    assert item_count() == 0


@pytest.mark.parametrize(
    "change, field",
    [
        ({"points_cost": 0}, "points_cost"),
        ({"points_cost": -5}, "points_cost"),
        ({"points_cost": 1_000_001}, "points_cost"),
        ({"points_cost": "100"}, "points_cost"),
        ({"points_cost": 1.5}, "points_cost"),
        ({"stock": -1}, "stock"),
        ({"stock": 10**12}, "stock"),
        ({"per_volunteer_limit": 0}, "per_volunteer_limit"),
        ({"per_volunteer_limit": 5000}, "per_volunteer_limit"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"valid_from": "2026-12-01T00:00:00+08:00", "valid_until": "2026-11-01T00:00:00+08:00"}, "valid_until"),
        ({"valid_from": "2026-12-01T00:00:00"}, "valid_from"),
        ({"area_id": 0}, "area_id"),
        ({"area_id": 999_999}, "area_id"),
        ({"active": False}, "active"),
    ],
)
def test_negative_or_absurd_values_are_422_and_nothing_is_written(client, people, change, field) -> None:
    response = client.post(API, json=body(**change), headers=headers_for(people["admin"]))
    problem = assert_problem(response, 422, "validation_failed")
    assert field in problem["errors"]
    assert item_count() == 0


# --- who sees what -------------------------------------------------------------------------------


def test_volunteers_see_active_items_valid_now_whose_area_contains_their_home_grid(client, tree: Tree, people) -> None:
    now = utcnow()
    visible = [
        make_item(tree.city, name="city"),
        make_item(tree.district_a, name="district", stock=0),
        make_item(tree.community_a, name="community", valid_from=now - timedelta(days=1),
                  valid_until=now + timedelta(days=1)),
        make_item(tree.grid_a, name="grid"),
    ]
    for hidden in (
        make_item(tree.district_b, name="other district"),
        make_item(tree.grid_a2, name="other grid"),
        make_item(tree.district_a, name="expired", valid_until=now - timedelta(minutes=1)),
        make_item(tree.district_a, name="future", valid_from=now + timedelta(days=1)),
        make_item(tree.district_a, name="withdrawn", active=False),
    ):
        assert hidden.id
    response = client.get(API, headers=headers_for(people["volunteer"].user))
    assert response.status_code == 200
    page = response.get_json()
    assert [item["name"] for item in page["items"]] == [item.name for item in reversed(visible)]
    assert {item["name"]: item["available_now"] for item in page["items"]}["district"] is False


def test_managers_see_the_items_of_their_subtree(client, tree: Tree, people) -> None:
    city = make_item(tree.city, name="city")
    district = make_item(tree.district_a, name="district")
    community = make_item(tree.community_a, name="community", active=False)
    make_item(tree.district_b, name="other district")

    def names(user: Any, query: str = "") -> list[str]:
        response = client.get(API + query, headers=headers_for(user))
        assert response.status_code == 200, response.get_json()
        return [item["name"] for item in response.get_json()["items"]]

    assert names(people["staff_a"]) == [community.name, district.name]
    assert names(people["staff_a"], "?active=true") == [district.name]
    assert names(people["staff_a"], f"?area_id={tree.community_a.id}") == [community.name]
    assert names(people["organiser"]) == [community.name]
    assert len(names(people["admin"])) == 4 and city.name in names(people["admin"])
    assert_problem(client.get(f"{API}?area_id={tree.district_b.id}", headers=headers_for(people["staff_a"])),
                   403, "out_of_scope")


def test_lists_are_paginated_by_cursor(client, tree: Tree, people) -> None:
    items = [make_item(tree.district_a, name=f"n{i}") for i in range(5)]
    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(API + query, headers=headers_for(people["staff_a"])).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [item.id for item in reversed(items)]
    assert_problem(client.get(API + "?cursor=nonsense", headers=headers_for(people["staff_a"])), 422,
                   "validation_failed")


def test_one_item_is_404_for_a_volunteer_and_for_staff_elsewhere(client, tree: Tree, people) -> None:
    item = make_item(tree.district_a)
    assert client.get(f"{API}/{item.id}", headers=headers_for(people["volunteer"].user)).status_code == 200
    assert_problem(client.get(f"{API}/{item.id}", headers=headers_for(people["volunteer_b"].user)),
                   404, "catalogue_item_not_found")
    assert_problem(client.get(f"{API}/{item.id}", headers=headers_for(people["staff_b"])), 404,
                   "catalogue_item_not_found")
    assert_problem(client.get(f"{API}/999999", headers=headers_for(people["staff_a"])), 404,
                   "catalogue_item_not_found")


# --- editing -------------------------------------------------------------------------------------


def test_editing_fields_and_moving_the_stock(client, tree: Tree, people) -> None:
    item = make_item(tree.district_a, stock=3)
    headers = headers_for(people["staff_a"])
    response = client.patch(f"{API}/{item.id}", json={"name": "雨伞", "points_cost": 80, "stock_change": 4,
                                                      "per_volunteer_limit": None}, headers=headers)
    assert response.status_code == 200, response.get_json()
    view = response.get_json()
    assert (view["name"], view["points_cost"], view["stock"], view["per_volunteer_limit"]) == ("雨伞", 80, 7, None)
    response = client.patch(f"{API}/{item.id}", json={"stock_change": -7}, headers=headers)
    assert response.get_json()["stock"] == 0


def test_a_stock_change_below_zero_is_409_and_changes_nothing(client, tree: Tree, people) -> None:
    item = make_item(tree.district_a, stock=2, name="before")
    response = client.patch(f"{API}/{item.id}", json={"stock_change": -3, "name": "after"},
                            headers=headers_for(people["staff_a"]))
    assert_problem(response, 409, "stock_out_of_range")
    db.session.refresh(item)
    assert (item.stock, item.name) == (2, "before")


@pytest.mark.parametrize(
    "change",
    [{}, {"stock_change": 0}, {"stock": 5}, {"points_cost": 0}, {"valid_until": "2020-01-01T00:00:00+08:00"}],
)
def test_bad_edits_are_422(client, tree: Tree, people, change) -> None:
    item = make_item(tree.district_a, valid_from=utcnow() - timedelta(days=1))
    response = client.patch(f"{API}/{item.id}", json=change, headers=headers_for(people["staff_a"]))
    assert_problem(response, 422, "validation_failed")


def test_editing_outside_my_area_is_404_and_as_organiser_403(client, tree: Tree, people) -> None:
    item = make_item(tree.district_a, name="kept")
    for user, status, code in (
        (people["staff_b"], 404, "catalogue_item_not_found"),
        (people["organiser"], 403, "forbidden"),
    ):
        assert_problem(client.patch(f"{API}/{item.id}", json={"name": "x"}, headers=headers_for(user)), status, code)
        assert_problem(client.post(f"{API}/{item.id}/deactivate", headers=headers_for(user)), status, code)
    db.session.refresh(item)
    assert item.name == "kept" and item.active


def test_a_deactivated_item_is_hidden_from_volunteers_until_activated(client, tree: Tree, people) -> None:
    item = make_item(tree.district_a)
    staff, volunteer = headers_for(people["staff_a"]), headers_for(people["volunteer"].user)
    assert client.post(f"{API}/{item.id}/deactivate", headers=staff).get_json()["active"] is False
    assert client.get(API, headers=volunteer).get_json()["items"] == []
    assert_problem(client.get(f"{API}/{item.id}", headers=volunteer), 404, "catalogue_item_not_found")
    assert client.post(f"{API}/{item.id}/activate", headers=staff).get_json()["active"] is True
    assert [i["id"] for i in client.get(API, headers=volunteer).get_json()["items"]] == [item.id]


# --- photos --------------------------------------------------------------------------------------


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), (10, 200, 10)).save(out, format="PNG")
    return out.getvalue()


def test_a_photo_is_stored_re_encoded_and_served(client, tree: Tree, people, photo_dir: Path) -> None:
    item = make_item(tree.district_a)
    response = client.put(f"{API}/{item.id}/photo", data={"file": (io.BytesIO(png()), "cup.png")},
                          headers=headers_for(people["staff_a"]), content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    url = response.get_json()["photo_url"]
    assert url == f"{API}/{item.id}/photo"
    served = client.get(url, headers=headers_for(people["volunteer"].user))
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert Image.open(io.BytesIO(served.data)).size == (30, 20)
    assert len([p for p in photo_dir.rglob("*") if p.is_file()]) == 1


def test_a_photo_that_is_not_an_image_is_415_and_nothing_is_stored(client, tree: Tree, people, photo_dir: Path) -> None:
    item = make_item(tree.district_a)
    response = client.put(f"{API}/{item.id}/photo", data={"file": (io.BytesIO(b"not an image"), "x.png")},
                          headers=headers_for(people["staff_a"]), content_type="multipart/form-data")
    assert_problem(response, 415, "unsupported_photo_type")
    db.session.refresh(item)
    assert item.photo_key is None and not photo_dir.exists()
    assert_problem(client.get(f"{API}/{item.id}/photo", headers=headers_for(people["staff_a"])), 404,
                   "photo_not_found")
