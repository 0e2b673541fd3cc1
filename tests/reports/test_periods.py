"""Report periods: local dates in the area's zone as UTC instants, and the query arguments."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import marshmallow as ma
import pytest
import sqlalchemy as sa

from core.db import UTCDateTime
from reports.periods import (
    MAX_PERIOD_DAYS,
    PeriodArgsSchema,
    PeriodKind,
    SeriesStep,
    bucket_index,
    period_of,
    resolve,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def _load(**query: str) -> dict[str, Any]:
    return PeriodArgsSchema().load(query)


def _errors(**query: str) -> dict[str, Any]:
    with pytest.raises(ma.ValidationError) as caught:
        PeriodArgsSchema().load(query)
    return caught.value.messages  # type: ignore[return-value]


def test_a_month_in_shanghai_starts_at_the_local_midnight_in_utc() -> None:
    november = period_of(PeriodKind.MONTH, "2026-11", SHANGHAI)
    assert (november.first, november.last) == (date(2026, 11, 1), date(2026, 11, 30))
    assert november.starts_at == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert november.ends_at == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert november.label == "2026-11"
    utc_november = period_of(PeriodKind.MONTH, "2026-11", ZoneInfo("UTC"))
    assert utc_november.starts_at == datetime(2026, 11, 1, tzinfo=UTC)
    # 20:00 UTC on 31 October is already November in Shanghai, still October in UTC.
    evening = datetime(2026, 10, 31, 20, tzinfo=UTC)
    assert november.contains(evening) and not utc_november.contains(evening)


def test_the_first_instant_is_inside_and_the_end_is_not() -> None:
    november = period_of(PeriodKind.MONTH, "2026-11", SHANGHAI)
    assert november.contains(november.starts_at)
    assert not november.contains(november.starts_at - timedelta(microseconds=1))
    assert november.contains(november.ends_at - timedelta(microseconds=1))
    assert not november.contains(november.ends_at)
    december = period_of(PeriodKind.MONTH, "2026-12", SHANGHAI)
    assert december.previous() == november and december.starts_at == november.ends_at


def test_february_of_a_leap_year_and_a_leap_year() -> None:
    assert period_of(PeriodKind.MONTH, "2028-02", SHANGHAI).days == 29
    assert period_of(PeriodKind.MONTH, "2026-02", SHANGHAI).days == 28
    assert period_of(PeriodKind.YEAR, "2028", SHANGHAI).days == 366
    march = period_of(PeriodKind.MONTH, "2028-03", SHANGHAI)
    assert march.previous().last == date(2028, 2, 29)


def test_quarters_and_their_previous_across_the_year() -> None:
    q4 = period_of(PeriodKind.QUARTER, "2026-Q4", SHANGHAI)
    assert (q4.first, q4.last, q4.label) == (date(2026, 10, 1), date(2026, 12, 31), "2026-Q4")
    q1 = period_of(PeriodKind.QUARTER, "2027-Q1", SHANGHAI)
    assert q1.previous() == q4 and q4.ends_at == q1.starts_at
    assert q1.previous().previous().label == "2026-Q3"
    january = period_of(PeriodKind.MONTH, "2027-01", SHANGHAI)
    assert january.previous().label == "2026-12"
    assert period_of(PeriodKind.YEAR, "2027", SHANGHAI).previous().label == "2026"


def test_a_date_range_and_the_range_before_it() -> None:
    period = resolve(_load(**{"from": "2026-11-03", "to": "2026-11-09"}), SHANGHAI)
    assert period.kind is PeriodKind.RANGE and period.days == 7
    assert period.label == "2026-11-03/2026-11-09"
    before = period.previous()
    assert (before.first, before.last) == (date(2026, 10, 27), date(2026, 11, 2))


def test_weeks_are_clipped_to_the_period_and_cover_it_once() -> None:
    november = period_of(PeriodKind.MONTH, "2026-11", SHANGHAI)
    weeks = november.buckets(SeriesStep.WEEK)
    # 1 November 2026 is a Sunday: the first week is that one day.
    assert (weeks[0].first, weeks[0].last, weeks[0].label) == (date(2026, 11, 1), date(2026, 11, 1), "2026-W44")
    assert weeks[1].first == date(2026, 11, 2) and weeks[-1].last == date(2026, 11, 30)
    assert sum((week.last - week.first).days + 1 for week in weeks) == 30
    assert all(a.ends_at == b.starts_at for a, b in itertools.pairwise(weeks))
    days = november.buckets(SeriesStep.DAY)
    assert len(days) == 30 and days[0].starts_at == november.starts_at and days[-1].ends_at == november.ends_at


def test_daylight_saving_days_have_their_own_length() -> None:
    march = period_of(PeriodKind.MONTH, "2026-03", BERLIN)
    day = next(bucket for bucket in march.buckets(SeriesStep.DAY) if bucket.first == date(2026, 3, 29))
    assert day.ends_at - day.starts_at == timedelta(hours=23)


def test_bucket_index_groups_instants_in_sql() -> None:
    november = period_of(PeriodKind.MONTH, "2026-11", SHANGHAI)
    days = november.buckets(SeriesStep.DAY)
    table = sa.Table("moments", sa.MetaData(), sa.Column("at", UTCDateTime()))
    instants = [
        november.starts_at,
        days[5].starts_at - timedelta(seconds=1),
        days[5].starts_at,
        november.ends_at - timedelta(seconds=1),
    ]
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        table.create(connection)
        connection.execute(table.insert(), [{"at": instant} for instant in instants])
        indexes = connection.execute(sa.select(bucket_index(table.c.at, days)).order_by(table.c.at)).scalars().all()
    assert [days[index].first for index in indexes] == [
        date(2026, 11, 1),
        date(2026, 11, 5),
        date(2026, 11, 6),
        date(2026, 11, 30),
    ]


def test_the_query_forms_load() -> None:
    assert _load(period="quarter", value="2026-Q4") == {"period": "quarter", "value": "2026-Q4"}
    assert resolve(_load(period="year"), SHANGHAI).kind is PeriodKind.YEAR
    longest = _load(
        **{"from": "2026-01-01", "to": (date(2026, 1, 1) + timedelta(days=MAX_PERIOD_DAYS - 1)).isoformat()}
    )
    assert resolve(longest, SHANGHAI).days == MAX_PERIOD_DAYS


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "period"),
        ({"period": "week", "value": "2026-11"}, "period"),
        ({"period": "month", "value": "2026-Q4"}, "value"),
        ({"period": "month", "value": "2026-13"}, "value"),
        ({"period": "quarter", "value": "2026-11"}, "value"),
        ({"period": "year", "value": "2026-11"}, "value"),
        ({"period": "month", "value": "1999-12"}, "value"),
        ({"value": "2026-11"}, "period"),
        ({"period": "month", "value": "2026-11", "from": "2026-11-01"}, "from"),
        ({"from": "2026-11-01"}, "to"),
        ({"to": "2026-11-01"}, "from"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "to"),
        ({"from": "2026-01-01", "to": "2029-01-01"}, "to"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "1999-12-31", "to": "2000-01-01"}, "from"),
    ],
)
def test_bad_periods_name_the_field(query: dict[str, str], field: str) -> None:
    assert field in _errors(**query)
