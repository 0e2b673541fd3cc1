"""The per-grid rows the boards count and sum (``leaderboard_grid_totals``), and the home grid and
status each total carries: kept by the writers and by triggers, whoever writes; exact at the edges
of a period and of an area's subtree; right under concurrent writes (issue 19)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from core.extensions import db
from grids.models import AreaLevel
from rewards.awarding import service as awarding
from rewards.awarding.models import ServiceRecord
from rewards.leaderboards import totals
from rewards.leaderboards.models import LeaderboardGridChange, LeaderboardTotal
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, LedgerReason
from tests import factories, races
from tests.conftest import Tree
from tests.factories import headers_for
from volunteers.models import Volunteer

API = "/api/v1/leaderboards"
BAOTOU = timedelta(hours=8)


def this_month() -> str:
    """The month an entry appended now counts in (the test grids' zone)."""
    return datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")


def earn(volunteer: Any, points: int, at: datetime | None = None, reason: str = LedgerReason.ADJUSTMENT) -> LedgerEntry:
    """An earning counted as the ledger counts it (``ledger.append``), dated ``at`` if given."""
    entry = ledger.append(volunteer.id, points, reason, "test", uuid.uuid4().hex)
    assert entry is not None
    if at is not None:  # test data of the past: recount the volunteer from the dated entry
        db.session.execute(sa.update(LedgerEntry).where(LedgerEntry.id == entry.id).values(created_at=at))
        totals.rebuild([volunteer.id])
    db.session.flush()
    return entry


def grid_row(period: str, grid_id: int) -> tuple[int, ...] | None:
    """The grid's figures as boards read them: (minutes, points, ranked by minutes, by points)."""
    figures = totals.grid_figures(period)
    row = db.session.execute(sa.select(*(figures.c[n] for n in totals.FIGURES)).where(figures.c.grid_id == grid_id)).first()
    return None if row is None else tuple(int(v) for v in row)


def board(client: Any, user: Any, query: str) -> dict[str, Any]:
    response = client.get(f"{API}?{query}", headers=headers_for(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def homes_agree() -> list[tuple[int, int, bool]]:
    """Totals whose home grid or status differ from their volunteer's (none when the trigger works)."""
    rows = db.session.execute(
        sa.select(LeaderboardTotal.volunteer_id, LeaderboardTotal.home_grid_id, LeaderboardTotal.volunteer_active)
        .join(Volunteer, Volunteer.id == LeaderboardTotal.volunteer_id)
        .where(
            sa.or_(
                LeaderboardTotal.home_grid_id != Volunteer.home_grid_id,
                LeaderboardTotal.volunteer_active != (Volunteer.status == "active"),
            )
        )
    )
    return [tuple(row) for row in rows]


def test_the_ledger_and_awarding_move_the_grid_rows_as_they_write(tree: Tree) -> None:
    ann = factories.make_volunteer(tree.grid_a)
    bo = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    earn(ann, 30)
    earn(bo, 5)
    earn(bo, -5)  # an adjustment back to 0: bo is no longer ranked by points
    awarding.award_manual_hours(bo.id, tree.grid_a, date(2026, 11, 2), 90, note="清扫", actor_id=organiser.id)
    assert grid_row(this_month(), tree.grid_a.id) == (0, 30, 0, 1)
    assert grid_row("2026-11", tree.grid_a.id) == (90, 0, 1, 0)
    assert totals.grid_mismatches() == []


def test_a_status_change_or_a_move_takes_the_volunteer_with_their_totals(client, tree: Tree) -> None:
    ann = factories.make_volunteer(tree.grid_a, real_name="安娜")
    bo = factories.make_volunteer(tree.grid_a, real_name="博文")
    staff_a, staff_b = factories.make_user("staff", tree.district_a), factories.make_user("staff", tree.district_b)
    for volunteer, points in ((ann, 40), (bo, 20)):
        earn(volunteer, points, datetime(2026, 11, 5, 4, tzinfo=UTC))
    query_a = f"area_id={tree.district_a.id}&period=month&value=2026-11&metric=points"
    query_b = f"area_id={tree.district_b.id}&period=month&value=2026-11&metric=points"
    assert board(client, staff_a, query_a)["ranked"] == 2

    ann.status = "suspended"  # the ORM
    db.session.flush()
    suspended = board(client, staff_a, query_a)
    assert (suspended["ranked"], [r["name"] for r in suspended["items"]]) == (1, ["博文"])
    assert grid_row("2026-11", tree.grid_a.id) == (0, 20, 0, 1)
    db.session.execute(sa.update(Volunteer).where(Volunteer.id == ann.id).values(status="active"))  # plain SQL
    assert board(client, staff_a, query_a)["ranked"] == 2

    bo.home_grid_id = tree.grid_b.id  # moves to the other district, totals and all
    db.session.flush()
    assert [(r["name"], r["points"]) for r in board(client, staff_a, query_a)["items"]] == [("安娜", 40)]
    moved = board(client, staff_b, query_b)
    assert (moved["ranked"], moved["items"][0]["grid_name"]) == (1, tree.grid_b.name)
    assert grid_row("2026-11", tree.grid_a.id) == (0, 40, 0, 1)
    assert grid_row("2026-11", tree.grid_b.id) == (0, 20, 0, 1)
    assert homes_agree() == [] and totals.grid_mismatches() == []


def test_folding_the_changes_keeps_the_figures_and_empties_the_changes(client, tree: Tree) -> None:
    ann, bo = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a_east)
    staff = factories.make_user("staff", tree.district_a)
    earn(ann, 40)
    earn(bo, 25)
    query = f"area_id={tree.district_a.id}&period=month&value={this_month()}&metric=points"
    before = board(client, staff, query)
    changes = db.session.scalar(sa.select(sa.func.count()).select_from(LeaderboardGridChange))
    assert changes and totals.fold_grid_changes() == changes
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LeaderboardGridChange)) == 0
    assert board(client, staff, query) == before and before["ranked"] == 2
    earn(bo, 30)  # after a fold: the folded row plus the new change
    assert grid_row(this_month(), tree.grid_a_east.id) == (0, 55, 0, 1)
    assert totals.fold_grid_changes() > 0 and grid_row(this_month(), tree.grid_a_east.id) == (0, 55, 0, 1)
    assert totals.fold_grid_changes() == 0
    assert totals.grid_mismatches() == []


def test_the_first_instant_of_a_month_and_a_year_belongs_to_it(client, tree: Tree) -> None:
    """Baotou's midnight of 1 January is 16:00 UTC on 31 December: the instant before is last year's."""
    ann, bo = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    staff = factories.make_user("staff", tree.district_a)
    new_year = datetime(2027, 1, 1) - BAOTOU  # 2027-01-01T00:00+08:00, in UTC
    earn(ann, 7, new_year.replace(tzinfo=UTC))
    earn(bo, 3, (new_year - timedelta(microseconds=1)).replace(tzinfo=UTC))

    def ranked(period: str, value: str) -> list[tuple[int, int]]:
        answer = board(client, staff, f"area_id={tree.district_a.id}&period={period}&value={value}&metric=points")
        return [(r["volunteer_id"], r["points"]) for r in answer["items"]]

    assert ranked("month", "2027-01") == [(ann.id, 7)] and ranked("year", "2027") == [(ann.id, 7)]
    assert ranked("month", "2026-12") == [(bo.id, 3)] and ranked("year", "2026") == [(bo.id, 3)]
    assert totals.grid_mismatches() == []


def test_an_area_whose_path_starts_like_a_siblings_is_not_its_subtree(client, tree: Tree) -> None:
    """``/…/970002/`` and ``/…/9700023/``: string prefixes of each other, neither inside the other."""
    near = factories.make_area(AreaLevel.COMMUNITY, tree.subdistrict_a, area_id=970002)
    far = factories.make_area(AreaLevel.COMMUNITY, tree.subdistrict_a, area_id=9700023)
    assert far.path.startswith(near.path[:-1])
    near_grid, far_grid = factories.make_area(AreaLevel.GRID, near), factories.make_area(AreaLevel.GRID, far)
    mine, theirs = factories.make_volunteer(near_grid), factories.make_volunteer(far_grid)
    earn(mine, 10, datetime(2026, 11, 5, 4, tzinfo=UTC))
    earn(theirs, 99, datetime(2026, 11, 5, 4, tzinfo=UTC))
    query = "period=month&value=2026-11&metric=points"
    organiser = factories.make_user("organiser", near)
    answer = board(client, organiser, f"area_id={near.id}&{query}")
    assert (answer["ranked"], [r["volunteer_id"] for r in answer["items"]]) == (1, [mine.id])
    own = board(client, mine.user, f"area_id={near.id}&{query}")
    assert own["me"]["rank"] == 1
    by_grid = board(client, organiser, f"area_id={near.id}&by=grid&{query}")
    assert [(r["area_id"], r["points"]) for r in by_grid["items"]] == [(near_grid.id, 10)]


def served(volunteer_id: int, day: date, minutes: int) -> None:
    """A service record counted as its writers count it (``count_service``)."""
    db.session.add(ServiceRecord(
        volunteer_id=volunteer_id, source_type="manual", source_id=uuid.uuid4().hex, minutes=minutes,
        served_on=day, grid_id=db.session.get(Volunteer, volunteer_id).home_grid_id,
    ))
    db.session.flush()
    totals.count_service(volunteer_id, day, minutes)


#: Commits per thread in the race (a month of 2025 each): enough that an unlocked read of a changing
#: status shows.
ROUNDS = 6


@pytest.mark.committing
@pytest.mark.postgresql  # the row locks under test are PostgreSQL's; SQLite runs one writer at a time
def test_concurrent_points_moves_and_suspensions_leave_the_grid_rows_exact(app: Flask) -> None:
    """Earnings for one grid's volunteers from several threads at once, while one of them is
    suspended and reinstated and another moves between grids and back, each step committed: at
    the end every total carries its volunteer's home and status, and every grid's figures are the
    sum of its totals (the share lock of the upsert against the trigger on volunteers; the grid
    changes are inserts, which never wait on each other)."""
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        grid, other = factories.make_area(AreaLevel.GRID, city), factories.make_area(AreaLevel.GRID, city)
        volunteers = [factories.make_volunteer(grid) for _ in range(4)]
        ids = [v.id for v in volunteers]
        grid_id, other_id = grid.id, other.id
        db.session.commit()
        db.session.remove()
    barrier = races.barrier(6)

    def earner(thread: int) -> None:
        with app.app_context():
            barrier.wait()
            for n in range(ROUNDS):
                for target in ids:  # every thread writes every volunteer: rows shared by all
                    ledger.append(target, 1 + thread % 3, LedgerReason.ADJUSTMENT, "race", uuid.uuid4().hex)
                    # Service in a period nobody has counted yet: a total row inserted, not updated,
                    # while the volunteer's status or home may be changing.
                    served(target, date(2025, 1 + n, 1 + thread), 30)
                db.session.commit()
            db.session.remove()

    def changer(column: str, values: tuple[Any, Any], volunteer_id: int) -> None:
        with app.app_context():
            barrier.wait()
            for n in range(ROUNDS + 1):
                db.session.execute(
                    sa.update(Volunteer).where(Volunteer.id == volunteer_id).values({column: values[n % 2]})
                )
                db.session.commit()
            db.session.remove()

    races.run_threads(
        [*(lambda thread=thread: earner(thread) for thread in range(len(ids))),
         lambda: changer("status", ("suspended", "active"), ids[0]),
         lambda: changer("home_grid_id", (other_id, grid_id), ids[1])]
    )
    with app.app_context():
        assert homes_agree() == []
        assert totals.grid_mismatches() == []
        assert totals.mismatches(ids) == []
        # Suspended last (steps: suspended, active, …, suspended) and moved last to ``other``.
        assert db.session.get(Volunteer, ids[0]).status == "suspended"
        assert grid_row(this_month(), grid_id)[3] == 2  # ranked by points: the two neither suspended nor moved
        assert grid_row(this_month(), other_id)[3] == 1


@pytest.mark.committing
@pytest.mark.postgresql  # a row lock held from one thread while the other counts; pg_stat_activity sees it wait
def test_points_counted_while_a_suspension_commits_wait_for_it_and_read_the_new_status(app: Flask) -> None:
    """The suspension's trigger has rewritten the volunteer's totals but not committed when service
    in a new month is counted: the count must wait for the volunteer row (the upsert's share lock)
    and write the new row as inactive. Read around the lock, it would insert the row as active,
    after the trigger ran, and the board would rank a suspended volunteer."""
    with app.app_context():
        grid = factories.make_area(AreaLevel.GRID, factories.make_area(AreaLevel.CITY))
        volunteer_id = factories.make_volunteer(grid).id
        db.session.commit()
        db.session.remove()
    suspended, counted = threading.Event(), threading.Event()
    waited: list[bool] = []

    def suspend() -> None:
        with app.app_context():
            db.session.execute(sa.update(Volunteer).where(Volunteer.id == volunteer_id).values(status="suspended"))
            suspended.set()
            waited.append(races.hold_until_waited_on(app, "WITH home AS", counted))
            db.session.commit()
            db.session.remove()

    def count() -> None:
        with app.app_context():
            assert suspended.wait(races.TIMEOUT_SECONDS)
            served(volunteer_id, date(2025, 3, 1), 30)  # a period not counted yet: a row inserted
            db.session.commit()
            counted.set()
            db.session.remove()

    races.run_threads([suspend, count])
    with app.app_context():
        assert homes_agree() == []
        assert db.session.execute(
            sa.select(LeaderboardTotal.period, LeaderboardTotal.volunteer_active).where(LeaderboardTotal.volunteer_id == volunteer_id)
            .order_by(LeaderboardTotal.period)
        ).tuples().all() == [("2025", False), ("2025-03", False)]
        assert totals.grid_mismatches() == []
    assert waited == [True]
