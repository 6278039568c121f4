"""The supermarket clerk's pages: redeeming at the counter for a resident without a phone (found
by name or phone, the phone shown masked; asked first; handed over at once), taking in donated
stock (and stock bought with the community fund, never more than it holds), the stock count
with its differences, and the stock movements. Refused input changes nothing."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW
from tests.factories import make_user
from tests.integration.lovebank_helpers import (
    balance,
    fund_wallet,
    goods,
    journal_state,
    key,
    stock,
)
from tests.pages.helpers import alerts, csrf, field_error, sign_in
from web.models import MarketOrder, StockMovement
from web.services import market

pytestmark = pytest.mark.db


def rows_of(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def movements(world) -> int:
    return world.session.scalar(select(func.count()).select_from(StockMovement))


@pytest.fixture
def old_zhang(world):
    """A resident of a1 without a smartphone, with 50 points."""
    user = make_user(world.session, "zhang", {"role": "resident", "community_id": world["a1"]},
                     display_name="张桂兰", phone="13912345678")
    world.users["zhang"] = user.id
    fund_wallet(world, "zhang", 50)
    return user


# ---- redeeming for a resident -----------------------------------------------------------------

def test_the_clerk_finds_a_resident_by_name_or_phone_and_sees_the_phone_masked(
        client, world, old_zhang):
    make_user(world.session, "far", {"role": "resident", "community_id": world["b1"]},
              display_name="张远方", phone="13700001111")
    sign_in(client, "clerk_a1")
    found = client.get("/counter/redeem?q=张")
    assert "张桂兰" in found.text and "139****5678" in found.text
    assert "13912345678" not in found.text
    assert "张远方" not in found.text  # another community's resident
    assert "张桂兰" in client.get("/counter/redeem?q=5678").text
    assert "没有找到相符的居民" in client.get("/counter/redeem?q=李四").text


def test_redeeming_asks_first_then_hands_over_at_once_and_once_only(client, world, old_zhang):
    item = goods(world, price=10, stock=5)
    sign_in(client, "clerk_a1")
    page = client.get(f"/counter/redeem?user_id={old_zhang.id}")
    assert page.status_code == 200 and 'data-testid="resident">张桂兰<' in page.text
    form = {"user_id": str(old_zhang.id), f"qty-{item.id}": "2", "csrf_token": csrf(page.text),
            "order_key": re.search(r'name="order_key" value="([^"]+)"', page.text).group(1)}
    asked = client.post("/counter/redeem", data=form)
    assert "请确认" in asked.text and world.session.query(MarketOrder).count() == 0
    done = client.post("/counter/redeem", data={**form, "confirmed": "1"}, follow_redirects=True)
    assert "已交给 张桂兰,扣 20 积分。" in alerts(done.text)
    assert 'data-testid="handed"' in done.text and "大米 × 2" in done.text
    order = world.session.query(MarketOrder).one()
    assert (order.status, order.at_counter, order.user_id) == ("collected", True, old_zhang.id)
    assert balance(world, "zhang") == 30 and stock(world, item.id) == 3
    again = client.post("/counter/redeem", data={**form, "confirmed": "1"}, follow_redirects=True)
    assert again.status_code == 200 and world.session.query(MarketOrder).count() == 1
    assert balance(world, "zhang") == 30


def test_redeeming_beyond_the_residents_points_says_so_and_moves_nothing(
        client, world, old_zhang):
    item = goods(world, price=40, stock=5)
    sign_in(client, "clerk_a1")
    page = client.get(f"/counter/redeem?user_id={old_zhang.id}")
    before = journal_state(world)
    refused = client.post("/counter/redeem", data={
        "user_id": str(old_zhang.id), f"qty-{item.id}": "2", "order_key": key("page"),
        "confirmed": "1", "csrf_token": csrf(page.text)})
    assert refused.status_code == 422
    assert "积分不足。 可用 50 分。" in alerts(refused.text)
    assert re.search(rf'id="qty-{item.id}"[^>]*value="2"', refused.text)  # kept as typed
    assert journal_state(world) == before


def test_a_bad_quantity_is_shown_under_its_field(client, world, old_zhang):
    item = goods(world, price=10, stock=5)
    sign_in(client, "clerk_a1")
    page = client.get(f"/counter/redeem?user_id={old_zhang.id}")
    before = journal_state(world)
    refused = client.post("/counter/redeem", data={
        "user_id": str(old_zhang.id), f"qty-{item.id}": "两个", "order_key": key("page"),
        "confirmed": "1", "csrf_token": csrf(page.text)})
    assert refused.status_code == 422
    assert field_error(refused.text, f"qty-{item.id}") == "请填写 0 到 99 之间的数。"
    nothing = client.post("/counter/redeem", data={
        "user_id": str(old_zhang.id), "order_key": key("page"), "confirmed": "1",
        "csrf_token": csrf(page.text)})
    assert nothing.status_code == 422 and "请至少选择一件" in nothing.text
    assert journal_state(world) == before


def test_a_resident_of_another_community_cannot_be_served(client, world):
    item = goods(world, price=10, stock=5)
    fund_wallet(world, "res_b1", 50, community="b1")
    page = sign_in(client, "clerk_a1") and client.get(f"/counter/redeem?user_id="
                                                      f"{world.users['res_b1']}")
    assert 'data-testid="resident"' not in page.text  # back to finding someone
    before = journal_state(world)
    client.post("/counter/redeem", data={
        "user_id": str(world.users["res_b1"]), f"qty-{item.id}": "1", "order_key": key("page"),
        "confirmed": "1", "csrf_token": csrf(page.text)})
    assert journal_state(world) == before


@pytest.mark.parametrize("who", ["res_a1", "unit_x", "admin_a"])
def test_people_who_do_not_run_a_supermarket_cannot_open_the_stock_pages(client, world, who):
    sign_in(client, who)
    for path in ("/counter/redeem", "/counter/stock", "/counter/count", "/counter/movements"):
        assert client.get(path).status_code == 403


def test_the_clerks_menu_has_the_stock_pages_beside_the_counter(client, world):
    page = sign_in(client, "clerk_a1")
    for path in ("/counter", "/counter/redeem", "/counter/stock", "/counter/count",
                 "/counter/movements"):
        assert f'href="{path}"' in page.text


# ---- stock in ------------------------------------------------------------------------------------

def test_donated_goods_from_a_unit_come_in_with_their_value(client, world):
    item = goods(world, stock=0)
    page = sign_in(client, "clerk_a1") and client.get("/counter/stock")
    assert f'<option value="{item.id}"' in page.text
    assert 'data-testid="purchase-form"' in page.text  # the clerk records purchases too
    done = client.post("/counter/stock/donation", data={
        "item_id": str(item.id), "quantity": "10", "value_yuan": "12.50", "donor_type": "unit",
        "unit_id": str(world["x"]), "reason": "中秋捐赠", "csrf_token": csrf(page.text)},
        follow_redirects=True)
    assert "已入库:库存增加 10。" in alerts(done.text)
    moved = world.session.query(StockMovement).filter_by(item_id=item.id).one()
    assert (moved.delta, moved.kind, moved.unit_id, moved.value_fen) == (10, "donation",
                                                                          world["x"], 1250)
    assert stock(world, item.id) == 10


def test_a_residents_donation_needs_their_name(client, world):
    item = goods(world, stock=0)
    page = sign_in(client, "clerk_a1") and client.get("/counter/stock")
    before = movements(world)
    refused = client.post("/counter/stock/donation", data={
        "item_id": str(item.id), "quantity": "3", "value_yuan": "30", "donor_type": "resident",
        "donor_name": " ", "csrf_token": csrf(page.text)})
    assert refused.status_code == 422 and field_error(refused.text, "donor_name")
    done = client.post("/counter/stock/donation", data={
        "item_id": str(item.id), "quantity": "3", "value_yuan": "30", "donor_type": "resident",
        "donor_name": "李大爷", "csrf_token": csrf(page.text)}, follow_redirects=True)
    assert alerts(done.text) and movements(world) == before + 1
    assert world.session.query(StockMovement).filter_by(donor_name="李大爷").one().value_fen \
        == 3000


def test_a_donation_form_with_mistakes_shows_each_under_its_field_and_takes_nothing_in(
        client, world):
    item = goods(world, stock=0)
    page = sign_in(client, "clerk_a1") and client.get("/counter/stock")
    before = movements(world)
    refused = client.post("/counter/stock/donation", data={
        "item_id": str(item.id), "quantity": "", "value_yuan": "十元", "donor_type": "unit",
        "unit_id": "", "csrf_token": csrf(page.text)})
    assert refused.status_code == 422
    assert field_error(refused.text, "quantity") == "请填写此项。"
    assert field_error(refused.text, "value_yuan") == "请填写金额(元),例如 25 或 12.50。"
    assert field_error(refused.text, "unit_id") == "请选择捐赠的单位。"
    assert 'value="十元"' in refused.text  # kept as typed
    too_many = client.post("/counter/stock/donation", data={
        "item_id": str(item.id), "quantity": "0", "value_yuan": "1", "donor_type": "unit",
        "unit_id": str(world["x"]), "csrf_token": csrf(page.text)})
    assert too_many.status_code == 422 and field_error(too_many.text, "quantity")
    assert movements(world) == before and stock(world, item.id) == 0


def test_the_clerk_cannot_buy_more_than_the_fund_holds(client, world):
    item = goods(world, stock=0)
    page = sign_in(client, "clerk_a1") and client.get("/counter/stock")
    before = journal_state(world)
    refused = client.post("/counter/stock/purchase", data={
        "buy_item_id": str(item.id), "buy_quantity": "5", "cost_yuan": "50",
        "buy_reason": "补货", "idempotency_key": key("buy"), "confirmed": "1",
        "csrf_token": csrf(page.text)})
    assert refused.status_code == 422 and alerts(refused.text)
    assert journal_state(world) == before and stock(world, item.id) == 0


def test_another_communitys_clerk_cannot_buy_for_this_supermarket(client, world):
    from tests.factories import make_user

    make_user(world.session, "clerk_b1x", {"role": "clerk", "community_id": world["b1"]})
    item = goods(world, stock=0)
    page = sign_in(client, "clerk_b1x") and client.get("/counter/stock")
    before = journal_state(world)
    client.post("/counter/stock/purchase", data={
        "buy_item_id": str(item.id), "buy_quantity": "5", "cost_yuan": "50",
        "buy_reason": "补货", "idempotency_key": key("buy"), "confirmed": "1",
        "csrf_token": csrf(page.text)})
    assert journal_state(world) == before and stock(world, item.id) == 0


def test_the_secretary_buys_stock_from_the_fund_once_whatever_the_resends(client, world):
    item = goods(world, stock=0)
    market.donate_money(world.session, actor=world.actor("sec_a1"), community_id=world["a1"],
                        amount_fen=100_00, donor_type="other", donor_name="热心人",
                        reason="捐款", idempotency_key=key("money"), now=NOW)
    page = sign_in(client, "sec_a1") and client.get("/counter/stock")
    buy_key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)
    form = {"buy_item_id": str(item.id), "buy_quantity": "5", "cost_yuan": "40",
            "buy_reason": "补货", "idempotency_key": buy_key, "confirmed": "1",
            "csrf_token": csrf(page.text)}
    bad = client.post("/counter/stock/purchase", data={**form, "cost_yuan": "0",
                                                        "buy_reason": ""})
    assert bad.status_code == 422
    assert field_error(bad.text, "cost_yuan") and field_error(bad.text, "buy_reason")
    assert f'value="{buy_key}"' in bad.text  # the same key, so a later send is still one
    done = client.post("/counter/stock/purchase", data=form, follow_redirects=True)
    assert "采购入库:库存增加 5" in " ".join(alerts(done.text))
    client.post("/counter/stock/purchase", data=form, follow_redirects=True)
    assert stock(world, item.id) == 5
    bought = world.session.query(StockMovement).filter_by(kind="purchase").one()
    assert bought.value_fen == 4000
    assert market.fund_summary(world.session, actor=world.actor("sec_a1"),
                               community_id=world["a1"])["balance_fen"] == 60_00


# ---- the stock count -------------------------------------------------------------------------------

def test_a_count_asks_first_then_records_the_differences_and_shows_them(client, world):
    rice = goods(world, "大米", stock=5)
    oil = goods(world, "食用油", stock=3)
    page = sign_in(client, "clerk_a1") and client.get("/counter/count")
    assert re.search(rf'data-testid="expected-{rice.id}">5<', page.text)
    form = {f"counted-{rice.id}": "4", f"counted-{oil.id}": "3", "reason": "月底盘点",
            "csrf_token": csrf(page.text)}
    asked = client.post("/counter/count", data=form)
    assert "请确认" in asked.text and stock(world, rice.id) == 5
    done = client.post("/counter/count", data={**form, "confirmed": "1"}, follow_redirects=True)
    assert "盘点已记录。" in alerts(done.text)
    shown = re.search(r'data-testid="differences">(.*?)</section>', done.text, re.S).group(1)
    assert "有 1 种商品和账上不一致" in shown
    assert re.findall(r'data-testid="difference">([^<]+)<', shown) == ["-1", "0"]
    assert stock(world, rice.id) == 4 and stock(world, oil.id) == 3
    adjustment = world.session.query(StockMovement).filter_by(kind="count").one()
    assert (adjustment.item_id, adjustment.delta, adjustment.reason) == (rice.id, -1, "月底盘点")


def test_a_count_with_mistakes_changes_nothing(client, world):
    rice = goods(world, "大米", stock=5)
    page = sign_in(client, "clerk_a1") and client.get("/counter/count")
    before = journal_state(world)
    refused = client.post("/counter/count", data={
        f"counted-{rice.id}": "-2", "reason": "", "confirmed": "1", "csrf_token": csrf(page.text)})
    assert refused.status_code == 422
    assert field_error(refused.text, f"counted-{rice.id}") == "请填写点到的数量(0 或以上)。"
    assert field_error(refused.text, "reason") == "请填写此项。"
    empty = client.post("/counter/count", data={"reason": "盘点", "confirmed": "1",
                                                 "csrf_token": csrf(page.text)})
    assert empty.status_code == 422 and "请至少填写一种商品的实点数" in empty.text
    assert journal_state(world) == before


def test_a_count_of_another_community_is_not_shown(client, world):
    other = goods(world, "面粉", stock=2, community="b1")
    count = market.count_stock(world.session, actor=world.actor("sec_b1"),
                               community_id=world["b1"],
                               lines=[{"item_id": other.id, "counted": 1}], reason="盘点", now=NOW)
    page = sign_in(client, "clerk_a1") and client.get(f"/counter/count?count_id={count.id}")
    assert 'data-testid="differences"' not in page.text and "面粉" not in page.text


# ---- stock movements ----------------------------------------------------------------------------

def test_the_movements_list_filters_and_downloads(client, world):
    rice = goods(world, "大米", stock=5)
    goods(world, "食用油", stock=3)
    goods(world, "面粉", stock=2, community="b1")
    sign_in(client, "clerk_a1")
    page = client.get("/counter/movements")
    assert page.status_code == 200 and "大米" in page.text and "食用油" in page.text
    assert "面粉" not in page.text
    only_rice = client.get(f"/counter/movements?item_id={rice.id}").text
    assert "食用油" not in re.search(r'data-testid="movements">(.*?)</table>', only_rice,
                                     re.S).group(1)
    assert "大米" not in re.search(r'data-testid="movements">(.*?)</table>',
                                  client.get("/counter/movements?kind=purchase").text,
                                  re.S).group(1)
    rows = rows_of(client.get("/counter/movements?format=csv").data)
    assert rows[0][:5] == ["ID", "时间", "物资", "类别", "变动"]
    assert sorted(r[2] for r in rows[1:]) == ["大米", "食用油"]
    assert {r[3] for r in rows[1:]} == {"捐赠"} and {r[4] for r in rows[1:]} == {"5", "3"}
    xlsx = client.get("/counter/movements?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_buying_stock_asks_first_and_spends_nothing_until_confirmed(client, world):
    item = goods(world, stock=0)
    market.donate_money(world.session, actor=world.actor("sec_a1"), community_id=world["a1"],
                        amount_fen=100_00, donor_type="other", donor_name="热心人",
                        reason="捐款", idempotency_key=key("money"), now=NOW)
    page = sign_in(client, "clerk_a1") and client.get("/counter/stock")
    before = journal_state(world)
    asked = client.post("/counter/stock/purchase", data={
        "buy_item_id": str(item.id), "buy_quantity": "5", "cost_yuan": "40",
        "buy_reason": "补货", "idempotency_key": key("buy"), "csrf_token": csrf(page.text)})
    assert "确定用社区基金支付这批采购" in asked.text
    assert journal_state(world) == before and stock(world, item.id) == 0
