"""Accessibility, checked by axe-core (the copy bundled with axe-playwright-python, injected
into the page — nothing fetched) on each role's main pages, on a phone and on a desktop:
no serious or critical violation, and every form control labelled."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.test_journeys import sign_in

pytestmark = pytest.mark.e2e

PAGES = {
    None: ["/login", "/public"],
    "resident.zhang": ["/me/points", "/market", "/me/wishes", "/me/activities",
                       "/me/volunteering", "/me/services", "/inbox"],
    "clerk.dongcheng": ["/counter"],
    "secretary.dongcheng": ["/secretary", "/secretary/demands", "/secretary/demands/new",
                            "/secretary/books", "/secretary/orders", "/import/demands",
                            "/secretary/claims", "/secretary/proposals", "/secretary/reports",
                            "/secretary/wishes", "/secretary/goods"],
    "grid.dongcheng.01": ["/grid", "/grid/items", "/grid/demands/new", "/grid/wishes"],
    "unit.admin": ["/unit"],
    "admin.jincheng": ["/subdistrict"],
}
SERIOUS = {"serious", "critical"}


def serious_violations(page) -> list[str]:
    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] for n in v["nodes"][:3])
            for v in results.response["violations"] if v["impact"] in SERIOUS]


@pytest.mark.parametrize("device", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("user", list(PAGES), ids=lambda u: u or "anonymous")
def test_main_pages_have_no_serious_accessibility_violations(open_page, user, device):
    page = open_page(device)
    if user:
        sign_in(page, user)
        page.wait_for_url(lambda url: "/login" not in url)
    found = {}
    for path in PAGES[user]:
        answer = page.goto(path)
        assert answer.status < 400, f"{path} answered {answer.status}"
        problems = serious_violations(page)
        if problems:
            found[path] = problems
    assert not found, found


def test_every_form_control_on_the_main_pages_has_a_label(open_page):
    page = open_page(DESKTOP)
    sign_in(page, "secretary.dongcheng")
    page.wait_for_url(lambda url: "/login" not in url)
    for path in PAGES["secretary.dongcheng"]:
        page.goto(path)
        unlabelled = page.evaluate("""() => [...document.querySelectorAll(
            'input:not([type=hidden]), select, textarea')].filter(el =>
            !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
            && !el.getAttribute('aria-labelledby')).map(el => el.name || el.id)""")
        assert unlabelled == [], f"{path}: {unlabelled}"
