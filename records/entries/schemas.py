"""marshmallow schemas of the service record: the summary, its entries of service, trainings,
evaluations and corrections."""

from __future__ import annotations

from datetime import date
from typing import NotRequired, TypedDict

import marshmallow as ma
from marshmallow import fields, validate

from core.fields import Instant
from core.pagination import PageArgs
from core.validators import id_field
from records.entries.models import Rating
from volunteers.schemas import short_text

RATINGS = [rating.value for rating in Rating]
#: Years a record may name (the national system began in the 2010s; nothing here is older).
FIRST_YEAR, LAST_YEAR = 2000, 2100
#: Volunteers one training may be recorded for in one request.
MAX_TRAINEES = 100

# --- input -----------------------------------------------------------------------------------------


class RecordEntriesArgs(PageArgs):
    year = fields.Integer(
        load_default=None, validate=validate.Range(min=FIRST_YEAR, max=LAST_YEAR),
        metadata={"description": "Only service on a local day of this calendar year"},
    )


class TrainingCreateSchema(ma.Schema):
    volunteer_ids = fields.List(
        id_field(), required=True, validate=validate.Length(min=1, max=MAX_TRAINEES),
        metadata={"description": "The volunteers who took the training (each once; in your area)"},
    )
    title = short_text(100, required=True)
    held_on = fields.Date(required=True, metadata={"description": "Local day; not in the future, at most a year back"})
    minutes = fields.Integer(validate=validate.Range(min=1, max=1440), required=True, strict=True)
    area_id = id_field(
        load_default=None,
        metadata={"description": "The recording organisation: an area of your subtree (default your own)"},
    )
    note = short_text(500, load_default=None)


class TrainingCreateInput(TypedDict):
    volunteer_ids: list[int]
    title: str
    held_on: date
    minutes: int
    area_id: int | None
    note: str | None


class TrainingCorrectionSchema(ma.Schema):
    reason = short_text(500, required=True, metadata={"description": "Why the entry was wrong"})
    title = short_text(100, metadata={"description": "Default: unchanged"})
    held_on = fields.Date(metadata={"description": "Default: unchanged"})
    minutes = fields.Integer(
        validate=validate.Range(min=0, max=1440), metadata={"description": "0: the training did not happen"}, strict=True
    )
    note = short_text(500, allow_none=True, metadata={"description": "Default: unchanged; null clears it"})


class TrainingCorrectionInput(TypedDict):
    reason: str
    title: NotRequired[str]
    held_on: NotRequired[date]
    minutes: NotRequired[int]
    note: NotRequired[str | None]


class EvaluationCreateSchema(ma.Schema):
    volunteer_id = id_field(required=True)
    year = fields.Integer(
        strict=True, required=True, validate=validate.Range(min=FIRST_YEAR, max=LAST_YEAR),
        metadata={"description": "The year evaluated; not after the current one"},
    )
    rating = fields.String(
        required=True, validate=validate.OneOf(RATINGS),
        metadata={"description": "excellent 优秀, good 良好, pass 合格, fail 不合格"},
    )
    comment = short_text(500, load_default=None)


class EvaluationCreateInput(TypedDict):
    volunteer_id: int
    year: int
    rating: str
    comment: str | None


class EvaluationCorrectionSchema(ma.Schema):
    reason = short_text(500, required=True, metadata={"description": "Why the evaluation was wrong"})
    rating = fields.String(validate=validate.OneOf(RATINGS), metadata={"description": "Default: unchanged"})
    comment = short_text(500, allow_none=True, metadata={"description": "Default: unchanged; null clears it"})


class EvaluationCorrectionInput(TypedDict):
    reason: str
    rating: NotRequired[str]
    comment: NotRequired[str | None]


class ServiceCorrectionCreateSchema(ma.Schema):
    minutes = fields.Integer(
        required=True, validate=validate.Range(min=0, max=1440),
        metadata={"description": "The right minutes; 0: the service did not happen"}, strict=True,
    )
    reason = short_text(500, required=True, metadata={"description": "Why the hours were wrong"})


class ServiceCorrectionInput(TypedDict):
    minutes: int
    reason: str


# --- output ----------------------------------------------------------------------------------------


class PlaceSchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    code = fields.String(required=True)


class PersonSchema(ma.Schema):
    user_id = fields.Integer(required=True)
    name = fields.String(required=True)


class IdentitySchema(ma.Schema):
    name = fields.String(required=True)
    id_type = fields.String(required=True, metadata={"description": "居民身份证 (resident identity card)"})
    id_number = fields.String(required=True, metadata={"description": "Masked: first 4 and last 4 characters"})
    volunteer_number = fields.String(required=True, metadata={"description": "<city area code>-<8 digits>"})


class YearTotalSchema(ma.Schema):
    year = fields.Integer(required=True)
    minutes = fields.Integer(required=True)
    hours = fields.Float(required=True)


class TotalsSchema(ma.Schema):
    minutes = fields.Integer(required=True)
    hours = fields.Float(required=True)
    by_year = fields.List(fields.Nested(YearTotalSchema), required=True, metadata={"description": "Oldest first"})


class ServiceCorrectionSchema(ma.Schema):
    id = fields.Integer(required=True)
    original_id = fields.Integer(required=True, metadata={"description": "The service entry corrected (now void)"})
    replacement_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "The entry that counts instead; null for 0 minutes"}
    )
    minutes_before = fields.Integer(required=True)
    minutes_after = fields.Integer(required=True)
    reason = fields.String(required=True)
    points_unrecovered = fields.Integer(
        required=True, metadata={"description": "Points of the original already spent or lapsed (kept off the replacement)"}
    )
    corrected_by = fields.Nested(PersonSchema, required=True, allow_none=True)
    corrected_at = Instant(required=True)


class ServiceEntrySchema(ma.Schema):
    id = fields.Integer(required=True, metadata={"description": "The service record's id"})
    kind = fields.String(
        required=True, metadata={"description": "shift: a served shift; manual: hours entered by an organiser"}
    )
    served_on = fields.Date(required=True, metadata={"description": "Local day of the service"})
    starts_at = Instant(required=True, allow_none=True, metadata={"description": "Shifts: the shift's start"})
    ends_at = Instant(required=True, allow_none=True)
    start_time = fields.String(required=True, allow_none=True, metadata={"description": "Local HH:MM (shifts)"})
    end_time = fields.String(required=True, allow_none=True)
    grid = fields.Nested(PlaceSchema, required=True, allow_none=True)
    place = fields.String(required=True, allow_none=True, metadata={"description": "The shift's meeting point"})
    content = fields.String(required=True, allow_none=True, metadata={"description": "The shift's title, or the note of hand-entered hours"})
    minutes = fields.Integer(required=True)
    hours = fields.Float(required=True)
    organisation = fields.Nested(
        PlaceSchema, required=True, allow_none=True, metadata={"description": "The recording organisation: the grid's community"}
    )
    entered_by = fields.Nested(
        PersonSchema, required=True, allow_none=True, metadata={"description": "Who entered hand-entered hours or the correction"}
    )
    note = fields.String(required=True, allow_none=True)
    counts = fields.Boolean(required=True, metadata={"description": "False once voided (corrected or rejected)"})
    voided_at = Instant(required=True, allow_none=True)
    corrects = fields.Nested(
        ServiceCorrectionSchema, required=True, allow_none=True, metadata={"description": "The correction this entry is the result of"}
    )
    corrected = fields.Nested(
        ServiceCorrectionSchema, required=True, allow_none=True, metadata={"description": "The correction that replaced this entry"}
    )
    created_at = Instant(required=True)


class TrainingSchema(ma.Schema):
    id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    title = fields.String(required=True)
    held_on = fields.Date(required=True)
    minutes = fields.Integer(required=True)
    hours = fields.Float(required=True)
    organisation = fields.Nested(PlaceSchema, required=True)
    note = fields.String(required=True, allow_none=True)
    corrects_id = fields.Integer(required=True, allow_none=True)
    correction_reason = fields.String(required=True, allow_none=True)
    corrected_by_id = fields.Integer(
        required=True, allow_none=True, metadata={"description": "The entry correcting this one (then not in force)"}
    )
    in_force = fields.Boolean(required=True)
    created_by = fields.Nested(PersonSchema, required=True, allow_none=True)
    created_at = Instant(required=True)


class TrainingListSchema(ma.Schema):
    items = fields.List(fields.Nested(TrainingSchema), required=True)


class EvaluationSchema(ma.Schema):
    id = fields.Integer(required=True)
    volunteer_id = fields.Integer(required=True)
    year = fields.Integer(required=True)
    rating = fields.String(required=True, metadata={"description": ", ".join(RATINGS)})
    comment = fields.String(required=True, allow_none=True)
    organisation = fields.Nested(PlaceSchema, required=True)
    corrects_id = fields.Integer(required=True, allow_none=True)
    correction_reason = fields.String(required=True, allow_none=True)
    corrected_by_id = fields.Integer(required=True, allow_none=True)
    in_force = fields.Boolean(required=True)
    created_by = fields.Nested(PersonSchema, required=True, allow_none=True)
    created_at = Instant(required=True)


class AwardSchema(ma.Schema):
    badge = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    earned_at = Instant(required=True)


class StarLevelStatusSchema(ma.Schema):
    level = fields.Integer(required=True, metadata={"description": "1–5: the highest level pending or certified"})
    status = fields.String(required=True, metadata={"description": "`pending` during its publicity (公示), or `certified`"})
    proposed_at = Instant(required=True)
    publicity_ends_at = Instant(required=True)
    certified_at = Instant(required=True, allow_none=True)
    certified_level = fields.Integer(
        required=True, allow_none=True,
        metadata={"description": "The highest certified level (what a certificate prints); a pending higher one does not replace it"},
    )


class RecordSummarySchema(ma.Schema):
    volunteer_id = fields.Integer(required=True)
    identity = fields.Nested(IdentitySchema, required=True)
    service = fields.Nested(
        TotalsSchema, required=True, metadata={"description": "Service hours that count (records/hours), by local year"}
    )
    training = fields.Nested(
        TotalsSchema, required=True, metadata={"description": "Training hours in force, apart from service"}
    )
    trainings = fields.List(fields.Nested(TrainingSchema), required=True, metadata={"description": "Newest first, corrections beside their originals"})
    awards = fields.List(fields.Nested(AwardSchema), required=True, metadata={"description": "Badges, in the order earned"})
    star_level = fields.Nested(
        StarLevelStatusSchema, required=True, allow_none=True,
        metadata={"description": "The star level and its publicity (公示): null before the first is proposed"},
    )
    evaluations = fields.List(fields.Nested(EvaluationSchema), required=True, metadata={"description": "Newest year first"})
