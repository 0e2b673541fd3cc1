"""reports' settings (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer, text

#: Most buckets of one time series (a day series over a year has 366).
SERIES_MAX_POINTS = "REPORTS_SERIES_MAX_POINTS"
#: A read replica for the reports (reports/replica.py).
REPORTS_DATABASE_URL = "REPORTS_DATABASE_URL"

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
)
