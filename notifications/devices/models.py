"""Devices: the phones that receive pushes, one row per push token."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.db import UTCDateTime, utcnow
from core.extensions import Model


class Platform(StrEnum):
    ANDROID = "android"
    IOS = "ios"
    HARMONYOS = "harmonyos"


class PushChannel(StrEnum):
    """The push service a device is reached through; one sender ("provider") per channel.

    Most mainland Android phones have no Google Play services: the makers' own services reach them
    (``notifications/delivery/vendors/``). FCM stays for iOS (APNs through FCM) and phones with
    Google services.
    """

    FCM = "fcm"
    HMS = "hms"  # Huawei Push Kit
    HONOR = "honor"
    MI = "mi"  # Xiaomi MiPush
    OPPO = "oppo"
    VIVO = "vivo"


class Device(Model):
    """A phone's push token. One user may have several; a token belongs to one user at a time."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed by ix_devices_user_active.
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(sa.Text)
    # Tokens can be long (FCM up to a few hundred characters, vendor tokens differ): unique by hash.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    platform: Mapped[str] = mapped_column(sa.String(16))
    channel: Mapped[str] = mapped_column(sa.String(16), default=PushChannel.FCM)
    # The app's own random id of the phone (kept across token changes): a phone's tokens on
    # several channels (a vendor's and FCM's) share it, and a push goes to one of them.
    installation_id: Mapped[str | None] = mapped_column(sa.String(64))
    app_version: Mapped[str | None] = mapped_column(sa.String(32))
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The app registers its token again whenever it starts or the token changes; a token not
    # refreshed for DEVICE_STALE_DAYS is skipped (the phone is probably gone).
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # logout, unregistered (the push service said the token is dead), moved (to another user)
    deactivation_reason: Mapped[str | None] = mapped_column(sa.String(32))

    __table_args__ = (
        sa.Index("ix_devices_user_active", "user_id", "active"),
        sa.CheckConstraint("platform IN ('android','ios','harmonyos')", name="platform_known"),
    )
