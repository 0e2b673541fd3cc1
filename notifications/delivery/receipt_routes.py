"""HTTP layer of delivery receipts: the callback URL each vendor posts its receipts (回执) to."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import current_app, request
from flask_smorest import Blueprint
from marshmallow import fields

from core.errors import error_docs
from core.extensions import client_address, limiter
from notifications.delivery import receipt_service as service

DEFAULT_RECEIPT_LIMIT = "600 per minute"

blp = Blueprint("push-receipts", __name__)
_errors = error_docs(blp)


class ReceiptResultSchema(ma.Schema):
    received = fields.Integer(required=True, metadata={"description": "Receipts in the request"})
    recorded = fields.Integer(
        required=True, metadata={"description": "New ones recorded (repeats and unknown notifications are not)"}
    )


def _receipt_limit() -> str:
    return current_app.config.get("PUSH_RECEIPT_LIMIT_PER_ADDRESS") or DEFAULT_RECEIPT_LIMIT


@blp.route("/push-receipts/<string(minlength=2,maxlength=16):channel>", methods=["POST"])
@limiter.limit(_receipt_limit, key_func=client_address)
@blp.response(200, ReceiptResultSchema)
@_errors(401, 403, 404, 422, 429)
def post_receipts(channel: str) -> Any:
    """A push vendor's delivery receipts (called by the vendor, not the app)

    No login: the vendor's proof is checked instead (its signature, or the secret and the signed
    references we gave it); missing proof is 401, a wrong one 403, and neither changes anything. A
    channel that takes no receipts is 404 receipt_channel_not_found; a body that is not the vendor's
    is 422. A receipt for a notification we do not have is counted and ignored; the same receipt
    again is recorded once. Rate-limited per address (PUSH_RECEIPT_LIMIT_PER_ADDRESS).
    """
    return service.accept(channel, request)
