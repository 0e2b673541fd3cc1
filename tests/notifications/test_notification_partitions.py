"""PostgreSQL: notifications partitioned by the month of created_at; every hot query reaches each
partition by an index (none is read whole), and the months are made ahead by the periodic task."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from core import partitions
from core.extensions import db
from notifications import service
from notifications.models import Notification

pytestmark = pytest.mark.postgresql

TABLE = Notification.__table__

QUERIES = {
    # notifications/delivery/claims.py claim_due: the CTE carries created_at into the UPDATE.
    "outbox claim": (
        "WITH due AS MATERIALIZED (SELECT id, created_at FROM notifications WHERE push_status = 'pending' "
        "AND push_due_at <= now() AND (push_claimed_until IS NULL OR push_claimed_until <= now()) "
        "ORDER BY push_due_at, urgent DESC, id LIMIT 100 FOR UPDATE SKIP LOCKED) "
        "UPDATE notifications SET push_claim = 'c' WHERE (id, created_at) IN (SELECT id, created_at FROM due) RETURNING id"
    ),
    "outbox finish": (
        "UPDATE notifications SET push_status = 'sent' WHERE id = :id AND created_at = :created_at AND push_claim = 'c'"
    ),
    "outage rows": (
        "SELECT id FROM notifications WHERE push_status = 'pending' AND push_wait = 'outage' ORDER BY push_due_at LIMIT 1"
    ),
    "inbox page": "SELECT id FROM notifications WHERE user_id = :user AND id < :id ORDER BY id DESC LIMIT 21",
    "inbox page, unread": (
        "SELECT id FROM notifications WHERE user_id = :user AND read_at IS NULL ORDER BY id DESC LIMIT 21"
    ),
    "unread count": "SELECT count(*) FROM notifications WHERE user_id = :user AND read_at IS NULL",
    "mark read": "UPDATE notifications SET read_at = now() WHERE id = :id AND created_at = :created_at AND read_at IS NULL",
    "mark all read": "UPDATE notifications SET read_at = now() WHERE user_id = :user AND read_at IS NULL AND id <= :id",
    "receipt lookup (and the inbox's own notification)": "SELECT id, created_at FROM notifications WHERE id IN (:id)",
    "a cause's rows (SOS listeners)": "SELECT id FROM notifications WHERE user_id IN (:user) AND dedupe_key IN ('k')",
    "retention, row by row": "SELECT id FROM notifications WHERE created_at < now() ORDER BY created_at LIMIT 1000",
}


@pytest.mark.parametrize("query", QUERIES.values(), ids=QUERIES.keys())
def test_every_hot_query_on_notifications_reaches_each_partition_by_an_index(user, query: str) -> None:
    partitions.ensure_months(TABLE, [date(2025, 1, 1), date(2025, 2, 1)])
    service.notify([user.id], "broadcast", {"title": "t", "body": "b"}, {}, now=datetime(2025, 1, 5, tzinfo=UTC))
    row = db.session.execute(sa.select(Notification.id, Notification.created_at).where(Notification.user_id == user.id)).one()
    # Tables this small are read whole when allowed: forbid it, so a partition without an index shows.
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db.session.execute(
        sa.text(f"EXPLAIN {query}"), {"user": user.id, "id": row.id, "created_at": row.created_at}
    ).scalars())
    assert "Seq Scan on notifications" not in plan, plan
    if "created_at = :created_at" in query:
        # Pruned to the row's own month at planning: no other month's index is even probed.
        assert re.findall(r"on (notifications_\w+)", plan) == ["notifications_p2025_01"] * len(re.findall(r"on notifications_", plan)), plan
    elif "created_at < now()" not in query:
        # Through the table: every partition, the default one too, is reached by its index.
        assert re.search(r"Index (Only )?Scan (Backward )?(using|on) notifications_default_", plan), plan


def test_the_periodic_task_makes_the_notifications_months_ahead(app, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.db import utcnow
    from core.tasks import celery

    monkeypatch.setitem(app.config, "PARTITION_MONTHS_AHEAD", 4)
    months = partitions.months_from(partitions.month_start(utcnow()), 5)
    expected = {partitions.partition_name("notifications", month) for month in months}
    missing = expected - {p.name for p in partitions.partitions("notifications")}

    made = celery.tasks["core.maintain_partitions"].apply().get()

    assert sorted(made["notifications"]) == sorted(missing) and missing  # the migration made three months
    assert expected <= {p.name for p in partitions.partitions("notifications")}
    assert celery.tasks["core.maintain_partitions"].apply().get()["notifications"] == []
    assert partitions.is_partition_name("notifications_p2027_01") and partitions.is_partition_name("notifications_default")


def test_the_outbox_claim_as_the_code_writes_it_probes_each_claimed_rows_own_month(user) -> None:
    from datetime import timedelta

    from core.db import utcnow
    from notifications.delivery.claims import claim_statement

    partitions.ensure_months(TABLE, [date(2025, 1, 1), date(2025, 2, 1)])
    service.notify([user.id], "broadcast", {"title": "t", "body": "b"}, {}, now=datetime(2025, 1, 5, tzinfo=UTC))
    statement = claim_statement(utcnow(), 100, "c", timedelta(minutes=5))
    compiled = statement.compile(dialect=db.session.get_bind().dialect)
    db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(db.session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars())

    assert "Seq Scan on notifications" not in plan, plan
    # The due rows by each partition's partial claim index, in its order (a Merge Append) ...
    assert re.search(r"Index Scan using notifications_default_push_due_at_urgent_id_idx", plan), plan
    # ... and each claimed row found again by its whole primary key, id and month.
    probes = re.findall(r"Index Cond: \(\(id = due\.id\) AND \(created_at = due\.created_at\)\)", plan)
    assert probes and len(probes) == len(re.findall(r"using notifications_\w+_pkey", plan)), plan
