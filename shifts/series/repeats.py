"""Weekly repeat rules: a strict RFC 5545 RRULE subset, parsed, validated and expanded. No database.

Accepted: ``FREQ=WEEKLY`` with optional ``INTERVAL`` (1–52), ``BYDAY`` (plain weekdays), ``WKST`` and
at most one of ``UNTIL`` or ``COUNT``; an optional ``RRULE:`` prefix; names and values in any case.
Everything else (other frequencies, BYMONTH, BYSETPOS, ordinal weekdays, DTSTART inside the rule,
several lines) is refused with a :class:`RuleError` that says what to send instead.

Occurrences are naive *local* wall-clock datetimes in the series' time zone; python-dateutil expands
them and :func:`local_to_utc` places them on the time line. ``UNTIL`` is kept as local wall-clock time
(a date alone means the end of that day; a ``Z`` value is converted into the zone), so a stored rule
needs no DTSTART and no TZID: the series row holds the first occurrence and the zone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dateutil import rrule as du

from core.i18n import N_

WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MAX_INTERVAL = 52
#: Open-ended rules are measured over this window when checking the occurrence limit.
OPEN_ENDED_WINDOW = timedelta(days=366)
_ONE_SECOND = timedelta(seconds=1)
_NAME = re.compile(r"^[A-Z][A-Z-]{0,19}$")
_DIGITS = re.compile(r"^\d{1,6}$")
_UNTIL = re.compile(r"^(\d{8})(?:T(\d{6})(Z?))?$")
_SUPPORTED = {"FREQ", "INTERVAL", "BYDAY", "WKST", "UNTIL", "COUNT"}

# English messages (the msgids of translations/); shifts.series.service registers them.
SUPPORTED_HINT = "use FREQ=WEEKLY with BYDAY, INTERVAL and UNTIL or COUNT"
MESSAGES = {
    "empty": N_("The rule is empty."),
    "dtstart": N_("DTSTART is not allowed in the rule; send the first date and the start time as fields."),
    "lines": N_("Send a single RRULE line."),
    "part": N_("Each part of the rule must look like NAME=VALUE, separated by semicolons."),
    "repeated": N_("A part of the rule appears more than once."),
    "freq_missing": N_("FREQ=WEEKLY is required."),
    "freq": N_("Only FREQ=WEEKLY is supported."),
    "interval": N_("INTERVAL must be a whole number from 1 to 52."),
    "count": N_("COUNT must be a whole number of at least 1."),
    "until": N_("UNTIL must be a date YYYYMMDD or a date-time YYYYMMDDTHHMMSS, optionally ending in Z."),
    "until_and_count": N_("Use UNTIL or COUNT, not both."),
    "byday": N_("BYDAY takes plain weekdays: MO, TU, WE, TH, FR, SA, SU."),
    "wkst": N_("WKST takes one weekday: MO, TU, WE, TH, FR, SA or SU."),
}


class RuleError(ValueError):
    """The rule text is outside the supported subset; ``message`` is English, for the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def unsupported_message(name: str) -> str:
    return f"{name} is not supported: {SUPPORTED_HINT}."


@dataclass(frozen=True)
class WeeklyRule:
    """A parsed rule. ``weekdays`` are 0 (Monday) to 6, sorted; empty means the first date's weekday."""

    weekdays: tuple[int, ...] = ()
    interval: int = 1
    until: datetime | None = None  # naive local, inclusive
    count: int | None = None
    week_start: int = 0

    @property
    def is_open_ended(self) -> bool:
        return self.until is None and self.count is None

    def text(self) -> str:
        """The normalised rule: fixed part order, defaults left out, UNTIL as local date-time."""
        parts = ["FREQ=WEEKLY"]
        if self.interval != 1:
            parts.append(f"INTERVAL={self.interval}")
        if self.weekdays:
            parts.append("BYDAY=" + ",".join(WEEKDAY_CODES[day] for day in self.weekdays))
        if self.week_start:
            parts.append(f"WKST={WEEKDAY_CODES[self.week_start]}")
        if self.until is not None:
            parts.append("UNTIL=" + self.until.strftime("%Y%m%dT%H%M%S"))
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        return ";".join(parts)

    def with_default_weekday(self, first_day: date) -> WeeklyRule:
        """Spell out the weekday RFC 5545 takes from DTSTART, so the rule survives re-anchoring."""
        return self if self.weekdays else replace(self, weekdays=(first_day.weekday(),))

    def ending_before(self, at: datetime) -> WeeklyRule:
        """The same rule, stopped just before ``at`` (COUNT, if any, gives way to UNTIL)."""
        until = at - _ONE_SECOND
        if self.until is not None and self.until < until:
            until = self.until
        return replace(self, until=until, count=None)

    def expand(self, dtstart: datetime) -> du.rrule:
        return du.rrule(
            du.WEEKLY,
            dtstart=dtstart,
            interval=self.interval,
            wkst=self.week_start,
            byweekday=self.weekdays or None,
            until=self.until,
            count=self.count,
            cache=False,
        )


def parse_rule(text: str, zone: ZoneInfo | None = None) -> WeeklyRule:
    """Parse and validate ``text``; ``zone`` turns a ``Z`` UNTIL into local time (UTC if None)."""
    source = text.strip()
    if "DTSTART" in source.upper():
        raise RuleError(MESSAGES["dtstart"])
    if "\n" in source or "\r" in source:
        raise RuleError(MESSAGES["lines"])
    if source.upper().startswith("RRULE:"):
        source = source[len("RRULE:") :]
    if not source:
        raise RuleError(MESSAGES["empty"])
    values: dict[str, str] = {}
    for part in source.split(";"):
        name, sep, value = part.strip().partition("=")
        name, value = name.strip().upper(), value.strip().upper()
        if not sep or not _NAME.match(name) or not value:
            raise RuleError(MESSAGES["part"])
        if name in values:
            raise RuleError(MESSAGES["repeated"])
        values[name] = value
    for name in values:
        if name not in _SUPPORTED:
            raise RuleError(unsupported_message(name))
    if "FREQ" not in values:
        raise RuleError(MESSAGES["freq_missing"])
    if values["FREQ"] != "WEEKLY":
        raise RuleError(MESSAGES["freq"])
    if "UNTIL" in values and "COUNT" in values:
        raise RuleError(MESSAGES["until_and_count"])
    return WeeklyRule(
        weekdays=_weekdays(values.get("BYDAY")),
        interval=_number(values.get("INTERVAL", "1"), 1, MAX_INTERVAL, "interval"),
        until=_until(values["UNTIL"], zone) if "UNTIL" in values else None,
        count=_number(values["COUNT"], 1, None, "count") if "COUNT" in values else None,
        week_start=_week_start(values.get("WKST")),
    )


def _number(value: str, low: int, high: int | None, message: str) -> int:
    if not _DIGITS.match(value):
        raise RuleError(MESSAGES[message])
    number = int(value)
    if number < low or (high is not None and number > high):
        raise RuleError(MESSAGES[message])
    return number


def _weekdays(value: str | None) -> tuple[int, ...]:
    if value is None:
        return ()
    days = set()
    for code in value.split(","):
        code = code.strip()
        if code not in WEEKDAY_CODES:
            raise RuleError(MESSAGES["byday"])
        days.add(WEEKDAY_CODES.index(code))
    return tuple(sorted(days))


def _week_start(value: str | None) -> int:
    if value is None:
        return 0
    if value not in WEEKDAY_CODES:
        raise RuleError(MESSAGES["wkst"])
    return WEEKDAY_CODES.index(value)


def _until(value: str, zone: ZoneInfo | None) -> datetime:
    match = _UNTIL.match(value)
    if not match:
        raise RuleError(MESSAGES["until"])
    day, clock, utc = match.groups()
    try:
        if clock is None:
            return datetime.combine(datetime.strptime(day, "%Y%m%d").date(), time(23, 59, 59))
        moment = datetime.strptime(day + clock, "%Y%m%d%H%M%S")
        if utc:
            return moment.replace(tzinfo=UTC).astimezone(zone or UTC).replace(tzinfo=None)
        return moment
    except (ValueError, OverflowError):
        raise RuleError(MESSAGES["until"]) from None


# --- time zones -----------------------------------------------------------------------------------


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """Place a wall-clock time on the time line.

    ``fold=0`` does both DST rules we want: an ambiguous time (clocks going back) takes its first,
    earlier instance, and a time that does not exist (clocks going forward) is read with the offset
    from before the gap, which lands it later by the gap's length (02:30 → 03:30).
    """
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def utc_to_local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


# --- expansion ------------------------------------------------------------------------------------


def occurrences(
    rule: WeeklyRule,
    dtstart: datetime,
    *,
    not_before: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[datetime]:
    """Local occurrences from ``dtstart`` in order, optionally only those in [not_before, until]."""
    expansion = rule.expand(dtstart)
    source = expansion.xafter(not_before, inc=True) if not_before is not None else iter(expansion)
    for occurrence in source:
        if until is not None and occurrence > until:
            return
        yield occurrence


def occurrence_at(rule: WeeklyRule, dtstart: datetime, zone: ZoneInfo, moment: datetime) -> datetime | None:
    """The local occurrence that starts at the instant ``moment``, if one does.

    Matched by instant, not by reading ``moment`` on the local clock: an occurrence in a DST gap
    (02:30 read as 03:30) starts at an instant whose local reading is another time.
    """
    local = utc_to_local(moment, zone)
    lower = max(dtstart, local - timedelta(days=1))
    for occurrence in occurrences(rule, dtstart, not_before=lower, until=local + timedelta(days=1)):
        if local_to_utc(occurrence, zone) == moment:
            return occurrence
    return None


def first_after(
    rule: WeeklyRule, dtstart: datetime, zone: ZoneInfo, moment: datetime
) -> datetime | None:
    """The first occurrence that starts after the UTC instant ``moment``, if any."""
    # A local time is at most a day away from UTC, so starting a day early misses nothing.
    lower = max(dtstart, utc_to_local(moment, zone) - timedelta(days=1))
    for occurrence in occurrences(rule, dtstart, not_before=lower):
        if local_to_utc(occurrence, zone) > moment:
            return occurrence
    return None


def in_utc_window(
    rule: WeeklyRule, dtstart: datetime, zone: ZoneInfo, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """(local, UTC start) of every occurrence starting in the UTC window [start, end)."""
    lower = max(dtstart, utc_to_local(start, zone) - timedelta(days=1))
    upper = utc_to_local(end, zone) + timedelta(days=1)
    found = []
    for occurrence in occurrences(rule, dtstart, not_before=lower, until=upper):
        moment = local_to_utc(occurrence, zone)
        if start <= moment < end:
            found.append((occurrence, moment))
    return found


def last_occurrence(rule: WeeklyRule, dtstart: datetime) -> datetime | None:
    """The last occurrence of a bounded rule; None for an open-ended one (or one with none)."""
    if rule.is_open_ended:
        return None
    last = None
    for last in occurrences(rule, dtstart):  # noqa: B007 - only the last one is wanted
        pass
    return last


def exceeds(rule: WeeklyRule, dtstart: datetime, maximum: int) -> bool:
    """More than ``maximum`` occurrences in all (bounded rules) or in any 366 days (open-ended).

    A weekly rule has at most 366 occurrences in 366 days, so with the default limit of 366 an
    open-ended rule always passes; the window matters only if the limit is configured lower.
    """
    if rule.count is not None:
        return rule.count > maximum
    until = dtstart + OPEN_ENDED_WINDOW - _ONE_SECOND if rule.is_open_ended else None
    counted = enumerate(occurrences(rule, dtstart, until=until), start=1)
    return any(index > maximum for index, _ in counted)


def split(rule: WeeklyRule, dtstart: datetime, at: datetime) -> tuple[WeeklyRule, WeeklyRule]:
    """"This and following" at the occurrence ``at``: (rule before it, rule from it with DTSTART ``at``).

    Together they give exactly the original occurrences. Re-anchoring at ``at`` keeps an INTERVAL's
    week alignment because ``at``'s week is one of the rule's active weeks; COUNT carries over as the
    number of occurrences still to come.
    """
    after = rule
    if rule.count is not None:
        before_count = sum(1 for _ in occurrences(rule, dtstart, until=at - _ONE_SECOND))
        after = replace(rule, count=rule.count - before_count)
    return rule.ending_before(at), after


def weekday_codes(rule: WeeklyRule) -> list[str]:
    return [WEEKDAY_CODES[day] for day in rule.weekdays]
