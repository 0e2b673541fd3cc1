"""Domain actions through the API become notifications in the right inboxes, in the right language.

Each test does what the app does (an organiser assigns, a volunteer files a report, beat marks
no-shows) and then reads the recipient's inbox through the API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from accounts.models import User
from core.db import utcnow
from core.errors import Conflict
from core.extensions import db
from notifications.models import Notification
from patrols.presence.tasks import mark_no_shows
from shifts import signals as shift_signals
from shifts.models import Assignment
from tests import factories
from tests.conftest import Tree
from tests.problems import EN, assert_problem

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
INSIDE_A = {"lat": 40.655, "lon": 109.845}  # inside tree.grid_a


def as_(who: Any, **extra: str) -> dict[str, str]:
    return factories.headers_for(getattr(who, "user", who), **extra)


def inbox(client: Any, who: Any) -> list[dict[str, Any]]:
    response = client.get(f"{API}/me/notifications", headers=as_(who))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def kinds(client: Any, who: Any) -> list[str]:
    return [item["kind"] for item in inbox(client, who)]


def local_zh(moment: Any) -> str:
    local = moment.astimezone(SHANGHAI)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def all_notifications() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Notification))


@dataclass
class People:
    organiser: User  # community A
    organiser_sub: User  # sub-district A, above community A
    organiser_a2: User  # the sibling community
    organiser_b: User  # another district
    staff_a: User
    staff_b: User


@pytest.fixture
def people(tree: Tree) -> People:
    return People(
        organiser=factories.make_user("organiser", tree.community_a),
        organiser_sub=factories.make_user("organiser", tree.subdistrict_a),
        organiser_a2=factories.make_user("organiser", tree.community_a2),
        organiser_b=factories.make_user("organiser", tree.community_b),
        staff_a=factories.make_user("staff", tree.district_a),
        staff_b=factories.make_user("staff", tree.district_b),
    )


def post(client: Any, who: Any, path: str, **body: Any) -> Any:
    response = client.post(f"{API}{path}", json=body, headers=as_(who))
    assert response.status_code < 300, response.get_json()
    return response


# --- shifts ----------------------------------------------------------------------------------------


def test_an_assignment_reaches_the_volunteer_in_chinese(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, backup_slots=1, title="东站夜巡")
    volunteer = factories.make_volunteer(tree.grid_a)

    placed = post(client, people.organiser, f"/shifts/{shift.id}/assign", volunteer_id=volunteer.id, role="backup")

    [item] = inbox(client, volunteer)
    assert item["kind"] == "assignment_created" and item["title"] == "排班已确认"
    assert item["body"] == f"您已被安排为「东站夜巡」的备岗（{tree.grid_a.name}），{local_zh(shift.starts_at)} 开始。"
    assert item["data"] == {
        "type": "assignment_created",
        "assignment_id": str(placed.get_json()["id"]),
        "shift_id": str(shift.id),
    }
    assert item["urgent"] is False and item["read_at"] is None
    assert inbox(client, people.organiser) == []  # nobody is told what they did themselves


def test_an_english_account_gets_english_texts(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, title="Night patrol")
    volunteer = factories.make_volunteer(tree.grid_a)
    assert client.patch(f"{API}/me", json={"locale": "en"}, headers=as_(volunteer)).status_code == 200

    post(client, people.organiser, f"/shifts/{shift.id}/invite", volunteer_id=volunteer.id)

    [item] = inbox(client, volunteer)
    local = shift.starts_at.astimezone(SHANGHAI)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    assert item["title"] == "Shift invitation"
    assert item["body"] == (
        f"An organiser invites you to a primary place on “Night patrol” ({tree.grid_a.name}), "
        f"starting {local.day} {months[local.month - 1]} {local:%H:%M}. Please reply."
    )
    # Refusals follow Accept-Language; another user's item is never revealed.
    problem = assert_problem(
        client.post(f"{API}/me/notifications/{item['id']}/read", headers=as_(people.organiser, **EN)),
        404,
        "notification_not_found",
    )
    assert problem["title"] == "Notification not found"


def test_nobody_is_told_what_they_did_themselves(client, tree, people) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    signed = post(client, volunteer, f"/shifts/{factories.make_shift(tree.grid_a).id}/signup")
    post(client, volunteer, f"/assignments/{signed.get_json()['id']}/withdraw")
    invited = post(
        client,
        people.organiser,
        f"/shifts/{factories.make_shift(tree.grid_a, starts_in=timedelta(days=3)).id}/invite",
        volunteer_id=volunteer.id,
    )
    post(client, volunteer, f"/assignments/{invited.get_json()['id']}/accept")
    declined = post(
        client,
        people.organiser,
        f"/shifts/{factories.make_shift(tree.grid_a, starts_in=timedelta(days=5)).id}/invite",
        volunteer_id=volunteer.id,
    )
    post(client, volunteer, f"/assignments/{declined.get_json()['id']}/decline")

    assert kinds(client, volunteer) == ["invitation_sent", "invitation_sent"]


def test_a_removal_tells_the_volunteer_and_the_backup_who_takes_over(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1, backup_slots=1)
    primary, backup = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    place = factories.make_assignment(shift, primary)
    standby = factories.make_assignment(shift, backup, role="backup")

    post(client, people.organiser, f"/assignments/{place.id}/remove", reason="身体不适")

    [removed] = inbox(client, primary)
    assert removed["kind"] == "assignment_cancelled" and removed["title"] == "您已被移出排班"
    assert removed["body"].endswith("原因：身体不适")
    [promoted] = inbox(client, backup)
    assert promoted["kind"] == "backup_promoted" and promoted["data"]["assignment_id"] == str(standby.id)


def test_a_withdrawal_moves_the_first_on_the_waitlist_up(client, tree) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1)
    first, waiting = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    place = post(client, first, f"/shifts/{shift.id}/signup").get_json()
    assert post(client, waiting, f"/shifts/{shift.id}/signup").get_json()["status"] == "waitlisted"

    post(client, first, f"/assignments/{place['id']}/withdraw")

    assert kinds(client, waiting) == ["waitlist_promoted"]
    assert inbox(client, first) == []


def test_a_swap_approved_by_the_organiser_tells_both_volunteers(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(days=2))
    giver, taker = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    place = factories.make_assignment(shift, giver)
    swap = post(client, giver, "/swap-requests", assignment_id=place.id, to_volunteer_id=taker.id).get_json()
    post(client, taker, f"/swap-requests/{swap['id']}/accept")

    post(client, people.organiser, f"/swap-requests/{swap['id']}/approve")

    [handed] = inbox(client, giver)
    assert (handed["kind"], handed["title"]) == ("assignment_cancelled", "换班已批准")
    assert kinds(client, taker) == ["assignment_created"]


def test_a_changed_shift_tells_its_volunteers_unless_only_capacity_changed(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1, starts_in=timedelta(days=2))
    assigned, waiting = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    factories.make_assignment(shift, assigned)
    factories.make_assignment(shift, waiting, status="waitlisted")
    later = shift.starts_at + timedelta(hours=1)

    changed = client.patch(
        f"{API}/shifts/{shift.id}",
        json={"starts_at": later.isoformat(), "meeting_point": "东门"},
        headers=as_(people.organiser),
    )
    assert changed.status_code == 200, changed.get_json()
    [item] = inbox(client, assigned)
    assert item["kind"] == "assignment_changed" and item["data"] == {
        "type": "assignment_changed",
        "shift_id": str(shift.id),
    }
    assert item["body"] == f"「夜间巡逻」的时间、集合地点已调整，现在 {local_zh(later)} 开始。"
    assert inbox(client, waiting) == []

    capacity = client.patch(f"{API}/shifts/{shift.id}", json={"max_headcount": 5}, headers=as_(people.organiser))
    assert capacity.status_code == 200, capacity.get_json()
    assert len(inbox(client, assigned)) == 1


def test_a_cancelled_shift_tells_assigned_and_waiting_volunteers(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1)
    assigned, waiting = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    factories.make_assignment(shift, assigned)
    factories.make_assignment(shift, waiting, status="waitlisted")

    post(client, people.organiser, f"/shifts/{shift.id}/cancel", reason="暴雨预警")

    for volunteer in (assigned, waiting):
        [item] = inbox(client, volunteer)
        assert item["kind"] == "shift_cancelled" and item["title"] == "排班已取消"
        assert item["body"].endswith("已取消。原因：暴雨预警")


# --- patrols ----------------------------------------------------------------------------------------


def test_a_no_show_alerts_the_organisers_over_the_grid_at_once(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-16))
    volunteer = factories.make_volunteer(tree.grid_a, real_name="李四")
    place = factories.make_assignment(shift, volunteer)
    place.updated_at = utcnow() - timedelta(days=1)
    db.session.flush()
    night = {"quiet_hours_enabled": True, "quiet_start": "00:00", "quiet_end": "23:59"}  # always quiet
    assert client.put(f"{API}/me/notification-settings", json=night, headers=as_(people.organiser)).status_code == 200

    assert mark_no_shows() == 1
    assert mark_no_shows() == 0

    for organiser in (people.organiser, people.organiser_sub):
        [alert] = inbox(client, organiser)
        assert alert["kind"] == "absence_alert" and alert["urgent"] is True
        assert alert["body"].startswith("李四 未在「夜间巡逻」")
        assert alert["data"]["volunteer_id"] == str(volunteer.id)
    row = db.session.scalars(sa.select(Notification).where(Notification.user_id == people.organiser.id)).one()
    assert row.push_due_at == row.created_at  # urgent: quiet hours do not hold it back
    for bystander in (people.organiser_a2, people.organiser_b, people.staff_a, people.staff_b):
        assert inbox(client, bystander) == []
    [own] = inbox(client, volunteer)
    assert (own["kind"], own["title"]) == ("assignment_cancelled", "您被记为缺勤")


def report(client: Any, volunteer: Any, level: str, **overrides: Any) -> int:
    body = {
        "client_id": str(uuid.uuid4()),
        "category": "safety_hazard",
        "level": level,
        "description": "井盖缺失",
        **INSIDE_A,
        "accuracy_m": 8.0,
        "device_time": (utcnow() - timedelta(minutes=3)).isoformat(),
        **overrides,
    }
    return post(client, volunteer, "/reports", **body).get_json()["id"]


def test_red_and_orange_reports_alert_the_organisers_of_the_grid(client, tree, people) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    red = report(client, volunteer, "red")
    report(client, volunteer, "orange", category="dispute")
    report(client, volunteer, "yellow")
    report(client, volunteer, "green")

    for organiser in (people.organiser, people.organiser_sub):
        alerts = inbox(client, organiser)
        assert [a["title"] for a in alerts] == ["橙色预警事件上报", "红色预警事件上报"]
        assert alerts[0]["body"] == f"{tree.grid_a.name} 上报了橙色预警「矛盾纠纷」事件，请立即处理。"
        assert all(a["urgent"] for a in alerts)
        assert alerts[1]["data"] == {"type": "report_alert", "report_id": str(red), "grid_id": str(tree.grid_a.id)}
    for bystander in (people.organiser_a2, people.organiser_b, people.staff_a, volunteer):
        assert inbox(client, bystander) == []


def test_without_an_organiser_over_the_grid_its_staff_are_alerted(client, tree) -> None:
    staff_a, staff_b = factories.make_user("staff", tree.district_a), factories.make_user("staff", tree.district_b)
    report(client, factories.make_volunteer(tree.grid_a), "red")
    assert kinds(client, staff_a) == ["report_alert"]
    assert inbox(client, staff_b) == []


def test_the_reporter_hears_how_their_report_moves_on(client, tree, people) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    report_id = report(client, volunteer, "yellow")
    post(client, people.organiser, f"/reports/{report_id}/acknowledge")
    post(client, people.organiser, f"/reports/{report_id}/resolve", note="已补上井盖")

    updates = inbox(client, volunteer)
    assert [u["body"] for u in updates] == [
        "您上报的「安全隐患」事件已处理完毕。",
        "您上报的「安全隐患」事件已被受理。",
    ]
    assert updates[0]["data"] == {"type": "report_status_changed", "report_id": str(report_id)}


# --- volunteers ------------------------------------------------------------------------------------


def test_the_vetting_outcome_reaches_the_volunteer(client, tree, people) -> None:
    approved = factories.make_volunteer(tree.grid_a, status="pending")
    rejected = factories.make_volunteer(tree.grid_a, status="pending")

    post(client, people.organiser, f"/volunteers/{approved.id}/approve", certificate_no="BT-1")
    post(client, people.organiser, f"/volunteers/{rejected.id}/reject", reason="资料不全")

    [welcome] = inbox(client, approved)
    assert (welcome["kind"], welcome["title"]) == ("volunteer_approved", "审核已通过")
    assert welcome["data"] == {"type": "volunteer_approved", "volunteer_id": str(approved.id)}
    [sorry] = inbox(client, rejected)
    assert sorry["kind"] == "volunteer_rejected" and sorry["body"].endswith("原因：资料不全")


# --- the outbox is transactional ---------------------------------------------------------------------


def test_a_change_that_rolls_back_leaves_no_notification(client, tree, people) -> None:
    shift = factories.make_shift(tree.grid_a, max_headcount=1, backup_slots=1)
    primary, backup = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)
    place = factories.make_assignment(shift, primary)
    factories.make_assignment(shift, backup, role="backup")
    reached: list[bool] = []

    def fail_later_in_the_request(_sender: Any, **_: Any) -> None:
        # After the removal was signalled and queued its notification.
        reached.append(True)
        raise Conflict("Something later in the request went wrong.", code="conflict")

    def remove() -> Any:
        return client.post(f"{API}/assignments/{place.id}/remove", json={"reason": "x"}, headers=as_(people.organiser))

    with shift_signals.backup_promoted.connected_to(fail_later_in_the_request):
        assert_problem(remove(), 409, "conflict")
    assert reached == [True]
    assert all_notifications() == 0
    assert inbox(client, primary) == [] and inbox(client, backup) == []
    assert db.session.get(Assignment, place.id).status == "assigned"

    # The same request, not failing: both are told.
    assert remove().status_code == 200
    assert all_notifications() == 2


def test_a_savepoint_that_rolls_back_drops_what_it_queued(tree) -> None:
    shift = factories.make_shift(tree.grid_a)
    dropped, kept = factories.make_volunteer(tree.grid_a), factories.make_volunteer(tree.grid_a)

    def placed(volunteer: Any) -> None:
        assignment = factories.make_assignment(shift, volunteer)
        shift_signals.assignment_created.send(
            shift_signals.SENDER,
            assignment_id=assignment.id,
            shift_id=shift.id,
            volunteer_id=volunteer.id,
            role="primary",
            source="organiser",
            actor_id=None,
        )

    with pytest.raises(RuntimeError), db.session.begin_nested():
        placed(dropped)
        raise RuntimeError("the savepoint rolls back")
    placed(kept)
    assert all_notifications() == 0  # queued, not written before the commit
    db.session.commit()

    owners = db.session.scalars(sa.select(Notification.user_id)).all()
    assert owners == [kept.user_id]
