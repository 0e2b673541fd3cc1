"""What a request may carry, checked once where it enters, before any view or schema sees it.

- **JSON bodies** are parsed in one place (:func:`parse_json_document`): as UTF-8 (RFC 8259), at most
  :data:`MAX_JSON_DEPTH` containers deep (400 ``json_too_deep``; deeper documents made the
  decoder or the schemas recurse into a 500), and with every string and key valid Unicode (422
  ``validation_failed`` naming the field: ``"\\ud800"`` is valid JSON but no character, and
  argon2, PostgreSQL and our own responses cannot encode it). Flask's ``request.get_json`` (the
  app's JSON provider) and webargs' ``json`` location (every ``@blp.arguments`` body) both go
  through it.
- **Query strings** must decode as UTF-8, raw or percent-encoded (422 naming the parameter).
  werkzeug raised UnicodeDecodeError (a 500) on raw bytes and kept invalid percent-escapes as
  literal text. Form fields need no check: werkzeug decodes multipart fields with replacement
  characters, so they never carry a lone surrogate.
- **Chunked bodies** (``Transfer-Encoding: chunked``, no ``Content-Length``) over the limit are 413
  like any other: werkzeug stops reading at ``max_content_length`` and hands over the truncated
  body without an error, which then failed as malformed JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from itertools import chain, compress
from typing import Any
from urllib.parse import unquote_to_bytes

import marshmallow as ma
from flask import Flask, Request, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Blueprint
from webargs.flaskparser import abort, is_json_request
from werkzeug.exceptions import RequestEntityTooLarge

from core import i18n
from core.errors import ApiError, ValidationFailed
from core.uploads import request_body_limit

#: The deepest legitimate body is an area with a MultiPolygon boundary: body → boundary →
#: coordinates → polygon → ring → position, 6 containers. 32 leaves ample room and stays far
#: below what recursion anywhere (the decoder, marshmallow, shapely, jsonify) could reach.
MAX_JSON_DEPTH = 32
#: Fields named in one refusal at most (a body full of bad strings need not be listed whole).
MAX_REPORTED_FIELDS = 20

TOO_DEEP = f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep."
NOT_UNICODE = i18n.N_("Not valid Unicode text (an unpaired surrogate).")
BAD_FIELD_NAME = i18n.N_("A field name is not valid Unicode text (an unpaired surrogate).")
NOT_UTF8 = i18n.N_("Not valid UTF-8 text.")

i18n.register_titles(i18n.title("json_too_deep", "JSON nested too deeply"))
i18n.register_messages(NOT_UNICODE, BAD_FIELD_NAME, NOT_UTF8)
i18n.register_patterns(
    {r"^JSON may be nested at most (\d+) levels deep\.$": i18n.N_("JSON may be nested at most {0} levels deep.")}
)

# A lone surrogate can only come from a \uD800–\uDFFF escape (strict UTF-8 decoding refuses the
# encoded form); a paired escape is a valid character, so a match only means "look closer".
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTAINERS = (dict, list)
_is_container = frozenset(_CONTAINERS).__contains__


class JsonTooDeep(ApiError):
    status = 400
    code = "json_too_deep"

    def __init__(self) -> None:
        super().__init__(TOO_DEEP)


def parse_json_document(data: bytes | bytearray | str) -> Any:
    """The value of a JSON document from a client, or an error a client can act on.

    Raises ValueError (``json.JSONDecodeError``, ``UnicodeDecodeError``) for text that is not JSON
    in UTF-8, :class:`JsonTooDeep` (400) and :class:`~core.errors.ValidationFailed` (422).
    """
    decoded = isinstance(data, bytes | bytearray)
    text: str = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonTooDeep() from None
    # Ordinary bodies skip both checks: fewer brackets than the limit cannot nest deeper, and
    # without a surrogate escape no string can hold a surrogate.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _nests_deeper_than(value, MAX_JSON_DEPTH):
        raise JsonTooDeep()
    if _may_hold_surrogates(text, decoded):
        _refuse_lone_surrogates(value)
    return value


def _may_hold_surrogates(text: str, decoded: bool) -> bool:
    """Whether the document's strings may hold a lone surrogate: only through a \\uD800–\\uDFFF
    escape, or, in text not decoded here, a surrogate itself. Each test is the cheapest that is
    exact: ``"\\u" in`` is a memory search; strict UTF-8 decoding refuses an encoded surrogate, and
    text that is ASCII (CPython knows without a scan) holds none, so the character scan (1.5 ms
    over an 80 KB track batch) runs only on text given already decoded that is not ASCII."""
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        return True
    return not decoded and not text.isascii() and _SURROGATE.search(text) is not None


def _nests_deeper_than(value: Any, limit: int) -> bool:
    """Level by level, without recursion. Each level's children are gathered and sifted for
    containers in C (``chain``, ``map``, ``compress``), with no Python step per child: a
    1,000-point track batch's 4,000 coordinates and times cost a third less than in a loop."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        children = list(chain.from_iterable([c.values() if type(c) is dict else c for c in level]))
        level = list(compress(children, map(_is_container, map(type, children))))
    return False


def _refuse_lone_surrogates(value: Any) -> None:
    bad: list[tuple[tuple[str, ...], str]] = []
    for path, item in _walk(value):
        if isinstance(item, str) and _SURROGATE.search(item):
            bad.append((path, NOT_UNICODE))
        elif isinstance(item, dict) and any(_SURROGATE.search(key) for key in item):
            bad.append((path, BAD_FIELD_NAME))
        if len(bad) >= MAX_REPORTED_FIELDS:
            break
    if bad:
        raise ValidationFailed(errors=_nested(bad))


def _walk(value: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every value with its path (field names and list positions), without recursion."""
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            stack.extend(((*path, _printable(key)), child) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend(((*path, str(index)), child) for index, child in enumerate(item))
        yield path, item


def _printable(key: str) -> str:
    # A field name holding a surrogate is shown escaped ("\ud800"), so the error itself encodes.
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def _nested(bad: list[tuple[tuple[str, ...], str]]) -> dict[str, Any]:
    """``errors`` nested by field as marshmallow nests them (``{"skills": {"0": [...]}}``)."""
    errors: dict[str, Any] = {}
    for path, message in sorted(bad):
        node = errors
        for part in path or ("_json",):
            node = node.setdefault(part, {})
        node.setdefault("_messages", []).append(message)
    return _collapse(errors)


def _collapse(node: dict[str, Any]) -> Any:
    messages = node.pop("_messages", None)
    if not node:
        return messages
    collapsed = {key: _collapse(child) for key, child in node.items()}
    if messages:
        collapsed["_schema"] = messages
    return collapsed


class RequestJSONProvider(DefaultJSONProvider):
    """Flask's JSON with :func:`parse_json_document` for what is read (``request.get_json``)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return parse_json_document(s)


def load_json_body(req: Request, schema: ma.Schema) -> Any:
    """webargs' ``json`` location through :func:`parse_json_document` (same answers otherwise:
    no JSON body is "missing", malformed JSON is 400 ``malformed_json``)."""
    if not is_json_request(req):
        return ma.missing
    data = req.get_data(cache=True)
    if not data:
        return ma.missing
    try:
        return parse_json_document(data)
    except ValueError as error:
        abort(400, exc=error, messages={"json": ["Invalid JSON body."]})


def undecodable_query_parameters(query: bytes) -> list[str]:
    """Names of the query parameters whose name or value is not UTF-8 once unescaped."""
    names = []
    for part in query.split(b"&"):
        name, _, value = part.partition(b"=")
        raw_name, raw_value = (unquote_to_bytes(x.replace(b"+", b" ")) for x in (name, value))
        try:
            raw_name.decode("utf-8")
            raw_value.decode("utf-8")
        except UnicodeDecodeError:
            names.append(raw_name.decode("utf-8", "replace") or "_query")
    return names


def init_request_input(app: Flask) -> None:
    """Check every request's input as it enters (see the module docstring)."""
    # webargs keeps location loaders per parser class: this serves flask-smorest's parser and any
    # FlaskParser subclass (the reports' multipart parser), whenever their routes were declared.
    Blueprint.ARGUMENTS_PARSER.location_loader("json")(load_json_body)

    @app.before_request
    def check_request_input() -> None:
        if request.query_string:
            bad = undecodable_query_parameters(request.query_string)
            if bad:
                raise ValidationFailed(errors={name: [NOT_UTF8] for name in bad})
        if request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            _read_chunked_body_within(request_body_limit(app))


def _read_chunked_body_within(limit: int) -> None:
    """Read a body of unknown length now, one byte past the limit, so that a body over the limit
    is told from one exactly at it; views then read the cached bytes (form parsing too)."""
    request.max_content_length = limit + 1
    if len(request.get_data(cache=True)) > limit:
        raise RequestEntityTooLarge()
    request.max_content_length = limit
