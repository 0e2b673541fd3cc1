"""Points and service from what happens on patrol; each award idempotent however often its event comes.

- **Served shift** (``patrols.signals.shift_served``): a service record (the served minutes, on the
  local date of the shift's start in its grid's time zone) and points: the minutes rounded down to
  the rule's unit × points_per_hour / 60, rounded down, limited by the daily cap. The record's
  unique source (``patrol``, id) and the entry's (``patrol``, id, ``served_shift``) make a replay of
  the event a no-op; the volunteer's balance-row lock (``ledger.lock_balance``) makes two different
  events of one volunteer (same day: the cap; neighbouring days: a streak) decide one at a time.
- **Daily cap**: points from served time (shifts and paid hand-entered hours) per volunteer and local
  day, net of what was taken back; the award that reaches the cap is cut to fit, later ones pay 0.
  Report and streak bonuses are outside the cap.
- **Streak**: ``streak_days`` = N consecutive local days, each with a served (non-voided) patrol,
  earn ``streak_bonus`` once. Windows paid never share a day: 2N days in a row pay twice, N+1 once.
  When a served day arrives (in any order: phones sync late) the earliest complete window of N
  days containing it that overlaps no paid window is paid, keyed (``streak``, "volunteer:first:last")
  so it is paid once. If a day of a paid window loses its only served patrol, the bonus is reversed.
- **Presence rejected after review** (``presence_reviewed`` with ``rejected``): the service record
  is voided and each of its points entries (and a streak it completed) gets a compensating
  ``reversal`` entry (source ``entry``/id, ``reverses_id``) — never an edit. Only what is still
  unspent of that entry (``ledger.unspent``) can be taken back: points already redeemed stay
  spent, and the reversal's note says how much could not be recovered.
- **Confirmed report** (``report_status_changed`` from ``open``): the report bonus of its level.
  "Confirmed" is an organiser taking the report up — acknowledging, assigning, escalating or
  resolving it; the workflow has no way to dismiss a report, and each report leaves ``open`` once.
- **Hand-entered hours** (an organiser, ``points.record_hours``): service; points only when the
  rule says ``manual_hours_earn_points``, under the same rounding and cap.
- **Corrected service** (``records``' service record, ``corrections.correct_service``): never an edit. The
  original is voided and its earnings reversed as for a rejected presence (what is unspent); unless
  the corrected minutes are 0, a replacement record of the same source type (``patrol`` or
  ``manual``, source id ``correction:<original id>``, so one replacement per record) counts
  instead, on the same day and grid. The replacement earns what the corrected minutes earn under
  the rule that paid the original (else the rule in force on that day; manual hours only if it pays
  for them), capped as any award of that day, *less the original's points that could not be taken
  back* (already spent or lapsed): the volunteer ends up with the points of the corrected minutes,
  never with both. A replacement of a patrol still makes its day a served day for streaks; one of
  0 minutes takes the day's streak back like a rejection.

The rule used is the version in force when the service happened (``rules``). Writing or voiding a
service record moves the leaderboard totals with it (``leaderboards_totals.count_service``; ledger
entries are counted by ``ledger.append``). Every receiver runs in the sender's transaction and only
adds rows; it never commits.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from core.db import insert_on_conflict, rowcount, utcnow
from core.extensions import db
from core.timeutil import zone
from grids.models import Area
from patrols.reports.models import Report, ReportStatus
from rewards.awarding.models import ServiceRecord
from rewards.badges import service as badges
from rewards.leaderboards import totals as leaderboards_totals
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, LedgerReason
from rewards.rules import service as rules
from rewards.rules.models import PointRule
from shifts.models import Shift

SOURCE_PATROL, SOURCE_MANUAL, SOURCE_REPORT, SOURCE_STREAK, SOURCE_ENTRY = (
    "patrol", "manual", "report", "streak", "entry",
)
#: The source id of a replacement record: ``correction:<id of the record it corrects>``.
CORRECTION_PREFIX = "correction:"
#: Earnings from served time: what the daily cap limits.
CAPPED_REASONS = (LedgerReason.SERVED_SHIFT.value, LedgerReason.MANUAL_HOURS.value)
MAX_DAY_MINUTES = 1440

_INSERT_RECORD = sa.select(ServiceRecord).from_statement(
    insert_on_conflict(
        ServiceRecord.__table__,
        ["volunteer_id", "source_type", "source_id", "minutes", "served_on", "grid_id", "note",
         "created_by", "created_at"],
        ["source_type", "source_id"],
        returning=[column.name for column in ServiceRecord.__table__.columns],
    )
).execution_options(populate_existing=True)


def city_of(path: str) -> Area:
    return db.session.get_one(Area, rules.city_id_of(path))


def insert_record(**values: Any) -> ServiceRecord | None:
    """The service record, or None when its source already has one (a replay)."""
    params = {"note": None, "created_by": None, "created_at": utcnow()} | values
    return db.session.scalar(_INSERT_RECORD, params)


# --- served shifts -------------------------------------------------------------------------------


def award_served_shift(patrol_id: int, volunteer_id: int, shift_id: int, minutes: int) -> ServiceRecord | None:
    """Record a served patrol and pay for it; None when it was already recorded (or is empty)."""
    minutes = min(minutes, MAX_DAY_MINUTES)  # a shift is at most SHIFT_MAX_HOURS; never more than a day
    if minutes <= 0:
        return None
    shift = db.session.get(Shift, shift_id)
    if shift is None:
        return None
    served_on = shift.starts_at.astimezone(zone(shift.timezone)).date()
    ledger.lock_balance(volunteer_id)
    record = insert_record(
        volunteer_id=volunteer_id, source_type=SOURCE_PATROL, source_id=str(patrol_id),
        minutes=minutes, served_on=served_on, grid_id=shift.grid_id,
    )
    if record is None:
        return None
    leaderboards_totals.count_service(volunteer_id, served_on, minutes)
    city = city_of(shift.grid.path)
    rule = rules.rule_at(city.id, shift.starts_at)
    if rule is not None:
        points = capped(rule, volunteer_id, served_on, rules.points_for_minutes(rule, minutes))
        if points > 0:
            ledger.append(
                volunteer_id, points, LedgerReason.SERVED_SHIFT, SOURCE_PATROL, patrol_id,
                rule_version=rule.version, expires_at=rules.expires_at(rule, shift.starts_at, city.timezone),
                note=f"{minutes} min served",
            )
        pay_streak(rule, volunteer_id, served_on, shift.starts_at, city.timezone)
    badges.check_service_badges(volunteer_id, patrol=True)
    return record


def earned_on(volunteer_id: int, day: date) -> int:
    """Net points from served time on a local day (records later voided no longer count)."""
    total = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0))
        .select_from(LedgerEntry)
        .join(
            ServiceRecord,
            sa.and_(
                ServiceRecord.source_type == LedgerEntry.source_type,
                ServiceRecord.source_id == LedgerEntry.source_id,
            ),
        )
        .where(
            ServiceRecord.volunteer_id == volunteer_id,
            ServiceRecord.served_on == day,
            ServiceRecord.voided_at.is_(None),
            LedgerEntry.reason.in_(CAPPED_REASONS),
        )
    )
    return int(total or 0)


def capped(rule: PointRule, volunteer_id: int, day: date, points: int) -> int:
    """``points`` cut to what the day's cap still allows (the caller holds the volunteer's lock)."""
    if rule.daily_cap is None or points <= 0:
        return max(points, 0)
    return max(0, min(points, rule.daily_cap - earned_on(volunteer_id, day)))


# --- streaks -------------------------------------------------------------------------------------


def served_days(volunteer_id: int, first: date, last: date) -> set[date]:
    return set(
        db.session.scalars(
            sa.select(ServiceRecord.served_on).where(
                ServiceRecord.volunteer_id == volunteer_id,
                ServiceRecord.source_type == SOURCE_PATROL,
                ServiceRecord.voided_at.is_(None),
                ServiceRecord.served_on >= first,
                ServiceRecord.served_on <= last,
            )
        )
    )


def paid_streaks(volunteer_id: int) -> list[tuple[LedgerEntry, date, date]]:
    """The volunteer's streak bonuses not reversed, with the window each paid for."""
    paid = orm.aliased(LedgerEntry)
    reversal = sa.select(LedgerEntry.id).where(LedgerEntry.reverses_id == paid.id)
    rows = db.session.scalars(
        sa.select(paid).where(
            paid.volunteer_id == volunteer_id,
            paid.source_type == SOURCE_STREAK,
            paid.reason == LedgerReason.STREAK_BONUS,
            ~sa.exists(reversal),
        )
    ).all()
    windows = []
    for entry in rows:
        _, first, last = entry.source_id.split(":")
        windows.append((entry, date.fromisoformat(first), date.fromisoformat(last)))
    return windows


def pay_streak(rule: PointRule, volunteer_id: int, day: date, served_at: datetime, timezone: str) -> LedgerEntry | None:
    """Pay the streak completed by serving on ``day``, if any (see the module's definition)."""
    n = rule.streak_days
    if not n or not rule.streak_bonus:
        return None
    span = timedelta(days=n - 1)
    served = served_days(volunteer_id, day - span, day + span)
    paid = [(first, last) for _, first, last in paid_streaks(volunteer_id)]
    for offset in range(n):
        last = day + timedelta(days=offset)
        first = last - span
        window = {first + timedelta(days=i) for i in range(n)}
        if not window <= served:
            continue
        if any(first <= paid_last and paid_first <= last for paid_first, paid_last in paid):
            continue
        return ledger.append(
            volunteer_id, rule.streak_bonus, LedgerReason.STREAK_BONUS, SOURCE_STREAK,
            f"{volunteer_id}:{first.isoformat()}:{last.isoformat()}",
            rule_version=rule.version, expires_at=rules.expires_at(rule, served_at, timezone),
            note=f"{n} days in a row",
        )
    return None


# --- presence rejected after review ----------------------------------------------------------------


def revoke_patrol(patrol_id: int, volunteer_id: int, actor_id: int | None, reason: str | None) -> list[LedgerEntry]:
    """Void the patrol's service and reverse what it earned; returns the reversal entries written."""
    ledger.lock_balance(volunteer_id)
    record = db.session.scalar(
        sa.select(ServiceRecord).where(
            ServiceRecord.source_type == SOURCE_PATROL, ServiceRecord.source_id == str(patrol_id)
        )
    )
    if record is not None:
        record = live_record(record)  # a corrected patrol: its replacement is what counts now
    source_id = record.source_id if record is not None else str(patrol_id)
    to_reverse = list(
        db.session.scalars(
            sa.select(LedgerEntry).where(
                LedgerEntry.source_type == SOURCE_PATROL,
                LedgerEntry.source_id == source_id,
                LedgerEntry.amount > 0,
            )
        )
    )
    if record is not None:
        voided = db.session.execute(
            sa.update(ServiceRecord)
            .where(ServiceRecord.id == record.id, ServiceRecord.voided_at.is_(None))
            .values(voided_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        db.session.refresh(record)
        if rowcount(voided) == 1:  # once, however often the rejection arrives
            leaderboards_totals.count_service(volunteer_id, record.served_on, -record.minutes)
        if record.served_on not in served_days(volunteer_id, record.served_on, record.served_on):
            to_reverse += [
                entry for entry, first, last in paid_streaks(volunteer_id) if first <= record.served_on <= last
            ]
    left = ledger.unspent(ledger.movements(volunteer_id))
    note = "Presence rejected" + (f": {reason}" if reason else "")
    written = []
    for entry in to_reverse:
        reversal = reverse(entry, left.get(entry.id, 0), actor_id=actor_id, note=note)
        if reversal is not None:
            written.append(reversal)
    return written  # badges stay: they are never taken back (badges.py)


def reverse(entry: LedgerEntry, unspent: int, *, actor_id: int | None, note: str) -> LedgerEntry | None:
    """A compensating entry for what is left of ``entry``; None if nothing is left or already done."""
    amount = min(entry.amount, unspent)
    if amount <= 0:
        return None
    if amount < entry.amount:
        note += f" ({entry.amount - amount} of {entry.amount} points were already spent)"
    return ledger.append(
        entry.volunteer_id, -amount, LedgerReason.REVERSAL, SOURCE_ENTRY, entry.id,
        rule_version=entry.rule_version, reverses_id=entry.id, note=note[:500], actor_id=actor_id,
    )


# --- reports ---------------------------------------------------------------------------------------


def award_report(report_id: int, actor_id: int | None) -> LedgerEntry | None:
    """The bonus of a confirmed report's level under the rule in force now; once per report."""
    report = db.session.get(Report, report_id)
    if report is None or report.status == ReportStatus.OPEN:
        return None
    city = city_of(report.grid.path)
    now = utcnow()
    rule = rules.rule_at(city.id, now)
    entry = None
    bonus = int((rule.report_bonus or {}).get(report.level, 0)) if rule else 0
    if rule is not None and bonus > 0:
        entry = ledger.append(
            report.volunteer_id, bonus, LedgerReason.REPORT_BONUS, SOURCE_REPORT, report.id,
            rule_version=rule.version, expires_at=rules.expires_at(rule, now, city.timezone),
            actor_id=actor_id, note=f"{report.level} report confirmed",
        )
    badges.check_report_badges(report.volunteer_id)
    return entry


# --- hours entered by hand -------------------------------------------------------------------------


def minutes_on(volunteer_id: int, day: date) -> int:
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(ServiceRecord.minutes), 0)).where(
                ServiceRecord.volunteer_id == volunteer_id,
                ServiceRecord.served_on == day,
                ServiceRecord.voided_at.is_(None),
            )
        )
        or 0
    )


def award_manual_hours(
    volunteer_id: int, grid: Area, served_on: date, minutes: int, *, note: str, actor_id: int
) -> tuple[ServiceRecord, LedgerEntry | None]:
    """Hand-entered service (the caller checked scope and the day's room); points if the rule pays."""
    record = ServiceRecord(
        volunteer_id=volunteer_id, source_type=SOURCE_MANUAL, source_id=uuid.uuid4().hex,
        minutes=minutes, served_on=served_on, grid_id=grid.id, note=note, created_by=actor_id,
    )
    db.session.add(record)
    db.session.flush()
    leaderboards_totals.count_service(volunteer_id, served_on, minutes)
    city = city_of(grid.path)
    served_at = rules.day_start(served_on, grid.timezone)
    rule = rules.rule_at(city.id, served_at)
    entry = None
    if rule is not None and rule.manual_hours_earn_points:
        points = capped(rule, volunteer_id, served_on, rules.points_for_minutes(rule, minutes))
        if points > 0:
            entry = ledger.append(
                volunteer_id, points, LedgerReason.MANUAL_HOURS, SOURCE_MANUAL, record.source_id,
                rule_version=rule.version, expires_at=rules.expires_at(rule, served_at, city.timezone),
                actor_id=actor_id, note=f"{minutes} min entered by hand",
            )
    badges.check_service_badges(volunteer_id, patrol=False)
    return record, entry


# --- corrected service -----------------------------------------------------------------------------


def replacement_of(record: ServiceRecord) -> ServiceRecord | None:
    """The record that replaced ``record`` when it was corrected, if any."""
    return db.session.scalar(
        sa.select(ServiceRecord).where(
            ServiceRecord.source_type == record.source_type,
            ServiceRecord.source_id == f"{CORRECTION_PREFIX}{record.id}",
        )
    )


def live_record(record: ServiceRecord) -> ServiceRecord:
    """The newest record of ``record``'s correction chain (``record`` itself if never corrected)."""
    while record.voided_at is not None:
        following = replacement_of(record)
        if following is None:
            break
        record = following
    return record
