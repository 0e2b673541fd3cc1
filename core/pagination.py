"""Cursor (keyset) pagination: stable under inserts and constant-time at any depth.

flask-smorest's own pagination is page/offset based; DESIGN.md asks for cursors, so lists use
``PageArgs`` for input and :func:`page_schema` for output, and :func:`paginate` runs the query.
The cursor is opaque to clients: base64url JSON of the last row's sort key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute

from core.errors import ValidationFailed
from core.extensions import db
from core.fields import FullMatch

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"
INVALID_CURSOR = "Invalid cursor."
#: Longest cursor we emit. Sort keys are ids, timestamps and dates, at most three: the longest possible
#: (two 64-bit ids and a timestamp with microseconds and offset) is 102 characters. A list URL
#: with every query parameter at its longest stays far inside gunicorn's 4094-byte request line.
MAX_CURSOR_LENGTH = 128

#: A column to sort a page by: a mapped attribute (``Area.id``) or a Core column.
SortColumn = sa.ColumnElement[Any] | QueryableAttribute[Any]


class PageArgs(ma.Schema):
    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT, validate=ma.validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = ma.fields.String(
        load_default=None,
        validate=[
            ma.validate.Length(max=MAX_CURSOR_LENGTH),
            # What encode_cursor writes (unpadded base64url); empty is the first page.
            FullMatch(CURSOR_PATTERN, error=INVALID_CURSOR),
        ],
        metadata={"description": "`next_cursor` of the previous page, unchanged (opaque)"},
    )


_page_schemas: dict[type[ma.Schema], type[ma.Schema]] = {}


def page_schema(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """``{"items": [...], "next_cursor": "..."|null}`` for ``item_schema`` (one class per item type)."""
    if item_schema not in _page_schemas:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        _page_schemas[item_schema] = type(
            name,
            (ma.Schema,),
            {
                "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
                "next_cursor": ma.fields.String(
                    required=True, allow_none=True,
                    metadata={"description": "Pass as `cursor` for the next page; null at the end"},
                ),
            },
        )
    return _page_schemas[item_schema]


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), separators=(",", ":"), default=str).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if len(cursor) > MAX_CURSOR_LENGTH:  # a sort key that is neither an id nor a timestamp
        raise ValueError(f"cursor of {len(cursor)} characters: sort lists by ids and timestamps")
    return cursor


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, list) or len(values) != size:
        raise ValidationFailed(errors={"cursor": ["Invalid cursor."]})
    return values


def paginate(
    stmt: sa.Select,
    order_by: Sequence[SortColumn],
    *,
    limit: int,
    cursor: str | None,
    descending: bool = False,
) -> dict[str, Any]:
    """Run ``stmt`` ordered by ``order_by`` (the last column unique, e.g. the id) from ``cursor``.

    Returns ``{"items": [...], "next_cursor": ...}`` ready for :func:`page_schema`.
    """
    if cursor:
        values = decode_cursor(cursor, len(order_by))
        columns = sa.tuple_(*order_by)
        bound = sa.tuple_(
            *[sa.literal(_parse_value(value, column), column.type) for value, column in zip(values, order_by, strict=True)]
        )
        stmt = stmt.where(columns < bound if descending else columns > bound)
    ordering = [column.desc() if descending else column.asc() for column in order_by]
    rows = db.session.scalars(stmt.order_by(*ordering).limit(limit + 1)).all()
    items = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor([_sort_value(last, column) for column in order_by])
    return {"items": items, "next_cursor": next_cursor}


def _parse_value(value: Any, column: SortColumn) -> Any:
    """Turn a cursor value back into the column's type; anything odd is the client's error."""
    try:
        python_type = getattr(column.type, "impl", column.type).python_type
        if python_type is datetime:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError("naive")
            return parsed
        if python_type is date:  # a local day (after datetime: a datetime is a date too)
            return date.fromisoformat(value)
        if python_type is int:
            if isinstance(value, bool) or not isinstance(value, (int, str)) or abs(int(value)) >= 2**63:
                raise ValueError("not an integer")
            return int(value)
        if python_type is str and isinstance(value, str):
            return value
        raise ValueError("unsupported")
    except (TypeError, ValueError, NotImplementedError):
        raise ValidationFailed(errors={"cursor": ["Invalid cursor."]}) from None


def _sort_value(row: Any, column: SortColumn) -> Any:
    if column.key is None:
        raise ValueError("sort pages by named columns: the cursor reads each one off the row")
    value = getattr(row, column.key)
    return value.isoformat() if hasattr(value, "isoformat") else value
