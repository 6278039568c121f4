"""Signing in: bearer tokens for API clients, an HttpOnly session cookie with CSRF for browsers."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import TEST_PASSWORD
from web.domain.actor import SYSTEM
from web.models import ApiToken, User
from web.services import users
from web.services.auth import issue_token
from web.services.base import utcnow

pytestmark = pytest.mark.db


def login(client, username: str, password: str = TEST_PASSWORD):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.json
    body = response.json
    assert set(body) == {"error"}
    error = body["error"]
    assert error["status"] == status
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    return error


def user_count(session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def set_cookie_headers(response, name: str) -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


# --- bearer tokens ---------------------------------------------------------------------------


def test_a_token_login_returns_a_bearer_token_that_identifies_the_user_on_me(client, world):
    r = login(client, "sec_a1")
    assert r.status_code == 201, r.json
    assert r.json["token_type"] == "Bearer"
    assert r.json["token"] and r.json["expires_at"]
    assert r.json["user"]["username"] == "sec_a1"
    assert "password" not in r.json["user"]

    me = client.get("/api/v1/auth/me", headers=bearer(r.json["token"]))
    assert me.status_code == 200, me.json
    assert me.json["id"] == world.users["sec_a1"]
    assert me.json["username"] == "sec_a1"
    assert [(g["role"], g["community_id"]) for g in me.json["roles"]] == [
        ("secretary", world["a1"])]


def test_only_the_sha256_of_a_token_is_stored_never_the_token_itself(client, session, world):
    token = login(client, "sec_a1").json["token"]
    stored = session.scalars(
        select(ApiToken.token_hash).where(ApiToken.user_id == world.users["sec_a1"])).all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert token not in stored


def test_a_wrong_password_and_an_unknown_user_both_answer_401_with_the_same_message(client, world):
    wrong_password = login(client, "sec_a1", "not-the-password")
    unknown_user = login(client, "nobody_here", TEST_PASSWORD)
    first = assert_error(wrong_password, 401, "unauthenticated")
    second = assert_error(unknown_user, 401, "unauthenticated")
    assert first.pop("request_id") != second.pop("request_id")  # each request has its own id
    assert first == second
    assert "token" not in wrong_password.json and "token" not in unknown_user.json


def test_an_inactive_user_cannot_sign_in_and_their_existing_token_stops_working(
        client, session, world):
    headers = world.headers("res_a1")
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200

    user = world.user("res_a1")
    user.is_active = False
    session.commit()

    message = assert_error(login(client, "res_a1"), 401, "unauthenticated")["message"]
    assert message == assert_error(login(client, "nobody_here"), 401, "unauthenticated")["message"]
    assert_error(client.get("/api/v1/auth/me", headers=headers), 401, "unauthenticated")
    r = client.post("/api/v1/auth/session", json={"username": "res_a1", "password": TEST_PASSWORD})
    assert_error(r, 401, "unauthenticated")


def test_a_revoked_token_answers_401_afterwards(client, world):
    token = login(client, "unit_x").json["token"]
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200

    r = client.delete("/api/v1/auth/token", headers=bearer(token))
    assert r.status_code == 204, r.json

    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401, "unauthenticated")
    assert_error(client.delete("/api/v1/auth/token", headers=bearer(token)), 401,
                 "unauthenticated")


def test_revoking_one_token_leaves_the_users_other_tokens_working(client, world):
    first = login(client, "unit_x").json["token"]
    second = login(client, "unit_x").json["token"]
    assert client.delete("/api/v1/auth/token", headers=bearer(first)).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(second)).status_code == 200


def test_an_expired_token_answers_401(client, session, world):
    token, _ = issue_token(session, world.user("sec_a1"), ttl_hours=1,
                           now=utcnow() - timedelta(hours=2))
    assert_error(client.get("/api/v1/auth/me", headers=bearer(token)), 401, "unauthenticated")


def test_a_token_that_never_existed_answers_401(client, world):
    r = client.get("/api/v1/auth/me", headers=bearer("made-up-token"))
    assert_error(r, 401, "unauthenticated")


def test_password_hashes_in_the_database_are_argon2id(client, session, world):
    password = "a-different-secret-42"
    user = users.create_user(session, actor=SYSTEM, username="new_resident", password=password,
                             display_name="新居民",
                             roles=[{"role": "resident", "community_id": world["a1"]}])
    stored = session.scalar(select(User.password_hash).where(User.id == user.id))
    assert stored.startswith("$argon2id$")
    assert password not in stored
    r = login(client, "new_resident", password)
    assert r.status_code == 201, r.json


def test_no_credentials_answer_401_in_the_error_shape(client, world):
    error = assert_error(client.get("/api/v1/auth/me"), 401, "unauthenticated")
    assert "fields" not in error
    assert_error(client.get("/api/v1/demands"), 401, "unauthenticated")


# --- browser session ---------------------------------------------------------------------------


def browser_login(client, username: str = "sec_a1"):
    r = client.post("/api/v1/auth/session", json={"username": username, "password": TEST_PASSWORD})
    assert r.status_code == 200, r.json
    return r


def new_resident(world, username: str = "resident_via_browser") -> dict:
    return {"username": username, "password": TEST_PASSWORD, "display_name": "新居民",
            "roles": [{"role": "resident", "community_id": world["a1"]}]}


def test_a_browser_sign_in_sets_an_httponly_samesite_lax_linli_session_cookie(client, world):
    r = browser_login(client)
    cookies = set_cookie_headers(r, "linli_session")
    assert len(cookies) == 1, r.headers.getlist("Set-Cookie")
    attributes = [part.strip().lower() for part in cookies[0].split(";")[1:]]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert r.json["csrf_token"]
    assert r.json["user"]["username"] == "sec_a1"


def test_a_get_with_the_session_cookie_needs_no_csrf_token(client, world):
    browser_login(client)
    r = client.get("/api/v1/auth/me")
    assert r.status_code == 200, r.json
    assert r.json["username"] == "sec_a1"


def test_a_write_with_the_session_cookie_but_no_csrf_token_is_refused_and_changes_nothing(
        client, session, world):
    browser_login(client)
    before = user_count(session)
    r = client.post("/api/v1/users", json=new_resident(world))
    assert_error(r, 403, "forbidden")
    assert user_count(session) == before
    assert session.scalar(select(User).where(User.username == "resident_via_browser")) is None


def test_a_write_with_the_session_cookie_and_a_wrong_csrf_token_is_refused(
        client, session, world):
    browser_login(client)
    before = user_count(session)
    r = client.post("/api/v1/users", json=new_resident(world),
                    headers={"X-CSRF-Token": "not-the-token"})
    assert_error(r, 403, "forbidden")
    assert user_count(session) == before


def test_a_write_with_the_session_cookie_and_the_right_csrf_token_succeeds(
        client, session, world):
    csrf = browser_login(client).json["csrf_token"]
    before = user_count(session)
    r = client.post("/api/v1/users", json=new_resident(world), headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.json
    assert r.json["username"] == "resident_via_browser"
    assert user_count(session) == before + 1


def test_signing_a_browser_out_needs_the_csrf_token_and_then_ends_the_session(client, world):
    csrf = browser_login(client).json["csrf_token"]
    assert_error(client.delete("/api/v1/auth/session"), 403, "forbidden")
    assert client.get("/api/v1/auth/me").status_code == 200

    r = client.delete("/api/v1/auth/session", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204, r.json
    assert_error(client.get("/api/v1/auth/me"), 401, "unauthenticated")


def test_a_browser_sign_in_with_a_wrong_password_sets_no_session(client, world):
    r = client.post("/api/v1/auth/session", json={"username": "sec_a1", "password": "nope-nope"})
    assert_error(r, 401, "unauthenticated")
    assert_error(client.get("/api/v1/auth/me"), 401, "unauthenticated")
