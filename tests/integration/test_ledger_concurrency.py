"""Real concurrency on the love bank: many redemptions, credits and gifts on one wallet at once.

Each thread has its own connection and session and calls the real service functions, released
together by a barrier (see fresh_db.py). Rounds are randomised from a fixed seed: a random
balance spread over a few lots, a random price, stock and quantity. After each round the number
of orders that went through must be exactly what the balance and the stock allow, every refusal
must be a clean 409 (`insufficient_points` or `out_of_stock`), and the books must verify.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW, migrate
from tests.factories import build_world
from tests.integration import lovebank_helpers as lb
from tests.integration.fresh_db import WAIT, FreshDatabase, Outcome, at_once, fresh_database_url
from web.db import make_engine, make_session_factory
from web.errors import ConflictError
from web.models import IdempotencyKey, LedgerAccount, MarketItem, MarketOrder, PointLot
from web.services import lovebank, market
from web.services.journal import find_wallet, verify_books

pytestmark = pytest.mark.db

SEED = 20261120
ROUNDS = 6
CLEAN_REFUSALS = {"insufficient_points", "out_of_stock"}


@pytest.fixture(scope="module")
def bank_url(tmp_path_factory):
    yield from fresh_database_url(tmp_path_factory.mktemp("ledger_cc"), "ledger_cc")


@pytest.fixture(scope="module")
def crowd_size(bank_url) -> int:
    """64 racing redemptions on PostgreSQL, 50 on SQLite (point 14)."""
    return 64 if bank_url.startswith("postgresql") else 50


@pytest.fixture(scope="module")
def bank(bank_url, crowd_size, fast_password_hashes):
    """A migrated database with the usual world, community a1's points rules and gifts allowed."""
    migrate(bank_url)
    engine = make_engine(bank_url, pool_size=crowd_size + 4, max_overflow=4, pool_timeout=WAIT)
    warm = [engine.connect() for _ in range(crowd_size + 2)]  # the race is about rows
    for conn in warm:
        conn.close()
    factory = make_session_factory(engine)
    session = factory()
    world = build_world(session)
    lb.publish(world)
    lovebank.update_settings(session, actor=world.actor("sec_a1"), community_id=world["a1"],
                             changes={"allow_gifts": True}, now=NOW)
    db = FreshDatabase(bank_url, engine, factory, world)
    db.settle()
    yield db
    session.close()
    engine.dispose()


# ---- set-up through the real services ----------------------------------------------------------

def new_wallet(db: FreshDatabase, name: str, lots: list[int]) -> int:
    """A new resident of a1 whose wallet holds one lot per amount in `lots`; their user id."""
    user = lb.resident(db.world, name)
    for points in lots:
        lb.fund_wallet(db.world, name, points)
    db.settle()
    return user.id


def new_item(db: FreshDatabase, name: str, price: int, stock: int) -> int:
    item = lb.goods(db.world, name, price=price, stock=stock)
    db.settle()
    return item.id


def split_into_lots(rng: random.Random, total: int) -> list[int]:
    """`total` points as 1–4 positive lots."""
    count = min(total, rng.randint(1, 4))
    cuts = sorted(rng.sample(range(1, total), count - 1)) if count > 1 else []
    return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]


# ---- calls fired from threads ------------------------------------------------------------------

def order_call(db: FreshDatabase, name: str, item_id: int, quantity: int, key: str):
    """A thread's call: `name` orders `quantity` of the item; (order id, points paid)."""
    actor = db.world.actor(name)
    community_id = db.world["a1"]

    def call(_i: int) -> tuple[int, int]:
        with db.factory() as session:
            order = market.place_order(session, actor=actor, community_id=community_id,
                                       lines=[{"item_id": item_id, "quantity": quantity}],
                                       idempotency_key=key, now=NOW)
            return order.id, order.total_points

    return call


def clean(outcomes: list[Outcome], allowed: set[str] = CLEAN_REFUSALS
          ) -> tuple[list[Outcome], list[Outcome]]:
    """(successes, refusals); anything but a 409 with an allowed code fails with its traceback."""
    unclean = [o for o in outcomes if o.error is not None and not (
        isinstance(o.error, ConflictError) and o.error.status == 409
        and o.error.code in allowed)]
    assert not unclean, f"{len(unclean)} calls failed other than with a clean 409 " \
        f"({', '.join(sorted(allowed))}):\n" + "\n".join(o.trace for o in unclean[:3])
    return [o for o in outcomes if o.error is None], [o for o in outcomes if o.error is not None]


# ---- reading the committed state ---------------------------------------------------------------

@dataclass
class WalletState:
    balance: int
    in_lots: int
    lowest_lot: int


def wallet_state(db: FreshDatabase, user_id: int) -> WalletState:
    with db.factory() as session:
        wallet = find_wallet(session, db.world["a1"], user_id)
        in_lots, lowest = session.execute(
            select(func.coalesce(func.sum(PointLot.remaining), 0),
                   func.coalesce(func.min(PointLot.remaining), 0))
            .where(PointLot.account_id == wallet.id)).one()
        return WalletState(wallet.balance, in_lots, lowest)


def stock_of(db: FreshDatabase, item_id: int) -> int:
    with db.factory() as session:
        return session.get(MarketItem, item_id).stock


def orders_of(db: FreshDatabase, user_id: int) -> list[MarketOrder]:
    with db.factory() as session:
        return list(session.scalars(select(MarketOrder).where(MarketOrder.user_id == user_id)))


def assert_books_verify(db: FreshDatabase) -> None:
    with db.factory() as session:
        problems, _ = verify_books(session)
        assert problems == []
        assert market.stock_matches_movements(session) == []
        overdrawn = session.scalar(select(func.count()).select_from(LedgerAccount).where(
            LedgerAccount.may_go_negative.is_(False), LedgerAccount.balance < 0))
        assert overdrawn == 0
        assert session.scalar(select(func.count()).select_from(MarketItem).where(
            MarketItem.stock < 0)) == 0


# ---- a randomised round ------------------------------------------------------------------------

@dataclass
class Round:
    """One round's draw: the wallet's lots, the item's price and stock, each thread's quantity."""

    lots: list[int]
    price: int
    stock: int
    quantities: list[int]

    @classmethod
    def draw(cls, rng: random.Random, crowd: int, same_quantity: bool) -> Round:
        price = rng.randint(1, 40)
        quantity = rng.randint(1, 3)
        quantities = [quantity if same_quantity else rng.randint(1, 3) for _ in range(crowd)]
        # Aim the limits inside the crowd, so that both refusals happen in most rounds.
        affordable, in_stock = rng.randint(1, crowd - 1), rng.randint(1, crowd + 8)
        balance = affordable * price * quantity + rng.randint(0, price * quantity - 1)
        stock = in_stock * quantity + rng.randint(0, quantity - 1)
        return cls(split_into_lots(rng, balance), price, stock, quantities)

    @property
    def balance(self) -> int:
        return sum(self.lots)

    def expected_successes(self) -> int:
        """With one quantity for all, the order of arrival does not matter: this many get through."""
        quantity = self.quantities[0]
        return min(len(self.quantities), self.balance // (self.price * quantity),
                   self.stock // quantity)


def run_round(db: FreshDatabase, name: str, plan: Round) -> tuple[list[Outcome], int, int]:
    """Fire the round's orders at once; (outcomes in thread order, the user, the item)."""
    user_id = new_wallet(db, name, plan.lots)
    item_id = new_item(db, f"大米-{name}", plan.price, plan.stock)
    calls = [order_call(db, name, item_id, q, f"{name}-{i}")
             for i, q in enumerate(plan.quantities)]
    db.settle()  # reading the actors began a transaction (on SQLite: the write lock)
    return at_once(len(calls), lambda i: calls[i](i)), user_id, item_id


def check_round(db: FreshDatabase, name: str, plan: Round) -> None:
    """Run one round and check every answer against the committed books."""
    outcomes, user_id, item_id = run_round(db, name, plan)

    where = f"{name}: {plan}"
    ok, _ = clean(outcomes)
    wallet, stock = wallet_state(db, user_id), stock_of(db, item_id)
    spent = sum(o.value[1] for o in ok)
    taken = sum(q for q, o in zip(plan.quantities, outcomes, strict=True) if o.error is None)
    # overspend 0, negative stock 0, and the books hold exactly what the answers said
    assert wallet.balance == plan.balance - spent >= 0, where
    assert wallet.in_lots == wallet.balance and wallet.lowest_lot >= 0, where
    assert stock == plan.stock - taken >= 0, where
    assert sorted(o.id for o in orders_of(db, user_id)) == sorted(o.value[0] for o in ok)
    if len(set(plan.quantities)) == 1:
        assert len(ok) == plan.expected_successes(), where
    # every refusal still could not be met at the end (balance and stock only went down)
    for quantity, o in zip(plan.quantities, outcomes, strict=True):
        if o.error is not None and o.error.code == "out_of_stock":
            assert stock < quantity, where
        elif o.error is not None:
            assert o.error.params["wanted"] == plan.price * quantity, where
            assert wallet.balance < plan.price * quantity, where
    assert_books_verify(db)


def test_concurrent_redemptions_succeed_exactly_as_often_as_balance_and_stock_allow(
        bank, crowd_size):
    rng = random.Random(SEED)
    for number in range(ROUNDS):
        check_round(bank, f"round{number}", Round.draw(rng, crowd_size, number % 2 == 0))


def check_orders_across_items(db: FreshDatabase, name: str, crowd: int, seed: int) -> None:
    """One wallet, four items with stock to spare, `crowd` orders of one each at once: exactly
    as many as the balance pays for go through."""
    rng = random.Random(seed)
    price = rng.randint(2, 9)
    affordable = rng.randint(crowd // 4, 3 * crowd // 4)
    balance = affordable * price + rng.randint(0, price - 1)
    user_id = new_wallet(db, name, split_into_lots(rng, balance))
    items = [new_item(db, f"毛巾-{name}{k}", price, crowd) for k in range(4)]
    calls = [order_call(db, name, items[i % 4], 1, f"{name}-{i}") for i in range(crowd)]
    db.settle()

    outcomes = at_once(crowd, lambda i: calls[i](i))

    ok, refused = clean(outcomes, {"insufficient_points"})
    assert len(ok) == affordable and len(refused) == crowd - affordable
    wallet = wallet_state(db, user_id)
    assert wallet.balance == balance - affordable * price == wallet.in_lots
    assert wallet.lowest_lot >= 0
    assert sum(crowd - stock_of(db, item) for item in items) == affordable
    assert_books_verify(db)


def test_redemptions_of_different_items_from_one_wallet_never_overspend_it(bank, crowd_size):
    # Four items, so the item locks do not queue the orders: only the wallet's lock does.
    check_orders_across_items(bank, "many_items", crowd_size, SEED + 1)


def test_sixteen_copies_of_one_order_sent_at_once_move_points_once_and_share_one_order(bank):
    user_id = new_wallet(bank, "impatient", [60, 40])
    item_id = new_item(bank, "酱油", price=7, stock=10)
    call = order_call(bank, "impatient", item_id, 2, "one-basket-sent-sixteen-times")
    bank.settle()

    outcomes = at_once(16, call)

    ok, _ = clean(outcomes, set())
    assert len({o.value for o in ok}) == 1
    (order,) = orders_of(bank, user_id)
    assert ok[0].value == (order.id, 14)
    assert wallet_state(bank, user_id).balance == 100 - 14
    assert stock_of(bank, item_id) == 10 - 2
    with bank.factory() as session:
        key = session.get(IdempotencyKey, "one-basket-sent-sixteen-times")
        assert (key.operation, key.result_id) == ("order", order.id)
    assert_books_verify(bank)


CAP_REACHED = "everyone named has reached their points cap"


def test_awards_gifts_and_redemptions_on_one_wallet_at_once_keep_every_invariant(bank):
    """Awards to two residents, gifts both ways between them and orders by one, all at once."""
    world, a1 = bank.world, bank.world["a1"]
    giver = new_wallet(bank, "busy", [35, 25])
    friend = new_wallet(bank, "friend", [30])
    item_id = new_item(bank, "鸡蛋", price=5, stock=8)
    secretary, busy, other = world.actor("sec_a1"), world.actor("busy"), world.actor("friend")
    bank.settle()

    def move(i: int) -> tuple[str, object]:
        with bank.factory() as session:
            if i % 6 == 0:
                transfer = lovebank.award_points(
                    session, actor=secretary, community_id=a1, activity="building_head",
                    user_ids=[giver, friend], reason="楼栋长", idempotency_key=f"mix-award-{i}",
                    now=NOW)
                return "award", {int(k): v for k, v in transfer.detail["points"].items()}
            if i % 6 in (1, 2):
                actor, to, points = (busy, friend, 3) if i % 6 == 1 else (other, giver, 2)
                lovebank.give_points(session, actor=actor, community_id=a1, to_user_id=to,
                                     points=points, reason="爱心传递",
                                     idempotency_key=f"mix-gift-{i}", now=NOW)
                return "gift", (actor.user_id, to, points)
            market.place_order(session, actor=busy, community_id=a1,
                               lines=[{"item_id": item_id, "quantity": 1}],
                               idempotency_key=f"mix-order-{i}", now=NOW)
            return "order", 5

    outcomes = at_once(48, move)

    for i, o in enumerate(outcomes):
        if o.error is not None and i % 6 == 0:  # an award is refused only once both are capped
            assert o.error.code == "conflict" and o.error.message == CAP_REACHED, o.trace
    clean([o for i, o in enumerate(outcomes) if i % 6 != 0])
    expected = {giver: 60, friend: 30}
    orders = 0
    for kind, value in (o.value for o in outcomes if o.error is None):
        if kind == "award":
            for user_id, points in value.items():
                expected[user_id] += points
        elif kind == "gift":
            source, to, points = value
            expected[source] -= points
            expected[to] += points
        else:
            expected[giver] -= value
            orders += 1
    awarded = [o.value[1] for o in outcomes if o.error is None and o.value[0] == "award"]
    # the daily cap (50) is met exactly, however the eight awards interleaved
    assert [sum(a.get(u, 0) for a in awarded) for u in (giver, friend)] == [50, 50]
    assert {u: wallet_state(bank, u).balance for u in expected} == expected
    assert stock_of(bank, item_id) == 8 - orders >= 0
    assert_books_verify(bank)


def awards_at_once(db: FreshDatabase, name: str, count: int) -> int:
    """`count` awards of building_head (20) to one new resident at once; the points given."""
    user_id = new_wallet(db, name, [])
    secretary = db.world.actor("sec_a1")
    db.settle()

    def award(i: int) -> int:
        with db.factory() as session:
            transfer = lovebank.award_points(
                session, actor=secretary, community_id=db.world["a1"], activity="building_head",
                user_ids=[user_id], reason="楼栋长", idempotency_key=f"{name}-{i}", now=NOW)
            return transfer.detail["points"][str(user_id)]

    outcomes = at_once(count, award)
    for o in outcomes:
        assert o.error is None or o.error.message == CAP_REACHED, o.trace
    return sum(o.value for o in outcomes if o.error is None)


def test_sixteen_awards_at_once_give_exactly_the_daily_cap(bank):
    assert awards_at_once(bank, "capped", 16) == 50


@pytest.fixture
def without_wallet_locks(monkeypatch):
    """Take the guard away: wallets are read without SELECT … FOR UPDATE."""
    unlocked = find_wallet
    monkeypatch.setattr(market, "find_wallet",
                        lambda session, community_id, user_id, locked=False:
                        unlocked(session, community_id, user_id))
    monkeypatch.setattr(lovebank, "lock_wallets", lambda session, wallets: None)


def test_without_the_wallet_lock_postgresql_breaks_the_guarded_checks(bank, bank_url, crowd_size,
                                                                      without_wallet_locks):
    if bank_url.startswith("sqlite"):
        # SQLite's BEGIN IMMEDIATE queues every writer, so the same rounds still hold there:
        # the database lock alone is the guard.
        check_round(bank, "unlocked_sqlite", Round([80, 72], 5, 40, [1] * crowd_size))
        assert awards_at_once(bank, "unlocked_sqlite_awards", 16) == 50
        assert_books_verify(bank)
        return
    # Orders read the wallet's lots stale: the CHECK constraints refuse the overdraft, but as a
    # bare conflict instead of insufficient_points, so the point-14 round fails.
    with pytest.raises(AssertionError):
        check_round(bank, "unguarded_one_item", Round([80, 72], 5, 40, [1] * crowd_size))
    with pytest.raises(AssertionError, match="other than with a clean 409"):
        check_orders_across_items(bank, "unguarded_items", crowd_size, SEED + 1)
    # Nothing in the schema caps earnings: awards at once each see the day's whole room.
    assert awards_at_once(bank, "unguarded_awards", 16) > 50
    # Whatever raced, the database's own constraints kept the books whole.
    assert_books_verify(bank)
