"""The subdistrict admin's dashboard and red list, and the clerk's stock, in a real browser:
the demo admin reads the figures with their charts on a desktop (and the same page fits a
phone), then opens the red list; the demo clerk takes in donated goods and counts the stock,
finding one short. Screenshots of each step (see conftest.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.test_journeys import open_menu, sign_in

pytestmark = pytest.mark.e2e

ADMIN, CLERK = "admin.jincheng", "clerk.dongcheng"


def demo_months() -> str:
    """The query for the months the demo's history spans (it is built over the 120 days before
    it was seeded), whatever today is."""
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return f"from={(today - timedelta(days=130)):%Y-%m}&to={today:%Y-%m}"


def accept_next_dialog(page: Page) -> list[str]:
    """Say yes to the next confirm() and keep its question."""
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    return asked


def test_the_subdistrict_admin_reads_the_dashboard_charts_and_the_red_list(open_page, shot):
    page = open_page(DESKTOP)
    sign_in(page, ADMIN)
    expect(page).to_have_url(re.compile(r"/subdistrict$"))
    page.goto(f"/subdistrict?{demo_months()}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("金城街道")
    expect(page.get_by_test_id("tile-claimed")).to_have_text(re.compile(r"^\s*[1-9]\d*\s*$"))
    for key in ("month", "community", "unit"):
        chart = page.get_by_test_id(f"chart-{key}").locator("svg")
        expect(chart).to_be_visible()
        assert chart.locator("rect.reactive").count() > 0, f"no bars in the {key} chart"
        expect(page.get_by_test_id(f"table-{key}").locator("tbody tr").first).to_be_visible()
    svg = page.get_by_test_id("chart-month").inner_html()
    assert set(re.findall(r"https?://[^\"' )<]+", svg)) == {"http://www.w3.org/2000/svg"}
    shot(page, "dashboard")

    page.locator('a[href="/subdistrict/ranking"]').click()
    expect(page).to_have_url(re.compile(r"/subdistrict/ranking$"))
    page.goto(f"/subdistrict/ranking?{demo_months()}")
    expect(page.get_by_test_id("rule")).to_be_visible()
    expect(page.get_by_test_id("rank-1")).to_be_visible()
    shot(page, "red-list")

    phone = open_page(PHONE)
    sign_in(phone, ADMIN)
    expect(phone.get_by_test_id("chart-month").locator("svg")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360  # nothing spills
    shot(phone, "dashboard-phone")
    open_menu(phone)
    phone.locator('a[href="/subdistrict/ranking"]').click()
    expect(phone.get_by_test_id("rule")).to_be_visible()
    shot(phone, "red-list-phone")


def test_the_clerk_takes_in_donated_goods_and_counts_one_short(open_page, shot):
    page = open_page(DESKTOP)
    sign_in(page, CLERK)
    page.locator('a[href="/counter/stock"]').click()
    expect(page).to_have_url(re.compile(r"/counter/stock$"))
    donation = page.get_by_test_id("donation-form")
    first_goods = donation.locator("#item_id option:not([value=''])").first
    item_id = first_goods.get_attribute("value")
    donation.locator("#item_id").select_option(item_id)
    donation.locator("#quantity").fill("6")
    donation.locator("#value_yuan").fill("59.40")
    donation.locator("#donor_type").select_option("unit")
    donation.locator("#unit_id").select_option(index=1)
    donation.locator("#reason").fill("共建单位送来")
    shot(page, "donation-form")
    donation.get_by_role("button").click()
    expect(page.locator(".alert-success")).to_contain_text("6")
    shot(page, "donated")

    page.locator('a[href="/counter/count"]').click()
    expected = int(page.get_by_test_id(f"expected-{item_id}").inner_text())
    page.locator(f"#counted-{item_id}").fill(str(expected - 1))
    page.locator("#reason").fill("月底盘点")
    shot(page, "count-form")
    asked = accept_next_dialog(page)
    page.get_by_test_id("record-count").click()
    differences = page.get_by_test_id("differences")
    expect(differences).to_be_visible()
    assert asked and asked[0]
    expect(differences.get_by_test_id("difference")).to_have_text("-1")
    expect(page.get_by_test_id(f"expected-{item_id}")).to_have_text(str(expected - 1))
    shot(page, "count-differences")

    page.locator('a[href="/counter/movements"]').click()
    rows = page.get_by_test_id("movements").locator("tbody tr")
    expect(rows.first).to_contain_text("-1")
    shot(page, "movements")
