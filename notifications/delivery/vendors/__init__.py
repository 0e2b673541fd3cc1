"""The makers' own push services beside FCM: Huawei (``hms``), Honor, Xiaomi (``mi``), OPPO, vivo.

Each vendor is one module here with the same four names, so the outbox, the receipts endpoint and
the settings find them without knowing any vendor:

- ``CHANNEL``: its :class:`~notifications.devices.models.PushChannel`;
- ``build(config, http_timeout) -> PushProvider | None``: its provider, or None when its
  credentials are not set (then a recording provider stands in, as for FCM);
- ``RECEIPTS``: its :class:`~notifications.delivery.receipts.ReceiptHandler`, or None;
- its settings live in ``vendors/settings.py`` (one section per vendor).

docs/push-vendors.md holds each vendor's protocol with its sources.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from notifications.delivery.push import PushProvider
    from notifications.delivery.receipts import ReceiptHandler

VENDOR_MODULES: tuple[str, ...] = (
    "notifications.delivery.vendors.huawei",
    "notifications.delivery.vendors.honor",
    "notifications.delivery.vendors.xiaomi",
    "notifications.delivery.vendors.oppo",
    "notifications.delivery.vendors.vivo",
)


def modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in VENDOR_MODULES]


def build_providers(config: Mapping[str, Any], http_timeout: float) -> dict[str, PushProvider]:
    """Every vendor's provider: the real one when its credentials are set, else the recording one."""
    from notifications.delivery.push import RecordingProvider

    built: dict[str, PushProvider] = {}
    for module in modules():
        provider = module.build(config, http_timeout)
        built[module.CHANNEL] = provider or RecordingProvider(module.CHANNEL, config["PUSH_RECORD_PATH"])
    return built


#: Receipt handlers registered beside the vendor modules' own (:func:`register_receipt_handler`).
_registered: dict[str, ReceiptHandler] = {}


def register_receipt_handler(channel: str, handler: ReceiptHandler | None) -> None:
    """Take (or, with None, stop taking) receipts for ``channel`` through ``handler``: for a channel
    that is not one of the vendor modules (tests use it for a channel of their own)."""
    if handler is None:
        _registered.pop(channel, None)
    else:
        _registered[channel] = handler


def receipt_handlers() -> dict[str, ReceiptHandler]:
    found = {module.CHANNEL: module.RECEIPTS for module in modules() if module.RECEIPTS is not None}
    return {**found, **_registered}
