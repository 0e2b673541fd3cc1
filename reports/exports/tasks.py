"""Background work of report exports: building an export job's file (sent after the commit that
queued the job; in-process without a broker) and, under beat every REPORTS_EXPORT_PURGE_MINUTES,
deleting expired jobs and their files (reports/exports/jobs.py)."""

from __future__ import annotations

from core.tasks import celery, periodic
from reports.exports import jobs


@celery.task(name="reports.build_export")
def build_export_task(job_id: int) -> str:
    """Build export job ``job_id``'s file; the job's status at the end."""
    return jobs.build_export(job_id)


@periodic("REPORTS_EXPORT_PURGE_MINUTES")
@celery.task(name="reports.purge_exports")
def purge_exports_task() -> dict[str, int]:
    """Fail stalled export jobs, delete expired ones and their files; the counts."""
    return jobs.purge_exports()
