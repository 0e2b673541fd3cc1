"""Schemathesis against our own OpenAPI document: every operation, as every role, with every check.

Each generated request goes out as a volunteer, an organiser, district staff, a city admin and
with no token, against a world with real ids of every kind in two communities of different
districts (tests/fuzz_world.py), so that handlers are reached past 404 and 422. Every check
schemathesis has applies (taken from its registry, so new ones come in by themselves): no 5xx,
status codes, content types, headers and bodies as documented, schema-invalid data refused and
valid data not refused (save rules no schema can state: ``_schema_cannot_say``), authentication
enforced (``ignored_auth`` resends each answered request without the token and with a bad one)
and, in the stateful test below, nothing served after it was deleted (``use_after_free``) nor
missing right after it was made (``ensure_resource_availability``). ``object_level_authorization``
is in the list too but acts only with a WFC document of several identities, which we do not use:
our roles are sent explicitly instead, and reach is tested by hand in each package's tests.

Each call runs in a savepoint rolled back afterwards: every request meets the same world, so a
failure is repeated by its seed alone, and each is listed with its curl and the command that
reruns its operation. Environment: ``FUZZ_SEED`` (default fixed), ``FUZZ_EXAMPLES`` per operation
and mode (default below; e.g. 100 for a nightly run), ``FUZZ_SCENARIOS`` (stateful), and
``FUZZ_OPERATION`` to run one operation only, e.g. ``FUZZ_OPERATION='POST /api/v1/shifts'``.
"""

from __future__ import annotations

import contextvars
import os
import random
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.openapi.checks import RejectedPositiveData

from core.extensions import db, limiter
from tests.conftest import Tree
from tests.fuzz_world import ROLES, World, build_world

load_all_checks()
#: Every check schemathesis registers, so a check added in a later version applies here by itself.
ALL_CHECKS = [check for check in CHECKS.get_all() if not isinstance(check, type)]

SEED = int(os.environ.get("FUZZ_SEED", "1206"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))  # ~2.5 min a database on a loaded machine
ONLY = os.environ.get("FUZZ_OPERATION")

#: Valid requests, sent as every role, must get a 2xx from at least this share of the operations.
LEAST_REACHED = 0.6

#: Of five ids in a request, this many keep their generated value (mostly ids that do not exist);
#: the others are replaced by real ones from the world, in the callers' reach or not.
_KEEP_GENERATED = 1


@pytest.fixture
def world(app: Flask, client: FlaskClient, tree: Tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setitem(app.config, "REPORT_PHOTO_DIR", str(tmp_path / "photos"))
    monkeypatch.setitem(app.config, "REPORT_PHOTO_STORAGE", "local")
    return build_world(client, tree)


#: The callers' tokens are ours to send (one per role, none for "anonymous"), so the generator
#: makes up no Authorization header of its own; ``ignored_auth`` still resends each answered
#: request without the token and with a bad one. No constants mined from the loaded modules:
#: what else the test session happened to import (bench/, say) changed the cases a seed made, so
#: a failure in the suite did not come back when rerun alone.
CONFIG = SchemathesisConfig.from_dict(
    {"generation": {"with-security-parameters": False}, "analysis": {"constants": {"enabled": False}}}
)


def _schema(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=CONFIG)


def _operations(app: Flask) -> list[Any]:
    operations = [result.ok() for result in _schema(app).get_all_operations()]
    if ONLY:
        operations = [operation for operation in operations if operation.label == ONLY]
        assert operations, f"no operation {ONLY!r}"
    return operations


def _takes_input(operation: Any) -> bool:
    return bool(list(operation.iter_parameters())) or bool(list(operation.body))


def _valid_at(case: Any, location: ParameterLocation) -> bool:
    """Whether this part of the request was generated valid, so a real id keeps it valid."""
    meta = case.meta
    component = meta.components.get(location) if meta is not None else None
    return component is None or component.mode.is_positive


def _id_slots(world: World, case: Any) -> list[tuple[str, str, ParameterLocation]]:
    """The ids in a request that a real one may replace: (container, key, location)."""
    slots = []
    for location, name in (
        (ParameterLocation.PATH, "path_parameters"),
        (ParameterLocation.QUERY, "query"),
        (ParameterLocation.BODY, "body"),
    ):
        container = getattr(case, name)
        if not isinstance(container, dict) or not _valid_at(case, location):
            continue
        for key, value in container.items():
            is_id = isinstance(value, int) and not isinstance(value, bool) and value > 0
            # The calendar feed's secret and a certificate's number are the ids that are text.
            if key in world.ids and (is_id or (key in ("token", "number") and isinstance(value, str))):
                slots.append((name, key, location))
    return slots


def _aim(world: World, case: Any) -> st.SearchStrategy[Any]:
    """Most ids in the request replaced by real ones of their kind (in reach or not)."""
    slots = _id_slots(world, case)
    if not slots:
        return st.just(case)
    choices = st.tuples(*(st.tuples(st.integers(0, 4), st.sampled_from(world.ids[key])) for _, key, _ in slots))

    def apply(picks: tuple[tuple[int, Any], ...]) -> Any:
        for (name, key, _), (keep, real) in zip(slots, picks, strict=True):
            if keep >= _KEEP_GENERATED:
                getattr(case, name)[key] = real
        return case

    return choices.map(apply)


#: What clients send but schemathesis does not generate: 0, 1 or "true" for a boolean (the document
#: says boolean, so a strict server refuses them) and text with a lone surrogate (valid JSON, not
#: valid Unicode: to be refused with 422, never a 500). About one body in this many gets one.
_AWKWARD_ONE_IN = 4
_AWKWARD_BOOLEANS = (0, 1, "true", "false")


def _awkward(case: Any) -> st.SearchStrategy[Any]:
    """Now and then one top-level body field replaced by a value of the kinds above."""
    body = case.body
    json = (case.media_type or "").endswith("json")  # a form's text must be encoded: no surrogates
    if not json or not isinstance(body, dict) or not _valid_at(case, ParameterLocation.BODY):
        return st.just(case)
    fields = [key for key, value in body.items() if isinstance(value, (bool, str))]
    if not fields:
        return st.just(case)

    def apply(pick: tuple[int, Any]) -> Any:
        index, boolean = pick
        if index < len(fields):
            key = fields[index]
            if isinstance(body[key], bool):
                body[key] = boolean
                case.meta  # noqa: B018 - schemathesis re-judges the edited body: a 1 for a boolean is invalid
            else:
                # Still a valid string to the document, so the case stays valid (and is not
                # re-judged: schemathesis' validator cannot take a lone surrogate).
                body[key] += "\ud800"
        return case

    return st.tuples(st.integers(0, _AWKWARD_ONE_IN * len(fields) - 1), st.sampled_from(_AWKWARD_BOOLEANS)).map(apply)


@contextmanager
def _undone() -> Iterator[None]:
    """A savepoint rolled back afterwards: the next call meets the same world."""
    savepoint = db.session.begin_nested()
    db.session.connection()  # the SAVEPOINT is emitted now, not lazily at the rollback
    try:
        yield
    finally:
        savepoint.rollback()
        db.session.expire_all()
        limiter.reset()


def _as_a_server_would(work: Any) -> Any:
    """Run ``work`` (requests included) outside the test's app context, as RequestIsolatingClient
    does: each request then pushes its own context and session, a savepoint on the test's
    connection, instead of committing the test's session."""
    return contextvars.Context().run(work)


def _not_near_point(query: dict[str, Any]) -> bool:
    return query.get("near") != "point"


def _value_of_the_other_period(query: dict[str, Any]) -> bool:
    """A month (YYYY-MM) with period=year, or a year with period=month."""
    return (query.get("period", "month") == "year") == ("-" in str(query.get("value", "")))


#: Query rules across parameters, which a schema cannot state: a 422 naming one of them on
#: schema-valid input is the server doing its job. Anything else a query or path parameter the
#: document allows is refused for is the document promising more than the server keeps.
_RELATIONAL_QUERY_RULES: dict[tuple[str, str], Any] = {
    ("GET /api/v1/shifts/open", "lat"): _not_near_point,  # lat, lon, radius_km only with near=point
    ("GET /api/v1/shifts/open", "lon"): _not_near_point,
    ("GET /api/v1/shifts/open", "radius_km"): _not_near_point,
    ("GET /api/v1/shifts/open", "from"): bool,  # the window from–to spans at most so many days
    ("GET /api/v1/shifts/open", "to"): bool,
    ("GET /api/v1/areas/{area_id}/shifts", "from"): bool,
    ("GET /api/v1/areas/{area_id}/shifts", "to"): bool,
    ("GET /api/v1/leaderboards", "value"): _value_of_the_other_period,
    ("GET /api/v1/leaderboards", "by"): bool,  # a level below the area's (area_id or the caller's)
}
# A report's period (reports/periods.py): period with a value of its kind, or from and to together,
# in order, within three years and in the years 2000–2099 (a `format: date` cannot be bounded); a
# day series no longer than the longest series.
_RELATIONAL_QUERY_RULES.update(
    {
        (operation, name): bool
        for operation in (
            "GET /api/v1/reports/coverage",
            "GET /api/v1/reports/participation",
            "GET /api/v1/me/participation",
            "GET /api/v1/reports/participation/export",
            "GET /api/v1/reports/coverage/export",
        )
        for name in ("period", "value", "from", "to", "series")
    }
)
# The hand-over export's period (records/handover/schemas.py): first..last in order, at most 366
# days, in the years 2000–2099.
_RELATIONAL_QUERY_RULES.update({("GET /api/v1/records/handover", name): bool for name in ("first", "last")})


def _is_reference(name: str) -> bool:
    """A parameter naming another record (by id, or a volunteer kind by code), whose existence
    and reach no schema states; or a cursor, a token the server issued (the document states its
    form, not which strings of that form the server made)."""
    return name.endswith("_id") or name in {"under", "kind", "cursor"}


def _schema_cannot_say(case: Any, response: Any) -> bool:
    """Whether a 422 (or an upload's 415) to schema-valid input is for a rule the OpenAPI
    document cannot express.

    Bodies carry the rules a schema cannot state: references to other records, rules across
    fields and relative to now, checksums (an id number), text that is not valid Unicode; their
    refusals are accepted here (what must be refused in them is checked by
    ``negative_data_rejection``). Query and path parameters are held to the document, save
    references and the few rules across parameters above.
    """
    if response.status_code == 415:
        # A file whose bytes are not a JPEG or PNG: a document names media types, it cannot
        # judge bytes (schemathesis sends any bytes as a binary part, or a GIF named image/jpeg).
        return case.media_type == "multipart/form-data"
    if response.status_code != 422:
        return False
    named = (response.json().get("errors") or {}).keys()
    query = dict(case.query or {})
    parameters = set(query) | set(case.path_parameters or {})
    return all(
        name not in parameters
        or _is_reference(name)
        or _RELATIONAL_QUERY_RULES.get((case.operation.label, name), lambda _: False)(query)
        for name in named
    )


def _failures(case: Any, response: Any, transport: dict[str, Any], recorder: Any = None) -> list[Any]:
    """What every check finds wrong with this response (the probes it sends included)."""
    try:
        _as_a_server_would(lambda: case.validate_response(
            response, checks=ALL_CHECKS, headers=transport["headers"], transport_kwargs=transport, recorder=recorder
        ))
    except FailureGroup as group:
        return [
            failure for failure in group.exceptions
            if not (isinstance(failure, RejectedPositiveData) and _schema_cannot_say(case, response))
        ]
    return []


@dataclass
class _Found:
    roles: set[str] = field(default_factory=set)
    detail: str = ""


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_operation_conforms_for_every_role(app: Flask, world: World, mode: GenerationMode) -> None:
    found: dict[tuple[str, str, str], _Found] = defaultdict(_Found)
    answered: dict[str, Counter[int]] = defaultdict(Counter)  # role → status class → count
    reached: dict[str, set[str]] = defaultdict(set)  # role → operations answered 2xx
    operations = _operations(app)
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _takes_input(operation):
            continue  # nothing to get wrong: no parameter and no body

        @seed(SEED ^ zlib.crc32(operation.label.encode()))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],  # every failure is listed below; none shrunk
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode).flatmap(lambda case: _aim(world, case)).flatmap(_awkward))
        def exercise(case: schemathesis.Case) -> None:
            for role in ROLES:
                headers = dict(world.headers[role])
                with _undone():
                    response = _as_a_server_would(lambda: case.call(headers=headers))  # noqa: B023 -- called here, in this iteration
                    answered[role][response.status_code // 100] += 1
                    if 200 <= response.status_code < 300:
                        reached[role].add(operation.label)  # noqa: B023 -- this iteration's operation
                    for failure in _failures(case, response, {"headers": headers}):
                        entry = found[operation.label, failure.title, _gist(failure.message)]  # noqa: B023 -- likewise
                        entry.roles.add(role)
                        entry.detail = entry.detail or _reproducer(case, response, failure, headers)

        exercise()

    shares = {role: f"{answered[role][2] / max(1, sum(answered[role].values())):.0%}" for role in ROLES}
    print(f"\n{mode.value}: 2xx share per role {shares}; operations answered 2xx "
          f"{ {role: len(reached[role]) for role in ROLES} } of {len(operations)}")
    if mode is GenerationMode.POSITIVE and not ONLY:
        # The world works: valid requests get past validation and lookup to the handlers.
        everyone = set().union(*reached.values())
        assert len(everyone) >= LEAST_REACHED * len(operations), f"only {len(everyone)} operations answered 2xx"
    report = "\n\n".join(
        f"{label} as {', '.join(sorted(entry.roles))}: {title}\n{entry.detail}\n"
        f"rerun: FUZZ_SEED={SEED} FUZZ_OPERATION='{label}' .venv/bin/python -m pytest -p no:cacheprovider "
        f"tests/test_openapi_fuzz.py -k {mode.value}"
        for (label, title, _), entry in sorted(found.items())
    )
    assert not found, f"{len(found)} failures (seed {SEED}, {EXAMPLES} examples per operation):\n\n{report}"


def _gist(message: str) -> str:
    """What makes two failures of one operation the same: where in the schema, not which value."""
    lines = message.splitlines()
    where = next((line for line in lines if line.startswith("Schema at ")), None)
    return where or re.sub(r"`[^`]*`|\"[^\"]*\"", "…", lines[0] if lines else "")


def _reproducer(case: Any, response: Any, failure: Any, headers: dict[str, str]) -> str:
    body = response.text if len(response.text) < 600 else response.text[:600] + "…"
    return f"{failure.message}\n{case.as_curl_command(headers)}\n→ {response.status_code} {body}"


# --- stateful: chains of calls through the links schemathesis infers -------------------------------

STATEFUL_SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "10"))


@pytest.mark.parametrize("role", ["volunteer", "organiser"])
def test_chains_of_calls_keep_what_was_made_and_serve_nothing_deleted(app: Flask, world: World, role: str) -> None:
    """``use_after_free`` and ``ensure_resource_availability`` need a scenario's earlier calls:
    the state machine records them along the links schemathesis infers (POST /shifts →
    GET /shifts/{id}, POST /me/devices → DELETE /me/devices/{id} → …); ids no link fills are
    aimed at the world; each scenario runs in a savepoint of its own; derandomized."""
    headers = world.headers[role]

    class AsCaller(_schema(app).as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.savepoint = db.session.begin_nested()
            db.session.connection()

        def teardown(self) -> None:
            self.savepoint.rollback()
            db.session.expire_all()
            limiter.reset()

        def step(self, input: Any) -> Any:
            # Ids a link did not fill are aimed at the world, as in the stateless test (drawn
            # from a generator seeded by the step, so a scenario repeats).
            self.steps = getattr(self, "steps", 0) + 1
            pick = random.Random(f"{SEED}:{role}:{self.steps}:{input.case.operation.label}")
            linked = {(location, name) for location, name in input.applied_parameters}
            for name, key, location in _id_slots(world, input.case):
                if (location, key) not in linked and pick.randrange(5) >= _KEEP_GENERATED:
                    getattr(input.case, name)[key] = pick.choice(world.ids[key])
            return super().step(input)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": dict(headers)}

        def call(self, case: Any, **kwargs: Any) -> Any:
            return _as_a_server_would(lambda: case.call(**kwargs))

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            failures = _failures(case, response, kwargs, self.recorder)
            if failures:
                rerun = f".venv/bin/python -m pytest -p no:cacheprovider tests/test_openapi_fuzz.py -k 'chains and {role}'"
                raise FailureGroup(failures, f"{_reproducer(case, response, failures[0], kwargs['headers'])}\nrerun: {rerun}")

    AsCaller.run(settings=settings(
        max_examples=STATEFUL_SCENARIOS, stateful_step_count=8, deadline=None, database=None,
        derandomize=True, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    ))
