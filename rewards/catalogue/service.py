"""The rewards catalogue: items a subtree's volunteers redeem points for. No HTTP here.

District staff run the catalogue (PRODUCT.md: "runs the rewards catalogue"), and admins with them;
organisers only look. An item belongs to an area: the volunteers whose home grid lies in that
area's subtree may redeem it. Stock moves only by conditional UPDATEs (``stock_change`` here,
redemptions in ``rewards/redemptions/service.py``), so a restock never loses a concurrent redemption.
Photos reuse the report photos' checks, re-encoding and store (``core/photos.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from werkzeug.datastructures import FileStorage

from core import i18n, photos
from core.auth import Caller, Role
from core.db import rowcount, utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from grids.paths import path_ids
from grids.queries import in_subtree, referenced_area, scope_root
from rewards.catalogue.models import CatalogueItem
from rewards.catalogue.schemas import (
    MAX_STOCK,
    VALID_UNTIL_AFTER_FROM,
    CatalogueItemCreateInput,
    CatalogueItemUpdateInput,
)
from volunteers.models import Volunteer

#: Item id → the address of its photo.
PhotoUrl = Callable[[int], str]
#: Who manages items (in their subtree); organisers and volunteers only read.
MANAGERS_OF_CATALOGUE = (Role.STAFF, Role.ADMIN)
ITEM_NOT_FOUND = i18n.N_("Catalogue item not found.")
NOT_A_FILE = i18n.N_("Send the photo as a file part of the form.")

i18n.register_titles(
    i18n.title("catalogue_item_not_found", "Catalogue item not found"),
    i18n.title("stock_out_of_range", "Stock change out of range"),
)
i18n.register_messages(
    ITEM_NOT_FOUND,
    i18n.N_("Stock would fall below 0 or rise above 1,000,000."),
    i18n.N_("Only district staff and admins manage the catalogue."),
    NOT_A_FILE,
)


# --- access --------------------------------------------------------------------------------------


#: An area as items show it: never its polygon or its parent chain.
AREA_OPTIONS = (orm.defer(Area.boundary), orm.lazyload(Area.parent))


def item_not_found() -> NotFound:
    """The answer for an item id that does not exist, and for one the caller may not reach."""
    return NotFound(ITEM_NOT_FOUND, code="catalogue_item_not_found")


def item_with_area(item_id: int) -> tuple[CatalogueItem, Area]:
    stmt = (
        sa.select(CatalogueItem, Area)
        .join(Area, Area.id == CatalogueItem.area_id)
        .where(CatalogueItem.id == item_id)
        .options(*AREA_OPTIONS)
        .execution_options(populate_existing=True)
    )
    row = db.session.execute(stmt).first()
    if row is None:
        raise item_not_found()
    return row[0], row[1]


def applies_to(area: Area, home_grid_path: str) -> bool:
    """An item of ``area`` is for volunteers whose home grid lies in that subtree."""
    return home_grid_path.startswith(area.path)


def managed_item(caller: Caller, item_id: int) -> tuple[CatalogueItem, Area]:
    """An item in the caller's subtree, for staff and admins (any other is not found)."""
    if caller.role not in MANAGERS_OF_CATALOGUE:
        raise Forbidden("Only district staff and admins manage the catalogue.")
    item, area = item_with_area(item_id)
    caller.ensure_reach(area.path, item_not_found)
    return item, area


def visible_item(caller: Caller, item_id: int) -> tuple[CatalogueItem, Area]:
    """Volunteers see active items of their home grid's ancestors; managers see items of their
    subtree. Any other is not found, as if it did not exist."""
    item, area = item_with_area(item_id)
    if caller.role == Role.VOLUNTEER:
        home_path = _home_grid_path(caller)
        if not item.active or not applies_to(area, home_path):
            raise item_not_found()
        return item, area
    caller.ensure_reach(area.path, item_not_found)
    return item, area


def _home_grid_path(caller: Caller) -> str:
    path = db.session.scalar(
        sa.select(Area.path).join(Volunteer, Volunteer.home_grid_id == Area.id).where(
            Volunteer.user_id == caller.user_id
        )
    )
    if path is None:
        raise NotFound("You have no volunteer profile.", code="volunteer_not_found")
    return path


def is_valid_at(item: CatalogueItem, moment: datetime) -> bool:
    return (item.valid_from is None or item.valid_from <= moment) and (
        item.valid_until is None or moment < item.valid_until
    )


# --- managing ------------------------------------------------------------------------------------


def create_item(caller: Caller, data: CatalogueItemCreateInput) -> tuple[CatalogueItem, Area]:
    if caller.role not in MANAGERS_OF_CATALOGUE:
        raise Forbidden("Only district staff and admins manage the catalogue.")
    area_id = data.get("area_id")
    area = referenced_area(area_id, "area_id") if area_id else None
    if area is None:
        area = db.session.scalar(sa.select(Area).where(Area.path == caller.area_path))
        if area is None:
            raise ValidationFailed(errors={"area_id": ["Unknown area."]})
    caller.ensure_scope(area.path)
    item = CatalogueItem(
        area_id=area.id,
        name=data["name"],
        description=data.get("description") or "",
        points_cost=data["points_cost"],
        stock=data["stock"],
        per_volunteer_limit=data.get("per_volunteer_limit"),
        valid_from=data.get("valid_from"),
        valid_until=data.get("valid_until"),
        active=True,
        created_by=caller.user_id,
    )
    db.session.add(item)
    db.session.flush()
    return item, area


_EDITABLE = ("name", "description", "points_cost", "per_volunteer_limit", "valid_from", "valid_until")


def update_item(caller: Caller, item_id: int, data: CatalogueItemUpdateInput) -> tuple[CatalogueItem, Area]:
    """Edit the item's fields; ``stock_change`` moves the stock by a conditional UPDATE."""
    item, _area = managed_item(caller, item_id)
    valid_from = data.get("valid_from", item.valid_from)
    valid_until = data.get("valid_until", item.valid_until)
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise ValidationFailed(errors={"valid_until": [VALID_UNTIL_AFTER_FROM]})
    values: dict[str, Any] = {name: value for name, value in data.items() if name in _EDITABLE}
    if "description" in values and values["description"] is None:
        values["description"] = ""
    stmt = sa.update(CatalogueItem).where(CatalogueItem.id == item.id)
    if "stock_change" in data:
        change = data["stock_change"]
        new_stock = CatalogueItem.stock + change
        stmt = stmt.where(new_stock >= 0, new_stock <= MAX_STOCK)
        values["stock"] = new_stock
    result = db.session.execute(
        stmt.values(**values, updated_at=utcnow()).execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise Conflict("Stock would fall below 0 or rise above 1,000,000.", code="stock_out_of_range")
    return item_with_area(item.id)


def set_active(caller: Caller, item_id: int, active: bool) -> tuple[CatalogueItem, Area]:
    """(De)activate: a deactivated item is hidden from volunteers and cannot be redeemed; its
    redemptions already made go on (staff may reject them, which refunds)."""
    item, _area = managed_item(caller, item_id)
    db.session.execute(
        sa.update(CatalogueItem)
        .where(CatalogueItem.id == item.id)
        .values(active=active, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return item_with_area(item.id)


def set_photo(caller: Caller, item_id: int, upload: Any) -> tuple[CatalogueItem, Area]:
    """Store a new photo (checked and re-encoded as report photos are) and point the item at it.

    The file is written before the commit and deleted again if the transaction does not commit;
    the previous photo's file is left in the store (harmless; a later clean-up may remove it).
    """
    if not isinstance(upload, FileStorage):
        raise ValidationFailed(errors={"file": [NOT_A_FILE]})
    item, _area = managed_item(caller, item_id)
    clean = photos.clean_photo(photos.read_upload(upload.stream))
    key = f"catalogue/{item.id}/{uuid.uuid4().hex}.{clean.extension}"
    photos.store_photo(db.session(), key, clean)
    db.session.execute(
        sa.update(CatalogueItem)
        .where(CatalogueItem.id == item.id)
        .values(photo_key=key, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return item_with_area(item.id)


def get_photo(caller: Caller, item_id: int) -> tuple[str, bytes]:
    item, _area = visible_item(caller, item_id)
    if not item.photo_key:
        raise NotFound("Photo not found.", code="photo_not_found")
    content_type = "image/png" if item.photo_key.endswith(".png") else "image/jpeg"
    return content_type, photos.photo_store().get(item.photo_key)


# --- lists ---------------------------------------------------------------------------------------


def list_items(caller: Caller, args: dict[str, Any], photo_url: PhotoUrl) -> dict[str, Any]:
    """Volunteers: active items valid now whose area contains their home grid. Managers: items of
    ``area_id``'s subtree (default their own area), optionally only (in)active ones. Newest first."""
    stmt = sa.select(CatalogueItem)
    if caller.role == Role.VOLUNTEER:
        home_path = _home_grid_path(caller)
        now = utcnow()
        # The areas containing the home grid are its ancestors and itself: ids from the path.
        stmt = stmt.where(
            CatalogueItem.area_id.in_(path_ids(home_path)),
            CatalogueItem.active.is_(True),
            sa.or_(CatalogueItem.valid_from.is_(None), CatalogueItem.valid_from <= now),
            sa.or_(CatalogueItem.valid_until.is_(None), CatalogueItem.valid_until > now),
        )
    else:
        root_path = scope_root(caller, args.get("area_id"))
        stmt = stmt.join(Area, Area.id == CatalogueItem.area_id).where(in_subtree(Area.path, root_path))
        if args.get("active") is not None:
            stmt = stmt.where(CatalogueItem.active.is_(args["active"]))
    page = paginate(stmt, [CatalogueItem.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)
    areas = _areas({item.area_id for item in page["items"]})
    return {**page, "items": [item_view(item, areas[item.area_id], photo_url) for item in page["items"]]}


def _areas(ids: set[int]) -> dict[int, Area]:
    if not ids:
        return {}
    rows = db.session.scalars(sa.select(Area).where(Area.id.in_(ids)).options(*AREA_OPTIONS))
    return {area.id: area for area in rows}


# --- view ----------------------------------------------------------------------------------------


def item_view(item: CatalogueItem, area: Area, photo_url: PhotoUrl) -> dict[str, Any]:
    """The item as shown; ``photo_url`` makes the address of an item's photo (the HTTP layer knows it)."""
    now = utcnow()
    return {
        "id": item.id,
        "area_id": item.area_id,
        "area_name": area.name,
        "name": item.name,
        "description": item.description,
        "points_cost": item.points_cost,
        "stock": item.stock,
        "per_volunteer_limit": item.per_volunteer_limit,
        "valid_from": item.valid_from,
        "valid_until": item.valid_until,
        "active": item.active,
        "available_now": item.active and item.stock > 0 and is_valid_at(item, now),
        "photo_url": photo_url(item.id) if item.photo_key else None,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }
