"""An export job built by a real Celery worker on RabbitMQ (as production runs it): the worker
process, with no request, builds the file from the job's frozen rights and marks the job done."""

from __future__ import annotations

import io
import time
from datetime import timedelta
from pathlib import Path

import pytest
from celery import Celery
from flask import Flask
from openpyxl import load_workbook

from core.db import utcnow
from core.extensions import db
from reports.exports.models import ReportExportJob
from tests import factories
from tests.test_tasks_celery import WORKER_START_AND_RUN_SECONDS, broker_queue, start_worker, stop_worker  # noqa: F401


def _status(app: Flask, job_id: int) -> str | None:
    with app.app_context():  # a fresh session, so each poll sees the worker's latest commit
        job = db.session.get(ReportExportJob, job_id)
        return None if job is None else job.status


@pytest.mark.committing
def test_a_worker_on_the_broker_builds_the_export(app: Flask, broker_queue: tuple[Celery, str], tmp_path: Path) -> None:
    producer, queue = broker_queue
    with app.app_context():
        _city, district, *_ = factories.make_branch()
        staff = factories.make_user("staff", district)
        job = ReportExportJob(
            owner_user_id=staff.id, owner_role="staff", owner_area_path=district.path, report="coverage",
            area_id=district.id, area_path=district.path, args={"area_id": district.id, "period": "month",
                                                                "value": "2026-09"},
            format="xlsx", language="en", expires_at=utcnow() + timedelta(hours=24),
        )
        db.session.add(job)
        db.session.commit()
        job_id, district_id = job.id, district.id
    export_dir = tmp_path / "worker-exports"
    producer.send_task("reports.build_export", args=[job_id])

    process, log_path = start_worker(app, queue, tmp_path, {"REPORTS_EXPORT_DIR": str(export_dir)})
    try:
        deadline = time.monotonic() + WORKER_START_AND_RUN_SECONDS
        while _status(app, job_id) not in ("done", "failed"):
            assert process.poll() is None, "worker exited:\n" + log_path.read_text()
            assert time.monotonic() < deadline, "export not built in time:\n" + log_path.read_text()
            time.sleep(0.1)
    finally:
        exit_code = stop_worker(producer, queue, process)

    log = log_path.read_text()
    assert exit_code == 0, log
    with app.app_context():
        job = db.session.get(ReportExportJob, job_id)
        # the district, its one grid, and that grid's month without patrol
        assert job is not None and (job.status, job.error_code, job.row_count) == ("done", None, 3), log
        assert job.file_name is not None
        path = export_dir / job.file_name
        assert path.stat().st_size == job.size_bytes
    workbook = load_workbook(io.BytesIO(path.read_bytes()))
    assert workbook["Area"]["A2"].value == district_id and workbook["Area"]["C2"].value.month == 9
    assert workbook["Grids"]["A2"].value == 1 and workbook["Grids"].max_row == 2
