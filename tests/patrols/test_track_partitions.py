"""Track points in monthly partitions (PostgreSQL): uploads land in their month and still de-duplicate,
months are made ahead (once, however many makers), and retention drops a month whose every point is
due, at the exact edge, while a partly due month is purged row by row."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core import partitions
from core.db import utcnow
from core.extensions import db
from core.tasks import celery
from patrols.models import Patrol
from patrols.privacy import retention
from patrols.service import patrol_for
from patrols.tracks.models import TrackPoint
from tests import factories
from tests.races import run_threads

pytestmark = pytest.mark.postgresql

US = timedelta(microseconds=1)
LAT0, LON0 = 40.655, 109.845  # inside tree.grid_a
TABLE = TrackPoint.__table__


def partition_of(patrol_id: int) -> dict[datetime, str]:
    """Where each of the patrol's points is stored: device time → partition."""
    rows = db.session.execute(
        sa.text(
            "SELECT device_at, CAST(CAST(tableoid AS regclass) AS text) FROM track_points WHERE patrol_id = :patrol"
        ),
        {"patrol": patrol_id},
    ).all()
    return {at.astimezone(UTC): name for at, name in rows}


def partition_names() -> set[str]:
    return {partition.name for partition in partitions.partitions("track_points")}


def patrol_with_points(grid: Any, starts: datetime, ends: datetime, times: list[datetime]) -> Patrol:
    """A patrol of a shift from ``starts`` to ``ends`` with a point at each of ``times``."""
    shift = factories.make_shift(grid)
    shift.starts_at, shift.ends_at = starts, ends
    db.session.flush()
    patrol = patrol_for(factories.make_assignment(shift, factories.make_volunteer(grid)))
    for index, moment in enumerate(times):
        db.session.add(TrackPoint(
            patrol_id=patrol.id, device_at=moment, received_at=moment, lat=LAT0 + index / 10_000, lon=LON0,
        ))
    db.session.flush()
    return patrol


def points_of(patrol: Patrol) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(TrackPoint).where(TrackPoint.patrol_id == patrol.id))


# --- uploads ----------------------------------------------------------------------------------------


def test_a_point_at_a_months_first_instant_lands_in_that_month_and_a_repeat_stores_nothing(client, tree) -> None:
    month = partitions.month_start(utcnow())
    previous = date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
    partitions.ensure_months(TABLE, [previous, month])
    first_instant = partitions.month_bounds(month)[0]
    shift = factories.make_shift(tree.grid_a)
    shift.starts_at, shift.ends_at = first_instant - timedelta(minutes=30), first_instant + timedelta(minutes=30)
    volunteer = factories.make_volunteer(tree.grid_a)
    assignment = factories.make_assignment(shift, volunteer)
    batch = {"points": [
        {"lat": LAT0, "lon": LON0, "time": (first_instant - US).isoformat()},
        {"lat": LAT0 + 0.0001, "lon": LON0, "time": first_instant.isoformat()},
    ]}
    url, headers = f"/api/v1/assignments/{assignment.id}/track", factories.headers_for(volunteer.user)

    stored = client.post(url, json=batch, headers=headers)
    repeated = client.post(url, json=batch, headers=headers)

    assert stored.status_code == 200, stored.get_json()
    assert (stored.get_json()["stored"], repeated.get_json()["stored"], repeated.get_json()["duplicates"]) == (2, 0, 2)
    patrol = db.session.scalar(sa.select(Patrol).where(Patrol.assignment_id == assignment.id))
    assert partition_of(patrol.id) == {
        first_instant - US: partitions.partition_name("track_points", previous),
        first_instant: partitions.partition_name("track_points", month),
    }


# --- making months ----------------------------------------------------------------------------------


def test_making_a_month_moves_its_points_out_of_the_default_partition_and_a_second_run_makes_nothing(tree) -> None:
    db.session.execute(sa.text("SET LOCAL timezone TO 'Asia/Shanghai'"))  # bounds must not follow the zone
    march = datetime(2025, 3, 1, tzinfo=UTC)
    times = [march - US, march, datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)]
    patrol = patrol_with_points(tree.grid_a, march - timedelta(hours=1), march + timedelta(hours=1), times)
    assert set(partition_of(patrol.id).values()) == {"track_points_default"}

    made = partitions.ensure_months(TABLE, [date(2025, 3, 1)])

    assert made == ["track_points_p2025_03"]
    assert partition_of(patrol.id) == {
        times[0]: "track_points_default", times[1]: "track_points_p2025_03",
        times[2]: "track_points_p2025_03", times[3]: "track_points_default",
    }
    march_partition = next(p for p in partitions.partitions("track_points") if p.name == "track_points_p2025_03")
    assert (march_partition.lower, march_partition.upper) == (march, datetime(2025, 4, 1, tzinfo=UTC))
    assert partitions.ensure_months(TABLE, [date(2025, 3, 1)]) == []
    assert points_of(patrol) == 4
    # The new month has the table's keys: a repeat of a moved point is refused, as anywhere else.
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(sa.insert(TrackPoint).values(patrol_id=patrol.id, device_at=times[1], received_at=march, lat=1, lon=1))


def test_the_periodic_task_makes_the_months_ahead(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "PARTITION_MONTHS_AHEAD", 4)
    assert "core.maintain_partitions" in celery.conf.beat_schedule
    months = partitions.months_from(partitions.month_start(utcnow()), 5)
    expected = {partitions.partition_name("track_points", month) for month in months}
    missing = expected - partition_names()

    made = celery.tasks["core.maintain_partitions"].apply().get()

    assert sorted(made["track_points"]) == sorted(missing) and missing  # the migration made three months
    assert expected <= partition_names()
    assert celery.tasks["core.maintain_partitions"].apply().get()["track_points"] == []


# --- retention: dropping whole months ---------------------------------------------------------------


def _config(name: str) -> int:
    from flask import current_app

    return int(current_app.config[name])


def dropped_at(upper: datetime) -> datetime:
    """The first instant a month ending at ``upper`` is wholly due: its last possible point's shift
    (started up to the slack after it, lasting the longest a shift may) ended before the cutoff."""
    return upper + timedelta(
        days=_config("TRACK_RETENTION_DAYS"), hours=_config("SHIFT_MAX_HOURS"), minutes=_config("PATROL_EVENT_SLACK_MINUTES")
    )


def test_a_month_is_dropped_from_the_exact_instant_every_point_is_due_and_a_partly_due_month_row_by_row(tree) -> None:
    partitions.ensure_months(TABLE, [date(2025, 1, 1), date(2025, 2, 1)])
    feb = datetime(2025, 2, 1, tzinfo=UTC)
    january = [
        patrol_with_points(tree.grid_a, feb - timedelta(hours=2), feb - US, [feb - timedelta(hours=1), feb - US]),
        patrol_with_points(tree.grid_a, datetime(2025, 1, 10, tzinfo=UTC), datetime(2025, 1, 10, 3, tzinfo=UTC),
                           [datetime(2025, 1, 10, 1, tzinfo=UTC)]),
    ]
    now = dropped_at(feb)
    cutoff = now - timedelta(days=_config("TRACK_RETENTION_DAYS"))
    # February is only partly due: a shift that ended one microsecond before the cutoff, one at it.
    due = patrol_with_points(tree.grid_a, feb, cutoff - US, [feb, feb + timedelta(hours=1)])
    kept = patrol_with_points(tree.grid_a, feb + timedelta(hours=1), cutoff, [feb + timedelta(hours=2)])

    assert retention.drop_expired_track_partitions(now - US) == []
    assert "track_points_p2025_01" in partition_names() and all(points_of(p) for p in january)

    counts = retention.enforce_retention(now)

    assert counts["track_partitions_dropped"] == 1
    assert "track_points_p2025_01" not in partition_names() and "track_points_p2025_02" in partition_names()
    assert [points_of(patrol) for patrol in january] == [0, 0]
    assert counts["track_points"] == 2  # February's due shift, row by row; January went whole
    assert (points_of(due), points_of(kept)) == (0, 1)
    assert retention.drop_expired_track_partitions(now + timedelta(days=1)) == []  # February: not wholly due


def test_a_month_holding_a_point_of_a_shift_still_kept_stays_and_loses_only_its_due_points(tree) -> None:
    partitions.ensure_months(TABLE, [date(2025, 1, 1)])
    jan = datetime(2025, 1, 10, tzinfo=UTC)
    now = dropped_at(datetime(2025, 2, 1, tzinfo=UTC)) + timedelta(days=30)
    done = patrol_with_points(tree.grid_a, jan, jan + timedelta(hours=2), [jan + timedelta(hours=1)])
    # Its points came in January; its end has since moved (or a fix came another way): still kept.
    moved = patrol_with_points(tree.grid_a, jan, now, [jan + timedelta(minutes=30)])

    assert retention.enforce_retention(now)["track_partitions_dropped"] == 0

    assert "track_points_p2025_01" in partition_names()
    assert (points_of(done), points_of(moved)) == (0, 1)


def test_the_default_partition_is_never_dropped(tree) -> None:
    old = datetime(2024, 6, 1, tzinfo=UTC)
    patrol = patrol_with_points(tree.grid_a, old, old + timedelta(hours=1), [old + timedelta(minutes=5)])
    assert partition_of(patrol.id) == {old + timedelta(minutes=5): "track_points_default"}

    counts = retention.enforce_retention(utcnow())

    assert counts["track_partitions_dropped"] == 0 and points_of(patrol) == 0
    assert "track_points_default" in partition_names()


# --- query plans ------------------------------------------------------------------------------------

QUERIES = {
    "a patrol's track (read, recount)": "SELECT device_at, lat, lon FROM track_points WHERE patrol_id = :patrol ORDER BY device_at",
    "retention: patrols still holding points": (
        "SELECT p.id FROM patrols p JOIN shifts s ON s.id = p.shift_id WHERE s.ends_at < now() "
        "AND EXISTS (SELECT 1 FROM track_points t WHERE t.patrol_id = p.id) ORDER BY p.id LIMIT 50"
    ),
    "retention / own deletion: a patrol's points": "DELETE FROM track_points WHERE patrol_id IN (:patrol)",
    "a month still holds kept points": (
        "SELECT 1 FROM patrols p JOIN shifts s ON s.id = p.shift_id WHERE s.ends_at >= now() "
        "AND EXISTS (SELECT 1 FROM track_points_p2025_01 t WHERE t.patrol_id = p.id) LIMIT 1"
    ),
    "privacy export": (
        "SELECT p.id, t.device_at FROM patrols p JOIN track_points t ON t.patrol_id = p.id "
        "WHERE p.volunteer_id = :volunteer ORDER BY p.id, t.device_at"
    ),
    "upload": (
        "INSERT INTO track_points (patrol_id, device_at, received_at, lat, lon) VALUES (:patrol, now(), now(), 1, 1) "
        "ON CONFLICT (patrol_id, device_at) DO NOTHING"
    ),
}


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
def test_every_query_on_track_points_reaches_each_partition_by_an_index(tree, query: str) -> None:
    partitions.ensure_months(TABLE, [date(2025, 1, 1), date(2025, 2, 1)])
    patrol = patrol_with_points(tree.grid_a, datetime(2025, 1, 5, tzinfo=UTC), datetime(2025, 1, 5, 2, tzinfo=UTC),
                                [datetime(2025, 1, 5, 1, tzinfo=UTC)])
    # Tables this small are read whole when allowed: forbid it, so a partition without an index shows.
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db.session.execute(
        sa.text(f"EXPLAIN {query}"), {"patrol": patrol.id, "volunteer": patrol.volunteer_id}
    ).scalars())
    # Planned with sequential scans off, a partition is still read whole only if no index serves it.
    assert "Seq Scan on track_points" not in plan, plan
    if "track_points_p2025_01" not in query and not query.startswith("INSERT"):
        # Through the table: every partition, the default one too, is reached by its index.
        assert re.search(r"Index (Only )?Scan (using|on) track_points_default_", plan), plan


# --- two makers at once -----------------------------------------------------------------------------


@pytest.mark.committing
def test_two_makers_at_once_make_each_month_once(app: Flask) -> None:
    months = [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]

    def make() -> list[str]:
        with app.app_context():
            made = partitions.ensure_months(TABLE, months)
            db.session.commit()
            return made

    try:
        first, second = run_threads([make, make])
        with app.app_context():
            names = partition_names()
        assert sorted(first + second) == [partitions.partition_name("track_points", month) for month in months]
        assert {partitions.partition_name("track_points", month) for month in months} <= names
    finally:
        with app.app_context(), db.engine.begin() as connection:
            for month in months:
                connection.execute(sa.text(f'DROP TABLE IF EXISTS "{partitions.partition_name("track_points", month)}"'))


def test_a_partition_is_named_and_recognised_by_its_month() -> None:
    assert partitions.partition_name("track_points", date(2027, 1, 1)) == "track_points_p2027_01"
    assert partitions.is_partition_name("track_points_p2027_01") and partitions.is_partition_name("track_points_default")
    assert not partitions.is_partition_name("track_points") and not partitions.is_partition_name("patrols_p2027_01")
    assert partitions.months_from(date(2026, 11, 1), 4) == [date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)]


@pytest.mark.committing
def test_a_busy_month_waits_for_the_next_run_and_the_rest_of_retention_goes_on(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "100ms")
    may, name = datetime(2024, 5, 10, tzinfo=UTC), "track_points_p2024_05"
    try:
        with app.app_context():
            grid = factories.make_branch()[-1]
            partitions.ensure_months(TABLE, [date(2024, 5, 1)])
            in_may = patrol_with_points(grid, may, may + timedelta(hours=2), [may + timedelta(hours=1)])
            in_default = patrol_with_points(grid, may - timedelta(days=400), may - timedelta(days=400) + US, [may - timedelta(days=400)])
            db.session.commit()
            patrols = (in_may.id, in_default.id)
            blocker = db.engine.connect()  # a writer of May's partition, mid-transaction
        blocker.begin()
        blocker.execute(sa.text(f'LOCK TABLE "{name}" IN ROW EXCLUSIVE MODE'))
        try:
            with app.app_context():
                busy = retention.enforce_retention(utcnow())
                db.session.commit()
                assert name in partition_names()
        finally:
            blocker.rollback()
            blocker.close()
        with app.app_context():
            assert busy["track_partitions_dropped"] == 0 and busy["track_points"] == 2  # row by row meanwhile
            left = db.session.scalar(sa.select(sa.func.count()).select_from(TrackPoint).where(TrackPoint.patrol_id.in_(patrols)))
            again = retention.enforce_retention(utcnow())
            db.session.commit()
            assert left == 0 and again["track_partitions_dropped"] == 1 and name not in partition_names()
    finally:
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
