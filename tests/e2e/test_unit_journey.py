"""The co-building unit admin's journey in a real browser: the demo unit's admin signs in on a
desktop, browses and filters the demand board, claims an item with one of the unit's resources
(自主选单), finds it among the unit's work, and reports work done with volunteers and hours on an
item the unit leads; the board is also seen on a phone. Screenshots are saved (see conftest).

Which item to claim and which to report on are read from the demo database first, so the
journey stays right whatever else the other journeys have done to the county.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from matcher.rules import availability_overlaps
from seeds.demo import PASSWORD
from seeds.demo_data import DEMO_UNIT
from tests.e2e.conftest import DESKTOP, PHONE
from web.domain.states import COVERAGE_STATES, WORKABLE_STATES
from web.models import Assignment, DemandItem, ResourceItem, Unit, WorkReport
from web.services.base import local_date, utcnow

pytestmark = pytest.mark.e2e

UNIT_ADMIN = "unit.admin"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Pick:
    demand_id: int
    title: str
    category_id: int
    community_id: int
    resource_id: int


def sign_in(page: Page, username: str = UNIT_ADMIN) -> None:
    page.goto("/login")
    page.locator("#username").fill(username)
    page.locator("#password").fill(PASSWORD)
    page.locator("main").get_by_role("button").click()


def local(moment):
    return moment.astimezone(SHANGHAI) if moment is not None else None


def fits(resource: ResourceItem, demand: DemandItem) -> bool:
    """What the claim service checks, for choosing an item it will accept."""
    today = local_date(utcnow())
    return (resource.quantity_remaining >= 1 and resource.capacity_per_occasion >= 1
            and (resource.expires_on is None or resource.expires_on >= today)
            and resource.category_id == demand.category_id
            and demand.community_id in {c.id for c in resource.service_communities}
            and availability_overlaps(resource.availability, local(demand.window_start),
                                      local(demand.window_end)))


def claimable_item(url: str) -> Pick:
    """An open item the demo unit does not hold yet, with a published resource that fits it."""
    with Session(create_engine(url)) as session:
        unit = session.scalar(select(Unit).where(Unit.name == DEMO_UNIT))
        mine = session.scalars(select(ResourceItem).where(
            ResourceItem.unit_id == unit.id, ResourceItem.status == "published")).all()
        held = set(session.scalars(select(Assignment.active_demand_id).where(
            Assignment.unit_id == unit.id, Assignment.active_demand_id.is_not(None))))
        for demand in session.scalars(select(DemandItem).where(
                DemandItem.status.in_([str(s) for s in COVERAGE_STATES]),
                DemandItem.quantity_open > 0).order_by(DemandItem.id)):
            resource = next((r for r in mine if fits(r, demand)), None)
            if demand.id not in held and resource is not None:
                return Pick(demand.id, demand.title, demand.category_id, demand.community_id,
                            resource.id)
    raise AssertionError("the demo holds no item the demo unit could claim")


def item_to_report(url: str) -> tuple[int, str]:
    """(assignment id, item title) of work the demo unit leads and may report now."""
    with Session(create_engine(url)) as session:
        unit = session.scalar(select(Unit).where(Unit.name == DEMO_UNIT))
        for assignment in session.scalars(select(Assignment).where(
                Assignment.unit_id == unit.id, Assignment.is_lead.is_(True),
                Assignment.status.in_(["approved", "accepted"])).order_by(Assignment.id)):
            if assignment.demand.status in WORKABLE_STATES:
                return assignment.id, assignment.demand.title
    raise AssertionError("the demo unit leads no work that can be reported")


def report_of(url: str, assignment_id: int) -> tuple | None:
    """(status, value in fen, people served, [(volunteer, minutes)]) of the item's last report."""
    with Session(create_engine(url)) as session:
        demand_id = session.get(Assignment, assignment_id).demand_id
        report = session.scalar(select(WorkReport).where(WorkReport.demand_id == demand_id)
                                .order_by(WorkReport.id.desc()))
        if report is None:
            return None
        return (report.status, report.value_fen, report.beneficiaries_served,
                [(v.name, v.minutes) for v in report.volunteers])


def test_the_unit_admin_claims_an_item_from_the_board_and_reports_work_done(
        open_page, shot, demo_database):
    pick = claimable_item(demo_database)
    page = open_page(DESKTOP)
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/unit$"))
    expect(page.get_by_test_id("dispatches")).to_be_visible()
    shot(page, "work-queue")

    # The demand board, filtered by category, community and words of the title.
    page.locator('nav a[href="/unit/board"]').click()
    expect(page).to_have_url(re.compile(r"/unit/board$"))
    expect(page.get_by_test_id("board").locator('[data-testid^="demand-"]').first).to_be_visible()
    shot(page, "board")
    page.locator("#f-category_id").select_option(str(pick.category_id))
    page.locator("#f-community_id").select_option(str(pick.community_id))
    page.locator("#f-q").fill(pick.title[:6])
    page.locator("form[role=search] button[type=submit]").click()
    expect(page).to_have_url(re.compile(rf"category_id={pick.category_id}"))
    card = page.get_by_test_id(f"demand-{pick.demand_id}")
    expect(card).to_be_visible()
    expect(card.get_by_test_id("still-needed")).to_contain_text(re.compile(r"\d"))
    shot(page, "board-filtered")

    # Claim it with one of the unit's resources.
    card.get_by_test_id(f"claim-{pick.demand_id}").click()
    expect(page).to_have_url(re.compile(rf"/unit/board/{pick.demand_id}/claim$"))
    page.locator("#resource_id").select_option(str(pick.resource_id))
    page.locator("#quantity").fill("1")
    page.locator("#note").fill("本周六上午派两名党员上门")
    shot(page, "claim-form")
    page.get_by_test_id("claim-form").locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/unit/work$"))
    expect(page.locator(".alert-success")).to_be_visible()
    claimed = page.get_by_test_id("work").locator('[data-testid^="work-"]',
                                                  has_text=pick.title).first
    expect(claimed).to_be_visible()
    expect(claimed.get_by_test_id("status")).not_to_be_empty()
    shot(page, "claimed")

    # Report work done on an item the unit leads.
    assignment_id, title = item_to_report(demo_database)
    page.goto("/unit/work?status=approved,accepted&q=" + title[:6])
    page.get_by_test_id(f"report-{assignment_id}").click()
    expect(page).to_have_url(re.compile(rf"/unit/work/{assignment_id}/report$"))
    today = local_date(utcnow()).isoformat()
    page.locator("#started_on").fill(today)
    page.locator("#ended_on").fill(today)
    for row, (name, phone, hours) in enumerate([("刘建军", "13993700001", "2.5"),
                                                ("马小红", "13993700002", "3")]):
        page.locator(f"#v-{row}-name").fill(name)
        page.locator(f"#v-{row}-phone").fill(phone)
        page.locator(f"#v-{row}-hours").fill(hours)
    page.locator("#beneficiaries_served").fill("2")
    page.locator("#value_yuan").fill("160")
    page.locator("#summary").fill("上门检查线路,更换老化插座两处。")
    shot(page, "report-form")
    page.locator("button[name=action][value=send]").click()
    expect(page).to_have_url(re.compile(r"/unit/work$"))
    expect(page.locator(".alert-success")).to_be_visible()
    shot(page, "reported")

    assert report_of(demo_database, assignment_id) == (
        "submitted", 16000, 2, [("刘建军", 150), ("马小红", 180)])

    # The contribution record and the printable annual report.
    page.locator('nav a[href="/unit/contribution"]').click()
    expect(page.get_by_test_id("totals")).to_be_visible()
    shot(page, "contribution")
    page.get_by_test_id("annual-link").click()
    expect(page.get_by_test_id("annual-report")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator("nav.navbar")).to_be_hidden()
    shot(page, "annual-report-print")


def test_the_demand_board_fits_a_phone(open_page, shot):
    page = open_page(PHONE)
    sign_in(page)
    expect(page).to_have_url(re.compile(r"/unit$"))
    page.goto("/unit/board")
    first = page.get_by_test_id("board").locator('[data-testid^="demand-"]').first
    expect(first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "board-phone")
