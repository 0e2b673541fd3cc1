"""Corrected service (``records``' service record): never an edit. The original is voided and its
earnings reversed as for a rejected presence (what is unspent); unless the corrected minutes are 0, a
replacement record of the same source type counts instead, on the same day and grid, and earns what
the corrected minutes earn less what could not be taken back (``service.py``'s docstring has the
whole rule). The correction chain itself (``replacement_of``, ``live_record``) stays in
``service.py``: a presence rejected after a correction follows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from core.db import rowcount, utcnow
from core.extensions import db
from grids.models import Area
from rewards.awarding.models import ServiceRecord
from rewards.awarding.service import (
    CAPPED_REASONS,
    CORRECTION_PREFIX,
    SOURCE_MANUAL,
    SOURCE_PATROL,
    capped,
    city_of,
    insert_record,
    paid_streaks,
    reverse,
    served_days,
)
from rewards.badges import service as badges
from rewards.leaderboards import totals as leaderboards_totals
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, LedgerReason
from rewards.rules import service as rules
from rewards.rules.models import PointRule


@dataclass(frozen=True)
class CorrectedService:
    """What :func:`correct_service` did: the original (now voided), its replacement (None for 0
    minutes), the reversals of the original's points, the replacement's earning, and the points of
    the original that could not be taken back (spent or lapsed)."""

    original: ServiceRecord
    replacement: ServiceRecord | None
    reversals: list[LedgerEntry]
    earning: LedgerEntry | None
    unrecovered: int


def correct_service(
    record_id: int, minutes: int, *, reason: str, actor_id: int | None
) -> CorrectedService | None:
    """Correct a service record to ``minutes`` (0: it did not happen); None when the record is
    already voided or corrected (nothing written). See the module's definition for the points.

    The caller checked who may correct it and that the day keeps at most 24 hours.
    """
    original = db.session.get_one(ServiceRecord, record_id)
    volunteer_id = original.volunteer_id
    ledger.lock_balance(volunteer_id)  # one correction, rejection or award of the volunteer at a time
    voided = db.session.execute(
        sa.update(ServiceRecord)
        .where(ServiceRecord.id == record_id, ServiceRecord.voided_at.is_(None))
        .values(voided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(original)
    if rowcount(voided) != 1:
        return None
    leaderboards_totals.count_service(volunteer_id, original.served_on, -original.minutes)
    earnings = list(
        db.session.scalars(
            sa.select(LedgerEntry)
            .where(
                LedgerEntry.source_type == original.source_type,
                LedgerEntry.source_id == original.source_id,
                LedgerEntry.reason.in_(CAPPED_REASONS),
                LedgerEntry.amount > 0,
            )
            .order_by(LedgerEntry.id)
        )
    )
    left = ledger.unspent(ledger.movements(volunteer_id))
    note = f"Service corrected: {reason}"
    reversals: list[LedgerEntry] = []
    unrecovered = 0
    for entry in earnings:
        reversal = reverse(entry, left.get(entry.id, 0), actor_id=actor_id, note=note)
        taken = -reversal.amount if reversal is not None else 0
        unrecovered += entry.amount - taken
        if reversal is not None:
            reversals.append(reversal)
    grid = db.session.get(Area, original.grid_id) if original.grid_id is not None else None
    replacement, earning = None, None
    if minutes > 0:
        replacement = insert_record(
            volunteer_id=volunteer_id, source_type=original.source_type,
            source_id=f"{CORRECTION_PREFIX}{original.id}", minutes=minutes, served_on=original.served_on,
            grid_id=original.grid_id, note=reason[:500], created_by=actor_id,
        )
        if replacement is None:  # the unique source: someone replaced it meanwhile
            raise RuntimeError(f"service record {original.id} has a replacement but was not voided")
        leaderboards_totals.count_service(volunteer_id, original.served_on, minutes)
        if grid is not None:
            earning = _pay_replacement(replacement, grid, earnings, unrecovered, actor_id)
        badges.check_service_badges(volunteer_id, patrol=False)
    elif original.source_type == SOURCE_PATROL and original.served_on not in served_days(
        volunteer_id, original.served_on, original.served_on
    ):
        # The day lost its served patrol: the streak it completed goes, as for a rejection.
        left = ledger.unspent(ledger.movements(volunteer_id))
        for entry, first, last in paid_streaks(volunteer_id):
            if first <= original.served_on <= last:
                reversal = reverse(entry, left.get(entry.id, 0), actor_id=actor_id, note=note)
                if reversal is not None:
                    reversals.append(reversal)
    return CorrectedService(original, replacement, reversals, earning, unrecovered)


def _pay_replacement(
    replacement: ServiceRecord, grid: Area, earnings: list[LedgerEntry], unrecovered: int, actor_id: int | None
) -> LedgerEntry | None:
    """The replacement's points (see :func:`correct_service`)."""
    city = city_of(grid.path)
    served_at = rules.day_start(replacement.served_on, grid.timezone)
    rule = None
    paid_by = next((entry.rule_version for entry in earnings if entry.rule_version is not None), None)
    if paid_by is not None:
        rule = db.session.scalar(
            sa.select(PointRule).where(PointRule.city_id == city.id, PointRule.version == paid_by)
        )
    if rule is None:
        rule = rules.rule_at(city.id, served_at)
    manual = replacement.source_type == SOURCE_MANUAL
    if rule is None or (manual and not rule.manual_hours_earn_points):
        return None
    points = capped(rule, replacement.volunteer_id, replacement.served_on,
                    rules.points_for_minutes(rule, replacement.minutes)) - unrecovered
    if points <= 0:
        return None
    return ledger.append(
        replacement.volunteer_id, points,
        LedgerReason.MANUAL_HOURS if manual else LedgerReason.SERVED_SHIFT,
        replacement.source_type, replacement.source_id,
        rule_version=rule.version, expires_at=rules.expires_at(rule, served_at, city.timezone),
        actor_id=actor_id, note=f"{replacement.minutes} min after a correction",
    )
