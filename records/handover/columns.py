"""The hand-over workbook's columns: ONE ordered table per sheet of (Chinese header, English header,
kind of cell, where the value comes from).

The MCA's field list for the national volunteer system (全国志愿服务信息系统) is not public; these
columns are the fields its rules name (《志愿服务记录与证明出具办法（试行）》: the volunteer's
identity, and each service's date, time, place, content, hours and recording organisation). When the
real import template is known, reorder, rename or add columns here and nothing else changes. The
Chinese header is the template's own text, not a translation of the English, so both are written
out here rather than in the gettext catalogues; English is for readers who ask for it
(``Accept-Language: en``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Generic, TypeVar

from reports.exports.writers import CellKind, Column

ENGLISH = "en"


@dataclass(frozen=True)
class VolunteerRow:
    """A volunteer with counted service in the area and period (sheet 1)."""

    volunteer_number: str
    name: str
    id_type: tuple[str, str]  # (Chinese, English)
    id_number: str
    phone: str
    kind: tuple[str, str]  # (Chinese, English)
    registered_on: date
    minutes: int
    records: int


@dataclass(frozen=True)
class ServiceRow:
    """One service record that counts (sheet 2). Times are the shift's, local to its grid; a record
    entered by hand has none."""

    record_id: int
    volunteer_number: str
    name: str
    id_number: str
    served_on: date
    starts_at: datetime | None
    ends_at: datetime | None
    minutes: int
    by_hand: bool
    content: str
    grid: str
    community: str
    community_code: str


Row = TypeVar("Row")


@dataclass(frozen=True)
class HandoverColumn(Generic[Row]):
    header_zh: str
    header_en: str
    kind: CellKind
    value: Callable[[Row, str], Any]  # (row, language) -> the cell's value

    def column(self, language: str) -> Column:
        return Column(self.header_en if language == ENGLISH else self.header_zh, self.kind)


def hours(minutes: int) -> Decimal:
    """Minutes as hours with two decimals, half up (90 → 1.50, 20 → 0.33)."""
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _in(language: str, pair: tuple[str, str]) -> str:
    return pair[1] if language == ENGLISH else pair[0]


_T, _D, _I, _H, _DT = CellKind.TEXT, CellKind.DATE, CellKind.INTEGER, CellKind.DECIMAL2, CellKind.DATETIME

VOLUNTEER_COLUMNS: Sequence[HandoverColumn[VolunteerRow]] = (
    HandoverColumn("志愿者编号", "Volunteer number", _T, lambda row, _: row.volunteer_number),
    HandoverColumn("姓名", "Name", _T, lambda row, _: row.name),
    HandoverColumn("证件类型", "ID type", _T, lambda row, language: _in(language, row.id_type)),
    HandoverColumn("证件号码", "ID number", _T, lambda row, _: row.id_number),
    HandoverColumn("手机号码", "Mobile phone", _T, lambda row, _: row.phone),
    HandoverColumn("志愿者类型", "Volunteer kind", _T, lambda row, language: _in(language, row.kind)),
    HandoverColumn("注册日期", "Registered on", _D, lambda row, _: row.registered_on),
    HandoverColumn("服务时长（小时）", "Service hours", _H, lambda row, _: hours(row.minutes)),
    HandoverColumn("服务记录数", "Service records", _I, lambda row, _: row.records),
)

_BY_HAND = ("手工录入", "Entered by hand")
_CHECKED_IN = ("签到签退", "Checked in and out")

SERVICE_COLUMNS: Sequence[HandoverColumn[ServiceRow]] = (
    HandoverColumn("志愿者编号", "Volunteer number", _T, lambda row, _: row.volunteer_number),
    HandoverColumn("姓名", "Name", _T, lambda row, _: row.name),
    HandoverColumn("证件号码", "ID number", _T, lambda row, _: row.id_number),
    HandoverColumn("服务日期", "Service date", _D, lambda row, _: row.served_on),
    HandoverColumn("开始时间", "Start time", _DT, lambda row, _: row.starts_at),
    HandoverColumn("结束时间", "End time", _DT, lambda row, _: row.ends_at),
    HandoverColumn("服务时长（小时）", "Hours", _H, lambda row, _: hours(row.minutes)),
    HandoverColumn("服务内容", "Service content", _T, lambda row, _: row.content),
    HandoverColumn("服务地点", "Place", _T, lambda row, _: f"{row.community} {row.grid}".strip()),
    HandoverColumn(
        "记录方式", "Recorded by", _T, lambda row, language: _in(language, _BY_HAND if row.by_hand else _CHECKED_IN)
    ),
    HandoverColumn("记录组织", "Recording organisation", _T, lambda row, _: row.community),
    HandoverColumn("记录组织代码", "Organisation code", _T, lambda row, _: row.community_code),
    HandoverColumn("服务记录编号", "Service record number", _I, lambda row, _: row.record_id),
)

SHEET_NAMES = {"volunteers": ("志愿者", "Volunteers"), "service": ("服务记录", "Service records")}
FILE_PREFIX = ("志愿服务交接", "volunteer-handover")


def sheet_name(key: str, language: str) -> str:
    return _in(language, SHEET_NAMES[key])


def file_prefix(language: str) -> str:
    return _in(language, FILE_PREFIX)


def columns_in(table: Sequence[HandoverColumn[Any]], language: str) -> list[Column]:
    return [column.column(language) for column in table]


def cells(table: Sequence[HandoverColumn[Row]], row: Row, language: str) -> list[Any]:
    return [column.value(row, language) for column in table]
