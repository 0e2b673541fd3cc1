"""The fields every package uses for the parts of the contract that went wrong when each package spelled
them itself: instants, local wall-clock times, booleans, patterns and partial updates.

The rule (README, API conventions): every ``date-time`` in and out is an instant with an offset.
Out, it is always UTC (``+00:00``), whatever zone the service computed it in; in, any offset is
accepted (``Z`` too) and a value without one is refused. Where a client needs local wall-clock
time it gets a separately named field (:class:`LocalDateTimeText`) next to the area's
``timezone``. JSON booleans are the literals ``true`` and ``false`` only; query-string booleans are
the words ``true`` and ``false``. A partial update (:class:`UpdateSchema`) needs a field to change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

import marshmallow as ma
from apispec import BasePlugin

from core import catalogues, i18n

NEEDS_OFFSET = "Datetime must have a time zone offset."  # translated in core.i18n
NOT_A_DATETIME = "Not a valid datetime."
NOTHING_TO_CHANGE = i18n.N_("Provide at least one field to change.")

i18n.register_messages(NOTHING_TO_CHANGE)

# RFC 3339 ``date-time`` (what OpenAPI's ``format: date-time`` means), with the offset left optional
# here only so that a missing one gets its own message.
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)
# [0-9], not \d: in Python \d takes any script's digits.
LOCAL_DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"
#: A wall-clock time of day, 24-hour ``HH:MM`` (00:00 to 23:59).
HHMM_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


def instant_text(moment: datetime) -> str:
    """An instant as the API writes it anywhere (responses, audit records, GeoJSON properties)."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is not an instant; convert it or name it local")
    return moment.astimezone(UTC).isoformat()


def local_text(local: datetime) -> str:
    """A wall-clock time without an offset, ``YYYY-MM-DDTHH:MM:SS``."""
    if local.tzinfo is not None:
        raise ValueError("a local wall-clock time carries no zone")
    return local.strftime("%Y-%m-%dT%H:%M:%S")


def _written(value: Any) -> datetime | str:
    """RFC 3339 text → an aware datetime in its own offset, or the message saying what is wrong."""
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return NOT_A_DATETIME
    day, clock, fraction, offset = match.groups()
    if offset is None:
        return NEEDS_OFFSET
    fraction = (fraction or "")[:7]  # Python keeps microseconds; RFC 3339 allows any precision
    offset = "+00:00" if offset in "Zz" else offset
    try:
        return datetime.fromisoformat(f"{day}T{clock}{fraction}{offset}")
    except ValueError:  # 2026-02-30, 25:00, +24:00
        return NOT_A_DATETIME


def written_instant(value: Any) -> datetime | None:
    """RFC 3339 text with an offset as an aware datetime in that offset; None if it is not one.
    For hot paths that check plain values without marshmallow (track batches); the same rule."""
    moment = _written(value)
    return moment if isinstance(moment, datetime) else None


def parse_instant(value: Any, years: tuple[int, int] | None = None, years_message: str = "") -> datetime:
    """RFC 3339 text with an offset → an aware datetime in UTC, or ``ValidationError``. ``years``
    bounds the year as written."""
    moment = _written(value)
    if isinstance(moment, str):
        raise ma.ValidationError(moment)
    if years and not years[0] <= moment.year <= years[1]:
        raise ma.ValidationError(years_message.format(low=years[0], high=years[1]))
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ma.ValidationError(NOT_A_DATETIME) from None


class Instant(ma.fields.AwareDateTime):
    """A moment in time: ``format: date-time`` with an offset, in and out.

    In: RFC 3339 with any offset (``Z`` included), loaded as UTC; without an offset it is 422.
    Out: ISO 8601 in UTC (``+00:00``) whatever zone the value is in; a naive value is a bug.
    ``years`` bounds the year as written, refused with ``years_message``.
    """

    def __init__(
        self,
        *,
        years: tuple[int, int] | None = None,
        years_message: str = "Must be a time between {low} and {high}.",
        **kwargs: Any,
    ) -> None:
        metadata = kwargs.setdefault("metadata", {})
        metadata.setdefault("example", "2026-12-01T11:00:00+00:00")
        if years:
            said = metadata.get("description")
            metadata["description"] = f"{said}. In the years {years[0]}–{years[1]}" if said else (
                f"In the years {years[0]}–{years[1]}"
            )
        super().__init__(**kwargs)
        self.years = years
        self.years_message = years_message

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else instant_text(value)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> datetime:
        return parse_instant(value, self.years, self.years_message)


class LocalDateTimeText(ma.fields.String):
    """A local wall-clock time shown next to an instant (``YYYY-MM-DDTHH:MM:SS``, no offset), for
    clients that show the area's own clock; deliberately not ``format: date-time``. Output only."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.setdefault("metadata", {})
        metadata.setdefault("pattern", LOCAL_DATETIME_PATTERN)
        metadata.setdefault("example", "2026-12-01T19:00:00")
        super().__init__(dump_only=True, **kwargs)

    # ``value: Any``: a String field by its OpenAPI type, but what it serialises is a datetime.
    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else local_text(value)


class StrictBoolean(ma.fields.Boolean):
    """A JSON boolean: only the literals ``true`` and ``false`` (not 1, 0, "yes" or "true")."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if value is True or value is False:  # `1 in {True}` holds, so no truthy set can say this
            return value
        raise self.make_error("invalid", input=value)


class QueryBoolean(ma.fields.Boolean):
    """A query-string boolean: the words ``true`` and ``false`` (OpenAPI's spelling), nothing else."""

    def __init__(self, **kwargs: Any) -> None:
        description = kwargs.setdefault("metadata", {}).get("description")
        kwargs["metadata"]["description"] = f"{description}. `true` or `false`" if description else "`true` or `false`"
        super().__init__(truthy={"true"}, falsy={"false"}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if not isinstance(value, str):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class Language(ma.fields.String):
    """A language the service speaks: one with a catalogue in the running app's ``TRANSLATIONS_DIR``
    (core/i18n), so a translator's new catalogue is accepted without a code change. The document
    lists the catalogues shipped in ``translations/``."""

    def __init__(self, **kwargs: Any) -> None:
        shipped = catalogues.languages_in(catalogues.DEFAULT_DIRECTORY)
        ordered = [i18n.DEFAULT_LANGUAGE, *(lang for lang in shipped if lang != i18n.DEFAULT_LANGUAGE)]
        super().__init__(metadata={"enum": ordered, **kwargs.pop("metadata", {})}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        language = super()._deserialize(value, attr, data, **kwargs)
        supported = i18n.supported_languages()
        if language not in supported:
            raise ma.ValidationError(f"Must be one of: {', '.join(supported)}.")
        return language


class FullMatch(ma.validate.Regexp):
    """``validate.Regexp`` matched against the whole value (``Regexp`` matches from the start only,
    and ``$`` lets a trailing newline through). apispec documents it as the field's ``pattern``, so
    the OpenAPI document says exactly what the server checks; write the regex anchored (``^…$``)."""

    regex: re.Pattern[str]  # ours are all text patterns (Regexp also takes bytes)

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or self.regex.fullmatch(value) is None:
            raise ma.ValidationError(self._format_error(value))
        return value


class UpdateSchema(ma.Schema):
    """A partial update (PATCH): only the given fields change, and at least one must be given; an
    empty object or a missing body is 422. ``not_changes`` names fields that only say how to change
    (e.g. ``scope``) and so do not count. The OpenAPI document says so as ``minProperties``."""

    not_changes: ClassVar[tuple[str, ...]] = ()

    @ma.validates_schema
    def _something_to_change(self, data: dict[str, Any], **_: Any) -> None:
        if not set(data) - set(self.not_changes):
            raise ma.ValidationError(NOTHING_TO_CHANGE)


class ContractPlugin(BasePlugin):
    """apispec plugin: the schema-level rules marshmallow's converter leaves out."""

    def schema_helper(self, name: str, definition: dict, **kwargs: Any) -> dict | None:
        schema = kwargs.get("schema")
        schema_class = schema if isinstance(schema, type) else type(schema)
        if not (isinstance(schema_class, type) and issubclass(schema_class, UpdateSchema)):
            return None
        declared = schema_class._declared_fields
        always_there = sum(1 for field in schema_class.not_changes if declared[field].required)
        extra: dict[str, Any] = {"minProperties": always_there + 1}
        if "description" not in definition:
            besides = f" besides {', '.join(schema_class.not_changes)}" if schema_class.not_changes else ""
            extra["description"] = (
                f"Only the fields given change; at least one{besides} is needed (an empty body is 422)"
            )
        return extra
