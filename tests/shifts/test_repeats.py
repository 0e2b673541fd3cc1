"""Property tests of weekly repeat rules (shifts.series.repeats): parsing, expansion, bounds, splitting,
zones.

Expansion is checked against an independent oracle that walks the calendar one day at a time, so
month ends, leap days and year ends are crossed by plain date arithmetic, not by dateutil.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from shifts.series import repeats
from shifts.series.repeats import RuleError, WeeklyRule

PREFIX = 40  # occurrences compared per example

# Dates near month ends, leap days and year ends, plus anything from 2023 to 2030.
_TRICKY_DAYS = [
    date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1), date(2025, 2, 28), date(2028, 2, 29),
    date(2026, 1, 31), date(2026, 4, 30), date(2026, 12, 31), date(2027, 12, 27), date(2027, 3, 14),
]
days = st.one_of(st.sampled_from(_TRICKY_DAYS), st.dates(date(2023, 1, 1), date(2030, 12, 31)))
clock = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
starts = st.builds(datetime.combine, days, clock)
weekday_sets = st.frozensets(st.integers(0, 6), max_size=7).map(lambda s: tuple(sorted(s)))


@st.composite
def rules(draw: st.DrawFn, bounded: bool | None = None) -> tuple[WeeklyRule, datetime]:
    dtstart = draw(starts)
    ending = draw(
        st.sampled_from(
            ["none", "until", "count"] if bounded is None else (["until", "count"] if bounded else ["none"])
        )
    )
    until = count = None
    if ending == "until":
        until = dtstart + timedelta(days=draw(st.integers(0, 900)), minutes=draw(st.integers(-90, 90)))
    elif ending == "count":
        count = draw(st.integers(1, 400))
    rule = WeeklyRule(
        weekdays=draw(weekday_sets),
        interval=draw(st.integers(1, 52)),
        until=until,
        count=count,
        week_start=draw(st.integers(0, 6)),
    )
    return rule, dtstart


def oracle(rule: WeeklyRule, dtstart: datetime, limit: int) -> list[datetime]:
    """The first ``limit`` occurrences, by walking day by day (RFC 5545 WEEKLY semantics)."""
    chosen = set(rule.weekdays or (dtstart.weekday(),))

    def week_of(day: date) -> date:
        return day - timedelta(days=(day.weekday() - rule.week_start) % 7)

    first_week = week_of(dtstart.date())
    found: list[datetime] = []
    day = dtstart.date()
    last_day = dtstart.date() + timedelta(weeks=rule.interval * (limit + 1) + 1)
    while day <= last_day and len(found) < limit:
        in_active_week = ((week_of(day) - first_week).days // 7) % rule.interval == 0
        occurrence = datetime.combine(day, dtstart.time())
        if day.weekday() in chosen and in_active_week and occurrence >= dtstart:
            if rule.until is not None and occurrence > rule.until:
                break
            found.append(occurrence)
            if rule.count is not None and len(found) == rule.count:
                break
        day += timedelta(days=1)
    return found


def first(rule: WeeklyRule, dtstart: datetime, n: int = PREFIX) -> list[datetime]:
    return list(islice(repeats.occurrences(rule, dtstart), n))


# --- expansion ---------------------------------------------------------------------------------------


@given(rules())
@example((WeeklyRule(weekdays=(3,)), datetime(2024, 2, 29, 19, 0)))  # a leap day, every Thursday
@example((WeeklyRule(weekdays=(0, 6), interval=2, week_start=6), datetime(2026, 12, 31, 23, 45)))
def test_expansion_matches_a_day_by_day_walk(case: tuple[WeeklyRule, datetime]) -> None:
    rule, dtstart = case
    assert first(rule, dtstart) == oracle(rule, dtstart, PREFIX)


@given(rules())
def test_occurrences_keep_the_time_of_day_and_only_the_chosen_weekdays(case: tuple[WeeklyRule, datetime]) -> None:
    rule, dtstart = case
    chosen = set(rule.weekdays or (dtstart.weekday(),))
    found = first(rule, dtstart)
    assert all(o.time() == dtstart.time() and o.weekday() in chosen for o in found)
    assert found == sorted(set(found))
    assert all(o >= dtstart for o in found)


@given(rules(bounded=True))
@settings(max_examples=60)
def test_until_and_count_bound_the_expansion(case: tuple[WeeklyRule, datetime]) -> None:
    rule, dtstart = case
    everything = list(repeats.occurrences(rule, dtstart))
    if rule.count is not None:
        assert len(everything) <= rule.count
        assert everything == oracle(rule, dtstart, rule.count)
    else:
        assert all(o <= rule.until for o in everything)
        assert everything == oracle(rule, dtstart, len(everything) + 1)
    assert repeats.last_occurrence(rule, dtstart) == (everything[-1] if everything else None)


@given(rules(), st.integers(1, 400))
@settings(max_examples=60)
def test_the_occurrence_limit(case: tuple[WeeklyRule, datetime], maximum: int) -> None:
    rule, dtstart = case
    if rule.count is not None:
        assert repeats.exceeds(rule, dtstart, maximum) == (rule.count > maximum)
        return
    if rule.is_open_ended:
        window = repeats.occurrences(
            rule, dtstart, until=dtstart + repeats.OPEN_ENDED_WINDOW - timedelta(seconds=1)
        )
        counted = sum(1 for _ in window)
    else:
        counted = sum(1 for _ in repeats.occurrences(rule, dtstart))
    assert repeats.exceeds(rule, dtstart, maximum) == (counted > maximum)


@given(rules(bounded=False))
@settings(max_examples=30)
def test_an_open_ended_weekly_rule_never_passes_366_a_year(case: tuple[WeeklyRule, datetime]) -> None:
    rule, dtstart = case
    assert not repeats.exceeds(rule, dtstart, 366)


def test_a_daily_rule_until_far_away_passes_366_and_count_367_too() -> None:
    every_day = repeats.parse_rule("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU;UNTIL=20271231")
    assert repeats.exceeds(every_day, datetime(2026, 12, 1, 19), 366)
    assert not repeats.exceeds(every_day, datetime(2027, 1, 1, 19), 366)  # 365 days in 2027
    assert repeats.exceeds(repeats.parse_rule("FREQ=WEEKLY;COUNT=367"), datetime(2027, 1, 1), 366)


# --- this and following ----------------------------------------------------------------------------


@given(rules(), st.integers(0, PREFIX - 1))
def test_splitting_keeps_every_occurrence_exactly_once(case: tuple[WeeklyRule, datetime], index: int) -> None:
    rule, dtstart = case
    original = first(rule, dtstart)
    assume(index < len(original))
    at = original[index]
    before, after = repeats.split(rule, dtstart, at)
    assert list(repeats.occurrences(before, dtstart)) == original[:index]
    assert first(after, at, PREFIX - index) == original[index:]
    if not rule.is_open_ended:
        assert list(repeats.occurrences(before, dtstart)) + list(repeats.occurrences(after, at)) == list(
            repeats.occurrences(rule, dtstart)
        )


@given(rules(), st.integers(0, PREFIX - 1), rules(), clock)
def test_a_new_rule_from_the_split_follows_the_old_one_without_overlap(
    case: tuple[WeeklyRule, datetime], index: int, new_case: tuple[WeeklyRule, datetime], new_time: time
) -> None:
    rule, dtstart = case
    original = first(rule, dtstart)
    assume(index < len(original))
    at = original[index]
    before, _ = repeats.split(rule, dtstart, at)
    new_rule = new_case[0].with_default_weekday(at.date())
    new_start = datetime.combine(at.date(), new_time)
    kept = list(repeats.occurrences(before, dtstart))
    following = first(new_rule, new_start)
    assert kept == original[:index]
    assert all(o < at for o in kept)
    assert all(o >= new_start for o in following)
    combined = kept + following
    assert len(combined) == len(set(combined))


# --- parsing ---------------------------------------------------------------------------------------------


@given(rules())
def test_the_normalised_text_parses_back_to_the_same_rule(case: tuple[WeeklyRule, datetime]) -> None:
    rule, _ = case
    rule = WeeklyRule(
        rule.weekdays, rule.interval,
        rule.until.replace(second=0) if rule.until else None, rule.count, rule.week_start,
    )
    assert repeats.parse_rule(rule.text()) == rule


@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused_with_a_message(text: str) -> None:
    try:
        repeats.parse_rule(text, ZoneInfo("Asia/Shanghai"))
    except RuleError as error:
        assert error.message.endswith(".")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FREQ=DAILY", "Only FREQ=WEEKLY is supported."),
        ("FREQ=MONTHLY;BYDAY=MO", "Only FREQ=WEEKLY is supported."),
        ("FREQ=WEEKLY;BYMONTH=3", repeats.unsupported_message("BYMONTH")),
        ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=1", repeats.unsupported_message("BYSETPOS")),
        ("FREQ=WEEKLY;BYHOUR=9", repeats.unsupported_message("BYHOUR")),
        ("DTSTART:20270101T090000\nRRULE:FREQ=WEEKLY", repeats.MESSAGES["dtstart"]),
        ("FREQ=WEEKLY;DTSTART=20270101", repeats.MESSAGES["dtstart"]),
        ("FREQ=WEEKLY\nFREQ=WEEKLY", repeats.MESSAGES["lines"]),
        ("BYDAY=MO", repeats.MESSAGES["freq_missing"]),
        ("FREQ=WEEKLY;BYDAY=1MO", repeats.MESSAGES["byday"]),
        ("FREQ=WEEKLY;BYDAY=MO,XX", repeats.MESSAGES["byday"]),
        ("FREQ=WEEKLY;INTERVAL=0", repeats.MESSAGES["interval"]),
        ("FREQ=WEEKLY;INTERVAL=53", repeats.MESSAGES["interval"]),
        ("FREQ=WEEKLY;COUNT=0", repeats.MESSAGES["count"]),
        ("FREQ=WEEKLY;COUNT=-1", repeats.MESSAGES["count"]),
        ("FREQ=WEEKLY;UNTIL=20270230", repeats.MESSAGES["until"]),
        ("FREQ=WEEKLY;UNTIL=2027", repeats.MESSAGES["until"]),
        ("FREQ=WEEKLY;UNTIL=20270101;COUNT=2", repeats.MESSAGES["until_and_count"]),
        ("FREQ=WEEKLY;FREQ=WEEKLY", repeats.MESSAGES["repeated"]),
        ("FREQ=WEEKLY;;BYDAY=MO", repeats.MESSAGES["part"]),
        ("every monday", repeats.MESSAGES["part"]),
        ("", repeats.MESSAGES["empty"]),
        ("RRULE:", repeats.MESSAGES["empty"]),
        ("FREQ=WEEKLY;WKST=XY", repeats.MESSAGES["wkst"]),
    ],
)
def test_unsupported_and_malformed_rules_say_why(text: str, message: str) -> None:
    with pytest.raises(RuleError) as raised:
        repeats.parse_rule(text)
    assert raised.value.message == message


def test_until_forms_become_local_wall_clock_time() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    assert repeats.parse_rule("FREQ=WEEKLY;UNTIL=20270301", shanghai).until == datetime(2027, 3, 1, 23, 59, 59)
    assert repeats.parse_rule("FREQ=WEEKLY;UNTIL=20270301T120000", shanghai).until == datetime(2027, 3, 1, 12)
    assert repeats.parse_rule("rrule:freq=weekly;until=20270301T120000z", shanghai).until == datetime(2027, 3, 1, 20)
    normalised = repeats.parse_rule(" RRULE:freq=weekly; byday=fr,mo,mo ; interval=1 ")
    assert normalised.text() == "FREQ=WEEKLY;BYDAY=MO,FR"


# --- time zones --------------------------------------------------------------------------------------------

zones = st.sampled_from(
    ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Santiago"]
)


@given(zones, st.datetimes(datetime(2024, 1, 1), datetime(2030, 12, 31)))
def test_local_times_land_forward_in_gaps_and_first_when_ambiguous(zone_name: str, local: datetime) -> None:
    zone = ZoneInfo(zone_name)
    moment = repeats.local_to_utc(local, zone)
    assert moment.tzinfo is UTC
    shown = repeats.utc_to_local(moment, zone)
    assert local <= shown <= local + timedelta(hours=1)  # only a gap moves it, forward by the gap
    if shown != local:  # the wall-clock time does not exist that day
        assert local.replace(tzinfo=zone).utcoffset() != local.replace(tzinfo=zone, fold=1).utcoffset()
    later = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    assert moment <= later  # ambiguous: the first of the two instants


def test_dst_in_new_york() -> None:
    new_york = ZoneInfo("America/New_York")
    # 2027-03-14 02:30 does not exist: it becomes 03:30 EDT. 2027-11-07 01:30 happens twice: the first.
    assert repeats.local_to_utc(datetime(2027, 3, 14, 2, 30), new_york) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
    assert repeats.local_to_utc(datetime(2027, 11, 7, 1, 30), new_york) == datetime(2027, 11, 7, 5, 30, tzinfo=UTC)


@given(rules(), zones, st.integers(0, 400), st.integers(1, 120))
@settings(max_examples=60)
def test_utc_windows_hold_exactly_the_occurrences_starting_inside(
    case: tuple[WeeklyRule, datetime], zone_name: str, offset_days: int, length_days: int
) -> None:
    rule, dtstart = case
    zone = ZoneInfo(zone_name)
    start = repeats.local_to_utc(dtstart, zone) + timedelta(days=offset_days)
    end = start + timedelta(days=length_days)
    expected = [
        (o, repeats.local_to_utc(o, zone))
        for o in repeats.occurrences(rule, dtstart, until=repeats.utc_to_local(end, zone) + timedelta(days=1))
        if start <= repeats.local_to_utc(o, zone) < end
    ]
    assert repeats.in_utc_window(rule, dtstart, zone, start, end) == expected
    upcoming = repeats.first_after(rule, dtstart, zone, start)
    later = (o for o in repeats.occurrences(rule, dtstart) if repeats.local_to_utc(o, zone) > start)
    assert upcoming == next(later, None)


@given(rules(), zones, st.integers(0, PREFIX - 1))
@example((WeeklyRule(weekdays=(6,)), datetime(2027, 3, 7, 2, 30)), "America/New_York", 1)  # 02:30 in the gap
@example((WeeklyRule(weekdays=(6,)), datetime(2027, 10, 31, 1, 30)), "America/New_York", 1)  # 01:30 twice
def test_an_occurrence_is_found_again_from_the_instant_the_api_shows(
    case: tuple[WeeklyRule, datetime], zone_name: str, index: int
) -> None:
    """`from_occurrence` comes back as an instant; matching by instant, not by the local reading,
    finds the occurrence also when its wall-clock time falls in a DST gap."""
    rule, dtstart = case
    zone = ZoneInfo(zone_name)
    found = first(rule, dtstart)
    assume(index < len(found))
    occurrence = found[index]
    moment = repeats.local_to_utc(occurrence, zone)
    assert repeats.occurrence_at(rule, dtstart, zone, moment) == occurrence
    assert repeats.occurrence_at(rule, dtstart, zone, moment.astimezone(ZoneInfo("Asia/Kolkata"))) == occurrence
    assert repeats.occurrence_at(rule, dtstart, zone, moment + timedelta(minutes=1)) is None
