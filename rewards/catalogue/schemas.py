"""marshmallow schemas of the rewards catalogue: create, update (partial), list arguments, output."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from core import i18n
from core.fields import Instant, QueryBoolean, StrictBoolean, UpdateSchema
from core.pagination import PageArgs
from core.validators import Text, id_field
from volunteers.schemas import short_text

MAX_COST = 1_000_000
MAX_STOCK = 1_000_000
MAX_LIMIT = 1000
VALID_UNTIL_AFTER_FROM = i18n.N_("valid_until must be after valid_from.")

i18n.register_messages(VALID_UNTIL_AFTER_FROM, i18n.N_("Must not be 0."))


def _cost(**kwargs: Any) -> fields.Integer:
    kwargs.setdefault("metadata", {"description": "Points one redemption costs"})
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_COST), **kwargs)


def _limit(**kwargs: Any) -> fields.Integer:
    return fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={
            "description": "Redemptions per volunteer (cancelled and rejected ones do not count); null: no limit"
        },
        **kwargs,
    )


def _moment(description: str, **kwargs: Any) -> Instant:
    return Instant(allow_none=True, metadata={"description": description}, **kwargs)


def check_dates(valid_from: Any, valid_until: Any) -> None:
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise ma.ValidationError(VALID_UNTIL_AFTER_FROM, field_name="valid_until")


class CatalogueItemCreateSchema(ma.Schema):
    area_id = id_field(
        load_default=None,
        allow_none=True,
        metadata={"description": "The subtree whose volunteers may redeem it (default: your own area)"},
    )
    name = short_text(100, required=True)
    description = Text(allow_blank=True, validate=validate.Length(max=2000), load_default="")
    points_cost = _cost(required=True)
    stock = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=0, max=MAX_STOCK),
        metadata={"description": "How many can still be redeemed"},
    )
    per_volunteer_limit = _limit(load_default=None)
    valid_from = _moment("Redeemable from (inclusive); null: at once", load_default=None)
    valid_until = _moment("Redeemable until (exclusive); null: no end", load_default=None)

    @ma.validates_schema
    def _dates(self, data: dict[str, Any], **_: Any) -> None:
        check_dates(data.get("valid_from"), data.get("valid_until"))


class CatalogueItemCreateInput(TypedDict):
    """What :class:`CatalogueItemCreateSchema` loads."""

    area_id: int | None  # defaulted by the schema
    name: str
    description: str  # defaulted by the schema
    points_cost: int
    stock: int
    per_volunteer_limit: int | None  # defaulted by the schema
    valid_from: datetime | None  # defaulted by the schema
    valid_until: datetime | None  # defaulted by the schema


class CatalogueItemUpdateSchema(UpdateSchema):
    name = short_text(100)
    description = Text(allow_blank=True, validate=validate.Length(max=2000))
    points_cost = _cost(metadata={"description": "For redemptions from now on; earlier ones keep their price"})
    per_volunteer_limit = _limit()
    valid_from = _moment("Redeemable from (inclusive); null: at once")
    valid_until = _moment("Redeemable until (exclusive); null: no end")
    stock_change = fields.Integer(
        strict=True,
        validate=[
            validate.Range(min=-MAX_STOCK, max=MAX_STOCK),
            validate.NoneOf([0], error="Must not be 0."),
        ],
        metadata={
            "description": "Added to the stock (negative: written off; not 0), applied atomically so that "
            "concurrent redemptions are never lost; a result below 0 or above 1,000,000 is 409 "
            "stock_out_of_range"
        },
    )

    @ma.validates_schema
    def _dates(self, data: dict[str, Any], **_: Any) -> None:
        check_dates(data.get("valid_from"), data.get("valid_until"))


class CatalogueItemUpdateInput(TypedDict, total=False):
    """What :class:`CatalogueItemUpdateSchema` loads."""

    name: str
    description: str
    points_cost: int
    per_volunteer_limit: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    stock_change: int


class CatalogueListArgs(PageArgs):
    area_id = id_field(
        strict=False,
        metadata={"description": "Managers: items of this subtree (default: your own area)"},
    )
    active = QueryBoolean(
        metadata={"description": "Managers: only active (true) or deactivated (false) items; default both"}
    )


class CatalogueItemPhotoSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "A JPEG or PNG photo"})


class CatalogueItemSchema(ma.Schema):
    id = fields.Integer(required=True)
    area_id = fields.Integer(required=True)
    area_name = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    points_cost = fields.Integer(required=True)
    stock = fields.Integer(required=True)
    per_volunteer_limit = fields.Integer(required=True, allow_none=True)
    valid_from = Instant(required=True, allow_none=True)
    valid_until = Instant(required=True, allow_none=True)
    active = StrictBoolean(required=True)
    available_now = StrictBoolean(
        required=True, metadata={"description": "Active, within its dates and in stock"}
    )
    photo_url = fields.String(required=True, allow_none=True)
    created_at = Instant(required=True)
    updated_at = Instant(required=True)
