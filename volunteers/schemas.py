"""marshmallow schemas of volunteers: output, create, update (partial) and query arguments.

Unknown fields are rejected (marshmallow's default RAISE): a volunteer editing their own profile can
only send the fields its update schema declares, so status, kind, certificate and the like can never
be mass-assigned.
"""

from __future__ import annotations

import itertools
import re
from datetime import time
from typing import Any, NotRequired, TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core import i18n
from core.fields import HHMM_PATTERN, FullMatch, Instant, Language, StrictBoolean, UpdateSchema
from core.pagination import PageArgs
from core.validators import CNMobile, NationalID, Text, id_field
from volunteers.models import VolunteerStatus

MAX_SLOTS = 42
MAX_SKILLS = 20

i18n.register_messages(
    i18n.N_("Use 2–32 lowercase letters, digits or underscores."),
    i18n.N_("Consent to the privacy terms is required."),
    i18n.N_("Use HH:MM (24-hour clock)."),
    i18n.N_("The end must be after the start."),
    i18n.N_("Overlaps another slot on the same weekday."),
    i18n.N_("Unknown volunteer kind."),
)


def short_text(max_length: int, **kwargs: Any) -> Text:
    """Trimmed text of 1 to ``max_length`` characters. ``Text`` itself refuses blank; the minimum
    is stated too so that the OpenAPI document shows it (``minLength: 1``)."""
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


def kind_code_field(**kwargs: Any) -> Text:
    """A reference to a volunteer kind by its code (checked against the table by the service)."""
    return Text(validate=validate.Length(min=2, max=32), **kwargs)


class SkillList(fields.List):
    """0–20 skills of 1–50 characters each; repeats are dropped, first spelling and order kept."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(short_text(50), validate=validate.Length(max=MAX_SKILLS), **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any | None]:
        skills = super()._deserialize(value, attr, data, **kwargs)  # each a string, by short_text
        return list(dict.fromkeys(skills))


class AcceptedConsent(fields.Field):
    """Only the JSON literal ``true``: no "yes", 1 or "true" strings count as consent."""

    # marshmallow declares it on Field as a plain attribute, so not a ClassVar here either.
    default_error_messages = {"required": "Consent to the privacy terms is required."}  # noqa: RUF012

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if value is not True:
            raise ma.ValidationError("Consent to the privacy terms is required.")
        return True


_HHMM = re.compile(HHMM_PATTERN)


class LocalTime(fields.Time):
    """A wall-clock time ``HH:MM`` (24-hour) in the home grid's time zone."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.setdefault("metadata", {})
        metadata.setdefault("example", "19:00")
        metadata.setdefault("pattern", HHMM_PATTERN)
        super().__init__(format="%H:%M", **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> time:
        if not isinstance(value, str) or not _HHMM.fullmatch(value):
            raise ma.ValidationError("Use HH:MM (24-hour clock).")
        return super()._deserialize(value, attr, data, **kwargs)


def _reason(required: bool) -> Text:
    return short_text(500, required=required, allow_none=not required)


# --- kinds -------------------------------------------------------------------------------------


class VolunteerKindSchema(ma.Schema):
    id = fields.Integer(dump_only=True)
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    builtin = StrictBoolean(dump_only=True)
    created_at = Instant(dump_only=True)


class VolunteerKindCreateSchema(ma.Schema):
    code = fields.String(
        required=True,
        validate=FullMatch(
            r"^[a-z0-9_]{2,32}$", error="Use 2–32 lowercase letters, digits or underscores."
        ),
        metadata={"example": "herder_sentinel"},
    )
    name_zh = short_text(50, required=True)
    name_en = short_text(50, required=True)


class VolunteerKindCreateInput(TypedDict):
    """What :class:`VolunteerKindCreateSchema` loads."""

    code: str
    name_zh: str
    name_en: str


class KindRefSchema(ma.Schema):
    code = fields.String()
    name_zh = fields.String()
    name_en = fields.String()


# --- volunteer output --------------------------------------------------------------------------


class GridRefSchema(ma.Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    path = fields.String()


class EmergencyContactSchema(ma.Schema):
    name = short_text(50, required=True)
    phone = CNMobile(required=True)


class EmergencyContactInput(TypedDict):
    """What :class:`EmergencyContactSchema` loads."""

    name: str
    phone: str


class VolunteerSchema(ma.Schema):
    """A volunteer as shown to themself or to a manager in scope (built by ``service.view``)."""

    id = fields.Integer()
    user_id = fields.Integer()
    real_name = fields.String()
    phone = fields.String(metadata={"description": "E.164; shown in full to managers in scope"})
    national_id = fields.String(
        metadata={
            "description": "Masked (1502**********1234) unless the caller is staff, an admin "
            "or the volunteer themself"
        }
    )
    kind = fields.Nested(KindRefSchema)
    home_grid = fields.Nested(GridRefSchema)
    status = fields.String(metadata={"enum": [s.value for s in VolunteerStatus]})
    status_reason = fields.String(allow_none=True)
    skills = fields.List(fields.String())
    emergency_contact = fields.Nested(EmergencyContactSchema, allow_none=True)
    certificate_no = fields.String(allow_none=True, metadata={"description": "聘任证书编号"})
    armband_no = fields.String(allow_none=True)
    consent_version = fields.String()
    consented_at = Instant()
    closure_requested_at = Instant(allow_none=True)
    created_at = Instant()
    updated_at = Instant()


class StatusChangeSchema(ma.Schema):
    id = fields.Integer()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    reason = fields.String(allow_none=True)
    actor_id = fields.Integer(allow_none=True)
    at = Instant()


# --- registration and self-service -------------------------------------------------------------


class RegistrationSchema(ma.Schema):
    real_name = short_text(50, required=True)
    phone = CNMobile(required=True)
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=8, max=128)
    )
    national_id = NationalID(required=True, load_only=True)
    kind = kind_code_field(
        required=True,
        metadata={"description": "Code of a volunteer kind", "example": "volunteer_police"},
    )
    home_grid_id = id_field(required=True)
    skills = SkillList(load_default=list)
    emergency_contact = fields.Nested(EmergencyContactSchema, allow_none=True, load_default=None)
    consent = AcceptedConsent(
        required=True,
        metadata={"type": "boolean", "enum": [True], "description": "Must be exactly true"},
    )
    locale = Language()


class RegistrationInput(TypedDict):
    """What :class:`RegistrationSchema` loads."""

    real_name: str
    phone: str
    password: str
    national_id: str
    kind: str
    home_grid_id: int
    skills: list[str]  # defaulted by the schema
    emergency_contact: EmergencyContactInput | None  # defaulted by the schema
    consent: bool
    locale: NotRequired[str]


class OwnProfileUpdateSchema(UpdateSchema):
    """What a volunteer may change themself; everything else is refused as an unknown field."""

    skills = SkillList()
    emergency_contact = fields.Nested(EmergencyContactSchema, allow_none=True)
    locale = Language()


class OwnProfileUpdateInput(TypedDict, total=False):
    """What :class:`OwnProfileUpdateSchema` loads."""

    skills: list[str]
    emergency_contact: EmergencyContactInput | None
    locale: str


class AvailabilitySlotSchema(ma.Schema):
    weekday = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=0, max=6),
        metadata={"description": "0 = Monday … 6 = Sunday"},
    )
    start = LocalTime(required=True)
    end = LocalTime(required=True, metadata={"description": "Exclusive; 23:59 at the latest"})

    @ma.validates_schema
    def _start_before_end(self, data: dict[str, Any], **_: Any) -> None:
        if data["start"] >= data["end"]:
            raise ma.ValidationError("The end must be after the start.", field_name="end")


class AvailabilityInputSchema(ma.Schema):
    slots = fields.List(
        fields.Nested(AvailabilitySlotSchema),
        required=True,
        validate=validate.Length(max=MAX_SLOTS),
    )

    @ma.validates_schema
    def _no_overlap(self, data: dict[str, Any], **_: Any) -> None:
        ordered = sorted(enumerate(data["slots"]), key=lambda pair: (pair[1]["weekday"], pair[1]["start"]))
        errors: dict[int, dict[str, list[str]]] = {}
        for (_first, earlier), (index, later) in itertools.pairwise(ordered):
            if earlier["weekday"] == later["weekday"] and later["start"] < earlier["end"]:
                errors[index] = {"start": ["Overlaps another slot on the same weekday."]}
        if errors:
            raise ma.ValidationError({"slots": errors})


class AvailabilitySchema(ma.Schema):
    timezone = fields.String(metadata={"description": "The home grid's time zone"})
    slots = fields.List(fields.Nested(AvailabilitySlotSchema))


class ClosureSchema(ma.Schema):
    reason = _reason(required=False)


class PersonalDataExportSchema(ma.Schema):
    format = fields.String(metadata={"example": "shouwang.personal-data.v1"})
    exported_at = Instant()
    sections = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={
            "description": "account, profile, skills, emergency_contact, availability, "
            "status_history, consent, and sections added by other packages"
        },
    )


# --- management --------------------------------------------------------------------------------


class VolunteerQueryArgs(PageArgs):
    status = fields.String(validate=validate.OneOf([s.value for s in VolunteerStatus]))
    kind = kind_code_field()
    grid_id = id_field(strict=False)
    under = id_field(
        strict=False,
        metadata={"description": "An area id: volunteers whose home grid lies in its subtree"},
    )
    skill = short_text(50)
    q = short_text(
        50,
        metadata={"description": "Part of the real name, or digits of the phone number"},
    )


class HistoryQueryArgs(PageArgs):
    pass


class VolunteerManageUpdateSchema(UpdateSchema):
    kind = kind_code_field()
    home_grid_id = id_field()
    certificate_no = short_text(50)
    armband_no = short_text(50, allow_none=True)


class VolunteerManageUpdateInput(TypedDict, total=False):
    """What :class:`VolunteerManageUpdateSchema` loads."""

    kind: str
    home_grid_id: int
    certificate_no: str
    armband_no: str | None


class ApproveSchema(ma.Schema):
    certificate_no = short_text(50, required=True, metadata={"description": "聘任证书编号"})
    armband_no = short_text(50, allow_none=True)


class ReasonRequiredSchema(ma.Schema):
    reason = _reason(required=True)


class ReasonOptionalSchema(ma.Schema):
    reason = _reason(required=False)
