"""Shared set-up for the love-bank tests: rules, a verified service record, stocked items."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from tests.conftest import NOW
from tests.factories import World, make_user
from web.domain.actor import SYSTEM
from web.services import lovebank, market

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



