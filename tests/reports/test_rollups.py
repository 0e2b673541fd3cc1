"""The daily roll-ups (reports/rollups/): folded in at every commit, whoever writes and however
(ORM, Core statements, text SQL), read by the area reports, checked and rebuilt from the rows,
and exact under concurrent commits.

The hand-built month of ``test_participation`` is the world; its reports' every figure is asserted
there (and they now read the roll-ups). Here: the rows themselves, each kind of change, the
repair commands and a race.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel
from patrols.models import Patrol, PresenceStatus
from patrols.reports.models import Report
from reports.replica import reading_reports
from reports.rollups import cli as rollups
from reports.rollups.models import GridDay, GridDayBadge, RollupChange, VolunteerMonth
from reports.rollups.read import period_months
from reports.rollups.tasks import sweep_changes
from rewards.awarding.models import ServiceRecord
from rewards.badges.models import VolunteerBadge
from shifts.models import Shift
from tests import factories
from tests.races import barrier, run_threads
from tests.reports.test_participation import _place, _shift, local, month, urumqi  # noqa: F401  (the fixture)
from volunteers.models import Volunteer


def _row(grid: Area, day: date) -> dict[str, int]:
    row = db.session.get(GridDay, (grid.id, day))
    assert row is not None, (grid.id, day)
    names = ("planned", "places_planned", "places_filled", "assignments", "served", "no_shows", "served_minutes")
    return {name: getattr(row, name) for name in names}


def _september(client: Any, month: dict[str, Any], area: Area) -> dict[str, Any]:
    response = client.get(
        "/api/v1/reports/participation",
        query_string={"area_id": area.id, "period": "month", "value": "2026-09"},
        headers=factories.headers_for(month["staff"]),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_commit_folds_the_rows_in_per_grid_and_local_day(month: dict[str, Any]) -> None:
    db.session.commit()
    # s1, 22:00 on 10 September across midnight: v1 served 240 minutes, v2 absent, v4 (a backup
    # promoted in v2's place) served 180; three primaries held two places.
    assert _row(month["grid_a"], date(2026, 9, 10)) == {
        "planned": 1, "places_planned": 2, "places_filled": 2, "assignments": 3, "served": 2, "no_shows": 1,
        "served_minutes": 420,
    }
    # su1 starts at 23:00 on 30 September in Urumqi (1 October in Shanghai): Urumqi's day.
    assert _row(month["grid_u"], date(2026, 9, 30))["served_minutes"] == 120
    assert db.session.get(GridDay, (month["grid_u"].id, date(2026, 10, 1))) is None
    # v5 served on 30 September and 31 August (Urumqi dates, their home grid's zone).
    masks = dict(db.session.execute(
        sa.select(VolunteerMonth.month, VolunteerMonth.served_days).where(
            VolunteerMonth.volunteer_id == month["v5"].id, VolunteerMonth.served_days != 0
        )
    ).tuples().all())
    assert masks == {date(2026, 9, 1): 1 << 29, date(2026, 8, 1): 1 << 30}
    assert rollups.check() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RollupChange)) == 0


def test_the_area_report_reads_the_rollups_and_check_and_rebuild_repair_them(
    client: Any, month: dict[str, Any]
) -> None:
    db.session.commit()
    district, grid_a = month["district"], month["grid_a"]
    planned = _september(client, month, district)["figures"]["shifts"]["planned"]
    db.session.execute(
        sa.update(GridDay).where(GridDay.grid_id == grid_a.id, GridDay.day == date(2026, 9, 10)).values(planned=6)
    )
    db.session.commit()
    assert _september(client, month, district)["figures"]["shifts"]["planned"] == planned + 5
    mismatches = rollups.check()
    assert [(m["grid_id"], m["day"], m["stored"]["planned"], m["expected"]["planned"]) for m in mismatches] == [
        (grid_a.id, "2026-09-10", 6, 1)
    ]
    assert rollups.check(area_id=month["subdistrict_2"].id) == []  # another subtree: not looked at
    rollups.rebuild(area_id=district.id)
    assert rollups.check() == []
    assert _september(client, month, district)["figures"]["shifts"]["planned"] == planned


def test_the_commands_check_and_rebuild(app: Flask, month: dict[str, Any]) -> None:
    db.session.commit()
    db.session.execute(sa.update(GridDay).values(served_minutes=GridDay.served_minutes + 1))
    db.session.commit()
    runner = app.test_cli_runner()
    checked = runner.invoke(args=["reports", "rollups", "check", "--area", str(month["district"].id)])
    assert checked.exit_code == 1 and "mismatches." in checked.output
    rebuilt = runner.invoke(args=["reports", "rollups", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    again = runner.invoke(args=["reports", "rollups", "check"])
    assert (again.exit_code, again.output.strip()) == (0, "0 mismatches.")
    unknown = runner.invoke(args=["reports", "rollups", "check", "--area", "999999"])
    assert unknown.exit_code == 2


def _exact() -> None:
    db.session.commit()
    assert rollups.check() == []


def test_every_kind_of_change_is_folded_in_at_its_commit(month: dict[str, Any]) -> None:
    _exact()
    grid_a, grid_b, grid_u = month["grid_a"], month["grid_b"], month["grid_u"]
    v1 = month["volunteers"][0]
    # ORM: a shift moved three days on (both days change), then cancelled.
    shift = db.session.scalars(sa.select(Shift).where(Shift.grid_id == grid_a.id).order_by(Shift.starts_at)).first()
    assert shift is not None
    shift.starts_at += timedelta(days=3)
    shift.ends_at += timedelta(days=3)
    _exact()
    shift.status = "cancelled"
    _exact()
    # A Core UPDATE: the presence held in review is rejected.
    db.session.execute(
        sa.update(Patrol).where(Patrol.id == month["held"].id).values(presence_status=PresenceStatus.REJECTED)
    )
    _exact()
    # Text SQL: a ledger entry.
    db.session.execute(
        sa.text(
            "INSERT INTO ledger_entries (volunteer_id, amount, reason, source_type, source_id, created_at) "
            "VALUES (:v, 7, 'adjustment', 'test', 'rollups-1', :at)"
        ),
        {"v": v1.id, "at": local(9, 21, 8)},
    )
    _exact()
    # A volunteer moves home into the other zone's grid: their points and served days move.
    db.session.execute(sa.update(Volunteer).where(Volunteer.id == v1.id).values(home_grid_id=grid_u.id))
    _exact()
    # A grid changes its time zone: every day of it is placed afresh.
    area = db.session.get(Area, grid_b.id)
    assert area is not None
    area.timezone = "Asia/Urumqi"
    _exact()
    # A report deleted (its events go with it); a hand-entered record voided.
    report = db.session.scalars(sa.select(Report).where(Report.grid_id == grid_a.id)).first()
    db.session.delete(report)
    _exact()
    db.session.execute(
        sa.update(ServiceRecord).where(ServiceRecord.source_type == "manual").values(voided_at=local(11, 1))
    )
    _exact()


def _statements_at_commit(matching: Callable[[str], bool]) -> int:
    """How many statements ``matching`` their SQL the next commit runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if matching(statement):
            seen.append(statement)

    engine = db.session.get_bind()
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        db.session.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return len(seen)


def _series_queries_at_commit() -> int:
    """How many grouped series queries (keyed by grid path and day) the next commit runs."""
    return _statements_at_commit(lambda sql: "||" in sql and "GROUP BY" in sql)


def _served_days_recounts_at_commit() -> int:
    """How many recounts of volunteers' served days (``served_patrols`` by volunteer) the next commit runs."""
    return _statements_at_commit(lambda sql: sql.startswith("SELECT patrols.volunteer_id, shifts.starts_at"))


def test_a_shifts_served_patrols_recount_their_volunteers_together(month: dict[str, Any]) -> None:
    _exact()
    grid = month["grid_a"]
    alone, crowd = _shift(grid, local(9, 14, 9), 2, places=1), _shift(grid, local(9, 15, 9), 2, places=6)
    _place(alone, factories.make_volunteer(grid), presence_status="verified", served_minutes=120)
    one = _served_days_recounts_at_commit()
    assert one > 0
    people = [factories.make_volunteer(grid) for _ in range(6)]
    for volunteer in people:
        _place(crowd, volunteer, presence_status="verified", served_minutes=120)
    # Six volunteers' served days, each on a shift of six: recounted together, not one by one.
    assert _served_days_recounts_at_commit() == one
    _exact()
    masks = dict(db.session.execute(
        sa.select(VolunteerMonth.volunteer_id, VolunteerMonth.served_days).where(
            VolunteerMonth.volunteer_id.in_([v.id for v in people]), VolunteerMonth.month == date(2026, 9, 1)
        )
    ).tuples().all())
    assert masks == {v.id: 1 << 14 for v in people}


def test_one_commit_over_many_grids_recomputes_them_together(month: dict[str, Any]) -> None:
    _exact()
    community = month["community"]
    one = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(109.70, 40.70))
    first = factories.make_shift(one, max_headcount=2)
    first.starts_at, first.ends_at = local(9, 12, 9), local(9, 12, 11)
    db.session.flush()
    alone = _series_queries_at_commit()
    assert alone > 0

    grids = [factories.make_area(AreaLevel.GRID, community, boundary=factories.square(109.71 + i / 100, 40.70)) for i in range(6)]
    for index, grid in enumerate(grids):
        shift = factories.make_shift(grid, max_headcount=index + 1)
        shift.starts_at, shift.ends_at = local(9, 12, 9), local(9, 12, 11)
    db.session.flush()
    # Six grids of one zone whose days lie close together: the same queries as one grid.
    assert _series_queries_at_commit() == alone
    assert [_row(grid, date(2026, 9, 12))["places_planned"] for grid in grids] == [1, 2, 3, 4, 5, 6]
    assert rollups.check() == []

    # One transaction over both zones and days months apart: each grid day still exact.
    far = factories.make_shift(grids[0], max_headcount=9)
    far.starts_at, far.ends_at = local(12, 28, 9), local(12, 28, 11)
    moved = db.session.scalars(sa.select(Shift).where(Shift.grid_id == grids[1].id)).one()
    moved.starts_at, moved.ends_at = local(9, 13, 9), local(9, 13, 11)
    urumqi_shift = factories.make_shift(month["grid_u"], max_headcount=4)
    urumqi_shift.starts_at, urumqi_shift.ends_at = urumqi(9, 12, 23, 30), urumqi(9, 13, 1)
    _exact()
    assert _row(grids[0], date(2026, 12, 28))["places_planned"] == 9
    assert _row(grids[1], date(2026, 9, 12))["places_planned"] == 0
    assert _row(grids[1], date(2026, 9, 13))["places_planned"] == 2
    assert _row(month["grid_u"], date(2026, 9, 12))["places_planned"] == 4


def test_the_sweep_folds_changes_no_commit_took(month: dict[str, Any]) -> None:
    db.session.flush()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RollupChange)) > 0
    assert sweep_changes() > 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RollupChange)) == 0
    assert rollups.check() == []


@pytest.mark.committing
def test_concurrent_commits_on_one_grid_day_are_all_counted(app: Flask) -> None:
    """Each of four transactions records a served patrol on the same shift and commits at once
    with the others: the roll-up counts all four (a recomputation that missed another's commit
    would keep the last writer's view)."""
    with app.app_context():
        *_, grid = factories.make_branch()
        shift = factories.make_shift(grid, max_headcount=4)
        places = []
        for _ in range(4):
            volunteer = factories.make_volunteer(grid)
            places.append((factories.make_assignment(shift, volunteer).id, volunteer.id))
        db.session.commit()
        shift_id, grid_id = shift.id, grid.id
        day = shift.starts_at.astimezone(ZoneInfo(grid.timezone)).date()
    gate = barrier(len(places))

    def serve(assignment_id: int, volunteer_id: int) -> None:
        with app.app_context():
            gate.wait()  # before the first write: SQLite's writer lock is taken there
            db.session.add(Patrol(
                assignment_id=assignment_id, volunteer_id=volunteer_id, shift_id=shift_id,
                presence_status=PresenceStatus.VERIFIED, served_minutes=60,
            ))
            db.session.commit()

    run_threads([lambda a=a, v=v: serve(a, v) for a, v in places])
    with app.app_context():
        rows = db.session.execute(sa.select(GridDay.served, GridDay.served_minutes).where(
            GridDay.grid_id == grid_id, GridDay.day == day)).all()
        assert [tuple(row) for row in rows] == [(4, 240)]
        assert rollups.check() == []


def test_days_whose_shifts_may_still_run_are_read_live(client: Any) -> None:
    """A roll-up's presence counts every shift of its day, ended or not; a report counts only
    shifts ended by ``as_of``, so days a shift may still be running on are read from the rows."""
    *_, district, _subdistrict, _community, grid = factories.make_branch()
    staff = factories.make_user("staff", district)
    now = utcnow()
    for starts_ago in (timedelta(days=4), timedelta(hours=3), timedelta(hours=1)):  # settled, ended, running
        shift = factories.make_shift(grid, max_headcount=1)
        shift.starts_at, shift.ends_at = now - starts_ago, now - starts_ago + timedelta(hours=2)
        db.session.flush()
        factories.make_assignment(shift, factories.make_volunteer(grid))
    today = now.astimezone(ZoneInfo(grid.timezone)).date()
    response = client.get(
        "/api/v1/reports/participation",
        query_string={"area_id": district.id, "from": (today - timedelta(days=5)).isoformat(), "to": today.isoformat()},
        headers=factories.headers_for(staff),
    )
    assert response.status_code == 200, response.get_json()
    figures = response.get_json()["figures"]
    assert (figures["shifts"]["planned"], figures["presence"]["assignments"]) == (3, 2)


def test_a_periods_days_as_bits_of_its_months() -> None:
    """Bit 0 is the 1st; a period's first and last months keep only their days inside it."""
    assert period_months(date(2026, 2, 27), date(2026, 3, 2)) == {
        date(2026, 2, 1): (1 << 26) | (1 << 27),  # the 27th and 28th (2026 is no leap year)
        date(2026, 3, 1): 0b11,
    }
    assert period_months(date(2028, 2, 1), date(2028, 2, 29)) == {date(2028, 2, 1): (1 << 29) - 1}
    assert period_months(date(2026, 12, 31), date(2026, 12, 31)) == {date(2026, 12, 1): 1 << 30}


def test_a_check_in_records_no_change_until_its_presence_counts() -> None:
    """The check-in path writes a verified patrol without served minutes, which changes no figure:
    the trigger records nothing for it; the check-out's minutes, or review, do."""
    *_, grid = factories.make_branch()
    shift = factories.make_shift(grid)
    volunteer = factories.make_volunteer(grid)
    assignment = factories.make_assignment(shift, volunteer)
    factories.fold_into_rollups()

    def recorded() -> int:
        db.session.flush()
        return db.session.scalar(sa.select(sa.func.count()).select_from(RollupChange)) or 0

    patrol = Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id,
                    presence_status=PresenceStatus.VERIFIED)
    db.session.add(patrol)
    assert recorded() == 0
    patrol.served_minutes = 60
    assert recorded() > 0
    factories.fold_into_rollups()
    patrol.presence_status = PresenceStatus.NEEDS_REVIEW
    assert recorded() > 0


def test_a_rebuild_spans_every_kind_of_row() -> None:
    """A rebuild's default span is the first to the last day any counted row falls on: a badge
    earned after every other row still gets its day rebuilt."""
    *_, grid = factories.make_branch()
    volunteer = factories.make_volunteer(grid)
    db.session.add(VolunteerBadge(volunteer_id=volunteer.id, badge="star_1", earned_at=local(12, 30, 9)))
    factories.fold_into_rollups()
    assert db.session.scalar(sa.select(sa.func.sum(GridDayBadge.earned))) == 1
    db.session.execute(sa.delete(GridDayBadge))
    assert rollups.check() != []
    rollups.rebuild()
    assert db.session.scalar(sa.select(sa.func.sum(GridDayBadge.earned))) == 1
    assert rollups.check() == []


@pytest.mark.postgresql
def test_reports_plan_every_statement_for_its_arguments(app: Flask) -> None:
    """A generic plan (PostgreSQL's, for a statement prepared and run often) knows neither the
    area's path nor the period: reports force plans made for their arguments, and only they."""
    with app.app_context():
        assert db.session.scalar(sa.text("SHOW plan_cache_mode")) == "auto"
    with app.app_context(), reading_reports():
        assert db.session.scalar(sa.text("SHOW plan_cache_mode")) == "force_custom_plan"


def _folds_at_commit() -> int:
    """How many statements on ``report_rollup_changes`` (the fold's ``DELETE … RETURNING``) the next commit runs."""
    return _statements_at_commit(lambda sql: "report_rollup_changes" in sql)


def test_a_commit_folds_only_when_its_transaction_recorded_a_change() -> None:
    """On PostgreSQL the database tells the connection that a statement recorded a change (a
    notice, migration 0024): a transaction that recorded none commits without the fold's round
    trip, one that did is folded as before, whoever recorded it. SQLite folds at every commit."""
    *_, grid = factories.make_branch()
    shift = factories.make_shift(grid)
    volunteer = factories.make_volunteer(grid)
    assignment = factories.make_assignment(shift, volunteer)
    _exact()
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    patrol = Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id,
                    presence_status=PresenceStatus.VERIFIED)
    db.session.add(patrol)
    assert _folds_at_commit() == (0 if postgresql else 1)  # a check-in: nothing recorded
    patrol.served_minutes = 60
    assert _folds_at_commit() == 1
    assert rollups.check() == []
    # Recorded by a text statement, then a statement that records nothing: still folded.
    db.session.execute(sa.text("UPDATE patrols SET served_minutes = 90 WHERE id = :id"), {"id": patrol.id})
    db.session.execute(sa.text("UPDATE patrols SET updated_at = updated_at WHERE id = :id"), {"id": patrol.id})
    assert _folds_at_commit() == 1
    assert rollups.check() == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RollupChange)) == 0


@pytest.mark.postgresql
@pytest.mark.parametrize("options", ["", "-c client_min_messages=warning"])
def test_a_connection_counts_the_statements_that_recorded_a_change_when_their_notices_reach_it(
    app: Flask, options: str
) -> None:
    """One notice per statement that records, however many changes it records; a connection whose
    notices are held back (``client_min_messages`` above NOTICE) cannot tell, so it always folds."""
    from reports.rollups.listeners import _NOTICES

    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"], connect_args={"options": options} if options else {})
    record = sa.text("INSERT INTO report_rollup_changes (tx, kind, grid_id, day) "
                     "SELECT txid_current(), 'manual', 0, DATE '2026-09-01' FROM generate_series(1, :n)")
    try:
        with engine.connect() as connection:
            counted = options == ""
            assert connection.info[_NOTICES] == (0 if counted else None)
            connection.execute(sa.text("SELECT 1"))
            connection.execute(record, {"n": 3})
            assert connection.info[_NOTICES] == (1 if counted else None)
            connection.execute(record, {"n": 1})
            assert connection.info[_NOTICES] == (2 if counted else None)
            connection.rollback()
    finally:
        engine.dispose()
