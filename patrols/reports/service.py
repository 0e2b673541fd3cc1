"""Reports (事件上报): filing, photos, who may see them, and how they are shown. No HTTP here.

The handling workflow (acknowledge, assign, escalate, resolve) and the lists live in
``patrols.reports.workflow``; photo checks and storage in ``core/photos.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage

from core import i18n, photos
from core.auth import Caller, Role
from core.db import rowcount, utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from grids.models import Area
from grids.paths import city_path
from grids.queries import get_grid, locate_grid
from patrols import signals
from patrols.reports.models import (
    MAX_PHOTOS,
    Report,
    ReportAction,
    ReportEvent,
    ReportPhoto,
    ReportStatus,
)
from patrols.reports.schemas import ReportCreateInput
from shifts.service import own_assignment
from volunteers.models import Volunteer, VolunteerStatus
from volunteers.service import own_volunteer

REPORT_NOT_FOUND = i18n.N_("Report not found.")
NOT_A_FILE = i18n.N_("Send the photo as a file part of the form.")
OUTSIDE_CITY = i18n.N_("The grid is outside your city.")
NO_GRID_HERE = i18n.N_("No grid contains this point.")

i18n.register_titles(
    i18n.title("report_not_found", "Report not found"),
    i18n.title("client_id_taken", "Client id already used"),
    i18n.title("too_many_photos", "Too many photos"),
    i18n.title("photo_storage_unavailable", "Photo storage unavailable"),
)
i18n.register_messages(
    REPORT_NOT_FOUND,
    OUTSIDE_CITY,
    i18n.N_("Only active volunteers can file reports."),
    i18n.N_("This client id belongs to another record."),
    i18n.N_("The photo could not be stored; try again."),
    NOT_A_FILE,
)
i18n.register_patterns({r"^A report has at most (\d+) photos\.$": i18n.N_("A report has at most {0} photos.")})


# --- access --------------------------------------------------------------------------------------


def report_not_found() -> NotFound:
    """The answer for a report id that does not exist, and for one the caller may not reach."""
    return NotFound(REPORT_NOT_FOUND, code="report_not_found")


def get_report(report_id: int) -> Report:
    report = db.session.get(Report, report_id)
    if report is None:
        raise report_not_found()
    return report


def get_report_for(caller: Caller, report_id: int) -> Report:
    """The reporter sees their own reports; organisers, staff and admins those in a grid of their
    subtree. Any other is not found, as if it did not exist."""
    report = get_report(report_id)
    if caller.role == Role.VOLUNTEER:
        if report.volunteer.user_id != caller.user_id:
            raise report_not_found()
        return report
    caller.ensure_reach(report.grid.path, report_not_found)
    return report


def own_report(caller: Caller, report_id: int) -> Report:
    report = get_report(report_id)
    if report.volunteer.user_id != caller.user_id:
        raise report_not_found()
    return report


# --- filing --------------------------------------------------------------------------------------


def _by_client_id(client_id: str) -> Report | None:
    return db.session.scalar(
        sa.select(Report).where(Report.client_id == client_id).execution_options(populate_existing=True)
    )


def _replay(existing: Report, volunteer: Volunteer) -> Report:
    if existing.volunteer_id != volunteer.id:
        raise Conflict("This client id belongs to another record.", code="client_id_taken")
    return existing


def file_report(caller: Caller, data: ReportCreateInput) -> tuple[Report, bool]:
    """File a report, or return the one already filed under ``client_id`` (``created`` False).

    The grid is ``grid_id`` when given (a grid of the volunteer's city), else the grid covering the
    position, else the grid of the assignment's shift; none of these is 422 on ``lat``.
    """
    volunteer = own_volunteer(caller)
    client_id = str(data["client_id"])
    existing = _by_client_id(client_id)
    if existing is not None:
        return _replay(existing, volunteer), False
    if volunteer.status != VolunteerStatus.ACTIVE:
        raise Forbidden("Only active volunteers can file reports.", code="volunteer_not_active")
    assignment_id = data.get("assignment_id")
    assignment = own_assignment(caller, assignment_id, lean=True) if assignment_id else None
    grid = _grid_of(volunteer, data, assignment.shift.grid if assignment else None)
    received = utcnow()
    skew = timedelta(minutes=current_app.config.get("CHECK_IN_CLOCK_SKEW_MINUTES", 5))
    report = Report(
        client_id=client_id,
        volunteer_id=volunteer.id,
        grid_id=grid.id,
        assignment_id=assignment.id if assignment else None,
        category=data["category"],
        level=data["level"],
        status=ReportStatus.OPEN,
        description=data["description"],
        lat=data["lat"],
        lon=data["lon"],
        accuracy_m=data.get("accuracy_m"),
        device_at=data["device_time"],
        received_at=received,
        flags=["device_time_future"] if data["device_time"] > received + skew else [],
        photo_count=0,
    )
    try:
        # A savepoint: the same client id committed meanwhile (a retry racing the first send).
        with db.session.begin_nested():
            db.session.add(report)
            db.session.flush()
    except IntegrityError:
        existing = _by_client_id(client_id)
        if existing is None:
            raise
        return _replay(existing, volunteer), False
    db.session.add(
        ReportEvent(
            report_id=report.id,
            action=ReportAction.FILED,
            from_status=None,
            to_status=ReportStatus.OPEN,
            actor_id=caller.user_id,
        )
    )
    db.session.flush()
    signals.report_filed.send(
        signals.SENDER,
        **signals.ReportFiled(
            report_id=report.id,
            grid_id=grid.id,
            level=report.level,
            category=report.category,
            volunteer_id=volunteer.id,
        ),
    )
    return report, True


def _grid_of(volunteer: Volunteer, data: ReportCreateInput, shift_grid: Area | None) -> Area:
    grid_id = data.get("grid_id")
    if grid_id is not None:
        grid = get_grid(grid_id, "grid_id")
        if not grid.path.startswith(city_path(volunteer.home_grid.path)):
            raise ValidationFailed(errors={"grid_id": [OUTSIDE_CITY]})
        return grid
    try:
        return locate_grid(data["lon"], data["lat"]).grid
    except NotFound:
        if shift_grid is not None:
            return shift_grid
        raise ValidationFailed(errors={"lat": [NO_GRID_HERE], "lon": [NO_GRID_HERE]}) from None


# --- photos --------------------------------------------------------------------------------------


def _photo_by_client_id(client_id: str) -> ReportPhoto | None:
    return db.session.scalar(sa.select(ReportPhoto).where(ReportPhoto.client_id == client_id))


def _photo_replay(existing: ReportPhoto, report: Report) -> ReportPhoto:
    if existing.report_id != report.id:
        raise Conflict("This client id belongs to another record.", code="client_id_taken")
    return existing


def _too_many_photos() -> Conflict:
    return Conflict(f"A report has at most {MAX_PHOTOS} photos.", code="too_many_photos")


def add_photo(caller: Caller, report_id: int, client_id: str, upload: Any) -> tuple[ReportPhoto, bool]:
    """Attach one photo to the caller's own report, or return the one under ``client_id``.

    413 photo_too_large, 415 unsupported_photo_type, 422 photo_unreadable, 409 too_many_photos.
    The file is written last; if the transaction then does not commit, it is deleted again.
    """
    if not isinstance(upload, FileStorage):
        # A text field named "file" passes the schema's Upload field (it checks nothing) and has
        # no stream: 422 like any other bad field, not a 500.
        raise ValidationFailed(errors={"file": [NOT_A_FILE]})
    report = own_report(caller, report_id)
    existing = _photo_by_client_id(client_id)
    if existing is not None:
        return _photo_replay(existing, report), False
    if report.photo_count >= MAX_PHOTOS:
        raise _too_many_photos()
    clean = photos.clean_photo(photos.read_upload(upload.stream))
    key = photos.new_storage_key("reports", report.id, clean.extension)
    try:
        with db.session.begin_nested():
            position = _take_photo_place(report.id)
            photo = ReportPhoto(
                report_id=report.id,
                client_id=client_id,
                position=position,
                storage_key=key,
                content_type=clean.content_type,
                width=clean.width,
                height=clean.height,
                size_bytes=len(clean.data),
                sha256=clean.sha256,
            )
            db.session.add(photo)
            db.session.flush()
    except IntegrityError:
        existing = _photo_by_client_id(client_id)
        if existing is None:
            raise
        return _photo_replay(existing, report), False
    photos.store_photo(db.session(), key, clean)
    db.session.expire(report)
    return photo, True


def _take_photo_place(report_id: int) -> int:
    """Count one more photo by a conditional UPDATE (concurrent uploads never pass the maximum)."""
    result = db.session.execute(
        sa.update(Report)
        .where(Report.id == report_id, Report.photo_count < MAX_PHOTOS)
        .values(photo_count=Report.photo_count + 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise _too_many_photos()
    return db.session.execute(sa.select(Report.photo_count).where(Report.id == report_id)).scalar_one()


def get_photo_for(caller: Caller, report_id: int, photo_id: int) -> tuple[ReportPhoto, bytes]:
    report = get_report_for(caller, report_id)
    photo = db.session.get(ReportPhoto, photo_id)
    if photo is None or photo.report_id != report.id:
        raise NotFound("Photo not found.", code="photo_not_found")
    return photo, photos.photo_store().get(photo.storage_key)


# --- views ---------------------------------------------------------------------------------------


def photo_view(photo: ReportPhoto, photo_url: Callable[[int, int], str]) -> dict[str, Any]:
    """The photo as shown; ``photo_url(report_id, photo_id)`` is its address (the HTTP layer's)."""
    return {
        "id": photo.id,
        "client_id": photo.client_id,
        "position": photo.position,
        "content_type": photo.content_type,
        "width": photo.width,
        "height": photo.height,
        "size_bytes": photo.size_bytes,
        "url": photo_url(photo.report_id, photo.id),
        "created_at": photo.created_at,
    }


def report_view(report: Report, photo_url: Callable[[int, int], str], *, with_history: bool = False) -> dict[str, Any]:
    """The report as shown; ``history`` only on the single report."""
    view: dict[str, Any] = {
        "id": report.id,
        "client_id": report.client_id,
        "volunteer_id": report.volunteer_id,
        "reporter_name": report.volunteer.real_name,
        "grid_id": report.grid_id,
        "grid_name": report.grid.name,
        "assignment_id": report.assignment_id,
        "category": report.category,
        "level": report.level,
        "status": report.status,
        "description": report.description,
        "lat": report.lat,
        "lon": report.lon,
        "accuracy_m": report.accuracy_m,
        "device_time": report.device_at,
        "received_at": report.received_at,
        "flags": list(report.flags or []),
        "assignee_id": report.assignee_id,
        "escalated_to_id": report.escalated_to_id,
        "resolution_note": report.resolution_note,
        "resolved_at": report.resolved_at,
        "updated_at": report.updated_at,
        "photo_count": report.photo_count,
        "photos": [photo_view(photo, photo_url) for photo in report.photos],
    }
    if with_history:
        view["history"] = [
            {
                "id": event.id,
                "action": event.action,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "actor_id": event.actor_id,
                "assignee_id": event.assignee_id,
                "note": event.note,
                "at": event.created_at,
            }
            for event in report.events
        ]
    return view
