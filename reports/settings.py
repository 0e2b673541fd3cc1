"""reports' settings (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, instance_file, integer, text

#: Most buckets of one time series (a day series over a year has 366).
SERIES_MAX_POINTS = "REPORTS_SERIES_MAX_POINTS"
#: A read replica for the reports (reports/replica.py).
REPORTS_DATABASE_URL = "REPORTS_DATABASE_URL"
#: Export jobs (reports/exports/jobs.py).
EXPORT_DIR = "REPORTS_EXPORT_DIR"
EXPORT_TTL_HOURS = "REPORTS_EXPORT_TTL_HOURS"
EXPORT_STALE_MINUTES = "REPORTS_EXPORT_STALE_MINUTES"
EXPORT_PURGE_MINUTES = "REPORTS_EXPORT_PURGE_MINUTES"
#: The roll-ups' sweep (reports/rollups/tasks.py).
ROLLUP_SWEEP_MINUTES = "REPORTS_ROLLUP_SWEEP_MINUTES"

SETTINGS: tuple[Setting, ...] = (
    integer(
        SERIES_MAX_POINTS,
        400,
        "most points of a report's time series; a longer `series=day` is 422 (ask for `series=week`)",
    ),
    text(
        REPORTS_DATABASE_URL,
        None,
        "a PostgreSQL streaming replica every report reads (participation, coverage, `/me/participation`, "
        "exports); unset: the main database. Its lag shows in each report's `as_of` (README \"Reports on "
        "a read replica\")",
        blank_is_unset=True,
    ),
    instance_file(
        EXPORT_DIR,
        "exports",
        "where export jobs write their files; every API node and worker must see the same directory",
    ),
    integer(EXPORT_TTL_HOURS, 24, "an export job and its file are deleted this long after it finished"),
    integer(
        EXPORT_STALE_MINUTES, 60,
        "an export job still queued or running this long after it was asked for is marked failed (`export_stalled`)",
    ),
    integer(EXPORT_PURGE_MINUTES, 30, "how often beat deletes expired export jobs and their files"),
    integer(
        ROLLUP_SWEEP_MINUTES, 5,
        "how often beat folds into the daily roll-ups changes written outside the app's sessions (a script "
        "over a raw connection); the app's own writes are folded in as they commit",
    ),
)
