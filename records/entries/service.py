"""The service record: what it shows, and the entries organisers add or correct.

Who sees what follows ``volunteers/``: a volunteer reads their own record (``/me/record``); an
organiser, staff member or admin reads the record of a volunteer whose home grid lies in their
subtree, anyone else being 404 ``volunteer_not_found`` like an id that does not exist.

Who writes: an organiser, staff member or admin, for volunteers they reach (a volunteer out of
reach in a body is 422 "Unknown volunteer.", as an id that does not exist). The recording
organisation of a training is an area of the caller's subtree (default their own); of an evaluation,
the caller's own area. A recorded entry is corrected only from its recording organisation's subtree
(a service record's: its grid's): elsewhere it is not found, as if it did not exist ("谁记录谁证明").

Corrections are new entries, never edits, each in the audit log with who, before and after:

- a training or an evaluation: a new row with ``corrects_id`` and the reason; the newest of a
  chain is in force; an entry already corrected is 409 ``already_corrected`` (a unique constraint
  decides between two at once);
- service hours: through ``rewards`` (``rewards.awarding.corrections.correct_service``) so that hours stay one truth
  for leaderboards, badges and certificates; a ``ServiceCorrection`` keeps the story. A record
  already corrected is 409 ``already_corrected``; one voided otherwise (presence rejected) 409
  ``service_record_void``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core import audit, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import db
from core.timeutil import zone
from grids.models import Area
from grids.paths import own_id
from grids.queries import referenced_area
from records.entries import reading
from records.entries.models import Evaluation, ServiceCorrection, Training
from records.entries.schemas import (
    EvaluationCorrectionInput,
    EvaluationCreateInput,
    ServiceCorrectionInput,
    TrainingCorrectionInput,
    TrainingCreateInput,
)
from rewards.awarding import corrections
from rewards.awarding import service as awarding
from rewards.awarding.models import ServiceRecord
from rewards.ledger.points import DAY_FULL, FUTURE_DAY, MANUAL_HOURS_LOOKBACK_DAYS, TOO_OLD
from volunteers.models import Volunteer
from volunteers.service import get_in_scope, own_volunteer, referenced_volunteer

ALREADY_CORRECTED = i18n.N_("This entry has already been corrected: correct the newest entry instead.")
SERVICE_VOID = i18n.N_("This service record no longer counts and cannot be corrected.")
EVALUATION_EXISTS = i18n.N_(
    "This organisation has already evaluated the volunteer for that year: correct that evaluation instead."
)
NOTHING_CHANGES = i18n.N_("The correction changes nothing.")
FUTURE_YEAR = i18n.N_("The year has not begun yet.")
REPEATED_VOLUNTEER = i18n.N_("Each volunteer once.")

i18n.register_titles(
    i18n.title("service_record_not_found", "Service record not found"),
    i18n.title("training_not_found", "Training not found"),
    i18n.title("evaluation_not_found", "Evaluation not found"),
    i18n.title("already_corrected", "Already corrected"),
    i18n.title("service_record_void", "Service record void"),
    i18n.title("evaluation_exists", "Evaluation exists"),
)
i18n.register_messages(
    i18n.N_("Service record not found."),
    i18n.N_("Training not found."),
    i18n.N_("Evaluation not found."),
    ALREADY_CORRECTED,
    SERVICE_VOID,
    EVALUATION_EXISTS,
    NOTHING_CHANGES,
    FUTURE_YEAR,
    REPEATED_VOLUNTEER,
)



# --- whose record --------------------------------------------------------------------------------


def own(caller: Caller) -> Volunteer:
    return own_volunteer(caller)


def managed(caller: Caller, volunteer_id: int) -> Volunteer:
    """A volunteer in the manager's subtree (404 ``volunteer_not_found`` unknown or outside)."""
    return get_in_scope(caller, volunteer_id)


# --- trainings -----------------------------------------------------------------------------------


def training_not_found() -> NotFound:
    return NotFound("Training not found.", code="training_not_found")


def _check_day(day: date, timezone: str, field: str) -> None:
    """A recorded day: not in the future, at most a year back (as hand-entered hours)."""
    today = utcnow().astimezone(zone(timezone)).date()
    if day > today:
        raise ValidationFailed(errors={field: [FUTURE_DAY]})
    if day < today - timedelta(days=MANUAL_HOURS_LOOKBACK_DAYS):
        raise ValidationFailed(errors={field: [TOO_OLD]})


def _own_area(caller: Caller) -> Area:
    area = db.session.get(Area, own_id(caller.area_path))
    if area is None:  # the token names an area since deleted
        raise ValidationFailed(errors={"area_id": ["Unknown area."]})
    return area


def record_training(caller: Caller, data: TrainingCreateInput) -> list[Training]:
    """One training entry per volunteer named (all or none)."""
    if len(set(data["volunteer_ids"])) != len(data["volunteer_ids"]):
        raise ValidationFailed(errors={"volunteer_ids": [REPEATED_VOLUNTEER]})
    volunteers = [referenced_volunteer(caller, volunteer_id, "volunteer_ids") for volunteer_id in data["volunteer_ids"]]
    area = referenced_area(data["area_id"], "area_id") if data["area_id"] is not None else _own_area(caller)
    caller.ensure_scope(area.path)
    _check_day(data["held_on"], area.timezone, "held_on")
    rows = [
        Training(
            volunteer_id=volunteer.id, area_id=area.id, title=data["title"], held_on=data["held_on"],
            minutes=data["minutes"], note=data["note"], created_by=caller.user_id,
        )
        for volunteer in volunteers
    ]
    db.session.add_all(rows)
    db.session.flush()
    for row in rows:
        audit.record(
            caller, "record.training_recorded", target_type="training", target_id=row.id, area_path=area.path,
            after=_training_fields(row),
        )
    return rows


def _training_fields(row: Training) -> dict[str, Any]:
    return {
        "volunteer_id": row.volunteer_id, "area_id": row.area_id, "title": row.title, "held_on": row.held_on,
        "minutes": row.minutes, "note": row.note,
    }


def _reached_training(caller: Caller, training_id: int) -> tuple[Training, Area]:
    training = db.session.get(Training, training_id)
    if training is None:
        raise training_not_found()
    area = db.session.get_one(Area, training.area_id)
    caller.ensure_reach(area.path, training_not_found)
    return training, area


def _insert_correction(row: Any) -> None:
    """Add a correcting row; a second correction of the same entry (even at once) is 409."""
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        raise Conflict(ALREADY_CORRECTED, code="already_corrected") from None


def _not_corrected(model: type[Training] | type[Evaluation], entry_id: int) -> None:
    if db.session.scalar(sa.select(model.id).where(model.corrects_id == entry_id)) is not None:
        raise Conflict(ALREADY_CORRECTED, code="already_corrected")


def _keep_correction(
    caller: Caller, kind: str, original: Training | Evaluation, correction: Training | Evaluation,
    before: dict[str, Any], after: dict[str, Any], area_path: str,
) -> None:
    """Write a training's or an evaluation's correction (422 when it changes nothing; 409 when the
    original was corrected meanwhile) and audit it as ``record.<kind>_corrected``."""
    if before == after:
        raise ValidationFailed(errors={"_schema": [NOTHING_CHANGES]})
    _insert_correction(correction)
    audit.record(
        caller, f"record.{kind}_corrected", target_type=kind, target_id=original.id, area_path=area_path,
        before=before, after=after | {"correction_id": correction.id, "reason": correction.correction_reason},
    )


def correct_training(caller: Caller, training_id: int, data: TrainingCorrectionInput) -> Training:
    """A new entry in place of ``training_id``, with the reason; the old one stays, not in force."""
    original, area = _reached_training(caller, training_id)
    _not_corrected(Training, original.id)
    correction = Training(
        volunteer_id=original.volunteer_id, area_id=original.area_id,
        title=data.get("title", original.title), held_on=data.get("held_on", original.held_on),
        minutes=data.get("minutes", original.minutes), note=data.get("note", original.note),
        corrects_id=original.id, correction_reason=data["reason"], created_by=caller.user_id,
    )
    if correction.held_on != original.held_on:
        _check_day(correction.held_on, area.timezone, "held_on")
    _keep_correction(caller, "training", original, correction, _training_fields(original),
                     _training_fields(correction), area.path)
    return correction


# --- evaluations ---------------------------------------------------------------------------------


def evaluation_not_found() -> NotFound:
    return NotFound("Evaluation not found.", code="evaluation_not_found")


def _evaluation_fields(row: Evaluation) -> dict[str, Any]:
    return {"volunteer_id": row.volunteer_id, "area_id": row.area_id, "year": row.year, "rating": row.rating,
            "comment": row.comment}


def evaluate(caller: Caller, data: EvaluationCreateInput) -> Evaluation:
    """The caller's organisation's evaluation of a volunteer for a year (one; then corrections)."""
    volunteer = referenced_volunteer(caller, data["volunteer_id"])
    area = _own_area(caller)
    if data["year"] > utcnow().astimezone(zone(area.timezone)).year:
        raise ValidationFailed(errors={"year": [FUTURE_YEAR]})
    row = Evaluation(
        volunteer_id=volunteer.id, area_id=area.id, year=data["year"], rating=data["rating"],
        comment=data["comment"], created_by=caller.user_id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        raise Conflict(EVALUATION_EXISTS, code="evaluation_exists") from None
    audit.record(
        caller, "record.evaluation_written", target_type="evaluation", target_id=row.id, area_path=area.path,
        after=_evaluation_fields(row),
    )
    return row


def correct_evaluation(caller: Caller, evaluation_id: int, data: EvaluationCorrectionInput) -> Evaluation:
    original = db.session.get(Evaluation, evaluation_id)
    if original is None:
        raise evaluation_not_found()
    area = db.session.get_one(Area, original.area_id)
    caller.ensure_reach(area.path, evaluation_not_found)
    _not_corrected(Evaluation, original.id)
    correction = Evaluation(
        volunteer_id=original.volunteer_id, area_id=original.area_id, year=original.year,
        rating=data.get("rating", original.rating), comment=data.get("comment", original.comment),
        corrects_id=original.id, correction_reason=data["reason"], created_by=caller.user_id,
    )
    _keep_correction(caller, "evaluation", original, correction, _evaluation_fields(original),
                     _evaluation_fields(correction), area.path)
    return correction


# --- service hours -------------------------------------------------------------------------------


def service_record_not_found() -> NotFound:
    return NotFound("Service record not found.", code="service_record_not_found")


def correct_service(caller: Caller, record_id: int, data: ServiceCorrectionInput) -> dict[str, Any]:
    """Correct a served shift's or hand-entered hours' minutes: the original voided and replaced in
    ``rewards``, the correction kept here and audited. Returns the correction's view."""
    record = db.session.get(ServiceRecord, record_id)
    if record is None:
        raise service_record_not_found()
    volunteer = db.session.get_one(Volunteer, record.volunteer_id)
    grid = db.session.get(Area, record.grid_id) if record.grid_id is not None else None
    place = grid if grid is not None else volunteer.home_grid
    caller.ensure_reach(place.path, service_record_not_found)
    if db.session.scalar(sa.select(ServiceCorrection.id).where(ServiceCorrection.original_id == record.id)):
        raise Conflict(ALREADY_CORRECTED, code="already_corrected")
    if record.voided_at is not None:
        raise Conflict(SERVICE_VOID, code="service_record_void")
    if data["minutes"] == record.minutes:
        raise ValidationFailed(errors={"minutes": [NOTHING_CHANGES]})
    others = awarding.minutes_on(record.volunteer_id, record.served_on) - record.minutes
    if others + data["minutes"] > awarding.MAX_DAY_MINUTES:
        raise ValidationFailed(errors={"minutes": [DAY_FULL]})
    done = corrections.correct_service(record.id, data["minutes"], reason=data["reason"], actor_id=caller.user_id)
    if done is None:  # corrected or voided by another request between the checks and the lock
        raise Conflict(ALREADY_CORRECTED, code="already_corrected")
    correction = ServiceCorrection(
        original_id=record.id, replacement_id=done.replacement.id if done.replacement is not None else None,
        volunteer_id=record.volunteer_id, minutes_before=record.minutes, minutes_after=data["minutes"],
        reason=data["reason"], points_unrecovered=done.unrecovered, corrected_by=caller.user_id,
    )
    db.session.add(correction)
    db.session.flush()
    audit.record(
        caller, "record.service_corrected", target_type="service_record", target_id=record.id, area_path=place.path,
        before={"minutes": record.minutes, "served_on": record.served_on, "points": sum(
            reversal.amount for reversal in done.reversals) * -1 + done.unrecovered},
        after={
            "minutes": data["minutes"], "replacement_id": correction.replacement_id, "reason": data["reason"],
            "points": done.earning.amount if done.earning is not None else 0,
            "points_unrecovered": done.unrecovered,
        },
    )
    return reading.correction_view(correction)
