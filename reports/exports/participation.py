"""The participation report's export: its figures, as computed for its JSON, laid out as sheets.

The figures are the participation service's (:func:`reports.participation.service.area_report`,
same authorisation, same period rules, same numbers); this module only names the columns (in the
reader's language, through the gettext catalogues) and flattens each area, child or series point
into a row. Sheets, in the XLSX workbook: the area itself, its children one level down (the
volunteers, under a grid), and the series when one was asked for. The CSV is one table of the same
rows and columns, the first column (``level``) telling which sheet a row would be on: the area's
level, its children's level (``volunteer`` under a grid), or ``day``/``week`` for series points.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from core import i18n
from core.auth import Caller
from reports.exports.base import ReportExport
from reports.exports.writers import CellKind, Column, Sheet
from reports.participation import service as participation


@dataclass(frozen=True)
class Field:
    """A column of the participation export: where its value is in a report's figures (a path of
    keys), its header (English, translated when written) and the kind of its cells."""

    path: tuple[str, ...]
    header: i18n.Text
    kind: CellKind


#: The columns that say what a row is about, then the figures.
KEY_HEADERS = (
    (i18n.C_("export header", "Level"), CellKind.TEXT),
    (i18n.C_("export header", "ID"), CellKind.INTEGER),
    (i18n.C_("export header", "Name"), CellKind.TEXT),
    (i18n.C_("export header", "From"), CellKind.DATE),
    (i18n.C_("export header", "To"), CellKind.DATE),
    (i18n.C_("export header", "As of"), CellKind.DATETIME),
)
_I, _D, _P = CellKind.INTEGER, CellKind.DECIMAL, CellKind.PERCENT
FIELDS = (
    Field(("volunteers", "registered"), i18n.C_("export header", "Volunteers registered"), _I),
    Field(("volunteers", "approved"), i18n.C_("export header", "Volunteers approved"), _I),
    Field(("volunteers", "newly_approved"), i18n.C_("export header", "Newly approved"), _I),
    Field(("volunteers", "suspended_closed"), i18n.C_("export header", "Suspended or closed"), _I),
    Field(("volunteers", "active"), i18n.C_("export header", "Active volunteers"), _I),
    Field(("shifts", "planned"), i18n.C_("export header", "Shifts planned"), _I),
    Field(("shifts", "cancelled"), i18n.C_("export header", "Shifts cancelled"), _I),
    Field(("shifts", "places_planned"), i18n.C_("export header", "Places planned"), _I),
    Field(("shifts", "places_filled"), i18n.C_("export header", "Places filled"), _I),
    Field(("shifts", "fill_rate"), i18n.C_("export header", "Fill rate"), _P),
    Field(("presence", "assignments"), i18n.C_("export header", "Assignments"), _I),
    Field(("presence", "served"), i18n.C_("export header", "Served"), _I),
    Field(("presence", "no_shows"), i18n.C_("export header", "No-shows"), _I),
    Field(("presence", "late_withdrawals"), i18n.C_("export header", "Late withdrawals"), _I),
    Field(("presence", "in_review"), i18n.C_("export header", "Presences in review"), _I),
    Field(("presence", "attendance_rate"), i18n.C_("export header", "Attendance rate"), _P),
    Field(("presence", "served_hours"), i18n.C_("export header", "Served hours"), _D),
    Field(("presence", "manual_hours"), i18n.C_("export header", "Hours entered by hand"), _D),
    Field(("reports", "filed"), i18n.C_("export header", "Reports filed"), _I),
    Field(("reports", "by_level", "red"), i18n.C_("export header", "Red reports"), _I),
    Field(("reports", "by_level", "orange"), i18n.C_("export header", "Orange reports"), _I),
    Field(("reports", "by_level", "yellow"), i18n.C_("export header", "Yellow reports"), _I),
    Field(("reports", "by_level", "green"), i18n.C_("export header", "Green reports"), _I),
    Field(("reports", "taken_up"), i18n.C_("export header", "Reports taken up"), _I),
    Field(("reports", "resolved"), i18n.C_("export header", "Reports resolved"), _I),
    Field(("reports", "median_minutes_to_take_up"), i18n.C_("export header", "Median minutes to take up"), _D),
    Field(("reports", "median_minutes_to_resolve"), i18n.C_("export header", "Median minutes to resolve"), _D),
    Field(("points", "awarded"), i18n.C_("export header", "Points awarded"), _I),
    Field(("points", "reversed"), i18n.C_("export header", "Points reversed"), _I),
    Field(("points", "redeemed"), i18n.C_("export header", "Points redeemed"), _I),
    Field(("points", "expired"), i18n.C_("export header", "Points expired"), _I),
    Field(("points", "adjusted"), i18n.C_("export header", "Points adjusted"), _I),
    Field(("points", "star_levels", "star_1"), i18n.C_("export header", "Reached one star"), _I),
    Field(("points", "star_levels", "star_2"), i18n.C_("export header", "Reached two stars"), _I),
    Field(("points", "star_levels", "star_3"), i18n.C_("export header", "Reached three stars"), _I),
    Field(("points", "star_levels", "star_4"), i18n.C_("export header", "Reached four stars"), _I),
    Field(("points", "star_levels", "star_5"), i18n.C_("export header", "Reached five stars"), _I),
)

AREA_SHEET = i18n.C_("export sheet", "Area")
SERIES_SHEET = i18n.C_("export sheet", "Series")
#: The children's sheet, by the children's level.
CHILDREN_SHEETS = {
    "district": i18n.C_("export sheet", "Districts"),
    "subdistrict": i18n.C_("export sheet", "Sub-districts"),
    "community": i18n.C_("export sheet", "Communities"),
    "grid": i18n.C_("export sheet", "Grids"),
    "volunteer": i18n.C_("export sheet", "Volunteers"),
}
#: The start of a download's name, before the area and the period.
FILE_PREFIX = i18n.C_("export file", "participation")


def columns(language: str) -> list[Column]:
    """The participation export's columns, headed in ``language``."""
    keys = [Column(i18n.gettext_in(language, header), kind) for header, kind in KEY_HEADERS]
    return keys + [Column(i18n.gettext_in(language, field.header), field.kind) for field in FIELDS]


def _figure(figures: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    value: Any = figures
    for key in path:
        if not isinstance(value, dict):
            return None  # a section the row does not have: shifts of a volunteer, stocks of a day
        value = value.get(key)
    return value


def row(
    level: str, row_id: int | None, name: str, first: date, last: date, as_of: datetime, figures: dict[str, Any]
) -> list[Any]:
    """One row: what it is about, then every figure of ``figures`` in column order (None when the
    row has no such section)."""
    return [level, row_id, name, first, last, as_of, *(_figure(figures, field.path) for field in FIELDS)]


class ParticipationExport(ReportExport):
    """The participation report's rows: the area, its children, the series points."""

    kind = "participation"
    file_prefix = FILE_PREFIX

    @property
    def _as_of(self) -> datetime:
        # Spreadsheets have no time zones: the instant as a wall-clock time of the area's zone.
        zone = ZoneInfo(self.report["period"]["time_zone"])
        return self.report["as_of"].astimezone(zone).replace(tzinfo=None)

    def area_rows(self) -> Iterator[list[Any]]:
        area, period = self.report["area"], self.report["period"]
        yield row(area["level"], area["id"], area["name"], period["from"], period["to"], self._as_of, self.report["figures"])

    def children_rows(self) -> Iterator[list[Any]]:
        period = self.report["period"]
        for child in self.report["children"]:
            yield row(child["level"], child["id"], child["name"], period["from"], period["to"], self._as_of, child["figures"])

    def series_rows(self) -> Iterator[list[Any]]:
        step = self.report.get("series_step") or ""
        for point in self.report["series"] or ():
            yield row(step, None, point["label"], point["from"], point["to"], self._as_of, point)

    def sheets(self, language: str) -> list[Sheet]:
        heads = columns(language)
        sheets = [
            Sheet(i18n.gettext_in(language, AREA_SHEET), heads, self.area_rows()),
            Sheet(i18n.gettext_in(language, CHILDREN_SHEETS[self.report["children_level"]]), heads, self.children_rows()),
        ]
        if self.report["series"] is not None:
            sheets.append(Sheet(i18n.gettext_in(language, SERIES_SHEET), heads, self.series_rows()))
        return sheets

    def table_columns(self, language: str) -> list[Column]:
        return columns(language)

    def table_rows(self, language: str) -> Iterator[list[Any]]:
        yield from self.area_rows()
        yield from self.children_rows()
        yield from self.series_rows()

    @property
    def row_count(self) -> int:
        return 1 + len(self.report["children"]) + len(self.report["series"] or ())


def participation_export(caller: Caller, args: dict[str, Any]) -> ParticipationExport:
    """The participation report of ``args`` computed as for its JSON (403 out_of_scope before
    anything is computed, 422 for a bad period or an unknown area)."""
    report = participation.area_report(caller, args)
    return ParticipationExport({**report, "series_step": args.get("series")})
