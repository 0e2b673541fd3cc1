"""Property tests (hypothesis): whatever the interleaving, balance == sum of entries >= 0.

Two levels: the FIFO model alone (``ledger.unspent``) on arbitrary valid ledgers, and the real
services on the test database — awards, reversals of what an award has left, redemptions with
their approvals, cancellations and rejections (Helper E's ``rewards.redemptions.service``), and expiry —
in any order, each step in its own savepoint so a refused one (409) writes nothing, as a request's
rollback would.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.auth import Caller, Role
from core.db import utcnow
from core.errors import ApiError
from core.extensions import db
from rewards.awarding import service as awarding
from rewards.catalogue.models import CatalogueItem
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerEntry
from rewards.ledger.service import Movement
from rewards.ledger.tasks import expire_volunteer
from rewards.redemptions import service as redemptions
from tests import factories
from tests.rewards.support import ledger_invariant  # noqa: F401

# --- the model alone -----------------------------------------------------------------------------

_step = st.tuples(st.sampled_from(["earn", "spend", "reverse", "expire"]), st.integers(1, 50), st.integers(0, 30))


@given(st.lists(_step, max_size=40))
def test_unspent_remainders_always_add_up_to_the_balance(steps: list[tuple[str, int, int]]) -> None:
    entries: list[Movement] = []
    balance = 0
    for kind, amount, pick in steps:
        credits = [m for m in entries if m.amount > 0]
        next_id = len(entries) + 1
        if kind == "earn":
            entries.append(Movement(next_id, amount, "served_shift", "patrol", str(next_id), None, None))
            balance += amount
            continue
        amount = min(amount, balance)
        if amount == 0:
            continue
        target = credits[pick % len(credits)] if credits else None
        if kind == "reverse" and target is not None:
            entries.append(Movement(next_id, -amount, "reversal", "entry", str(target.id), target.id, None))
        elif kind == "expire" and target is not None:
            entries.append(Movement(next_id, -amount, "expiry", "entry", str(target.id), None, None))
        else:
            entries.append(Movement(next_id, -amount, "redemption", "redemption", str(next_id), None, None))
        balance -= amount

    left = ledger.unspent(entries)

    assert sum(left.values()) == balance
    credit = {m.id: m.amount for m in entries if m.amount > 0}
    assert all(0 < value <= credit[key] for key, value in left.items())


def test_fifo_spends_the_oldest_points_first() -> None:
    def credit(i: int, amount: int) -> Movement:
        return Movement(i, amount, "served_shift", "patrol", str(i), None, None)

    entries = [credit(1, 10), credit(2, 10), Movement(3, -15, "redemption", "redemption", "r", None, None),
               credit(4, 5), Movement(5, -3, "reversal", "entry", "4", 4, None)]
    assert ledger.unspent(entries) == {2: 5, 4: 2}


# --- the real services ---------------------------------------------------------------------------

_KINDS = ["award", "award", "award", "reverse", "redeem", "redeem", "approve", "cancel", "reject", "expire"]
_operation = st.tuples(
    st.sampled_from(_KINDS),
    st.integers(1, 60),
    st.integers(0, 1000),
)


class World:
    def __init__(self, tree: Any) -> None:
        self.volunteer = factories.make_volunteer(tree.grid_a)
        staff_user = factories.make_user("staff", tree.city)
        self.me = Caller(self.volunteer.user_id, Role.VOLUNTEER, tree.grid_a.path, "s1")
        self.staff = Caller(staff_user.id, Role.STAFF, tree.city.path, "s2")
        self.items = []
        for cost in (7, 25):
            item = CatalogueItem(area_id=tree.city.id, name=f"item {cost}", points_cost=cost, stock=1000)
            db.session.add(item)
            self.items.append(item)
        db.session.flush()
        self.credits: list[LedgerEntry] = []
        self.redemptions: list[int] = []
        self.clock = utcnow()
        # Enough to redeem from the first step, so redemptions and their handling are reached in
        # most examples rather than only in those that happen to award first.
        self.run("award", 60, 0)

    def run(self, kind: str, amount: int, pick: int) -> bool:
        """Carry out one step; False when there was nothing to do it to (no credit, no redemption)."""
        vid = self.volunteer.id
        if kind == "award":
            # Half the awards lapse within a day or two, half much later.
            lapses = self.clock + timedelta(hours=pick % 48 if pick % 2 else 24 * 400)
            entry = ledger.append(vid, amount, "served_shift", "patrol", uuid.uuid4().hex, expires_at=lapses)
            self.credits.append(entry)
        elif kind == "reverse" and self.credits:
            entry = self.credits[pick % len(self.credits)]
            left = ledger.unspent(ledger.movements(vid)).get(entry.id, 0)
            awarding.reverse(entry, left, actor_id=None, note="rejected")
        elif kind == "redeem":
            item = self.items[pick % len(self.items)]
            redemption, _ = redemptions.redeem(self.me, item.id, str(uuid.uuid4()))
            self.redemptions.append(redemption.id)
        elif kind in ("approve", "cancel", "reject") and self.redemptions:
            redemption_id = self.redemptions[pick % len(self.redemptions)]
            if kind == "approve":
                redemptions.approve(self.staff, redemption_id)
            elif kind == "cancel":
                redemptions.cancel(self.me if pick % 2 else self.staff, redemption_id, None)
            else:
                redemptions.reject(self.staff, redemption_id, "缺货")
        elif kind == "expire":
            self.clock += timedelta(hours=amount)
            expire_volunteer(vid, self.clock, self.clock - timedelta(days=3650))
        else:
            return False
        return True

    def check(self) -> None:
        vid = self.volunteer.id
        assert ledger.check_invariant([vid]) == []
        balance = ledger.balance_of(vid)
        assert balance == ledger.ledger_sum(vid) >= 0
        assert sum(ledger.unspent(ledger.movements(vid)).values()) == balance


#: Over the run, every kind of step must be tried and succeed at least once, and this share of all
#: steps tried must succeed: a service that refused every redemption (or every approval …) would
#: keep the invariant trivially, and pass without this.
LEAST_SUCCESS_SHARE = 0.5


def test_any_interleaving_keeps_balance_equal_to_the_entries(tree) -> None:
    tried: Counter[str] = Counter()
    succeeded: Counter[str] = Counter()

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(operations=st.lists(_operation, min_size=10, max_size=20))
    def any_interleaving(operations: list[tuple[str, int, int]]) -> None:
        world = World(tree)
        for kind, amount, pick in operations:
            try:
                with db.session.begin_nested():  # a refused step writes nothing, as a request's rollback
                    done = world.run(kind, amount, pick)
            except ApiError as refused:
                assert refused.status in (403, 409), refused.code
                tried[kind] += 1
            else:
                if done:
                    tried[kind] += 1
                    succeeded[kind] += 1
            world.check()

    any_interleaving()
    outcomes = {kind: f"{succeeded[kind]}/{tried[kind]}" for kind in set(_KINDS)}
    assert all(succeeded[kind] > 0 for kind in _KINDS), f"succeeded/tried per kind: {outcomes}"
    assert sum(succeeded.values()) >= LEAST_SUCCESS_SHARE * sum(tried.values()), outcomes
