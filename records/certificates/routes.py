"""HTTP layer of certificates: parse, authorise, call the service, serialise; and the public
verification page the QR code opens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint as PageBlueprint
from flask import Response, current_app, render_template, request, url_for
from flask_smorest import Blueprint

from core.auth import MANAGERS, OFFICIALS, Role, auth_required, current_caller
from core.errors import ApiError, error_docs
from core.extensions import client_address, limiter
from core.pagination import page_schema
from core.uploads import OCTET_STREAM, image_download_doc, image_response, upload_body_limit
from records.certificates import document as pdf
from records.certificates import seals, service, verification
from records.certificates.schemas import (
    CertificateIssueSchema,
    CertificateListArgs,
    CertificateRequestInput,
    CertificateRequestSchema,
    CertificateRevokeSchema,
    CertificateSchema,
    MyCertificateListArgs,
    SealSchema,
    SealUploadSchema,
    VerificationSchema,
)
from records.settings import CJK_FONT, PUBLIC_BASE_URL, VERIFY_LIMIT

blp = Blueprint(
    "records-certificates",
    __name__,
    url_prefix="/api/v1",
    description="Certificates of service (志愿服务记录证明): request, issue, PDF, revocation, public check, seals",
)
#: The public page the QR code opens (HTML, outside the API document).
pages = PageBlueprint("records-verify", __name__, template_folder="templates")

_errors = error_docs(blp)

# One budget per client address for the JSON check and the page together.
_limit_checks = limiter.shared_limit(
    lambda: current_app.config[VERIFY_LIMIT], "certificate-verify", key_func=client_address
)

PDF = "application/pdf"
_PDF_DOC = {
    "responses": {
        "200": {
            "description": "The certificate (A4, Chinese), or application/octet-stream when asked for by Accept",
            "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in (PDF, OCTET_STREAM)},
        }
    }
}


def _list_of(page: dict[str, Any]) -> dict[str, Any]:
    return {"items": [service.view(item) for item in page["items"]], "next_cursor": page["next_cursor"]}


# --- the volunteer's own -------------------------------------------------------------------------


@blp.route("/me/certificates", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(CertificateRequestSchema)
@blp.response(201, CertificateSchema)
@_errors(401, 403, 404, 422)
def request_certificate(data: CertificateRequestInput) -> Any:
    """Ask for a certificate of my service

    For the period `first_day`..`last_day` (local days, not after today) from `issuer_area_id`, the
    recording organisation: a community or an area above it whose subtree holds the grids where the
    hours were served. 422 no_hours_in_period when no hours count there then. Asking again for the
    same issuer and period answers 200 with the certificate already asked for (or issued).
    """
    certificate, created = service.request_certificate(current_caller(), data)
    return service.view(certificate), 201 if created else 200


@blp.route("/me/certificates", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(MyCertificateListArgs, location="query")
@blp.response(200, page_schema(CertificateSchema))
@_errors(401, 403, 404, 422)
def my_certificates(args: dict[str, Any]) -> Any:
    """My certificates, newest first"""
    return _list_of(service.list_own(current_caller(), args))


# --- managers ------------------------------------------------------------------------------------


@blp.route("/certificates", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(CertificateListArgs, location="query")
@blp.response(200, page_schema(CertificateSchema))
@_errors(401, 403, 422)
def list_certificates(args: dict[str, Any]) -> Any:
    """Certificates issued or asked of the areas in my subtree, newest first

    `area_id` narrows to a subtree inside mine (403 out_of_scope outside); `status` filters.
    """
    return _list_of(service.list_managed(current_caller(), args))


@blp.route("/certificates/<int:certificate_id>", methods=["GET"])
@auth_required()
@blp.response(200, CertificateSchema)
@_errors(401, 404)
def get_certificate(certificate_id: int) -> Any:
    """One certificate

    The volunteer's own; managers whose subtree holds its issuer or the volunteer's home grid.
    Any other is 404 certificate_not_found, as an id that does not exist.
    """
    return service.view(service.reachable(current_caller(), certificate_id))


@blp.route("/certificates/<int:certificate_id>/issue", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(CertificateIssueSchema)
@blp.response(200, CertificateSchema)
@_errors(401, 403, 404, 409, 422)
def issue_certificate(data: dict[str, Any], certificate_id: int) -> Any:
    """Issue a requested certificate

    By an organiser, staff or admin whose subtree holds the issuer (otherwise 403 out_of_scope).
    Freezes the hours that count under the issuer in the period, the content and places of the
    service, the volunteer's identity (ID number masked unless `full_id_number`) and the issuer's
    seal, and numbers it `<issuer code>-<year>-<sequence>` with no gaps. 409
    certificate_not_requested when already issued or revoked; 422 no_hours_in_period when the
    hours were voided since.
    """
    return service.view(service.issue(current_caller(), certificate_id, full_id_number=data["full_id_number"]))


@blp.route("/certificates/<int:certificate_id>/revoke", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(CertificateRevokeSchema)
@blp.response(200, CertificateSchema)
@_errors(401, 403, 404, 409, 422)
def revoke_certificate(data: dict[str, Any], certificate_id: int) -> Any:
    """Revoke an issued certificate, with a reason (audited)

    By the issuer's managers as for issuing. The public check then says revoked; the PDF still
    renders, marked 已撤销 with the day. 409 certificate_not_issued unless it is issued.
    """
    return service.view(service.revoke(current_caller(), certificate_id, data["reason"]))


@blp.route("/certificates/<int:certificate_id>/pdf", methods=["GET"])
@auth_required()
@blp.doc(**_PDF_DOC)
@_errors(401, 404, 409, 503)
def certificate_pdf(certificate_id: int) -> Any:
    """The certificate as a PDF

    Whoever may see it (as `GET /certificates/{certificate_id}`); 409 certificate_not_issued before
    it is issued; a revoked one renders marked 已撤销. 503 cjk_font_missing when the server has no
    Chinese font installed.
    """
    document = pdf.document_of(current_caller(), certificate_id, _verification_url)
    font = pdf.find_font(current_app.config[CJK_FONT])
    if font is None:
        raise pdf.font_missing()
    data = pdf.render(document, font, star_level=document.star_level)
    media = OCTET_STREAM if request.accept_mimetypes.best_match([PDF, OCTET_STREAM]) == OCTET_STREAM else PDF
    response = current_app.response_class(data, mimetype=media)
    response.headers["Content-Disposition"] = f'inline; filename="certificate-{document.number}.pdf"'
    response.headers["Cache-Control"] = "private, no-store"  # personal data
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _verification_url(number: str) -> str:
    base = current_app.config[PUBLIC_BASE_URL] or request.host_url
    return base.rstrip("/") + url_for("records-verify.verify_page", number=number)


# --- the public check ----------------------------------------------------------------------------


_NUMBER_PARAMETER = {
    "in": "path",
    "name": "number",
    "description": "The certificate number printed on it, `<issuer area code>-<year>-<sequence>`",
    "schema": {"type": "string", "minLength": 13, "maxLength": verification.NUMBER_MAX_LENGTH, "pattern": verification.NUMBER_PATTERN},
}


@blp.route("/certificates/verify/<path:number>", methods=["GET"], parameters=[_NUMBER_PARAMETER])
@_limit_checks
@blp.response(200, VerificationSchema)
@_errors(404, 429)
def verify_certificate(number: str) -> Any:
    """Check a certificate by its number (public, no login)

    Only what a verifier needs: the masked name, hours, period, issuer, date of issue, and whether
    it is valid or revoked (with the day). Unknown or malformed numbers are 404
    certificate_not_found. Rate-limited per client address (RECORDS_VERIFY_LIMIT): 429.
    """
    return verification.verify(number)


@pages.route("/verify/<path:number>")
@_limit_checks
def verify_page(number: str) -> Response:
    """The page the QR code opens: the same facts as the JSON check, in Chinese."""
    try:
        facts: dict[str, Any] | None = verification.verify(number)
        status = 200
    except ApiError:
        facts, status = None, 404
    response = Response(render_template("certificates/verify.html", facts=facts), status=status, mimetype="text/html")
    response.headers["Content-Language"] = "zh"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- seals ---------------------------------------------------------------------------------------


@blp.route("/areas/<int:area_id>/seal", methods=["PUT"])
@upload_body_limit("REPORT_PHOTO_MAX_BYTES")
@auth_required(*OFFICIALS)
@blp.arguments(SealUploadSchema, location="files")
@blp.response(200, SealSchema)
@_errors(401, 403, 404, 413, 415, 422, 503)
def put_seal(data: dict[str, Any], area_id: int) -> Any:
    """Set an area's seal image (staff and admins of the area)

    multipart/form-data with `file`: PNG (transparency kept: a seal on a transparent ground prints
    over the text) or JPEG, checked and re-encoded as photos are (415, 413, 422 photo_unreadable).
    Certificates issued afterwards carry it; those already issued keep theirs. 403 out_of_scope
    outside my area.
    """
    return seals.seal_view(seals.set_seal(current_caller(), area_id, data["file"]))


@blp.route("/areas/<int:area_id>/seal", methods=["GET"])
@auth_required(*OFFICIALS)
@blp.doc(**image_download_doc("The seal image (PNG or JPEG)"))
@_errors(401, 403, 404)
def get_seal(area_id: int) -> Any:
    """An area's seal image (staff and admins of the area); 404 seal_not_found when it has none"""
    seal, data = seals.get_seal(current_caller(), area_id)
    return image_response(data, seal.content_type, "private, no-store")
