"""reports' settings (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer

#: Most buckets of one time series (a day series over a year has 366).
SERIES_MAX_POINTS = "REPORTS_SERIES_MAX_POINTS"

SETTINGS: tuple[Setting, ...] = (
    integer(
        SERIES_MAX_POINTS,
        400,
        "most points of a report's time series; a longer `series=day` is 422 (ask for `series=week`)",
    ),
)
