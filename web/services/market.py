"""The public-welfare supermarket (公益超市): catalogue, baskets, the counter, stock and the fund.

A basket is one transaction: the wallet is locked, then the items in id order; points are
debited, stock is held and the code issued — all of it or none. Refunds reverse the redemption
and return the stock. The community fund is a ledger of integer fen beside the points.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from scoring.ledger import Leg
from web.domain.actor import SYSTEM, Actor
from web.domain.states import OrderStatus
from web.errors import (
    ConflictError,
    InsufficientPointsError,
    LimitReachedError,
    NotFoundError,
    OutOfStockError,
)
from web.models import (
    Community,
    LedgerAccount,
    MarketItem,
    MarketOrder,
    MarketOrderLine,
    StockCount,
    StockCountLine,
    StockMovement,
    Unit,
)
from web.services import audit
from web.services import idempotency as keys
from web.services.base import (
    LOCAL_TZ,
    Page,
    get_or_404,
    invalid,
    like_pattern,
    local_date,
    lock,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.journal import (
    AccountKind,
    Posting,
    TransferKind,
    account,
    find_wallet,
    post,
)
from web.services.lovebank import may_manage, may_oversee, residents_of, spend_legs

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O or 1/I: read aloud at the counter
CODE_LENGTH = 10
MAX_LINES = 20
ITEM_FIELDS = ("name", "category", "kind", "description", "points_price", "monthly_limit",
               "visible_from", "visible_until", "value_fen", "photo_url", "is_active")


def may_run_counter(actor: Actor, community_id: int) -> bool:
    """The community's clerk or secretary works the supermarket."""
    return actor.is_system or community_id in actor.clerk_communities or \
        actor.is_secretary_of(community_id)


# ---- catalogue --------------------------------------------------------------------------------

def _check_item(item: MarketItem) -> None:
    if not (item.name or "").strip():
        raise invalid("name", "required")
    if item.kind not in ("goods", "service"):
        raise invalid("kind", "goods or service")
    if not isinstance(item.points_price, int) or not 1 <= item.points_price <= 1_000_000:
        raise invalid("points_price", "a whole number from 1 to 1,000,000")
    if item.monthly_limit is not None and not 1 <= item.monthly_limit <= 1000:
        raise invalid("monthly_limit", "from 1 to 1000, or empty for no limit")
    if item.value_fen is None or not 0 <= item.value_fen <= 10**9:
        raise invalid("value_fen", "from 0 to 1,000,000,000")
    if item.visible_from and item.visible_until and item.visible_until <= item.visible_from:
        raise invalid("visible_until", "ends before it starts")


@write
def create_item(session: Session, *, actor: Actor, community_id: int, data: dict,
                now: datetime | None = None) -> MarketItem:
    """Add goods or a service to the community's catalogue (goods start with no stock)."""
    now = now or utcnow()
    get_or_404(session, Community, community_id)
    require(may_run_counter(actor, community_id), "only the community's clerk or secretary")
    fields = {"value_fen": 0, "is_active": True, "description": "",
              **{k: data[k] for k in ITEM_FIELDS if k in data}}
    item = MarketItem(community_id=community_id, created_by=actor.user_id, created_at=now,
                      updated_at=now, **fields)
    item.stock = 0 if item.kind == "goods" else None
    _check_item(item)
    session.add(item)
    session.flush()
    audit.record(session, entity_type="market_items", entity_id=item.id, action="created",
                 actor=actor, now=now, data={"name": item.name})
    return item


@write
def update_item(session: Session, *, actor: Actor, item_id: int, changes: dict,
                now: datetime | None = None) -> MarketItem:
    """Change an item's details; stock moves only by stock movements, never here."""
    now = now or utcnow()
    item = get_item(session, actor=actor, item_id=item_id)
    require(may_run_counter(actor, item.community_id), "only the community's clerk or secretary")
    if "kind" in changes and changes["kind"] != item.kind:
        raise invalid("kind", "cannot change between goods and service")
    before = {k: getattr(item, k) for k in changes if k in ITEM_FIELDS}
    for key in before:
        setattr(item, key, changes[key])
    item.updated_at = now
    _check_item(item)
    audit.record(session, entity_type="market_items", entity_id=item.id, action="updated",
                 actor=actor, now=now, data={"before": before})
    return item


def _shown(stmt: Select, now: datetime) -> Select:
    return stmt.where(MarketItem.is_active.is_(True),
                      (MarketItem.visible_from.is_(None)) | (MarketItem.visible_from <= now),
                      (MarketItem.visible_until.is_(None)) | (MarketItem.visible_until > now))


def list_items(session: Session, *, actor: Actor, community_id: int, filters: dict,
               page: int = 1, per_page: int = 20, now: datetime | None = None) -> Page:
    """The catalogue: residents see what is on offer now; staff see every item."""
    now = now or utcnow()
    get_or_404(session, Community, community_id)
    stmt = select(MarketItem).where(MarketItem.community_id == community_id)
    staff = may_run_counter(actor, community_id) or may_oversee(session, actor, community_id)
    if not staff:
        require(community_id in actor.resident_communities, "only the community's residents")
        stmt = _shown(stmt, now)
    for key in ("category", "kind"):
        if filters.get(key):
            stmt = stmt.where(getattr(MarketItem, key) == filters[key])
    if filters.get("q"):
        from web.services.base import like_pattern

        stmt = stmt.where(MarketItem.name.ilike(like_pattern(filters["q"]), escape="\\"))
    return paginate(session, stmt.order_by(MarketItem.category, MarketItem.id), page, per_page)


def get_item(session: Session, *, actor: Actor, item_id: int) -> MarketItem:
    item = session.get(MarketItem, item_id)
    if item is None or not (may_run_counter(actor, item.community_id)
                            or may_oversee(session, actor, item.community_id)
                            or item.community_id in actor.resident_communities):
        raise NotFoundError("MarketItem", item_id)
    return item


# ---- baskets ----------------------------------------------------------------------------------

def _month_bounds(now: datetime) -> tuple[datetime, datetime]:
    local = now.astimezone(ZoneInfo(LOCAL_TZ))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def _bought_this_month(session: Session, user_id: int, item_id: int, now: datetime) -> int:
    start, end = _month_bounds(now)
    return session.scalar(
        select(func.coalesce(func.sum(MarketOrderLine.quantity), 0))
        .join(MarketOrder, MarketOrderLine.order_id == MarketOrder.id)
        .where(MarketOrder.user_id == user_id, MarketOrderLine.item_id == item_id,
               MarketOrder.status.in_([str(OrderStatus.RESERVED), str(OrderStatus.COLLECTED)]),
               MarketOrder.created_at >= start, MarketOrder.created_at < end)) or 0


def _basket(lines: list[dict]) -> dict[int, int]:
    """{item id: quantity} from the request's lines; the same item twice is added up."""
    if not lines or len(lines) > MAX_LINES:
        raise invalid("lines", f"between 1 and {MAX_LINES} lines")
    basket: dict[int, int] = {}
    for index, line in enumerate(lines):
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 99:
            raise invalid(f"lines.{index}.quantity", "from 1 to 99")
        basket[line["item_id"]] = basket.get(line["item_id"], 0) + quantity
    return basket


def _on_offer(item: MarketItem, now: datetime) -> bool:
    return item.is_active and (item.visible_from is None or item.visible_from <= now) and \
        (item.visible_until is None or item.visible_until > now)


def _take_items(session: Session, community_id: int, user_id: int, basket: dict[int, int],
                now: datetime) -> list[tuple[MarketItem, int]]:
    """Check each item can be had: community, offer, stock as read, the person's monthly limit
    (the wallet's lock orders one person's baskets). Stock is taken at the end, by `_take_stock`."""
    found = {i.id: i for i in session.scalars(select(MarketItem).where(
        MarketItem.id.in_(basket)).execution_options(populate_existing=True))}
    taken = []
    for item_id in sorted(basket):
        item, quantity = found.get(item_id), basket[item_id]
        if item is None or item.community_id != community_id:
            raise invalid("lines", f"item {item_id} is not in this supermarket")
        if not _on_offer(item, now):
            raise invalid("lines", f"item {item_id} ({item.name}) is not on offer now")
        if item.stock is not None and item.stock < quantity:
            raise OutOfStockError(f"{item.name}: {item.stock} left, {quantity} asked",
                                  item_id=item.id, stock=item.stock)
        if item.monthly_limit is not None:
            had = _bought_this_month(session, user_id, item.id, now)
            if had + quantity > item.monthly_limit:
                raise LimitReachedError(f"{item.name}: {item.monthly_limit} a month per person, "
                                        f"{had} had already", item_id=item.id)
        taken.append((item, quantity))
    return taken


def _take_stock(session: Session, taken: list[tuple[MarketItem, int]], *, actor: Actor,
                now: datetime, order_id: int) -> None:
    """Take stock by conditional UPDATEs in item id order, late in the transaction, so the items'
    rows are locked only from here to the commit; none left (another basket was faster) is a
    clean 409. The movements go in as one statement."""
    movements = []
    for item, quantity in taken:
        if item.stock is None:
            continue
        moved = session.execute(MarketItem.__table__.update()
                                .where(MarketItem.id == item.id, MarketItem.stock >= quantity)
                                .values(stock=MarketItem.stock - quantity)).rowcount
        if moved != 1:
            raise OutOfStockError(f"{item.name}: not {quantity} left any more", item_id=item.id)
        session.expire(item, ["stock"])
        movements.append({"item_id": item.id, "community_id": item.community_id,
                          "delta": -quantity, "kind": "redemption", "created_by": actor.user_id,
                          "created_at": now, "order_id": order_id})
    if movements:
        session.execute(StockMovement.__table__.insert(), movements)


def _new_code() -> str:
    """A random code: 32¹⁰ ≈ 10¹⁵ of them, so a clash is left to the unique index (a 409)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@keys.idempotent("order")
@write
def place_order(session: Session, *, actor: Actor, community_id: int, lines: list[dict],
                idempotency_key: str | None, for_user_id: int | None = None,
                now: datetime | None = None) -> MarketOrder:
    """Order a basket: debit points, hold stock, issue a code — all or nothing.

    A resident orders for themselves; a clerk orders at the counter for a resident
    (`for_user_id`) and the goods are handed over at once.
    """
    now = now or utcnow()
    payload = {"community_id": community_id, "lines": lines, "for": for_user_id}
    done = keys.begin(session, idempotency_key, "order", payload, actor=actor,
                      result_type="market_order", now=now)
    if done is not None:
        return session.get(MarketOrder, done)
    community = get_or_404(session, Community, community_id)
    at_counter = for_user_id is not None
    if at_counter:
        require(may_run_counter(actor, community_id), "only the community's clerk")
        if not residents_of(session, community_id, [for_user_id]):
            raise invalid("user_id", "not a resident of this community")
        user_id = for_user_id
    else:
        require(community_id in actor.resident_communities, "only a resident of the community")
        user_id = actor.user_id
    basket = _basket(lines)
    order = _reserve(session, community, user_id, basket, actor=actor, now=now)
    if at_counter:
        _hand_over(session, order, actor=actor, now=now)
    order.at_counter = at_counter
    keys.finish(session, idempotency_key, order.id)
    return order


def _reserve(session: Session, community: Community, user_id: int, basket: dict[int, int], *,
             actor: Actor, now: datetime) -> MarketOrder:
    wallet = find_wallet(session, community.id, user_id, locked=True)
    if wallet is None:
        raise InsufficientPointsError("the wallet is empty", available=0)
    items = _take_items(session, community.id, user_id, basket, now)
    total = sum(item.points_price * quantity for item, quantity in items)
    legs = spend_legs(session, wallet, total, local_date(now))
    shop = account(session, AccountKind.SUPERMARKET, community.id, now=now)
    order = MarketOrder(community_id=community.id, user_id=user_id, code=_new_code(),
                        status=str(OrderStatus.RESERVED), total_points=total, transfer_id=0,
                        collect_by=now + timedelta(days=community.collect_within_days),
                        at_counter=False, created_by=actor.user_id, created_at=now)
    transfer = post(session, community.id, legs + [Leg(shop.id, total)], Posting(
        TransferKind.REDEMPTION, ", ".join(f"{i.name} × {q}" for i, q in items),
        "market_order", None, detail={"lines": {str(i.id): q for i, q in items}}),
        actor=actor, now=now)
    order.transfer_id = transfer.id
    order.lines = [MarketOrderLine(item=i, quantity=q, points_each=i.points_price,
                                   value_fen_each=i.value_fen) for i, q in items]
    session.add(order)
    session.flush()
    _take_stock(session, items, actor=actor, now=now, order_id=order.id)  # in item id order
    audit.record(session, entity_type="market_orders", entity_id=order.id, action="reserved",
                 actor=actor, now=now, to_status=order.status,
                 data={"total_points": total, "transfer_id": transfer.id})
    return order


def _move_stock(session: Session, item: MarketItem, delta: int, kind: str, *, actor: Actor,
                now: datetime, **extra) -> StockMovement | None:
    """Record a stock movement and move the cached stock (services keep no stock)."""
    if item.stock is None:
        return None
    movement = StockMovement(item_id=item.id, community_id=item.community_id, delta=delta,
                             kind=kind, created_by=actor.user_id, created_at=now, **extra)
    session.add(movement)
    session.execute(MarketItem.__table__.update().where(MarketItem.id == item.id)
                    .values(stock=MarketItem.stock + delta))
    session.flush()
    session.expire(item, ["stock"])
    return movement


def _hand_over(session: Session, order: MarketOrder, *, actor: Actor, now: datetime) -> None:
    audit.transition(session, order, OrderStatus.COLLECTED, actor=actor, now=now)
    order.handed_over_by, order.handed_over_at = actor.user_id, now


def _order_by_code(session: Session, code: str) -> MarketOrder:
    code = (code or "").strip().upper().replace(" ", "").replace("-", "")
    order = session.scalar(select(MarketOrder).where(MarketOrder.code == code))
    if order is None:
        raise NotFoundError("MarketOrder", code)
    return order


@write
def hand_over(session: Session, *, actor: Actor, code: str,
              now: datetime | None = None) -> MarketOrder:
    """The clerk enters or scans a code and hands the basket over (once, before its deadline)."""
    now = now or utcnow()
    order = _order_by_code(session, code)
    if not may_run_counter(actor, order.community_id):
        raise NotFoundError("MarketOrder", code)
    order = lock(session, MarketOrder, order.id)
    if order.status == OrderStatus.RESERVED and order.collect_by <= now:
        raise ConflictError("this code has expired; the points are being refunded",
                            collect_by=order.collect_by.isoformat())
    if order.status != OrderStatus.RESERVED:
        raise ConflictError(f"this code was already used or withdrawn ({order.status})",
                            status=order.status)
    _hand_over(session, order, actor=actor, now=now)
    return order


def _refund(session: Session, order: MarketOrder, target: OrderStatus, *, actor: Actor,
            reason: str, now: datetime) -> MarketOrder:
    """Reverse the redemption (each point back to its lot) and return the stock."""
    from web.services.lovebank import get_transfer

    find_wallet(session, order.community_id, order.user_id, locked=True)  # the wallet's lock first
    order = lock(session, MarketOrder, order.id)
    audit.transition(session, order, target, actor=actor, now=now, reason=reason)
    original = get_transfer(session, order.transfer_id)
    legs = [Leg(e.account_id, -e.amount, e.lot_id) for e in original.entries]
    refund = post(session, order.community_id, legs, Posting(
        TransferKind.REFUND, reason, "market_order", str(order.id), f"order-refund:{order.id}",
        reverses_id=original.id), actor=actor, now=now)
    order.refund_transfer_id = refund.id
    for line in sorted(order.lines, key=lambda x: x.item_id):  # id order, as baskets do
        _move_stock(session, line.item, line.quantity, "return", actor=actor, now=now,
                    order_id=order.id, reason=reason)
    return order


def get_order(session: Session, *, actor: Actor, order_id: int) -> MarketOrder:
    order = session.get(MarketOrder, order_id)
    if order is None or not (order.user_id == actor.user_id
                             or may_run_counter(actor, order.community_id)
                             or may_oversee(session, actor, order.community_id)):
        raise NotFoundError("MarketOrder", order_id)
    return order


@keys.idempotent("cancel")
@write
def cancel_order(session: Session, *, actor: Actor, order_id: int, reason: str | None,
                 idempotency_key: str | None, now: datetime | None = None) -> MarketOrder:
    """The resident (or the clerk) cancels an order not yet collected: points and stock return."""
    now = now or utcnow()
    reason = need_reason(reason)
    done = keys.begin(session, idempotency_key, "cancel", {"order_id": order_id,
                                                           "reason": reason},
                      actor=actor, result_type="market_order", now=now)
    if done is not None:
        return session.get(MarketOrder, done)
    order = get_order(session, actor=actor, order_id=order_id)
    require(order.user_id == actor.user_id or may_run_counter(actor, order.community_id),
            "only the resident or the clerk")
    order = _refund(session, order, OrderStatus.CANCELLED, actor=actor, reason=reason, now=now)
    keys.finish(session, idempotency_key, order.id)
    return order


@write
def expire_orders(session: Session, *, now: datetime | None = None, dry_run: bool = False,
                  actor: Actor = SYSTEM) -> list[int]:
    """Refund every order not collected by its deadline; safe to run twice."""
    now = now or utcnow()
    due = list(session.scalars(select(MarketOrder.id).where(
        MarketOrder.status == str(OrderStatus.RESERVED), MarketOrder.collect_by <= now)
        .order_by(MarketOrder.id)))
    if dry_run:
        return due
    done = []
    for order_id in due:
        order = session.get(MarketOrder, order_id)
        if order.status != OrderStatus.RESERVED:
            continue
        _refund(session, order, OrderStatus.EXPIRED, actor=actor, now=now,
                reason=f"not collected by {order.collect_by.isoformat()}")
        done.append(order_id)
    return done


def list_orders(session: Session, *, actor: Actor, filters: dict, page: int = 1,
                per_page: int = 20) -> Page:
    """Orders: a resident's own; a clerk's or secretary's community's."""
    conds = [MarketOrder.user_id == actor.user_id] if actor.user_id is not None else []
    staff = actor.clerk_communities | actor.secretary_communities
    if staff:
        conds.append(MarketOrder.community_id.in_(staff))
    from web.services.scope import overseen, scoped

    conds += [c for c in overseen(actor, MarketOrder.community_id)]
    stmt = scoped(MarketOrder, conds, actor)
    if filters.get("q"):
        stmt = stmt.where(MarketOrder.code == filters["q"].strip().upper())
    for key in ("status", "community_id", "user_id"):
        if filters.get(key):
            stmt = stmt.where(getattr(MarketOrder, key) == filters[key])
    return paginate(session, stmt.order_by(MarketOrder.id.desc()), page, per_page)


# ---- stock ------------------------------------------------------------------------------------

@write
def receive_donation(session: Session, *, actor: Actor, item_id: int, quantity: int,
                     value_fen: int, reason: str | None = None, unit_id: int | None = None,
                     donor_user_id: int | None = None, donor_name: str | None = None,
                     now: datetime | None = None) -> StockMovement:
    """Goods donated by a unit (its contribution, with its value) or a resident come in."""
    now = now or utcnow()
    item = _stock_item(session, actor, item_id)
    _quantity(quantity)
    if value_fen is None or not 0 <= value_fen <= 10**9:
        raise invalid("value_fen", "from 0 to 1,000,000,000")
    if unit_id is not None:
        get_or_404(session, Unit, unit_id, "Unit")
    if unit_id is None and donor_user_id is None and not (donor_name or "").strip():
        raise invalid("donor_name", "name the donor: a unit, a resident or a name")
    return _move_stock(session, item, quantity, "donation", actor=actor, now=now,
                       reason=reason, unit_id=unit_id, donor_user_id=donor_user_id,
                       donor_name=donor_name, value_fen=value_fen)


def _stock_item(session: Session, actor: Actor, item_id: int) -> MarketItem:
    item = get_item(session, actor=actor, item_id=item_id)
    require(may_run_counter(actor, item.community_id), "only the community's clerk or secretary")
    item = lock(session, MarketItem, item.id)
    if item.stock is None:
        raise invalid("item_id", "a service keeps no stock")
    return item


def _quantity(quantity: int) -> None:
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 100_000:
        raise invalid("quantity", "from 1 to 100,000")


@keys.idempotent("purchase")
@write
def purchase_stock(session: Session, *, actor: Actor, item_id: int, quantity: int,
                   cost_fen: int, reason: str | None, idempotency_key: str | None,
                   now: datetime | None = None) -> StockMovement:
    """Buy stock with the community fund: money out of the fund, goods into the supermarket.
    The supermarket's clerk records what was bought (the secretary may too); the fund never
    goes below zero, and every purchase is in the journal the secretary oversees."""
    now = now or utcnow()
    reason = need_reason(reason)
    done = keys.begin(session, idempotency_key, "purchase", {"item_id": item_id,
                      "quantity": quantity, "cost_fen": cost_fen, "reason": reason},
                      actor=actor, result_type="stock_movement", now=now)
    if done is not None:
        return session.get(StockMovement, done)
    item = _stock_item(session, actor, item_id)
    require(may_run_counter(actor, item.community_id),
            "only the community's clerk or secretary buys stock with the fund")
    _quantity(quantity)
    if not isinstance(cost_fen, int) or not 1 <= cost_fen <= 10**9:
        raise invalid("cost_fen", "from 1 to 1,000,000,000")
    fund = account(session, AccountKind.FUND, item.community_id, now=now)
    lock(session, LedgerAccount, fund.id)
    session.refresh(fund)
    if fund.balance < cost_fen:
        raise InsufficientPointsError(f"the fund holds {fund.balance} fen", available=fund.balance)
    spent = account(session, AccountKind.PURCHASES, item.community_id, now=now)
    transfer = post(session, item.community_id, [Leg(fund.id, -cost_fen), Leg(spent.id, cost_fen)],
                    Posting(TransferKind.PURCHASE, reason, "market_item", str(item.id),
                            detail={"quantity": quantity}), actor=actor, now=now)
    movement = _move_stock(session, item, quantity, "purchase", actor=actor, now=now,
                           reason=reason, value_fen=cost_fen, fund_transfer_id=transfer.id)
    keys.finish(session, idempotency_key, movement.id)
    return movement


@write
def count_stock(session: Session, *, actor: Actor, community_id: int, lines: list[dict],
                reason: str | None, now: datetime | None = None) -> StockCount:
    """A stock count (盘点): each difference from the expected stock is recorded as an adjustment."""
    now = now or utcnow()
    reason = need_reason(reason)
    get_or_404(session, Community, community_id)
    require(may_run_counter(actor, community_id), "only the community's clerk or secretary")
    if not lines or len({line["item_id"] for line in lines}) != len(lines):
        raise invalid("lines", "count each item once")
    count = StockCount(community_id=community_id, reason=reason, created_by=actor.user_id,
                       created_at=now)
    session.add(count)
    session.flush()
    for index, line in enumerate(sorted(lines, key=lambda x: x["item_id"])):
        item = lock(session, MarketItem, line["item_id"])
        if item is None or item.community_id != community_id or item.stock is None:
            raise invalid(f"lines.{index}.item_id", "goods of this supermarket")
        counted = line["counted"]
        if not isinstance(counted, int) or counted < 0:
            raise invalid(f"lines.{index}.counted", "zero or more")
        expected = item.stock
        session.add(StockCountLine(count_id=count.id, item_id=item.id, expected=expected,
                                   counted=counted))
        if counted != expected:
            _move_stock(session, item, counted - expected, "count", actor=actor, now=now,
                        reason=reason, count_id=count.id)
    session.flush()
    session.refresh(count)
    return count


def list_stock_movements(session: Session, *, actor: Actor, community_id: int, filters: dict,
                         page: int = 1, per_page: int = 20) -> Page:
    """The community's stock movements, newest first: by goods, kind, donor unit, and `q` in
    the goods' name, the reason or the donor's name (community staff only)."""
    get_or_404(session, Community, community_id)
    require(may_run_counter(actor, community_id) or may_oversee(session, actor, community_id),
            "only the community's staff")
    stmt = select(StockMovement).where(StockMovement.community_id == community_id)
    for key in ("item_id", "kind", "unit_id"):
        if filters.get(key):
            stmt = stmt.where(getattr(StockMovement, key) == filters[key])
    if filters.get("q"):  # the goods' name, the reason, the donor (a unit's or a person's name)
        like = like_pattern(filters["q"])
        stmt = stmt.where(or_(
            StockMovement.reason.ilike(like, escape="\\"),
            StockMovement.donor_name.ilike(like, escape="\\"),
            StockMovement.item_id.in_(select(MarketItem.id).where(
                MarketItem.community_id == community_id,
                MarketItem.name.ilike(like, escape="\\"))),
            StockMovement.unit_id.in_(select(Unit.id).where(Unit.name.ilike(like, escape="\\")))))
    return paginate(session, stmt.order_by(StockMovement.id.desc()), page, per_page)


# ---- the community fund -----------------------------------------------------------------------

@keys.idempotent("donate_money")
@write
def donate_money(session: Session, *, actor: Actor, community_id: int, amount_fen: int,
                 donor_type: str, reason: str | None, idempotency_key: str | None,
                 unit_id: int | None = None, donor_name: str | None = None,
                 now: datetime | None = None):
    """Money given to the community fund, with the charity federation's matching grant."""
    now = now or utcnow()
    reason = need_reason(reason)
    payload = {"community_id": community_id, "amount_fen": amount_fen, "donor_type": donor_type,
               "unit_id": unit_id, "donor_name": donor_name, "reason": reason}
    done = keys.begin(session, idempotency_key, "donate_money", payload, actor=actor,
                      result_type="transfer", now=now)
    from web.services.lovebank import get_transfer

    if done is not None:
        return get_transfer(session, done)
    community = get_or_404(session, Community, community_id)
    require(may_manage(actor, community_id), "only the community's secretary")
    if not isinstance(amount_fen, int) or not 1 <= amount_fen <= 10**9:
        raise invalid("amount_fen", "from 1 to 1,000,000,000")
    if donor_type not in ("unit", "resident", "other"):
        raise invalid("donor_type", "unit, resident or other")
    if donor_type == "unit":
        if unit_id is None:
            raise invalid("unit_id", "name the unit that gives")
        get_or_404(session, Unit, unit_id, "Unit")
    elif not (donor_name or "").strip():
        raise invalid("donor_name", "name the donor")
    grant = amount_fen * community.fund_match_percent // 100
    fund = account(session, AccountKind.FUND, community_id, now=now)
    legs = [Leg(account(session, AccountKind.DONATIONS, community_id, now=now).id, -amount_fen),
            Leg(fund.id, amount_fen + grant)]
    if grant:
        legs.append(Leg(account(session, AccountKind.GRANTS, community_id, now=now).id, -grant))
    transfer = post(session, community_id, legs, Posting(
        TransferKind.DONATION, reason, donor_type, str(unit_id) if unit_id else donor_name,
        detail={"donation_fen": amount_fen, "matching_grant_fen": grant,
                "match_percent": community.fund_match_percent}), actor=actor, now=now)
    keys.finish(session, idempotency_key, transfer.id)
    return transfer


def fund_summary(session: Session, *, actor: Actor, community_id: int) -> dict:
    """The fund's balance and what came in and went out, in fen."""
    get_or_404(session, Community, community_id)
    require(may_oversee(session, actor, community_id), "only the community's staff")
    balances = {a.kind: a.balance for a in session.scalars(select(LedgerAccount).where(
        LedgerAccount.community_id == community_id, LedgerAccount.asset == "fen"))}
    return {"community_id": community_id, "balance_fen": balances.get("fund", 0),
            "donations_fen": -balances.get("donations", 0),
            "matching_grants_fen": -balances.get("grants", 0),
            "purchases_fen": balances.get("purchases", 0)}


def stock_matches_movements(session: Session) -> list[tuple[int, int, int]]:
    """(item, cached stock, sum of movements) for every item where the two differ."""
    sums = dict(session.execute(select(StockMovement.item_id, func.sum(StockMovement.delta))
                                .group_by(StockMovement.item_id)).all())
    return [(item.id, item.stock, sums.get(item.id, 0) or 0)
            for item in session.scalars(select(MarketItem).where(MarketItem.stock.is_not(None)))
            if item.stock != (sums.get(item.id, 0) or 0)]
