"""The outbox on a real database: deliveries queued per channel, sent by the job with retries
and back-off (a fake channel that fails), dead after six failures, held through quiet hours,
the daily digest once a day; a real SMTP server and a real webhook on loopback; two senders at
once never sending one delivery twice."""

from __future__ import annotations

import email
import email.policy
import json
import os
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from tests.conftest import NOW, migrate
from tests.factories import build_world
from tests.integration.fresh_db import at_once, fresh_database_url
from tests.integration.lovebank_helpers import award, publish
from web.db import make_engine, make_session_factory
from web.models import Delivery, LedgerTransfer
from web.services import notifications
from web.services.channels import (
    SIGNATURE_HEADER,
    ChannelError,
    EmailChannel,
    channels_from_env,
    sign,
)
from web.services.notifications import notify, send_daily_digests, send_due_deliveries

pytestmark = pytest.mark.db

MINUTE = timedelta(minutes=1)


class FakeChannel:
    """A channel that fails its first `failures` sends (every send if `always`)."""

    def __init__(self, name: str = "email", failures: int = 0, always: bool = False,
                 error: type[Exception] = ChannelError):
        self.name, self.failures, self.always, self.error = name, failures, always, error
        self.calls, self.sent = 0, []
        self.lock = threading.Lock()

    def send(self, address, subject, body, *, kind="", ref=""):
        with self.lock:
            self.calls += 1
            if self.always or self.calls <= self.failures:
                raise self.error("the gateway is down")
            self.sent.append({"to": address, "subject": subject, "body": body, "kind": kind,
                              "ref": ref})


def opt_in(world, name: str = "res_a1", **changes):
    changes = {"email": "li@example.cn", "email_enabled": True, **changes}
    return notifications.update_settings(world.session, actor=world.actor(name),
                                         changes=changes, now=NOW)


def tell(world, name: str = "res_a1", at: datetime = NOW, **params):
    made = notify(world.session, user_ids=[world.users[name]], kind="wish_accepted",
                  params={"title": "修楼道灯", **params}, now=at, link="/me/wishes")
    world.session.commit()
    return made[0]


def deliveries(world) -> list[Delivery]:
    world.session.expire_all()
    return list(world.session.scalars(select(Delivery).order_by(Delivery.id)))


def shanghai(hour: int, minute: int = 0, day: int = 20) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


# ---- queueing -------------------------------------------------------------------------------

def test_a_notice_queues_one_delivery_per_enabled_channel_with_its_dedupe_key(world):
    opt_in(world, webhook_address="13800000000", webhook_enabled=True)
    made = tell(world)
    assert [(d.channel, d.status, d.next_attempt_at, d.dedupe_key) for d in deliveries(world)] == [
        ("email", "pending", NOW, f"n:{made.id}:email"),
        ("webhook", "pending", NOW, f"n:{made.id}:webhook")]


def test_a_disabled_channel_or_the_daily_digest_queues_nothing_at_once(world):
    opt_in(world, email_enabled=False)
    tell(world)
    opt_in(world, daily_digest=True)
    tell(world)
    assert deliveries(world) == []


def test_a_notice_in_quiet_hours_past_midnight_waits_for_their_end(world):
    opt_in(world, quiet_start_minute=22 * 60, quiet_end_minute=7 * 60)
    tell(world, at=shanghai(23, 30))
    [delivery] = deliveries(world)
    assert delivery.next_attempt_at == shanghai(7, day=21)
    channel = FakeChannel()
    assert send_due_deliveries(world.session, now=shanghai(6, 59, day=21),
                               channels={"email": channel})["claimed"] == 0
    assert send_due_deliveries(world.session, now=shanghai(7, day=21),
                               channels={"email": channel})["sent"] == 1


# ---- sending and retrying -------------------------------------------------------------------

def test_a_channel_that_fails_twice_is_retried_after_one_then_five_minutes_and_sends_once(world):
    opt_in(world)
    made = tell(world)
    channel = FakeChannel(failures=2)
    run = lambda at: send_due_deliveries(world.session, now=at, channels={"email": channel})  # noqa: E731
    assert run(NOW)["retrying"] == 1
    [d] = deliveries(world)
    assert (d.attempts, d.next_attempt_at, d.status) == (1, NOW + MINUTE, "pending")
    assert "the gateway is down" in d.last_error
    assert run(NOW + 30 * timedelta(seconds=1))["claimed"] == 0
    run(NOW + MINUTE)
    [d] = deliveries(world)
    assert (d.attempts, d.next_attempt_at) == (2, NOW + 6 * MINUTE)
    assert run(NOW + 6 * MINUTE)["sent"] == 1
    run(NOW + timedelta(days=1))
    [d] = deliveries(world)
    assert (d.status, d.attempts, d.sent_at, d.last_error) == ("sent", 3, NOW + 6 * MINUTE, None)
    assert channel.calls == 3 and len(channel.sent) == 1
    sent = channel.sent[0]
    assert (sent["to"], sent["kind"], sent["ref"]) == ("li@example.cn", "wish_accepted", str(d.id))
    assert sent["body"] == "您的心愿“修楼道灯”已受理"
    assert sent["subject"] == "邻里共建: 您的心愿“修楼道灯”已受理"
    assert made.id == d.notification_id


def test_a_channel_that_always_fails_gives_up_after_six_attempts_with_its_last_error(world):
    opt_in(world)
    tell(world)
    channel = FakeChannel(always=True, error=RuntimeError)
    at, waits = NOW, []
    for _attempt in range(6):
        send_due_deliveries(world.session, now=at, channels={"email": channel})
        [d] = deliveries(world)
        waits.append(d.next_attempt_at - at)
        at = d.next_attempt_at
    assert waits[:5] == [MINUTE, 5 * MINUTE, 25 * MINUTE, 125 * MINUTE, 625 * MINUTE]
    assert (d.status, d.attempts, d.sent_at) == ("dead", 6, None)
    assert d.last_error == "RuntimeError: the gateway is down"
    assert send_due_deliveries(world.session, now=at + timedelta(days=30),
                               channels={"email": channel})["claimed"] == 0
    assert channel.calls == 6


def test_a_retry_that_would_fall_in_quiet_hours_waits_for_their_end(world):
    opt_in(world, quiet_start_minute=10 * 60 + 1, quiet_end_minute=12 * 60)
    tell(world, at=shanghai(10))
    send_due_deliveries(world.session, now=shanghai(10), channels={"email": FakeChannel(failures=1)})
    [d] = deliveries(world)
    assert d.next_attempt_at == shanghai(12)


def test_the_action_that_caused_a_notice_commits_even_when_the_channel_raises(world):
    publish(world)
    opt_in(world)
    transfer = award(world, "res_a1")
    world.session.rollback()  # nothing uncommitted could survive this
    summary = send_due_deliveries(world.session, now=NOW, channels={
        "email": FakeChannel(always=True, error=OSError)})
    assert (summary["claimed"], summary["retrying"]) == (1, 1)
    assert world.session.get(LedgerTransfer, transfer.id) is not None
    assert [d.status for d in deliveries(world)] == ["pending"]


def test_deliveries_on_an_unconfigured_channel_wait_untouched_and_are_counted(world):
    opt_in(world, webhook_address="13800000000", webhook_enabled=True)
    tell(world)
    summary = send_due_deliveries(world.session, now=NOW, channels={"email": FakeChannel()})
    assert (summary["sent"], summary["waiting_unconfigured"]) == (1, 1)
    webhook = [d for d in deliveries(world) if d.channel == "webhook"][0]
    assert (webhook.status, webhook.attempts) == ("pending", 0)
    assert send_due_deliveries(world.session, now=NOW, channels={})["waiting_unconfigured"] == 1


def test_one_run_sends_batch_after_batch_until_nothing_is_due(world):
    opt_in(world)
    for _ in range(5):
        tell(world)
    channel = FakeChannel()
    summary = send_due_deliveries(world.session, now=NOW, channels={"email": channel}, batch=2)
    assert (summary["claimed"], summary["sent"], len(channel.sent)) == (5, 5, 5)


def test_a_sender_that_died_mid_send_is_taken_over_after_its_lease_and_cannot_overwrite(world):
    from web.services.notifications import LEASE, _claim, _record

    opt_in(world)
    tell(world)
    [lost] = _claim(world.session, names=["email"], now=NOW, batch=10)[0]  # then it dies
    channel = FakeChannel()
    assert send_due_deliveries(world.session, now=NOW + LEASE - MINUTE,
                               channels={"email": channel})["claimed"] == 0
    assert send_due_deliveries(world.session, now=NOW + LEASE,
                               channels={"email": channel})["sent"] == 1
    assert _record(world.session, out=lost, error="late failure", now=NOW + LEASE) == "lost"
    [d] = deliveries(world)
    assert (d.status, d.attempts, d.last_error) == ("sent", 2, None)


def test_a_channel_turned_off_before_sending_drops_its_delivery(world):
    opt_in(world)
    tell(world)
    opt_in(world, email_enabled=False)
    channel = FakeChannel()
    assert send_due_deliveries(world.session, now=NOW, channels={"email": channel})[
        "dropped"] == 1
    [d] = deliveries(world)
    assert (d.status, channel.calls) == ("dead", 0)


def test_an_english_readers_message_is_in_english(world):
    world.user("res_a1").locale = "en"
    world.session.commit()
    opt_in(world)
    tell(world)
    channel = FakeChannel()
    send_due_deliveries(world.session, now=NOW, channels={"email": channel})
    assert channel.sent[0]["body"] == "Your wish “修楼道灯” was accepted"


def test_a_full_address_is_added_when_the_deployment_names_its_base_url(world, monkeypatch):
    monkeypatch.setenv("LINLI_BASE_URL", "https://linli.example.cn/")
    opt_in(world)
    tell(world)
    channel = FakeChannel()
    send_due_deliveries(world.session, now=NOW, channels={"email": channel})
    assert channel.sent[0]["body"].endswith("\n\nhttps://linli.example.cn/me/wishes")


# ---- the daily digest -----------------------------------------------------------------------

def test_the_daily_digest_is_queued_once_a_day_with_everything_since_the_last_one(world):
    opt_in(world, daily_digest=True)
    tell(world, at=shanghai(7), title="第一件")
    tell(world, at=shanghai(7, 30), title="第二件")
    assert send_daily_digests(world.session, now=shanghai(7, 45)) == {"users": 0, "queued": 0}
    assert send_daily_digests(world.session, now=shanghai(8)) == {"users": 1, "queued": 1}
    assert send_daily_digests(world.session, now=shanghai(9))["queued"] == 0
    [d] = deliveries(world)
    assert (d.dedupe_key, d.digest_day, d.notification_id) == (
        f"digest:{world.users['res_a1']}:email:2026-11-20", shanghai(8).date(), None)
    channel = FakeChannel()
    send_due_deliveries(world.session, now=shanghai(9), channels={"email": channel})
    [sent] = channel.sent
    assert sent["kind"] == "digest"
    assert sent["subject"] == "邻里共建:2026年11月20日 的通知汇总"
    assert sent["body"].splitlines()[0] == "您有 2 条新通知:"
    assert "“第一件”" in sent["body"] and "“第二件”" in sent["body"]


def test_the_next_days_digest_holds_only_what_came_after_and_none_is_sent_without_news(world):
    opt_in(world, daily_digest=True)
    tell(world, at=shanghai(7), title="第一件")
    send_daily_digests(world.session, now=shanghai(8))
    tell(world, at=shanghai(20), title="第二件")
    send_daily_digests(world.session, now=shanghai(8, day=21))
    assert send_daily_digests(world.session, now=shanghai(8, day=22))["queued"] == 0
    channel = FakeChannel()
    send_due_deliveries(world.session, now=shanghai(9, day=22), channels={"email": channel})
    first, second = channel.sent
    assert "第一件" in first["body"] and "第二件" not in first["body"]
    assert "第二件" in second["body"] and "第一件" not in second["body"]


def test_with_quiet_hours_the_digest_comes_when_they_end(world):
    opt_in(world, daily_digest=True, quiet_start_minute=22 * 60, quiet_end_minute=9 * 60)
    tell(world, at=shanghai(7))
    assert send_daily_digests(world.session, now=shanghai(8, 30))["queued"] == 0
    assert send_daily_digests(world.session, now=shanghai(9))["queued"] == 1


# ---- real servers on loopback ---------------------------------------------------------------

class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to take a message: EHLO, MAIL, RCPT, DATA, QUIT."""

    def say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.say("220 test ESMTP")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.say("250-test")
                self.say("250 8BITMIME")
            elif verb == b"DATA":
                self.say("354 go on")
                self.server.messages.append(self.read_data())
                self.say(self.server.answer)
            elif verb == b"QUIT":
                self.say("221 bye")
                return
            else:
                self.say("250 ok")

    def read_data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)


@contextmanager
def serving(server) -> Iterator:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def smtp_server(answer: str = "250 queued"):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SMTPHandler)
    server.daemon_threads = True
    server.messages, server.answer = [], answer
    return serving(server)


def test_an_email_goes_through_a_real_smtp_server_in_utf8(world):
    opt_in(world)
    tell(world)
    with smtp_server() as server:
        env = {"LINLI_SMTP_HOST": "127.0.0.1", "LINLI_SMTP_PORT": str(server.server_address[1]),
               "LINLI_SMTP_FROM": "linli@example.cn", "LINLI_SMTP_TIMEOUT": "5"}
        summary = send_due_deliveries(world.session, now=NOW, channels=channels_from_env(env))
    assert summary["sent"] == 1
    [raw] = server.messages
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert (message["To"], message["From"]) == ("li@example.cn", "linli@example.cn")
    assert message["Subject"] == "邻里共建: 您的心愿“修楼道灯”已受理"
    assert message.get_content().strip() == "您的心愿“修楼道灯”已受理"


def test_an_smtp_server_refusing_the_message_is_a_failure_recorded_for_a_retry(world):
    opt_in(world)
    tell(world)
    with smtp_server(answer="554 no thanks") as server:
        channel = EmailChannel("127.0.0.1", server.server_address[1], sender="linli@example.cn",
                               timeout=5)
        send_due_deliveries(world.session, now=NOW, channels={"email": channel})
    [d] = deliveries(world)
    assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 1, NOW + MINUTE)
    assert "554" in d.last_error


def test_no_smtp_server_listening_is_a_failure_not_a_crash(world):
    opt_in(world)
    tell(world)
    with smtp_server() as server:
        port = server.server_address[1]
    channel = EmailChannel("127.0.0.1", port, sender="linli@example.cn", timeout=2)
    assert send_due_deliveries(world.session, now=NOW, channels={"email": channel})[
        "retrying"] == 1


class HookHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((dict(self.headers), body))
        self.send_response(self.server.status)
        if self.server.status in (301, 302):
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # keep the test output quiet
        pass


def webhook_server(status: int = 204):
    server = HTTPServer(("127.0.0.1", 0), HookHandler)
    server.requests, server.status = [], status
    return serving(server)


def hook_env(server) -> dict:
    return {"LINLI_WEBHOOK_URL": f"http://127.0.0.1:{server.server_address[1]}/hook",
            "LINLI_WEBHOOK_SECRET": "s3cret", "LINLI_WEBHOOK_TIMEOUT": "5"}


def test_a_webhook_posts_signed_json_to_a_real_http_server(world):
    opt_in(world, email_enabled=False, webhook_address="13800000000", webhook_enabled=True)
    tell(world)
    with webhook_server() as server:
        summary = send_due_deliveries(world.session, now=NOW,
                                      channels=channels_from_env(hook_env(server)))
    assert summary["sent"] == 1
    [(headers, body)] = server.requests
    assert headers[SIGNATURE_HEADER] == sign("s3cret", body)
    payload = json.loads(body)
    [d] = deliveries(world)
    assert payload == {"to": "13800000000", "subject": "邻里共建: 您的心愿“修楼道灯”已受理",
                       "body": "您的心愿“修楼道灯”已受理", "kind": "wish_accepted",
                       "id": str(d.id)}


@pytest.mark.parametrize("status", [500, 302, 404])
def test_a_webhook_answering_other_than_2xx_is_a_failure_recorded_for_a_retry(world, status):
    opt_in(world, email_enabled=False, webhook_address="13800000000", webhook_enabled=True)
    tell(world)
    with webhook_server(status) as server:
        send_due_deliveries(world.session, now=NOW, channels=channels_from_env(hook_env(server)))
    [d] = deliveries(world)
    assert (d.status, d.attempts) == ("pending", 1)
    assert str(status) in d.last_error
    assert len(server.requests) == 1


def test_a_channel_without_its_settings_is_absent():
    assert channels_from_env({}) == {}
    assert channels_from_env({"LINLI_WEBHOOK_URL": "http://127.0.0.1:1/"}) == {}
    found = channels_from_env({"LINLI_SMTP_HOST": "mail.example.cn", "LINLI_SMTP_STARTTLS": "1",
                               "LINLI_WEBHOOK_URL": "https://gw.example.cn/send",
                               "LINLI_WEBHOOK_SECRET": "x"})
    assert sorted(found) == ["email", "webhook"]
    assert (found["email"].port, found["email"].sender) == (587, "linli@mail.example.cn")


# ---- two senders at once --------------------------------------------------------------------

@pytest.fixture(scope="module")
def fresh(tmp_path_factory, fast_password_hashes):
    for url in fresh_database_url(tmp_path_factory.mktemp("outbox"), "outbox"):
        migrate(url)
        engine = make_engine(url, pool_size=8) if url.startswith("postgresql") else \
            make_engine(url)
        factory = make_session_factory(engine)
        with factory() as session:
            world = build_world(session)
            opt_in(world, webhook_address="13800000000", webhook_enabled=True)
            for i in range(15):
                tell(world, title=f"第{i}件")
            session.commit()
        yield factory
        engine.dispose()


class SlowChannel(FakeChannel):
    def send(self, address, subject, body, *, kind="", ref=""):
        time.sleep(0.005)
        super().send(address, subject, body, kind=kind, ref=ref)


def test_two_senders_at_once_never_send_one_delivery_twice(fresh):
    channel = SlowChannel()
    channels = {"email": channel, "webhook": channel}

    def sender(_i: int) -> int:
        with fresh() as session:
            return send_due_deliveries(session, now=NOW, channels=channels, batch=4)["sent"]

    outcomes = at_once(2, sender)
    assert [o.error for o in outcomes] == [None, None], [o.trace for o in outcomes]
    refs = [m["ref"] for m in channel.sent]
    assert len(refs) == 30 and len(set(refs)) == 30
    assert sum(o.value for o in outcomes) == 30
    with fresh() as session:
        assert {d.status for d in session.scalars(select(Delivery))} == {"sent"}


def test_the_real_environment_without_settings_sends_nothing(world, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("LINLI_SMTP_", "LINLI_WEBHOOK_")):
            monkeypatch.delenv(name)
    opt_in(world)
    tell(world)
    summary = send_due_deliveries(world.session, now=NOW)
    assert (summary["claimed"], summary["waiting_unconfigured"]) == (0, 1)


def test_a_reason_with_line_breaks_still_makes_a_one_line_subject_over_smtp(world):
    opt_in(world)
    notify(world.session, user_ids=[world.users["res_a1"]], kind="wish_declined",
           params={"title": "修灯", "reason": "不在辖区\r\nBcc: someone@example.cn"}, now=NOW)
    world.session.commit()
    with smtp_server() as server:
        channel = EmailChannel("127.0.0.1", server.server_address[1], sender="linli@example.cn",
                               timeout=5)
        assert send_due_deliveries(world.session, now=NOW, channels={"email": channel})[
            "sent"] == 1
    message = email.message_from_bytes(server.messages[0], policy=email.policy.default)
    assert message["Bcc"] is None
    assert message["Subject"] == "邻里共建: 您的心愿“修灯”不予受理:不在辖区 Bcc: someone@example.cn"
