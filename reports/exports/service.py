"""Report exports: compute a report as for its JSON and write it as an XLSX workbook or a CSV table,
for a response (a temporary file, or chunks) or into a file an export job keeps.

Each report kind has its layout (``participation.py``, ``coverage.py``) and the function that
computes it under the caller's rights (:data:`EXPORTS`); the writers (``writers.py``) read the
rows once, as they come, so neither format holds the whole export in memory.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from core.auth import Caller
from reports.exports.base import ExportFormat, ReportExport
from reports.exports.coverage import coverage_export
from reports.exports.participation import participation_export
from reports.exports.writers import csv_chunks, write_xlsx


class ReportKind(StrEnum):
    PARTICIPATION = "participation"
    COVERAGE = "coverage"


#: How each report is computed for its export, under the caller's rights (403 out_of_scope before
#: anything is computed; 422 for a bad period or an unknown area).
EXPORTS: dict[ReportKind, Callable[[Caller, dict[str, Any]], ReportExport]] = {
    ReportKind.PARTICIPATION: participation_export,
    ReportKind.COVERAGE: coverage_export,
}


def export_of(kind: ReportKind, caller: Caller, args: dict[str, Any]) -> ReportExport:
    return EXPORTS[kind](caller, args)


def xlsx_file(export: ReportExport, language: str) -> IO[bytes]:
    """The workbook in an anonymous temporary file (gone once closed), rewound for sending."""
    spool = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - closed by the response that sends it
    try:
        write_xlsx(export.sheets(language), spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def csv_stream(export: ReportExport, language: str) -> Iterator[bytes]:
    return csv_chunks(export.table_columns(language), export.table_rows(language))


def write_file(export: ReportExport, export_format: ExportFormat, language: str, target: Path) -> int:
    """The export into ``target``, written under a temporary name in the same directory and renamed
    once complete (a reader never sees half a file); its size in bytes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(prefix=".partial-", suffix=target.suffix, dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as out:
            if export_format == ExportFormat.XLSX:
                write_xlsx(export.sheets(language), out)
            else:
                for chunk in csv_stream(export, language):
                    out.write(chunk)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return target.stat().st_size
