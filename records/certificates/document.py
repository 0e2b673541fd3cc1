"""The certificate as a PDF in Chinese (fpdf2), from the fields frozen at issue.

fpdf2 embeds a subset of a TrueType font (only the glyphs used), so a certificate is some tens of
kilobytes and its text can be searched and copied. The font is the one the project's set-up
installs (Debian's fonts-wqy-microhei, ``make install``) or ``RECORDS_CJK_FONT``; it is never
fetched at run time, and without one the download is 503 ``cjk_font_missing`` instead of a PDF of
empty boxes. The QR code (segno) opens the public verification page.

Rendered on every download rather than stored: the inputs are frozen on the certificate (the seal
by its storage key), so the same certificate renders the same, nothing is kept twice, and a revoked
certificate renders with its revocation marked.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from core import crypto, i18n, photos
from core.auth import Caller
from core.errors import ApiError, Conflict, NotFound
from records import identity
from records.certificates.models import CertificateStatus
from records.certificates.service import hours_text, issuer_of, local_day, reachable
from records.stars import service as stars

#: TrueType CJK fonts Debian installs, in order of preference (``fc-list :lang=zh`` finds more; these
#: have TrueType outlines, which fpdf2 subsets).
DEBIAN_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
TITLE = "志愿服务记录证明"
FONT = "cjk"
RED = (200, 20, 30)
INK = (20, 20, 20)
_PAGE_WIDTH = 210.0
_MARGIN = 20.0


# --- the document --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    """Everything the PDF prints, from the columns frozen on the certificate at issue."""

    number: str
    volunteer_name: str
    id_type: str
    id_number: str
    volunteer_number: str
    first_day: date
    last_day: date
    hours: str
    content: str
    places: str
    issuer_name: str
    issued_on: date
    seal: bytes | None
    verification_url: str
    revoked_on: date | None
    star_level: str | None  # 一星志愿者 … 五星志愿者, certified at issue


def document_of(caller: Caller, certificate_id: int, verification_url: Callable[[str], str]) -> Document:
    """The PDF's fields of an issued (or revoked) certificate the caller reaches; 409 before issue.

    ``verification_url(number)`` makes the URL the QR code opens.
    """
    certificate = reachable(caller, certificate_id)
    if certificate.status == CertificateStatus.REQUESTED or certificate.number is None:
        raise Conflict("The certificate has not been issued yet.", code="certificate_not_issued")
    issuer = issuer_of(certificate)
    seal = None
    if certificate.seal_key:
        try:
            seal = photos.photo_store().get(certificate.seal_key)
        except NotFound:  # the file was lost: the placeholder rather than no certificate
            seal = None
    return Document(
        number=certificate.number,
        volunteer_name=certificate.volunteer_name or "",
        id_type=identity.ID_TYPE,
        id_number=crypto.decrypt(certificate.id_number_encrypted) if certificate.id_number_encrypted else "",
        volunteer_number=certificate.volunteer_number or "",
        first_day=certificate.first_day,
        last_day=certificate.last_day,
        hours=hours_text(certificate.minutes or 0),
        content=certificate.content or "",
        places=certificate.places or "",
        issuer_name=certificate.issuer_name or issuer.name,
        issued_on=certificate.issued_on or certificate.first_day,
        seal=seal,
        verification_url=verification_url(certificate.number),
        revoked_on=local_day(certificate.revoked_at, issuer) if certificate.revoked_at else None,
        star_level=stars.level_name(certificate.star_level) if certificate.star_level else None,
    )



# --- the font ------------------------------------------------------------------------------------


def font_missing() -> ApiError:
    return ApiError(
        "No Chinese font is installed for certificates; install fonts-wqy-microhei (make install) or set RECORDS_CJK_FONT.",
        code="cjk_font_missing",
        status=503,
    )


i18n.register_titles(i18n.title("cjk_font_missing", "Certificate font missing"))
i18n.register_messages(
    i18n.N_(
        "No Chinese font is installed for certificates; install fonts-wqy-microhei (make install) or set RECORDS_CJK_FONT."
    )
)


def find_font(configured: str | None) -> Path | None:
    """The configured font file, or the first Debian CJK font present; None when there is none."""
    candidates = (configured,) if configured else DEBIAN_CJK_FONTS
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def render(document: Document, font: Path, *, star_level: str | None = None) -> bytes:
    """The certificate's one A4 page; ``star_level`` (e.g. 三星志愿者) is printed when given: the
    star levels' feature passes the volunteer's certified level, if any."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_title(f"{TITLE} {document.number}")
    pdf.set_creator("Shouwang")
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.add_font(FONT, fname=str(font))
    pdf.set_text_color(*INK)
    _frame(pdf)

    pdf.set_font(FONT, size=10)
    pdf.set_xy(_MARGIN, 24)
    pdf.cell(_PAGE_WIDTH - 2 * _MARGIN, 6, f"证明编号：{document.number}", align="R")

    pdf.set_font(FONT, size=26)
    pdf.set_xy(_MARGIN, 36)
    pdf.cell(_PAGE_WIDTH - 2 * _MARGIN, 14, TITLE, align="C")

    width = _PAGE_WIDTH - 2 * _MARGIN
    pdf.set_font(FONT, size=13)
    pdf.set_xy(_MARGIN, 64)
    pdf.multi_cell(
        width, 9,
        # No spaces: fpdf2 wraps at spaces first, and Chinese runs on, broken at any character.
        f"　　兹证明{document.volunteer_name}（证件类型：{document.id_type}；证件号码："
        f"{document.id_number}；志愿者编号：{document.volunteer_number}）于"
        f"{chinese_date(document.first_day)}至{chinese_date(document.last_day)}期间在本组织"
        f"登记参加志愿服务，累计志愿服务时长{document.hours}小时。",
        align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT,
    )
    pdf.ln(3)
    rows = [
        ("服务时长", f"{document.hours} 小时"),
        ("服务内容", document.content),
        ("服务地点", document.places),
    ]
    if star_level:
        rows.append(("星级", star_level))
    for label, value in rows:
        pdf.set_x(_MARGIN)
        pdf.set_font(FONT, size=12)
        pdf.cell(26, 8, f"{label}：")
        pdf.multi_cell(width - 26, 8, value or "—", align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
    pdf.set_x(_MARGIN)
    pdf.set_font(FONT, size=13)
    pdf.cell(width, 10, "　　特此证明。", new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    _issuer_block(pdf, document)
    _qr_block(pdf, document)
    if document.revoked_on is not None:
        _revoked_mark(pdf, document.revoked_on)
    return bytes(pdf.output())


def _frame(pdf: FPDF) -> None:
    pdf.set_draw_color(*RED)
    pdf.set_line_width(0.8)
    pdf.rect(10, 10, _PAGE_WIDTH - 20, 277)
    pdf.set_line_width(0.3)
    pdf.rect(12.5, 12.5, _PAGE_WIDTH - 25, 272)


def _issuer_block(pdf: FPDF, document: Document) -> None:
    """The issuer's name and the date of issue, bottom right, under the seal."""
    right = _PAGE_WIDTH - _MARGIN
    pdf.set_font(FONT, size=13)
    pdf.set_xy(right - 90, 214)
    pdf.cell(90, 8, f"出具单位：{document.issuer_name}", align="R")
    pdf.set_xy(right - 90, 223)
    pdf.cell(90, 8, f"出具日期：{chinese_date(document.issued_on)}", align="R")
    centre_x, centre_y, radius = right - 28, 214, 21
    if document.seal is not None:
        pdf.image(io.BytesIO(document.seal), x=centre_x - radius, y=centre_y - radius, w=2 * radius, h=2 * radius,
                  keep_aspect_ratio=True)
    else:
        _placeholder_seal(pdf, document.issuer_name, centre_x, centre_y, radius)


def _placeholder_seal(pdf: FPDF, name: str, centre_x: float, centre_y: float, radius: float) -> None:
    """A plain stand-in where the issuer has no seal image: a red ring, a star and the name."""
    pdf.set_draw_color(*RED)
    pdf.set_fill_color(*RED)
    pdf.set_line_width(1.2)
    pdf.circle(centre_x, centre_y, radius, style="D")
    pdf.star(centre_x, centre_y - 2, 2.6, 6.5, 5, rotate_degrees=-90, style="F")
    size = min(11.0, 2 * radius * 0.8 / max(len(name), 1) * 72 / 25.4)
    pdf.set_font(FONT, size=size)
    pdf.set_text_color(*RED)
    pdf.set_xy(centre_x - radius, centre_y + 6)
    pdf.cell(2 * radius, 5, name, align="C")
    pdf.set_text_color(*INK)


def _qr_block(pdf: FPDF, document: Document) -> None:
    """The QR code of the verification URL, bottom left, with the URL written out."""
    qr = segno.make(document.verification_url, error="m")
    image = io.BytesIO()
    qr.save(image, kind="png", scale=8, border=2)
    image.seek(0)
    size = 32
    pdf.image(image, x=_MARGIN + 2, y=238, w=size, h=size)
    pdf.set_font(FONT, size=9)
    pdf.set_xy(_MARGIN + size + 6, 246)
    pdf.multi_cell(
        _PAGE_WIDTH - 2 * _MARGIN - size - 8, 5,
        f"扫描二维码或访问以下网址核验本证明：\n{document.verification_url}\n"
        "本证明依据《志愿服务记录与证明出具办法（试行）》出具。",
    )


def _revoked_mark(pdf: FPDF, revoked_on: date) -> None:
    """Under the title, a line saying so (text readers skip diagonal text), and across the page
    已撤销 and the day, in red."""
    pdf.set_text_color(*RED)
    pdf.set_font(FONT, size=12)
    pdf.set_xy(_MARGIN, 52)
    pdf.cell(_PAGE_WIDTH - 2 * _MARGIN, 8, f"本证明已于{chinese_date(revoked_on)}撤销（已撤销），不再有效。", align="C")
    with pdf.rotation(30, x=_PAGE_WIDTH / 2, y=150):
        pdf.set_font(FONT, size=72)
        pdf.set_xy(0, 132)
        pdf.cell(_PAGE_WIDTH, 30, "已撤销", align="C")
        pdf.set_font(FONT, size=16)
        pdf.set_xy(0, 162)
        pdf.cell(_PAGE_WIDTH, 10, f"撤销日期：{chinese_date(revoked_on)}", align="C")
    pdf.set_text_color(*INK)
