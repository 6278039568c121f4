"""One runner per database, with real processes: two `linli scheduler` processes on a fresh
database — on PostgreSQL they race for the advisory lock, on SQLite for the file lock — and only
one runs jobs until it is killed; then the other takes over. A job that fails every second does
not stop the scheduler."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from tests.conftest import migrate
from tests.integration.fresh_db import fresh_database_url
from web.db import make_engine
from web.models import JobRun, SchedulerJob
from web.scheduler import JOBS, LOCK_KEY

pytestmark = pytest.mark.db

WAIT = 60  # seconds a step may take on a busy machine before the test gives up
TAKEOVER = 30  # seconds the standby may take to notice the holder died and take over
LINLI = Path(sys.executable).with_name("linli")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("scheduler")


@pytest.fixture(scope="module")
def fresh_url(folder):
    """A migrated database of the module's own (PostgreSQL beside TEST_DATABASE_URL, or SQLite)."""
    urls = fresh_database_url(folder, "scheduler")
    url = next(urls)
    migrate(url)
    yield url
    urls.close()  # drops the PostgreSQL database


@pytest.fixture(scope="module")
def fresh_engine(fresh_url):
    engine = make_engine(fresh_url)
    yield engine
    engine.dispose()


class Scheduler:
    """One `linli scheduler` process, its output in a file."""

    def __init__(self, url: str, folder: Path, name: str):
        self.log = folder / f"{name}.log"
        env = {**os.environ, "LINLI_DATABASE_URL": url, "LINLI_INSTANCE_PATH": str(folder),
               "LINLI_SECRET_KEY": "scheduler-test", "LINLI_SCHEDULER_EXTRA_JOB":
               "heartbeat:1,failing:1", "PYTHONWARNINGS": "ignore"}
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen([str(LINLI), "scheduler", "--standby-poll", "0.5"],
                                            env=env, stdout=out, stderr=subprocess.STDOUT)
        self.pid = self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=WAIT)


@dataclass
class Pair:
    """Two schedulers started together, and the last job run before they started."""

    schedulers: list[Scheduler]
    before: int

    def __iter__(self):
        return iter(self.schedulers)


@pytest.fixture
def schedulers(fresh_url, fresh_engine, tmp_path):
    """Two schedulers on the module's database; always kill both at the end."""
    with make_session(fresh_engine) as session:
        before = session.scalar(select(func.max(JobRun.id))) or 0
    started = [Scheduler(fresh_url, tmp_path, name) for name in ("first", "second")]
    yield Pair(started, before)
    for scheduler in started:
        scheduler.kill()


def runs(engine, job: str, after_id: int = 0) -> list[JobRun]:
    with make_session(engine) as session:
        return list(session.scalars(select(JobRun).where(JobRun.job == job, JobRun.id > after_id)
                                    .order_by(JobRun.id)))


def at_least(count: int, engine, job: str, after_id: int = 0) -> list[JobRun] | None:
    """The job's runs (after `after_id`) once there are `count` of them."""
    found = runs(engine, job, after_id)
    return found if len(found) >= count else None


def make_session(engine):
    from sqlalchemy.orm import Session

    return Session(engine.execution_options(linli_read_only=True), expire_on_commit=False)


def pid_of(run: JobRun) -> int:
    return int(run.host.rsplit(":", 1)[1])


def wait_for(what: str, check: Callable[[], object], procs, timeout: float = WAIT):
    """Poll `check` until it answers something true; fail with the processes' output if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    logs = "\n".join(f"--- {p.log.name} (pid {p.pid})\n{p.output()[-3000:]}" for p in procs)
    pytest.fail(f"gave up waiting for {what} after {timeout}s\n{logs}")


def test_a_job_that_fails_every_time_is_recorded_and_the_scheduler_goes_on(fresh_engine,
                                                                          schedulers):
    failed = wait_for("two failed runs",
                      lambda: at_least(2, fresh_engine, "failing", schedulers.before), schedulers)
    assert {r.ok for r in failed} == {False}
    assert "RuntimeError: the test job that always fails" in failed[0].error
    later = wait_for("a heartbeat after the failures",
                     lambda: at_least(1, fresh_engine, "heartbeat", failed[-1].id), schedulers)
    assert {r.ok for r in later} == {True}
    assert all(s.process.poll() is None for s in schedulers)


def test_the_jobs_live_in_the_persistent_job_store(fresh_engine, schedulers):
    wait_for("a heartbeat", lambda: at_least(1, fresh_engine, "heartbeat", schedulers.before),
             schedulers)
    with make_session(fresh_engine) as session:
        stored = dict(session.execute(select(SchedulerJob.id, SchedulerJob.next_run_time)).all())
    assert set(stored) == {spec.name for spec in JOBS} | {"heartbeat", "failing"}
    assert all(value is not None for value in stored.values())


def test_only_one_of_two_schedulers_runs_jobs_and_the_other_takes_over_when_it_dies(
        fresh_engine, schedulers):
    by_pid = {s.pid: s for s in schedulers}
    wait_for("one scheduler to lead and the other to stand by", lambda: all(
        "took the scheduler lock" in s.output() or "standing by" in s.output()
        for s in schedulers), schedulers)
    first_runs = wait_for("three heartbeats",
                          lambda: at_least(3, fresh_engine, "heartbeat", schedulers.before),
                          schedulers)
    leader = by_pid[pid_of(first_runs[0])]
    [standby] = [s for s in schedulers if s is not leader]
    assert {pid_of(r) for r in first_runs} == {leader.pid}
    assert "standing by" in standby.output()
    assert "took the scheduler lock" not in standby.output()

    leader.kill()
    last_id = runs(fresh_engine, "heartbeat")[-1].id
    taken_over = wait_for("the standby's first heartbeat",
                          lambda: at_least(1, fresh_engine, "heartbeat", last_id), schedulers,
                          timeout=TAKEOVER)

    assert {pid_of(r) for r in taken_over} == {standby.pid}
    assert "took the scheduler lock" in standby.output()


def advisory_holders(engine) -> list[int]:
    """Server pids holding the scheduler's advisory lock in this database."""
    high, low = LOCK_KEY >> 32, LOCK_KEY & 0xFFFFFFFF
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = :high"
            " AND objid = :low AND objsubid = 1 AND database = (SELECT oid FROM pg_database"
            " WHERE datname = current_database())"), {"high": high, "low": low}).scalars())


@pytest.mark.postgresql
def test_a_leader_whose_lock_connection_is_cut_stops_its_jobs_and_the_lock_is_taken_again(
        fresh_url, fresh_engine, schedulers):
    last_id = wait_for("a heartbeat",
                       lambda: at_least(1, fresh_engine, "heartbeat", schedulers.before),
                       schedulers)[-1].id
    [holder] = advisory_holders(fresh_engine)
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": holder}).scalar()

    wait_for("the leader to notice", lambda: any(
        "lost the scheduler lock's connection" in s.output() for s in schedulers), schedulers)
    wait_for("the lock to be taken again", lambda: [
        pid for pid in advisory_holders(fresh_engine) if pid != holder], schedulers)
    assert wait_for("a heartbeat after the cut",
                    lambda: at_least(1, fresh_engine, "heartbeat", last_id), schedulers)
    assert all(s.process.poll() is None for s in schedulers)
