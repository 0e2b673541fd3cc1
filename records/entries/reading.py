"""Reading a volunteer's service record: the summary (identity, hours by year, trainings, awards,
star level, evaluations), the entries of service with their corrections, and the views of rows just
written (the same shapes). No HTTP here; the writes are in ``service.py``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from accounts.models import User
from core.extensions import db
from core.pagination import paginate
from core.timeutil import zone
from grids.models import Area
from patrols.models import Patrol
from records import hours, identity
from records.entries.models import Evaluation, ServiceCorrection, Training
from records.stars import service as stars
from rewards.awarding import service as awarding
from rewards.awarding.models import ServiceRecord
from rewards.badges import service as badges
from shifts.models import Shift
from volunteers.models import Volunteer

KIND_SHIFT, KIND_MANUAL = "shift", "manual"


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
# --- views of new rows ---------------------------------------------------------------------------


def trainings_view(rows: list[Training]) -> list[dict[str, Any]]:
    """Rows just written as the record shows them (in force: nothing corrects a new row yet)."""
    views = _chain_view(rows)
    for view in views:
        view["hours"] = _hours(view["minutes"])
    return views


def evaluations_view(rows: list[Evaluation]) -> list[dict[str, Any]]:
    return _chain_view(rows)


def correction_view(correction: ServiceCorrection) -> dict[str, Any]:
    """A service correction just written, as the record shows it."""
    return _correction_view(correction, _people([correction.corrected_by]))
