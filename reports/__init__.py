"""Reports: what the patrol data adds up to, for district staff, organisers and volunteers.

Read-only over the lower packages' models (volunteers, shifts, patrols, rewards); it writes only
tables of its own, never theirs. Features, each a subpackage with the usual rooms:
``participation/`` (volunteers, shifts, presence, incident reports and points of an area and a
period, drilled down to its children, with a time series; a volunteer's own summary) and
``coverage/`` (patrol expected, staffed and served per grid, uncovered windows, the weakest grids,
grids below their steward quota; the quotas themselves are grid data, in ``grids``),
``exports/`` (every report as an XLSX workbook or a CSV table: streamed from the request, or built
into a file by an export job's task and downloaded later), ``rollups/`` (the participation figures
per grid and local day, and each volunteer's served days, kept at every commit, which an area's
report reads instead of a month of rows). What they
share stays here: report periods (``periods.py``: months, quarters, years and date ranges read in
the area's time zone, as UTC instants).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

MODEL_MODULES: tuple[str, ...] = ("reports.exports.models", "reports.rollups.models")
TASK_MODULES: tuple[str, ...] = ("reports.exports.tasks", "reports.rollups.tasks")

#: The route module of each feature, one a line; each holds a ``blp`` registered in this order (the
#: order of the API document's sections).
FEATURE_ROUTES: tuple[str, ...] = (
    "reports.participation.routes",
    "reports.coverage.routes",
    "reports.exports.routes",
)


def init_app(app: Flask) -> None:
    """The reports API: one blueprint per feature; the replica reports read, when configured."""
    from core.extensions import api
    from reports.replica import init_replica
    from reports.rollups import listeners  # noqa: F401  (registers the commit hook)
    from reports.rollups.cli import reports_cli

    init_replica(app)
    app.cli.add_command(reports_cli)

    for name in FEATURE_ROUTES:
        api.register_blueprint(importlib.import_module(name).blp)
