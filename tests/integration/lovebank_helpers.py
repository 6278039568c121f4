"""Shared set-up for the love-bank tests: rules, a verified service record, stocked items."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from sqlalchemy import func, select, table

from tests.conftest import NOW
from tests.factories import World, make_user
from web.models import LedgerAccount, LedgerEntry, MarketItem
from web.services import lovebank, market
from web.services.journal import find_wallet

RULES = {"per_hour": {"elderly_care": 10, "*": 5},
         "activities": {"deliberation_meeting": 5, "waste_sorting": 2, "building_head": 20},
         "multipliers": {"urgent": 120, "critical": 150, "vulnerable": 130},
         "daily_cap": 50, "monthly_cap": 600, "rounding": "half_up"}
TODAY = date(2026, 11, 20)
_keys = itertools.count(1)


def key(prefix: str = "k") -> str:
    """A fresh idempotency key."""
    return f"{prefix}-{next(_keys)}"


def publish(world: World, community: str = "a1", rules: dict | None = None,
            effective_from: date = TODAY):
    return lovebank.publish_rules(world.session, actor=world.actor(f"sec_{community}"),
                                  community_id=world[community], document=rules or RULES,
                                  effective_from=effective_from, now=NOW)


def award(world: World, *names: str, activity: str = "building_head", community: str = "a1",
          day: date = TODAY):
    return lovebank.award_points(
        world.session, actor=world.actor(f"sec_{community}"), community_id=world[community],
        activity=activity, user_ids=[world.users[n] for n in names], reason="为社区服务",
        idempotency_key=key("award"), day=day, now=NOW)


def fund_wallet(world: World, name: str = "res_a1", points: int = 100, community: str = "a1"):
    """Give a resident `points` by hand (an adjustment), through the real service."""
    return lovebank.adjust_points(
        world.session, actor=world.actor(f"sec_{community}"), community_id=world[community],
        user_id=world.users[name], points=points, reason="测试充值", idempotency_key=key("adj"),
        now=NOW)


def resident(world: World, name: str, community: str = "a1"):
    user = make_user(world.session, name, {"role": "resident", "community_id": world[community]})
    world.users[name] = user.id
    return user


def goods(world: World, name: str = "大米", price: int = 10, stock: int = 5,
          community: str = "a1", **extra):
    item = market.create_item(world.session, actor=world.actor(f"sec_{community}"),
                              community_id=world[community],
                              data={"name": name, "category": "粮油", "kind": "goods",
                                    "points_price": price, "value_fen": 2500, **extra}, now=NOW)
    if stock:
        market.receive_donation(world.session, actor=world.actor(f"sec_{community}"),
                                item_id=item.id, quantity=stock, value_fen=2500 * stock,
                                donor_name="爱心居民", now=NOW)
    return item


def order(world: World, *lines: tuple[int, int], name: str = "res_a1", community: str = "a1",
          now=NOW, idempotency_key: str | None = None):
    return market.place_order(world.session, actor=world.actor(name),
                              community_id=world[community],
                              lines=[{"item_id": i, "quantity": q} for i, q in lines],
                              idempotency_key=idempotency_key or key("order"), now=now)


def books_ok(world: World) -> None:
    """The whole journal verifies and every stock level matches its movements."""
    from web.services.journal import verify_books

    problems, _ = verify_books(world.session)
    assert problems == []
    assert market.stock_matches_movements(world.session) == []


def later(days: int):
    return NOW + timedelta(days=days)





def settings(world: World, community: str = "a1", **changes):
    """Change the community's love-bank settings (expiry, gifts…) as its secretary."""
    return lovebank.update_settings(world.session, actor=world.actor(f"sec_{community}"),
                                    community_id=world[community], changes=changes, now=NOW)


def served(world: World, volunteers: list[dict], *, demand: str = "d_a1",
           ended_on: date = TODAY, now=NOW, verify: bool = True):
    """Unit x claims the whole demand, reports `volunteers` and (by default) sec_a1 verifies."""
    from tests.factories import claim
    from web.models import DemandItem
    from web.services import assignments, reports

    needed = world.session.get(DemandItem, world[demand]).quantity_needed
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=claim(world, "x", demand, needed).id, now=NOW)
    report = reports.submit_report(world.session, actor=world.actor("unit_x"),
                                   demand_id=world[demand], started_on=ended_on,
                                   ended_on=ended_on, volunteers=volunteers,
                                   beneficiaries_served=1, value_fen=0, now=now)
    if verify:
        reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                              now=now)
    return report


# ---- for the API tests ----------------------------------------------------------------------------

JOURNAL_TABLES = ("ledger_transfers", "ledger_entries", "point_lots", "idempotency_keys",
                  "market_orders", "market_order_lines", "stock_movements", "stock_counts",
                  "stock_count_lines", "points_rules")


def balance(world: World, name: str = "res_a1", community: str = "a1") -> int:
    """A resident's wallet balance, recomputed from its entries (0 without a wallet)."""
    wallet = find_wallet(world.session, world[community], world.users[name])
    if wallet is None:
        return 0
    return world.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                                .where(LedgerEntry.account_id == wallet.id))


def stock(world: World, item_id: int) -> int | None:
    """An item's stock as the database holds it now."""
    return world.session.scalar(select(MarketItem.stock).where(MarketItem.id == item_id)
                                .execution_options(populate_existing=True))


def journal_state(world: World) -> dict:
    """Row counts of the journal's and the supermarket's tables, and every stock level: what a
    refused request must leave as it was."""
    session = world.session
    state = {name: session.scalar(select(func.count()).select_from(table(name)))
             for name in JOURNAL_TABLES}
    state["balances"] = dict(session.execute(select(LedgerAccount.id, LedgerAccount.balance)
                                             .execution_options(populate_existing=True)).all())
    state["stock"] = dict(session.execute(select(MarketItem.id, MarketItem.stock)
                                          .execution_options(populate_existing=True)).all())
    return state


def keyed(headers: dict, idempotency_key: str | None = None) -> dict:
    """`headers` with an Idempotency-Key (a fresh one unless given)."""
    return {**headers, "Idempotency-Key": idempotency_key or key("api")}
