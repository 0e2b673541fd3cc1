"""marshmallow schemas of devices, the inbox, quiet hours and city reminder settings."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask import current_app
from marshmallow import fields, validate

from core import i18n
from core.db import utcnow
from core.fields import HHMM_PATTERN, Instant, QueryBoolean, StrictBoolean
from core.pagination import PageArgs
from core.validators import Text, id_field
from notifications.models import Device, Platform, PushChannel, PushStatus
from notifications.quiet_hours import parse_hhmm

#: Reminders from 5 minutes up to a week before a shift, at most four per city.
REMINDER_MIN_MINUTES = 5
REMINDER_MAX_MINUTES = 7 * 24 * 60
REMINDER_MAX_COUNT = 4

_TOKEN_TEXT = "Use printable ASCII characters without spaces."
_HHMM_TEXT = "Use HH:MM (24-hour clock)."
_SAME_TEXT = "Quiet hours must end at another time than they start; turn them off instead."
_DISTINCT_TEXT = "Each offset may appear only once."
_LOCALE_TEXT = "Use a language tag such as zh, en or zh-CN."

i18n.register_messages(
    {
        _TOKEN_TEXT: "请使用不含空格的可打印 ASCII 字符。",
        _HHMM_TEXT: "请使用 HH:MM（24 小时制）。",
        _SAME_TEXT: "免打扰的开始和结束时间不能相同；如需关闭请将其停用。",
        _DISTINCT_TEXT: "每个提前量只能出现一次。",
        _LOCALE_TEXT: "请使用 zh、en 或 zh-CN 这样的语言标记。",
    }
)

# Push tokens of every channel (FCM, APNs, vendors) are ASCII without spaces; anything else is junk.
_TOKEN_PATTERN = re.compile(r"[!-~]+")
_LOCALE_PATTERN = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,4})?")


def _printable_token(value: str) -> None:
    # fullmatch: validate.Regexp anchors only at the start, and "$" lets a trailing newline through.
    if not _TOKEN_PATTERN.fullmatch(value):
        raise ma.ValidationError(_TOKEN_TEXT)


def _language_tag(value: str) -> None:
    if not _LOCALE_PATTERN.fullmatch(value):
        raise ma.ValidationError(_LOCALE_TEXT)


class DeviceRegisterSchema(ma.Schema):
    token = fields.String(
        required=True,
        validate=[validate.Length(min=1), _printable_token],
        metadata={"pattern": "^[!-~]+$", "description": "The push token the phone got from its push "
                  "service; at most DEVICE_TOKEN_MAX_LENGTH (4096) characters"},
    )
    platform = fields.String(required=True, validate=validate.OneOf([p.value for p in Platform]))
    channel = fields.String(
        load_default=PushChannel.FCM.value,
        validate=validate.OneOf([c.value for c in PushChannel]),
        metadata={"description": "The push service that issued the token (only fcm so far)"},
    )
    app_version = Text(load_default=None, allow_none=True, validate=validate.Length(min=1, max=32))
    locale = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=8), _language_tag],
        metadata={
            "pattern": "^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,4})?$",
            "description": "The phone's language (texts follow the account's language, `PATCH /me`)",
        },
    )


class DeviceTokenSchema(ma.Schema):
    token = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=8192), _printable_token],
        metadata={"pattern": "^[!-~]+$"},
    )


class DeviceRemovedSchema(ma.Schema):
    removed = StrictBoolean(
        required=True,
        metadata={"description": "false when the token was not an active device of yours"},
    )


class DeviceSchema(ma.Schema):
    id = fields.Integer(required=True)
    platform = fields.String(required=True, metadata={"enum": [p.value for p in Platform]})
    channel = fields.String(required=True, metadata={"enum": [c.value for c in PushChannel]})
    app_version = fields.String(allow_none=True)
    locale = fields.String(allow_none=True)
    token_tail = fields.Method(
        "_token_tail", required=True,
        metadata={"type": "string", "description": "The last 6 characters of the token"},
    )
    active = StrictBoolean(required=True)
    stale = fields.Method(
        "_stale", required=True,
        metadata={"type": "boolean", "description": "Not refreshed for DEVICE_STALE_DAYS: "
                  "no pushes until the app registers the token again"},
    )
    registered_at = Instant(required=True)
    refreshed_at = Instant(required=True)

    def _token_tail(self, device: Device) -> str:
        return device.token[-6:]

    def _stale(self, device: Device) -> bool:
        return device.refreshed_at < utcnow() - timedelta(days=current_app.config["DEVICE_STALE_DAYS"])


class InboxArgs(PageArgs):
    unread_only = QueryBoolean(load_default=False)


class NotificationSchema(ma.Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    body = fields.String(required=True)
    data = fields.Dict(
        keys=fields.String(), values=fields.String(), required=True,
        metadata={"description": "Deep link for the app: `type` (the kind) and ids, as strings"},
    )
    urgent = StrictBoolean(required=True)
    created_at = Instant(required=True)
    read_at = Instant(required=True, allow_none=True)
    push_status = fields.String(
        required=True,
        metadata={"enum": [s.value for s in PushStatus], "description": "pending (also while "
                  "quiet hours hold it back), sent, failed (after retries), no_device"},
    )
    pushed_at = Instant(required=True, allow_none=True)


class UnreadCountSchema(ma.Schema):
    unread = fields.Integer(required=True)


class ReadAllSchema(ma.Schema):
    up_to_id = id_field(
        load_default=None, allow_none=True,
        metadata={"description": "Only notifications up to this id (the newest one the user saw)"},
    )


class ReadAllResultSchema(ma.Schema):
    marked = fields.Integer(required=True)


class HHMM(fields.String):
    """"HH:MM" in, minutes after midnight out."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault("pattern", HHMM_PATTERN)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(HHMM_PATTERN, text):  # time.fromisoformat also takes "T2330"
            raise ma.ValidationError(_HHMM_TEXT)
        return parse_hhmm(text)


class QuietHoursUpdateSchema(ma.Schema):
    quiet_hours_enabled = StrictBoolean(required=True)
    quiet_start = HHMM(required=True, metadata={"example": "22:00"})
    quiet_end = HHMM(required=True, metadata={"example": "07:00"})

    @ma.validates_schema
    def _start_is_not_end(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("quiet_start") is not None and data.get("quiet_start") == data.get("quiet_end"):
            raise ma.ValidationError(_SAME_TEXT, field_name="quiet_end")


class QuietHoursSchema(ma.Schema):
    quiet_hours_enabled = StrictBoolean(required=True)
    quiet_start = fields.String(required=True, metadata={"example": "22:00"})
    quiet_end = fields.String(required=True, metadata={"example": "07:00"})
    timezone = fields.String(required=True, metadata={"description": "Your area's time zone"})
    is_default = StrictBoolean(required=True)
    updated_at = Instant(required=True, allow_none=True)


def _distinct(values: list[int]) -> None:
    if len(set(values)) != len(values):
        raise ma.ValidationError(_DISTINCT_TEXT)


class ReminderSettingsUpdateSchema(ma.Schema):
    offsets_minutes = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=REMINDER_MIN_MINUTES, max=REMINDER_MAX_MINUTES)),
        required=True,
        validate=[validate.Length(min=1, max=REMINDER_MAX_COUNT), _distinct],
        metadata={"description": "Minutes before each assigned shift a reminder goes out, e.g. "
                  "[1440, 60]", "uniqueItems": True},
    )


class ReminderSettingsSchema(ma.Schema):
    area_id = fields.Integer(required=True)
    offsets_minutes = fields.List(fields.Integer(), required=True)
    is_default = StrictBoolean(required=True, metadata={"description": "true: REMINDER_OFFSETS_MINUTES"})
    updated_by = fields.Integer(required=True, allow_none=True)
    updated_at = Instant(required=True, allow_none=True)
