"""The `linli` command line: creating users with scoped roles, help texts, the secret key, db check."""

from __future__ import annotations

import stat

import pytest
from sqlalchemy import func, select

from alembic import command
from tests.conftest import TEST_PASSWORD
from web import config
from web.app import create_app
from web.cli import alembic_config
from web.config import Settings
from web.models import User
from web.services.auth import verify_password

pytestmark = pytest.mark.db


def user_count(session) -> int:
    return session.scalar(select(func.count()).select_from(User))


def create_user(runner, username: str, *roles: str, password: str = TEST_PASSWORD):
    args = ["users", "create", username, "--name", "王书记", "--password", password]
    for role in roles:
        args += ["--role", role]
    return runner.invoke(args=args)


def find_user(session, username: str) -> User | None:
    session.expire_all()
    return session.scalar(select(User).where(User.username == username))


# --- users create ------------------------------------------------------------------------------


def test_users_create_with_a_secretary_role_creates_the_user_with_that_grant(
        runner, session, world):
    result = create_user(runner, "new_secretary", f"secretary:{world['a1']}")
    assert result.exit_code == 0, result.output
    assert "new_secretary" in result.output

    user = find_user(session, "new_secretary")
    assert user is not None
    assert user.display_name == "王书记"
    assert user.is_active
    assert verify_password(user.password_hash, TEST_PASSWORD)
    assert [(g.role, g.community_id, g.subdistrict_id) for g in user.grants] == [
        ("secretary", world["a1"], world["A"])]


def test_users_create_takes_several_roles_including_a_resident_with_a_grid(
        runner, session, world):
    result = create_user(runner, "two_hats", f"grid_worker:{world['g_a1']}",
                         f"resident:{world['a1']}/{world['g_a1']}")
    assert result.exit_code == 0, result.output
    grants = sorted((g.role, g.community_id, g.grid_id)
                    for g in find_user(session, "two_hats").grants)
    assert grants == [("grid_worker", world["a1"], world["g_a1"]),
                      ("resident", world["a1"], world["g_a1"])]


def test_the_user_created_on_the_command_line_can_sign_in(runner, client, world):
    assert create_user(runner, "cli_user", f"secretary:{world['a1']}").exit_code == 0
    r = client.post("/api/v1/auth/token", json={"username": "cli_user", "password": TEST_PASSWORD})
    assert r.status_code == 201, r.json


@pytest.mark.parametrize("spec, expected", [
    ("emperor:1", "expected ROLE:SCOPE_ID"),
    ("secretary", "expected ROLE:SCOPE_ID"),
    ("secretary:", "expected ROLE:SCOPE_ID"),
    ("secretary:abc", "scope ids are numbers"),
])
def test_a_malformed_role_spec_fails_with_a_clear_message_and_creates_nothing(
        runner, session, world, spec, expected):
    before = user_count(session)
    result = create_user(runner, "should_not_exist", spec)
    assert result.exit_code != 0
    assert expected in result.output
    assert f"'{spec}'" in result.output
    assert user_count(session) == before
    assert find_user(session, "should_not_exist") is None


def test_a_role_for_a_community_that_does_not_exist_fails_and_creates_nothing(
        runner, session, world):
    before = user_count(session)
    result = create_user(runner, "should_not_exist", "secretary:999999")
    assert result.exit_code != 0
    assert "Community not found" in result.output
    assert "Traceback" not in result.output
    assert user_count(session) == before


def test_users_create_refuses_a_short_password_and_creates_nothing(runner, session, world):
    before = user_count(session)
    result = create_user(runner, "short_pw", f"secretary:{world['a1']}", password="short")
    assert result.exit_code != 0
    assert "password" in result.output and "8" in result.output
    assert user_count(session) == before


def test_users_create_refuses_a_taken_username(runner, session, world):
    before = user_count(session)
    result = create_user(runner, "sec_a1", f"secretary:{world['a1']}")
    assert result.exit_code != 0
    assert "taken" in result.output
    assert user_count(session) == before


# --- help texts --------------------------------------------------------------------------------


def help_text(runner, *args: str) -> str:
    result = runner.invoke(args=[*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def test_db_help_explains_the_group_and_names_upgrade_and_check(runner):
    text = help_text(runner, "db")
    assert "migrations" in text
    assert "upgrade" in text and "Alembic migration" in text
    assert "check" in text


def test_db_upgrade_help_explains_itself(runner):
    assert "Run every Alembic migration up to the newest" in help_text(runner, "db", "upgrade")


def test_seed_help_explains_the_group_and_names_the_demo(runner):
    text = help_text(runner, "seed")
    assert "Demo data" in text
    assert "demo" in text and "demo county" in text
    assert "--if-empty" in help_text(runner, "seed", "demo")


def test_users_create_help_explains_every_role_spec(runner):
    text = help_text(runner, "users", "create")
    assert "Create a user with scoped roles" in text
    for option in ("--name", "--password", "--phone", "--role"):
        assert option in text
    for role in ("subdistrict_admin", "secretary", "clerk", "grid_worker", "unit_admin",
                 "resident"):
        assert role in text
    assert "At least 8 characters" in text


def test_serve_help_explains_the_host_and_port(runner):
    text = help_text(runner, "serve")
    assert "Serve the app" in text
    assert "--host" in text and "--port" in text and "PORT" in text


# --- the secret key ----------------------------------------------------------------------------


def test_the_secret_key_is_generated_once_under_the_instance_path_with_mode_0600(
        tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("LINLI_SECRET_KEY", raising=False)

    first = config.secret_key()
    key_file = instance / "secret_key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert key_file.read_text().strip() == first

    assert config.secret_key() == first
    assert Settings().secret_key == first


def test_two_instance_folders_get_different_secret_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("LINLI_SECRET_KEY", raising=False)
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(tmp_path / "one"))
    first = config.secret_key()
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(tmp_path / "two"))
    assert config.secret_key() != first


def test_linli_secret_key_from_the_environment_wins_and_nothing_is_written(
        tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("LINLI_SECRET_KEY", "from-the-environment")
    assert config.secret_key() == "from-the-environment"
    assert not (instance / "secret_key").exists()


def test_the_embedded_database_defaults_to_sqlite_under_the_instance_path(tmp_path, monkeypatch):
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("LINLI_DATABASE_URL", raising=False)
    assert config.database_url() == f"sqlite:///{tmp_path / 'linli.db'}"
    monkeypatch.setenv("LINLI_DATABASE_URL", "postgresql+psycopg://u@h/linli")
    assert config.database_url() == "postgresql+psycopg://u@h/linli"


# --- db check ----------------------------------------------------------------------------------


def test_alembic_check_finds_nothing_to_add_on_the_migrated_test_database(database_url):
    command.check(alembic_config(database_url))


def test_linli_db_check_passes_against_the_migrated_test_database(database_url, engine):
    # An app of its own: the `runner` fixture keeps the test's transaction open (and, on SQLite,
    # its write lock), which the command's own connection would wait on.
    app = create_app(Settings(database_url=database_url, secret_key="test-secret", testing=True),
                     engine=engine)
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    assert "models and migrations agree" in result.output
