"""Spreadsheet writers of report exports: XLSX and CSV from rows that are read once, as they come.

Neither writer keeps the rows: :func:`write_xlsx` uses openpyxl's write-only workbook (each sheet's
XML goes to a temporary file as rows are appended) into a file the caller gives, and
:func:`csv_chunks` yields the text in chunks of a few kilobytes. So a 100,000-row export needs the
memory of one row and one chunk, not of the whole sheet (bench/export_memory.py measures it).

Every text cell goes through :func:`neutralise`: a spreadsheet runs a cell that starts with ``=``,
``+``, ``-`` or ``@`` as a formula (and a leading tab or CR lets one hide behind blank space), so
a volunteer who names themselves ``=HYPERLINK(…)`` would otherwise put a live formula in a district
officer's workbook (OWASP "CSV injection"). Numbers are written as numbers and are not touched.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

#: What a spreadsheet reads as the start of a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Excel opens a CSV as UTF-8 only when it starts with a byte order mark.
UTF8_BOM = "\ufeff"
#: Excel refuses longer sheet names, and these characters in them.
SHEET_NAME_MAX = 31
_SHEET_NAME_FORBIDDEN = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))
#: Characters of CSV gathered before a chunk is yielded.
CSV_CHUNK_CHARS = 16 * 1024


def neutralise(value: Any) -> Any:
    """``value`` as a cell may hold it without running: text that a spreadsheet would read as a
    formula gets a leading single quote; anything else (numbers, dates, None) is returned as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class CellKind(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    #: Hours and minutes with one decimal.
    DECIMAL = "decimal"
    #: Hours with two decimals (the hand-over to the national volunteer system asks for them).
    DECIMAL2 = "decimal2"
    #: A ratio (0.85) shown as a percentage (85.0%).
    PERCENT = "percent"
    DATE = "date"
    DATETIME = "datetime"


#: The XLSX number format of each kind of cell.
NUMBER_FORMATS = {
    CellKind.TEXT: "@",
    CellKind.INTEGER: "0",
    CellKind.DECIMAL: "0.0",
    CellKind.DECIMAL2: "0.00",
    CellKind.PERCENT: "0.0%",
    CellKind.DATE: "yyyy-mm-dd",
    CellKind.DATETIME: "yyyy-mm-dd hh:mm:ss",
}
#: Column widths (in characters) by kind, unless a column says otherwise.
DEFAULT_WIDTHS = {
    CellKind.TEXT: 16,
    CellKind.INTEGER: 10,
    CellKind.DECIMAL: 10,
    CellKind.DECIMAL2: 10,
    CellKind.PERCENT: 10,
    CellKind.DATE: 12,
    CellKind.DATETIME: 20,
}


@dataclass(frozen=True)
class Column:
    """A column: its header (already in the reader's language) and the kind of its cells."""

    header: str
    kind: CellKind
    width: float | None = None

    @property
    def display_width(self) -> float:
        # A CJK character is about two Latin ones wide: the header should fit.
        header_width = sum(2 if ord(char) > 0x2E80 else 1 for char in self.header) + 2
        return max(self.width or DEFAULT_WIDTHS[self.kind], header_width)


@dataclass(frozen=True)
class Sheet:
    """A sheet of an export: its name, its columns and its rows (read once, in order)."""

    name: str
    columns: Sequence[Column]
    rows: Iterable[Sequence[Any]]


def sheet_name(name: str, taken: set[str]) -> str:
    """``name`` as Excel accepts it (31 characters, none of ``[]:*?/\\``), unique in ``taken``."""
    base = name.translate(_SHEET_NAME_FORBIDDEN)[:SHEET_NAME_MAX] or "Sheet"
    candidate, number = base, 1
    while candidate.lower() in taken:
        number += 1
        suffix = f" ({number})"
        candidate = base[: SHEET_NAME_MAX - len(suffix)] + suffix
    taken.add(candidate.lower())
    return candidate


def write_xlsx(sheets: Iterable[Sheet], target: IO[bytes] | str) -> None:
    """The sheets as one XLSX workbook into ``target`` (a path or a binary file): a bold, frozen
    header row, column widths, and each cell with its column's number or date format."""
    workbook = Workbook(write_only=True)
    taken: set[str] = set()
    for sheet in sheets:
        worksheet = workbook.create_sheet(sheet_name(sheet.name, taken))
        _write_sheet(worksheet, sheet)
    if not taken:
        workbook.create_sheet("Sheet")  # a workbook without a sheet does not open
    workbook.save(target)


def _write_sheet(worksheet: WriteOnlyWorksheet, sheet: Sheet) -> None:
    # Write-only sheets take their layout before the first row.
    worksheet.freeze_panes = "A2"
    # types-openpyxl leaves column_dimensions out of write-only sheets; openpyxl has them there.
    dimensions = worksheet.column_dimensions  # type: ignore[attr-defined]
    for index, column in enumerate(sheet.columns, start=1):
        dimensions[get_column_letter(index)].width = column.display_width
    bold = Font(bold=True)
    header = []
    for column in sheet.columns:
        heading = WriteOnlyCell(worksheet, value=neutralise(column.header))
        heading.font = bold
        header.append(heading)
    worksheet.append(header)
    # One style per column, shared by its cells: setting number_format cell by cell looks the format
    # up each time and costs more than writing the cell. Text needs none (General keeps text as text).
    styles = [None if column.kind == CellKind.TEXT else _style_of(worksheet, column.kind) for column in sheet.columns]
    for row in sheet.rows:
        cells: list[Any] = []
        for value, style in zip(row, styles, strict=True):
            value = neutralise(value)
            if style is None or value is None:
                cells.append(value)
                continue
            cell: Any = WriteOnlyCell(worksheet, value=value)  # _style is openpyxl's, not in its stubs
            cell._style = style
            cells.append(cell)
        worksheet.append(cells)


def _style_of(worksheet: WriteOnlyWorksheet, kind: CellKind) -> Any:
    template: Any = WriteOnlyCell(worksheet)
    template.number_format = NUMBER_FORMATS[kind]
    return template._style


def csv_chunks(columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """One CSV document, UTF-8 with a byte order mark, in chunks: a header row then ``rows``.
    Dates are ISO 8601, percentages stay ratios (0.85) and None is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(UTF8_BOM)
    writer.writerow([neutralise(column.header) for column in columns])
    for row in rows:
        writer.writerow([_csv_value(value) for value in row])
        if buffer.tell() >= CSV_CHUNK_CHARS:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return neutralise(value)
