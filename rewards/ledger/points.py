"""Balances, history, badges and hand-entered hours as the endpoints show them; the invariant check.

Who sees what follows ``volunteers/``: a volunteer sees only their own (``/me/...``); organisers,
staff and admins see volunteers whose home grid lies in their subtree (anyone else is 404
``volunteer_not_found``, as an id that does not exist); a volunteer calling a manager's endpoint is
403 ``forbidden``. One ledger entry is seen by its volunteer or a manager in scope; any other is 404
``ledger_entry_not_found``, as if it did not exist.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from core import i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from core.timeutil import zone
from rewards.awarding import service as awarding
from rewards.badges import service as badges
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry
from rewards.ledger.schemas import ServiceHoursCreateInput
from volunteers.models import Volunteer, VolunteerStatus
from volunteers.service import get_in_scope, get_volunteer, may_see, own_volunteer, referenced_volunteer

#: How far back an organiser may enter hours.
MANUAL_HOURS_LOOKBACK_DAYS = 366
DAY_FULL = i18n.N_("More than 24 hours of service on this day.")
FUTURE_DAY = i18n.N_("The day has not happened yet.")
TOO_OLD = i18n.N_("At most a year back.")

i18n.register_titles(
    i18n.title("ledger_entry_not_found", "Ledger entry not found"),
    i18n.title("volunteer_not_vetted", "Volunteer not vetted"),
)
i18n.register_messages(
    i18n.N_("Ledger entry not found."),
    i18n.N_("Hours are entered only for vetted volunteers."),
    DAY_FULL,
    FUTURE_DAY,
    TOO_OLD,
)


# --- who -----------------------------------------------------------------------------------------


def own(caller: Caller) -> Volunteer:
    return own_volunteer(caller)


def managed(caller: Caller, volunteer_id: int) -> Volunteer:
    """A volunteer in the manager's subtree (404 unknown or outside)."""
    return get_in_scope(caller, volunteer_id)


# --- balance and history -------------------------------------------------------------------------


def summary(volunteer: Volunteer, *, expiring_within_days: int) -> dict[str, Any]:
    """Balance, service time, and the unspent points that lapse within the given days."""
    now = utcnow()
    horizon = now + timedelta(days=expiring_within_days)
    entries = ledger.movements(volunteer.id)
    expiry = {entry.id: entry.expires_at for entry in entries}
    soon: dict[Any, int] = {}
    for credit_id, left in ledger.unspent(entries).items():
        lapses = expiry.get(credit_id)
        if lapses is not None and lapses <= horizon:
            soon[lapses] = soon.get(lapses, 0) + left
    minutes = badges.service_minutes(volunteer.id)
    return {
        "volunteer_id": volunteer.id,
        "balance": ledger.balance_of(volunteer.id),
        "service_minutes": minutes,
        "service_hours": round(minutes / 60, 2),
        "expiring_within_days": expiring_within_days,
        "expiring_soon_total": sum(soon.values()),
        "expiring_soon": [{"expires_at": when, "points": points} for when, points in sorted(soon.items())],
    }


def history(volunteer: Volunteer, args: dict[str, Any]) -> dict[str, Any]:
    """The volunteer's ledger, newest first."""
    stmt = sa.select(LedgerEntry).where(LedgerEntry.volunteer_id == volunteer.id)
    if args.get("reason"):
        stmt = stmt.where(LedgerEntry.reason.in_(args["reason"]))
    return paginate(stmt, [LedgerEntry.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)


def entry_not_found() -> NotFound:
    """The answer for an entry id that does not exist, and for one the caller may not reach."""
    return NotFound("Ledger entry not found.", code="ledger_entry_not_found")


def entry_for(caller: Caller, entry_id: int) -> LedgerEntry:
    """An entry of the caller's own, or, for managers, of a volunteer they may see; any other is
    not found, as if it did not exist."""
    entry = db.session.get(LedgerEntry, entry_id)
    if entry is None:
        raise entry_not_found()
    if caller.is_manager:
        if not may_see(caller, get_volunteer(entry.volunteer_id)):
            raise entry_not_found()
    elif own(caller).id != entry.volunteer_id:
        raise entry_not_found()
    return entry


# --- hand-entered hours --------------------------------------------------------------------------


def record_hours(caller: Caller, data: ServiceHoursCreateInput) -> dict[str, Any]:
    """Service entered by an organiser in scope: counts as service, pays only if the rule says so."""
    # A volunteer outside the caller's area is the same 422 as an id that does not exist, and is
    # refused before their status could tell anything.
    volunteer = referenced_volunteer(caller, data["volunteer_id"])
    if volunteer.status in (VolunteerStatus.PENDING, VolunteerStatus.REJECTED):
        raise Conflict("Hours are entered only for vetted volunteers.", code="volunteer_not_vetted")
    grid = volunteer.home_grid
    served_on: date = data["served_on"]
    today = utcnow().astimezone(zone(grid.timezone)).date()
    if served_on > today:
        raise ValidationFailed(errors={"served_on": [FUTURE_DAY]})
    if served_on < today - timedelta(days=MANUAL_HOURS_LOOKBACK_DAYS):
        raise ValidationFailed(errors={"served_on": [TOO_OLD]})
    # The lock makes two organisers entering the same day one after the other: the 24-hour check
    # and the daily cap see each other's hours.
    ledger.lock_balance(volunteer.id)
    if awarding.minutes_on(volunteer.id, served_on) + data["minutes"] > awarding.MAX_DAY_MINUTES:
        raise ValidationFailed(errors={"minutes": [DAY_FULL]})
    record, entry = awarding.award_manual_hours(
        volunteer.id, grid, served_on, data["minutes"], note=data["note"], actor_id=caller.user_id
    )
    return {
        "id": record.id,
        "volunteer_id": record.volunteer_id,
        "source_type": record.source_type,
        "minutes": record.minutes,
        "served_on": record.served_on,
        "grid_id": record.grid_id,
        "note": record.note,
        "created_by": record.created_by,
        "created_at": record.created_at,
        "points_awarded": entry.amount if entry is not None else 0,
        "ledger_entry_id": entry.id if entry is not None else None,
    }


# --- the invariant -------------------------------------------------------------------------------


def invariant(caller: Caller) -> dict[str, Any]:
    """Balance == sum of entries for every volunteer in the admin's subtree (mismatches listed)."""
    mismatches = ledger.check_invariant(area_path=caller.area_path)
    return {"ok": not mismatches, "checked_at": utcnow(), "mismatches": mismatches}
