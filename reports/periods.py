"""Report periods: the one owner of "which instants does this report cover".

A report asks for a calendar month (``period=month&value=2026-11``), a quarter (``2026-Q4``), a year
(``2026``) or a range of local dates (``from=2026-11-03&to=2026-11-20``, both inclusive). Dates are
read in the time zone of the area reported on, so "November" in Asia/Shanghai starts at
2026-10-31T16:00Z. A :class:`Period` holds both views: the local dates and the UTC instants
``[starts_at, ends_at)`` every query compares stored timestamps with (the end is exclusive, so a
shift starting at exactly midnight on the 1st belongs to the new month, never to both).

:class:`PeriodArgsSchema` checks the query's shape (the zone is not known until the area is), and
:func:`resolve` turns what it loaded into a :class:`Period` once the area's zone is. Series buckets
(a day or a Monday-to-Sunday week, clipped to the period so buckets add up to the period) come from
:meth:`Period.buckets`, and :func:`bucket_index` groups a timestamp column by them in SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
import sqlalchemy as sa
from marshmallow import fields, validate

from core import i18n
from core.fields import FullMatch


class PeriodKind(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    #: ``from``/``to`` dates.
    RANGE = "range"


class SeriesStep(StrEnum):
    DAY = "day"
    WEEK = "week"


#: The longest period a report covers: three years, one of them a leap year (inclusive days).
MAX_PERIOD_DAYS = 3 * 365 + 1
#: Years a period may lie in (what the value patterns accept; keeps date arithmetic in range).
FIRST_YEAR, LAST_YEAR = 2000, 2099

_PATTERNS = {
    PeriodKind.MONTH: re.compile(r"(20[0-9][0-9])-(0[1-9]|1[0-2])"),
    PeriodKind.QUARTER: re.compile(r"(20[0-9][0-9])-Q([1-4])"),
    PeriodKind.YEAR: re.compile(r"(20[0-9][0-9])"),
}

MONTH_FORMAT = i18n.N_("Use YYYY-MM for a month (2000-01 to 2099-12).")
QUARTER_FORMAT = i18n.N_("Use YYYY-Qn for a quarter (2000-Q1 to 2099-Q4).")
YEAR_FORMAT = i18n.N_("Use YYYY for a year (2000 to 2099).")
PERIOD_OR_DATES = i18n.N_("Give period and value, or from and to.")
NOT_WITH_PERIOD = i18n.N_("Not with period: give period and value, or from and to.")
NEEDS_PERIOD = i18n.N_("Required with value.")
NEEDS_FROM = i18n.N_("Required with to.")
NEEDS_TO = i18n.N_("Required with from.")
TO_BEFORE_FROM = i18n.N_("Must not be before from.")
TOO_LONG = i18n.N_("A report period may span at most three years.")
DATE_YEARS = i18n.N_("Use a date from 2000-01-01 to 2099-12-31.")

_VALUE_FORMATS = {PeriodKind.MONTH: MONTH_FORMAT, PeriodKind.QUARTER: QUARTER_FORMAT, PeriodKind.YEAR: YEAR_FORMAT}

i18n.register_messages(
    MONTH_FORMAT,
    QUARTER_FORMAT,
    YEAR_FORMAT,
    PERIOD_OR_DATES,
    NOT_WITH_PERIOD,
    NEEDS_PERIOD,
    NEEDS_FROM,
    NEEDS_TO,
    TO_BEFORE_FROM,
    TOO_LONG,
    DATE_YEARS,
)


@dataclass(frozen=True)
class Bucket:
    """One step of a time series: local dates ``first``..``last`` and their UTC instants."""

    label: str
    first: date
    last: date
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class Period:
    """Local dates ``first``..``last`` (inclusive) in ``zone``; see the module docstring."""

    kind: PeriodKind
    first: date
    last: date
    zone: ZoneInfo

    @property
    def starts_at(self) -> datetime:
        """The first instant of the period, in UTC (inside it)."""
        return _local_midnight(self.first, self.zone)

    @property
    def ends_at(self) -> datetime:
        """The first instant after the period, in UTC (exclusive)."""
        return _local_midnight(self.last + timedelta(days=1), self.zone)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def label(self) -> str:
        if self.kind is PeriodKind.MONTH:
            return f"{self.first.year:04d}-{self.first.month:02d}"
        if self.kind is PeriodKind.QUARTER:
            return f"{self.first.year:04d}-Q{(self.first.month - 1) // 3 + 1}"
        if self.kind is PeriodKind.YEAR:
            return f"{self.first.year:04d}"
        return f"{self.first.isoformat()}/{self.last.isoformat()}"

    def contains(self, instant: datetime) -> bool:
        return self.starts_at <= instant < self.ends_at

    def previous(self) -> Period:
        """The period of the same kind right before this one (a range: as many days, ending the day
        before this one starts)."""
        if self.kind is PeriodKind.RANGE:
            last = self.first - timedelta(days=1)
            return Period(self.kind, last - timedelta(days=self.days - 1), last, self.zone)
        months = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.YEAR: 12}[self.kind]
        first = _add_months(self.first, -months)
        return Period(self.kind, first, self.first - timedelta(days=1), self.zone)

    def buckets(self, step: SeriesStep) -> list[Bucket]:
        """Days, or Monday-to-Sunday weeks clipped to the period, in order; they cover the period
        exactly once, so a series sums to the period's figure."""
        result: list[Bucket] = []
        first = self.first
        while first <= self.last:
            if step is SeriesStep.DAY:
                last, label = first, first.isoformat()
            else:
                monday = first - timedelta(days=first.weekday())
                last = min(monday + timedelta(days=6), self.last)
                year, week, _ = monday.isocalendar()
                label = f"{year:04d}-W{week:02d}"
            result.append(
                Bucket(
                    label,
                    first,
                    last,
                    _local_midnight(first, self.zone),
                    _local_midnight(last + timedelta(days=1), self.zone),
                )
            )
            first = last + timedelta(days=1)
        return result


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _add_months(day: date, months: int) -> date:
    """The first of the month ``months`` after ``day``'s month (``day`` is a first of month)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(kind: PeriodKind, value: str, zone: ZoneInfo) -> Period:
    """The month, quarter or year ``value`` names (already checked by :class:`PeriodArgsSchema`)."""
    match = _PATTERNS[kind].fullmatch(value)
    if match is None:
        raise ValueError(f"not a {kind}: {value!r}")
    year = int(match.group(1))
    if kind is PeriodKind.YEAR:
        return Period(kind, date(year, 1, 1), date(year, 12, 31), zone)
    months = 1 if kind is PeriodKind.MONTH else 3
    first_month = int(match.group(2)) if kind is PeriodKind.MONTH else (int(match.group(2)) - 1) * 3 + 1
    first = date(year, first_month, 1)
    return Period(kind, first, _add_months(first, months) - timedelta(days=1), zone)


def current_value(kind: PeriodKind, zone: ZoneInfo, now: datetime | None = None) -> str:
    """The value naming the month, quarter or year under way in ``zone``."""
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    if kind is PeriodKind.MONTH:
        return f"{today.year:04d}-{today.month:02d}"
    if kind is PeriodKind.QUARTER:
        return f"{today.year:04d}-Q{(today.month - 1) // 3 + 1}"
    return f"{today.year:04d}"


def resolve(args: dict[str, Any], zone: ZoneInfo) -> Period:
    """The :class:`Period` of arguments loaded by :class:`PeriodArgsSchema`, in the area's zone."""
    if args.get("from_date") is not None:
        return Period(PeriodKind.RANGE, args["from_date"], args["to_date"], zone)
    kind = PeriodKind(args["period"])
    return period_of(kind, args.get("value") or current_value(kind, zone), zone)


def bucket_index(column: Any, buckets: list[Bucket]) -> sa.ColumnElement[int]:
    """The index of the bucket a timestamp falls in (rows must already be inside the period).

    A portable ``CASE`` (SQLite has no time zones), nested as a binary search so a row is compared
    with log2(buckets) boundaries, not all of them; boundaries are UTC instants, exact across
    daylight-saving changes.
    """

    def split(low: int, high: int) -> sa.ColumnElement[int]:
        if high - low == 1:
            return sa.literal(low, sa.Integer)
        middle = (low + high) // 2
        return sa.case((column < buckets[middle].starts_at, split(low, middle)), else_=split(middle, high))

    return split(0, len(buckets))


# ------------------------------------------------------------------------------------- arguments


def check_date_years(value: date) -> None:
    """A date argument within the years reports and exports accept (2000–2099)."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ma.ValidationError(DATE_YEARS)


class PeriodArgsSchema(ma.Schema):
    """A month, quarter or year (``period`` and ``value``), or ``from``/``to`` local dates."""

    period = fields.String(
        validate=validate.OneOf([kind.value for kind in PeriodKind if kind is not PeriodKind.RANGE]),
        metadata={"description": "month, quarter or year, named by `value`; or give `from` and `to` instead"},
    )
    value = fields.String(
        validate=FullMatch(r"^20[0-9][0-9](-(0[1-9]|1[0-2]|Q[1-4]))?$", error=PERIOD_OR_DATES),
        metadata={
            "description": "With period=month YYYY-MM, quarter YYYY-Qn, year YYYY (2000 to 2099); "
            "default: the one under way in the area's time zone",
            "example": "2026-11",
        },
    )
    from_date = fields.Date(
        data_key="from",
        validate=check_date_years,
        metadata={"description": "First local date (the area's time zone), with `to`"},
    )
    to_date = fields.Date(
        data_key="to",
        validate=check_date_years,
        metadata={"description": "Last local date, inclusive; at most three years after `from`"},
    )

    @ma.validates_schema
    def _one_form(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("from_date"), data.get("to_date")
        if "period" in data:
            clashing = {
                name: [NOT_WITH_PERIOD] for name, key in (("from", "from_date"), ("to", "to_date")) if key in data
            }
            if clashing:
                raise ma.ValidationError(clashing)
            kind = PeriodKind(data["period"])
            value = data.get("value")
            if value is not None and not _PATTERNS[kind].fullmatch(value):
                raise ma.ValidationError({"value": [_VALUE_FORMATS[kind]]})
            return
        if "value" in data:
            raise ma.ValidationError({"period": [NEEDS_PERIOD]})
        if start is None and end is None:
            raise ma.ValidationError({"period": [PERIOD_OR_DATES]})
        if end is None:
            raise ma.ValidationError({"to": [NEEDS_TO]})
        if start is None:
            raise ma.ValidationError({"from": [NEEDS_FROM]})
        if end < start:
            raise ma.ValidationError({"to": [TO_BEFORE_FROM]})
        if (end - start).days + 1 > MAX_PERIOD_DAYS:
            raise ma.ValidationError({"to": [TOO_LONG]})
