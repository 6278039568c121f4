"""A micro-wish from a resident's phone to her grid worker's desk, in a real browser: she sends
it and sees it listed, changes her sign-up for the coming patrol, opens her volunteer record and
its certificate; the grid worker, at a desktop, finds the wish in triage and accepts it; she
then sees it accepted. Screenshots of every step (see conftest.py)."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.test_journeys import open_menu, sign_in

pytestmark = pytest.mark.e2e

RESIDENT, GRID_WORKER = "resident.zhang", "grid.dongcheng.01"


def accept_dialogs(page: Page) -> list[str]:
    """Answer every confirm() with yes; the questions asked are collected."""
    asked: list[str] = []
    page.on("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    return asked


def send_a_wish(page: Page, shot, title: str) -> str:
    """On her phone: the wish form from the menu, sent; returns the wish's page path."""
    open_menu(page)
    page.locator('#nav a[href="/me/wishes"]').click()
    expect(page.get_by_test_id("new-wish")).to_be_visible()
    page.locator("#title").fill(title)
    page.locator("#description").fill("周末在家,上午都可以。")
    page.locator("#category_id").select_option(index=1)
    shot(page, "wish-form")
    page.get_by_test_id("send-wish").click()
    expect(page).to_have_url(re.compile(r"/me/wishes/\d+$"))
    expect(page.get_by_test_id("wish-history")).to_be_visible()
    path = page.url.split("//", 1)[1].split("/", 1)[1]
    shot(page, "wish-sent")
    page.goto("/me/wishes")
    expect(page.get_by_test_id("wish-list").get_by_text(title)).to_be_visible()
    return "/" + path


def change_her_sign_up(page: Page, shot) -> None:
    """She withdraws from the coming (full) patrol and signs up again: the waiting list."""
    asked = accept_dialogs(page)
    page.goto("/me/activities")
    sessions = page.get_by_test_id("sessions")
    expect(sessions.locator(".list-group-item").first).to_be_visible()
    shot(page, "activities")
    page.get_by_test_id("my-signups-link").click()
    withdraw = page.get_by_test_id("withdraw-signup").first
    expect(withdraw).to_be_visible()
    withdraw.click()
    expect(page).to_have_url(re.compile(r"/me/activities/mine$"))
    assert len(asked) == 1
    page.goto("/me/activities")
    page.get_by_test_id("sign-up").first.click()
    expect(page).to_have_url(re.compile(r"/me/activities/mine$"))
    expect(page.get_by_test_id("signup-status").first).to_be_visible()
    shot(page, "signed-up")


def open_her_record(page: Page, shot) -> None:
    page.goto("/me/volunteering")
    expect(page.get_by_test_id("total-hours")).to_have_text(re.compile(r"^\d+\.\d\d$"))
    shot(page, "volunteer-record")
    page.get_by_test_id("certificate-link").click()
    expect(page.get_by_test_id("certificate")).to_be_visible()
    page.emulate_media(media="print")
    expect(page.locator("nav.navbar")).to_be_hidden()
    shot(page, "certificate-printed")
    page.emulate_media(media="screen")


def test_a_wish_sent_from_a_phone_is_accepted_by_the_grid_worker(open_page, shot):
    phone = open_page(PHONE)
    sign_in(phone, RESIDENT)
    expect(phone).to_have_url(re.compile(r"/me/points$"))
    title = f"想请人帮忙修门锁 {int(time.time()) % 100000}"
    wish_path = send_a_wish(phone, shot, title)
    change_her_sign_up(phone, shot)
    open_her_record(phone, shot)

    desk = open_page(DESKTOP)
    sign_in(desk, GRID_WORKER)
    expect(desk).to_have_url(re.compile(r"/grid$"))
    card = desk.get_by_test_id("triage").locator(".card", has_text=title)
    expect(card).to_be_visible()
    expect(card.locator("select[name=category_id]")).not_to_have_value("")
    shot(desk, "triage")
    card.get_by_test_id("accept-wish").click()
    expect(desk).to_have_url(re.compile(r"/grid$"))
    expect(desk.locator(".alert-success")).to_be_visible()
    expect(desk.get_by_test_id("triage").locator(".card", has_text=title)).to_have_count(0)
    shot(desk, "accepted")

    phone.goto(wish_path)
    expect(phone.get_by_test_id("wish-status")).to_have_attribute("data-status", "accepted")
    shot(phone, "wish-accepted")
