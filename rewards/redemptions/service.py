"""Redemptions: spending points on a catalogue item, and the workflow after. No HTTP here.

``requested`` → ``approved`` (a unique pickup code) → ``fulfilled`` (staff enter the code the
volunteer shows); ``cancelled`` (the volunteer while requested, staff while requested or approved)
or ``rejected`` (staff, with a reason) refund the points by a ``redemption_refund`` ledger entry
and put the item back in stock. Every step is a conditional UPDATE on the status, so two people
acting at once cannot both move it, and sends ``rewards.signals.redemption_status_changed``.

Redeeming is one transaction, and concurrent requests cannot overdraw anything:

- the volunteer's row is locked first (``FOR NO KEY UPDATE``; SQLite's ``BEGIN IMMEDIATE``
  already serialises writers), so one volunteer's redemptions run one after another and the
  per-volunteer limit is counted under the lock — in READ COMMITTED the count, a later statement,
  sees every redemption committed by the lock's previous holder;
- points are debited through ``rewards.ledger.append`` (a conditional UPDATE of the balance:
  ``insufficient_points`` when short);
- stock is taken by ``UPDATE … SET stock = stock - 1 WHERE stock > 0 AND active`` and the row
  count, which PostgreSQL re-evaluates on the committed row after waiting for its lock.

The three writes share a savepoint, so a refusal leaves nothing behind even for a caller that
goes on with its transaction. Locks are taken in one order everywhere (volunteer, then balance,
then item; refunds: redemption, balance, item), so redemptions and refunds never deadlock.
"""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core import crypto, i18n
from core.auth import Caller, Role
from core.db import rowcount, utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from grids.models import Area
from rewards import signals
from rewards.catalogue.models import CatalogueItem
from rewards.catalogue.service import MANAGERS_OF_CATALOGUE, applies_to, is_valid_at, item_not_found, item_with_area
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry, LedgerReason
from rewards.redemptions.models import Redemption, RedemptionStatus
from rewards.redemptions.schemas import PICKUP_CODE_LENGTH
from volunteers.models import Volunteer, VolunteerStatus

SOURCE = "redemption"
_REQUESTED, _APPROVED = RedemptionStatus.REQUESTED, RedemptionStatus.APPROVED
#: Redemptions that count towards the per-volunteer limit.
COUNTED = (RedemptionStatus.REQUESTED, RedemptionStatus.APPROVED, RedemptionStatus.FULFILLED)
#: No 0/O or 1/I/L: read aloud or typed from a phone screen without mistakes.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REDEMPTION_NOT_FOUND = i18n.N_("Redemption not found.")

i18n.register_titles(
    i18n.title("redemption_not_found", "Redemption not found"),
    i18n.title("volunteer_not_active", "Volunteer not active"),
    i18n.title("item_inactive", "Item withdrawn"),
    i18n.title("outside_item_dates", "Outside the item's dates"),
    i18n.title("redemption_limit_reached", "Redemption limit reached"),
    i18n.title("out_of_stock", "Out of stock"),
    i18n.title("invalid_redemption_transition", "Invalid redemption transition"),
    i18n.title("wrong_pickup_code", "Wrong pickup code"),
    i18n.title("client_id_taken", "Client id already used"),
)
i18n.register_messages(
    REDEMPTION_NOT_FOUND,
    i18n.N_("Only active volunteers can redeem points."),
    i18n.N_("This item is no longer offered."),
    i18n.N_("This item cannot be redeemed at this time."),
    i18n.N_("You have redeemed this item as often as allowed."),
    i18n.N_("This item is out of stock."),
    i18n.N_("The redemption cannot make this step from its current status."),
    i18n.N_("The pickup code does not match."),
    i18n.N_("This client id belongs to another record."),
)


# --- redeeming -----------------------------------------------------------------------------------

_LOCK_VOLUNTEER = (
    sa.select(Volunteer.id, Volunteer.status, Area.path)
    .join(Area, Area.id == Volunteer.home_grid_id)
    .where(Volunteer.user_id == sa.bindparam("user_id"))
    # NO KEY UPDATE: foreign keys to the volunteer (check-ins, entries) are not blocked by it.
    .with_for_update(of=Volunteer, key_share=True)
)


def _by_client_id(client_id: str) -> Redemption | None:
    return db.session.scalar(
        sa.select(Redemption).where(Redemption.client_id == client_id).execution_options(populate_existing=True)
    )


def _replay(existing: Redemption, volunteer_id: int) -> Redemption:
    if existing.volunteer_id != volunteer_id:
        raise Conflict("This client id belongs to another record.", code="client_id_taken")
    return existing


def redeem(caller: Caller, item_id: int, client_id: str) -> tuple[Redemption, bool]:
    """Redeem one of the item, or return the redemption already made under ``client_id``.

    Refusals (nothing written): 403 volunteer_not_active; 404 catalogue_item_not_found (also an
    item not offered in the volunteer's area: out of reach, so not found); 409 item_inactive,
    outside_item_dates, redemption_limit_reached, insufficient_points, out_of_stock, client_id_taken.
    """
    row = db.session.execute(_LOCK_VOLUNTEER, {"user_id": caller.user_id}).first()
    if row is None:
        raise NotFound("You have no volunteer profile.", code="volunteer_not_found")
    volunteer_id, status, home_path = row
    existing = _by_client_id(client_id)
    if existing is not None:
        return _replay(existing, volunteer_id), False
    if status != VolunteerStatus.ACTIVE:
        raise Forbidden("Only active volunteers can redeem points.", code="volunteer_not_active")
    item, area = item_with_area(item_id)
    if not applies_to(area, home_path):
        raise item_not_found()
    _check_offered(item)
    if item.per_volunteer_limit is not None:
        taken = db.session.execute(
            sa.select(sa.func.count()).select_from(Redemption).where(
                Redemption.volunteer_id == volunteer_id,
                Redemption.item_id == item.id,
                Redemption.status.in_([status.value for status in COUNTED]),
            )
        ).scalar_one()
        if taken >= item.per_volunteer_limit:
            raise Conflict("You have redeemed this item as often as allowed.", code="redemption_limit_reached")
    if item.stock <= 0:
        raise _out_of_stock()  # early and cheap; the conditional UPDATE below is the guarantee
    redemption = Redemption(
        item_id=item.id, volunteer_id=volunteer_id, points=item.points_cost,
        status=_REQUESTED, client_id=client_id,
    )
    try:
        # All or nothing even for a caller that carries on after a refusal (a task, a test): a
        # refused debit or an empty stock takes the redemption back with it.
        with db.session.begin_nested():
            db.session.add(redemption)
            db.session.flush()  # IntegrityError: the same client id, sent by another volunteer
            ledger.append(
                volunteer_id, -item.points_cost, LedgerReason.REDEMPTION, SOURCE, redemption.id,
                actor_id=caller.user_id, note=item.name[:500],
            )
            _take_one(item)
    except IntegrityError:
        existing = _by_client_id(client_id)
        if existing is None:
            raise
        return _replay(existing, volunteer_id), False
    _signal(redemption, item.name, caller.user_id)
    return redemption, True


def _check_offered(item: CatalogueItem) -> None:
    if not item.active:
        raise Conflict("This item is no longer offered.", code="item_inactive")
    if not is_valid_at(item, utcnow()):
        raise Conflict("This item cannot be redeemed at this time.", code="outside_item_dates")


def _out_of_stock() -> Conflict:
    return Conflict("This item is out of stock.", code="out_of_stock")


def _take_one(item: CatalogueItem) -> None:
    now = utcnow()
    result = db.session.execute(
        sa.update(CatalogueItem)
        .where(
            CatalogueItem.id == item.id,
            CatalogueItem.stock > 0,
            CatalogueItem.active.is_(True),
            sa.or_(CatalogueItem.valid_from.is_(None), CatalogueItem.valid_from <= now),
            sa.or_(CatalogueItem.valid_until.is_(None), CatalogueItem.valid_until > now),
        )
        .values(stock=CatalogueItem.stock - 1)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        # Changed while we waited for the row: say what changed.
        fresh, _area = item_with_area(item.id)
        _check_offered(fresh)
        raise _out_of_stock()


# --- the workflow --------------------------------------------------------------------------------


def redemption_not_found() -> NotFound:
    """The answer for a redemption id that does not exist, and for one the caller may not reach."""
    return NotFound(REDEMPTION_NOT_FOUND, code="redemption_not_found")


def get_redemption(redemption_id: int) -> Redemption:
    redemption = db.session.get(Redemption, redemption_id, populate_existing=True)
    if redemption is None:
        raise redemption_not_found()
    return redemption


def own_volunteer_id(caller: Caller) -> int | None:
    return db.session.scalar(sa.select(Volunteer.id).where(Volunteer.user_id == caller.user_id))


def visible_redemption(caller: Caller, redemption_id: int) -> Redemption:
    """The volunteer's own; staff and admins those of items in their subtree; organisers none.
    Any other is not found, as if it did not exist."""
    redemption = get_redemption(redemption_id)
    if caller.role == Role.VOLUNTEER:
        if redemption.volunteer_id != own_volunteer_id(caller):
            raise redemption_not_found()
        return redemption
    _ensure_manages(caller, redemption)
    return redemption


def _ensure_manages(caller: Caller, redemption: Redemption) -> tuple[CatalogueItem, Area]:
    if caller.role not in MANAGERS_OF_CATALOGUE:
        raise Forbidden("Only district staff and admins manage the catalogue.")
    item, area = item_with_area(redemption.item_id)
    caller.ensure_reach(area.path, redemption_not_found)
    return item, area


def _invalid() -> Conflict:
    return Conflict(
        "The redemption cannot make this step from its current status.", code="invalid_redemption_transition"
    )


def _move(
    caller: Caller,
    redemption: Redemption,
    allowed_from: tuple[RedemptionStatus, ...],
    to_status: RedemptionStatus,
    item_name: str,
    values: dict[str, Any] | None = None,
) -> Redemption:
    """One step by a conditional UPDATE; cancelling and rejecting refund points and stock."""
    if redemption.status not in allowed_from:
        raise _invalid()
    result = db.session.execute(
        sa.update(Redemption)
        .where(Redemption.id == redemption.id, Redemption.status.in_([s.value for s in allowed_from]))
        .values(status=to_status, updated_at=utcnow(), **(values or {}))
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise _invalid()  # someone else moved it on meanwhile
    if to_status in (RedemptionStatus.CANCELLED, RedemptionStatus.REJECTED):
        _refund(caller, redemption)
    db.session.refresh(redemption)
    _signal(redemption, item_name, caller.user_id)
    return redemption


def _refund(caller: Caller, redemption: Redemption) -> None:
    debit_id = db.session.scalar(
        sa.select(LedgerEntry.id).where(
            LedgerEntry.source_type == SOURCE,
            LedgerEntry.source_id == str(redemption.id),
            LedgerEntry.reason == LedgerReason.REDEMPTION,
        )
    )
    ledger.append(
        redemption.volunteer_id, redemption.points, LedgerReason.REDEMPTION_REFUND, SOURCE, redemption.id,
        reverses_id=debit_id, actor_id=caller.user_id,
    )
    db.session.execute(
        sa.update(CatalogueItem)
        .where(CatalogueItem.id == redemption.item_id)
        .values(stock=CatalogueItem.stock + 1)
        .execution_options(synchronize_session=False)
    )


def approve(caller: Caller, redemption_id: int) -> Redemption:
    redemption = get_redemption(redemption_id)
    item, _area = _ensure_manages(caller, redemption)
    now = utcnow()
    for _attempt in range(5):
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(PICKUP_CODE_LENGTH))
        try:
            with db.session.begin_nested():  # 31^8 codes: a clash is rare, and then we draw again
                return _move(
                    caller, redemption, (_REQUESTED,), _APPROVED, item.name,
                    {"pickup_code": code, "decided_by": caller.user_id, "decided_at": now},
                )
        except IntegrityError:
            continue
    raise RuntimeError("no free pickup code after 5 draws")


def reject(caller: Caller, redemption_id: int, reason: str) -> Redemption:
    redemption = get_redemption(redemption_id)
    item, _area = _ensure_manages(caller, redemption)
    return _move(
        caller, redemption, (_REQUESTED, _APPROVED), RedemptionStatus.REJECTED, item.name,
        {"reason": reason, "decided_by": caller.user_id, "decided_at": utcnow()},
    )


def cancel(caller: Caller, redemption_id: int, reason: str | None) -> Redemption:
    """The volunteer cancels their own while requested; staff while requested or approved."""
    redemption = visible_redemption(caller, redemption_id)
    item, _area = item_with_area(redemption.item_id)
    allowed = (_REQUESTED,) if caller.role == Role.VOLUNTEER else (_REQUESTED, _APPROVED)
    values: dict[str, Any] = {"reason": reason}
    if caller.role != Role.VOLUNTEER:
        values.update(decided_by=caller.user_id, decided_at=utcnow())
    return _move(caller, redemption, allowed, RedemptionStatus.CANCELLED, item.name, values)


def fulfil(caller: Caller, redemption_id: int, pickup_code: str) -> Redemption:
    redemption = get_redemption(redemption_id)
    item, _area = _ensure_manages(caller, redemption)
    if redemption.status != _APPROVED:
        raise _invalid()
    if not crypto.same_secret(pickup_code.strip().upper(), redemption.pickup_code or ""):
        raise ValidationFailed(
            "The pickup code does not match.", code="wrong_pickup_code",
            errors={"pickup_code": ["The pickup code does not match."]},
        )
    return _move(caller, redemption, (_APPROVED,), RedemptionStatus.FULFILLED, item.name, {"fulfilled_at": utcnow()})


def _signal(redemption: Redemption, item_name: str, actor_id: int) -> None:
    signals.redemption_status_changed.send(
        signals.SENDER,
        **signals.RedemptionStatusChanged(
            redemption_id=redemption.id,
            volunteer_id=redemption.volunteer_id,
            item_id=redemption.item_id,
            item_name=item_name,
            status=str(redemption.status),
            pickup_code=redemption.pickup_code,
            reason=redemption.reason,
            actor_id=actor_id,
        ),
    )
