"""Export jobs: a report built into a file by a task (for exports too large for one request),
then downloaded by whoever asked for it.

Queueing (:func:`queue_export`) authorises and validates as the direct export does (422 for an
unknown area or a bad period, 403 ``out_of_scope`` outside the caller's subtree) before anything is
written, then records the job with everything its task needs, frozen (models.py), and sends the
task once the request commits. The task (``tasks.build_export``, with :func:`write_job_file`) runs with the owner's rights as they
were at queue time, in no request: it recomputes the report as its JSON would be, streams it into a
file under ``REPORTS_EXPORT_DIR`` and marks the job done, or failed with a problem code; it never
leaves a job running (a worker that dies mid-way has the task redelivered, and the periodic purge
marks a job stuck past ``REPORTS_EXPORT_STALE_MINUTES`` failed).

Only the owner reaches a job: anyone else's id answers exactly as a missing one. A download checks
the owner's scope *now* (their token's) against the area again: someone moved out of the district
since must not carry its figures away (403 ``out_of_scope``; the job itself is theirs, so saying so
leaks nothing). An expired job is gone, as a missing one.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app

from core import i18n
from core.auth import Caller, Role
from core.db import rowcount, utcnow
from core.errors import Conflict, NotFound
from core.extensions import db
from core.tasks import enqueue_after_commit
from core.timeutil import zone
from grids.queries import referenced_area
from reports.coverage.schemas import CoverageArgsSchema
from reports.exports.base import ExportFormat
from reports.exports.models import ExportStatus, ReportExportJob
from reports.exports.service import ReportKind, export_of, write_file
from reports.participation.schemas import AreaParticipationArgs
from reports.periods import PeriodKind, resolve
from reports.replica import reading_reports
from reports.settings import EXPORT_DIR, EXPORT_STALE_MINUTES, EXPORT_TTL_HOURS

#: The schema each report's arguments are loaded with (the JSON report's own query arguments).
REPORT_ARGS: dict[ReportKind, type[ma.Schema]] = {
    ReportKind.PARTICIPATION: AreaParticipationArgs,
    ReportKind.COVERAGE: CoverageArgsSchema,
}
#: A job's files in the export directory (and a writer's partial files, until renamed).
FILE_PATTERNS = ("export-*", ".partial-*")

NOT_READY = i18n.N_("The export is not built yet: ask for the job's status until it is done.")
FAILED = i18n.N_("The export failed: its status tells why; ask for a new one.")
i18n.register_messages(NOT_READY, FAILED, i18n.N_("Export not found."))
i18n.register_titles(
    i18n.title("export_not_found", "Export not found"),
    i18n.title("export_not_ready", "Export not ready"),
    i18n.title("export_failed", "Export failed"),
    i18n.title("export_stalled", "Export stalled"),
)


def export_not_found() -> NotFound:
    """The answer for a job id that does not exist, has expired, or is someone else's."""
    return NotFound("Export not found.", code="export_not_found")


def export_dir() -> Path:
    return Path(current_app.config[EXPORT_DIR])


def _ttl() -> timedelta:
    return timedelta(hours=current_app.config[EXPORT_TTL_HOURS])


def _frozen_args(args: dict[str, Any], period_kind: PeriodKind, period_label: str) -> dict[str, Any]:
    """The report's arguments as JSON its schema loads again, with the period made explicit (a
    month left out means the one under way now, not when the task runs)."""
    frozen: dict[str, Any] = {"area_id": args["area_id"]}
    if period_kind is PeriodKind.RANGE:
        frozen |= {"from": args["from_date"].isoformat(), "to": args["to_date"].isoformat()}
    else:
        frozen |= {"period": period_kind.value, "value": period_label}
    if args.get("series") is not None:
        frozen["series"] = args["series"]
    return frozen


def queue_export(caller: Caller, args: dict[str, Any], language: str) -> ReportExportJob:
    """A job for the export ``args`` describe (``report``, ``format`` and the report's arguments),
    its task sent once the transaction commits."""
    from reports.exports import tasks  # the task module imports this one

    area = referenced_area(args["area_id"], "area_id")
    caller.ensure_scope(area.path)
    period = resolve(args, zone(area.timezone))
    job = ReportExportJob(
        owner_user_id=caller.user_id,
        owner_role=caller.role.value,
        owner_area_path=caller.area_path,
        report=args["report"],
        area_id=area.id,
        area_path=area.path,
        args=_frozen_args(args, period.kind, period.label),
        format=args.get("export_format") or ExportFormat.XLSX.value,
        language=language,
        status=ExportStatus.QUEUED.value,
        expires_at=utcnow() + _ttl(),
    )
    db.session.add(job)
    db.session.flush()
    enqueue_after_commit(tasks.build_export_task, job.id)
    return job


def own_job(caller: Caller, job_id: int) -> ReportExportJob:
    job = db.session.get(ReportExportJob, job_id)
    if job is None or job.owner_user_id != caller.user_id or job.expires_at <= utcnow():
        raise export_not_found()
    return job


def downloadable(caller: Caller, job_id: int) -> tuple[ReportExportJob, Path]:
    """The caller's finished job and its file; the caller must still reach the area."""
    job = own_job(caller, job_id)
    if job.status == ExportStatus.FAILED:
        raise Conflict(FAILED, code="export_failed")
    if job.status != ExportStatus.DONE or job.file_name is None:
        raise Conflict(NOT_READY, code="export_not_ready")
    caller.ensure_scope(job.area_path)
    path = export_dir() / job.file_name
    if not path.is_file():
        raise export_not_found()  # purged by another node a moment ago
    return job, path


# ------------------------------------------------------------------------------------ the task
# (reports/exports/tasks.py runs it and commits: "running", then done or failed)


def write_job_file(job: ReportExportJob) -> None:
    """Compute ``job``'s report with the owner's frozen rights, stream it into its file and mark the
    job done (raises what the report raises: an ApiError or a ValidationError for a refusal now)."""
    kind, export_format = ReportKind(job.report), ExportFormat(job.format)
    caller = Caller(
        user_id=job.owner_user_id, role=Role(job.owner_role), area_path=job.owner_area_path,
        session_id=f"export-job-{job.id}",
    )
    args = REPORT_ARGS[kind]().load(job.args)
    # The figures from the reports replica when there is one; the job itself stays on the main database.
    with reading_reports():
        export = export_of(kind, caller, args)
    file_name = f"export-{job.id}-{secrets.token_hex(8)}.{export_format.value}"
    size = write_file(export, export_format, job.language, export_dir() / file_name)
    ascii_name, name = export.file_names(export_format, job.language)
    finished = utcnow()
    job.status, job.row_count, job.size_bytes, job.file_name = ExportStatus.DONE.value, export.row_count, size, file_name
    job.download_name, job.ascii_download_name = name, ascii_name
    job.finished_at, job.expires_at = finished, finished + _ttl()


def mark_failed(job: ReportExportJob, code: str) -> None:
    finished = utcnow()
    job.status, job.error_code, job.finished_at = ExportStatus.FAILED.value, code, finished
    job.expires_at = finished + _ttl()


# ------------------------------------------------------------------------------ the purge


def purge_exports(now: datetime | None = None) -> dict[str, int]:
    """Mark jobs stuck queued or running failed (``export_stalled``), delete expired jobs and their
    files, and files no job names that are older than a job lives; the counts."""
    now = now or utcnow()
    stalled = rowcount(db.session.execute(
        sa.update(ReportExportJob)
        .where(
            ReportExportJob.status.in_([ExportStatus.QUEUED.value, ExportStatus.RUNNING.value]),
            ReportExportJob.created_at < now - timedelta(minutes=current_app.config[EXPORT_STALE_MINUTES]),
        )
        .values(status=ExportStatus.FAILED.value, error_code="export_stalled", finished_at=now)
        .execution_options(synchronize_session=False)
    ))
    directory = export_dir()
    expired = db.session.execute(
        sa.select(ReportExportJob.id, ReportExportJob.file_name).where(ReportExportJob.expires_at <= now)
    ).all()
    for _, file_name in expired:
        if file_name:
            (directory / file_name).unlink(missing_ok=True)
    if expired:
        db.session.execute(sa.delete(ReportExportJob).where(ReportExportJob.id.in_([job_id for job_id, _ in expired])))
    return {"stalled": stalled, "expired": len(expired), "orphans": _purge_orphans(directory, now)}


def _purge_orphans(directory: Path, now: datetime) -> int:
    """Files of jobs whose row is gone (a commit lost after the file was written, a crash mid-write)."""
    if not directory.is_dir():
        return 0
    named = set(db.session.scalars(sa.select(ReportExportJob.file_name).where(ReportExportJob.file_name.is_not(None))))
    oldest = (now - _ttl()).timestamp()
    removed = 0
    for pattern in FILE_PATTERNS:
        for path in directory.glob(pattern):
            if path.name not in named and path.is_file() and path.stat().st_mtime < oldest:
                path.unlink(missing_ok=True)
                removed += 1
    return removed
