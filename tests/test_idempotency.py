"""Idempotency keys (core/idempotency.py) through real endpoints: swap proposal and acceptance."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.extensions import db
from core.idempotency import IdempotencyRecord, purge_idempotency_records
from shifts.swaps.models import SwapRequest
from tests.problems import EN, assert_problem
from tests.shifts.test_swaps import API, Cast, as_, at_once, committed_cast

KEY = "3f2b7c1e-9a4d-4e8b-b0c5-2d6f8a1e7c90"


@pytest.fixture
def cast(tree) -> Cast:
    return Cast(tree)


def offer(client, cast: Cast, key: str | None = KEY, **body):
    payload = {"assignment_id": cast.place.id, "to_volunteer_id": cast.bo.id, **body}
    extra = {"Idempotency-Key": key} if key is not None else {}
    return client.post(API, json=payload, headers=as_(cast.ann, **EN, **extra))


def count(model: type, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def stored(user_id: int, key: str = KEY) -> IdempotencyRecord | None:
    return db.session.scalar(
        sa.select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    )


def test_a_retry_with_the_same_key_replays_the_first_response(client, cast) -> None:
    first = offer(client, cast, message="替我一下")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers

    again = offer(client, cast, message="替我一下")

    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.mimetype == "application/json"
    assert again.get_json() == first.get_json()
    assert count(SwapRequest) == 1
    record = stored(cast.ann.user_id)
    assert (record.status_code, record.method, record.path) == (201, "POST", API)


def test_without_the_header_nothing_is_recorded_and_a_repeat_runs_again(client, cast) -> None:
    assert offer(client, cast, key=None).status_code == 201
    assert_problem(offer(client, cast, key=None), 409, "swap_already_open")
    assert count(IdempotencyRecord) == 0


def test_the_same_key_for_another_request_is_409(client, cast) -> None:
    swap_id = offer(client, cast).get_json()["id"]
    assert_problem(offer(client, cast, message="不同的内容"), 409, "idempotency_key_reused")
    # Another path (with the same empty body as a first accept would have) is another request too.
    response = client.post(
        f"{API}/{swap_id}/accept", headers=as_(cast.ann, **{"Idempotency-Key": KEY})
    )
    problem = assert_problem(response, 409, "idempotency_key_reused")
    assert problem["title"] == "幂等键已用于另一个请求"
    assert count(SwapRequest) == 1


def test_keys_belong_to_their_user(client, cast) -> None:
    swap_id = offer(client, cast).get_json()["id"]
    response = client.post(
        f"{API}/{swap_id}/accept", headers=as_(cast.bo, **{"Idempotency-Key": KEY})
    )
    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response.headers
    assert count(IdempotencyRecord) == 2


def test_accepting_again_with_the_key_replays_instead_of_409(client, cast) -> None:
    swap_id = offer(client, cast, key=None).get_json()["id"]
    headers = as_(cast.bo, **{"Idempotency-Key": "accept-1"})
    first = client.post(f"{API}/{swap_id}/accept", headers=headers)
    again = client.post(f"{API}/{swap_id}/accept", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    # The same without a key is a second acceptance, refused.
    assert_problem(
        client.post(f"{API}/{swap_id}/accept", headers=as_(cast.bo)), 409, "invalid_swap_transition"
    )


@pytest.mark.parametrize("key", ["", "x" * 201, "é-key", "tab\there"])
def test_a_malformed_key_is_422_and_nothing_happens(client, cast, key) -> None:
    problem = assert_problem(offer(client, cast, key=key), 422, "validation_failed")
    assert problem["errors"] == {"Idempotency-Key": ["Use 1 to 200 printable ASCII characters."]}
    assert count(SwapRequest) == count(IdempotencyRecord) == 0


def test_the_longest_key_is_accepted(client, cast) -> None:
    assert offer(client, cast, key="k" * 200).status_code == 201
    assert stored(cast.ann.user_id, "k" * 200).status_code == 201


def test_a_refused_request_is_not_stored_so_its_retry_runs_again(client, cast) -> None:
    cast.bo.status = "suspended"
    db.session.flush()
    assert_problem(offer(client, cast), 422, "validation_failed")  # out of reach while suspended
    assert count(IdempotencyRecord) == 0
    cast.bo.status = "active"
    db.session.flush()
    response = offer(client, cast)
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers


def test_an_error_whose_changes_are_kept_is_stored_and_replayed(client, cast) -> None:
    swap_id = offer(client, cast, key=None).get_json()["id"]
    cast.shift.starts_at = utcnow() - timedelta(minutes=5)
    db.session.flush()
    headers = as_(cast.bo, **EN, **{"Idempotency-Key": "late-accept"})
    first = client.post(f"{API}/{swap_id}/accept", headers=headers)
    assert_problem(first, 409, "swap_no_longer_possible")
    assert db.session.get(SwapRequest, swap_id).status == "cancelled"

    again = client.post(f"{API}/{swap_id}/accept", headers=headers)

    # Not "invalid_swap_transition", which running it again would answer: the first answer.
    assert_problem(again, 409, "swap_no_longer_possible")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert stored(cast.bo.user_id, "late-accept").status_code == 409


def test_a_record_without_its_response_answers_in_progress(client, cast) -> None:
    """Cannot arise from concurrent requests (core/idempotency.py); answered safely if it does."""
    assert offer(client, cast).status_code == 201
    record = stored(cast.ann.user_id)
    record.status_code = None
    db.session.flush()
    response = offer(client, cast)
    assert_problem(response, 409, "idempotency_key_in_progress")
    assert response.headers["Retry-After"] == "1"


def test_an_expired_key_is_free_again(client, cast, app: Flask) -> None:
    assert offer(client, cast).status_code == 201
    stored(cast.ann.user_id).created_at = utcnow() - timedelta(
        hours=app.config["IDEMPOTENCY_TTL_HOURS"], minutes=1
    )
    db.session.flush()
    # Another request under the old key runs (and is refused: the place has an open request).
    assert_problem(offer(client, cast, message="新的"), 409, "swap_already_open")
    assert count(SwapRequest) == 1


def test_purge_deletes_old_records_only(client, cast, app: Flask) -> None:
    now = utcnow()
    for key, age in (
        ("fresh", timedelta(hours=1)),
        ("day-old", timedelta(hours=25)),
        ("old", timedelta(days=3)),
    ):
        db.session.add(
            IdempotencyRecord(
                user_id=cast.ann.user_id,
                key=key,
                method="POST",
                path=API,
                request_hash="0" * 64,
                status_code=201,
                response_body="{}",
                content_type="application/json",
                created_at=now - age,
            )
        )
    db.session.flush()
    assert purge_idempotency_records(timedelta(days=2)) == 1
    assert purge_idempotency_records() == 1  # IDEMPOTENCY_TTL_HOURS, 24 by default
    assert [r.key for r in db.session.scalars(sa.select(IdempotencyRecord))] == ["fresh"]


def test_the_header_and_its_conflicts_are_documented(client) -> None:
    spec = client.get("/api/openapi.json").get_json()
    for path in (API, API + "/{swap_id}/accept"):
        operation = spec["paths"][path]["post"]
        header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
        assert header["in"] == "header" and header["required"] is False
        assert header["schema"]["maxLength"] == 200
        assert {"409", "422"} <= set(operation["responses"])
        assert "Idempotency-Key" in operation["description"]
    decline = spec["paths"][API + "/{swap_id}/decline"]["post"]
    assert all(p["name"] != "Idempotency-Key" for p in decline.get("parameters", []))


# --- races -------------------------------------------------------------------------------------

CONCURRENT = 6


@pytest.mark.committing
def test_the_same_key_sent_at_once_does_the_work_once(app: Flask) -> None:
    setup = committed_cast(app)
    headers = {**setup["ann"], "Idempotency-Key": KEY}
    body = {"assignment_id": setup["place_id"], "to_volunteer_id": setup["bo_id"]}

    results = at_once(app, [(API, body, headers)] * CONCURRENT)

    assert [status for status, *_ in results] == [201] * CONCURRENT, results
    assert len({str(body) for _, body, _ in results}) == 1  # every caller got the same answer
    replayed = [h.get("Idempotent-Replayed") for *_, h in results]
    assert replayed.count(None) == 1 and replayed.count("true") == CONCURRENT - 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SwapRequest)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 1
        db.session.remove()


@pytest.mark.committing
def test_the_same_key_with_different_bodies_at_once_runs_one(app: Flask) -> None:
    setup = committed_cast(app)
    headers = {**setup["ann"], "Idempotency-Key": KEY}
    calls = [
        (
            API,
            {"assignment_id": setup["place_id"], "to_volunteer_id": to, "message": f"第{i}次"},
            headers,
        )
        for i, to in enumerate([setup["bo_id"], setup["cai_id"]] * (CONCURRENT // 2))
    ]

    results = at_once(app, calls)

    assert sorted(status for status, *_ in results) == [201] + [409] * (CONCURRENT - 1), results
    assert {body["code"] for status, body, _ in results if status == 409} == {
        "idempotency_key_reused"
    }
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SwapRequest)) == 1
        db.session.remove()
