"""Export jobs over HTTP, with the task run in-process (no broker, as in the embedded default):
queue → status → file, the file read back and compared with the JSON report; only the owner
reaches a job; refusals before anything is queued; failures marked, never left running; expiry."""

from __future__ import annotations

import csv
import io
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from core.db import utcnow
from core.extensions import db
from core.tasks import celery
from reports.exports.jobs import purge_exports
from reports.exports.models import ReportExportJob
from reports.exports.tasks import build_export_task
from reports.settings import EXPORT_DIR, EXPORT_PURGE_MINUTES, EXPORT_STALE_MINUTES, EXPORT_TTL_HOURS
from tests import factories
from tests.conftest import Tree
from tests.problems import EN, assert_problem
from tests.reports.test_coverage import DAYS, _day, _start, world  # noqa: F401  (world: the hand-built four weeks)

JOBS = "/api/v1/reports/exports"


@pytest.fixture(autouse=True)
def export_dir(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(app.config, EXPORT_DIR, str(tmp_path / "exports"))
    return tmp_path / "exports"


def _period() -> dict[str, str]:
    return {"from": _start().isoformat(), "to": (_start() + timedelta(days=DAYS - 1)).isoformat()}


def _queue(client: FlaskClient, user: Any, headers: dict[str, str] | None = None, **body: Any) -> Any:
    return client.post(JOBS, json=body, headers=factories.headers_for(user, **(headers or {})))


def _get(client: FlaskClient, url: str, user: Any, headers: dict[str, str] | None = None, **query: Any) -> Any:
    return client.get(url, query_string=query, headers=factories.headers_for(user, **(headers or {})), buffered=True)


def _done(client: FlaskClient, user: Any, **body: Any) -> dict[str, Any]:
    queued = _queue(client, user, EN, **body)
    assert queued.status_code == 202, queued.get_json()
    status = _get(client, queued.headers["Location"], user)
    assert status.status_code == 200
    job = status.get_json()
    assert job["status"] == "done", job
    return job


def test_a_coverage_job_from_queue_to_file(client: FlaskClient, world: Tree, export_dir: Path) -> None:
    assert celery.conf.task_always_eager  # no broker: the task runs in-process after the commit
    staff = factories.make_user("staff", world.district_a)
    query = {"area_id": world.district_a.id, **_period()}
    queued = _queue(client, staff, EN, report="coverage", **query)
    assert queued.status_code == 202, queued.get_json()
    body = queued.get_json()
    assert body["status"] == "queued" and body["download_url"] is None and body["format"] == "xlsx"
    assert body["args"] == query and body["language"] == "en" and body["report"] == "coverage"
    assert queued.headers["Location"].endswith(f"{JOBS}/{body['id']}")

    job = _get(client, queued.headers["Location"], staff).get_json()
    assert job["status"] == "done" and job["error_code"] is None
    assert job["download_url"].endswith(f"{JOBS}/{body['id']}/file")
    assert job["finished_at"] and job["expires_at"] > job["finished_at"]
    # the area, 3 grids, 1 uncovered shift, 6 spans without patrol (east 1, a 3, a2 2), 1 quota short
    assert job["row_count"] == 1 + 3 + 1 + 6 + 1

    response = _get(client, job["download_url"], staff)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith(f'attachment; filename="coverage-{world.district_a.id}-')
    assert response.headers["Cache-Control"] == "private, no-store"
    assert len(response.get_data()) == job["size_bytes"]
    workbook = load_workbook(io.BytesIO(response.get_data()))
    assert workbook.sheetnames == ["Area", "Grids", "Uncovered shifts", "Days without patrol", "Below steward quota"]
    report = _get(client, "/api/v1/reports/coverage", staff, **query).get_json()
    rows = list(workbook["Grids"].iter_rows(values_only=True))
    grids = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [(row["ID"], row["Served hours"], row["Coverage (%)"], row["Change (points)"]) for row in grids] == [
        (grid["grid_id"], round(grid["served_minutes"] / 60, 2), grid["coverage_pct"], grid["coverage_change"])
        for grid in report["grids"]
    ]
    area = dict(zip(*workbook["Area"].iter_rows(values_only=True), strict=True))
    assert area["Expected hours"] == report["totals"]["expected_minutes"] / 60 == 30
    assert [path.name for path in export_dir.iterdir()] == [db.session.get(ReportExportJob, body["id"]).file_name]


def test_a_participation_csv_job_in_chinese(client: FlaskClient, world: Tree) -> None:
    organiser = factories.make_user("organiser", world.community_a)
    query = {"area_id": world.community_a.id, "period": "month", "value": _day(3)[:7], "series": "week"}
    queued = client.post(JOBS, json={"report": "participation", "format": "csv", **query},
                         headers=factories.headers_for(organiser))
    assert queued.status_code == 202
    job = _get(client, queued.headers["Location"], organiser).get_json()
    assert job["status"] == "done" and job["language"] == "zh"
    response = _get(client, job["download_url"], organiser)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8; header=present"
    records = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    report = _get(client, "/api/v1/reports/participation", organiser, **query).get_json()
    assert [record["层级"] for record in records] == (
        ["community"] + ["grid"] * len(report["children"]) + ["week"] * len(report["series"])
    )
    assert records[0]["服务时长（小时）"] == str(report["figures"]["presence"]["served_hours"])
    assert job["row_count"] == len(records)


def test_a_month_left_out_is_the_one_under_way_when_asked(client: FlaskClient, world: Tree) -> None:
    staff = factories.make_user("staff", world.district_a)
    job = _done(client, staff, report="coverage", format="csv", area_id=world.district_a.id, period="month")
    report = _get(client, "/api/v1/reports/coverage", staff, area_id=world.district_a.id, period="month").get_json()
    assert job["args"] == {"area_id": world.district_a.id, "period": "month", "value": report["period"]["label"]}


def test_only_the_owner_reaches_a_job(client: FlaskClient, world: Tree) -> None:
    owner = factories.make_user("staff", world.district_a)
    job = _done(client, owner, report="coverage", area_id=world.district_a.id, **_period())
    # Another staff member of the same district, and the city's admin: as if the job did not exist.
    for other in (factories.make_user("staff", world.district_a), factories.make_user("admin", world.city)):
        for suffix in ("", "/file"):
            theirs = _get(client, f"{JOBS}/{job['id']}{suffix}", other)
            missing = _get(client, f"{JOBS}/2000000000{suffix}", other)
            assert_problem(theirs, 404, "export_not_found")
            assert theirs.get_json() == missing.get_json()
    # Chinese by default, the detail too (a detail written in place is a text of the catalogue).
    assert theirs.get_json()["detail"] == "导出任务不存在。"
    volunteer = factories.make_volunteer(world.grid_a)
    assert_problem(_get(client, f"{JOBS}/{job['id']}", volunteer.user), 403, "forbidden")


def test_a_download_checks_the_owners_scope_again(client: FlaskClient, world: Tree) -> None:
    owner = factories.make_user("staff", world.district_a)
    job = _done(client, owner, report="coverage", area_id=world.district_a.id, **_period())
    owner.area_id = world.district_b.id  # moved to another district since: a new token says so
    db.session.flush()
    assert_problem(_get(client, job["download_url"], owner), 403, "out_of_scope")
    assert _get(client, f"{JOBS}/{job['id']}", owner).get_json()["status"] == "done"  # the job is still theirs


def _job_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ReportExportJob)) or 0


def test_refusals_queue_nothing(client: FlaskClient, world: Tree) -> None:
    staff = factories.make_user("staff", world.district_a)
    period = _period()
    outsider = factories.make_user("staff", world.district_b)
    assert_problem(_queue(client, outsider, report="coverage", area_id=world.district_a.id, **period), 403, "out_of_scope")
    cases = [
        ({"report": "pdf_report", "area_id": world.district_a.id, **period}, "report"),
        ({"area_id": world.district_a.id, **period}, "report"),
        ({"report": "coverage", "format": "pdf", "area_id": world.district_a.id, **period}, "format"),
        ({"report": "coverage", "area_id": world.district_a.id, "from": _day(5), "to": _day(1)}, "to"),
        ({"report": "coverage", "area_id": world.district_a.id, "period": "month", "value": "2026-13"}, "value"),
        ({"report": "coverage", "area_id": 2_000_000_000, **period}, "area_id"),
        ({"report": "coverage", "area_id": world.district_a.id, "series": "week", **period}, "series"),
        ({"report": "participation", "area_id": world.district_a.id, "from": "2026-01-01", "to": "2026-12-31",
          "series": "day", "period": "year"}, "from"),
    ]
    for body, field in cases:
        problem = assert_problem(_queue(client, staff, **body), 422, "validation_failed")
        assert field in problem["errors"], (body, problem)
    volunteer = factories.make_volunteer(world.grid_a)
    assert_problem(_queue(client, volunteer.user, report="coverage", area_id=world.grid_a.id, **period), 403, "forbidden")
    assert client.post(JOBS, json={"report": "coverage", "area_id": world.district_a.id, **period}).status_code == 401
    assert _job_count() == 0


def _job(user: Any, area: Any, **fields: Any) -> ReportExportJob:
    values = {
        "owner_user_id": user.id, "owner_role": user.role, "owner_area_path": area.path, "report": "coverage",
        "area_id": area.id, "area_path": area.path, "args": {"area_id": area.id, "period": "month", "value": "2026-09"},
        "format": "xlsx", "language": "en", "expires_at": utcnow() + timedelta(hours=24),
    }
    job = ReportExportJob(**(values | fields))
    db.session.add(job)
    db.session.flush()
    return job


def test_a_job_not_done_cannot_be_downloaded(client: FlaskClient, world: Tree) -> None:
    staff = factories.make_user("staff", world.district_a)
    for status, code in (("queued", "export_not_ready"), ("running", "export_not_ready"), ("failed", "export_failed")):
        job = _job(staff, world.district_a, status=status)
        assert_problem(_get(client, f"{JOBS}/{job.id}/file", staff), 409, code)


def test_a_failing_task_marks_the_job_failed(app: Flask, client: FlaskClient, world: Tree) -> None:
    staff = factories.make_user("staff", world.district_a)
    # Arguments that no longer hold when the task runs: a refusal, marked with its code.
    bad = _job(staff, world.district_a, status="queued", args={"area_id": world.district_a.id, "period": "month",
                                                               "value": "2026-13"})
    result = build_export_task.apply(args=[bad.id])
    assert result.successful() and result.result == "failed"
    # Rights frozen at queue time no longer reach the area: refused in the task as in a request.
    moved = _job(staff, world.district_a, status="queued", owner_area_path=world.district_b.path)
    assert build_export_task.apply(args=[moved.id]).result == "failed"
    # The file cannot be written: an unexpected error fails the task, and the job is marked anyway.
    unwritable = Path(app.config[EXPORT_DIR])
    unwritable.parent.mkdir(parents=True, exist_ok=True)
    unwritable.write_text("a file where the directory should be")
    broken = _job(staff, world.district_a, status="running")  # a redelivery after a worker died
    assert build_export_task.apply(args=[broken.id]).failed()
    db.session.expire_all()
    assert [(job.status, job.error_code) for job in (bad, moved, broken)] == [
        ("failed", "validation_failed"), ("failed", "out_of_scope"), ("failed", "export_failed"),
    ]
    assert all(job.finished_at is not None and job.file_name is None for job in (bad, moved, broken))
    status = _get(client, f"{JOBS}/{broken.id}", staff).get_json()
    assert (status["status"], status["error_code"], status["download_url"]) == ("failed", "export_failed", None)
    done = _job(staff, world.district_a, status="done")
    assert build_export_task.apply(args=[done.id]).result == "done"  # redelivered when done: left alone


def test_expired_jobs_and_their_files_are_purged(app: Flask, client: FlaskClient, world: Tree, export_dir: Path) -> None:
    staff = factories.make_user("staff", world.district_a)
    job = _done(client, staff, report="coverage", area_id=world.district_a.id, **_period())
    kept = _done(client, staff, report="coverage", format="csv", area_id=world.district_a.id, **_period())
    stuck = _job(staff, world.district_a, status="running", created_at=utcnow() - timedelta(minutes=61))
    waiting = _job(staff, world.district_a, status="queued")
    row = db.session.get(ReportExportJob, job["id"])
    file_path = export_dir / str(row.file_name)
    assert file_path.is_file()
    old = time.time() - (app.config[EXPORT_TTL_HOURS] + 1) * 3600
    orphan, fresh_orphan = export_dir / "export-999-dead.xlsx", export_dir / ".partial-abc.csv"
    for path in (orphan, fresh_orphan):
        path.write_bytes(b"x")
    os.utime(orphan, (old, old))
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.flush()
    assert_problem(_get(client, f"{JOBS}/{job['id']}", staff), 404, "export_not_found")  # expired: gone at once

    assert purge_exports() == {"stalled": 1, "expired": 1, "orphans": 1}
    db.session.expire_all()
    assert db.session.get(ReportExportJob, job["id"]) is None and not file_path.exists()
    assert not orphan.exists() and fresh_orphan.exists()
    assert (stuck.status, stuck.error_code) == ("failed", "export_stalled")
    assert waiting.status == "queued" and db.session.get(ReportExportJob, kept["id"]) is not None
    assert _get(client, kept["download_url"], staff).status_code == 200
    assert app.config[EXPORT_STALE_MINUTES] == 60


def test_beat_purges_exports(app: Flask) -> None:
    entry = celery.conf.beat_schedule["reports.purge_exports"]
    assert entry["schedule"] == timedelta(minutes=app.config[EXPORT_PURGE_MINUTES])
    assert celery.tasks["reports.build_export"].acks_late is True
