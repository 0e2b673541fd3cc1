"""The SOS signals as the notifications listener takes them (notifications/sos_listeners.py).

The SOS API's own tests drive these through HTTP (tests/notifications/test_sos_notifications.py);
here the signals are sent as the SOS service sends them, to pin what only a repeated or redelivered
signal shows: each step is written once per user, and the texts in both languages.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from grids.models import Area
from notifications.models import Notification
from notifications.quiet_hours.models import NotificationSettings
from patrols.sos import signals as sos_signals
from patrols.sos.models import SosAlert
from tests import factories
from tests.conftest import Tree
from volunteers.models import Volunteer


def rows(user: User) -> list[Notification]:
    db.session.expire_all()
    return list(
        db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id))
    )


def quiet_now(user: User) -> None:
    """Quiet hours around the present moment (the area's zone is Asia/Shanghai)."""
    minute = (utcnow().hour * 60 + utcnow().minute + 8 * 60) % 1440
    db.session.add(NotificationSettings(
        user_id=user.id, quiet_start_minute=(minute - 60) % 1440, quiet_end_minute=(minute + 60) % 1440,
    ))  # fmt: skip
    db.session.flush()


def make_sos(volunteer: Volunteer, grid: Area) -> SosAlert:
    """An SOS row as the service writes it (the stand-down's text names its grid)."""
    sos = SosAlert(
        volunteer_id=volunteer.id, client_id=str(uuid.uuid4()), device_at=utcnow(), lat=40.655, lon=109.845,
        grid_id=grid.id, area_path=grid.path, located_by="home_grid",
    )  # fmt: skip
    db.session.add(sos)
    db.session.flush()
    return sos


def alerted(sos_id: int, volunteer_id: int, grid_id: int, level: str, user_ids: list[int], note: str | None) -> None:
    sos_signals.sos_alerted.send(
        sos_signals.SENDER, sos_id=sos_id, volunteer_id=volunteer_id, grid_id=grid_id, level=level,
        user_ids=user_ids, lat=40.655, lon=109.845, accuracy_m=8.0, note=note,
    )  # fmt: skip


def test_an_alert_signalled_twice_is_one_urgent_notification_per_user(tree: Tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, real_name="李四")
    organiser = factories.make_user("organiser", tree.community_a)
    nearby = factories.make_volunteer(tree.grid_a, real_name="王五").user
    quiet_now(organiser)

    for _ in range(2):  # a redelivered task or a repeated signal
        alerted(17, volunteer.id, tree.grid_a.id, "community", [organiser.id, nearby.id], "被人跟踪")
        db.session.commit()

    for user in (organiser, nearby):
        (row,) = rows(user)
        assert (row.kind, row.urgent, row.dedupe_key) == ("sos_alert", True, "sos_alert:17:community")
        assert row.data == {
            "type": "sos_alert",
            "sos_id": "17",
            "lat": "40.655",
            "lon": "109.845",
            "level": "community",
        }
        assert row.push_due_at == row.created_at  # at once, in the organiser's quiet hours too
        assert "李四" in row.title and "李四" in row.body
        assert tree.grid_a.name in row.body and "被人跟踪" in row.body
    assert rows(volunteer.user) == []


def test_each_escalation_level_is_its_own_notification(tree: Tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, real_name="李四")
    staff = factories.make_user("staff", tree.district_a)
    staff.locale = "en"

    for level in ("district", "district", "city"):
        alerted(18, volunteer.id, tree.grid_a.id, level, [staff.id], None)
        db.session.commit()

    district, city = rows(staff)
    assert [district.dedupe_key, city.dedupe_key] == ["sos_escalated:18:district", "sos_escalated:18:city"]
    assert district.title == "SOS not answered: 李四 needs help"
    assert district.body == (
        f"Nobody has answered the SOS 李四 raised in {tree.grid_a.name}; it now goes to the district staff. Please act now."
    )
    assert "city staff" in city.body
    assert district.data["level"] == "district" and district.urgent


def acknowledged(sos_id: int, volunteer_id: int, actor_id: int, response: str, first: bool) -> None:
    sos_signals.sos_acknowledged.send(
        sos_signals.SENDER, sos_id=sos_id, volunteer_id=volunteer_id, actor_id=actor_id, response=response, first=first,
    )  # fmt: skip


def test_the_raiser_hears_who_answered_and_how_once_per_answer(tree: Tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, real_name="李四")
    volunteer.user.locale = "en"
    organiser = factories.make_user("organiser", tree.community_a, display_name="赵六")

    for response, first in (("going", True), ("going", False), ("handled", False)):
        acknowledged(19, volunteer.id, organiser.id, response, first)
        db.session.commit()

    going, handled = rows(volunteer.user)
    assert (going.title, going.body) == ("Help is on the way", "赵六 (organiser) is on the way to you.")
    assert (handled.title, handled.body) == ("Your SOS was handled", "赵六 (organiser) has handled your SOS.")
    assert going.urgent and going.data == {"type": "sos_acknowledged", "sos_id": "19", "response": "going"}
    assert rows(organiser) == []  # not told what they did themselves


def ended(sos_id: int, volunteer_id: int, status: str, actor_id: int, user_ids: list[int], note: str | None) -> None:
    sos_signals.sos_ended.send(
        sos_signals.SENDER, sos_id=sos_id, volunteer_id=volunteer_id, status=status, actor_id=actor_id,
        user_ids=user_ids, note=note,
    )  # fmt: skip


def test_everyone_alerted_but_the_one_who_ended_it_may_stand_down(tree: Tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, real_name="李四")
    organiser = factories.make_user("organiser", tree.community_a, display_name="赵六")
    staff = factories.make_user("staff", tree.district_a)
    staff.locale = "en"
    alerted_ids: list[Any] = [organiser.id, staff.id]
    sos = make_sos(volunteer, tree.grid_a)

    for _ in range(2):
        ended(sos.id, volunteer.id, "closed", organiser.id, alerted_ids, "已送医")
        db.session.commit()

    assert rows(organiser) == []
    (row,) = rows(staff)
    assert (row.kind, row.urgent, row.dedupe_key) == ("sos_ended", True, f"sos_ended:{sos.id}")
    assert row.title == "SOS closed"
    assert row.body == f"赵六 closed the SOS 李四 raised in {tree.grid_a.name}. You can stand down. Note: “已送医”."
    assert row.data == {"type": "sos_ended", "sos_id": str(sos.id), "status": "closed"}
