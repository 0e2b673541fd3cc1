"""The points ledger: the only way points change (DESIGN.md, data rules).

Every change is one appended :class:`LedgerEntry` plus the same amount on the volunteer's
:class:`PointBalance`, in one transaction step, so ``balance == sum(entries)`` always holds:

- the entry is inserted with ``ON CONFLICT (source_type, source_id, reason) DO NOTHING``: the same
  served shift, report or redemption never pays twice, and a replay (or a concurrent duplicate,
  which on PostgreSQL waits on the unique index and then finds the row) is a no-op returning None;
- the balance moves by a single statement: a credit is an upsert (the row appears with the first
  earning), a debit a conditional ``UPDATE … WHERE balance + amount >= 0``. A debit that would go
  negative raises ``insufficient_points`` (409) and the savepoint around both statements takes the
  entry back, so nothing is written — the caller's transaction stays usable.

Entries are never updated or deleted; corrections are new entries (``reverses_id`` points at the
entry compensated). Callers flush; the request, task or CLI command commits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core import i18n
from core.db import insert_on_conflict, utcnow
from core.errors import Conflict
from core.extensions import db
from grids.models import Area
from rewards.leaderboards import totals as leaderboards_totals
from rewards.ledger.models import LedgerEntry, LedgerReason, PointBalance
from volunteers.models import Volunteer

i18n.register_titles(i18n.title("insufficient_points", "Not enough points"))
i18n.register_messages(i18n.N_("Not enough points for this."))

_ENTRY_COLUMNS = [
    "volunteer_id", "amount", "reason", "source_type", "source_id", "rule_version",
    "reverses_id", "note", "expires_at", "actor_id", "created_at",
]
_INSERT_ENTRY = sa.select(LedgerEntry).from_statement(
    insert_on_conflict(
        LedgerEntry.__table__,
        _ENTRY_COLUMNS,
        ["source_type", "source_id", "reason"],
        returning=[column.name for column in LedgerEntry.__table__.columns],
    )
).execution_options(populate_existing=True)
# A credit creates the balance row or adds to it; it can never break ``balance >= 0``.
_CREDIT = insert_on_conflict(
    PointBalance.__table__,
    ["volunteer_id", "balance", "updated_at"],
    ["volunteer_id"],
    update={
        "balance": "point_balances.balance + excluded.balance",
        "updated_at": "excluded.updated_at",
    },
    returning=["balance"],
)
# A debit only where enough is there: the row count says whether it was. On PostgreSQL a
# concurrent debit waits for the row lock and re-evaluates the condition on the committed balance.
_DEBIT = sa.text(
    "UPDATE point_balances SET balance = balance + :amount, updated_at = :now "
    "WHERE volunteer_id = :volunteer_id AND balance + :amount >= 0 RETURNING balance"
).bindparams(sa.bindparam("now", type_=PointBalance.__table__.c.updated_at.type))


def append(
    volunteer_id: int,
    amount: int,
    reason: str,
    source_type: str,
    source_id: str | int,
    *,
    rule_version: int | None = None,
    reverses_id: int | None = None,
    note: str | None = None,
    expires_at: datetime | None = None,
    actor_id: int | None = None,
) -> LedgerEntry | None:
    """Append one entry and move the balance with it; None when this source already has it.

    Raises ``Conflict`` ``insufficient_points`` (nothing written) when a debit exceeds the balance.
    """
    if amount == 0:
        raise ValueError("a ledger entry moves points; amount 0 is not an entry")
    now = utcnow()
    params: dict[str, Any] = {
        "volunteer_id": volunteer_id,
        "amount": int(amount),
        "reason": str(reason),
        "source_type": source_type,
        "source_id": str(source_id),
        "rule_version": rule_version,
        "reverses_id": reverses_id,
        "note": note,
        "expires_at": expires_at,
        "actor_id": actor_id,
        "created_at": now,
    }
    with db.session.begin_nested():
        entry = db.session.scalar(_INSERT_ENTRY, params)
        if entry is None:
            return None
        if amount > 0:
            db.session.execute(_CREDIT, {"volunteer_id": volunteer_id, "balance": amount, "updated_at": now})
        elif db.session.execute(
            _DEBIT, {"volunteer_id": volunteer_id, "amount": amount, "now": now}
        ).first() is None:
            # Leaving the ``with`` by an exception rolls the savepoint back: the row goes too. The
            # object goes from the session, or a later row reusing its id (SQLite) would look like it.
            db.session.expunge(entry)
            raise Conflict("Not enough points for this.", code="insufficient_points")
        # Leaderboards rank precomputed totals, moved with the entry they count (Helper E's module).
        leaderboards_totals.count_entry(entry)
    return entry


# Takes the balance row's lock (creating the row at 0 if missing) without changing it: the awarding
# and expiry steps that read a volunteer's earlier entries to decide an amount (daily cap, streaks,
# unspent remainders) run one at a time per volunteer. On SQLite the writer lock already does this.
_LOCK = insert_on_conflict(
    PointBalance.__table__,
    ["volunteer_id", "balance", "updated_at"],
    ["volunteer_id"],
    update={"balance": "point_balances.balance"},
    returning=["balance"],
)


def lock_balance(volunteer_id: int) -> int:
    """Lock the volunteer's balance row until the transaction ends; returns the balance."""
    return int(db.session.scalar(_LOCK, {"volunteer_id": volunteer_id, "balance": 0, "updated_at": utcnow()}))


def balance_of(volunteer_id: int) -> int:
    """The volunteer's current balance (0 before their first entry)."""
    value = db.session.scalar(
        sa.select(PointBalance.balance)
        .where(PointBalance.volunteer_id == volunteer_id)
        .execution_options(populate_existing=True)
    )
    return int(value or 0)


def ledger_sum(volunteer_id: int) -> int:
    """The sum of the volunteer's entries (what the balance must equal)."""
    value = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.volunteer_id == volunteer_id
        )
    )
    return int(value or 0)


def check_invariant(
    volunteer_ids: Iterable[int] | None = None, *, area_path: str | None = None
) -> list[dict[str, int]]:
    """Volunteers whose balance differs from the sum of their entries (or is negative).

    Each mismatch is ``{"volunteer_id", "balance", "ledger_sum"}``; an empty list means the ledger
    and the balances agree. A volunteer with entries but no balance row counts as balance 0.
    ``area_path`` limits the check to volunteers whose home grid lies in that subtree.
    """
    ids: Any = None if volunteer_ids is None else sorted({int(v) for v in volunteer_ids})
    if ids is not None and not ids:
        return []
    if area_path is not None:
        in_area = (
            sa.select(Volunteer.id)
            .join(Area, Area.id == Volunteer.home_grid_id)
            .where(Area.path.startswith(area_path, autoescape=True))
        )
        ids = in_area if ids is None else in_area.where(Volunteer.id.in_(ids))
    sums = sa.select(
        LedgerEntry.volunteer_id.label("volunteer_id"), sa.func.sum(LedgerEntry.amount).label("total")
    ).group_by(LedgerEntry.volunteer_id)
    balances = sa.select(PointBalance.volunteer_id, PointBalance.balance)
    if ids is not None:
        sums = sums.where(LedgerEntry.volunteer_id.in_(ids))
        balances = balances.where(PointBalance.volunteer_id.in_(ids))
    sums_sq = sums.subquery()
    balances_sq = balances.subquery()
    # No FULL OUTER JOIN on older SQLite: both one-sided joins, united.
    with_balance = sa.select(
        balances_sq.c.volunteer_id,
        balances_sq.c.balance,
        sa.func.coalesce(sums_sq.c.total, 0).label("total"),
    ).select_from(balances_sq.outerjoin(sums_sq, sums_sq.c.volunteer_id == balances_sq.c.volunteer_id)).where(
        sa.or_(balances_sq.c.balance != sa.func.coalesce(sums_sq.c.total, 0), balances_sq.c.balance < 0)
    )
    without_balance = sa.select(
        sums_sq.c.volunteer_id, sa.literal(0).label("balance"), sums_sq.c.total
    ).select_from(sums_sq.outerjoin(balances_sq, balances_sq.c.volunteer_id == sums_sq.c.volunteer_id)).where(
        balances_sq.c.volunteer_id.is_(None), sums_sq.c.total != 0
    )
    rows = db.session.execute(sa.union_all(with_balance, without_balance)).all()
    return sorted(
        ({"volunteer_id": int(v), "balance": int(b), "ledger_sum": int(t)} for v, b, t in rows),
        key=lambda row: row["volunteer_id"],
    )


# --- which points are still unspent (FIFO) ------------------------------------------------------


@dataclass(frozen=True)
class Movement:
    """What the FIFO model needs of an entry (an entry, or a row of its columns)."""

    id: int
    amount: int
    reason: str
    source_type: str
    source_id: str
    reverses_id: int | None
    expires_at: datetime | None


def movements(volunteer_id: int) -> list[Movement]:
    """The volunteer's entries in the order they were appended."""
    rows = db.session.execute(
        sa.select(
            LedgerEntry.id, LedgerEntry.amount, LedgerEntry.reason, LedgerEntry.source_type,
            LedgerEntry.source_id, LedgerEntry.reverses_id, LedgerEntry.expires_at,
        )
        .where(LedgerEntry.volunteer_id == volunteer_id)
        .order_by(LedgerEntry.id)
    ).all()
    return [Movement(*row) for row in rows]


def _target(movement: Movement) -> int | None:
    """The credit a debit is aimed at: a reversal's entry, an expiry's entry; else None (FIFO)."""
    if movement.reverses_id is not None:
        return movement.reverses_id
    if movement.reason == LedgerReason.EXPIRY and movement.source_type == "entry":
        return int(movement.source_id)
    return None


def unspent(entries: Sequence[Movement]) -> dict[int, int]:
    """What is left of each credit after every debit, by credit id (only those with points left).

    The consumption model, replayed in append order: every positive entry (earning, refund) is a
    credit. A debit aimed at one credit — a reversal (``reverses_id``) or an expiry (source
    ``entry``/id) — takes from that credit first; every other debit (redemption, adjustment) and
    any excess take from the oldest credits first (FIFO, by id). Since a debit never exceeds the
    balance, the remainders always add up to the balance.
    """
    open_credits: OrderedDict[int, int] = OrderedDict()
    for movement in entries:
        if movement.amount > 0:
            open_credits[movement.id] = movement.amount
            continue
        owed = -movement.amount
        target = _target(movement)
        if target is not None and target in open_credits:
            taken = min(owed, open_credits[target])
            open_credits[target] -= taken
            owed -= taken
            if not open_credits[target]:
                del open_credits[target]
        while owed and open_credits:
            oldest, left = next(iter(open_credits.items()))
            taken = min(owed, left)
            owed -= taken
            if taken == left:
                del open_credits[oldest]
            else:
                open_credits[oldest] = left - taken
    return dict(open_credits)
