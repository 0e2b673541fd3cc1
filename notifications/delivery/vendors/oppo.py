"""The oppo push provider (channel `oppo`): not built yet; its credentials are never set, so
its pushes are recorded (see ``vendors/__init__.py`` for what this module must hold)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifications.delivery.push import PushProvider
from notifications.delivery.receipts import ReceiptHandler
from notifications.devices.models import PushChannel

CHANNEL = PushChannel.OPPO
RECEIPTS: ReceiptHandler | None = None


def build(config: Mapping[str, Any], http_timeout: float) -> PushProvider | None:
    return None
