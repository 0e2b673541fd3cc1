"""The query of the report pages: the API's own argument schemas, read from the console's URLs.

The console's links and its period picker name the area ``area`` (the API: ``area_id``) and may
leave the period out (this month) or send the picker's unused fields empty; :class:`ConsoleQuery`
smooths those out before the API's schema checks everything else, so a junk period is refused
exactly as the API refuses it (a 422 page here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma

from core import i18n
from core.auth import Caller
from core.errors import ValidationFailed
from core.validators import id_field
from grids.paths import own_id
from reports.participation.schemas import AreaParticipationArgs

#: The picker's choices: the API's period kinds, and a range of dates (``from``/``to``).
PERIOD_KINDS = ("month", "quarter", "year", "range")
_PERIOD_FIELDS = ("period", "value", "from", "to")
CHECK_QUERY = i18n.N_("Check the period and the area.")
i18n.register_messages(CHECK_QUERY)


class ConsoleQuery(ma.Schema):
    """Mixed in before an API argument schema: ``area`` for ``area_id``; the period picker's form."""

    @ma.pre_load
    def _from_the_page(self, data: Mapping[str, Any], **_: Any) -> dict[str, Any]:
        query = {key: value for key, value in data.items() if value != ""}  # the picker's blank fields
        if "area" in query:
            query["area_id"] = query.pop("area")
        if query.get("period") == "range":  # the picker's fourth kind: dates, not a named period
            query.pop("period")
            query.pop("value", None)
        elif "period" in query:
            query.pop("from", None)
            query.pop("to", None)
        if not any(name in query for name in _PERIOD_FIELDS):
            query["period"] = "month"  # this month, in the area's zone
        return query


class ParticipationQuery(ConsoleQuery, AreaParticipationArgs):
    area_id = id_field(strict=False)  # the caller's own area when left out


def load_query(schema: ma.Schema, query: Mapping[str, Any], caller: Caller) -> dict[str, Any]:
    """The API's arguments from the page's query string (the caller's own area by default); a
    refusal is the API's 422, with its first message as the page's detail."""
    try:
        args: dict[str, Any] = schema.load(query)
    except ma.ValidationError as error:
        raise ValidationFailed(_first_message(error.messages), errors=_as_dict(error.messages)) from None
    args.setdefault("area_id", own_id(caller.area_path))
    return args


def _as_dict(messages: Any) -> dict[str, Any]:
    return messages if isinstance(messages, dict) else {"_schema": messages}


def _first_message(messages: Any) -> str:
    while isinstance(messages, dict | list) and messages:
        messages = next(iter(messages.values())) if isinstance(messages, dict) else messages[0]
    return messages if isinstance(messages, str) else CHECK_QUERY  # English: the error page translates it


def period_query(args: Mapping[str, Any]) -> dict[str, Any]:
    """The period of loaded ``args`` as the page's query (for links that keep it)."""
    if args.get("from_date") is not None:
        return {"period": "range", "from": args["from_date"].isoformat(), "to": args["to_date"].isoformat()}
    query: dict[str, Any] = {"period": str(args.get("period") or "month")}
    if args.get("value"):
        query["value"] = str(args["value"])
    return query
