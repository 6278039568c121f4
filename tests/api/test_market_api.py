"""The public-welfare supermarket through the HTTP API: baskets, codes, the counter, stock, fund.

Set-up goes through the services (tests/integration/lovebank_helpers.py, at the fixed NOW);
the requests under test run at the real time, as a client's would. Every refusal is checked for
the one error shape and for having moved nothing: no points, no stock, no order.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import segno
from sqlalchemy import func, select

from tests.api.error_shape import refused
from tests.conftest import NOW
from tests.integration.lovebank_helpers import (
    balance,
    books_ok,
    fund_wallet,
    goods,
    journal_state,
    key,
    keyed,
    order,
    resident,
    stock,
)
from web.models import MarketOrder
from web.services import market

pytestmark = pytest.mark.db

API = "/api/v1"


def place(client, world, *lines: tuple[int, int], who: str = "res_a1",
          idempotency_key: str | None = None, **extra):
    body = {"community_id": world["a1"],
            "lines": [{"item_id": i, "quantity": q} for i, q in lines], **extra}
    return client.post(f"{API}/market/orders", json=body,
                       headers=keyed(world.headers(who), idempotency_key))


def orders_of(world, name: str = "res_a1") -> int:
    return world.session.scalar(select(func.count()).select_from(MarketOrder)
                                .where(MarketOrder.user_id == world.users[name]))


def hand_over(client, world, code: str, clerk: str = "clerk_a1"):
    return client.post(f"{API}/market/hand-over", headers=world.headers(clerk),
                       json={"code": code})


@pytest.fixture
def shop(world):
    """res_a1 holds 100 points; a1's supermarket sells rice (10 points, 5 in stock) and oil
    (15 points, 3 in stock)."""
    fund_wallet(world, "res_a1", 100)
    world.ids["rice"] = goods(world, "大米", price=10, stock=5).id
    world.ids["oil"] = goods(world, "食用油", price=15, stock=3).id
    return world


# ---- a basket, its code, the counter ------------------------------------------------------------

def test_a_resident_orders_a_basket_and_the_clerk_hands_it_over_by_its_code(client, shop):
    world = shop
    r = place(client, world, (world["rice"], 2), (world["oil"], 1))
    assert r.status_code == 201, r.json
    placed = r.json
    assert placed["status"] == "reserved" and placed["total_points"] == 35
    assert len(placed["code"]) == market.CODE_LENGTH
    assert sorted((line["name"], line["quantity"]) for line in placed["lines"]) == [
        ("大米", 2), ("食用油", 1)]
    assert balance(world) == 65
    assert (stock(world, world["rice"]), stock(world, world["oil"])) == (3, 2)
    shown = client.get(f"{API}/market/orders/{placed['id']}", headers=world.headers("res_a1"))
    assert shown.status_code == 200 and shown.json["code"] == placed["code"]
    qr = client.get(f"{API}/market/orders/{placed['id']}/qr.svg",
                    headers=world.headers("res_a1"))
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml"
    assert b"<svg" in qr.data
    same = io.BytesIO()
    segno.make(placed["code"], error="m").save(same, kind="svg", scale=6, border=2)
    assert qr.data == same.getvalue()  # the QR code holds exactly the order's code
    done = hand_over(client, world, placed["code"])
    assert done.status_code == 200, done.json
    assert done.json["status"] == "collected"
    assert done.json["handed_over_by"] == world.users["clerk_a1"]
    assert balance(world) == 65 and stock(world, world["rice"]) == 3
    books_ok(world)


def test_the_counter_accepts_a_code_typed_in_lower_case_with_spaces_and_dashes(client, shop):
    world = shop
    code = place(client, world, (world["rice"], 1)).json["code"]
    typed = f" {code[:5].lower()}-{code[5:]} "
    r = hand_over(client, world, typed)
    assert r.status_code == 200, r.json
    assert r.json["code"] == code and r.json["status"] == "collected"



@pytest.fixture
def as_in_production(app):
    """Errors answered as a deployed server answers them, instead of raised into the test."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def test_a_code_used_once_is_refused_the_second_time(client, shop, as_in_production):
    world = shop
    code = place(client, world, (world["rice"], 1)).json["code"]
    assert hand_over(client, world, code).status_code == 200
    before = journal_state(world)
    refused(hand_over(client, world, code), 409, "conflict")
    assert journal_state(world) == before


def test_the_code_of_a_cancelled_order_is_refused_at_the_counter(client, shop,
                                                                 as_in_production):
    world = shop
    placed = place(client, world, (world["rice"], 1)).json
    r = client.post(f"{API}/market/orders/{placed['id']}/cancel",
                    headers=keyed(world.headers("res_a1")), json={"reason": "不需要了"})
    assert r.status_code == 200, r.json
    before = journal_state(world)
    refused(hand_over(client, world, placed["code"]), 409, "conflict")
    assert journal_state(world) == before


def test_the_code_of_an_order_refunded_for_lateness_is_refused(client, shop, as_in_production):
    world = shop
    late = order(world, (world["rice"], 1), now=NOW - timedelta(days=10))
    assert market.expire_orders(world.session) == [late.id]
    before = journal_state(world)
    refused(hand_over(client, world, late.code), 409, "conflict")
    assert journal_state(world) == before


def test_an_unknown_code_is_refused_with_404(client, shop):
    refused(hand_over(client, shop, "ZZZZZZZZZZ"), 404, "not_found")


def test_a_clerk_of_another_community_cannot_use_a_code(client, shop):
    world = shop
    from tests.factories import make_user

    world.users["clerk_b1"] = make_user(world.session, "clerk_b1",
                                        {"role": "clerk", "community_id": world["b1"]}).id
    code = place(client, world, (world["rice"], 1)).json["code"]
    before = journal_state(world)
    refused(hand_over(client, world, code, clerk="clerk_b1"), 404, "not_found")
    assert journal_state(world) == before


def test_a_code_past_its_collection_deadline_is_refused_and_the_order_later_refunded(
        client, shop):
    world = shop
    late = order(world, (world["rice"], 1), now=NOW - timedelta(days=10))
    assert late.collect_by < datetime.now(UTC)
    before = journal_state(world)
    error = refused(hand_over(client, world, late.code), 409, "conflict")
    assert "expired" in error["message"]
    assert journal_state(world) == before
    # The expiry job then refunds it: the points and the rice come back.
    assert market.expire_orders(world.session) == [late.id]
    shown = client.get(f"{API}/market/orders/{late.id}", headers=world.headers("res_a1")).json
    assert shown["status"] == "expired" and shown["refund_transfer_id"]
    assert balance(world) == 100 and stock(world, world["rice"]) == 5
    books_ok(world)


def test_cancelling_an_order_refunds_the_points_and_returns_the_stock_once(client, shop):
    world = shop
    placed = place(client, world, (world["rice"], 2), (world["oil"], 1)).json
    r = client.post(f"{API}/market/orders/{placed['id']}/cancel",
                    headers=keyed(world.headers("res_a1")), json={"reason": "不需要了"})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "cancelled" and r.json["refund_transfer_id"]
    assert balance(world) == 100
    assert (stock(world, world["rice"]), stock(world, world["oil"])) == (5, 3)
    (wallet,) = client.get(f"{API}/ledger/statement", headers=world.headers("res_a1")).json
    assert sorted((line["kind"], line["amount"]) for line in wallet["lines"]
                  if line["kind"] != "adjustment") == [("redemption", -35), ("refund", 35)]
    before = journal_state(world)
    again = client.post(f"{API}/market/orders/{placed['id']}/cancel",
                        headers=keyed(world.headers("res_a1")), json={"reason": "再取消"})
    refused(again, 409)
    assert journal_state(world) == before
    books_ok(world)


def test_a_collected_order_cannot_be_cancelled(client, shop):
    world = shop
    placed = place(client, world, (world["rice"], 1)).json
    assert hand_over(client, world, placed["code"]).status_code == 200
    before = journal_state(world)
    r = client.post(f"{API}/market/orders/{placed['id']}/cancel",
                    headers=keyed(world.headers("res_a1")), json={"reason": "后悔了"})
    refused(r, 409)
    assert journal_state(world) == before and balance(world) == 90


def test_a_clerk_redeems_at_the_counter_for_a_resident_without_a_phone(client, shop):
    world = shop
    r = place(client, world, (world["rice"], 1), who="clerk_a1", user_id=world.users["res_a1"])
    assert r.status_code == 201, r.json
    assert r.json["status"] == "collected" and r.json["at_counter"] is True
    assert r.json["user_id"] == world.users["res_a1"]
    assert r.json["handed_over_by"] == world.users["clerk_a1"]
    assert balance(world) == 90 and stock(world, world["rice"]) == 4
    books_ok(world)


@pytest.mark.parametrize("served", ["res_b1", "sec_a1", "clerk_a1"])
def test_a_clerk_cannot_redeem_at_the_counter_for_someone_who_is_not_a_resident_here(
        client, shop, served):
    world = shop
    before = journal_state(world)
    r = place(client, world, (world["rice"], 1), who="clerk_a1", user_id=world.users[served])
    assert "user_id" in refused(r, 422, "validation_error")["fields"]
    assert journal_state(world) == before


def test_a_resident_cannot_order_for_someone_else(client, shop):
    world = shop
    resident(world, "res_a1b")
    before = journal_state(world)
    r = place(client, world, (world["rice"], 1), user_id=world.users["res_a1b"])
    refused(r, 403, "forbidden")
    assert journal_state(world) == before


def test_the_orders_list_shows_a_resident_their_own_and_the_clerk_the_whole_shop(client, shop):
    world = shop
    resident(world, "res_a1b")
    fund_wallet(world, "res_a1b", 50)
    mine = place(client, world, (world["rice"], 1)).json["id"]
    theirs = place(client, world, (world["oil"], 1), who="res_a1b").json["id"]
    seen = {name: {o["id"] for o in client.get(f"{API}/market/orders",
                                               headers=world.headers(name)).json["items"]}
            for name in ("res_a1", "res_a1b", "clerk_a1", "res_b1")}
    assert seen == {"res_a1": {mine}, "res_a1b": {theirs}, "clerk_a1": {mine, theirs},
                    "res_b1": set()}


# ---- bad baskets (acceptance point 17): refused, and nothing of the basket moves -----------------

def test_a_basket_with_one_item_out_of_stock_moves_nothing(client, shop):
    world = shop
    before = journal_state(world)
    r = place(client, world, (world["rice"], 2), (world["oil"], 4))
    error = refused(r, 409, "out_of_stock")
    assert error["item_id"] == world["oil"] and error["stock"] == 3
    assert journal_state(world) == before
    assert balance(world) == 100
    assert (stock(world, world["rice"]), stock(world, world["oil"])) == (5, 3)
    assert orders_of(world) == 0


def test_a_basket_beyond_the_wallet_moves_nothing(client, shop):
    world = shop
    world.ids["tv"] = goods(world, "电饭煲", price=90, stock=2).id
    before = journal_state(world)
    r = place(client, world, (world["rice"], 2), (world["tv"], 1))
    error = refused(r, 409, "insufficient_points")
    assert error["available"] == 100 and error["wanted"] == 110
    assert journal_state(world) == before and orders_of(world) == 0


def test_an_order_from_an_empty_wallet_is_refused(client, shop):
    world = shop
    resident(world, "res_a1b")
    before = journal_state(world)
    refused(place(client, world, (world["rice"], 1), who="res_a1b"), 409, "insufficient_points")
    assert journal_state(world) == before


def test_an_order_over_the_monthly_limit_is_refused(client, shop):
    world = shop
    world.ids["eggs"] = goods(world, "鸡蛋", price=5, stock=20, monthly_limit=2).id
    assert place(client, world, (world["eggs"], 2)).status_code == 201
    before = journal_state(world)
    error = refused(place(client, world, (world["eggs"], 1)), 409, "limit_reached")
    assert error["item_id"] == world["eggs"]
    assert journal_state(world) == before
    assert balance(world) == 90 and stock(world, world["eggs"]) == 18


def test_a_basket_asking_more_than_the_monthly_limit_at_once_is_refused(client, shop):
    world = shop
    world.ids["eggs"] = goods(world, "鸡蛋", price=5, stock=20, monthly_limit=2).id
    before = journal_state(world)
    # The same item on two lines is added up.
    r = place(client, world, (world["eggs"], 2), (world["eggs"], 1))
    refused(r, 409, "limit_reached")
    assert journal_state(world) == before


def test_a_cancelled_order_no_longer_counts_towards_the_monthly_limit(client, shop):
    world = shop
    world.ids["eggs"] = goods(world, "鸡蛋", price=5, stock=20, monthly_limit=2).id
    first = place(client, world, (world["eggs"], 2)).json
    client.post(f"{API}/market/orders/{first['id']}/cancel",
                headers=keyed(world.headers("res_a1")), json={"reason": "买错了"})
    assert place(client, world, (world["eggs"], 2)).status_code == 201


def test_an_unknown_item_is_refused_and_moves_nothing(client, shop):
    world = shop
    before = journal_state(world)
    r = place(client, world, (world["rice"], 1), (987_654, 1))
    assert "lines" in refused(r, 422, "validation_error")["fields"]
    assert journal_state(world) == before and orders_of(world) == 0


def test_another_communitys_item_is_refused_and_moves_nothing(client, shop):
    world = shop
    world.ids["b1_rice"] = goods(world, "b1大米", price=1, stock=5, community="b1").id
    before = journal_state(world)
    r = place(client, world, (world["rice"], 1), (world["b1_rice"], 1))
    assert "lines" in refused(r, 422, "validation_error")["fields"]
    assert journal_state(world) == before and orders_of(world) == 0


def test_an_item_not_on_offer_is_refused(client, shop):
    world = shop
    r = client.patch(f"{API}/market/items/{world['oil']}", headers=world.headers("clerk_a1"),
                     json={"name": "食用油", "category": "粮油", "kind": "goods",
                           "points_price": 15, "is_active": False})
    assert r.status_code == 200 and r.json["is_active"] is False, r.json
    later = goods(world, "月饼", price=5, stock=5,
                  visible_from=datetime.now(UTC) + timedelta(days=30))
    catalogue = client.get(f"{API}/market/items", headers=world.headers("res_a1"),
                           query_string={"community_id": world["a1"]}).json
    assert {i["id"] for i in catalogue["items"]} == {world["rice"]}
    staff = client.get(f"{API}/market/items", headers=world.headers("clerk_a1"),
                       query_string={"community_id": world["a1"]}).json
    assert {i["id"] for i in staff["items"]} == {world["rice"], world["oil"], later.id}
    before = journal_state(world)
    for item_id in (world["oil"], later.id):
        r = place(client, world, (item_id, 1))
        assert "lines" in refused(r, 422, "validation_error")["fields"]
    assert journal_state(world) == before


@pytest.mark.parametrize("lines", [
    pytest.param([], id="an empty basket"),
    pytest.param([{"item_id": 1, "quantity": 0}], id="a quantity of zero"),
    pytest.param([{"item_id": 1, "quantity": -1}], id="a negative quantity"),
    pytest.param([{"item_id": 1, "quantity": 100}], id="a quantity over 99"),
    pytest.param([{"item_id": 1, "quantity": 10**12}], id="a huge quantity"),
    pytest.param([{"item_id": 1}], id="no quantity"),
    pytest.param([{"item_id": 1, "quantity": 1}] * (market.MAX_LINES + 1), id="too many lines"),
])
def test_a_malformed_basket_is_refused_with_422(client, shop, lines):
    world = shop
    before = journal_state(world)
    lines = [{**line, "item_id": world["rice"]} for line in lines]
    r = client.post(f"{API}/market/orders", headers=keyed(world.headers("res_a1")),
                    json={"community_id": world["a1"], "lines": lines})
    refused(r, 422, "validation_error")
    assert journal_state(world) == before


@pytest.mark.parametrize("item_id", [2**31, 2**40], ids=["2**31", "2**40"])
def test_a_huge_item_id_is_refused_not_crashed(client, shop, item_id):
    world = shop
    before = journal_state(world)
    r = place(client, world, (item_id, 1))
    assert r.status_code in (404, 422), r.json
    refused(r, r.status_code)
    r = client.get(f"{API}/market/items/{item_id}", headers=world.headers("res_a1"))
    refused(r, 404)
    assert journal_state(world) == before


def test_a_resident_of_another_community_cannot_order_here(client, shop):
    world = shop
    before = journal_state(world)
    refused(place(client, world, (world["rice"], 1), who="res_b1"), 403, "forbidden")
    assert journal_state(world) == before


# ---- idempotency of orders ----------------------------------------------------------------------

def test_a_retried_order_returns_the_first_order_and_debits_once(client, shop):
    world = shop
    idempotency_key = key("order")
    first = place(client, world, (world["rice"], 2), idempotency_key=idempotency_key)
    assert first.status_code == 201, first.json
    after_first = journal_state(world)
    again = place(client, world, (world["rice"], 2), idempotency_key=idempotency_key)
    assert again.status_code == 201, again.json
    assert again.json["id"] == first.json["id"] and again.json["code"] == first.json["code"]
    assert journal_state(world) == after_first
    assert balance(world) == 80 and stock(world, world["rice"]) == 3 and orders_of(world) == 1


def test_an_order_key_reused_for_another_basket_is_refused_with_409(client, shop):
    world = shop
    idempotency_key = key("order")
    assert place(client, world, (world["rice"], 1),
                 idempotency_key=idempotency_key).status_code == 201
    before = journal_state(world)
    r = place(client, world, (world["oil"], 1), idempotency_key=idempotency_key)
    refused(r, 409, "idempotency_key_reused")
    assert journal_state(world) == before and balance(world) == 90


def test_a_retried_cancellation_refunds_once(client, shop):
    world = shop
    placed = place(client, world, (world["rice"], 1)).json
    headers = keyed(world.headers("res_a1"), key("cancel"))
    url = f"{API}/market/orders/{placed['id']}/cancel"
    first = client.post(url, headers=headers, json={"reason": "不要了"})
    after_first = journal_state(world)
    again = client.post(url, headers=headers, json={"reason": "不要了"})
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json["refund_transfer_id"] == first.json["refund_transfer_id"]
    assert journal_state(world) == after_first and balance(world) == 100


def test_supermarket_requests_that_move_points_or_money_need_an_idempotency_key(client, shop):
    world = shop
    placed = place(client, world, (world["rice"], 1)).json
    before = journal_state(world)
    requests = [
        ("res_a1", "market/orders", {"community_id": world["a1"],
                                     "lines": [{"item_id": world["rice"], "quantity": 1}]}),
        ("clerk_a1", "market/orders", {"community_id": world["a1"],
                                       "user_id": world.users["res_a1"],
                                       "lines": [{"item_id": world["rice"], "quantity": 1}]}),
        ("res_a1", f"market/orders/{placed['id']}/cancel", {"reason": "不要了"}),
        ("sec_a1", f"market/items/{world['rice']}/purchases",
         {"quantity": 1, "cost_fen": 100, "reason": "补货"}),
        ("sec_a1", "market/fund/donations", {"community_id": world["a1"], "amount_fen": 100,
                                             "donor_type": "other", "donor_name": "张",
                                             "reason": "捐款"}),
    ]
    for who, path, body in requests:
        r = client.post(f"{API}/{path}", headers=world.headers(who), json=body)
        assert "idempotency_key" in refused(r, 422, "validation_error")["fields"], path
    assert journal_state(world) == before


# ---- the catalogue ------------------------------------------------------------------------------

def test_a_clerk_adds_goods_and_a_service_to_the_catalogue(client, world):
    clerk = world.headers("clerk_a1")
    r = client.post(f"{API}/market/items", headers=clerk, json={
        "community_id": world["a1"], "name": "理发", "category": "服务", "kind": "service",
        "points_price": 20, "monthly_limit": 1, "value_fen": 1500})
    assert r.status_code == 201, r.json
    assert r.json["stock"] is None and r.json["monthly_limit"] == 1
    r = client.post(f"{API}/market/items", headers=clerk, json={
        "community_id": world["a1"], "name": "洗衣液", "category": "日用", "kind": "goods",
        "points_price": 8})
    assert r.status_code == 201, r.json
    assert r.json["stock"] == 0


def test_a_service_has_no_stock_but_keeps_its_monthly_limit(client, world):
    fund_wallet(world, "res_a1", 100)
    haircut = goods(world, "理发", price=20, stock=0, kind="service", monthly_limit=1)
    r = place(client, world, (haircut.id, 1))
    assert r.status_code == 201, r.json
    assert stock(world, haircut.id) is None
    refused(place(client, world, (haircut.id, 1)), 409, "limit_reached")
    assert balance(world) == 80


@pytest.mark.parametrize("change", [
    pytest.param({"points_price": 0}, id="a price of zero"),
    pytest.param({"points_price": -5}, id="a negative price"),
    pytest.param({"points_price": 10**7}, id="a huge price"),
    pytest.param({"kind": "gift"}, id="an unknown kind"),
    pytest.param({"name": ""}, id="no name"),
    pytest.param({"value_fen": -1}, id="a negative value"),
    pytest.param({"monthly_limit": 0}, id="a monthly limit of zero"),
    pytest.param({"visible_from": "2026-12-01T00:00:00+08:00",
                  "visible_until": "2026-11-01T00:00:00+08:00"}, id="a window that ends first"),
])
def test_an_item_with_bad_details_is_refused(client, world, change):
    before = journal_state(world)
    body = {"community_id": world["a1"], "name": "洗衣液", "category": "日用", "kind": "goods",
            "points_price": 8, **change}
    r = client.post(f"{API}/market/items", headers=world.headers("clerk_a1"), json=body)
    refused(r, 422, "validation_error")
    assert journal_state(world) == before


def test_a_clerk_changes_one_detail_of_an_item(client, shop):
    world = shop
    r = client.patch(f"{API}/market/items/{shop['rice']}", headers=world.headers("clerk_a1"),
                     json={"points_price": 12})
    assert r.status_code == 200, r.json
    assert r.json["points_price"] == 12 and r.json["name"] == "大米"


def test_stock_cannot_be_set_by_changing_the_item(client, shop):
    world = shop
    before = journal_state(world)
    r = client.patch(f"{API}/market/items/{shop['rice']}", headers=world.headers("clerk_a1"),
                     json={"name": "大米", "category": "粮油", "kind": "goods",
                           "points_price": 12, "stock": 999})
    assert "stock" in refused(r, 422, "validation_error")["fields"]
    assert journal_state(world) == before and stock(world, world["rice"]) == 5


def test_an_item_cannot_change_between_goods_and_service(client, shop):
    world = shop
    r = client.patch(f"{API}/market/items/{shop['rice']}", headers=world.headers("clerk_a1"),
                     json={"name": "大米", "category": "粮油", "kind": "service",
                           "points_price": 10})
    assert "kind" in refused(r, 422, "validation_error")["fields"]
    assert stock(world, world["rice"]) == 5


# ---- stock: donations, purchases, counts ---------------------------------------------------------

def donate_money(client, world, amount_fen: int, idempotency_key: str | None = None, **extra):
    body = {"community_id": world["a1"], "amount_fen": amount_fen, "donor_type": "unit",
            "unit_id": world["x"], "reason": "共建资金", **extra}
    return client.post(f"{API}/market/fund/donations", json=body,
                       headers=keyed(world.headers("sec_a1"), idempotency_key))


def test_stock_comes_in_by_donation_and_purchase_and_a_count_records_the_difference(
        client, shop):
    world = shop
    clerk, sec = world.headers("clerk_a1"), world.headers("sec_a1")
    rice = world["rice"]
    r = client.post(f"{API}/market/items/{rice}/donations", headers=clerk,
                    json={"quantity": 10, "value_fen": 25000, "unit_id": world["x"],
                          "reason": "单位捐赠"})
    assert r.status_code == 201, r.json
    assert (r.json["kind"], r.json["delta"], r.json["unit_id"], r.json["value_fen"]) == (
        "donation", 10, world["x"], 25000)
    assert donate_money(client, world, 50_000).status_code == 201
    r = client.post(f"{API}/market/items/{rice}/purchases", headers=keyed(sec),
                    json={"quantity": 4, "cost_fen": 10_000, "reason": "采购"})
    assert r.status_code == 201, r.json
    assert r.json["kind"] == "purchase" and r.json["fund_transfer_id"]
    assert stock(world, rice) == 19
    r = client.post(f"{API}/market/stock-counts", headers=clerk, json={
        "community_id": world["a1"], "reason": "月末盘点：两袋受潮报废",
        "lines": [{"item_id": rice, "counted": 17}, {"item_id": world["oil"], "counted": 3}]})
    assert r.status_code == 201, r.json
    assert sorted((line["item_id"], line["expected"], line["counted"], line["difference"])
                  for line in r.json["lines"]) == [(rice, 19, 17, -2), (world["oil"], 3, 3, 0)]
    assert stock(world, rice) == 17
    moves = client.get(f"{API}/market/stock-movements", headers=clerk,
                       query_string={"community_id": world["a1"], "item_id": rice}).json
    assert [(m["kind"], m["delta"]) for m in moves["items"]] == [
        ("count", -2), ("purchase", 4), ("donation", 10), ("donation", 5)]
    from_x = client.get(f"{API}/market/stock-movements", headers=world.headers("admin_a"),
                        query_string={"community_id": world["a1"], "unit_id": world["x"]}).json
    assert [m["value_fen"] for m in from_x["items"]] == [25000]
    books_ok(world)


@pytest.mark.parametrize(("body", "status"), [
    pytest.param({"quantity": 0, "value_fen": 0, "donor_name": "张"}, 422, id="zero goods"),
    pytest.param({"quantity": -3, "value_fen": 0, "donor_name": "张"}, 422, id="negative goods"),
    pytest.param({"quantity": 10**9, "value_fen": 0, "donor_name": "张"}, 422, id="huge goods"),
    pytest.param({"quantity": 1, "value_fen": -1, "donor_name": "张"}, 422,
                 id="a negative value"),
    pytest.param({"quantity": 1, "value_fen": 0}, 422, id="no donor"),
    pytest.param({"quantity": 1, "value_fen": 0, "unit_id": 987_654}, 404,
                 id="an unknown unit"),
])
def test_a_bad_stock_donation_is_refused(client, shop, body, status):
    world = shop
    before = journal_state(world)
    r = client.post(f"{API}/market/items/{world['rice']}/donations",
                    headers=world.headers("clerk_a1"), json=body)
    refused(r, status)
    assert journal_state(world) == before


def test_a_service_takes_no_stock_donation(client, world):
    haircut = goods(world, "理发", price=20, stock=0, kind="service")
    before = journal_state(world)
    r = client.post(f"{API}/market/items/{haircut.id}/donations",
                    headers=world.headers("clerk_a1"),
                    json={"quantity": 1, "value_fen": 0, "donor_name": "张"})
    refused(r, 422, "validation_error")
    assert journal_state(world) == before


def test_a_purchase_beyond_the_fund_is_refused(client, shop):
    world = shop
    assert donate_money(client, world, 1000).status_code == 201
    before = journal_state(world)
    r = client.post(f"{API}/market/items/{world['rice']}/purchases",
                    headers=keyed(world.headers("sec_a1")),
                    json={"quantity": 1, "cost_fen": 1001, "reason": "采购"})
    refused(r, 409, "insufficient_points")
    assert journal_state(world) == before and stock(world, world["rice"]) == 5


def test_the_clerk_records_stock_bought_with_the_fund_and_a_resident_cannot(client, shop):
    world = shop
    assert donate_money(client, world, 10_000).status_code == 201
    before = journal_state(world)
    r = client.post(f"{API}/market/items/{world['rice']}/purchases",
                    headers=keyed(world.headers("res_a1")),
                    json={"quantity": 1, "cost_fen": 100, "reason": "采购"})
    refused(r, 403, "forbidden")
    assert journal_state(world) == before
    r = client.post(f"{API}/market/items/{world['rice']}/purchases",
                    headers=keyed(world.headers("clerk_a1")),
                    json={"quantity": 1, "cost_fen": 100, "reason": "采购"})
    assert r.status_code == 201 and stock(world, world["rice"]) == 6


@pytest.mark.parametrize("lines", [
    pytest.param(lambda w: [{"item_id": w["rice"], "counted": -1}], id="a negative count"),
    pytest.param(lambda w: [{"item_id": w["rice"], "counted": 3},
                            {"item_id": w["rice"], "counted": 4}], id="an item counted twice"),
    pytest.param(lambda w: [{"item_id": 987_654, "counted": 3}], id="an unknown item"),
    pytest.param(lambda w: [{"item_id": w["rice"], "counted": 3},
                            {"item_id": w["b1_rice"], "counted": 0}],
                 id="another community's item"),
    pytest.param(lambda w: [{"item_id": w["haircut"], "counted": 1}], id="a service"),
    pytest.param(lambda w: [], id="nothing counted"),
])
def test_a_bad_stock_count_is_refused_and_records_nothing(client, shop, lines):
    world = shop
    world.ids["b1_rice"] = goods(world, "b1大米", price=1, stock=5, community="b1").id
    world.ids["haircut"] = goods(world, "理发", price=20, stock=0, kind="service").id
    before = journal_state(world)
    r = client.post(f"{API}/market/stock-counts", headers=world.headers("clerk_a1"),
                    json={"community_id": world["a1"], "reason": "盘点", "lines": lines(world)})
    refused(r, 422, "validation_error")
    assert journal_state(world) == before


# ---- the community fund -------------------------------------------------------------------------

def test_a_money_donation_brings_its_matching_grant_and_the_fund_traces_every_fen(client, shop):
    world = shop
    sec = world.headers("sec_a1")
    r = client.patch(f"{API}/communities/{world['a1']}/love-bank-settings", headers=sec,
                     json={"fund_match_percent": 25})
    assert r.status_code == 200 and r.json["fund_match_percent"] == 25, r.json
    r = donate_money(client, world, 10_000)
    assert r.status_code == 201, r.json
    assert r.json["asset"] == "fen" and r.json["kind"] == "donation"
    assert r.json["detail"] == {"donation_fen": 10_000, "matching_grant_fen": 2_500,
                                "match_percent": 25}
    assert sorted(e["amount"] for e in r.json["entries"]) == [-10_000, -2_500, 12_500]
    r = client.post(f"{API}/market/fund/donations", headers=keyed(sec), json={
        "community_id": world["a1"], "amount_fen": 999, "donor_type": "resident",
        "donor_name": "李大爷", "reason": "个人捐款"})
    assert r.status_code == 201 and r.json["detail"]["matching_grant_fen"] == 249, r.json
    r = client.post(f"{API}/market/items/{world['rice']}/purchases", headers=keyed(sec),
                    json={"quantity": 2, "cost_fen": 3_000, "reason": "采购"})
    assert r.status_code == 201, r.json
    fund = client.get(f"{API}/market/fund", headers=world.headers("admin_a"),
                      query_string={"community_id": world["a1"]})
    assert fund.status_code == 200, fund.json
    assert fund.json == {"community_id": world["a1"], "balance_fen": 12_500 + 1_248 - 3_000,
                         "donations_fen": 10_999, "matching_grants_fen": 2_749,
                         "purchases_fen": 3_000}
    books_ok(world)


def test_a_retried_money_donation_is_counted_once(client, world):
    idempotency_key = key("fund")
    first = donate_money(client, world, 5_000, idempotency_key=idempotency_key)
    again = donate_money(client, world, 5_000, idempotency_key=idempotency_key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["id"] == first.json["id"]
    fund = client.get(f"{API}/market/fund", headers=world.headers("sec_a1"),
                      query_string={"community_id": world["a1"]}).json
    assert fund["balance_fen"] == 5_000
    refused(donate_money(client, world, 6_000, idempotency_key=idempotency_key), 409,
            "idempotency_key_reused")


@pytest.mark.parametrize(("change", "status"), [
    pytest.param({"amount_fen": 0}, 422, id="zero"),
    pytest.param({"amount_fen": -100}, 422, id="negative"),
    pytest.param({"amount_fen": 10**12}, 422, id="huge"),
    pytest.param({"donor_type": "bank"}, 422, id="an unknown kind of donor"),
    pytest.param({"unit_id": None}, 422, id="a unit donation without a unit"),
    pytest.param({"unit_id": 987_654}, 404, id="an unknown unit"),
    pytest.param({"donor_type": "resident", "unit_id": None}, 422,
                 id="a resident without a name"),
    pytest.param({"reason": ""}, 422, id="no reason"),
])
def test_a_bad_money_donation_is_refused_and_moves_nothing(client, world, change, status):
    before = journal_state(world)
    body = {"community_id": world["a1"], "amount_fen": 1000, "donor_type": "unit",
            "unit_id": world["x"], "reason": "共建资金", **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = client.post(f"{API}/market/fund/donations", headers=keyed(world.headers("sec_a1")),
                    json=body)
    refused(r, status)
    assert journal_state(world) == before
