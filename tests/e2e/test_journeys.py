"""Journeys through the pages in a real browser, as people make them: a resident orders on a
phone, the clerk hands the order over at the counter, someone switches to English, someone
mistypes a password. Each journey saves full-page screenshots (see conftest.py)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from seeds.demo import PASSWORD
from tests.e2e.conftest import DESKTOP, PHONE

pytestmark = pytest.mark.e2e

RESIDENT, CLERK, SECRETARY = "resident.zhang", "clerk.dongcheng", "secretary.dongcheng"
HAIRCUT = "义务理发"  # a service at 10 points in every demo supermarket
CODE = re.compile(r"^\s*\S{4,}\s*$")


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Fill the login form (by id, so it works in either language) and send it."""
    page.goto("/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("main").get_by_role("button").click()


def open_menu(page: Page) -> None:
    """On a phone the navigation is folded behind the menu button."""
    toggler = page.locator(".navbar-toggler")
    if toggler.is_visible():
        toggler.click()
        expect(page.locator("#nav")).to_be_visible()


def order_one_haircut(page: Page, shot) -> str:
    """The resident's journey on her phone, from signing in to the order's code; returns it."""
    sign_in(page, RESIDENT)
    expect(page).to_have_url(re.compile(r"/me/points$"))
    expect(page.get_by_role("heading", name="我的积分")).to_be_visible()
    balance = page.get_by_test_id("balance")
    expect(balance).to_have_text(re.compile(r"^\d+$"))
    before = int(balance.inner_text())
    shot(page, "points")

    open_menu(page)
    page.get_by_role("link", name="公益超市", exact=True).click()
    expect(page.get_by_role("heading", name="公益超市")).to_be_visible()
    haircut = page.locator(".list-group-item", has_text=HAIRCUT)
    haircut.get_by_role("spinbutton").fill("1")
    shot(page, "basket")

    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="兑换").click()
    expect(page).to_have_url(re.compile(r"/market/orders/\d+$"))
    assert asked == ["确定用积分兑换这些商品吗?"]
    expect(page.get_by_role("heading", name="我的兑换单")).to_be_visible()
    expect(page.get_by_test_id("status")).not_to_be_empty()
    expect(page.get_by_test_id("code")).to_have_text(CODE)
    code = page.get_by_test_id("code").inner_text().strip()
    expect(page.locator(".qr svg")).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"{HAIRCUT} × 1")
    shot(page, "order")

    page.goto("/me/points")
    expect(page.get_by_test_id("balance")).to_have_text(str(before - 10))
    return code


def test_a_resident_orders_a_haircut_on_her_phone_and_gets_a_code_and_qr(open_page, shot):
    # Her phone is set to English; the pages are Chinese until she chooses otherwise.
    page = open_page({**PHONE, "locale": "en-US"})
    code = order_one_haircut(page, shot)
    assert code


def test_the_clerk_hands_an_order_over_once_and_refuses_the_same_code_again(open_page, shot):
    code = order_one_haircut(open_page(PHONE), shot)
    page = open_page(DESKTOP)
    sign_in(page, CLERK)
    expect(page).to_have_url(re.compile(r"/counter$"))
    expect(page.get_by_role("heading", name="兑换柜台")).to_be_visible()
    shot(page, "counter")

    page.locator("#code").fill(code)
    page.get_by_role("button", name="核销发放").click()
    handed = page.get_by_test_id("handed")
    expect(handed).to_contain_text("已发放")
    expect(handed).to_contain_text(f"{HAIRCUT} × 1")
    expect(page.locator(".alert-success")).to_contain_text(code)
    shot(page, "handed")

    page.locator("#code").fill(code)
    page.get_by_role("button", name="核销发放").click()
    expect(page.locator(".alert-danger")).to_be_visible()
    expect(page.get_by_test_id("handed")).to_have_count(0)
    shot(page, "refused")


def test_english_is_remembered_across_pages_and_signing_out_and_in(open_page, shot):
    # The secretary: her pages are not the subject here, only the language they are in.
    page = open_page(DESKTOP)
    sign_in(page, SECRETARY)
    expect(page.get_by_role("button", name="退出")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

    page.get_by_label("语言").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("link", name="Home", exact=True)).to_be_visible()
    shot(page, "english")

    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.get_by_role("link", name="Home", exact=True).click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    sign_in(page, SECRETARY)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # A new browser starts Chinese, and the choice comes back with the user at sign-in.
    elsewhere = open_page(DESKTOP)
    elsewhere.goto("/login")
    expect(elsewhere.get_by_role("heading", name="登录")).to_be_visible()
    sign_in(elsewhere, SECRETARY)
    expect(elsewhere.get_by_role("button", name="Sign out")).to_be_visible()
    expect(elsewhere.locator("html")).to_have_attribute("lang", "en")
    shot(elsewhere, "english-after-signing-in-elsewhere")

    # Back to Chinese, remembered the same way (the later journeys share this database).
    elsewhere.get_by_label("Language").select_option("zh_CN")
    expect(elsewhere.locator("html")).to_have_attribute("lang", "zh-CN")


def test_a_wrong_password_shows_an_error_and_stays_on_the_login_page(open_page, shot):
    page = open_page(PHONE)
    sign_in(page, RESIDENT, "not-the-password")
    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误。")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    expect(page.get_by_role("button", name="退出")).to_have_count(0)
    shot(page, "refused")
