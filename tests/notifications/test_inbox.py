"""The inbox through the API: lists, read marks, who sees what; writing notifications once."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from accounts.models import User
from core.extensions import db
from notifications import service
from notifications.models import Notification
from tests import factories
from tests.problems import EN, assert_problem

API = "/api/v1"


def send(user: User, n: int, **kwargs: Any) -> None:
    """``n`` broadcast-style notifications to ``user``, oldest first."""
    for i in range(n):
        service.notify([user.id], "broadcast", {"title": f"标题{i}", "body": f"内容{i}"}, {"n": i}, **kwargs)


def rows_of(user: User) -> list[Notification]:
    return list(
        db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id).order_by(Notification.id))
    )


# --- the inbox -----------------------------------------------------------------------------------


def test_the_inbox_lists_newest_first_with_cursor_pages(client, user, headers) -> None:
    send(user, 5)
    first = client.get(f"{API}/me/notifications?limit=3", headers=headers)
    assert first.status_code == 200, first.get_json()
    page = first.get_json()
    assert [item["title"] for item in page["items"]] == ["标题4", "标题3", "标题2"]
    item = page["items"][0]
    assert set(item) == {
        "id",
        "kind",
        "title",
        "body",
        "data",
        "urgent",
        "created_at",
        "read_at",
        "push_status",
        "pushed_at",
        "delivery",
    }
    assert item["kind"] == "broadcast" and item["body"] == "内容4"
    assert item["data"] == {"type": "broadcast", "n": "4"}
    assert item["urgent"] is False and item["read_at"] is None
    assert item["push_status"] in {"pending", "sent", "failed", "no_device"}
    rest = client.get(f"{API}/me/notifications?limit=3&cursor={page['next_cursor']}", headers=headers).get_json()
    assert [item["title"] for item in rest["items"]] == ["标题1", "标题0"] and rest["next_cursor"] is None


def test_each_user_sees_only_their_own(client, tree, user, headers) -> None:
    other = factories.make_volunteer(tree.grid_a).user
    send(user, 1)
    send(other, 2)
    assert len(client.get(f"{API}/me/notifications", headers=headers).get_json()["items"]) == 1
    assert client.get(f"{API}/me/notifications/unread-count", headers=headers).get_json() == {"unread": 1}


def test_marking_one_read_and_the_unread_filter(client, user, headers) -> None:
    send(user, 3)
    oldest, middle, newest = rows_of(user)
    assert client.get(f"{API}/me/notifications/unread-count", headers=headers).get_json() == {"unread": 3}

    marked = client.post(f"{API}/me/notifications/{middle.id}/read", headers=headers)
    assert marked.status_code == 200, marked.get_json()
    first_read_at = marked.get_json()["read_at"]
    assert first_read_at is not None
    again = client.post(f"{API}/me/notifications/{middle.id}/read", headers=headers).get_json()
    assert again["read_at"] == first_read_at  # the first time is kept

    assert client.get(f"{API}/me/notifications/unread-count", headers=headers).get_json() == {"unread": 2}
    unread = client.get(f"{API}/me/notifications?unread_only=true", headers=headers).get_json()
    assert [item["id"] for item in unread["items"]] == [newest.id, oldest.id]
    everything = client.get(f"{API}/me/notifications?unread_only=false", headers=headers).get_json()
    assert len(everything["items"]) == 3


def test_another_users_notification_is_not_found_and_stays_unread(client, tree, user) -> None:
    send(user, 1)
    [mine] = rows_of(user)
    stranger = factories.headers_for(factories.make_volunteer(tree.grid_a).user, **EN)

    assert_problem(
        client.post(f"{API}/me/notifications/{mine.id}/read", headers=stranger), 404, "notification_not_found"
    )
    assert_problem(
        client.post(f"{API}/me/notifications/{mine.id + 999}/read", headers=stranger), 404, "notification_not_found"
    )
    assert_problem(client.post(f"{API}/me/notifications/99999999999/read", headers=stranger), 404, "not_found")
    assert client.post(f"{API}/me/notifications/read-all", json={}, headers=stranger).get_json() == {"marked": 0}
    db.session.refresh(mine)
    assert mine.read_at is None


def test_read_all_marks_everything_or_up_to_the_newest_seen(client, tree, user, headers) -> None:
    send(user, 3)
    _oldest, middle, _newest = rows_of(user)
    other = factories.make_volunteer(tree.grid_a).user
    send(other, 1)

    up_to = client.post(f"{API}/me/notifications/read-all", json={"up_to_id": middle.id}, headers=headers)
    assert up_to.status_code == 200, up_to.get_json()
    assert up_to.get_json() == {"marked": 2}
    assert [row.read_at is not None for row in rows_of(user)] == [True, True, False]

    # No body at all is "everything".
    assert client.post(f"{API}/me/notifications/read-all", headers=headers).get_json() == {"marked": 1}
    assert client.get(f"{API}/me/notifications/unread-count", headers=headers).get_json() == {"unread": 0}
    assert rows_of(other)[0].read_at is None


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=nonsense", "cursor"),
        ("unread_only=perhaps", "unread_only"),
    ],
)
def test_bad_inbox_queries_are_refused(client, headers, query, field) -> None:
    problem = assert_problem(client.get(f"{API}/me/notifications?{query}", headers=headers), 422, "validation_failed")
    assert field in problem["errors"]


def test_read_all_refuses_a_bad_bound_and_marks_nothing(client, user, headers) -> None:
    send(user, 1)
    for bound in (0, -1, "x", 2**40):
        response = client.post(f"{API}/me/notifications/read-all", json={"up_to_id": bound}, headers=headers)
        assert_problem(response, 422, "validation_failed")
    assert rows_of(user)[0].read_at is None


def test_the_inbox_needs_a_login(client) -> None:
    for path in ("/me/notifications", "/me/notifications/unread-count", "/me/notification-settings"):
        assert_problem(client.get(API + path), 401, "unauthorized")
    assert_problem(client.post(f"{API}/me/notifications/read-all"), 401, "unauthorized")


def test_notify_is_once_per_user_and_dedupe_key(user, tree) -> None:
    other = factories.make_volunteer(tree.grid_a).user
    assert (
        service.notify([user.id, other.id, user.id], "volunteer_approved", {}, {"volunteer_id": 1}, dedupe_key="k") == 2
    )
    assert service.notify([user.id, other.id], "volunteer_approved", {}, {"volunteer_id": 1}, dedupe_key="k") == 0
    assert service.notify([user.id], "volunteer_approved", {}, {"volunteer_id": 1}) == 1  # no key: again
    assert len(rows_of(user)) == 2 and len(rows_of(other)) == 1


def test_deactivated_accounts_get_nothing(user) -> None:
    user.is_active = False
    db.session.flush()
    assert service.notify([user.id, 10**6], "volunteer_approved", {}, {}) == 0
    assert rows_of(user) == []
