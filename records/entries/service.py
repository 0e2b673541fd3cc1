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
- service hours: through ``rewards`` (``awarding.correct_service``) so that hours stay one truth
  for leaderboards, badges and certificates; a ``ServiceCorrection`` keeps the story. A record
  already corrected is 409 ``already_corrected``; one voided otherwise (presence rejected) 409
  ``service_record_void``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from accounts.models import User
from core import audit, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from core.timeutil import zone
from grids.models import Area
from grids.paths import own_id
from grids.queries import referenced_area
from patrols.models import Patrol
from records import hours, identity
from records.entries.models import Evaluation, ServiceCorrection, Training
from records.entries.schemas import (
    EvaluationCorrectionInput,
    EvaluationCreateInput,
    ServiceCorrectionInput,
    TrainingCorrectionInput,
    TrainingCreateInput,
)
from records.stars import service as stars
from rewards.awarding import service as awarding
from rewards.awarding.models import ServiceRecord
from rewards.badges import service as badges
from rewards.ledger.points import DAY_FULL, FUTURE_DAY, MANUAL_HOURS_LOOKBACK_DAYS, TOO_OLD
from shifts.models import Shift
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

KIND_SHIFT, KIND_MANUAL = "shift", "manual"


# --- whose record --------------------------------------------------------------------------------


def own(caller: Caller) -> Volunteer:
    return own_volunteer(caller)


def managed(caller: Caller, volunteer_id: int) -> Volunteer:
    """A volunteer in the manager's subtree (404 ``volunteer_not_found`` unknown or outside)."""
    return get_in_scope(caller, volunteer_id)


# --- reading -------------------------------------------------------------------------------------


def _hours(minutes: int) -> float:
    return round(minutes / 60, 2)


def _totals(by_year: dict[int, int]) -> dict[str, Any]:
    total = sum(by_year.values())
    return {
        "minutes": total,
        "hours": _hours(total),
        "by_year": [{"year": y, "minutes": m, "hours": _hours(m)} for y, m in sorted(by_year.items())],
    }


def summary(volunteer: Volunteer) -> dict[str, Any]:
    """The record's first page: identity, totals by year, trainings, awards and evaluations."""
    trainings = trainings_of(volunteer.id)
    training_by_year: dict[int, int] = defaultdict(int)
    for training in trainings:
        if training["in_force"]:
            training_by_year[training["held_on"].year] += training["minutes"]
    return {
        "volunteer_id": volunteer.id,
        "identity": {
            "name": volunteer.real_name,
            "id_type": identity.ID_TYPE,
            "id_number": identity.id_number(volunteer),
            "volunteer_number": identity.volunteer_number(volunteer),
        },
        "service": _totals(hours.minutes_by_year(volunteer.id)),
        "training": _totals({year: minutes for year, minutes in training_by_year.items() if minutes}),
        "trainings": trainings,
        "awards": badges.badges_of(volunteer.id),
        "star_level": stars.level_status(volunteer.id),
        "evaluations": evaluations_of(volunteer.id),
    }


def _people(user_ids: Iterable[int | None]) -> dict[int, dict[str, Any]]:
    ids = {user_id for user_id in user_ids if user_id is not None}
    if not ids:
        return {}
    rows = db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(ids)))
    return {user_id: {"user_id": user_id, "name": name} for user_id, name in rows}


def _places(area_ids: Iterable[int | None]) -> dict[int, Area]:
    ids = {area_id for area_id in area_ids if area_id is not None}
    if not ids:
        return {}
    return {area.id: area for area in db.session.scalars(sa.select(Area).where(Area.id.in_(ids)))}


def _place(area: Area | None) -> dict[str, Any] | None:
    return {"id": area.id, "name": area.name, "code": area.code} if area is not None else None


def _chain_view(rows: list[Any]) -> list[dict[str, Any]]:
    """Trainings or evaluations with who corrected them and whether each is in force."""
    corrected_by = {row.corrects_id: row.id for row in rows if row.corrects_id is not None}
    people = _people(row.created_by for row in rows)
    places = _places(row.area_id for row in rows)
    views = []
    for row in rows:
        view = {column.key: getattr(row, column.key) for column in row.__table__.columns}
        view |= {
            "organisation": _place(places.get(row.area_id)),
            "created_by": people.get(row.created_by) if row.created_by is not None else None,
            "corrected_by_id": corrected_by.get(row.id),
            "in_force": row.id not in corrected_by,
        }
        views.append(view)
    return views


def trainings_of(volunteer_id: int) -> list[dict[str, Any]]:
    """Every training entry of the volunteer, newest day first, each correction beside its original."""
    rows = list(
        db.session.scalars(
            sa.select(Training)
            .where(Training.volunteer_id == volunteer_id)
            .order_by(Training.held_on.desc(), Training.id.desc())
        )
    )
    views = _chain_view(rows)
    for view in views:
        view["hours"] = _hours(view["minutes"])
    return views


def evaluations_of(volunteer_id: int) -> list[dict[str, Any]]:
    """Every evaluation entry of the volunteer, newest year first."""
    rows = list(
        db.session.scalars(
            sa.select(Evaluation)
            .where(Evaluation.volunteer_id == volunteer_id)
            .order_by(Evaluation.year.desc(), Evaluation.id.desc())
        )
    )
    return _chain_view(rows)


def service_entries(volunteer: Volunteer, args: dict[str, Any]) -> dict[str, Any]:
    """The volunteer's entries of service, newest day first; voided ones too, marked (``counts``)."""
    stmt = sa.select(ServiceRecord).where(ServiceRecord.volunteer_id == volunteer.id)
    if args.get("year") is not None:
        stmt = stmt.where(
            ServiceRecord.served_on >= date(args["year"], 1, 1), ServiceRecord.served_on <= date(args["year"], 12, 31)
        )
    page = paginate(
        stmt, [ServiceRecord.served_on, ServiceRecord.id], limit=args["limit"], cursor=args.get("cursor"),
        descending=True,
    )
    page["items"] = _entry_views(page["items"])
    return page


def _root_patrol_ids(records: list[ServiceRecord]) -> dict[int, int]:
    """The patrol behind each shift entry, by record id (a replacement: its chain's first record's)."""
    result: dict[int, int] = {}
    for record in records:
        if record.source_type != awarding.SOURCE_PATROL:
            continue
        source = record.source_id
        while source.startswith(awarding.CORRECTION_PREFIX):  # a short chain: corrections are rare
            earlier = db.session.get(ServiceRecord, int(source.removeprefix(awarding.CORRECTION_PREFIX)))
            if earlier is None:
                break
            source = earlier.source_id
        if source.isdigit():
            result[record.id] = int(source)
    return result


def _entry_views(records: list[ServiceRecord]) -> list[dict[str, Any]]:
    ids = [record.id for record in records]
    corrections = list(
        db.session.scalars(
            sa.select(ServiceCorrection).where(
                sa.or_(ServiceCorrection.original_id.in_(ids), ServiceCorrection.replacement_id.in_(ids))
            )
        )
    ) if ids else []
    patrol_of = _root_patrol_ids(records)
    shifts: dict[int, Shift] = {}
    if patrol_of:
        rows = db.session.execute(
            sa.select(Patrol.id, Shift).join(Shift, Shift.id == Patrol.shift_id).where(Patrol.id.in_(set(patrol_of.values())))
        ).all()
        shifts = {patrol_id: shift for patrol_id, shift in rows}
    grids = _places(record.grid_id for record in records)
    communities = _places(grid.parent_id for grid in grids.values())
    people = _people([record.created_by for record in records] + [c.corrected_by for c in corrections])
    by_original = {c.original_id: _correction_view(c, people) for c in corrections}
    by_replacement = {c.replacement_id: _correction_view(c, people) for c in corrections if c.replacement_id}
    views = []
    for record in records:
        shift = shifts.get(patrol_of.get(record.id, 0))
        grid = grids.get(record.grid_id) if record.grid_id is not None else None
        local_zone = zone(shift.timezone) if shift is not None else None
        views.append(
            {
                "id": record.id,
                "kind": KIND_SHIFT if record.source_type == awarding.SOURCE_PATROL else KIND_MANUAL,
                "served_on": record.served_on,
                "starts_at": shift.starts_at if shift is not None else None,
                "ends_at": shift.ends_at if shift is not None else None,
                "start_time": _clock(shift.starts_at, local_zone) if shift is not None else None,
                "end_time": _clock(shift.ends_at, local_zone) if shift is not None else None,
                "grid": _place(grid),
                "place": shift.meeting_point if shift is not None else None,
                "content": shift.title if shift is not None else record.note,
                "minutes": record.minutes,
                "hours": _hours(record.minutes),
                "organisation": _place(communities.get(grid.parent_id)) if grid and grid.parent_id else None,
                "entered_by": people.get(record.created_by) if record.created_by is not None else None,
                "note": record.note,
                "counts": record.voided_at is None,
                "voided_at": record.voided_at,
                "corrects": by_replacement.get(record.id),
                "corrected": by_original.get(record.id),
                "created_at": record.created_at,
            }
        )
    return views


def _clock(moment: datetime, local_zone: Any) -> str:
    return moment.astimezone(local_zone).strftime("%H:%M")


def _correction_view(correction: ServiceCorrection, people: dict[int, dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": correction.id,
        "original_id": correction.original_id,
        "replacement_id": correction.replacement_id,
        "minutes_before": correction.minutes_before,
        "minutes_after": correction.minutes_after,
        "reason": correction.reason,
        "points_unrecovered": correction.points_unrecovered,
        "corrected_by": people.get(correction.corrected_by) if correction.corrected_by is not None else None,
        "corrected_at": correction.corrected_at,
    }


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
    before, after = _training_fields(original), _training_fields(correction)
    if before == after:
        raise ValidationFailed(errors={"_schema": [NOTHING_CHANGES]})
    _insert_correction(correction)
    audit.record(
        caller, "record.training_corrected", target_type="training", target_id=original.id, area_path=area.path,
        before=before, after=after | {"correction_id": correction.id, "reason": data["reason"]},
    )
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
    before, after = _evaluation_fields(original), _evaluation_fields(correction)
    if before == after:
        raise ValidationFailed(errors={"_schema": [NOTHING_CHANGES]})
    _insert_correction(correction)
    audit.record(
        caller, "record.evaluation_corrected", target_type="evaluation", target_id=original.id, area_path=area.path,
        before=before, after=after | {"correction_id": correction.id, "reason": data["reason"]},
    )
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
    done = awarding.correct_service(record.id, data["minutes"], reason=data["reason"], actor_id=caller.user_id)
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
    return _correction_view(correction, _people([caller.user_id]))


# --- views of new rows ---------------------------------------------------------------------------


def trainings_view(rows: list[Training]) -> list[dict[str, Any]]:
    """Rows just written as the record shows them (in force: nothing corrects a new row yet)."""
    views = _chain_view(rows)
    for view in views:
        view["hours"] = _hours(view["minutes"])
    return views


def evaluations_view(rows: list[Evaluation]) -> list[dict[str, Any]]:
    return _chain_view(rows)
