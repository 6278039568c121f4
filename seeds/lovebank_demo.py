"""The demo county's love bank and supermarkets: rules, points, stock, the fund and some orders.

Called by `seeds.demo` — rules first (so verified reports credit their volunteers as the county
is built), the shops after. Everything goes through the services, with explicit `now=` values.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from web.domain.actor import Actor
from web.models import User
from web.services import lovebank, market
from web.services.auth import load_actor
from web.services.base import local_date

RULES = {
    "per_hour": {"elderly_care": 10, "disability": 12, "health": 10, "*": 6},
    "activities": {"deliberation_meeting": 5, "waste_sorting": 2, "building_head": 20,
                   "patrol": 8, "civilised_promotion": 4},
    "multipliers": {"urgent": 120, "critical": 150, "vulnerable": 130},
    "daily_cap": 60, "monthly_cap": 600, "rounding": "half_up",
}
ACTIVITY_NAMES = {"deliberation_meeting": "议事协商会", "waste_sorting": "垃圾分类",
                  "building_head": "楼栋长", "patrol": "平安巡逻",
                  "civilised_promotion": "文明劝导"}
# name, category, kind, points, stock, monthly limit per person, value in fen
ITEMS = [
    ("东北大米 5kg", "粮油", "goods", 80, 30, 2, 3990),
    ("花生油 1.8L", "粮油", "goods", 60, 20, 1, 2990),
    ("洗衣液 2kg", "日用品", "goods", 40, 40, 2, 1990),
    ("抽纸 10包", "日用品", "goods", 25, 50, 3, 1290),
    ("牙膏套装", "日用品", "goods", 15, 60, None, 890),
    ("鸡蛋 30枚", "生鲜", "goods", 30, 24, 2, 1500),
    ("义务理发", "服务", "service", 10, None, 2, 1500),
    ("家电清洗(一次)", "服务", "service", 50, None, 1, 8000),
]


def publish_rules(county) -> None:
    """Each community publishes the same starting rules at the start of the demo's history."""
    for place in county.places:
        lovebank.publish_rules(county.s, actor=place.secretary, community_id=place.id,
                               document=RULES, effective_from=local_date(county.start),
                               note="社区积分制管理办法(试行)", now=county.start)
        if place.slug == "dongcheng":
            lovebank.update_settings(county.s, actor=place.secretary, community_id=place.id,
                                     changes={"points_expiry_months": 12, "allow_gifts": True,
                                              "fund_match_percent": 30}, now=county.start)


def _clerk(county, place) -> Actor:
    user_id = county.s.scalar(select(User.id).where(User.username == f"clerk.{place.slug}"))
    return load_actor(county.s, user_id)


def open_shops(county) -> None:
    """Catalogues, donated and bought stock, the fund, activity awards and a few orders."""
    for place in county.places:
        clerk, secretary = _clerk(county, place), place.secretary
        items = _catalogue(county, place, clerk)
        _fund_and_stock(county, place, clerk, secretary, items)
        _awards(county, place, secretary)
        _orders(county, place, clerk, items)


def _catalogue(county, place, clerk: Actor) -> list:
    t = county.at(60)
    return [market.create_item(county.s, actor=clerk, community_id=place.id, now=t, data={
        "name": name, "category": category, "kind": kind, "points_price": points,
        "monthly_limit": limit, "value_fen": value}) for
        name, category, kind, points, _stock, limit, value in ITEMS]


def _fund_and_stock(county, place, clerk: Actor, secretary: Actor, items: list) -> None:
    rng, t = county.rng, county.at(58)
    donor_units = [u for u in county.units if u.subdistrict is place.subdistrict] or county.units
    unit = rng.choice(donor_units)
    market.donate_money(county.s, actor=secretary, community_id=place.id, amount_fen=500_000,
                        donor_type="unit", unit_id=unit.id, reason="共建单位捐赠社区基金",
                        idempotency_key=f"seed-fund-{place.id}", now=t)
    for item, spec in zip(items, ITEMS, strict=True):
        stock = spec[4]
        if stock is None:
            continue
        donated = stock // 2
        giver = rng.choice(donor_units)
        market.receive_donation(county.s, actor=clerk, item_id=item.id, quantity=donated,
                                value_fen=donated * item.value_fen, unit_id=giver.id,
                                reason="共建单位捐赠", now=t + timedelta(hours=1))
        market.purchase_stock(county.s, actor=secretary, item_id=item.id,
                              quantity=stock - donated, cost_fen=(stock - donated) * item.value_fen,
                              reason="社区基金采购", idempotency_key=f"seed-buy-{item.id}",
                              now=t + timedelta(hours=2))


def _awards(county, place, secretary: Actor) -> None:
    residents = [p.user_id for p in place.residents]
    for k, (days_ago, activity) in enumerate([(100, "building_head"), (70, "building_head"),
                                              (50, "deliberation_meeting"),
                                              (35, "waste_sorting"), (20, "building_head"),
                                              (6, "patrol")]):
        t = county.at(days_ago)
        chosen = sorted(county.rng.sample(residents, 12) + [residents[0]])
        lovebank.award_points(county.s, actor=secretary, community_id=place.id,
                              activity=activity, user_ids=sorted(set(chosen)),
                              reason=f"参加社区活动:{ACTIVITY_NAMES[activity]}",
                              day=local_date(t),
                              idempotency_key=f"seed-award-{place.id}-{k}", now=t)


def _orders(county, place, clerk: Actor, items: list) -> None:
    """The first resident (in 东城, the demo resident) has one order collected and one waiting."""
    demo = place.residents[0]
    actor = load_actor(county.s, demo.user_id)
    cheap = [i for i in items if i.kind == "goods" and i.points_price <= 30]
    first = market.place_order(county.s, actor=actor, community_id=place.id,
                               lines=[{"item_id": cheap[0].id, "quantity": 1}],
                               idempotency_key=f"seed-order-{place.id}-1", now=county.at(10))
    market.hand_over(county.s, actor=clerk, code=first.code, now=county.at(9))
    market.place_order(county.s, actor=actor, community_id=place.id,
                       lines=[{"item_id": cheap[1].id, "quantity": 1}],
                       idempotency_key=f"seed-order-{place.id}-2", now=county.at(1))
