"""Answers of the hot reads dumped by a plan compiled once from their marshmallow schema (issue 19).

flask-smorest's ``Blueprint.response`` dumps a view's result with ``schema.dump``: for each field,
a bound method call, an accessor that tries ``obj[key]`` then ``getattr``, the missing and default
checks, then the field's own ``_serialize``. On the phone's schedule that is ~45 fields a place,
about as much CPU as the page's query. :func:`compile_dumper` walks the schema's dump fields once
and keeps, for each, only the conversion its class does (``int``, ``str``, the UTC text of an
instant, a nested plan), reading dicts by key; any field it does not know, any value that is not
where a plain dict read finds it, and any schema with dump hooks go through marshmallow itself.
The result is the same data (``tests/test_dumping.py`` compares it with ``schema.dump``).

The view keeps ``@blp.response(status, Schema)`` (the OpenAPI document is unchanged) and returns
:func:`json_response`: flask-smorest passes a ``Response`` through as it is, and this one is built
by the same ``app.json.response`` that ``jsonify`` uses, so the bytes are those of the plain path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import marshmallow as ma
from flask import current_app
from marshmallow.utils import ensure_text_type
from werkzeug.sansio.response import Response

from core.fields import Instant, LocalDateTimeText, StrictBoolean, instant_text, local_text

Dumper = Callable[[Any], Any]
_MISSING = ma.missing


def _integer(value: Any) -> Any:
    return None if value is None else int(value)


def _string(value: Any) -> Any:
    return value if value is None or type(value) is str else ensure_text_type(value)


def _same(value: Any) -> Any:
    return value


def _instant(value: Any) -> Any:
    return None if value is None else instant_text(value)


def _local(value: Any) -> Any:
    return None if value is None else local_text(value)


#: Field classes (exactly these: a subclass may serialise differently) and what their
#: ``_serialize`` does to a value, written out.
_CONVERSIONS: dict[type[ma.fields.Field], Callable[[Any], Any]] = {
    ma.fields.Integer: _integer,
    ma.fields.String: _string,
    ma.fields.Boolean: _same,  # Field._serialize: the value as it is
    StrictBoolean: _same,
    Instant: _instant,
    LocalDateTimeText: _local,
}


def _value_conversion(field: ma.fields.Field) -> Callable[[Any], Any] | None:
    """What ``field._serialize`` does to a value, when it depends on the value alone; else None."""
    kind = type(field)
    if kind is ma.fields.Integer and field.as_string:  # type: ignore[attr-defined]
        return None
    if kind in _CONVERSIONS:
        return _CONVERSIONS[kind]
    if kind is ma.fields.Nested:
        nested = field.schema  # type: ignore[attr-defined]
        many = nested.many or field.many  # type: ignore[attr-defined]
        if _has_hooks(nested):
            return lambda value: None if value is None else nested.dump(value, many=many)
        dump = _compile_one(nested)
        if many:
            return lambda value: None if value is None else [dump(each) for each in value]
        return lambda value: None if value is None else dump(value)
    if kind is ma.fields.List:
        inner = _value_conversion(field.inner)  # type: ignore[attr-defined]
        if inner is None:
            return None
        if inner is _same:
            return lambda value: None if value is None else list(value)
        return lambda value: None if value is None else [inner(each) for each in value]
    return None


def compile_dumper(schema: ma.Schema) -> Dumper:
    """A function giving what ``schema.dump(obj)`` gives, for a dict (anything else: ``schema.dump``)."""
    if schema.many or _has_hooks(schema):
        return schema.dump
    return _compile_one(schema)


def _has_hooks(schema: ma.Schema) -> bool:
    return bool(schema._hooks[ma.decorators.PRE_DUMP] or schema._hooks[ma.decorators.POST_DUMP])


def _compile_one(schema: ma.Schema) -> Dumper:
    """One object's dump by ``schema`` (whatever its ``many``), which has no dump hooks."""
    # (output key, field name, dict key, conversion or None for marshmallow's own, field), in order
    steps: list[tuple[str, str, str, Callable[[Any], Any] | None, ma.fields.Field]] = []
    for name, field in schema.dump_fields.items():
        key = field.data_key if field.data_key is not None else name
        attribute = field.attribute or name
        conversion = _value_conversion(field)
        # A default to dump in place of a missing value, or a dotted path: marshmallow's own rules.
        if field.dump_default is not _MISSING or "." in attribute:
            conversion = None
        steps.append((key, name, attribute, conversion, field))
    accessor = schema.get_attribute

    def dump(obj: Any) -> Any:
        if type(obj) is not dict:
            return schema.dump(obj, many=False)
        result = {}
        for key, name, attribute, conversion, field in steps:
            if conversion is not None and attribute in obj:
                result[key] = conversion(obj[attribute])
                continue
            # marshmallow's way: a key a dict lacks is then looked for as an attribute (its methods)
            value = field.serialize(name, obj, accessor=accessor)
            if value is not _MISSING:
                result[key] = value
        return result

    return dump


def json_response(dumper: Dumper, result: Any) -> Response:
    """``result`` dumped by ``dumper`` as the JSON answer ``jsonify`` would make of it (status 200)."""
    return current_app.json.response(dumper(result))
