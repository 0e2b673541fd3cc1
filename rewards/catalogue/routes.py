"""HTTP layer of the rewards catalogue: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_smorest import Blueprint

from core.auth import Role, auth_required, current_caller
from core.errors import error_docs
from core.pagination import page_schema
from core.uploads import image_download_doc, image_response, upload_body_limit
from rewards.catalogue import service as catalogue
from rewards.catalogue.schemas import (
    CatalogueItemCreateInput,
    CatalogueItemCreateSchema,
    CatalogueItemPhotoSchema,
    CatalogueItemSchema,
    CatalogueItemUpdateInput,
    CatalogueItemUpdateSchema,
    CatalogueListArgs,
)

blp = Blueprint(
    "rewards-catalogue",
    __name__,
    url_prefix="/api/v1",
    description="The rewards catalogue: items volunteers of a subtree redeem points for",
)
STAFF = (Role.STAFF, Role.ADMIN)


_errors = error_docs(blp)


def _photo_url(item_id: int) -> str:
    return url_for("rewards-catalogue.get_item_photo", item_id=item_id)


def _view(pair: tuple[Any, Any]) -> dict[str, Any]:
    return catalogue.item_view(*pair, photo_url=_photo_url)


@blp.route("/catalogue-items", methods=["POST"])
@auth_required(*STAFF)
@blp.arguments(CatalogueItemCreateSchema)
@blp.response(201, CatalogueItemSchema)
@_errors(403)
def create_item(data: CatalogueItemCreateInput) -> Any:
    """Add a catalogue item

    For the volunteers of `area_id`'s subtree (default: my area), which must lie in my area (403
    out_of_scope). 422: cost 1–1,000,000, stock 0–1,000,000, per-volunteer limit 1–1000 or null,
    `valid_until` after `valid_from`, unknown fields.
    """
    return _view(catalogue.create_item(current_caller(), data))


@blp.route("/catalogue-items", methods=["GET"])
@auth_required()
@blp.arguments(CatalogueListArgs, location="query")
@blp.response(200, page_schema(CatalogueItemSchema))
@_errors(403, 404)
def list_items(args: dict[str, Any]) -> Any:
    """Catalogue items

    Volunteers: the active items valid now whose area contains their home grid (out of stock ones
    too, `available_now` false). Organisers, staff and admins: the items of `area_id`'s subtree
    (default: their area; outside it 403 out_of_scope), filtered by `active`. Newest first.
    """
    return catalogue.list_items(current_caller(), args, photo_url=_photo_url)


@blp.route("/catalogue-items/<int:item_id>", methods=["GET"])
@auth_required()
@blp.response(200, CatalogueItemSchema)
@_errors(403, 404)
def get_item(item_id: int) -> Any:
    """One catalogue item

    Volunteers see active items for their home grid; managers those of their subtree. Any other
    is 404 catalogue_item_not_found, the answer for an id that does not exist.
    """
    return _view(catalogue.visible_item(current_caller(), item_id))


@blp.route("/catalogue-items/<int:item_id>", methods=["PATCH"])
@auth_required(*STAFF)
@blp.arguments(CatalogueItemUpdateSchema)
@blp.response(200, CatalogueItemSchema)
@_errors(403, 404, 409)
def update_item(data: CatalogueItemUpdateInput, item_id: int) -> Any:
    """Edit a catalogue item

    Name, description, cost (for later redemptions), per-volunteer limit, dates, and
    `stock_change` (added atomically; 409 stock_out_of_range below 0 or above 1,000,000). 422 as
    for creating, also when the new dates and the kept ones cross. An item outside my area is 404
    catalogue_item_not_found, as an unknown id.
    """
    return _view(catalogue.update_item(current_caller(), item_id, data))


@blp.route("/catalogue-items/<int:item_id>/deactivate", methods=["POST"])
@auth_required(*STAFF)
@blp.response(200, CatalogueItemSchema)
@_errors(403, 404)
def deactivate_item(item_id: int) -> Any:
    """Deactivate a catalogue item

    Hidden from volunteers and no longer redeemable; redemptions already made go on (rejecting
    one refunds it). Repeating it changes nothing.
    """
    return _view(catalogue.set_active(current_caller(), item_id, False))


@blp.route("/catalogue-items/<int:item_id>/activate", methods=["POST"])
@auth_required(*STAFF)
@blp.response(200, CatalogueItemSchema)
@_errors(403, 404)
def activate_item(item_id: int) -> Any:
    """Activate a catalogue item again"""
    return _view(catalogue.set_active(current_caller(), item_id, True))


@blp.route("/catalogue-items/<int:item_id>/photo", methods=["PUT"])
@upload_body_limit("REPORT_PHOTO_MAX_BYTES")
@auth_required(*STAFF)
@blp.arguments(CatalogueItemPhotoSchema, location="files")
@blp.response(200, CatalogueItemSchema)
@_errors(403, 404, 413, 415, 503)
def put_item_photo(data: dict[str, Any], item_id: int) -> Any:
    """Set a catalogue item's photo

    multipart/form-data with `file`: JPEG or PNG by content (415 unsupported_photo_type), at most
    REPORT_PHOTO_MAX_BYTES (413 photo_too_large), re-encoded without metadata (a broken image is
    422 photo_unreadable). Replaces the previous photo.
    """
    return _view(catalogue.set_photo(current_caller(), item_id, data["file"]))


@blp.route("/catalogue-items/<int:item_id>/photo", methods=["GET"])
@auth_required()
@blp.doc(**image_download_doc("The item's photo (JPEG or PNG)"))
@_errors(403, 404)
def get_item_photo(item_id: int) -> Any:
    """A catalogue item's photo

    Whoever may see the item; 404 photo_not_found when it has none.
    """
    content_type, data = catalogue.get_photo(current_caller(), item_id)
    return image_response(data, content_type, "private, max-age=3600")
