"""Validators and fields shared by several packages (phone numbers, national IDs, time zones)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import marshmallow as ma
import phonenumbers

from core import i18n
from core.errors import MAX_DB_INT
from core.timeutil import is_valid_timezone

i18n.register_messages(
    i18n.N_("Not a valid mainland China mobile number."),
    i18n.N_("Not a valid national ID number."),
    i18n.N_("Unknown time zone."),
    i18n.N_("Must not contain NUL characters."),
)

# What str.strip() removes, spelled out: a pattern's \s means less in ECMA-262 (the document's
# dialect) than in Python (which strips \x1c-\x1f and \x85 too).
_WHITESPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_PATTERN = re.compile(r"^[0-9]{17}[0-9X]$")  # \d would take any script's digits


def normalise_cn_mobile(value: str) -> str:
    """Return E.164 (+8613800138000) or raise ValidationError."""
    try:
        number = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        raise ma.ValidationError("Not a valid mainland China mobile number.") from None
    if (
        number.country_code != 86
        or not phonenumbers.is_valid_number(number)
        or phonenumbers.number_type(number) != phonenumbers.PhoneNumberType.MOBILE
    ):
        raise ma.ValidationError("Not a valid mainland China mobile number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_id_is_valid(value: str) -> bool:
    """GB 11643-1999: 17 digits, a valid birth date, and the ISO 7064 MOD 11-2 check character."""
    if not _ID_PATTERN.match(value):
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17]


class CNMobile(ma.fields.String):
    """A mainland mobile number, accepted in common spellings, stored and shown as E.164."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.setdefault("metadata", {})
        metadata.setdefault("example", "+8613800138000")
        metadata.setdefault(
            "description", "A mainland China mobile number (checked against the numbering plan); "
            "+86, spaces and dashes are optional. Shown as E.164"
        )
        super().__init__(validate=ma.validate.Length(max=32), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return normalise_cn_mobile(super()._deserialize(value, attr, data, **kwargs))


class NationalID(ma.fields.String):
    """A resident ID number (GB 11643): 17 digits and a check character; the checksum and birth
    date are checked too, which no pattern can say."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.setdefault("metadata", {})
        metadata.setdefault("pattern", rf"^[{_WHITESPACE}]*[0-9]{{17}}[0-9Xx][{_WHITESPACE}]*$")
        metadata.setdefault("description", "居民身份证号码: 18 characters with a valid birth date and check character")
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if not national_id_is_valid(text):
            raise ma.ValidationError("Not a valid national ID number.")
        return text


class TimeZoneName(ma.fields.String):
    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.setdefault("metadata", {})
        metadata.setdefault("example", "Asia/Shanghai")
        metadata.setdefault("maxLength", 64)
        description = metadata.get("description")
        metadata["description"] = f"{description}. An IANA time zone name" if description else "An IANA time zone name"
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 64 or not is_valid_timezone(text):
            raise ma.ValidationError("Unknown time zone.")
        return text


class Text(ma.fields.String):
    """Text as people type it: surrounding whitespace trimmed, no NUL characters (PostgreSQL refuses
    them in text), and not blank unless ``allow_blank``. Validators run on the trimmed value."""

    def __init__(self, *, allow_blank: bool = False, **kwargs: Any) -> None:
        # The same rule for the OpenAPI document: no NUL, and (unless blank is allowed) something
        # besides whitespace.
        pattern = r"^[^\x00]*$" if allow_blank else rf"^[^\x00]*[^\x00{_WHITESPACE}][^\x00]*$"
        kwargs.setdefault("metadata", {}).setdefault("pattern", pattern)
        super().__init__(**kwargs)
        self.allow_blank = allow_blank

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("Must not contain NUL characters.")
        text = text.strip()
        if not text and not self.allow_blank:
            raise ma.ValidationError("Field may not be blank.")
        return text


def id_field(*, strict: bool = True, **kwargs: Any) -> ma.fields.Integer:
    """A record id: 1 to PostgreSQL's integer maximum. ``strict=False`` for query strings."""
    return ma.fields.Integer(strict=strict, validate=ma.validate.Range(min=1, max=MAX_DB_INT), **kwargs)
