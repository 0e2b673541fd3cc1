"""Shift reminders: which places, which offsets per city, once each however often the scheduler runs;
a city's reminder settings through the API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel
from notifications.models import Notification
from notifications.quiet_hours.models import NotificationSettings
from notifications.reminders.models import CityReminderSettings
from notifications.reminders.service import dedupe_key, reminder_offsets, schedule_due_reminders, shown_lead
from shifts.models import Shift
from tests import factories, races
from tests.problems import EN, assert_problem
from volunteers.models import Volunteer

API = "/api/v1"
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def midday_tomorrow() -> datetime:
    """A scheduler run at noon in the areas' zone (Asia/Shanghai, UTC+8): outside everyone's quiet
    hours (22:00-07:00), so a reminder goes at once whatever time the suite runs."""
    return (utcnow() + timedelta(days=1)).replace(hour=4, minute=0, second=0, microsecond=0)


def make_shift_at(grid: Area, starts_at: datetime, **extra: Any) -> Shift:
    shift = factories.make_shift(grid, **extra)
    shift.starts_at, shift.ends_at = starts_at, starts_at + 2 * HOUR
    db.session.flush()
    return shift


def reminders() -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification).where(Notification.kind == "shift_reminder").order_by(Notification.id)
        )
    )


def keys() -> set[tuple[int, str]]:
    return {(row.user_id, row.dedupe_key) for row in reminders()}


def new_city(name: str = "乌海市") -> Area:
    city = factories.make_area(AreaLevel.CITY, name=name)
    district = factories.make_area(AreaLevel.DISTRICT, city)
    subdistrict = factories.make_area(AreaLevel.SUBDISTRICT, district)
    community = factories.make_area(AreaLevel.COMMUNITY, subdistrict)
    return factories.make_area(AreaLevel.GRID, community, boundary=factories.square(106.8, 39.6))


# ------------------------------------------------------------------------------ offsets and once


def test_each_offset_is_sent_once_however_often_the_scheduler_runs(tree: Any) -> None:
    now = midday_tomorrow()
    volunteer = factories.make_volunteer(tree.grid_a)
    shift = make_shift_at(tree.grid_a, now + 23 * HOUR)
    place = factories.make_assignment(shift, volunteer)

    assert schedule_due_reminders(now) == 1
    assert schedule_due_reminders(now) == 0
    assert schedule_due_reminders(now + 10 * MINUTE) == 0
    assert keys() == {(volunteer.user_id, dedupe_key(place.id, 1440))}

    # 59 minutes before the start the 1 h reminder is due, once.
    later = shift.starts_at - 59 * MINUTE
    assert schedule_due_reminders(later) == 1
    assert schedule_due_reminders(later + MINUTE) == 0
    assert keys() == {(volunteer.user_id, dedupe_key(place.id, 1440)), (volunteer.user_id, dedupe_key(place.id, 60))}
    # Once the shift has begun nothing more is written.
    assert schedule_due_reminders(shift.starts_at) == 0
    assert schedule_due_reminders(shift.starts_at + MINUTE) == 0
    assert len(reminders()) == 2


def test_a_reminder_says_what_when_where_in_the_users_language(tree: Any) -> None:
    now = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 09:00 in Baotou
    zh = factories.make_volunteer(tree.grid_a)
    en = factories.make_volunteer(tree.grid_a)
    en.user.locale = "en"
    shift = make_shift_at(tree.grid_a, datetime(2026, 11, 26, 1, 0, tzinfo=UTC), title="夜间巡逻", backup_slots=1)
    place_zh = factories.make_assignment(shift, zh)
    place_en = factories.make_assignment(shift, en, role="backup")

    assert schedule_due_reminders(now) == 2

    by_user = {row.user_id: row for row in reminders()}
    grid = tree.grid_a.name
    assert (by_user[zh.user_id].title, by_user[zh.user_id].body) == (
        "排班提醒",
        f"「夜间巡逻」（{grid}）将于 11月26日 09:00 开始，还有1天。",
    )
    assert (by_user[en.user_id].title, by_user[en.user_id].body) == (
        "Shift reminder",
        f"“夜间巡逻” ({grid}) starts 26 Nov 09:00, in 1 day.",
    )
    assert by_user[zh.user_id].data == {
        "type": "shift_reminder",
        "shift_id": str(shift.id),
        "assignment_id": str(place_zh.id),
        "minutes_before": "1440",
    }
    assert by_user[en.user_id].data["assignment_id"] == str(place_en.id)
    for row in by_user.values():
        assert row.push_status == "pending" and row.push_due_at == now and not row.urgent and row.read_at is None


def test_only_the_nearest_due_offset_is_written(tree: Any) -> None:
    """A place taken 30 minutes before the start gets the 1 h reminder, not the 24 h one too."""
    now = midday_tomorrow()
    volunteer = factories.make_volunteer(tree.grid_a)
    soon = factories.make_assignment(make_shift_at(tree.grid_a, now + 30 * MINUTE), volunteer)
    three_hours = factories.make_assignment(make_shift_at(tree.grid_a, now + 3 * HOUR), volunteer)
    exactly_a_day = factories.make_assignment(make_shift_at(tree.grid_a, now + 24 * HOUR), volunteer)
    factories.make_assignment(make_shift_at(tree.grid_a, now + 24 * HOUR + MINUTE), volunteer)

    assert schedule_due_reminders(now) == 3

    assert keys() == {
        (volunteer.user_id, dedupe_key(soon.id, 60)),
        (volunteer.user_id, dedupe_key(three_hours.id, 1440)),
        (volunteer.user_id, dedupe_key(exactly_a_day.id, 1440)),
    }
    bodies = {row.data["assignment_id"]: row.body for row in reminders()}
    # The text tells the time really left: "in 3 hours", not "in 1 day"; "in 30 minutes", not "in 1 hour".
    assert bodies[str(three_hours.id)].endswith("还有3小时。")
    assert bodies[str(soon.id)].endswith("还有30分钟。")
    assert bodies[str(exactly_a_day.id)].endswith("还有1天。")


def test_primaries_and_backups_are_reminded_nobody_else(tree: Any) -> None:
    now = midday_tomorrow()
    shift = make_shift_at(tree.grid_a, now + 2 * HOUR, max_headcount=5, backup_slots=2)
    reminded = [
        factories.make_assignment(shift, factories.make_volunteer(tree.grid_a)),
        factories.make_assignment(shift, factories.make_volunteer(tree.grid_a), role="backup"),
    ]
    for status in ("invited", "waitlisted", "withdrawn", "removed", "cancelled", "swapped", "absent", "declined"):
        factories.make_assignment(shift, factories.make_volunteer(tree.grid_a), status=status)
    deactivated = factories.make_volunteer(tree.grid_a)
    deactivated.user.is_active = False
    factories.make_assignment(shift, deactivated)
    cancelled_shift = make_shift_at(tree.grid_a, now + 2 * HOUR)
    factories.make_assignment(cancelled_shift, factories.make_volunteer(tree.grid_a))
    cancelled_shift.status = "cancelled"
    db.session.flush()

    assert schedule_due_reminders(now) == 2
    assert {row.data["assignment_id"] for row in reminders()} == {str(place.id) for place in reminded}


def test_a_place_that_ends_before_the_next_offset_gets_no_more(tree: Any) -> None:
    now = midday_tomorrow()
    volunteer = factories.make_volunteer(tree.grid_a)
    shift = make_shift_at(tree.grid_a, now + 20 * HOUR)
    place = factories.make_assignment(shift, volunteer)
    assert schedule_due_reminders(now) == 1

    place.status = "withdrawn"
    db.session.flush()
    assert schedule_due_reminders(shift.starts_at - 30 * MINUTE) == 0
    assert keys() == {(volunteer.user_id, dedupe_key(place.id, 1440))}


# ------------------------------------------------------------------------------ cities


def test_each_city_has_its_own_offsets(tree: Any) -> None:
    now = midday_tomorrow()
    far_grid = new_city()
    silent_grid = new_city("阿拉善盟")
    far_city_id = int(far_grid.path.strip("/").split("/")[0])
    silent_city_id = int(silent_grid.path.strip("/").split("/")[0])
    db.session.add_all(
        [
            CityReminderSettings(area_id=far_city_id, offsets_minutes=[180, 30]),
            CityReminderSettings(area_id=silent_city_id, offsets_minutes=[]),
        ]
    )
    db.session.flush()
    home = factories.make_assignment(
        make_shift_at(tree.grid_a, now + 45 * MINUTE), factories.make_volunteer(tree.grid_a)
    )
    far = factories.make_assignment(make_shift_at(far_grid, now + 45 * MINUTE), factories.make_volunteer(far_grid))
    far_volunteer = db.session.get(Volunteer, far.volunteer_id)
    silent = factories.make_assignment(
        make_shift_at(silent_grid, now + 45 * MINUTE), factories.make_volunteer(silent_grid)
    )

    # 45 minutes before: the default city's 1 h reminder; the far city's 3 h one (30 min not yet due).
    assert schedule_due_reminders(now) == 2
    assert {row.dedupe_key for row in reminders()} == {dedupe_key(home.id, 60), dedupe_key(far.id, 180)}

    assert schedule_due_reminders(now + 15 * MINUTE) == 1
    assert {row.dedupe_key for row in reminders() if row.user_id == far_volunteer.user_id} == {
        dedupe_key(far.id, 180),
        dedupe_key(far.id, 30),
    }
    assert not [row for row in reminders() if row.data["assignment_id"] == str(silent.id)]


def test_changing_a_citys_offsets_applies_from_the_next_run(tree: Any) -> None:
    now = midday_tomorrow()
    volunteer = factories.make_volunteer(tree.grid_a)
    place = factories.make_assignment(make_shift_at(tree.grid_a, now + 100 * MINUTE), volunteer)
    db.session.add(CityReminderSettings(area_id=tree.city.id, offsets_minutes=[90]))
    db.session.flush()

    assert schedule_due_reminders(now) == 0  # 100 minutes ahead: 90 is not due yet, 1440 is not ours
    assert schedule_due_reminders(now + 10 * MINUTE) == 1
    assert keys() == {(volunteer.user_id, dedupe_key(place.id, 90))}


# ------------------------------------------------------------------------------ quiet hours


def test_quiet_hours_hold_a_reminder_unless_that_would_be_after_the_start(tree: Any) -> None:
    now = datetime(2026, 11, 25, 14, 30, tzinfo=UTC)  # 22:30 in Baotou: quiet until 07:00
    volunteer = factories.make_volunteer(tree.grid_a)
    evening = factories.make_assignment(
        make_shift_at(tree.grid_a, datetime(2026, 11, 26, 14, 0, tzinfo=UTC)), volunteer
    )
    dawn = factories.make_assignment(make_shift_at(tree.grid_a, datetime(2026, 11, 25, 22, 0, tzinfo=UTC)), volunteer)
    night_owl = factories.make_volunteer(tree.grid_a)
    db.session.add(
        NotificationSettings(
            user_id=night_owl.user_id, quiet_hours_enabled=False, quiet_start_minute=1320, quiet_end_minute=420
        )
    )
    owl_place = factories.make_assignment(db.session.get(Shift, evening.shift_id), night_owl)
    db.session.flush()

    assert schedule_due_reminders(now) == 3

    by_place = {row.data["assignment_id"]: row for row in reminders()}
    held = by_place[str(evening.id)]  # 22:00 tomorrow: waits for 07:00, and then says "in 15 hours"
    assert held.push_due_at == datetime(2026, 11, 25, 23, 0, tzinfo=UTC) and not held.urgent
    assert held.body.endswith("还有15小时。")
    early = by_place[str(dawn.id)]  # 06:00 tomorrow: quiet hours end after it starts, so now, urgent
    assert early.push_due_at == now and early.urgent
    owl = by_place[str(owl_place.id)]
    assert owl.push_due_at == now and not owl.urgent and owl.body.endswith("还有1天。")


@pytest.mark.parametrize(
    "offset, minutes_left, shown",
    [(60, 60, 60), (60, 56, 60), (60, 54, 54), (1440, 1438, 1440), (1440, 187, 180), (1440, 930, 960), (30, 0, 1)],
)
def test_the_lead_a_text_names(offset: int, minutes_left: int, shown: int) -> None:
    assert shown_lead(offset, timedelta(minutes=minutes_left, seconds=30)) == shown


def test_beats_task_writes_the_reminders_and_the_sender_takes_them(tree: Any) -> None:
    """The periodic task (run here in-process, as without a broker) commits, then delivery runs."""
    from notifications.reminders.tasks import schedule_reminders_task

    volunteer = factories.make_volunteer(tree.grid_a)
    # The task runs at the wall clock's now: without quiet hours, whatever the hour, the push goes
    # at once (from 06:30 to 07:00 in Baotou it was held until the morning, and this test failed).
    db.session.add(
        NotificationSettings(
            user_id=volunteer.user_id, quiet_hours_enabled=False, quiet_start_minute=1320, quiet_end_minute=420
        )
    )
    place = factories.make_assignment(make_shift_at(tree.grid_a, utcnow() + 30 * MINUTE), volunteer)

    result = schedule_reminders_task.apply()

    assert result.successful() and result.result == 1
    db.session.expire_all()
    [row] = reminders()
    assert row.dedupe_key == dedupe_key(place.id, 60) and row.user_id == volunteer.user_id
    assert row.push_status == "no_device"  # delivered after the commit: no phone registered, inbox only
    assert schedule_reminders_task.apply().result == 0


# ------------------------------------------------------------------------------ scale


def test_a_run_costs_the_same_statements_for_five_or_fifty_places(tree: Any) -> None:
    """Set-based: one SELECT per offset, one quiet-hours lookup and one INSERT per chunk of 1,000."""
    now = midday_tomorrow()

    def statements_for(count: int, starts_in: timedelta) -> int:
        shift = make_shift_at(tree.grid_a, now + starts_in, max_headcount=count)
        for _ in range(count):
            factories.make_assignment(shift, factories.make_volunteer(tree.grid_a2))
        seen: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", note)
        try:
            written = schedule_due_reminders(now)
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", note)
        assert written == count
        return len(seen)

    assert statements_for(5, 2 * HOUR) == statements_for(50, 3 * HOUR)


# ------------------------------------------------------------------------------ concurrency


@pytest.fixture
def committed_places(app: Flask) -> Iterator[tuple[datetime, list[int]]]:
    """Twenty places on two shifts, committed for real; the test's clean-up empties the tables."""
    now = midday_tomorrow()
    with app.app_context():
        grid = new_city("并发市")
        ids = []
        for starts_in in (5 * HOUR, 30 * MINUTE):
            shift = make_shift_at(grid, now + starts_in, max_headcount=10)
            ids += [factories.make_assignment(shift, factories.make_volunteer(grid)).id for _ in range(10)]
        db.session.commit()
        db.session.remove()
    yield now, ids


@pytest.mark.committing
def test_two_schedulers_at_once_write_each_reminder_once(
    app: Flask, committed_places: tuple[datetime, list[int]]
) -> None:
    now, assignment_ids = committed_places
    barrier = races.barrier(2)
    written: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                barrier.wait()
                written.append(schedule_due_reminders(now))
                db.session.commit()
                db.session.remove()
        except BaseException as error:
            errors.append(error)

    races.run_threads([run, run])

    assert not errors
    assert sum(written) == 20
    with app.app_context():
        rows = db.session.execute(
            sa.select(Notification.dedupe_key, sa.func.count()).group_by(Notification.dedupe_key)
        ).all()
        assert {key for key, _ in rows} == {
            dedupe_key(assignment_id, 1440 if index < 10 else 60) for index, assignment_id in enumerate(assignment_ids)
        }
        assert all(count == 1 for _, count in rows)
        # And a third run, after both committed, finds nothing left to do.
        assert schedule_due_reminders(now) == 0
        db.session.rollback()


# --- city reminder settings ---------------------------------------------------------------------


def reminder_url(area: Any) -> str:
    return f"{API}/areas/{area.id}/reminder-settings"


def test_a_city_admin_sets_the_reminders_and_managers_of_the_city_read_them(client, app, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    default = client.get(reminder_url(tree.city), headers=factories.headers_for(admin)).get_json()
    assert default == {
        "area_id": tree.city.id,
        "offsets_minutes": sorted(app.config["REMINDER_OFFSETS_MINUTES"], reverse=True),
        "is_default": True,
        "updated_by": None,
        "updated_at": None,
    }

    put = client.put(
        reminder_url(tree.city), json={"offsets_minutes": [60, 2880, 15]}, headers=factories.headers_for(admin)
    )
    assert put.status_code == 200, put.get_json()
    assert put.get_json()["offsets_minutes"] == [2880, 60, 15]
    assert put.get_json()["is_default"] is False and put.get_json()["updated_by"] == admin.id
    assert db.session.get(CityReminderSettings, tree.city.id).offsets_minutes == [2880, 60, 15]
    assert reminder_offsets(tree.city.id) == [2880, 60, 15]
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "notifications.reminder_settings")
    ).one()
    assert entry.before == {"offsets_minutes": [1440, 60]} and entry.after == {"offsets_minutes": [2880, 60, 15]}

    for reader in (
        factories.make_user("organiser", tree.community_a),
        factories.make_user("staff", tree.district_a),
        factories.make_user("staff", tree.city),
    ):
        shown = client.get(reminder_url(tree.city), headers=factories.headers_for(reader))
        assert shown.status_code == 200 and shown.get_json()["offsets_minutes"] == [2880, 60, 15]

    city_staff = factories.make_user("staff", tree.city)
    again = client.put(
        reminder_url(tree.city), json={"offsets_minutes": [30]}, headers=factories.headers_for(city_staff)
    )
    assert again.status_code == 200 and again.get_json()["offsets_minutes"] == [30]


@pytest.mark.parametrize(
    "offsets",
    [[], [60, 1440, 30, 15, 5], [4], [10081], [60, 60], ["60"], [60.5], [True], None, "60", [-60]],
)
def test_bad_reminder_offsets_are_refused_and_nothing_is_saved(client, tree, offsets) -> None:
    admin = factories.make_user("admin", tree.city)
    response = client.put(
        reminder_url(tree.city), json={"offsets_minutes": offsets}, headers=factories.headers_for(admin, **EN)
    )
    problem = assert_problem(response, 422, "validation_failed")
    assert "offsets_minutes" in problem["errors"]
    assert db.session.get(CityReminderSettings, tree.city.id) is None


def test_reminder_settings_refusals(client, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    other_city = factories.make_area(AreaLevel.CITY, name="乌海市")
    other_admin = factories.make_user("admin", other_city)
    body = {"offsets_minutes": [120]}
    as_ = factories.headers_for

    assert_problem(client.put(reminder_url(tree.district_a), json=body, headers=as_(admin)), 404, "not_a_city")
    assert_problem(client.get(reminder_url(tree.grid_a), headers=as_(admin)), 404, "not_a_city")
    assert_problem(client.get(f"{API}/areas/99999999/reminder-settings", headers=as_(admin)), 404, "area_not_found")
    assert_problem(client.put(reminder_url(tree.city), json=body, headers=as_(other_admin)), 403, "out_of_scope")
    assert_problem(client.get(reminder_url(tree.city), headers=as_(other_admin)), 403, "out_of_scope")
    district_staff = factories.make_user("staff", tree.district_a)
    assert_problem(client.put(reminder_url(tree.city), json=body, headers=as_(district_staff)), 403, "out_of_scope")
    organiser = factories.make_user("organiser", tree.community_a)
    assert_problem(client.put(reminder_url(tree.city), json=body, headers=as_(organiser)), 403, "forbidden")
    volunteer = factories.make_volunteer(tree.grid_a).user
    assert_problem(client.get(reminder_url(tree.city), headers=as_(volunteer)), 403, "forbidden")
    assert_problem(client.put(reminder_url(tree.city), json=body), 401, "unauthorized")
    assert db.session.get(CityReminderSettings, tree.city.id) is None
