"""The secretary's books through the pages: accounts, fund, goods and the journal with its
filter, pages and download; orders; nothing of another community."""

from __future__ import annotations

import csv
import io

import pytest

from tests.integration.lovebank_helpers import fund_wallet, goods
from tests.pages.helpers import sign_in

pytestmark = pytest.mark.db


def test_the_books_show_accounts_fund_goods_and_the_journal(client, world):
    goods(world, price=10, stock=3)
    fund_wallet(world, "res_a1", 50)
    sign_in(client, "sec_a1")
    page = client.get("/secretary/books")
    assert page.status_code == 200
    for words in ("爱心银行账户", "社区基金", "超市商品", "流水", "测试充值"):
        assert words in page.text
    assert 'data-testid="journal"' in page.text and "共 1 条" in page.text


def test_the_journal_filters_by_kind_and_downloads(client, world):
    fund_wallet(world, "res_a1", 50)
    sign_in(client, "sec_a1")
    none = client.get("/secretary/books?kind=redemption")
    assert "共 0 条" in none.text
    data = client.get("/secretary/books?format=csv").data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(data)))
    assert rows[0][0] == "编号" and len(rows) == 2 and rows[1][4] == "50"


def test_orders_are_listed_by_status_and_code(client, world):
    from tests.pages.helpers import csrf

    item = goods(world, price=10, stock=3)
    fund_wallet(world, "res_a1", 50)
    resident = client
    shop = sign_in(resident, "res_a1") and resident.get("/market")
    import re

    key = re.search(r'name="order_key" value="([^"]+)"', shop.text).group(1)
    resident.post("/market/order", data={f"qty-{item.id}": "1", "order_key": key,
                                         "csrf_token": csrf(shop.text)})
    from web.models import MarketOrder

    code = world.session.query(MarketOrder).one().code
    resident.post("/logout", data={"csrf_token": csrf(shop.text)})
    sign_in(client, "sec_a1")
    listed = client.get("/secretary/orders")
    assert code in listed.text and "res_a1" in listed.text
    assert code in client.get(f"/secretary/orders?q={code.lower()}").text
    assert code not in client.get("/secretary/orders?status=collected").text


def test_only_a_secretary_sees_the_books(client, world):
    sign_in(client, "res_a1")
    assert client.get("/secretary/books").status_code == 403
