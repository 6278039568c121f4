"""Test fixtures: a database built by the real Alembic migrations, one rolled-back savepoint per test.

The database comes from TEST_DATABASE_URL (a fresh, empty PostgreSQL database in CI's second
run) and defaults to a temporary SQLite file.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from web.app import create_app
from web.config import Settings
from web.db import make_engine

TEST_PASSWORD = "password123"
NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai, a Friday


def migrate(url: str) -> None:
    """Build the schema at `url` by running every migration."""
    from alembic import command
    from web.cli import alembic_config

    command.upgrade(alembic_config(url), "head")


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked `postgresql` check what only PostgreSQL does (a lock held on a connection
    that can be cut): they run in CI's PostgreSQL pass and are left out, not skipped, on SQLite."""
    if os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"):
        return
    kept = [item for item in items if not item.get_closest_marker("postgresql")]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url):
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def rate_limits_off():
    """The suite signs in far more often than a person would: rate limits are off unless a test
    builds its Settings with them (tests/api/test_production.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LINLI_RATE_LIMIT_LOGIN", "off")
        patch.setenv("LINLI_RATE_LIMIT_POINTS", "off")
        patch.delenv("LINLI_REDIS_URL", raising=False)
        yield


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashes():
    """Argon2 is slow on purpose; hash the shared test password once for the whole run."""
    from web.services import auth, users

    known = auth.hash_password(TEST_PASSWORD)
    real = users.hash_password
    users.hash_password = lambda pw: known if pw == TEST_PASSWORD else real(pw)
    yield
    users.hash_password = real


@pytest.fixture
def connection(engine):
    """A connection in an outer transaction that is rolled back after the test."""
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def session_factory(connection):
    """Sessions whose commits become savepoints inside the test's transaction."""

    def factory() -> Session:
        return Session(bind=connection, join_transaction_mode="create_savepoint",
                       expire_on_commit=False)

    return factory


@pytest.fixture
def session(session_factory):
    s = session_factory()
    yield s
    s.close()


@pytest.fixture
def app(engine, session_factory, tmp_path):
    settings = Settings(database_url=str(engine.url), secret_key="test-secret", testing=True)
    app = create_app(settings, engine=engine)
    app.extensions["linli"].use_sessions(session_factory)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def world(session):
    """A small community world: see tests/factories.py."""
    from tests.factories import build_world

    return build_world(session)
