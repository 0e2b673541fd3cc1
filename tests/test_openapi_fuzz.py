"""Schemathesis against our own OpenAPI document: every endpoint, authenticated as several roles.

No input may produce a 500, and every response must match its documented status, content type and
schema. Valid and invalid inputs are both generated (positive and negative modes).
"""

from __future__ import annotations

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import User
from tests import factories
from tests.conftest import Tree

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 10


@pytest.fixture
def callers(tree: Tree) -> dict[str, User]:
    volunteer = factories.make_volunteer(tree.grid_a)
    return {
        "admin": factories.make_user("admin", tree.city),
        "organiser": factories.make_user("organiser", tree.community_a),
        "volunteer": volunteer.user,
    }


def _operations(app: Flask) -> list:
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _takes_input(operation) -> bool:
    return bool(list(operation.iter_parameters())) or bool(list(operation.body))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_endpoint_conforms(app: Flask, callers: dict[str, User], mode: GenerationMode) -> None:
    operations = _operations(app)
    assert len(operations) >= 5
    failures: list[str] = []
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _takes_input(operation):
            continue  # nothing to get wrong: no parameter and no body

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:
            for user in callers.values():
                # A fresh session per call: a generated logout or password change must not starve the rest.
                case.call_and_validate(headers=factories.headers_for(user), checks=CHECKS)
            case.call_and_validate(checks=CHECKS)

        try:
            exercise()
        except Exception as error:  # collect every operation's failure, then fail once
            failures.append(f"{operation.label}: {error}")
    assert failures == []
