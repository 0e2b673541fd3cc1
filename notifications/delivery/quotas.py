"""Daily caps per push channel: our own (``PUSH_DAILY_CAP_<CHANNEL>``) and the vendor's.

Vendors cap what an app sends per day (vivo and OPPO notably) and punish an app that keeps calling
after the cap. Before a provider batch goes out, the run reserves its messages on the channel's
counter row for the vendor's day (``PUSH_QUOTA_RESET_TIMEZONE``, Asia/Shanghai): one ``INSERT … ON
CONFLICT DO UPDATE … RETURNING`` that takes what still fits under the cap, so two workers never
pass it together (the row is locked for the statement, and each sees the other's count). What does
not fit is not sent: :data:`~notifications.delivery.push.Outcome.QUOTA` holds its row pending
until the next reset, urgent ones first then (the claim's order). A vendor's own "quota reached"
closes the channel's day the same way, whatever our count says. The count is of messages handed
to the vendor, reserved before sending (a run that dies after reserving has still used them).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core.db import insert_on_conflict
from core.extensions import db
from notifications.delivery.models import PushQuotaDay

#: The cap when a channel has none: counted all the same.
UNCAPPED = 2_000_000_000

_table = PushQuotaDay.__table__
_RESERVE = insert_on_conflict(
    _table, ("channel", "day", "sent", "reserved", "exhausted"), ("channel", "day"),
    update={
        # What fits: all n, or what is left under the cap.
        "reserved": "CASE WHEN push_quota_days.sent + :n <= :cap THEN :n ELSE :cap - push_quota_days.sent END",
        "sent": "CASE WHEN push_quota_days.sent + :n <= :cap THEN push_quota_days.sent + :n ELSE :cap END",
    },
    where="NOT push_quota_days.exhausted AND push_quota_days.sent < :cap",
    returning=("reserved",),
).bindparams(sa.bindparam("n", type_=sa.Integer), sa.bindparam("cap", type_=sa.Integer))
_EXHAUST = insert_on_conflict(
    _table, ("channel", "day", "sent", "reserved", "exhausted"), ("channel", "day"),
    update={"exhausted": "true"}, returning=("exhausted",),
)


def cap_of(channel: str, config: Mapping[str, Any]) -> int:
    """``PUSH_DAILY_CAP_<CHANNEL>``; 0 or unset: none."""
    return int(config.get(f"PUSH_DAILY_CAP_{channel.upper()}") or 0) or UNCAPPED


def vendor_day(now: datetime, config: Mapping[str, Any]) -> date:
    return now.astimezone(ZoneInfo(config["PUSH_QUOTA_RESET_TIMEZONE"])).date()


def next_reset(now: datetime, config: Mapping[str, Any]) -> datetime:
    """The next midnight of the vendor's day, in UTC."""
    zone = ZoneInfo(config["PUSH_QUOTA_RESET_TIMEZONE"])
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0), tzinfo=zone).astimezone(now.tzinfo or zone)


def reserve(channel: str, n: int, now: datetime, config: Mapping[str, Any]) -> int:
    """Take up to ``n`` of the channel's day; returns how many may be sent (0: held until the reset).
    Flushes only: commit at once, so the row is not kept locked while sending."""
    if n <= 0:
        return 0
    cap = cap_of(channel, config)
    first = min(n, cap)
    taken = db.session.execute(
        _RESERVE,
        {"channel": channel, "day": vendor_day(now, config), "sent": first, "reserved": first,
         "exhausted": False, "n": n, "cap": cap},
    ).scalar()
    return int(taken or 0)


def exhaust(channel: str, now: datetime, config: Mapping[str, Any]) -> None:
    """The vendor said its quota is reached: nothing more today."""
    db.session.execute(
        _EXHAUST,
        {"channel": channel, "day": vendor_day(now, config), "sent": 0, "reserved": 0, "exhausted": True},
    )


def sent_today(channel: str, now: datetime, config: Mapping[str, Any]) -> int:
    row = db.session.get(PushQuotaDay, (channel, vendor_day(now, config)))
    return row.sent if row is not None else 0
