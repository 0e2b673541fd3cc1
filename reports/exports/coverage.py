"""The coverage report's export: its figures, as computed for its JSON, laid out as sheets.

The figures are the coverage service's (:func:`reports.coverage.service.area_coverage`: same
authorisation, same period rules, same numbers). Person-minutes are shown as hours (a clerk's
unit; minutes ÷ 60, two decimals) and coverage as the JSON's percentage. Five parts, each a sheet
of the workbook: the area's totals, the grids ranked weakest first with the previous period and the
change, the uncovered shifts (in the grid's own zone), the days without patrol, and the grids below
their steward quota. The CSV is one table of every part's rows; its first column (``part``) tells
which part a row is of, and each part fills its own columns of the union.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core import i18n
from core.auth import Caller
from core.extensions import db
from reports.coverage import service as coverage
from reports.exports.base import ReportExport
from reports.exports.writers import CellKind, Column, Sheet
from reports.sql import hours
from volunteers.models import VolunteerKind

_T, _I, _D = CellKind.TEXT, CellKind.INTEGER, CellKind.DECIMAL
_DATE, _TIME = CellKind.DATE, CellKind.DATETIME


PART = (i18n.C_("export header", "Part"), _T)
ID, NAME, CODE = (
    (i18n.C_("export header", "ID"), _I),
    (i18n.C_("export header", "Name"), _T),
    (i18n.C_("export header", "Code"), _T),
)
FROM, TO, AS_OF = (
    (i18n.C_("export header", "From"), _DATE),
    (i18n.C_("export header", "To"), _DATE),
    (i18n.C_("export header", "As of"), _TIME),
)
RANK, ZONE = (i18n.C_("export header", "Rank"), _I), (i18n.C_("export header", "Time zone"), _T)
GRIDS, EMPTY_GRIDS = (i18n.C_("export header", "Grids"), _I), (i18n.C_("export header", "Grids without shifts"), _I)
SHIFTS = (i18n.C_("export header", "Shifts"), _I)
PLANNED, TARGET = (i18n.C_("export header", "Planned hours"), _D), (i18n.C_("export header", "Target hours"), _D)
WEEKLY_TARGET = (i18n.C_("export header", "Weekly target hours"), _D)
EXPECTED, BASIS = (i18n.C_("export header", "Expected hours"), _D), (i18n.C_("export header", "Expected from"), _T)
STAFFED, SERVED = (i18n.C_("export header", "Staffed hours"), _D), (i18n.C_("export header", "Served hours"), _D)
COVERAGE = (i18n.C_("export header", "Coverage (%)"), _D)
PREVIOUS_EXPECTED, PREVIOUS_SERVED = (
    (i18n.C_("export header", "Previous expected hours"), _D),
    (i18n.C_("export header", "Previous served hours"), _D),
)
PREVIOUS_COVERAGE, CHANGE = (
    (i18n.C_("export header", "Previous coverage (%)"), _D),
    (i18n.C_("export header", "Change (points)"), _D),
)
UNCOVERED, EMPTY_DAYS = (
    (i18n.C_("export header", "Uncovered shifts"), _I),
    (i18n.C_("export header", "Days without patrol"), _I),
)
SHIFT_ID, STARTS, ENDS = (
    (i18n.C_("export header", "Shift ID"), _I),
    (i18n.C_("export header", "Starts"), _TIME),
    (i18n.C_("export header", "Ends"), _TIME),
)
DAYS = (i18n.C_("export header", "Days"), _I)
KIND, QUOTA = (i18n.C_("export header", "Volunteer kind"), _T), (i18n.C_("export header", "Quota"), _I)
ACTIVE, MISSING = (i18n.C_("export header", "Active volunteers"), _I), (i18n.C_("export header", "Missing"), _I)

#: What a grid's expected hours were taken from (``expected_basis``).
BASES = {
    "shifts": i18n.C_("export value", "Shifts planned"),
    "target": i18n.C_("export value", "Weekly target"),
    "none": i18n.C_("export value", "Nothing expected"),
}
_FIGURES = (SHIFTS, PLANNED, TARGET, EXPECTED, STAFFED, SERVED, COVERAGE)
_PREVIOUS = (PREVIOUS_EXPECTED, PREVIOUS_SERVED, PREVIOUS_COVERAGE, CHANGE)


@dataclass(frozen=True)
class Part:
    """A part of the export: its code (the CSV's ``part`` column), its sheet's name, its columns,
    and its rows as ``{column: value}`` (read once)."""

    code: str
    sheet: i18n.Text
    columns: tuple[tuple[i18n.Text, CellKind], ...]
    rows: Callable[[], Iterator[dict[Any, Any]]]


def _figures(figures: dict[str, Any]) -> dict[Any, Any]:
    return {
        SHIFTS: figures["shift_count"],
        PLANNED: hours(figures["planned_minutes"]),
        TARGET: hours(figures["target_minutes"]),
        EXPECTED: hours(figures["expected_minutes"]),
        STAFFED: hours(figures["staffed_minutes"]),
        SERVED: hours(figures["served_minutes"]),
        COVERAGE: figures["coverage_pct"],
    }


def _previous(figures: dict[str, Any], change: float | None) -> dict[Any, Any]:
    return {
        PREVIOUS_EXPECTED: hours(figures["expected_minutes"]),
        PREVIOUS_SERVED: hours(figures["served_minutes"]),
        PREVIOUS_COVERAGE: figures["coverage_pct"],
        CHANGE: change,
    }


def _wall_clock(instant: datetime, zone: str) -> datetime:
    # Spreadsheets have no time zones: the instant as a wall-clock time of the grid's zone.
    return instant.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


class CoverageExport(ReportExport):
    """The coverage report's rows, part by part (:data:`Part`)."""

    kind = "coverage"
    file_prefix = i18n.C_("export file", "coverage")

    def __init__(self, report: dict[str, Any], kind_names: dict[str, dict[str, str]]) -> None:
        super().__init__(report)
        self.kind_names = kind_names  # code → {language: name}

    def parts(self, language: str) -> list[Part]:
        return [
            Part("area", i18n.C_("export sheet", "Area"),
                 (ID, NAME, FROM, TO, AS_OF, GRIDS, EMPTY_GRIDS, *_FIGURES, *_PREVIOUS), self._area_rows),
            Part("grid", i18n.C_("export sheet", "Grids"),
                 (RANK, ID, CODE, NAME, ZONE, *_FIGURES[:3], WEEKLY_TARGET, *_FIGURES[3:], BASIS, *_PREVIOUS,
                  UNCOVERED, EMPTY_DAYS),
                 lambda: self._grid_rows(language)),
            Part("uncovered_shift", i18n.C_("export sheet", "Uncovered shifts"),
                 (ID, NAME, SHIFT_ID, STARTS, ENDS), self._uncovered_rows),
            Part("days_without_patrol", i18n.C_("export sheet", "Days without patrol"),
                 (ID, NAME, FROM, TO, DAYS), self._empty_day_rows),
            Part("below_quota", i18n.C_("export sheet", "Below steward quota"),
                 (ID, NAME, KIND, QUOTA, ACTIVE, MISSING), lambda: self._below_quota_rows(language)),
        ]  # fmt: skip

    def _area_rows(self) -> Iterator[dict[Any, Any]]:
        area, period, totals = self.report["area"], self.report["period"], self.report["totals"]
        yield {
            ID: area["id"], NAME: area["name"], FROM: period["first"], TO: period["last"],
            AS_OF: _wall_clock(self.report["as_of"], area["timezone"]),
            GRIDS: totals["grid_count"], EMPTY_GRIDS: totals["grids_without_shifts"],
            **_figures(totals), **_previous(totals["previous"], totals["coverage_change"]),
        }  # fmt: skip

    def _grid_rows(self, language: str) -> Iterator[dict[Any, Any]]:
        for grid in self.report["grids"]:
            weekly = grid["weekly_target_minutes"]
            yield {
                RANK: grid["rank"], ID: grid["grid_id"], CODE: grid["grid_code"], NAME: grid["grid_name"],
                ZONE: grid["timezone"], **_figures(grid),
                WEEKLY_TARGET: None if weekly is None else hours(weekly),
                BASIS: i18n.gettext_in(language, BASES[grid["expected_basis"]]),
                **_previous(grid["previous"], grid["coverage_change"]),
                UNCOVERED: grid["uncovered_shift_count"], EMPTY_DAYS: grid["days_without_patrol_count"],
            }  # fmt: skip

    def _uncovered_rows(self) -> Iterator[dict[Any, Any]]:
        for grid in self.report["grids"]:
            for shift in grid["uncovered_shifts"]:
                yield {
                    ID: grid["grid_id"], NAME: grid["grid_name"], SHIFT_ID: shift["shift_id"],
                    STARTS: _wall_clock(shift["starts_at"], grid["timezone"]),
                    ENDS: _wall_clock(shift["ends_at"], grid["timezone"]),
                }  # fmt: skip

    def _empty_day_rows(self) -> Iterator[dict[Any, Any]]:
        for grid in self.report["grids"]:
            for days in grid["days_without_patrol"]:
                count = (days["last"] - days["first"]).days + 1
                yield {ID: grid["grid_id"], NAME: grid["grid_name"], FROM: days["first"], TO: days["last"], DAYS: count}

    def _below_quota_rows(self, language: str) -> Iterator[dict[Any, Any]]:
        for row in self.report["below_quota"]:
            kind = self.kind_names.get(row["kind"], {}).get(language, row["kind"])
            yield {
                ID: row["grid_id"], NAME: row["grid_name"], KIND: kind, QUOTA: row["min_active"],
                ACTIVE: row["active"], MISSING: row["missing"],
            }  # fmt: skip

    def sheets(self, language: str) -> list[Sheet]:
        return [
            Sheet(i18n.gettext_in(language, part.sheet), _columns(part.columns, language), _in_order(part))
            for part in self.parts(language)
        ]

    def table_columns(self, language: str) -> list[Column]:
        return _columns(self._table_keys(language), language)

    def _table_keys(self, language: str) -> list[tuple[i18n.Text, CellKind]]:
        keys = [PART]
        for part in self.parts(language):
            keys += [key for key in part.columns if key not in keys]
        return keys

    def table_rows(self, language: str) -> Iterator[list[Any]]:
        keys = self._table_keys(language)
        for part in self.parts(language):
            for values in part.rows():
                yield [part.code, *(values.get(key) for key in keys[1:])]

    @property
    def row_count(self) -> int:
        grids = self.report["grids"]
        return (
            1
            + len(grids)
            + len(self.report["below_quota"])
            + sum(len(grid["uncovered_shifts"]) + len(grid["days_without_patrol"]) for grid in grids)
        )


def _columns(keys: Any, language: str) -> list[Column]:
    return [Column(i18n.gettext_in(language, header), kind) for header, kind in keys]


def _in_order(part: Part) -> Iterator[list[Any]]:
    for values in part.rows():
        yield [values.get(key) for key in part.columns]


def _kind_names() -> dict[str, dict[str, str]]:
    rows = db.session.execute(sa.select(VolunteerKind.code, VolunteerKind.name_zh, VolunteerKind.name_en))
    return {code: {"zh": chinese, "en": english} for code, chinese, english in rows}


def coverage_export(caller: Caller, args: dict[str, Any]) -> CoverageExport:
    """The coverage report of ``args`` computed as for its JSON (403 out_of_scope before anything
    is computed, 422 for a bad period or an unknown area)."""
    return CoverageExport(coverage.area_coverage(caller, args), _kind_names())
