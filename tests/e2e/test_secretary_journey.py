"""The secretary's journey in a real browser: her work queue, a match run, a proposal
explained in words and approved (the unit is dispatched), then the demand list, recording a
new item with a mistake shown by its field, and the community's books."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.test_journeys import open_menu, sign_in

pytestmark = pytest.mark.e2e

SECRETARY = "secretary.dongcheng"


def sign_in_chinese(page) -> None:
    """Sign in and make sure the pages are Chinese, whatever language the account kept."""
    sign_in(page, SECRETARY)
    page.wait_for_url(lambda url: "/login" not in url)
    if page.locator("html").get_attribute("lang") != "zh-CN":
        open_menu(page)
        page.locator("#lang").select_option("zh_CN")
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def test_a_secretary_runs_matching_and_approves_a_proposal(open_page, shot):
    page = open_page(DESKTOP)
    sign_in_chinese(page)
    expect(page).to_have_url(re.compile(r"/secretary$"))
    expect(page.get_by_role("heading", name="工作台")).to_be_visible()
    shot(page, "queue")

    page.get_by_role("button", name="智能匹配").click()
    expect(page.locator(".alert-success")).to_contain_text("智能匹配完成")
    proposals = page.get_by_test_id("proposals").locator(".card")
    expect(proposals.first).to_be_visible()
    count = proposals.count()
    first = proposals.first
    expect(first.locator("li").first).to_be_visible()  # the reasons, in words
    shot(page, "proposals")

    first.get_by_role("button", name="批准").click()
    expect(page.locator(".alert-success")).to_contain_text("建议已批准,已向单位派单。")
    expect(page.get_by_test_id("proposals").locator(".card")).to_have_count(count - 1)
    shot(page, "approved")


def test_a_secretary_records_an_item_and_sees_her_books(open_page, shot):
    page = open_page(PHONE)
    sign_in_chinese(page)
    page.goto("/secretary/demands")
    expect(page.get_by_role("heading", name="需求清单")).to_be_visible()
    expect(page.get_by_test_id("demand-list").locator("tbody tr").first).to_be_visible()
    shot(page, "demand-list")

    page.get_by_role("link", name="登记需求").click()
    page.locator("#title").fill("帮张大爷修水龙头")
    page.locator("#quantity_needed").fill("0")
    page.locator("#category_id").select_option(index=1)
    page.locator("main").get_by_role("button", name="保存").click()
    expect(page.locator("#quantity_needed-error")).to_be_visible()
    shot(page, "field-error")

    page.locator("#quantity_needed").fill("1")
    page.locator("#publish").check()
    page.locator("main").get_by_role("button", name="保存").click()
    expect(page.locator(".alert-success")).to_contain_text("事项已发布。")
    expect(page.get_by_role("heading", name="帮张大爷修水龙头")).to_be_visible()
    shot(page, "published")

    page.goto("/secretary/books")
    expect(page.get_by_test_id("journal").locator("tbody tr").first).to_be_visible()
    shot(page, "books")
