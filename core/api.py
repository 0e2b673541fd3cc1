"""flask-smorest ``Api`` that documents and emits our problem+json error shape."""

from __future__ import annotations

import http

import marshmallow as ma
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from core.errors import PROBLEM_MIMETYPE, handle_http_exception


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with a stable machine ``code`` and per-field ``errors``."""

    type = ma.fields.String(required=True, metadata={"description": "URI naming the problem type"})
    title = ma.fields.String(required=True, metadata={"description": "Short, translated summary"})
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True, metadata={"description": "Translated explanation"})
    code = ma.fields.String(required=True, metadata={"description": "Stable machine code"})
    errors = ma.fields.Dict(metadata={"description": "Validation messages per field"})


class ShouwangApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException):  # type: ignore[override]
        return handle_http_exception(error)

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
