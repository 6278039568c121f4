"""The inbox and the channel settings through the HTTP API: only your own notifications, each
with its text in the request's language and Shanghai times; read marks and unread counts;
settings refused by field when they do not hold together; who may call what."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.error_shape import refused
from tests.conftest import NOW, TEST_PASSWORD
from web.models import Notification, NotificationSettings
from web.services.notifications import notify

pytestmark = pytest.mark.db

API = "/api/v1"


def tell(world, name: str = "res_a1", at=NOW, **extra) -> Notification:
    [made] = notify(world.session, user_ids=[world.users[name]], kind="dispatch_offered",
                    params={"title": "独居老人探访", "deadline_at": "2026-11-20T16:30:00+00:00"},
                    now=at, link="/unit/work", **extra)
    world.session.commit()
    return made


def get(client, world, path: str, name: str = "res_a1", **query):
    return client.get(f"{API}{path}", headers=world.headers(name), query_string=query)


def post(client, world, path: str, name: str = "res_a1", **query):
    return client.post(f"{API}{path}", headers=world.headers(name), query_string=query)


# ---- the inbox ------------------------------------------------------------------------------

def test_the_list_shows_your_own_notifications_with_their_text_in_chinese_by_default(
        client, world):
    made = tell(world, needs_action=True)
    tell(world, "res_b1")
    r = get(client, world, "/notifications")
    assert r.status_code == 200, r.json
    assert (r.json["total"], r.json["page"], r.json["pages"]) == (1, 1, 1)
    [item] = r.json["items"]
    assert item["id"] == made.id
    assert item["text"] == "社区向您派单“独居老人探访”,请在 2026年11月21日 00:30 前答复"
    assert (item["kind"], item["link"], item["needs_action"], item["read_at"]) == (
        "dispatch_offered", "/unit/work", True, None)
    assert item["params"]["title"] == "独居老人探访"


def test_the_text_follows_the_requested_language_then_the_users_own(client, world):
    tell(world)
    english = "The community dispatched “独居老人探访” to you: answer by Nov 21, 2026 00:30"
    assert get(client, world, "/notifications", lang="en").json["items"][0]["text"] == english
    world.user("res_a1").locale = "en"
    world.session.commit()
    assert get(client, world, "/notifications").json["items"][0]["text"] == english


def test_the_unread_filter_and_paging(client, world):
    first = tell(world, at=NOW - timedelta(hours=2))
    for hours in (1, 0):
        tell(world, at=NOW - timedelta(hours=hours))
    post(client, world, f"/notifications/{first.id}/read")
    unread = get(client, world, "/notifications", unread="true").json
    assert unread["total"] == 2 and first.id not in [i["id"] for i in unread["items"]]
    paged = get(client, world, "/notifications", per_page=2, page=2).json
    assert (paged["total"], paged["pages"], [i["id"] for i in paged["items"]]) == (
        3, 2, [first.id])


def test_reading_one_and_then_all_brings_the_unread_count_to_zero(client, world):
    a, _b, _c = tell(world), tell(world), tell(world)
    assert get(client, world, "/notifications/unread-count").json == {"unread": 3}
    r = post(client, world, f"/notifications/{a.id}/read", lang="en")
    assert r.status_code == 200, r.json
    assert r.json["read_at"] and r.json["text"].startswith("The community dispatched")
    assert get(client, world, "/notifications/unread-count").json == {"unread": 2}
    assert post(client, world, "/notifications/read-all").json == {"marked": 2}
    assert get(client, world, "/notifications/unread-count").json == {"unread": 0}


def test_marking_someone_elses_notification_is_a_404_and_changes_nothing(client, world):
    theirs = tell(world, "res_b1")
    refused(post(client, world, f"/notifications/{theirs.id}/read"), 404, "not_found")
    refused(post(client, world, "/notifications/999999/read"), 404, "not_found")
    world.session.expire_all()
    assert world.session.get(Notification, theirs.id).read_at is None


def test_read_all_leaves_other_peoples_notifications_alone(client, world):
    tell(world, "res_b1")
    assert post(client, world, "/notifications/read-all").json == {"marked": 0}
    assert get(client, world, "/notifications/unread-count", "res_b1").json == {"unread": 1}


@pytest.mark.parametrize("method, path", [
    ("get", "/notifications"), ("get", "/notifications/unread-count"),
    ("post", "/notifications/1/read"), ("post", "/notifications/read-all"),
    ("get", "/me/notification-settings"), ("patch", "/me/notification-settings"),
])
def test_every_route_needs_a_signed_in_user(client, world, method, path):
    refused(getattr(client, method)(f"{API}{path}", json={}), 401, "unauthenticated")


def test_every_role_has_an_inbox(client, world):
    for name in ("admin_a", "sec_a1", "grid_a1", "clerk_a1", "unit_x", "res_a1"):
        tell(world, name)
        assert get(client, world, "/notifications", name).json["total"] == 1


def test_a_browser_write_without_the_csrf_token_is_refused_and_marks_nothing(client, world):
    made = tell(world)
    login = client.post(f"{API}/auth/session", json={"username": "res_a1",
                                                     "password": TEST_PASSWORD})
    refused(client.post(f"{API}/notifications/{made.id}/read"), 403)
    ok = client.post(f"{API}/notifications/{made.id}/read",
                     headers={"X-CSRF-Token": login.json["csrf_token"]})
    assert ok.status_code == 200, ok.json


# ---- settings -------------------------------------------------------------------------------

def patch(client, world, body: dict, name: str = "res_a1"):
    return client.patch(f"{API}/me/notification-settings", headers=world.headers(name), json=body)


def test_settings_start_off_and_a_valid_change_is_kept(client, world):
    r = get(client, world, "/me/notification-settings")
    assert r.status_code == 200, r.json
    assert (r.json["email_enabled"], r.json["webhook_enabled"], r.json["daily_digest"],
            r.json["quiet_start_minute"]) == (False, False, False, None)
    body = {"email": "li@example.cn", "email_enabled": True, "quiet_start_minute": 1320,
            "quiet_end_minute": 420, "daily_digest": True}
    r = patch(client, world, body)
    assert r.status_code == 200, r.json
    assert {k: r.json[k] for k in body} == body
    assert get(client, world, "/me/notification-settings").json["email"] == "li@example.cn"
    assert get(client, world, "/me/notification-settings", "res_b1").json["email"] is None


@pytest.mark.parametrize("body, field", [
    ({"email": "no-at-sign", "email_enabled": True}, "email"),
    ({"email_enabled": True}, "email"),
    ({"webhook_enabled": True}, "webhook_address"),
    ({"quiet_start_minute": 600}, "quiet_end_minute"),
    ({"quiet_start_minute": 600, "quiet_end_minute": 2000}, "quiet_end_minute"),
    ({"quiet_start_minute": "10:00", "quiet_end_minute": 700}, "quiet_start_minute"),
    ({"user_id": 3}, "user_id"),
    ({"colour": "red"}, "colour"),
])
def test_settings_that_do_not_hold_together_are_a_422_naming_the_field_and_change_nothing(
        client, world, body, field):
    error = refused(patch(client, world, body), 422, "validation_error")
    assert field in error["fields"], error
    world.session.expire_all()
    assert world.session.get(NotificationSettings, world.users["res_a1"]) is None
