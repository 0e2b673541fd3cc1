"""flask-smorest ``Api`` that documents and emits our problem+json error shape.

It also keeps the OpenAPI document usable by client generators (openapi-python-client is tested in
tests/test_openapi_client.py), for every endpoint at once rather than view by view:

- every operation has a stable ``operationId`` derived from its view, unique in the document;
- every operation that accepts a bearer token documents 401 (problem+json);
- a nullable field with an ``enum`` lists ``null`` among its values (OpenAPI 3.0.3: ``nullable``
  does not widen an ``enum``), so a client parses ``null`` instead of refusing it;
- a nullable nested object is ``anyOf: [$ref, <null only>]``, which keeps the object's type in a
  generated client (apispec's default ``anyOf: [{type: object, nullable}, $ref]`` lets any object
  through its first branch, so generators fall back to an untyped dict).
"""

from __future__ import annotations

import http
import re
from typing import Any

import marshmallow as ma
from apispec import BasePlugin
from flask import Response
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from core.errors import PROBLEM_MIMETYPE, handle_http_exception

#: A schema that admits ``null`` and nothing else, valid OpenAPI 3.0.3 (which has no null type:
#: ``nullable`` only takes effect next to an explicit ``type``, and the enum then rules out objects).
NULL_ONLY: dict[str, Any] = {"type": "object", "nullable": True, "enum": [None]}
#: What apispec emits as the null branch of a nullable nested object in OpenAPI 3.0.
_APISPEC_NULL_BRANCH = {"type": "object", "nullable": True}


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with a stable machine ``code`` and per-field ``errors``."""

    type = ma.fields.String(required=True, metadata={"description": "URI naming the problem type"})
    title = ma.fields.String(required=True, metadata={"description": "Short, translated summary"})
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True, metadata={"description": "Translated explanation"})
    code = ma.fields.String(required=True, metadata={"description": "Stable machine code"})
    errors = ma.fields.Dict(metadata={"description": "Validation messages per field"})


def nullable_enum_lists_null(self: Any, field: ma.fields.Field, ret: dict[str, Any], **kwargs: Any) -> dict:
    """A field that may be null and has an ``enum`` (from a validator or ``metadata``) lists null."""
    enum = ret.get("enum")
    if field.allow_none and enum is not None and None not in enum:
        return {"enum": [*enum, None]}
    return {}


def nullable_nested_keeps_its_type(self: Any, field: ma.fields.Field, ret: dict[str, Any], **kwargs: Any) -> dict:
    """``Nested(allow_none=True)``: the object's reference first, then a branch that is only null."""
    branches = ret.get("anyOf")
    if not field.allow_none or branches is None or _APISPEC_NULL_BRANCH not in branches:
        return {}
    return {"anyOf": [*(branch for branch in branches if branch != _APISPEC_NULL_BRANCH), NULL_ONLY]}


def operation_id(view: Any, endpoint: str, method: str, methods: int) -> str:
    """``get_me``, ``patch_area_item`` for class-based views (HTTP method + class name in snake case);
    the function's name for a function view serving one method, else method + name."""
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        return f"{method}_{re.sub(r'(?<!^)(?=[A-Z])', '_', view_class.__name__).lower()}"
    name = endpoint.rsplit(".", 1)[-1]
    return name if methods == 1 else f"{method}_{name}"


def _accepts_bearer_token(operation: dict[str, Any]) -> bool:
    return any("bearerAuth" in requirement for requirement in operation.get("security", []))


class OperationConventions(BasePlugin):
    """Names each operation and documents 401 wherever a token is accepted (a bad one is 401)."""

    def __init__(self, api: ShouwangApi) -> None:
        super().__init__()
        self._api = api
        self._used: dict[str, str] = {}

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs: Any) -> None:
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        view = self._api._app.view_functions[rule.endpoint]
        for method, operation in operations.items():
            name = operation.setdefault("operationId", operation_id(view, rule.endpoint, method, len(operations)))
            where = f"{method.upper()} {path}"
            if self._used.setdefault(name, where) != where:
                # A client's function names come from these: a clash must be resolved, not numbered.
                raise RuntimeError(f"operationId {name!r} of {where} is already used by {self._used[name]}")
            if _accepts_bearer_token(operation):
                operation.setdefault("responses", {}).setdefault("401", http.HTTPStatus.UNAUTHORIZED.name)


class ShouwangApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return handle_http_exception(error)

    def _init_spec(self, *, extra_plugins: Any = None, **options: Any) -> None:
        super()._init_spec(extra_plugins=[*(extra_plugins or ()), OperationConventions(self)], **options)
        converter = self.ma_plugin.converter
        converter.add_attribute_function(nullable_enum_lists_null)
        converter.add_attribute_function(nullable_nested_keeps_its_type)

    def _register_responses(self) -> None:
        """Document every error response as problem+json, not flask-smorest's JSON default."""
        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Error (problem+json)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)
