"""HTTP layer of devices: register a push token, list, remove, unregister at logout."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import auth_required, current_caller
from core.errors import error_docs
from core.idempotency import idempotent
from core.pagination import PageArgs, page_schema
from notifications.devices import service
from notifications.devices.schemas import (
    DeviceRegisterInput,
    DeviceRegisterSchema,
    DeviceRemovedSchema,
    DeviceSchema,
    DeviceTokenSchema,
)

blp = Blueprint("devices", __name__)
_errors = error_docs(blp)


@blp.route("/me/devices", methods=["POST"])
@auth_required()
@idempotent
@blp.arguments(DeviceRegisterSchema)
@blp.response(201, DeviceSchema)
@blp.alt_response(200, schema=DeviceSchema, description="The token was already yours: refreshed")
@_errors(401, 422)
def register_device(data: DeviceRegisterInput) -> Any:
    """Register this phone for pushes

    Call at every app start and whenever the push service gives the app a new token: 201 for a
    token new to you, 200 when it was already yours (refreshed, and active again after a logout).
    A token registered by another account moves to you (one phone, one user at a time). Tokens
    not registered again for DEVICE_STALE_DAYS (60) get no pushes. At most 10 devices per account
    stay active; registering more retires the least recently refreshed.
    """
    device, new = service.register_device(current_caller().user_id, data)
    return device, (201 if new else 200)


@blp.route("/me/devices", methods=["GET"])
@auth_required()
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_schema(DeviceSchema))
@_errors(401, 422)
def list_devices(args: dict[str, Any]) -> Any:
    """My active devices, most recently registered first"""
    return service.list_devices(current_caller().user_id, limit=args["limit"], cursor=args["cursor"])


@blp.route("/me/devices/<int:device_id>", methods=["DELETE"])
@auth_required()
@idempotent
@blp.response(204)
@_errors(401, 404)
def remove_device(device_id: int) -> None:
    """Stop pushes to one of my devices

    Removing it again is fine (204); another account's device is 404 device_not_found.
    """
    service.remove_device(current_caller().user_id, device_id)


@blp.route("/me/devices/unregister", methods=["POST"])
@auth_required()
@idempotent
@blp.arguments(DeviceTokenSchema)
@blp.response(200, DeviceRemovedSchema)
@_errors(401, 422)
def unregister_device(data: dict[str, Any]) -> Any:
    """Stop pushes to this phone (call before logging out)

    By token, since the app knows its token and not the device id. `removed` is false when the
    token is not an active device of yours; nothing is said about other accounts. When the last
    login of an account ends, all its devices stop receiving pushes anyway.
    """
    return {"removed": service.unregister_token(current_caller().user_id, data["token"])}
