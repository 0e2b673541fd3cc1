"""Notification history that stays fast (issue 19): once per user and cause across months, receipts
that carry their notification's month, and retention (NOTIFICATION_RETENTION_DAYS) run by its task.

On both dialects; PostgreSQL's partitions (by the month of ``created_at``) are checked where they
show: which partition a row is in, which months retention drops whole. The query plans are in
``test_notification_partitions.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from accounts.models import User
from core import partitions
from core.db import utcnow
from core.extensions import db
from core.tasks import celery
from notifications import service
from notifications.delivery import vendors
from notifications.delivery.models import PushReceipt
from notifications.delivery.receipts import signed_reference
from notifications.models import Notification, NotificationDedupe
from notifications.retention import retention_cutoff
from tests import factories, races
from tests.notifications.test_push_receipts import CHANNEL, SECRET, SharedSecretReceipts

API = "/api/v1"
US = timedelta(microseconds=1)
TABLE = Notification.__table__


@pytest.fixture(autouse=True)
def handler() -> Iterator[None]:
    vendors.register_receipt_handler(CHANNEL, SharedSecretReceipts())
    yield
    vendors.register_receipt_handler(CHANNEL, None)


def on_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def tell(user: User, at: datetime, key: str | None = None, title: str = "集合") -> int:
    return service.notify([user.id], "broadcast", {"title": title, "body": "今晚巡逻"}, {}, dedupe_key=key, now=at)


def partition_of(user: User) -> dict[datetime, str]:
    """Where each of the user's notifications is stored: created_at → partition (PostgreSQL)."""
    rows = db.session.execute(
        sa.text("SELECT created_at, CAST(CAST(tableoid AS regclass) AS text) FROM notifications WHERE user_id = :user"),
        {"user": user.id},
    ).all()
    return {at.astimezone(UTC): name for at, name in rows}


def inbox(client: Any, user: User) -> list[dict[str, Any]]:
    response = client.get(f"{API}/me/notifications?limit=50", headers=factories.headers_for(user))
    assert response.status_code == 200, response.get_json()
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


# --- once per user and cause, across months ---------------------------------------------------------


def test_a_cause_told_on_a_months_last_instant_is_not_told_again_on_the_next_months_first(client, user) -> None:
    month = partitions.month_start(utcnow())
    partitions.ensure_months(TABLE, [previous_month(month), month])
    first_instant = partitions.month_bounds(month)[0]

    assert tell(user, first_instant - US, key="cause:1", title="第一次") == 1
    assert tell(user, first_instant, key="cause:1", title="第二次") == 0
    assert tell(user, first_instant, key="cause:2", title="另一件事") == 1

    assert [item["title"] for item in inbox(client, user)] == ["另一件事", "第一次"]
    if on_postgresql():
        assert partition_of(user) == {
            first_instant - US: partitions.partition_name("notifications", previous_month(month)),
            first_instant: partitions.partition_name("notifications", month),
        }


@pytest.mark.committing
def test_two_writers_either_side_of_a_month_edge_tell_a_cause_once(app: Flask) -> None:
    with app.app_context():
        grid = factories.make_branch()[-1]
        user = factories.make_volunteer(grid).user
        month = partitions.month_start(utcnow())
        partitions.ensure_months(TABLE, [previous_month(month), month])
        db.session.commit()
        user_id, edge = user.id, partitions.month_bounds(month)[0]
    barrier = races.barrier(2)

    def write(at: datetime) -> int:
        with app.app_context():
            barrier.wait()
            written = service.notify([user_id], "broadcast", {"title": "t", "body": "b"}, {}, dedupe_key="edge", now=at)
            db.session.commit()
            return written

    written = races.run_threads([lambda: write(edge - US), lambda: write(edge)])

    with app.app_context():
        rows = db.session.scalars(sa.select(Notification.created_at).where(Notification.user_id == user_id)).all()
        keys = db.session.scalars(sa.select(NotificationDedupe.created_at).where(NotificationDedupe.user_id == user_id)).all()
    assert sorted(written) == [0, 1]
    assert len(rows) == 1 and keys == rows  # the key holds the created_at of the one written


# --- receipts carry their notification's created_at -------------------------------------------------


def test_a_receipt_carries_its_notifications_created_at_and_shows_in_the_inbox(client, user) -> None:
    at = datetime(2025, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)
    tell(user, at)
    notification = db.session.scalars(sa.select(Notification).where(Notification.user_id == user.id)).one()

    response = client.post(
        f"{API}/push-receipts/{CHANNEL}", headers={"X-Secret": SECRET},
        json=[{"param": signed_reference(CHANNEL, notification.id), "ok": True, "status": "delivered"}],
    )

    assert response.status_code == 200, response.get_json()
    receipt = db.session.scalars(sa.select(PushReceipt).where(PushReceipt.notification_id == notification.id)).one()
    assert receipt.notification_created_at == at
    assert inbox(client, user)[0]["delivery"] == {"delivered": 1, "failed": 0}


# --- retention ---------------------------------------------------------------------------------------


def _receipt_for(notification_id: int, created_at: datetime) -> None:
    db.session.add(PushReceipt(
        notification_id=notification_id, notification_created_at=created_at, channel=CHANNEL,
        delivered=True, status="delivered", received_at=created_at,
    ))
    db.session.flush()


def _ids(user: User) -> dict[datetime, int]:
    rows = db.session.execute(sa.select(Notification.created_at, Notification.id).where(Notification.user_id == user.id))
    return {at: notification_id for at, notification_id in rows}


def _days() -> int:
    from flask import current_app

    return int(current_app.config["NOTIFICATION_RETENTION_DAYS"])


def test_the_task_drops_a_month_from_the_instant_it_is_wholly_due_and_deletes_the_partly_due_rows(
    client, user, monkeypatch: pytest.MonkeyPatch
) -> None:
    jan, feb = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    partitions.ensure_months(TABLE, [date(2025, 1, 1), date(2025, 2, 1)])
    now = feb + timedelta(days=_days())  # the cutoff is February's first instant: January is wholly due
    january = [jan, feb - US]
    for index, at in enumerate(january):
        tell(user, at, key=f"january:{index}", title=f"一月{index}")
    # February: only partly due once the clock moves on by a day (its first day).
    tell(user, feb, key="february:0", title="二月0")
    tell(user, feb + timedelta(days=1), title="二月1")
    tell(user, now - US, title="最近")  # unread and urgent or not, kept: younger than the retention
    for at, notification_id in _ids(user).items():
        _receipt_for(notification_id, at)

    monkeypatch.setattr("notifications.retention.utcnow", lambda: now - US)
    assert celery.tasks["notifications.enforce_retention"].apply().get() == {
        "notification_partitions_dropped": 0, "notifications": 1,  # January's first row only
    }
    monkeypatch.setattr("notifications.retention.utcnow", lambda: now)
    result = celery.tasks["notifications.enforce_retention"].apply().get()

    assert [item["title"] for item in inbox(client, user)] == ["最近", "二月1", "二月0"]
    if on_postgresql():
        assert result == {"notification_partitions_dropped": 1, "notifications": 0}
        names = {p.name for p in partitions.partitions("notifications")}
        assert "notifications_p2025_01" not in names and "notifications_p2025_02" in names
    else:
        assert result == {"notification_partitions_dropped": 0, "notifications": 1}
    kept = set(_ids(user).values())
    receipts = set(db.session.scalars(sa.select(PushReceipt.notification_id)))
    keys = set(db.session.scalars(sa.select(NotificationDedupe.dedupe_key).where(NotificationDedupe.user_id == user.id)))
    assert receipts == kept and keys == {"february:0"}

    # A day later February's first day is due, row by row: its key goes with it.
    monkeypatch.setattr("notifications.retention.utcnow", lambda: now + timedelta(days=1))
    assert celery.tasks["notifications.enforce_retention"].apply().get() == {
        "notification_partitions_dropped": 0, "notifications": 1,
    }
    assert [item["title"] for item in inbox(client, user)] == ["最近", "二月1"]
    assert not db.session.scalars(sa.select(NotificationDedupe).where(NotificationDedupe.user_id == user.id)).all()


def test_the_cutoff_is_strict_and_the_setting_moves_it(app: Flask, user, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 6, 15, 12, tzinfo=UTC)
    monkeypatch.setitem(app.config, "NOTIFICATION_RETENTION_DAYS", 30)
    cutoff = retention_cutoff(now)
    assert cutoff == now - timedelta(days=30)
    tell(user, cutoff - US, title="到期")
    tell(user, cutoff, title="保留")

    monkeypatch.setattr("notifications.retention.utcnow", lambda: now)
    assert celery.tasks["notifications.enforce_retention"].apply().get()["notifications"] == 1
    assert set(_ids(user)) == {cutoff}


def test_the_default_partition_is_never_dropped_its_due_rows_go_row_by_row(user) -> None:
    old = datetime(2023, 5, 5, tzinfo=UTC)
    tell(user, old)
    if on_postgresql():
        assert set(partition_of(user).values()) == {"notifications_default"}

    result = celery.tasks["notifications.enforce_retention"].apply().get()

    assert result == {"notification_partitions_dropped": 0, "notifications": 1}
    if on_postgresql():
        assert "notifications_default" in {p.name for p in partitions.partitions("notifications")}
