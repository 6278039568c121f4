"""The inbox on a real database: only your own notifications, read marks, unread counts; the
channel settings and their rules; texts in Chinese and English with Shanghai times; the love
bank's notices (points credited, expired) and the job announcing points about to expire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import NOW
from tests.integration.lovebank_helpers import award, publish, served, settings
from web.errors import NotFoundError, PermissionDeniedError, ValidationError
from web.models import AuditEvent, Community, Delivery, Notification
from web.services import lovebank, notifications
from web.services.notifications import (
    in_quiet_hours,
    notify,
    notify_expiring_points,
    quiet_until,
    render,
)

pytestmark = pytest.mark.db


def note(world, name: str = "res_a1", kind: str = "points_expired", params=None, at=NOW,
         **extra) -> Notification:
    [made] = notify(world.session, user_ids=[world.users[name]], kind=kind,
                    params=params or {"points": 5}, now=at, **extra)
    world.session.commit()
    return made


def inbox(world, name: str = "res_a1", **kw) -> list[Notification]:
    return notifications.list_notifications(world.session, actor=world.actor(name), **kw).items


def kinds_of(world, name: str) -> list[tuple[str, dict]]:
    world.session.expire_all()
    return [(n.kind, json.loads(n.params)) for n in world.session.scalars(
        select(Notification).where(Notification.user_id == world.users[name])
        .order_by(Notification.id))]


# ---- the inbox ------------------------------------------------------------------------------

def test_the_inbox_shows_only_your_own_notifications_newest_first(world):
    first = note(world, at=NOW - timedelta(hours=1))
    second = note(world, kind="wish_accepted", params={"title": "修灯"})
    note(world, name="res_b1")
    assert [n.id for n in inbox(world)] == [second.id, first.id]
    assert [n.user_id for n in inbox(world, "res_b1")] == [world.users["res_b1"]]
    assert inbox(world, "sec_a1") == []


def test_marking_someone_elses_notification_is_a_404_and_changes_nothing(world):
    theirs = note(world, name="res_b1")
    with pytest.raises(NotFoundError):
        notifications.mark_read(world.session, actor=world.actor("res_a1"),
                                notification_id=theirs.id, now=NOW)
    world.session.refresh(theirs)
    assert theirs.read_at is None


def test_the_unread_count_falls_as_notifications_are_read_and_reading_twice_keeps_the_first_time(
        world):
    a, _b, _c = note(world), note(world), note(world)
    count = lambda: notifications.unread_count(world.session, actor=world.actor("res_a1"))  # noqa: E731
    assert count() == 3
    notifications.mark_read(world.session, actor=world.actor("res_a1"), notification_id=a.id,
                            now=NOW)
    notifications.mark_read(world.session, actor=world.actor("res_a1"), notification_id=a.id,
                            now=NOW + timedelta(hours=1))
    assert (count(), a.read_at) == (2, NOW)
    assert len(inbox(world, unread_only=True)) == 2
    assert notifications.mark_all_read(world.session, actor=world.actor("res_a1"), now=NOW) == 2
    assert count() == 0 and inbox(world, unread_only=True) == []


def test_mark_all_read_leaves_other_peoples_notifications_unread(world):
    note(world)
    note(world, name="res_b1")
    notifications.mark_all_read(world.session, actor=world.actor("res_a1"), now=NOW)
    assert notifications.unread_count(world.session, actor=world.actor("res_b1")) == 1


def test_the_system_has_no_inbox(world):
    from web.domain.actor import SYSTEM

    with pytest.raises(PermissionDeniedError):
        notifications.unread_count(world.session, actor=SYSTEM)


def test_a_dedupe_key_keeps_a_notice_from_arriving_twice(world):
    note(world, dedupe_key="once")
    assert notify(world.session, user_ids=[world.users["res_a1"]], kind="points_expired",
                  params={"points": 5}, now=NOW, dedupe_key="once") == []
    assert len(inbox(world)) == 1


# ---- texts ----------------------------------------------------------------------------------

def test_a_notice_reads_in_chinese_and_english_with_its_time_in_shanghai():
    params = {"title": "独居老人探访", "deadline_at": "2026-11-20T16:30:00+00:00"}
    assert render("dispatch_offered", params, "zh_CN") == (
        "社区向您派单“独居老人探访”,请在 2026年11月21日 00:30 前答复")
    assert render("dispatch_offered", params, "en") == (
        "The community dispatched “独居老人探访” to you: answer by Nov 21, 2026 00:30")


def test_dates_and_machine_words_are_shown_in_the_readers_language():
    assert render("points_expiring", {"points": 20, "expires_on": "2026-12-20"}, "zh") == (
        "您有 20 积分将于 2026年12月20日 到期")
    escalation = {"title": "路灯", "level": 2, "cause": "not_closed"}
    assert render("escalated", escalation, "zh_CN") == "“路灯”已上报至街道:未按时办结"
    assert render("escalated", escalation, "en-US") == (
        "“路灯” was escalated to the subdistrict: not closed in time")


def test_a_missing_parameter_shows_as_an_ellipsis_rather_than_failing():
    assert render("claim_pending", {"title": "路灯"}, "en") == (
        "… claimed “路灯”: it waits for your approval")


def test_the_presented_notice_carries_its_text_in_the_readers_language(world):
    made = note(world, kind="wish_declined", params={"title": "修灯", "reason": "不在辖区"},
                link="/me/wishes", needs_action=True)
    shown = notifications.present(made, "en")
    assert shown["text"] == "Your wish “修灯” was declined: 不在辖区"
    assert (shown["link"], shown["needs_action"], shown["params"]["reason"]) == (
        "/me/wishes", True, "不在辖区")


# ---- settings -------------------------------------------------------------------------------

def change(world, name: str = "res_a1", **changes):
    return notifications.update_settings(world.session, actor=world.actor(name),
                                         changes=changes, now=NOW)


def test_settings_start_with_everything_off_and_are_saved_with_an_audit_event(world):
    blank = notifications.get_settings(world.session, actor=world.actor("res_a1"))
    assert (blank.email_enabled, blank.webhook_enabled, blank.daily_digest) == (
        False, False, False)
    saved = change(world, email=" li@example.cn ", email_enabled=True,
                   quiet_start_minute=22 * 60, quiet_end_minute=7 * 60)
    assert (saved.email, saved.updated_at) == ("li@example.cn", NOW)
    event = world.session.scalar(select(AuditEvent).where(
        AuditEvent.entity_type == "notification_settings"))
    assert (event.actor_id, event.entity_id) == (world.users["res_a1"], world.users["res_a1"])


@pytest.mark.parametrize("changes, field", [
    ({"email": "not-an-address", "email_enabled": True}, "email"),
    ({"email": None, "email_enabled": True}, "email"),
    ({"webhook_enabled": True}, "webhook_address"),
    ({"quiet_start_minute": 600}, "quiet_end_minute"),
    ({"quiet_end_minute": 600}, "quiet_start_minute"),
    ({"quiet_start_minute": 600, "quiet_end_minute": 1440}, "quiet_end_minute"),
    ({"quiet_start_minute": -1, "quiet_end_minute": 60}, "quiet_start_minute"),
    ({"quiet_start_minute": 600, "quiet_end_minute": 600}, "quiet_end_minute"),
    ({"daily_digest": "yes"}, "daily_digest"),
    ({"colour": "red"}, "colour"),
])
def test_settings_that_do_not_hold_together_are_refused_by_field_and_change_nothing(
        world, changes, field):
    change(world, email="li@example.cn")
    with pytest.raises(ValidationError) as refused:
        change(world, **changes)
    assert field in refused.value.fields
    kept = notifications.get_settings(world.session, actor=world.actor("res_a1"))
    world.session.refresh(kept)
    assert (kept.email, kept.email_enabled, kept.quiet_start_minute) == (
        "li@example.cn", False, None)


def test_clearing_the_address_of_an_enabled_channel_is_refused(world):
    change(world, webhook_address="13800000000", webhook_enabled=True)
    with pytest.raises(ValidationError):
        change(world, webhook_address="  ")


# ---- quiet hours ----------------------------------------------------------------------------

def shanghai(hour: int, minute: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


def test_quiet_hours_wrapping_past_midnight_end_the_next_morning():
    night = (22 * 60, 7 * 60)
    assert in_quiet_hours(shanghai(23, 30), *night) and in_quiet_hours(shanghai(6, 59), *night)
    assert not in_quiet_hours(shanghai(7), *night) and not in_quiet_hours(shanghai(21, 59),
                                                                           *night)
    assert quiet_until(shanghai(23, 30), *night) == shanghai(7, day=21)
    assert quiet_until(shanghai(0, 15), *night) == shanghai(7)
    assert quiet_until(shanghai(12), *night) == shanghai(12)


def test_quiet_hours_within_one_day_end_the_same_day():
    assert quiet_until(shanghai(12, 30), 12 * 60, 14 * 60) == shanghai(14)
    assert quiet_until(shanghai(14), 12 * 60, 14 * 60) == shanghai(14)


# ---- the love bank's notices ----------------------------------------------------------------

def test_an_award_tells_each_resident_once_with_the_points_they_got(world):
    from tests.integration.lovebank_helpers import resident

    publish(world)
    resident(world, "res_a1b")
    award(world, "res_a1", "res_a1b")
    for name in ("res_a1", "res_a1b"):
        assert kinds_of(world, name) == [("points_credited", {"points": 20, "reason": "为社区服务"})]


def test_a_credited_service_record_tells_the_volunteer_what_for(world):
    publish(world)
    served(world, [{"user_id": world.users["res_a1"], "name": "张", "minutes": 60}])
    [(kind, params)] = [k for k in kinds_of(world, "res_a1") if k[0] == "points_credited"]
    assert (params["points"], params["reason"], params["minutes"]) == (10, "独居老人探访", 60)


def test_expired_points_are_announced_once_per_lot(world):
    publish(world)
    settings(world, points_expiry_months=1)
    award(world, "res_a1")
    lovebank.expire_points(world.session, now=NOW + timedelta(days=30))
    lovebank.expire_points(world.session, now=NOW + timedelta(days=31))
    assert kinds_of(world, "res_a1")[1:] == [("points_expired", {"points": 20,
                                                                 "expired_on": "2026-12-20"})]


def test_a_dry_run_of_the_expiry_announces_nothing(world):
    publish(world)
    settings(world, points_expiry_months=1)
    award(world, "res_a1")
    lovebank.expire_points(world.session, now=NOW + timedelta(days=30), dry_run=True)
    assert [k for k, _p in kinds_of(world, "res_a1")] == ["points_credited"]


def test_points_about_to_expire_are_announced_once_per_lot_within_the_notice_days(world):
    publish(world)
    settings(world, points_expiry_months=1)
    award(world, "res_a1")  # expires 2026-12-20
    world.session.get(Community, world["a1"]).expiry_notice_days = 7
    world.session.commit()
    assert notify_expiring_points(world.session, now=NOW)["notified"] == 0
    assert notify_expiring_points(world.session, now=NOW + timedelta(days=23)) == {
        "lots": 1, "notified": 1}
    assert notify_expiring_points(world.session, now=NOW + timedelta(days=24)) == {
        "lots": 1, "notified": 0}
    expiring = [p for k, p in kinds_of(world, "res_a1") if k == "points_expiring"]
    assert expiring == [{"points": 20, "expires_on": "2026-12-20"}]


def test_expired_or_spent_lots_are_not_announced_as_expiring(world):
    publish(world)
    settings(world, points_expiry_months=1)
    award(world, "res_a1")
    lovebank.expire_points(world.session, now=NOW + timedelta(days=30))
    assert notify_expiring_points(world.session, now=NOW + timedelta(days=30))["lots"] == 0


def test_a_notice_for_someone_without_channels_queues_no_delivery(world):
    note(world)
    assert world.session.scalars(select(Delivery)).all() == []
