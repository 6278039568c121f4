"""`linli backup`: a consistent, checked copy of the embedded SQLite database while it is written;
on PostgreSQL it points to pg_dump."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import migrate
from web.app import create_app
from web.cli import backup_sqlite
from web.config import Settings

pytestmark = pytest.mark.db

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
def embedded(tmp_path):
    """A migrated SQLite database file (WAL mode, as the app runs it) and an app on it."""
    path = tmp_path / "linli.db"
    url = f"sqlite:///{path}"
    migrate(url)
    app = create_app(Settings(database_url=url, secret_key="x", testing=True))
    with app.app_context():
        app.extensions["linli"].engine.connect().close()  # the app's PRAGMAs: WAL from here on
    yield path, app
    app.extensions["linli"].engine.dispose()


class Writer(threading.Thread):
    """Another connection inserting job runs, one commit each, until told to stop."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.stop, self.written = path, threading.Event(), 0

    def run(self):
        with closing(sqlite3.connect(self.path, timeout=30)) as conn:
            while not self.stop.is_set():
                conn.execute("INSERT INTO job_runs (job, started_at) VALUES (?, ?)",
                             ("backup_test", "2026-11-20 02:00:00.000000"))
                conn.commit()
                self.written += 1


def rows(path: Path, sql: str):
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def test_linli_backup_copies_the_database_while_another_connection_writes(embedded, tmp_path):
    path, app = embedded
    writer = Writer(path)
    writer.start()
    try:
        while writer.written < 20:  # the writer is busy before the copy starts
            writer.join(0.01)
        result = app.test_cli_runner().invoke(args=["backup", "--to", str(tmp_path / "copies")])
        during = writer.written
    finally:
        writer.stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    copy = Path(result.output.strip())
    assert copy.parent == tmp_path / "copies" and copy.name.startswith("linli-")
    assert copy.name.endswith("Z.db") and copy.stat().st_mode & 0o777 == 0o600
    assert rows(copy, "PRAGMA integrity_check") == [("ok",)]
    assert rows(copy, "PRAGMA journal_mode") == [("delete",)]
    assert rows(copy, "SELECT version_num FROM alembic_version") == \
        rows(path, "SELECT version_num FROM alembic_version")
    copied = rows(copy, "SELECT count(*) FROM job_runs")[0][0]
    assert 20 <= copied <= during <= writer.written
    assert not list(copy.parent.glob("*.partial"))


def test_two_backups_in_the_same_second_get_two_files(embedded, tmp_path):
    path, _ = embedded
    first = backup_sqlite(path, tmp_path / "b", now=NOW)
    second = backup_sqlite(path, tmp_path / "b", now=NOW)
    assert first.name == "linli-20261120T020000Z.db"
    assert second.name == "linli-20261120T020000Z-1.db"


def test_linli_backup_defaults_to_the_instance_backups_folder(embedded, tmp_path, monkeypatch):
    _, app = embedded
    monkeypatch.setenv("LINLI_INSTANCE_PATH", str(tmp_path / "instance"))
    result = app.test_cli_runner().invoke(args=["backup"])
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip()).parent == tmp_path / "instance" / "backups"


def test_linli_backup_on_postgresql_refuses_and_points_to_pg_dump():
    app = create_app(Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/linli",
                              secret_key="x", testing=True))
    result = app.test_cli_runner().invoke(args=["backup"])
    assert result.exit_code != 0
    assert "pg_dump" in result.output and "docs/deploy.md" in result.output
