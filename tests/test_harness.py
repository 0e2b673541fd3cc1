"""The harness itself: each test is rolled back, so the next one sees nothing."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from core.extensions import db
from grids.models import Area, AreaLevel
from tests import factories, races


def _count_probe_areas() -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(Area.code == "ROLLBACK-PROBE"))


def test_a_write_is_visible_inside_its_test() -> None:
    factories.make_area(AreaLevel.CITY, code="ROLLBACK-PROBE")
    assert _count_probe_areas() == 1


def test_b_the_next_test_sees_nothing() -> None:
    assert _count_probe_areas() == 0


def test_commit_inside_a_request_is_rolled_back_after_the_test(client, tree) -> None:
    # A request's commit releases only a savepoint; the data stays visible to this test.
    assert client.get("/readyz").status_code == 200
    assert db.session.get(Area, tree.city.id) is not None


# --- race helpers never hang the suite ------------------------------------------------------------


def test_a_race_whose_other_party_never_arrives_fails_instead_of_waiting_forever() -> None:
    start = races.barrier(2, timeout=0.2)
    with pytest.raises(AssertionError, match="BrokenBarrierError"):
        races.run_threads([start.wait])  # the second party never comes


def test_a_thread_still_running_after_the_timeout_fails_the_test() -> None:
    release = threading.Event()
    try:
        with pytest.raises(pytest.fail.Exception, match="1 of 1 threads still running after"):
            races.run_threads([release.wait], timeout=0.2)
    finally:
        release.set()


def test_an_exception_in_a_thread_is_raised_in_the_test() -> None:
    def refuse() -> None:
        raise ValueError("refused")

    with pytest.raises(AssertionError, match="race-1 raised ValueError"):
        races.run_threads([lambda: 1, refuse])
    assert races.run_threads([lambda: 1, lambda: 2]) == [1, 2]
