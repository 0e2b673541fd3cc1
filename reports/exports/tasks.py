"""Background work of report exports: building an export job's file (sent after the commit that
queued the job; in-process without a broker) and, under beat every REPORTS_EXPORT_PURGE_MINUTES,
deleting expired jobs and their files (reports/exports/jobs.py)."""

from __future__ import annotations

import logging

import marshmallow as ma

from core.db import utcnow
from core.errors import ApiError
from core.extensions import db
from core.tasks import celery, periodic
from core.transactions import commit_batch
from reports.exports import jobs
from reports.exports.models import ExportStatus, ReportExportJob

log = logging.getLogger(__name__)


@celery.task(name="reports.build_export")
def build_export_task(job_id: int) -> str:
    """Build export job ``job_id``'s file; the job's status at the end."""
    return build_export(job_id)


def build_export(job_id: int) -> str:
    """Build job ``job_id``'s file and mark it done (or failed); its status at the end.

    Idempotent: a job already done or failed is left alone; a job found running was being built
    by a worker that died, and is built again."""
    job = db.session.get(ReportExportJob, job_id)
    if job is None:
        return "gone"
    if job.status in (ExportStatus.DONE, ExportStatus.FAILED):
        return job.status
    job.status, job.started_at = ExportStatus.RUNNING.value, utcnow()
    commit_batch()  # "running" is seen while the file is written
    try:
        jobs.write_job_file(job)
    except ApiError as error:  # a refusal at run time: the area is gone, the scope no longer holds
        return _fail(job_id, error.code)
    except ma.ValidationError:  # the arguments no longer hold (a setting changed since)
        return _fail(job_id, "validation_failed")
    except Exception as error:
        _fail(job_id, "export_failed")
        log.warning("export job failed", extra={"job": job_id, "error": type(error).__name__})
        raise  # counted and logged as the task's failure; the job is marked already
    return ExportStatus.DONE.value


def _fail(job_id: int, code: str) -> str:
    db.session.rollback()
    job = db.session.get(ReportExportJob, job_id)
    if job is not None:
        jobs.mark_failed(job, code)
    commit_batch()
    return ExportStatus.FAILED.value


@periodic("REPORTS_EXPORT_PURGE_MINUTES")
@celery.task(name="reports.purge_exports")
def purge_exports_task() -> dict[str, int]:
    """Fail stalled export jobs, delete expired ones and their files; the counts."""
    return jobs.purge_exports()
