"""HTTP layer of the service record: reading it, trainings, evaluations and corrections."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.errors import error_docs
from core.idempotency import idempotent
from core.pagination import page_schema
from records.entries import reading, service
from records.entries.schemas import (
    EvaluationCorrectionInput,
    EvaluationCorrectionSchema,
    EvaluationCreateInput,
    EvaluationCreateSchema,
    EvaluationSchema,
    RecordEntriesArgs,
    RecordSummarySchema,
    ServiceCorrectionCreateSchema,
    ServiceCorrectionInput,
    ServiceCorrectionSchema,
    ServiceEntrySchema,
    TrainingCorrectionInput,
    TrainingCorrectionSchema,
    TrainingCreateInput,
    TrainingCreateSchema,
    TrainingListSchema,
    TrainingSchema,
)

blp = Blueprint(
    "records-entries",
    __name__,
    url_prefix="/api/v1",
    description="The service record (MCA rules): identity, service by year, trainings, awards, evaluations, corrections",
)

_errors = error_docs(blp)


# --- own -----------------------------------------------------------------------------------------


@blp.route("/me/record", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, RecordSummarySchema)
@_errors(401, 403, 404)
def my_record() -> Any:
    """My service record

    Identity (name, ID type, masked ID number, volunteer number), service hours that count and
    training hours, each by local year, trainings, awards (badges) and evaluations. Every served
    shift and hand-entered hour is in `GET /api/v1/me/record/entries`.
    """
    return reading.summary(service.own(current_caller()))


@blp.route("/me/record/entries", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(RecordEntriesArgs, location="query")
@blp.response(200, page_schema(ServiceEntrySchema))
@_errors(401, 403, 404, 422)
def my_record_entries(args: dict[str, Any]) -> Any:
    """My entries of service, newest day first

    Served shifts and hand-entered hours, each with its grid, recording organisation and hours;
    an entry that was corrected stays, marked `counts: false`, beside the entry replacing it.
    """
    return reading.service_entries(service.own(current_caller()), args)


# --- a volunteer's, for managers -----------------------------------------------------------------


@blp.route("/records/volunteers/<int:volunteer_id>", methods=["GET"])
@auth_required(*MANAGERS)
@blp.response(200, RecordSummarySchema)
@_errors(401, 403, 404)
def volunteer_record(volunteer_id: int) -> Any:
    """A volunteer's service record (volunteers in your area)"""
    return reading.summary(service.managed(current_caller(), volunteer_id))


@blp.route("/records/volunteers/<int:volunteer_id>/entries", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(RecordEntriesArgs, location="query")
@blp.response(200, page_schema(ServiceEntrySchema))
@_errors(401, 403, 404, 422)
def volunteer_record_entries(args: dict[str, Any], volunteer_id: int) -> Any:
    """A volunteer's entries of service, newest day first (volunteers in your area)"""
    return reading.service_entries(service.managed(current_caller(), volunteer_id), args)


# --- trainings -----------------------------------------------------------------------------------


@blp.route("/records/trainings", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(TrainingCreateSchema)
@blp.response(201, TrainingListSchema)
@_errors(401, 403, 422)
def record_training(data: TrainingCreateInput) -> Any:
    """Record a training for one or several volunteers in your area

    One entry per volunteer, recorded by `area_id` (an area of your subtree, else 403
    out_of_scope; default your own area). Training hours are kept apart from service hours: they
    count on no certificate's service hours, star level or leaderboard. A volunteer out of your
    area is 422 "Unknown volunteer.", as an id that does not exist; nothing is written then.
    Accepts an `Idempotency-Key`.
    """
    return {"items": reading.trainings_view(service.record_training(current_caller(), data))}


@blp.route("/records/trainings/<int:training_id>/corrections", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(TrainingCorrectionSchema)
@blp.response(201, TrainingSchema)
@_errors(401, 403, 404, 409, 422)
def correct_training(data: TrainingCorrectionInput, training_id: int) -> Any:
    """Correct a training entry: a new entry in force, with the reason

    Fields left out stay as they were; `minutes: 0` says the training did not happen. Only managers
    of the recording organisation's subtree reach the entry (others: 404). 409 already_corrected:
    correct the newest entry of the chain instead. Audited.
    """
    return reading.trainings_view([service.correct_training(current_caller(), training_id, data)])[0]


# --- evaluations ---------------------------------------------------------------------------------


@blp.route("/records/evaluations", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(EvaluationCreateSchema)
@blp.response(201, EvaluationSchema)
@_errors(401, 403, 409, 422)
def write_evaluation(data: EvaluationCreateInput) -> Any:
    """Evaluate a volunteer in your area for a year

    Your own area is the evaluating organisation; it evaluates a volunteer once a year (409
    evaluation_exists: correct that one). Audited.
    """
    return reading.evaluations_view([service.evaluate(current_caller(), data)])[0]


@blp.route("/records/evaluations/<int:evaluation_id>/corrections", methods=["POST"])
@auth_required(*MANAGERS)
@blp.arguments(EvaluationCorrectionSchema)
@blp.response(201, EvaluationSchema)
@_errors(401, 403, 404, 409, 422)
def correct_evaluation(data: EvaluationCorrectionInput, evaluation_id: int) -> Any:
    """Correct an evaluation: a new entry in force, with the reason (409 if already corrected)"""
    return reading.evaluations_view([service.correct_evaluation(current_caller(), evaluation_id, data)])[0]


# --- service hours -------------------------------------------------------------------------------


@blp.route("/records/service-entries/<int:service_record_id>/corrections", methods=["POST"])
@auth_required(*MANAGERS)
@idempotent
@blp.arguments(ServiceCorrectionCreateSchema)
@blp.response(201, ServiceCorrectionSchema)
@_errors(401, 403, 404, 409, 422)
def correct_service_entry(data: ServiceCorrectionInput, service_record_id: int) -> Any:
    """Correct the minutes of a served shift or of hand-entered hours

    The entry is voided and its points reversed (what is unspent); unless `minutes` is 0 a
    replacement entry counts instead, on the same day and grid, for hours, star badges,
    leaderboards and certificates alike. The replacement earns the points of the corrected
    minutes under the rule that paid the original, less what of the original could not be taken
    back (already spent or lapsed). Only managers whose subtree holds the entry's grid reach it
    (others: 404). 409 already_corrected (correct the replacement instead) or service_record_void
    (presence rejected). Audited. Accepts an `Idempotency-Key` (a retry then gets the first answer).
    """
    return service.correct_service(current_caller(), service_record_id, data)
