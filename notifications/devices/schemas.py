"""marshmallow schemas of devices: registering a token, unregistering it, a device as shown."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TypedDict

import marshmallow as ma
from flask import current_app
from marshmallow import fields, validate

from core import i18n
from core.db import utcnow
from core.fields import Instant, StrictBoolean
from core.validators import Text
from notifications.devices.models import Device, Platform, PushChannel

_TOKEN_TEXT = i18n.N_("Use printable ASCII characters without spaces.")
_LOCALE_TEXT = i18n.N_("Use a language tag such as zh, en or zh-CN.")

i18n.register_messages(_TOKEN_TEXT, _LOCALE_TEXT)

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
        metadata={"description": "The push service that issued the token: fcm (Google; iOS through APNs), "
                  "hms (Huawei), honor, mi (Xiaomi), oppo, vivo"},
    )
    installation_id = fields.String(
        load_default=None, allow_none=True,
        validate=[validate.Length(min=1, max=64), _printable_token],
        metadata={"pattern": "^[!-~]+$", "description": "The app's own random id of this phone (a UUID it "
                  "keeps): a phone that registers tokens on several channels gets each push once, through "
                  "the first of PUSH_CHANNEL_PREFERENCE, and through the next when that token dies"},
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


class DeviceRegisterInput(TypedDict):
    """What :class:`DeviceRegisterSchema` loads."""

    token: str
    platform: str
    channel: str  # defaulted by the schema
    installation_id: str | None  # defaulted by the schema
    app_version: str | None  # defaulted by the schema
    locale: str | None  # defaulted by the schema


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
    installation_id = fields.String(allow_none=True)
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
