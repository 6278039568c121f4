"""The secretary's work queue stays short and says how many there are in all; its "see all"
link opens the full list, paged by the server, and the pager leads on to page 2 — in a real
browser, on the demo county."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP
from tests.e2e.test_secretary_journey import sign_in_chinese

pytestmark = pytest.mark.e2e


def test_the_queues_see_all_link_leads_to_page_two_of_a_long_list(open_page, shot):
    page = open_page(DESKTOP)
    sign_in_chinese(page)
    expect(page).to_have_url(re.compile(r"/secretary$"))
    due = page.get_by_test_id("due")
    total = int(due.get_by_test_id("due-total").inner_text())
    assert total > 20, "the demo community has more unfinished items than one page holds"
    expect(due.locator("li.list-group-item")).to_have_count(10)  # the queue stays short
    shot(page, "queue")

    due.get_by_test_id("due-all").click()
    expect(page).to_have_url(re.compile(r"/secretary/demands\?.*sort=next_due"))
    pages = -(-total // 20)
    expect(page.get_by_role("navigation", name="分页")).to_contain_text(
        f"共 {total} 条,第 1 / {pages} 页")
    expect(page.get_by_test_id("demand-list").locator("tbody tr")).to_have_count(20)
    shot(page, "list-page-1")

    page.get_by_role("link", name="下一页").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.get_by_role("navigation", name="分页")).to_contain_text(f"第 2 / {pages} 页")
    rows = page.get_by_test_id("demand-list").locator("tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() == min(20, total - 20)
    expect(page.locator("#f-sort")).to_have_value("next_due")  # the list's choices kept
    shot(page, "list-page-2")
