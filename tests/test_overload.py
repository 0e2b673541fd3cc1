"""Requests that waited in the balancer's queue longer than their client waits are shed: 503
``overloaded`` with Retry-After, before any work, nothing written (core/overload.py)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from core.extensions import db
from core.idempotency import IdempotencyRecord
from core.overload import REQUESTS_SHED, StandingQueue, queued_at, waited_too_long
from patrols.models import Patrol
from tests.patrols.test_presence import check_in, event, on_shift
from tests.problems import assert_problem

LIMIT = 20.0


@pytest.mark.parametrize(
    ("header", "moment"),
    [
        ("t=1765000000.123", 1765000000.123),  # nginx ${msec}: seconds
        ("t=1765000000123", 1765000000.123),  # milliseconds
        ("t=1765000000123456", 1765000000.123456),  # microseconds (Apache %t)
        ("1765000000.5", 1765000000.5),  # no "t="
        (" t=1765000000 ", 1765000000.0),
    ],
)
def test_the_queue_start_is_read_in_seconds_milliseconds_or_microseconds(header: str, moment: float) -> None:
    assert queued_at(header) == pytest.approx(moment, abs=1e-6)


@pytest.mark.parametrize(
    "header", ["", "t=", "t=abc", "t=-5", "t=0", "t=nan", "t=inf", "t=1e400", "t=" + "9" * 40, "t=1,5", "\ud800"]
)
def test_an_unreadable_queue_start_is_no_moment(header: str) -> None:
    assert queued_at(header) is None


def test_a_request_is_shed_only_past_the_limit_to_the_millisecond() -> None:
    queued = 1765000000.0
    assert not waited_too_long(f"t={queued}", queued + LIMIT, LIMIT)  # exactly the limit: still in time
    assert waited_too_long(f"t={queued}", queued + LIMIT + 0.001, LIMIT)
    assert not waited_too_long(f"t={queued}", queued + LIMIT + 1, 0)  # 0: off
    assert not waited_too_long(f"t={queued}", queued - 60, LIMIT)  # in the future: another machine's clock
    assert not waited_too_long(None, queued + 3600, LIMIT)
    assert not waited_too_long("t=garbage", queued + 3600, LIMIT)


def _queued(seconds_ago: float) -> dict[str, str]:
    return {"X-Request-Start": f"t={time.time() - seconds_ago:.3f}"}


def _shed(reason: str) -> float:
    return REQUESTS_SHED.labels(reason=reason)._value.get()


@pytest.fixture
def limit_only(app, monkeypatch) -> None:
    """The limit alone: the standing-queue rule off, so waits between its target and the limit pass."""
    monkeypatch.setitem(app.config, "REQUEST_QUEUE_TIMEOUT_SECONDS", LIMIT)
    monkeypatch.setitem(app.config, "REQUEST_QUEUE_TARGET_MS", 0)


def test_a_check_in_that_waited_too_long_is_refused_before_any_work_and_the_retry_goes_through(
    client, tree, limit_only
) -> None:
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    body = event()
    shed_before = _shed("limit")

    late = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-1", **_queued(LIMIT + 5)})

    assert_problem(late, 503, "overloaded")
    assert late.headers["Retry-After"] == "5"
    assert _shed("limit") == shed_before + 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Patrol)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 0

    retried = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-1", **_queued(0.2)})

    assert retried.status_code == 200, retried.get_json()
    assert "Idempotent-Replayed" not in retried.headers
    assert retried.get_json()["check_in"]["client_id"] == body["client_id"]


#: Answers 401 to an anonymous caller once it is served, and is shed before that check.
SHEDDABLE = "/api/v1/me"


def test_requests_in_time_without_the_header_or_with_shedding_off_are_served(
    client, tree, app, monkeypatch, limit_only
) -> None:
    assert_problem(client.get(SHEDDABLE, headers=_queued(LIMIT - 5)), 401, "unauthorized")
    assert_problem(client.get(SHEDDABLE), 401, "unauthorized")
    assert_problem(client.get(SHEDDABLE, headers={"X-Request-Start": "t=not-a-time"}), 401, "unauthorized")
    assert_problem(client.get(SHEDDABLE, headers=_queued(-120)), 401, "unauthorized")  # a clock ahead of ours
    assert_problem(client.get(SHEDDABLE, headers=_queued(LIMIT + 1)), 503, "overloaded")

    monkeypatch.setitem(app.config, "REQUEST_QUEUE_TIMEOUT_SECONDS", 0)
    assert_problem(client.get(SHEDDABLE, headers=_queued(3600)), 401, "unauthorized")


def test_the_balancers_probes_are_never_shed(client, limit_only) -> None:
    shed_before = _shed("limit")

    for probe in ("/healthz", "/readyz"):
        answer = client.get(probe, headers=_queued(LIMIT + 60))
        assert answer.status_code == 200, (probe, answer.get_json())
        assert answer.get_json() == {"status": "ok"}

    assert _shed("limit") == shed_before
    assert_problem(client.get(SHEDDABLE, headers=_queued(LIMIT + 60)), 503, "overloaded")


def test_the_shed_answer_is_in_the_callers_language(client, limit_only) -> None:
    answer = client.get(SHEDDABLE, headers={**_queued(LIMIT + 1), "Accept-Language": "zh-CN"})
    body = assert_problem(answer, 503, "overloaded")
    assert answer.headers["Content-Language"] == "zh"
    assert body["title"] != "The service is overloaded; try again shortly"


def test_a_standing_queue_is_shed_once_every_wait_stayed_above_the_target_longer_than_the_interval() -> None:
    queue, target, interval = StandingQueue(), 0.5, 1.0
    start = 1765000000.0

    assert not queue.observe(0.5, start, target, interval)  # exactly the target: within it
    assert not queue.observe(0.501, start, target, interval)  # above it: the interval starts
    assert not queue.observe(0.9, start + interval, target, interval)  # exactly the interval: served
    assert queue.observe(0.9, start + interval + 0.001, target, interval)
    assert queue.observe(0.6, start + 5, target, interval)  # shed for as long as every wait stays above
    assert not queue.observe(0.5, start + 5.1, target, interval)  # one within the target (exactly) ends it
    assert not queue.observe(0.9, start + 5.2, target, interval)  # and a new interval starts
    assert not queue.observe(0.9, start + 6.2, target, interval)
    assert queue.observe(0.9, start + 6.201, target, interval)
    assert not queue.observe(60, start + 100, 0, interval)  # target 0: off


def test_requests_behind_a_standing_queue_are_shed_until_one_comes_within_the_target(
    client, tree, app, monkeypatch
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_QUEUE_TIMEOUT_SECONDS", LIMIT)
    monkeypatch.setitem(app.config, "REQUEST_QUEUE_TARGET_MS", 300)
    monkeypatch.setitem(app.config, "REQUEST_QUEUE_INTERVAL_MS", 100)
    _shift, volunteer, assignment = on_shift(tree.grid_a)
    body = event()
    shed_before, by_limit_before = _shed("standing_queue"), _shed("limit")

    assert_problem(client.get(SHEDDABLE, headers=_queued(0)), 401, "unauthorized")  # within the target
    assert_problem(client.get(SHEDDABLE, headers=_queued(1)), 401, "unauthorized")  # above: the interval starts
    time.sleep(0.15)
    late = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-q", **_queued(1)})
    assert_problem(late, 503, "overloaded")
    assert late.headers["Retry-After"] == "5"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Patrol)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyRecord)) == 0
    # Neither an unstamped request nor a probe tells how long the queue is: the standing queue stands.
    assert_problem(client.get(SHEDDABLE), 401, "unauthorized")
    assert client.get("/healthz", headers=_queued(1)).status_code == 200
    assert_problem(client.get(SHEDDABLE, headers=_queued(1)), 503, "overloaded")
    assert _shed("standing_queue") == shed_before + 2
    assert _shed("limit") == by_limit_before

    retried = check_in(client, volunteer, assignment, body, **{"Idempotency-Key": "k-q", **_queued(0)})
    assert retried.status_code == 200, retried.get_json()  # within the target: served, and the queue is gone
    assert_problem(client.get(SHEDDABLE, headers=_queued(1)), 401, "unauthorized")  # a new interval
    assert _shed("standing_queue") == shed_before + 2
