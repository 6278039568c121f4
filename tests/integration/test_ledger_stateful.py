"""A stateful property test of the love bank (issue 4, point 16).

Hypothesis drives random sequences of awards, adjustments, baskets, cancellations, hand-overs,
gifts, reversals and clock jumps with the expiry jobs against a plain in-memory model. After
every step each wallet, lot, item stock, order status and the community's supermarket and expiry
accounts must agree with the model, and `verify_books` must find nothing.

Each example builds its own world on its own connection, inside an outer transaction that is
rolled back when the example ends (the `world` fixture's arrangement, once per example).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scoring.ledger import add_months
from tests.conftest import NOW
from tests.factories import build_world
from tests.integration.lovebank_helpers import goods, key, resident
from web.errors import (
    AlreadyPostedError,
    ConflictError,
    InsufficientPointsError,
    LimitReachedError,
    LinliError,
    OutOfStockError,
)
from web.models import LedgerAccount, MarketItem, MarketOrder, PointLot
from web.services import lovebank, market
from web.services.base import LOCAL_TZ, local_date
from web.services.journal import AccountKind, find_wallet, verify_books

pytestmark = pytest.mark.db

RESIDENTS = ("res_a1", "res_a1_b", "res_a1_c")
ACTIVITIES = {"building_head": 20, "deliberation_meeting": 5}
RULES = {"per_hour": {"*": 5}, "activities": ACTIVITIES, "daily_cap": 50, "monthly_cap": 120,
         "rounding": "half_up"}
EXPIRY_MONTHS = 1
COLLECT_DAYS = 7
ITEMS = (  # name, points price, stock (None: a service), monthly limit
    ("大米", 3, 2, None),
    ("食用油", 8, 3, 1),
    ("理发", 2, None, None),
)


@dataclass
class ModelLot:
    id: int
    user: str
    origin: str
    earned_on: date
    expires_on: date | None
    amount: int
    remaining: int


@dataclass
class ModelOrder:
    id: int
    code: str
    user: str
    lines: dict[int, int]
    legs: list[tuple[int, int]]  # (lot id, points taken: negative)
    total: int
    created_at: datetime
    status: str = "reserved"


@dataclass
class ModelTransfer:
    id: int
    legs: list[tuple[int, int]]  # (lot id, signed points) for the wallet legs
    reversed: bool = False


@dataclass
class Model:
    lots: dict[int, ModelLot] = field(default_factory=dict)
    stock: dict[int, int | None] = field(default_factory=dict)
    limits: dict[int, int | None] = field(default_factory=dict)
    prices: dict[int, int] = field(default_factory=dict)
    orders: dict[int, ModelOrder] = field(default_factory=dict)
    reversible: list[ModelTransfer] = field(default_factory=list)
    wallets: set[str] = field(default_factory=set)
    expired: int = 0

    def usable(self, user: str, today: date) -> list[ModelLot]:
        """The user's lots that can be spent today, oldest first."""
        mine = [x for x in self.lots.values() if x.user == user and x.remaining > 0
                and (x.expires_on is None or x.expires_on > today)]
        return sorted(mine, key=lambda x: (x.earned_on, x.id))

    def take(self, user: str, points: int, today: date) -> list[tuple[int, int]] | None:
        """(lot id, points) to spend, oldest first; None if the usable lots hold too little."""
        taken, left = [], points
        for lot in self.usable(user, today):
            if left == 0:
                break
            part = min(lot.remaining, left)
            taken.append((lot.id, part))
            left -= part
        return None if left else taken

    def earned(self, user: str, first: date, last: date) -> int:
        return sum(x.amount for x in self.lots.values() if x.user == user
                   and x.origin == "earned" and first <= x.earned_on <= last)

    def room(self, user: str, points: int, day: date) -> int:
        today_left = RULES["daily_cap"] - self.earned(user, day, day)
        month_left = RULES["monthly_cap"] - self.earned(user, day.replace(day=1), day)
        return max(min(points, today_left, month_left), 0)

    def move(self, legs: list[tuple[int, int]], sign: int = 1) -> None:
        for lot_id, points in legs:
            self.lots[lot_id].remaining += sign * points

    def bought_this_month(self, user: str, item_id: int, now: datetime) -> int:
        month = _local_month(now)
        return sum(o.lines.get(item_id, 0) for o in self.orders.values()
                   if o.user == user and o.status in ("reserved", "collected")
                   and _local_month(o.created_at) == month)

    def balance(self, user: str) -> int:
        return sum(x.remaining for x in self.lots.values() if x.user == user)


def _local_month(moment: datetime) -> tuple[int, int]:
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(LOCAL_TZ))
    return local.year, local.month


def _expiry(day: date) -> date:
    return add_months(day, EXPIRY_MONTHS)


class LedgerMachine(RuleBasedStateMachine):
    """The love bank of community a1, three residents and three supermarket items."""

    engine = None  # bound by the test

    def __init__(self):
        super().__init__()
        self.connection = self.engine.connect()
        self.outer = self.connection.begin()
        self.session = Session(bind=self.connection, join_transaction_mode="create_savepoint",
                               expire_on_commit=False)
        self.world = world = build_world(self.session)
        for name in RESIDENTS[1:]:
            resident(world, name)
        lovebank.publish_rules(self.session, actor=world.actor("sec_a1"),
                               community_id=world["a1"], document=RULES,
                               effective_from=local_date(NOW), now=NOW)
        lovebank.update_settings(self.session, actor=world.actor("sec_a1"),
                                 community_id=world["a1"], now=NOW,
                                 changes={"allow_gifts": True,
                                          "points_expiry_months": EXPIRY_MONTHS,
                                          "collect_within_days": COLLECT_DAYS})
        self.now = NOW
        self.model = Model()
        for name, price, stock, limit in ITEMS:
            extra = {"kind": "service"} if stock is None else {}
            item = goods(world, name, price=price, stock=stock or 0, monthly_limit=limit, **extra)
            self.model.stock[item.id], self.model.limits[item.id] = stock, limit
            self.model.prices[item.id] = price
        self.item_ids = sorted(self.model.stock)
        self.last_lot_id = self.session.scalar(select(func.max(PointLot.id))) or 0
        for name in RESIDENTS:  # something to spend from the first step
            self.adjust(name, 30)

    def teardown(self):
        self.session.close()
        self.outer.rollback()
        self.connection.close()

    # ---- plumbing -----------------------------------------------------------------------------

    @property
    def today(self) -> date:
        return local_date(self.now)

    def actor(self, name: str):
        return self.world.actor(name)

    def uid(self, name: str) -> int:
        return self.world.users[name]

    def attempt(self, error: type[LinliError] | None, call):
        """Run `call`; it must raise exactly `error`, or succeed when `error` is None."""
        try:
            result = call()
        except LinliError as exc:
            assert error is not None, f"expected success, got {exc!r}"
            assert type(exc) is error, f"expected {error.__name__}, got {exc!r}"
            return None
        assert error is None, f"expected {error.__name__}, but it succeeded"
        return result

    def new_lots(self, expected: list[tuple[str, str, date, date | None, int]]) -> list[int]:
        """Match the lots the last call made against (user, origin, earned, expires, amount)."""
        self.session.expire_all()
        rows = self.session.execute(
            select(PointLot, LedgerAccount.user_id)
            .join(LedgerAccount, PointLot.account_id == LedgerAccount.id)
            .where(PointLot.id > self.last_lot_id).order_by(PointLot.id)).all()
        names = {self.uid(n): n for n in RESIDENTS}
        left, ids = list(expected), []
        for lot, user_id in rows:
            shape = (names[user_id], lot.origin, lot.earned_on, lot.expires_on, lot.amount)
            assert shape in left, f"unexpected lot {shape}; expected {left}"
            left.remove(shape)
            self.model.lots[lot.id] = ModelLot(lot.id, *shape, remaining=lot.amount)
            ids.append(lot.id)
            self.last_lot_id = max(self.last_lot_id, lot.id)
        assert left == [], f"lots not made: {left}"
        return ids

    def wallet_legs(self, transfer) -> list[tuple[int, int]]:
        return [(e.lot_id, e.amount) for e in transfer.entries if e.lot_id is not None]

    # ---- credits ------------------------------------------------------------------------------

    @rule(people=st.sets(st.sampled_from(RESIDENTS), min_size=1),
          activity=st.sampled_from(sorted(ACTIVITIES)))
    def award(self, people, activity):
        day = self.today
        given = {name: self.model.room(name, ACTIVITIES[activity], day) for name in people}
        error = None if any(given.values()) else ConflictError
        transfer = self.attempt(error, lambda: lovebank.award_points(
            self.session, actor=self.actor("sec_a1"), community_id=self.world["a1"],
            activity=activity, user_ids=[self.uid(n) for n in people], reason="社区活动",
            idempotency_key=key("award"), now=self.now))
        if transfer is None:
            return
        self.model.wallets |= set(people)
        self.new_lots([(n, "earned", day, _expiry(day), p) for n, p in given.items() if p])
        self.model.reversible.append(ModelTransfer(transfer.id, self.wallet_legs(transfer)))

    @rule(name=st.sampled_from(RESIDENTS),
          points=st.integers(-30, 80).filter(lambda p: p != 0))
    def adjust(self, name, points):
        taken = None if points > 0 else self.model.take(name, -points, self.today)
        error = InsufficientPointsError if points < 0 and taken is None else None
        transfer = self.attempt(error, lambda: lovebank.adjust_points(
            self.session, actor=self.actor("sec_a1"), community_id=self.world["a1"],
            user_id=self.uid(name), points=points, reason="更正", idempotency_key=key("adj"),
            now=self.now))
        if transfer is None:
            return
        self.model.wallets.add(name)
        if points > 0:
            self.new_lots([(name, "adjustment", self.today, _expiry(self.today), points)])
        else:
            self.model.move([(lot_id, -part) for lot_id, part in taken])
            assert sorted(self.wallet_legs(transfer)) == sorted(
                (lot_id, -part) for lot_id, part in taken)
        self.model.reversible.append(ModelTransfer(transfer.id, self.wallet_legs(transfer)))

    # ---- the supermarket ----------------------------------------------------------------------

    @rule(name=st.sampled_from(RESIDENTS),
          lines=st.lists(st.tuples(st.integers(0, len(ITEMS) - 1), st.integers(1, 2)),
                         min_size=1, max_size=2))
    def place_order(self, name, lines):
        basket: dict[int, int] = {}
        for index, quantity in lines:
            item_id = self.item_ids[index]
            basket[item_id] = basket.get(item_id, 0) + quantity
        error, taken, total = self.order_error(name, basket)
        placed = self.attempt(error, lambda: market.place_order(
            self.session, actor=self.actor(name), community_id=self.world["a1"],
            lines=[{"item_id": self.item_ids[i], "quantity": q} for i, q in lines],
            idempotency_key=key("order"), now=self.now))
        if placed is None:
            return
        assert placed.total_points == total
        legs = [(lot_id, -part) for lot_id, part in taken]
        self.model.move(legs)
        for item_id, quantity in basket.items():
            if self.model.stock[item_id] is not None:
                self.model.stock[item_id] -= quantity
        self.model.orders[placed.id] = ModelOrder(placed.id, placed.code, name, basket, legs,
                                                  total, self.now)
        transfer = lovebank.get_transfer(self.session, placed.transfer_id)
        assert sorted(self.wallet_legs(transfer)) == sorted(legs)

    def order_error(self, name, basket):
        """The error the basket must meet (checked in the service's order), the lots it takes."""
        if name not in self.model.wallets:
            return InsufficientPointsError, None, 0
        for item_id in sorted(basket):
            stock, limit = self.model.stock[item_id], self.model.limits[item_id]
            if stock is not None and stock < basket[item_id]:
                return OutOfStockError, None, 0
            if limit is not None and (self.model.bought_this_month(name, item_id, self.now)
                                      + basket[item_id] > limit):
                return LimitReachedError, None, 0
        total = sum(self.model.prices[i] * q for i, q in basket.items())
        taken = self.model.take(name, total, self.today)
        return (InsufficientPointsError if taken is None else None), taken, total

    def reserved(self) -> list[ModelOrder]:
        return [o for o in self.model.orders.values() if o.status == "reserved"]

    def refund(self, order: ModelOrder, status: str) -> None:
        order.status = status
        self.model.move(order.legs, sign=-1)
        for item_id, quantity in order.lines.items():
            if self.model.stock[item_id] is not None:
                self.model.stock[item_id] += quantity

    @precondition(lambda self: self.reserved())
    @rule(pick=st.integers(0, 1000),
          action=st.sampled_from(["hand over", "cancel", "cancel at the counter"]))
    def settle_order(self, pick, action):
        """The clerk hands a reserved order over, or the resident or the clerk cancels it."""
        chosen = self.reserved()[pick % len(self.reserved())]
        if action == "hand over":
            late = chosen.created_at + timedelta(days=COLLECT_DAYS) <= self.now
            self.attempt(ConflictError if late else None, lambda: market.hand_over(
                self.session, actor=self.actor("clerk_a1"), code=chosen.code, now=self.now))
            if not late:
                chosen.status = "collected"
            return
        by = "clerk_a1" if action == "cancel at the counter" else chosen.user
        self.attempt(None, lambda: market.cancel_order(
            self.session, actor=self.actor(by), order_id=chosen.id, reason="不要了",
            idempotency_key=key("cancel"), now=self.now))
        self.refund(chosen, "cancelled")

    # ---- gifts and reversals ------------------------------------------------------------------

    @rule(giver=st.sampled_from(RESIDENTS), taker=st.sampled_from(RESIDENTS),
          points=st.integers(1, 25))
    def give(self, giver, taker, points):
        if giver == taker:
            return
        taken = self.model.take(giver, points, self.today) if giver in self.model.wallets \
            else None
        transfer = self.attempt(None if taken else InsufficientPointsError,
                                lambda: lovebank.give_points(
                                    self.session, actor=self.actor(giver),
                                    community_id=self.world["a1"],
                                    to_user_id=self.uid(taker), points=points,
                                    reason="爱心传递", idempotency_key=key("gift"), now=self.now))
        if transfer is None:
            return
        self.model.wallets.add(taker)
        sources = [self.model.lots[lot_id] for lot_id, _ in taken]
        self.model.move([(lot_id, -part) for lot_id, part in taken])
        self.new_lots([(taker, "gift", s.earned_on, s.expires_on, part)
                       for s, (_, part) in zip(sources, taken, strict=True)])
        self.model.reversible.append(ModelTransfer(transfer.id, self.wallet_legs(transfer)))

    @precondition(lambda self: self.model.reversible)
    @rule(pick=st.integers(0, 1000))
    def reverse(self, pick):
        chosen = self.model.reversible[pick % len(self.model.reversible)]
        spent = any(points > 0 and self.model.lots[lot_id].remaining < points
                    for lot_id, points in chosen.legs)
        # a transfer reversed already says so, before any check of its lots
        error = (AlreadyPostedError if chosen.reversed else
                 InsufficientPointsError if spent else None)
        done = self.attempt(error, lambda: lovebank.reverse_transfer(
            self.session, actor=self.actor("sec_a1"), transfer_id=chosen.id, reason="撤销",
            idempotency_key=key("rev"), now=self.now))
        if done is None:
            return
        assert done.reverses_id == chosen.id
        self.model.move(chosen.legs, sign=-1)
        chosen.reversed = True

    # ---- the clock and the jobs ---------------------------------------------------------------

    @rule(days=st.integers(0, 35), hours=st.sampled_from([0, 0, 13]), run_jobs=st.booleans())
    def advance_the_clock(self, days, hours, run_jobs):
        """Time passes; the scheduler's jobs may or may not have run yet (run twice: days=0)."""
        self.now += timedelta(days=days, hours=hours)
        if run_jobs:
            self.run_the_expiry_jobs()

    def run_the_expiry_jobs(self):
        due = sorted((x.id, x.remaining) for x in self.model.lots.values()
                     if x.expires_on is not None and x.expires_on <= self.today
                     and x.remaining > 0)
        done = lovebank.expire_points(self.session, now=self.now)
        assert sorted((x["lot_id"], x["points"]) for x in done) == due
        for lot_id, points in due:
            self.model.lots[lot_id].remaining = 0
            self.model.expired += points
        late = sorted(o.id for o in self.reserved()
                      if o.created_at + timedelta(days=COLLECT_DAYS) <= self.now)
        assert market.expire_orders(self.session, now=self.now) == late
        for order_id in late:
            self.refund(self.model.orders[order_id], "expired")

    # ---- what must hold after every step ------------------------------------------------------

    @invariant()
    def wallets_and_lots_agree(self):
        self.session.expire_all()
        for name in RESIDENTS:
            wallet = find_wallet(self.session, self.world["a1"], self.uid(name))
            assert (wallet is not None) == (name in self.model.wallets)
            assert (wallet.balance if wallet else 0) == self.model.balance(name), name
            assert (wallet.balance if wallet else 0) >= 0
        rows = dict(self.session.execute(select(PointLot.id, PointLot.remaining)).all())
        assert rows == {x.id: x.remaining for x in self.model.lots.values()}

    @invariant()
    def stock_and_orders_agree(self):
        self.session.expire_all()
        for item_id, stock in self.model.stock.items():
            assert self.session.get(MarketItem, item_id).stock == stock
        for order in self.model.orders.values():
            assert self.session.get(MarketOrder, order.id).status == order.status
        held = sum(o.total for o in self.model.orders.values()
                   if o.status in ("reserved", "collected"))
        assert self.account(AccountKind.SUPERMARKET) == held
        assert self.account(AccountKind.EXPIRY) == self.model.expired

    def account(self, kind: AccountKind) -> int:
        return self.session.scalar(select(LedgerAccount.balance).where(
            LedgerAccount.kind == str(kind), LedgerAccount.community_id == self.world["a1"])) or 0

    @invariant()
    def the_books_verify(self):
        self.session.expire_all()
        problems, _ = verify_books(self.session)
        assert problems == []
        assert market.stock_matches_movements(self.session) == []
        self.session.commit()


def test_the_ledger_agrees_with_a_model_after_every_step(engine):
    machine = type("BoundLedgerMachine", (LedgerMachine,), {"engine": engine})
    run_state_machine_as_test(machine, settings=settings(
        derandomize=True, database=None, max_examples=30, stateful_step_count=25,
        deadline=None, suppress_health_check=[HealthCheck.too_slow]))
