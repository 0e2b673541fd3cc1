"""Which vendor category each kind of notification is sent as: one table, overridable per deployment.

The vendors fold or throttle "marketing" messages and deliver service messages promptly only when a
message is marked as one (Huawei's ``category``, Xiaomi's ``channel_id``, OPPO's private channel,
vivo's ``classification``, Honor's importance; docs/push-vendors.md). Every kind we send today is a
service message: shift reminders, assignment changes, call-outs, SOS. The table still names each
kind, so a kind added later is sent as the channel's ``default`` until someone decides.
``PUSH_CATEGORIES`` (JSON: ``{"<channel>": {"<kind>": "<value>", "default": "<value>"}}``) replaces
entries of this table for a deployment (channel ids and templates differ per app).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from flask import current_app

#: Every kind sent today (``notifications.texts.KINDS``): all of them service messages — shift
#: reminders, assignment changes, call-outs, SOS, the answers to a volunteer's own requests.
SERVICE_KINDS: tuple[str, ...] = (
    "absence_alert", "assignment_cancelled", "assignment_changed", "assignment_created", "backup_promoted",
    "badge_earned", "broadcast", "invitation_sent", "redemption_status", "report_alert",
    "report_status_changed", "shift_cancelled", "shift_reminder", "sos_acknowledged", "sos_alert", "sos_ended",
    "sos_escalated", "star_level_certified", "volunteer_approved", "volunteer_rejected", "waitlist_promoted",
)  # fmt: skip

#: channel → kind (or "default") → the vendor's value. Vendors add their own section.
DEFAULTS: dict[str, dict[str, str]] = {
    # OPPO ``notification.category``: TODO is of the 通讯与服务 class (unlimited, alerts); a kind
    # not listed goes as MARKETING (内容与营销: counted and silent), never as a service message.
    "oppo": {**dict.fromkeys(SERVICE_KINDS, "TODO"), "default": "MARKETING"},
    # vivo ``category`` (its ``classification`` follows: TODO is a 系统消息, MARKETING an 运营消息).
    "vivo": {**dict.fromkeys(SERVICE_KINDS, "TODO"), "default": "MARKETING"},
    # Huawei ``android.category``: WORK (工作事项提醒) needs the app's self-classification right in
    # AppGallery Connect; a kind nobody classified goes as MARKETING (silent, capped), never as WORK.
    "hms": {**dict.fromkeys(SERVICE_KINDS, "WORK"), "default": "MARKETING"},
    # Honor ``android.notification.importance``: NORMAL = service and communication, LOW = marketing.
    "honor": {**dict.fromkeys(SERVICE_KINDS, "NORMAL"), "default": "LOW"},
}


@lru_cache(maxsize=16)
def _overrides(raw: str | None) -> Mapping[str, Mapping[str, str]]:
    if not raw:
        return {}
    parsed: Any = json.loads(raw)
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise ValueError("PUSH_CATEGORIES must be a JSON object of objects")
    return parsed


def category(channel: str, kind: str) -> str | None:
    """The vendor value for ``kind`` on ``channel`` (the deployment's, else the table's; the
    channel's ``default`` for a kind not listed); None when the channel has none."""
    table = _table(channel, current_app.config.get("PUSH_CATEGORIES"))
    return table.get(kind, table.get("default"))


@lru_cache(maxsize=64)
def _table(channel: str, raw: str | None) -> Mapping[str, str]:
    # Made once per channel and setting, not per message: a provider asks for every message it sends.
    return {**DEFAULTS.get(channel, {}), **_overrides(raw).get(channel, {})}
