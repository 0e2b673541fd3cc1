"""Export jobs: a report built into a file by a task, kept for a while, downloaded by its owner.

A job freezes at queue time everything its task needs, so the task needs no request: the owner's
rights (role and area path, as their token had them), the report, its arguments (the period made
explicit: "this month" is the month under way when it was asked for), the format and the
language of its headers. The file lives in ``REPORTS_EXPORT_DIR`` under ``file_name`` (a name made
by the server, never a path from outside); the row and the file go when ``expires_at`` passes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from core.audit import JSONType
from core.db import UTCDateTime, utcnow
from core.extensions import Model


class ExportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ReportExportJob(Model):
    __tablename__ = "report_exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: The owner's rights when the job was queued: the task runs with them.
    owner_role: Mapped[str] = mapped_column(sa.String(16))
    owner_area_path: Mapped[str] = mapped_column(sa.String(255))
    report: Mapped[str] = mapped_column(sa.String(32))
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("areas.id", ondelete="CASCADE"))
    #: The area's path when queued: a download checks the caller's scope against it.
    area_path: Mapped[str] = mapped_column(sa.String(255))
    args: Mapped[dict[str, Any]] = mapped_column(JSONType)
    format: Mapped[str] = mapped_column(sa.String(8))
    language: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16), default=ExportStatus.QUEUED.value)
    row_count: Mapped[int | None] = mapped_column(sa.Integer)
    size_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    file_name: Mapped[str | None] = mapped_column(sa.String(64))
    download_name: Mapped[str | None] = mapped_column(sa.String(255))
    ascii_download_name: Mapped[str | None] = mapped_column(sa.String(255))
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status_known"),
        sa.CheckConstraint("format IN ('xlsx', 'csv')", name="format_known"),
    )
