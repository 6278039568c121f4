"""Embedded mode: on SQLite, reading pages and lists does not queue behind a writer."""

import pytest
from sqlalchemy import text

from tests.conftest import migrate
from tests.factories import build_world
from web.app import create_app
from web.config import Settings
from web.db import make_engine, make_session_factory

pytestmark = pytest.mark.db


def test_a_get_request_is_answered_while_another_connection_holds_the_write_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    migrate(url)
    engine = make_engine(url)
    setup = make_session_factory(engine)()
    world = build_world(setup)
    headers = world.headers("sec_a1")
    setup.close()
    app = create_app(Settings(database_url=url, secret_key="x", testing=True), engine=engine)
    client = app.test_client()
    with engine.connect() as writer:  # BEGIN IMMEDIATE: holds SQLite's write lock
        writer.execute(text("UPDATE communities SET name = name WHERE id = :id"), {"id": world["a1"]})
        demands = client.get("/api/v1/demands", headers=headers)
        health = client.get("/healthz")
        writer.rollback()
    assert demands.status_code == 200 and demands.json["total"] == 1
    assert health.status_code == 200
    engine.dispose()
