"""The public check of a certificate by its number (the JSON endpoint and the page the QR code opens):
only what a verifier needs — the masked name, hours, period, issuer, date of issue, valid or
revoked. Unknown, malformed and not-yet-issued numbers are one answer.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from core.errors import NotFound
from core.extensions import db
from records import identity
from records.certificates.models import Certificate, CertificateStatus
from records.certificates.service import hours_of, hours_text, issuer_of, local_day

# --- public verification -------------------------------------------------------------------------


#: What a number looks like: an area code (grids.schemas.CODE_PATTERN), the year and six digits or more.
NUMBER_PATTERN = r"^[A-Za-z0-9_-]{1,32}-[0-9]{4}-[0-9]{6,}$"
NUMBER_MAX_LENGTH = 64


def verification_not_found() -> NotFound:
    """Unknown, malformed, not yet issued: one answer."""
    return NotFound("Certificate not found.", code="certificate_not_found")


def verify(number: str) -> dict[str, Any]:
    """What a verifier may see of the certificate with this number (nothing else)."""
    # Checked before the lookup: a NUL or an overlong text would otherwise reach the database
    # and answer differently from a number that is simply unknown.
    if len(number) > NUMBER_MAX_LENGTH or not re.fullmatch(NUMBER_PATTERN, number, flags=re.ASCII):
        raise verification_not_found()
    certificate = db.session.scalar(sa.select(Certificate).where(Certificate.number == number))
    if certificate is None or certificate.status == CertificateStatus.REQUESTED:
        raise verification_not_found()
    issuer = issuer_of(certificate)
    return {
        "number": certificate.number,
        "masked_name": identity.masked_name(certificate.volunteer_name or ""),
        "hours": hours_of(certificate.minutes or 0),
        "hours_text": hours_text(certificate.minutes or 0),
        "first_day": certificate.first_day,
        "last_day": certificate.last_day,
        "issuer_name": certificate.issuer_name or issuer.name,
        "issued_on": certificate.issued_on,
        "status": "revoked" if certificate.status == CertificateStatus.REVOKED else "valid",
        "revoked_on": local_day(certificate.revoked_at, issuer) if certificate.revoked_at else None,
    }
