"""Shared parts of the real-concurrency tests: a fresh database, threads released together, HTTP.

The usual fixtures run a test inside one connection's rolled-back transaction, which cannot show
what happens when many connections race for the same rows. These helpers build a database of
the test's own — a new SQLite file, or a new PostgreSQL database beside TEST_DATABASE_URL that
is dropped afterwards — and fire calls from real threads released together by a barrier.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import World
from web.db import make_engine

WAIT = 60  # seconds a thread may take before the test calls it a deadlock


@dataclass
class FreshDatabase:
    """A migrated database of its own, its engine (40 pooled connections) and a committed world."""

    url: str
    engine: Engine
    factory: sessionmaker[Session]
    world: World

    def settle(self) -> None:
        """End the set-up session's transaction (on SQLite a read holds BEGIN IMMEDIATE's lock)."""
        self.world.session.commit()


def postgres_database(base_url: str, suffix: str) -> Iterator[str]:
    """Create `<test db>_<suffix>` on the test server; yield its URL; drop it afterwards."""
    base = make_url(base_url)
    name = f"{base.database}_{suffix}"
    server = make_engine(base_url, isolation_level="AUTOCOMMIT")

    def drop(conn) -> None:
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))

    with server.connect() as conn:
        drop(conn)  # a leftover from an interrupted run
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            drop(conn)
        server.dispose()


def fresh_database_url(folder: Path, suffix: str) -> Iterator[str]:
    """A new PostgreSQL database beside TEST_DATABASE_URL, else a new SQLite file in `folder`."""
    base_url = os.environ.get("TEST_DATABASE_URL")
    if base_url and base_url.startswith("postgresql"):
        yield from postgres_database(base_url, suffix)
    else:
        yield f"sqlite:///{folder / f'{suffix}.db'}"


# ---- firing at the same moment ---------------------------------------------------------------

@dataclass
class Outcome:
    value: object = None
    error: BaseException | None = None
    trace: str = ""


def at_once(count: int, call: Callable[[int], object]) -> list[Outcome]:
    """Run call(0) … call(count-1) in `count` threads released together; fail on a hang."""
    barrier = threading.Barrier(count)
    outcomes = [Outcome() for _ in range(count)]

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=WAIT)
            outcomes[i].value = call(i)
        except BaseException as exc:  # every outcome is checked by the test
            outcomes[i].error = exc
            outcomes[i].trace = traceback.format_exc()

    threads = [threading.Thread(target=worker, args=(i,), name=f"racer-{i}", daemon=True)
               for i in range(count)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + WAIT
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {WAIT}s (deadlock?): {stuck}"
    return outcomes


# ---- HTTP ------------------------------------------------------------------------------------

def post_json(url: str, token: str, body: dict, *, headers: dict | None = None,
              timeout: float = WAIT) -> tuple[int, dict]:
    """POST `body` as JSON with a bearer token; (status, decoded answer), errors included."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())
