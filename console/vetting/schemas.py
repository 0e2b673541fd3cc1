"""What the vetting page reads from a query string or a form, and the two loaders both queues use.

Forms and query strings are loaded with the API's own schemas wherever one fits, so a field is
refused in the console exactly as in the API; a refusal is the same ``ValidationFailed`` (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from core import i18n
from core.errors import ApiError, ValidationFailed
from core.pagination import PageArgs


class VettingArgs(PageArgs):
    """The queue's page: the API's ``limit`` and ``cursor`` (the status is always pending)."""


def load_query(schema: ma.Schema, args: MultiDict[str, str]) -> dict[str, Any]:
    """A query string through ``schema``: repeated keys fill list fields (as webargs does for the
    API); empty values (a filter's "all" option) count as absent; unknown keys are refused."""
    present = MultiDict([(key, value) for key, value in args.items(multi=True) if value != ""])
    return _load(schema, MultiDictProxy(present, schema))


def load_form(schema: ma.Schema, form: Mapping[str, str]) -> dict[str, Any]:
    """The fields ``schema`` declares, from a posted form (the CSRF token and the page's own hidden
    fields are not the schema's business); an empty optional field counts as absent."""
    data: dict[str, Any] = {}
    for name, field in schema.fields.items():
        value = form.get(name)
        if value is None or (value == "" and not field.required):
            continue
        data[name] = value
    return _load(schema, data)


def _load(schema: ma.Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(data)
    except ma.ValidationError as error:
        raise ValidationFailed(errors=error.normalized_messages()) from None
    return loaded


def describe_refusal(error: ApiError, language: str) -> dict[str, Any]:
    """A service's refusal as a page shows it beside the form: its title, its detail and each
    field's messages, in the caller's language."""
    errors = i18n.translate_errors(error.errors or {}, language)
    return {
        "status": error.status,
        "title": i18n.title_for(error.code, language),
        "detail": i18n.translate(error.detail, language) if error.detail else None,
        "fields": errors if isinstance(errors, dict) else {},
    }
