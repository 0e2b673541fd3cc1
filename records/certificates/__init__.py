"""Certificates of service (志愿服务记录证明): requested by a volunteer, issued by the recording
organisation, numbered without gaps per issuer and year, rendered as a Chinese PDF with the
issuer's seal and a QR code, publicly verifiable, revocable."""
