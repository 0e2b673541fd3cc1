"""What every report export shares: the formats, the download's names, the ``Content-Disposition``.

A report's export (:class:`ReportExport`) is its computed JSON body laid out as sheets for the XLSX
workbook and as one table for the CSV; each report names its own columns (``participation.py``,
``coverage.py``), and :mod:`reports.exports.service` writes either format from it, for a response
or for a file an export job keeps.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from core import i18n
from reports.exports.writers import Column, Sheet


class ExportFormat(StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIMETYPE = "text/csv"
MIMETYPES = {ExportFormat.XLSX: XLSX_MIMETYPE, ExportFormat.CSV: CSV_MIMETYPE}

#: Kept out of file names: path separators, quotes and what Windows refuses.
_UNSAFE_IN_FILE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


class ReportExport(ABC):
    """A computed report and how its rows read. ``report`` is the JSON report's body; ``kind`` is
    the ASCII start of the download's name, ``file_prefix`` the same in the reader's language."""

    kind: str
    file_prefix: i18n.Text

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report

    @abstractmethod
    def sheets(self, language: str) -> list[Sheet]:
        """The workbook's sheets, headed in ``language``; their rows are read once."""

    @abstractmethod
    def table_columns(self, language: str) -> list[Column]:
        """The CSV's columns, headed in ``language``; the first tells which part a row is of."""

    @abstractmethod
    def table_rows(self, language: str) -> Iterator[list[Any]]:
        """The CSV's rows, in :meth:`table_columns` order (names of things in ``language``)."""

    @property
    @abstractmethod
    def row_count(self) -> int:
        """Rows below the header rows, in either format."""

    @property
    def period_label(self) -> str:
        return str(self.report["period"]["label"])

    def file_names(self, export_format: ExportFormat, language: str) -> tuple[str, str]:
        """The download's name: an ASCII one (the area's id) and one with the area's name."""
        area, label, suffix = self.report["area"], self.period_label, export_format.value
        prefix = i18n.gettext_in(language, self.file_prefix)
        return safe_file_name(f"{self.kind}-{area['id']}-{label}.{suffix}"), safe_file_name(
            f"{prefix}-{area['name']}-{label}.{suffix}"
        )


def safe_file_name(name: str) -> str:
    return _UNSAFE_IN_FILE_NAME.sub("_", name)


def content_disposition(ascii_name: str, name: str) -> str:
    """``attachment`` with an ASCII ``filename`` every client reads and, when the name is not
    ASCII, an RFC 5987 ``filename*`` (UTF-8, percent-encoded) that modern clients prefer."""
    fallback = ascii_name.encode("ascii", "replace").decode("ascii").replace("?", "_")
    value = f'attachment; filename="{fallback}"'
    if name != fallback:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value
