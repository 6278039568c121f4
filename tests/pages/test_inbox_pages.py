"""The inbox and the notification settings through the test client: the unread count in the
menu bar, the list in Chinese with Shanghai times, needs-action items highlighted, the unread
filter and the pager, read marks one by one or all at once, opening an item's page, and the
settings form checked by the API's schema with errors under their fields."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import NOW
from tests.pages.helpers import alerts, csrf, field_error, sign_in
from web.models import Notification, NotificationSettings
from web.services.notifications import notify

pytestmark = pytest.mark.db


def tell(world, name: str = "res_a1", at=NOW, title: str = "修楼道灯", **extra) -> Notification:
    [made] = notify(world.session, user_ids=[world.users[name]], kind="wish_accepted",
                    params={"title": title}, now=at, link="/me/wishes", **extra)
    world.session.commit()
    return made


def unread_badge(html: str) -> str | None:
    found = re.search(r'data-testid="unread-count">(\d+)<', html)
    return found.group(1) if found else None


def shown_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="notification-(\d+)"', html)]


def test_the_menu_bar_shows_the_unread_count_to_a_signed_in_user(client, world):
    assert 'data-testid="inbox-link"' not in client.get("/login").text
    tell(world)
    tell(world)
    page = sign_in(client, "res_a1")
    assert unread_badge(page.text) == "2"


def test_the_inbox_lists_my_notices_in_chinese_with_shanghai_times_and_highlights_actions(
        client, world):
    tell(world, needs_action=True, at=NOW - timedelta(hours=1))
    tell(world, "res_b1", title="别人的事")
    sign_in(client, "res_a1")
    page = client.get("/inbox")
    assert page.status_code == 200
    assert "您的心愿“修楼道灯”已受理" in page.text
    assert "别人的事" not in page.text
    assert "2026-11-20 09:00" in page.text  # 01:00 UTC
    assert "list-group-item-warning" in page.text and "待您处理" in page.text


def test_marking_one_read_keeps_the_filter_and_lowers_the_count(client, world):
    first, _second = tell(world), tell(world)
    token = csrf(sign_in(client, "res_a1").text)
    page = client.post(f"/inbox/{first.id}/read",
                       data={"csrf_token": token, "next": "/inbox?unread=1"},
                       follow_redirects=True)
    assert page.request.path == "/inbox" and page.request.args.get("unread") == "1"
    assert first.id not in shown_ids(page.text)
    assert unread_badge(page.text) == "1"


def test_opening_an_item_marks_it_read_and_goes_to_its_page(client, world):
    made = tell(world)
    token = csrf(sign_in(client, "res_a1").text)
    r = client.post(f"/inbox/{made.id}/open", data={"csrf_token": token})
    assert (r.status_code, r.headers["Location"]) == (302, "/me/wishes")
    world.session.expire_all()
    assert world.session.get(Notification, made.id).read_at is not None


def test_someone_elses_notification_cannot_be_marked_or_opened(client, world):
    theirs = tell(world, "res_b1")
    token = csrf(sign_in(client, "res_a1").text)
    for action in ("read", "open"):
        assert client.post(f"/inbox/{theirs.id}/{action}",
                           data={"csrf_token": token}).status_code == 404
    world.session.expire_all()
    assert world.session.get(Notification, theirs.id).read_at is None


def test_mark_all_read_empties_the_unread_list(client, world):
    for _ in range(3):
        tell(world)
    token = csrf(sign_in(client, "res_a1").text)
    page = client.post("/inbox/read-all", data={"csrf_token": token}, follow_redirects=True)
    assert "已将 3 条通知标为已读。" in alerts(page.text)
    assert unread_badge(page.text) is None
    assert shown_ids(client.get("/inbox?unread=1").text) == []


def test_a_post_without_the_csrf_token_marks_nothing(client, world):
    made = tell(world)
    sign_in(client, "res_a1")
    assert client.post(f"/inbox/{made.id}/read").status_code == 400
    world.session.expire_all()
    assert world.session.get(Notification, made.id).read_at is None


def test_the_inbox_is_paged(client, world):
    made = [tell(world, at=NOW - timedelta(minutes=i)) for i in range(23)]
    sign_in(client, "res_a1")
    first, second = client.get("/inbox").text, client.get("/inbox?page=2").text
    assert len(shown_ids(first)) == 20 and shown_ids(second) == [n.id for n in made[20:]]
    assert "共 23 条,第 1 / 2 页" in first


@pytest.mark.parametrize("name", ["admin_a", "sec_a1", "grid_a1", "unit_x", "clerk_a1"])
def test_every_role_has_an_inbox(client, world, name):
    tell(world, name)
    sign_in(client, name)
    assert len(shown_ids(client.get("/inbox").text)) == 1


def test_the_inbox_needs_signing_in(client, world):
    r = client.get("/inbox")
    assert r.status_code == 302 and "/login" in r.headers["Location"]


# ---- settings -------------------------------------------------------------------------------

def settings_form(client, world, name: str = "res_a1") -> str:
    return csrf(client.get("/me/notifications").text)


def test_the_settings_form_saves_channels_quiet_hours_and_the_digest(client, world):
    sign_in(client, "res_a1")
    token = settings_form(client, world)
    page = client.post("/me/notifications", data={
        "csrf_token": token, "email": "li@example.cn", "email_enabled": "1",
        "quiet_start_minute": "22:00", "quiet_end_minute": "07:30", "daily_digest": "1"},
        follow_redirects=True)
    assert "通知设置已保存。" in alerts(page.text)
    world.session.expire_all()
    saved = world.session.get(NotificationSettings, world.users["res_a1"])
    assert (saved.email, saved.email_enabled, saved.webhook_enabled, saved.quiet_start_minute,
            saved.quiet_end_minute, saved.daily_digest) == (
        "li@example.cn", True, False, 1320, 450, True)
    assert 'value="22:00"' in page.text and 'value="07:30"' in page.text


def test_unticking_a_box_and_blanking_a_field_turn_them_off(client, world):
    sign_in(client, "res_a1")
    client.post("/me/notifications", data={
        "csrf_token": settings_form(client, world), "email": "li@example.cn",
        "email_enabled": "1", "quiet_start_minute": "22:00", "quiet_end_minute": "07:00"})
    client.post("/me/notifications", data={"csrf_token": settings_form(client, world),
                                           "email": "li@example.cn"})
    world.session.expire_all()
    saved = world.session.get(NotificationSettings, world.users["res_a1"])
    assert (saved.email_enabled, saved.quiet_start_minute, saved.quiet_end_minute) == (
        False, None, None)


@pytest.mark.parametrize("form, field, message", [
    ({"email": "not-an-address", "email_enabled": "1"}, "email", "这不像是电子邮箱地址"),
    ({"webhook_enabled": "1"}, "webhook_address", "要接收短信,请填写手机号码(或微信号)"),
    ({"quiet_start_minute": "22:00"}, "quiet_end_minute", "免打扰时段需要同时填写开始和结束时间"),
    ({"quiet_start_minute": "25:00", "quiet_end_minute": "07:00"}, "quiet_start_minute",
     "请输入时间,例如 22:00。"),
    ({"email": "x" * 250 + "@a.cn"}, "email", "最多 254 个字。"),
])
def test_a_refused_form_shows_the_error_under_its_field_in_chinese_and_saves_nothing(
        client, world, form, field, message):
    sign_in(client, "res_a1")
    page = client.post("/me/notifications", data={"csrf_token": settings_form(client, world),
                                                  **form})
    assert page.status_code == 422
    assert field_error(page.text, field) == message
    world.session.expire_all()
    assert world.session.get(NotificationSettings, world.users["res_a1"]) is None
    if "email" in form:
        assert f'value="{form["email"]}"' in page.text  # what was typed is kept
