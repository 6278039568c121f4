"""Running in production: rate limits (memory and Redis), request ids and JSON logs, /metrics.

The suite runs with rate limits off (tests/conftest.py); each test here builds an app whose
Settings turn on the limits it checks.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from datetime import timedelta

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.api.error_shape import refused
from tests.conftest import NOW, TEST_PASSWORD
from tests.integration.lovebank_helpers import fund_wallet, keyed, resident
from tests.pages.helpers import csrf
from web.app import create_app
from web.config import Settings
from web.models import ApiToken, JobRun, LedgerTransfer, MatchRun
from web.observability import JsonFormatter, configure_logging

pytestmark = pytest.mark.db

API = "/api/v1"
REDIS_URL = "redis://127.0.0.1:6379/0"


def make_app(engine, session_factory, **settings):
    """An app on the test's transaction, with the given settings (rate limits, metrics …)."""
    app = create_app(Settings(database_url=str(engine.url), secret_key="test-secret",
                              testing=True, **settings), engine=engine)
    app.extensions["linli"].use_sessions(session_factory)
    return app


@pytest.fixture
def limited(engine, session_factory):
    """A client of an app that allows 10 sign-ins a minute per address and per username."""
    return make_app(engine, session_factory, rate_limit_login="10/minute").test_client()


def sign_in(client, username: str, password: str = TEST_PASSWORD, address: str = "10.0.0.1"):
    return client.post(f"{API}/auth/token", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": address})


def tokens(session) -> int:
    return session.scalar(select(func.count()).select_from(ApiToken))


# ---- rate limits on signing in ----------------------------------------------------------------

def test_the_eleventh_sign_in_in_a_minute_is_refused_with_429_retry_after_and_no_token(
        limited, world, session):
    for attempt in range(10):
        r = sign_in(limited, "sec_a1", TEST_PASSWORD if attempt % 2 else "wrong-password")
        assert r.status_code in (201, 401), r.json
    before = tokens(session)
    r = sign_in(limited, "sec_a1")
    error = refused(r, 429, "rate_limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert error["retry_after"] == int(r.headers["Retry-After"])
    assert error["request_id"] == r.headers["X-Request-ID"]
    assert tokens(session) == before


def test_a_different_username_from_a_different_address_is_unaffected(limited, world):
    for _ in range(10):
        sign_in(limited, "sec_a1", "wrong-password", address="10.0.0.1")
    assert sign_in(limited, "sec_b1", address="10.0.0.2").status_code == 201
    refused(sign_in(limited, "sec_a1", address="10.0.0.3"), 429)  # the username is spent
    refused(sign_in(limited, "sec_b1", address="10.0.0.1"), 429)  # so is the address


def test_the_browser_session_endpoint_shares_the_sign_in_limit(limited, world):
    for _ in range(10):
        sign_in(limited, "sec_a1", "wrong-password")
    r = limited.post(f"{API}/auth/session", json={"username": "sec_a1",
                                                  "password": TEST_PASSWORD},
                     environ_base={"REMOTE_ADDR": "10.0.0.9"})
    refused(r, 429, "rate_limited")


def test_the_sign_in_page_refuses_the_eleventh_attempt_with_a_readable_message(limited, world):
    form = csrf(limited.get("/login").text)
    for _ in range(10):
        limited.post("/login", data={"username": "sec_a1", "password": "wrong-password",
                                     "csrf_token": form})
    r = limited.post("/login", data={"username": "sec_a1", "password": TEST_PASSWORD,
                                     "csrf_token": form})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert "尝试次数太多" in r.text
    assert limited.get("/home").status_code == 302  # not signed in


def test_sign_ins_are_not_limited_when_the_setting_is_off(engine, session_factory, world):
    client = make_app(engine, session_factory, rate_limit_login="off").test_client()
    assert all(sign_in(client, "sec_a1", "wrong").status_code == 401 for _ in range(12))


# ---- rate limits on moving points -------------------------------------------------------------

@pytest.fixture
def gifts(engine, session_factory, world):
    """An app allowing 2 point-moving requests a minute per user; res_a1 may give points."""
    client = make_app(engine, session_factory, rate_limit_points="2/minute").test_client()
    r = client.patch(f"{API}/communities/{world['a1']}/love-bank-settings",
                     headers=world.headers("sec_a1"), json={"allow_gifts": True})
    assert r.status_code == 200, r.json
    fund_wallet(world, "res_a1", 100)
    resident(world, "res_a1b")
    return client


def give(client, world, giver: str = "res_a1"):
    body = {"community_id": world["a1"], "to_user_id": world.users["res_a1b"], "points": 5,
            "reason": "爱心传递"}
    return client.post(f"{API}/ledger/gifts", json=body, headers=keyed(world.headers(giver)))


def test_the_third_gift_in_a_minute_is_refused_and_moves_nothing(gifts, world, session):
    assert [give(gifts, world).status_code for _ in range(2)] == [201, 201]
    before = session.scalar(select(func.count()).select_from(LedgerTransfer))
    r = give(gifts, world)
    refused(r, 429, "rate_limited")
    assert "Retry-After" in r.headers
    assert session.scalar(select(func.count()).select_from(LedgerTransfer)) == before


def test_the_points_limit_counts_each_signed_in_user_apart(gifts, world):
    for _ in range(2):
        give(gifts, world)
    refused(give(gifts, world), 429)
    fund_wallet(world, "res_a1b", 100)
    body = {"community_id": world["a1"], "to_user_id": world.users["res_a1"], "points": 5,
            "reason": "回礼"}
    r = gifts.post(f"{API}/ledger/gifts", json=body, headers=keyed(world.headers("res_a1b")))
    assert r.status_code == 201, r.json


def test_reading_the_ledger_is_never_limited(gifts, world):
    headers = world.headers("res_a1")
    assert all(gifts.get(f"{API}/ledger/statement", headers=headers).status_code == 200
               for _ in range(4))


# ---- Redis storage ----------------------------------------------------------------------------

@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own in the local Redis, removed afterwards."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        # This machine and CI run Redis (docs/deploy.md); elsewhere, say so rather than pass.
        raise AssertionError("these tests need Redis at 127.0.0.1:6379 "
                             "(redis-server --daemonize yes)") from exc
    prefix = f"linli-test-{uuid.uuid4().hex}"
    yield prefix
    for stale in client.scan_iter(f"{prefix}:*"):
        client.delete(stale)
    client.close()


def test_limits_kept_in_redis_are_shared_by_two_app_processes(engine, session_factory, world,
                                                              redis_prefix):
    settings = {"rate_limit_login": "3/minute", "redis_url": REDIS_URL,
                "redis_prefix": redis_prefix}
    first = make_app(engine, session_factory, **settings).test_client()
    second = make_app(engine, session_factory, **settings).test_client()
    assert sign_in(first, "sec_a1").status_code == 201
    assert sign_in(second, "sec_a1").status_code == 201
    assert sign_in(first, "sec_a1").status_code == 201
    refused(sign_in(second, "sec_a1"), 429, "rate_limited")
    with redis.Redis.from_url(REDIS_URL) as check:
        assert check.keys(f"{redis_prefix}:*")  # the windows are in Redis, under the prefix


def test_an_unreachable_redis_lets_requests_through_with_a_warning(engine, session_factory,
                                                                   world, caplog):
    client = make_app(engine, session_factory, rate_limit_login="1/minute",
                      redis_url="redis://127.0.0.1:1/0").test_client()
    with caplog.at_level(logging.WARNING, logger="web.ratelimit"):
        assert [sign_in(client, "sec_a1").status_code for _ in range(3)] == [201, 201, 201]
    assert any("rate limits not applied" in r.getMessage() for r in caplog.records)


def test_readyz_reports_an_unreachable_redis_as_not_ready(engine, world):
    app = create_app(Settings(database_url=str(engine.url), secret_key="x", testing=True,
                              redis_url="redis://127.0.0.1:1/0"), engine=engine)
    r = app.test_client().get("/readyz")
    assert r.status_code == 503
    assert r.json["checks"]["redis"]["ok"] is False
    assert "redis unreachable" in r.json["checks"]["redis"]["reason"]


def test_readyz_checks_a_reachable_redis(engine, redis_prefix):
    app = create_app(Settings(database_url=str(engine.url), secret_key="x", testing=True,
                              redis_url=REDIS_URL), engine=engine)
    r = app.test_client().get("/readyz")
    assert r.json["checks"]["redis"] == {"ok": True}


# ---- request ids and logs ---------------------------------------------------------------------

def test_a_sane_incoming_request_id_is_echoed_and_a_bad_one_replaced(client):
    assert client.get("/healthz", headers={"X-Request-ID": "nginx-42.a_b"}) \
        .headers["X-Request-ID"] == "nginx-42.a_b"
    for bad in ("has space", "x" * 65, "semi;colon", ""):
        echoed = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_a_json_error_body_carries_the_request_id(client):
    r = client.get(f"{API}/auth/me", headers={"X-Request-ID": "trace-me-1"})
    assert refused(r, 401)["request_id"] == "trace-me-1"


@pytest.fixture
def json_log():
    """The root logger writing JSON lines into a buffer (as under `linli serve --prod`)."""
    root = logging.getLogger()
    level = root.level
    buffer = io.StringIO()
    handler = configure_logging("json", "INFO", stream=buffer)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(level)


def test_each_request_is_logged_as_one_json_line_with_its_request_id(client, world, json_log):
    r = client.get(f"{API}/auth/me", headers={**world.headers("sec_a1"),
                                              "X-Request-ID": "req-log-1"})
    assert r.status_code == 200
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == "req-log-1"]
    assert len(mine) == 1
    entry = mine[0]
    assert entry["logger"] == "linli.request" and entry["level"] == "INFO"
    assert entry["timestamp"].endswith("Z")
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", f"{API}/auth/me", 200)
    assert entry["user_id"] == world.users["sec_a1"]
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert entry["message"].startswith(f"GET {API}/auth/me 200")


def test_a_log_line_outside_a_request_is_valid_json_with_its_chinese_intact():
    record = logging.makeLogRecord({"name": "linli.test", "levelname": "WARNING",
                                    "msg": "积分 %s", "args": (5,)})
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "积分 5" and entry["request_id"] is None


# ---- metrics ----------------------------------------------------------------------------------

def sample(text: str, name: str, **labels) -> float:
    """The value of the sample `name` with `labels` in Prometheus text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def test_metrics_counts_each_request_by_endpoint_method_and_status(client):
    labels = {"endpoint": "auth.Me", "method": "GET", "status": "401"}
    before = sample(client.get("/metrics").text, "linli_http_requests_total", **labels)
    client.get(f"{API}/auth/me")
    after = client.get("/metrics")
    assert after.status_code == 200 and after.mimetype == "text/plain"
    assert sample(after.text, "linli_http_requests_total", **labels) == before + 1
    assert sample(after.text, "linli_http_request_duration_seconds_count", **labels) == before + 1


def test_metrics_refuses_a_client_that_is_not_local_without_the_token(engine, session_factory):
    app = make_app(engine, session_factory, metrics_token="s3cret-token",
                   metrics_allow="192.0.2.0/24")
    client = app.test_client()
    outside = {"REMOTE_ADDR": "203.0.113.7"}
    assert client.get("/metrics", environ_base=outside).status_code == 404
    assert client.get("/metrics", environ_base=outside,
                      headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert client.get("/metrics", environ_base=outside,
                      headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.8"}).status_code == 200


def test_metrics_refuses_a_request_forwarded_by_a_proxy_it_was_not_told_about(client):
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 404


def test_behind_a_declared_proxy_the_forwarded_address_decides(engine, session_factory):
    client = make_app(engine, session_factory, proxies=1).test_client()
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 404
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_metrics_read_job_runs_match_runs_and_ledger_transfers_from_the_database(
        client, world, session):
    fund_wallet(world, "res_a1", 10)
    start = NOW - timedelta(hours=1)
    session.add_all([
        JobRun(job="prod_test_job", started_at=start, finished_at=start + timedelta(seconds=2),
               ok=True),
        JobRun(job="prod_test_job", started_at=start, finished_at=start + timedelta(seconds=40),
               ok=False, error="boom"),
        JobRun(job="prod_test_job", started_at=NOW),
        MatchRun(community_id=world["a1"], mode="single", subject="units", status="done",
                 params={}, created_at=start, started_at=start,
                 finished_at=start + timedelta(seconds=3)),
    ])
    session.commit()
    text = client.get("/metrics").text
    job = {"job": "prod_test_job"}
    assert [sample(text, "linli_job_runs_total", **job, outcome=o)
            for o in ("ok", "failed", "running")] == [1, 1, 1]
    assert sample(text, "linli_job_duration_seconds_count", **job) == 2
    assert sample(text, "linli_job_duration_seconds_sum", **job) == pytest.approx(42, abs=0.01)
    assert sample(text, "linli_job_duration_seconds_bucket", **job, le="5.0") == 1
    assert sample(text, "linli_job_last_success_timestamp_seconds", **job) == pytest.approx(
        (start + timedelta(seconds=2)).timestamp(), abs=0.01)
    assert sample(text, "linli_match_run_duration_seconds_count", subject="units",
                  status="done") >= 1
    assert sample(text, "linli_ledger_transfers_total", kind="adjustment") >= 1
    assert sample(text, "linli_metrics_database_up") == 1
