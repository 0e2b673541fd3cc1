"""Concurrent check-ins and reviews with real commits on separate connections (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.extensions import db
from patrols import signals
from patrols.models import Patrol
from shifts import rules
from shifts.models import Assignment
from tests import factories, races

pytestmark = pytest.mark.committing

API = "/api/v1"


def run_at_once(app: Flask, requests: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[Any]:
    """POST each (path, json, headers) at once; (status, json) per request."""
    responses = races.at_once(app, [("POST", path, body, headers) for path, body, headers in requests])
    return [(response.status_code, response.get_json()) for response in responses]


@pytest.fixture
def check_ins() -> Iterator[list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def receiver(sender: str, **kwargs: Any) -> None:
        sent.append(kwargs)

    signals.checked_in.connect(receiver)
    yield sent
    signals.checked_in.disconnect(receiver)


def setup_assignment(app: Flask) -> tuple[int, dict[str, str], Any]:
    """A running shift with one volunteer's place: (assignment id, the volunteer's headers, community)."""
    with app.app_context():
        _city, _district, _subdistrict, community, grid = factories.make_branch()
        shift = factories.make_shift(grid, starts_in=timedelta(minutes=-5))
        volunteer = factories.make_volunteer(grid)
        assignment = factories.make_assignment(shift, volunteer)
        headers = factories.headers_for(volunteer.user)
        organisers = [factories.headers_for(factories.make_user("organiser", community)) for _ in range(2)]
        assignment_id = assignment.id
        db.session.commit()
        db.session.remove()
    return assignment_id, headers, organisers


def body(client_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": client_id or str(uuid.uuid4()),
        "lat": 40.655,
        "lon": 109.845,
        "accuracy_m": 12,
        "device_time": utcnow().isoformat(),
        **extra,
    }


def stored_patrols(app: Flask, assignment_id: int) -> list[Patrol]:
    with app.app_context():
        patrols = list(db.session.scalars(sa.select(Patrol).where(Patrol.assignment_id == assignment_id)))
        db.session.expunge_all()
        db.session.remove()
    return patrols


@pytest.mark.parametrize("same_key", [False, True], ids=["client_id_only", "same_idempotency_key"])
def test_the_same_check_in_sent_20_times_at_once_checks_in_once(app: Flask, check_ins, same_key) -> None:
    assignment_id, headers, _ = setup_assignment(app)
    event = body()
    if same_key:
        headers = {**headers, "Idempotency-Key": "check-in-" + event["client_id"]}
    path = f"{API}/assignments/{assignment_id}/check-in"

    results = run_at_once(app, [(path, event, headers)] * 20)

    assert {status for status, _ in results} == {200}, results
    assert len({answer["id"] for _, answer in results}) == 1
    assert {answer["check_in"]["client_id"] for _, answer in results} == {event["client_id"]}
    [patrol] = stored_patrols(app, assignment_id)
    assert patrol.check_in_client_id == event["client_id"] and patrol.presence_status == "verified"
    assert len(check_ins) == 1


def test_two_different_check_ins_at_once_give_one_check_in_and_one_409(app: Flask, check_ins) -> None:
    assignment_id, headers, _ = setup_assignment(app)
    path = f"{API}/assignments/{assignment_id}/check-in"
    events = [body(), body()]

    results = run_at_once(app, [(path, event, headers) for event in events])

    assert sorted(status for status, _ in results) == [200, 409], results
    winner = next(answer for status, answer in results if status == 200)
    loser = next(answer for status, answer in results if status == 409)
    assert loser["code"] == "already_checked_in"
    [patrol] = stored_patrols(app, assignment_id)
    assert patrol.check_in_client_id == winner["check_in"]["client_id"]
    assert len(check_ins) == 1


def test_check_in_and_check_out_at_once_settle_served_minutes_once(app: Flask) -> None:
    assignment_id, headers, _ = setup_assignment(app)
    served: list[dict[str, Any]] = []

    def receiver(sender: str, **kwargs: Any) -> None:
        served.append(kwargs)

    signals.shift_served.connect(receiver)
    try:
        results = run_at_once(
            app,
            [
                (f"{API}/assignments/{assignment_id}/check-in", body(), headers),
                (f"{API}/assignments/{assignment_id}/check-out", body(), headers),
            ],
        )
    finally:
        signals.shift_served.disconnect(receiver)

    assert [status for status, _ in results] == [200, 200], results
    [patrol] = stored_patrols(app, assignment_id)
    assert patrol.presence_status == "verified" and patrol.served_minutes is not None
    assert [kwargs["served_minutes"] for kwargs in served] == [patrol.served_minutes]


def test_two_organisers_reviewing_at_once_one_decision_stands(app: Flask) -> None:
    assignment_id, headers, organisers = setup_assignment(app)
    client = app.test_client()
    flagged = client.post(
        f"{API}/assignments/{assignment_id}/check-in", json=body(mock_location=True), headers=headers
    ).get_json()
    assert flagged["presence_status"] == "needs_review"

    results = run_at_once(
        app,
        [
            (f"{API}/patrols/{flagged['id']}/approve", {}, organisers[0]),
            (f"{API}/patrols/{flagged['id']}/reject", {"reason": "定位可疑"}, organisers[1]),
        ],
    )

    assert sorted(status for status, _ in results) == [200, 409], results
    winner = next(answer for status, answer in results if status == 200)
    assert next(answer for status, answer in results if status == 409)["code"] == "presence_not_under_review"
    [patrol] = stored_patrols(app, assignment_id)
    assert patrol.presence_status == winner["presence_status"]


def test_a_check_in_waiting_for_the_schedule_lock_reads_what_its_holder_committed(app: Flask) -> None:
    """The no-show task marks a place absent under the volunteer's schedule lock; a check-in that
    waited for that lock must see it (flag ``marked_absent``), though its statement began before.

    The check-in locks and reads in one statement (``patrols.presence.place._own_read_and_lock``):
    on PostgreSQL the rows it returns are their newest versions only because it also locks them.
    """
    assignment_id, headers, _ = setup_assignment(app)
    with app.app_context():
        volunteer_id = db.session.get(Assignment, assignment_id).volunteer_id
        db.session.remove()
    holding, checking_in = threading.Event(), threading.Event()

    def no_show_task() -> None:
        with app.app_context():
            rules.lock_schedules([volunteer_id])
            db.session.execute(
                sa.update(Assignment).where(Assignment.id == assignment_id).values(status="absent")
            )
            holding.set()
            assert checking_in.wait(races.TIMEOUT_SECONDS)
            _until_a_lock_is_awaited(app)
            db.session.commit()
            db.session.remove()

    def check_in() -> Any:
        assert holding.wait(races.TIMEOUT_SECONDS)
        checking_in.set()
        return app.test_client().post(f"{API}/assignments/{assignment_id}/check-in", json=body(), headers=headers)

    _, response = races.run_threads([no_show_task, check_in])

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["check_in"]["flags"] == ["marked_absent"]
    assert response.get_json()["presence_status"] == "needs_review"


def _until_a_lock_is_awaited(app: Flask) -> None:
    """On PostgreSQL, return once another session waits for an advisory lock (the check-in, blocked
    by this test's holder); SQLite's writers queue on the database lock, which shows nowhere."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return
    engine = db.engine
    deadline = time.monotonic() + races.TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            waiting = connection.scalar(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
        if waiting:
            return
    raise AssertionError("the check-in never waited for the schedule lock")
