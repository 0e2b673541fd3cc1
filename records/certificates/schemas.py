"""marshmallow schemas of certificates: request, issue, revoke, lists, the public check, seals."""

from __future__ import annotations

from datetime import date
from typing import TypedDict

import marshmallow as ma
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from core.fields import Instant, StrictBoolean
from core.pagination import PageArgs
from core.validators import id_field
from records.certificates.models import CertificateStatus
from volunteers.schemas import short_text

_STATUSES = [status.value for status in CertificateStatus]
#: Dates a certificate may name: the service kept here is recent, and the columns and the local
#: calendar need four-digit years.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


class CertificateRequestSchema(ma.Schema):
    issuer_area_id = id_field(
        required=True,
        metadata={"description": "The recording organisation: a community or an area above it whose subtree holds the grids served"},
    )
    first_day = fields.Date(
        required=True, validate=validate.Range(min=FIRST_DAY, max=LAST_DAY), metadata={"description": "First local day of the period"}
    )
    last_day = fields.Date(
        required=True,
        validate=validate.Range(min=FIRST_DAY, max=LAST_DAY),
        metadata={"description": "Last local day of the period (inclusive; not after today)"},
    )

    @ma.validates_schema
    def _ordered(self, data: dict[str, date], **_kwargs: object) -> None:
        if data["last_day"] < data["first_day"]:
            raise ma.ValidationError("The period ends before it begins.", field_name="last_day")


class CertificateRequestInput(TypedDict):
    issuer_area_id: int
    first_day: date
    last_day: date


class CertificateIssueSchema(ma.Schema):
    full_id_number = StrictBoolean(
        load_default=False,
        metadata={"description": "Print the full national ID number (default: masked, first 4 and last 4 digits)"},
    )


class CertificateRevokeSchema(ma.Schema):
    reason = short_text(500, required=True, metadata={"description": "Why the certificate is revoked (audited)"})


class CertificateListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(_STATUSES), load_default=None)
    area_id = id_field(
        strict=False, load_default=None,
        metadata={"description": "Certificates whose issuer lies in this subtree (default: your own area)"},
    )


class MyCertificateListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(_STATUSES), load_default=None)


class CertificateSchema(ma.Schema):
    id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    issuer_area_id = fields.Integer(required=True)
    issuer_name = fields.String(required=True, metadata={"description": "As printed (frozen at issue)"})
    first_day = fields.Date(required=True)
    last_day = fields.Date(required=True)
    status = fields.String(required=True, metadata={"description": ", ".join(_STATUSES)})
    requested_at = Instant(required=True)
    number = fields.String(
        required=True, allow_none=True, metadata={"description": "`<issuer area code>-<year>-<sequence, 6 digits>`, set at issue"}
    )
    issued_at = Instant(required=True, allow_none=True)
    issued_on = fields.Date(required=True, allow_none=True, metadata={"description": "Date of issue (issuer's local day)"})
    minutes = fields.Integer(required=True, allow_none=True, metadata={"description": "Hours that count, frozen at issue"})
    hours = fields.Float(required=True, allow_none=True)
    content = fields.String(required=True, allow_none=True)
    places = fields.String(required=True, allow_none=True)
    full_id_number = StrictBoolean(required=True)
    star_level = fields.Integer(
        required=True, allow_none=True,
        metadata={"description": "The star level printed: the highest certified after its publicity (公示) at issue"},
    )
    revoked_at = Instant(required=True, allow_none=True)
    revoke_reason = fields.String(required=True, allow_none=True)


class VerificationSchema(ma.Schema):
    """What a verifier sees: nothing else (no full name, no ID number, no volunteer number)."""

    number = fields.String(required=True)
    masked_name = fields.String(required=True, metadata={"description": "张三 → 张*, 张三丰 → 张*丰"})
    hours = fields.Float(required=True)
    first_day = fields.Date(required=True)
    last_day = fields.Date(required=True)
    issuer_name = fields.String(required=True)
    issued_on = fields.Date(required=True)
    status = fields.String(required=True, metadata={"description": "valid or revoked"})
    revoked_on = fields.Date(required=True, allow_none=True, metadata={"description": "Issuer's local day of revocation"})


class SealUploadSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "A PNG (transparency kept) or JPEG image of the seal"})


class SealSchema(ma.Schema):
    area_id = fields.Integer(required=True)
    content_type = fields.String(required=True)
    uploaded_at = Instant(required=True)
