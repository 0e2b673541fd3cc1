"""Background work of shifts: plain functions, and the Celery tasks that run them (core.tasks).

A task is a transaction boundary of its own (DESIGN.md): it commits, where a service only flushes.
The top-up commits each series on its own, so a long batch holds no series lock for long and a
failure keeps the series already done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from core.tasks import celery, periodic
from core.transactions import commit_batch
from shifts.models import SeriesStatus, ShiftSeries
from shifts.series.service import expand, horizon

#: Series handled by one call; the rest wait for the next (the oldest horizon goes first).
TOP_UP_BATCH = 200
#: A series is due once its horizon falls this far short of the full horizon, so a task run
#: every hour or so touches each series about once a day.
TOP_UP_SLACK = timedelta(days=1)


@dataclass(frozen=True)
class TopUpResult:
    series: int  # series expanded by this call
    shifts: int  # shifts made


def top_up_series(now: datetime | None = None) -> int:
    """Expand every due series to the planning horizon; returns the shifts made."""
    return top_up_all(now).shifts


def top_up_all(now: datetime | None = None, *, batch_size: int = TOP_UP_BATCH) -> TopUpResult:
    """Expand every due series to the planning horizon, batch after batch until none is due.

    Safe to run twice or at once: on PostgreSQL each series row is taken with SKIP LOCKED (a
    concurrent run passes over it, and this run stops at a short batch), and expansion itself
    never makes an occurrence twice.
    """
    total_series = total_shifts = 0
    while True:
        result = top_up_batch(now, limit=batch_size)
        total_series += result.series
        total_shifts += result.shifts
        if result.series < batch_size:
            return TopUpResult(series=total_series, shifts=total_shifts)


def top_up_batch(now: datetime | None = None, *, limit: int = TOP_UP_BATCH) -> TopUpResult:
    """One bounded batch, each series committed on its own so a long run holds no lock for long."""
    now = now or utcnow()
    due_before = now + horizon() - TOP_UP_SLACK
    due = db.session.scalars(
        sa.select(ShiftSeries.id)
        .where(
            ShiftSeries.status == SeriesStatus.ACTIVE,
            sa.or_(ShiftSeries.expanded_until.is_(None), ShiftSeries.expanded_until < due_before),
        )
        .order_by(sa.nulls_first(ShiftSeries.expanded_until.asc()), ShiftSeries.id)
        .limit(limit)
    ).all()
    commit_batch()
    expanded = made = 0
    for series_id in due:
        series = db.session.scalar(
            sa.select(ShiftSeries)
            .where(ShiftSeries.id == series_id, ShiftSeries.status == SeriesStatus.ACTIVE)
            .with_for_update(of=ShiftSeries, skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if series is not None and (series.expanded_until is None or series.expanded_until < due_before):
            made += len(expand(series, now))
            expanded += 1
        commit_batch()
    return TopUpResult(series=expanded, shifts=made)


@periodic("SERIES_TOP_UP_MINUTES")
@celery.task(name="shifts.top_up_series")
def top_up_series_task() -> int:
    """Beat runs this every SERIES_TOP_UP_MINUTES; ``flask tasks run-periodic`` runs it once.

    Returns the shifts made.
    """
    return top_up_series()
