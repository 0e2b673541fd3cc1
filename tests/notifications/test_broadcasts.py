"""Broadcasts through the HTTP API: who receives them, quiet hours, delivery progress, lists, refusals."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from accounts.models import User
from core.auth import Caller, Role
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from notifications import service
from notifications.broadcasts import service as broadcasts
from notifications.broadcasts.models import Broadcast
from notifications.devices.models import Device
from notifications.models import Notification
from notifications.quiet_hours.models import NotificationSettings
from tests import factories
from tests.problems import EN, assert_problem
from volunteers.models import VolunteerStatus

API = "/api/v1/broadcasts"


def make_device(user: User, *, active: bool = True, age_days: int = 0) -> Device:
    token = uuid.uuid4().hex
    device = Device(
        user_id=user.id,
        token=token,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        platform="android",
        channel="fcm",
        active=active,
        refreshed_at=utcnow() - timedelta(days=age_days),
    )
    db.session.add(device)
    db.session.flush()
    return device


class Cast:
    """District A (communities A and A2) and district B of one city, and another city.

    In district A: Ann (grid A, police, a fresh device), Bo (grid A east, alley steward, a stale
    device), Cai (grid A2, police, a logged-out device), Dee (grid A, police, no device). Not to be
    reached: Pat (grid A, pending), Sue (grid A, suspended), Off (grid A, account deactivated),
    Ben (grid B, district B), Far (another city).
    """

    def __init__(self, tree: Any) -> None:
        self.tree = tree
        self.ann = factories.make_volunteer(tree.grid_a, real_name="安")
        self.bo = factories.make_volunteer(tree.grid_a_east, real_name="波", kind_code="alley_steward")
        self.cai = factories.make_volunteer(tree.grid_a2, real_name="蔡")
        self.dee = factories.make_volunteer(tree.grid_a, real_name="迪")
        self.pat = factories.make_volunteer(tree.grid_a, status=VolunteerStatus.PENDING)
        self.sue = factories.make_volunteer(tree.grid_a, status=VolunteerStatus.SUSPENDED)
        self.off = factories.make_volunteer(tree.grid_a)
        self.off.user.is_active = False
        self.ben = factories.make_volunteer(tree.grid_b, real_name="本")
        other_city = factories.make_area(AreaLevel.CITY, name="乌海市")
        district = factories.make_area(AreaLevel.DISTRICT, other_city)
        subdistrict = factories.make_area(AreaLevel.SUBDISTRICT, district)
        community = factories.make_area(AreaLevel.COMMUNITY, subdistrict)
        self.far_grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(106.8, 39.6))
        self.far = factories.make_volunteer(self.far_grid, real_name="远")
        make_device(self.ann.user)
        make_device(self.bo.user, age_days=90)
        make_device(self.cai.user, active=False)
        self.organiser_a = factories.make_user("organiser", tree.community_a)
        self.organiser_b = factories.make_user("organiser", tree.community_b)
        self.staff_a = factories.make_user("staff", tree.district_a)
        self.admin = factories.make_user("admin", tree.city)
        db.session.flush()

    @property
    def district_a_users(self) -> set[int]:
        return {self.ann.user_id, self.bo.user_id, self.cai.user_id, self.dee.user_id}


@pytest.fixture
def cast(tree: Any) -> Cast:
    return Cast(tree)


def as_(user: User, **extra: str) -> dict[str, str]:
    return factories.headers_for(user, **extra)


def caller_of(user: User) -> Caller:
    from grids.models import Area

    return Caller(user.id, Role(user.role), db.session.get(Area, user.area_id).path, "test")


def body(area_id: int, **extra: Any) -> dict[str, Any]:
    return {"area_id": area_id, "title": "今晚需要增援", "body": "12号网格今晚还差两名志愿者，请回复。", **extra}


def rows_of(broadcast_id: int) -> list[Notification]:
    return list(db.session.scalars(sa.select(Notification).where(Notification.broadcast_id == broadcast_id)))


def nothing_written() -> None:
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Broadcast)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0


# ------------------------------------------------------------------------------ sending


def test_staff_reach_the_active_volunteers_of_their_subtree(client: Any, cast: Cast) -> None:
    response = client.post(API, json=body(cast.tree.district_a.id), headers=as_(cast.staff_a))

    assert response.status_code == 201, response.get_json()
    sent = response.get_json()
    assert sent["area_id"] == cast.tree.district_a.id
    assert sent["area_name"] == cast.tree.district_a.name
    assert sent["sender_id"] == cast.staff_a.id
    assert sent["kinds"] is None and sent["urgent"] is False
    assert sent["recipient_count"] == 4
    # Ann's device is fresh; Bo's is stale, Cai's logged out, Dee has none.
    assert sent["reached"] == {"recipients": 4, "with_device": 1}
    rows = rows_of(sent["id"])
    assert {row.user_id for row in rows} == cast.district_a_users
    for row in rows:
        assert (row.kind, row.title, row.body) == ("broadcast", "今晚需要增援", "12号网格今晚还差两名志愿者，请回复。")
        assert row.data == {"type": "broadcast", "broadcast_id": str(sent["id"])}
        assert row.dedupe_key is None and row.urgent is False and row.read_at is None
    stored = db.session.get(Broadcast, sent["id"])
    assert stored.recipient_count == 4 and stored.sender_id == cast.staff_a.id


def test_a_kind_filter_narrows_the_recipients(client: Any, cast: Cast) -> None:
    response = client.post(
        API, json=body(cast.tree.district_a.id, kinds=["alley_steward"]), headers=as_(cast.organiser_a)
    )
    # The organiser of community A may not address district A: out of scope, nothing written.
    assert_problem(response, 403, "out_of_scope")
    nothing_written()

    response = client.post(
        API, json=body(cast.tree.district_a.id, kinds=["alley_steward", "alley_steward"]), headers=as_(cast.staff_a)
    )
    assert response.status_code == 201
    assert response.get_json()["kinds"] == ["alley_steward"]
    assert {row.user_id for row in rows_of(response.get_json()["id"])} == {cast.bo.user_id}

    response = client.post(
        API, json=body(cast.tree.community_a.id, kinds=["volunteer_police"]), headers=as_(cast.organiser_a)
    )
    assert response.status_code == 201
    assert {row.user_id for row in rows_of(response.get_json()["id"])} == {cast.ann.user_id, cast.dee.user_id}


def test_admins_reach_the_whole_city_and_a_grid_is_an_area_too(client: Any, cast: Cast) -> None:
    response = client.post(API, json=body(cast.tree.city.id, urgent=True), headers=as_(cast.admin))
    assert response.status_code == 201
    assert {row.user_id for row in rows_of(response.get_json()["id"])} == cast.district_a_users | {cast.ben.user_id}

    response = client.post(API, json=body(cast.tree.grid_b.id), headers=as_(cast.organiser_b))
    assert response.status_code == 201
    assert response.get_json()["reached"] == {"recipients": 1, "with_device": 0}


def test_an_area_without_volunteers_is_a_broadcast_to_nobody(client: Any, cast: Cast) -> None:
    empty = factories.make_area(AreaLevel.GRID, cast.tree.community_a2, boundary=factories.square(109.9, 40.7))
    response = client.post(API, json=body(empty.id), headers=as_(cast.staff_a))
    assert response.status_code == 201
    assert response.get_json()["reached"] == {"recipients": 0, "with_device": 0}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 0


def test_the_insert_is_one_statement_however_many_recipients(app: Flask, cast: Cast) -> None:
    """Set-based: the statements a broadcast runs do not grow with the number of recipients."""
    caller = caller_of(cast.staff_a)

    def statements_for_one_broadcast() -> int:
        seen: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            broadcasts.send(caller, body(cast.tree.district_a.id, urgent=False, kinds=None))
            db.session.flush()
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
        return len(seen)

    few = statements_for_one_broadcast()
    for _ in range(30):
        factories.make_volunteer(cast.tree.grid_a2)
    assert statements_for_one_broadcast() == few
    latest = db.session.scalar(sa.select(Broadcast).order_by(Broadcast.id.desc()).limit(1))
    assert latest.recipient_count == 34


# ------------------------------------------------------------------------------ quiet hours


def test_quiet_hours_hold_each_recipient_as_the_service_would(cast: Cast) -> None:
    """At 23:30 in Baotou: default users wait for 07:00, own settings and other zones are honoured."""
    now = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)  # 23:30 Asia/Shanghai
    # Bo: quiet hours off. Cai: 23:00–06:00. Dee: 08:00–09:00 (not quiet now).
    db.session.add_all(
        [
            NotificationSettings(
                user_id=cast.bo.user_id, quiet_hours_enabled=False, quiet_start_minute=1320, quiet_end_minute=420
            ),
            NotificationSettings(
                user_id=cast.cai.user_id, quiet_hours_enabled=True, quiet_start_minute=1380, quiet_end_minute=360
            ),
            NotificationSettings(
                user_id=cast.dee.user_id, quiet_hours_enabled=True, quiet_start_minute=480, quiet_end_minute=540
            ),
        ]
    )
    # Eve lives in a grid kept in London time (15:30 there: not quiet).
    london = factories.make_area(
        AreaLevel.GRID, cast.tree.community_a, boundary=factories.square(109.86, 40.65), timezone="Europe/London"
    )
    eve = factories.make_volunteer(london, real_name="伊")
    db.session.flush()

    broadcast, reached = broadcasts.send(caller_of(cast.staff_a), body(cast.tree.district_a.id, urgent=False), now=now)

    due = {row.user_id: row.push_due_at for row in rows_of(broadcast.id)}
    assert reached["recipients"] == 5
    assert due == {
        cast.ann.user_id: datetime(2026, 11, 25, 23, 0, tzinfo=UTC),  # 07:00 local
        cast.bo.user_id: now,
        cast.cai.user_id: datetime(2026, 11, 25, 22, 0, tzinfo=UTC),  # 06:00 local
        cast.dee.user_id: now,
        eve.user_id: now,
    }
    assert due == service.due_at_for_users(list(due), now, False)


def test_urgent_broadcasts_go_at_once_even_at_night(cast: Cast) -> None:
    now = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # midnight in Baotou
    broadcast, _ = broadcasts.send(caller_of(cast.admin), body(cast.tree.city.id, urgent=True), now=now)
    rows = rows_of(broadcast.id)
    assert len(rows) == 5
    assert all(row.push_due_at == now and row.urgent for row in rows)


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "change, field",
    [
        ({"title": "x" * 101}, "title"),
        ({"title": "   "}, "title"),
        ({"body": "y" * 1001}, "body"),
        ({"body": ""}, "body"),
        ({"kinds": []}, "kinds"),
        ({"kinds": ["k" * 33]}, "kinds"),
        ({"kinds": ["volunteer_police"] * 21}, "kinds"),
        ({"urgent": "soon"}, "urgent"),
        ({"area_id": 0}, "area_id"),
        ({"area_id": "12"}, "area_id"),
        ({"area_id": 2**31}, "area_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_422_and_writes_nothing(client: Any, cast: Cast, change: dict[str, Any], field: str) -> None:
    response = client.post(API, json={**body(cast.tree.district_a.id), **change}, headers=as_(cast.staff_a, **EN))
    problem = assert_problem(response, 422, "validation_failed")
    assert field in problem["errors"]
    nothing_written()


def test_missing_fields_unknown_areas_and_kinds_are_422(client: Any, cast: Cast) -> None:
    response = client.post(API, json={}, headers=as_(cast.staff_a))
    assert set(assert_problem(response, 422, "validation_failed")["errors"]) == {"area_id", "title", "body"}

    response = client.post(API, json=body(999_999), headers=as_(cast.staff_a, **EN))
    assert assert_problem(response, 422, "validation_failed")["errors"] == {"area_id": ["Unknown area."]}

    response = client.post(
        API, json=body(cast.tree.district_a.id, kinds=["volunteer_police", "herder"]), headers=as_(cast.staff_a, **EN)
    )
    assert assert_problem(response, 422, "validation_failed")["errors"] == {"kinds": {"1": ["Unknown volunteer kind."]}}
    nothing_written()


def test_volunteers_and_senders_outside_the_area_are_refused(client: Any, cast: Cast) -> None:
    assert_problem(client.post(API, json=body(cast.tree.grid_a.id), headers=as_(cast.ann.user)), 403, "forbidden")
    assert_problem(client.post(API, json=body(cast.tree.grid_a.id), headers=as_(cast.organiser_b)), 403, "out_of_scope")
    assert_problem(client.post(API, json=body(cast.tree.city.id), headers=as_(cast.staff_a)), 403, "out_of_scope")
    assert_problem(client.post(API, json=body(cast.far_grid.id), headers=as_(cast.admin)), 403, "out_of_scope")
    assert client.post(API, json=body(cast.tree.grid_a.id)).status_code == 401
    nothing_written()


def test_a_retried_post_with_its_idempotency_key_sends_once(client: Any, cast: Cast) -> None:
    headers = as_(cast.staff_a, **{"Idempotency-Key": "call-out-1"})
    first = client.post(API, json=body(cast.tree.district_a.id), headers=headers)
    again = client.post(API, json=body(cast.tree.district_a.id), headers=headers)

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Broadcast)) == 1
    assert len(rows_of(first.get_json()["id"])) == 4

    other = client.post(API, json=body(cast.tree.district_a.id, title="另一条"), headers=headers)
    assert_problem(other, 409, "idempotency_key_reused")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Broadcast)) == 1


# ------------------------------------------------------------------------------ reading


def test_the_sender_sees_delivery_progress(client: Any, cast: Cast) -> None:
    sent = client.post(API, json=body(cast.tree.district_a.id, urgent=True), headers=as_(cast.staff_a)).get_json()

    response = client.get(f"{API}/{sent['id']}", headers=as_(cast.staff_a))

    assert response.status_code == 200
    shown = response.get_json()
    assert shown["title"] == "今晚需要增援" and shown["recipient_count"] == 4
    assert shown["reached"] == {"recipients": 4, "with_device": 1}
    statuses = {row.user_id: row.push_status for row in rows_of(sent["id"])}
    expected = {status: 0 for status in ("pending", "sent", "failed", "no_device")}
    for status in statuses.values():
        expected[status] += 1
    assert shown["delivery"] == expected
    assert sum(shown["delivery"].values()) == 4
    # Urgent, so the sender ran after the commit: Ann's push went, the others have no usable device.
    assert statuses[cast.ann.user_id] == "sent"
    assert {statuses[u] for u in cast.district_a_users - {cast.ann.user_id}} == {"no_device"}


def test_reading_a_broadcast_is_for_managers_in_scope(client: Any, cast: Cast) -> None:
    sent = client.post(API, json=body(cast.tree.community_a.id), headers=as_(cast.organiser_a)).get_json()

    assert client.get(f"{API}/{sent['id']}", headers=as_(cast.staff_a)).status_code == 200
    assert client.get(f"{API}/{sent['id']}", headers=as_(cast.admin)).status_code == 200
    assert_problem(client.get(f"{API}/{sent['id']}", headers=as_(cast.organiser_b)), 404, "broadcast_not_found")
    assert_problem(client.get(f"{API}/{sent['id']}", headers=as_(cast.ann.user)), 403, "forbidden")
    assert_problem(client.get(f"{API}/{sent['id'] + 1000}", headers=as_(cast.staff_a)), 404, "broadcast_not_found")
    assert_problem(client.get(f"{API}/99999999999", headers=as_(cast.staff_a)), 404, "not_found")


def test_lists_show_broadcasts_in_scope_newest_first(client: Any, cast: Cast) -> None:
    to_a = client.post(API, json=body(cast.tree.community_a.id), headers=as_(cast.organiser_a)).get_json()
    to_district = client.post(API, json=body(cast.tree.district_a.id), headers=as_(cast.staff_a)).get_json()
    to_b = client.post(API, json=body(cast.tree.grid_b.id), headers=as_(cast.organiser_b)).get_json()
    to_city = client.post(API, json=body(cast.tree.city.id), headers=as_(cast.admin)).get_json()

    def ids(response: Any) -> list[int]:
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    assert ids(client.get(API, headers=as_(cast.admin))) == [to_city["id"], to_b["id"], to_district["id"], to_a["id"]]
    assert ids(client.get(API, headers=as_(cast.staff_a))) == [to_district["id"], to_a["id"]]
    assert ids(client.get(API, headers=as_(cast.organiser_a))) == [to_a["id"]]
    assert ids(client.get(API, headers=as_(cast.organiser_b))) == [to_b["id"]]
    assert ids(client.get(f"{API}?area_id={cast.tree.community_a.id}", headers=as_(cast.staff_a))) == [to_a["id"]]
    assert ids(client.get(f"{API}?area_id={cast.tree.district_b.id}", headers=as_(cast.admin))) == [to_b["id"]]

    first = client.get(f"{API}?limit=1", headers=as_(cast.staff_a)).get_json()
    assert [item["id"] for item in first["items"]] == [to_district["id"]]
    assert "reached" not in first["items"][0]
    second = client.get(f"{API}?limit=1&cursor={first['next_cursor']}", headers=as_(cast.staff_a)).get_json()
    assert [item["id"] for item in second["items"]] == [to_a["id"]]
    assert second["next_cursor"] is None

    assert_problem(
        client.get(f"{API}?area_id={cast.tree.district_b.id}", headers=as_(cast.staff_a)), 403, "out_of_scope"
    )
    assert_problem(client.get(f"{API}?area_id=999999", headers=as_(cast.staff_a)), 422, "validation_failed")
    assert_problem(client.get(f"{API}?area_id=x", headers=as_(cast.staff_a)), 422, "validation_failed")
    assert_problem(client.get(f"{API}?cursor=bogus", headers=as_(cast.staff_a)), 422, "validation_failed")
    assert_problem(client.get(f"{API}?limit=1000", headers=as_(cast.staff_a)), 422, "validation_failed")
    assert_problem(client.get(API, headers=as_(cast.ann.user)), 403, "forbidden")
