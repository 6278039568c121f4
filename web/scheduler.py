"""The scheduler process (`linli scheduler`): the jobs that keep Linli's promises on their own.

It runs in a process of its own, never in a web worker. Before it runs anything it takes a
leader lock and holds it for its life — a PostgreSQL advisory lock on a dedicated connection, or
an flock on `<instance>/scheduler.lock` with SQLite — so only one process per database runs
jobs; the others stand by, trying again every `--standby-poll` seconds, and one takes over when
the holder dies. If the lock's connection is lost the process stops its jobs and stands by again.

The jobs live in APScheduler 3's SQLAlchemy job store on the application database (the table
`apscheduler_jobs`, created by the migrations, never by APScheduler). Every run goes through
`run_job` (the stored jobs call `scheduled`, which first checks the lock is still held), which
records a `JobRun` — when, where, the summary the job returned or its traceback — and never
lets a job's exception stop the scheduler. Each job calls a service
function `(session, *, now)` — the same code the API and the CLI use — imported only when it
runs. `linli jobs list` shows the jobs and their last runs; `linli jobs run NAME` runs one now
through the same wrapper.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from web.config import instance_path
from web.models import JobRun, SchedulerJob
from web.services.base import LOCAL_TZ, utcnow, write

log = logging.getLogger("linli.scheduler")

# The advisory lock's key ("LINLI" in ASCII); PostgreSQL keeps advisory locks per database.
LOCK_KEY = 0x4C494E4C49
EXTRA_JOB_ENV = "LINLI_SCHEDULER_EXTRA_JOB"
WORKERS = 4  # jobs that may run at once (each a different job: max_instances is 1)
DAILY_GRACE = 6 * 3600  # a daily job missed (the scheduler was down) still runs within 6 hours
MAX_ITEMS = 100  # of a job's returned list, kept in the run's result


# ---- the job table ------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobSpec:
    """One job: its name, the service function it calls ("module:function", taking
    `(session, *, now)`), and when — every `every`, or daily at `at` (hour, minute) Asia/Shanghai."""

    name: str
    target: str
    every: timedelta | None = None
    at: tuple[int, int] | None = None

    @property
    def schedule(self) -> str:
        """The schedule in words."""
        if self.at is not None:
            return f"daily {self.at[0]:02d}:{self.at[1]:02d} {LOCAL_TZ}"
        seconds = int(self.every.total_seconds())
        for unit, size in (("h", 3600), ("min", 60)):
            if seconds % size == 0:
                return f"every {seconds // size} {unit}"
        return f"every {seconds} s"

    def trigger(self):
        """APScheduler's trigger for the schedule (cron triggers in Asia/Shanghai)."""
        zone = ZoneInfo(LOCAL_TZ)
        if self.at is not None:
            return CronTrigger(hour=self.at[0], minute=self.at[1], timezone=zone)
        return IntervalTrigger(seconds=int(self.every.total_seconds()), timezone=zone)

    @property
    def grace_seconds(self) -> int:
        """How late a run may start and still run (later ones are skipped to the next)."""
        return DAILY_GRACE if self.at is not None else max(1, int(self.every.total_seconds()))

    def load(self) -> Callable:
        """The service function (imported now, so a missing one fails only its own runs)."""
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


def _minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


JOBS: tuple[JobSpec, ...] = (
    JobSpec("service-levels", "web.services.service_levels:check_service_levels",
            every=_minutes(5)),
    JobSpec("dispatch-timeouts", "web.services.service_levels:expire_dispatches",
            every=_minutes(5)),
    JobSpec("auto-confirm", "web.services.service_levels:auto_confirm", every=_minutes(60)),
    JobSpec("points-expiry", "web.services.lovebank:expire_points", at=(0, 10)),
    JobSpec("expiry-notices", "web.services.notifications:notify_expiring_points", at=(9, 0)),
    JobSpec("orders-expiry", "web.services.market:expire_orders", every=_minutes(15)),
    JobSpec("deliveries", "web.services.notifications:send_due_deliveries", every=_minutes(1)),
    JobSpec("digests", "web.services.notifications:send_daily_digests", every=_minutes(60)),
    JobSpec("auto-proposals", "web.services.auto_matching:propose_for_new_items",
            every=_minutes(30)),
    # yesterday's figures (the function's default day), once the day is over
    JobSpec("daily-figures", "web.services.snapshots:snapshot_daily_figures", at=(0, 30)),
)

# Jobs only tests add, through LINLI_SCHEDULER_EXTRA_JOB=<name>:<seconds>[,<name>:<seconds>].
EXTRA_JOBS = {"heartbeat": "web.scheduler:heartbeat", "failing": "web.scheduler:failing"}


def job_table() -> tuple[JobSpec, ...]:
    """This process's jobs: JOBS, plus the test-only jobs LINLI_SCHEDULER_EXTRA_JOB names."""
    extra = []
    for item in filter(None, os.environ.get(EXTRA_JOB_ENV, "").replace(" ", "").split(",")):
        name, _, seconds = item.partition(":")
        if name not in EXTRA_JOBS or not (seconds or "1").isdigit():
            raise click.UsageError(f"{EXTRA_JOB_ENV}: expected <name>:<seconds> with a name "
                                   f"from {', '.join(EXTRA_JOBS)}, not {item!r}")
        extra.append(JobSpec(name, EXTRA_JOBS[name],
                             every=timedelta(seconds=max(1, int(seconds or 1)))))
    return (*JOBS, *extra)


def get_job(name: str) -> JobSpec:
    """The job called `name`, or a KeyError naming the known ones."""
    for spec in job_table():
        if spec.name == name:
            return spec
    raise KeyError(f"no job {name!r} (known: {', '.join(s.name for s in job_table())})")


def heartbeat(session: Session, *, now: datetime) -> dict:
    """A test-only job: it does nothing but say which process ran it."""
    return {"host": host_id(), "at": now.isoformat()}


def failing(session: Session, *, now: datetime) -> None:
    """A test-only job that always fails (the scheduler must go on)."""
    raise RuntimeError(f"the test job that always fails, at {now.isoformat()}")


def host_id() -> str:
    """This process, as `hostname:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"[:200]


# ---- one run of one job -------------------------------------------------------------------------

class _Process:
    """What the scheduler process shares with its job threads (the store pickles only a job's
    name): the session factory, and the process that holds the leader lock."""

    sessions: sessionmaker[Session] | None = None
    leader: SchedulerProcess | None = None


def scheduled(name: str) -> JobRun | None:
    """What the job store calls: run job `name` if this process still holds the lock."""
    if _Process.leader is None or not _Process.leader.still_leading():
        log.warning("job %s skipped: this process no longer holds the scheduler lock", name)
        return None
    return run_job(name, factory=_Process.sessions)


def run_job(name: str, *, factory: Callable[[], Session],
            now: datetime | None = None) -> JobRun | None:
    """Run job `name` once, recorded as a JobRun: ok with the summary it returned, or failed
    with its traceback. Never raises (a run that cannot even be recorded is logged and None).
    `now` pins the clock (tests); by default each moment is read when it comes."""
    clock = (lambda: now) if now is not None else utcnow
    try:
        spec = get_job(name)
        with factory() as session:
            return _run(session, spec, clock)
    except Exception:  # the database is away, say: the scheduler goes on to the next run
        log.exception("job %s could not run or be recorded", name)
        return None


def _run(session: Session, spec: JobSpec, clock: Callable[[], datetime]) -> JobRun:
    run = _start(session, job=spec.name, host=host_id(), now=clock())
    try:
        result = spec.load()(session, now=run.started_at)
    except Exception:
        session.rollback()
        log.exception("job %s failed", spec.name)
        return _finish(session, run_id=run.id, now=clock(), error=traceback.format_exc())
    session.rollback()  # the job owns its transactions: nothing it left open is committed here
    log.info("job %s done", spec.name)
    return _finish(session, run_id=run.id, now=clock(), result=summary_json(result))


@write
def _start(session: Session, *, job: str, host: str, now: datetime) -> JobRun:
    run = JobRun(job=job, started_at=now, host=host)
    session.add(run)
    session.flush()
    return run


@write
def _finish(session: Session, *, run_id: int, now: datetime, result: str | None = None,
            error: str | None = None) -> JobRun:
    run = session.get(JobRun, run_id)
    run.finished_at, run.ok, run.result, run.error = now, error is None, result, error
    return run


def summary_json(result) -> str | None:
    """What a job returned, as JSON text: a dict as it is, a list as its count and first items."""
    if result is None:
        return None
    if isinstance(result, list | tuple):
        result = {"count": len(result), "items": list(result[:MAX_ITEMS])}
    elif not isinstance(result, dict):
        result = {"value": result}
    return json.dumps(result, ensure_ascii=False, default=str, sort_keys=True)


# ---- the leader lock ----------------------------------------------------------------------------

class AdvisoryLock:
    """The leader lock on PostgreSQL: a session-level advisory lock held on a dedicated
    connection (no pool), which the server releases when that connection ends."""

    def __init__(self, url: str):
        self.engine = create_engine(url, poolclass=NullPool, connect_args={
            "application_name": "linli-scheduler", "keepalives": 1, "keepalives_idle": 10,
            "keepalives_interval": 5, "keepalives_count": 3})
        self.conn = None
        self.guard = threading.Lock()  # job threads and the lock check share the connection

    def acquire(self) -> bool:
        """Take the lock if it is free (never waits)."""
        with self.guard:
            try:
                if self.conn is None:
                    self.conn = self.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT")
                return bool(self.conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                              {"key": LOCK_KEY}).scalar())
            except Exception as exc:  # the database is away: try again at the next poll
                log.warning("cannot reach the database for the scheduler lock: %s", exc)
                self._drop()
                return False

    def alive(self) -> bool:
        """Whether the connection holding the lock still answers."""
        with self.guard:
            try:
                self.conn.execute(text("SELECT 1"))
                return True
            except Exception:
                self._drop()
                return False

    def release(self) -> None:
        """Give the lock back and close its connection."""
        with self.guard:
            if self.conn is not None:
                try:
                    self.conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                except Exception:  # the connection is gone, and the lock with it
                    pass
            self._drop()

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # closing a broken connection may fail; it is gone either way
                pass
        self.conn = None


class FileLock:
    """The leader lock with SQLite: an exclusive flock on a file, which the kernel releases
    when the process dies. The file names the holder, for operators."""

    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free (never waits)."""
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{host_id()}\n".encode())
        self.fd = fd
        return True

    def alive(self) -> bool:
        """A held flock cannot be lost while the process lives."""
        return self.fd is not None

    def release(self) -> None:
        """Give the lock back."""
        if self.fd is not None:
            os.close(self.fd)  # closing the only descriptor releases the flock
            self.fd = None


def leader_lock(database_url: str) -> AdvisoryLock | FileLock:
    """The leader lock for the database: advisory on PostgreSQL, a file lock for SQLite."""
    if database_url.startswith("postgresql"):
        return AdvisoryLock(database_url)
    return FileLock(instance_path() / "scheduler.lock")


# ---- the scheduler ------------------------------------------------------------------------------

class JobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy job store on the migrated `apscheduler_jobs` table: it never
    creates the table (the migrations did) and never disposes of the app's engine."""

    def __init__(self, engine: Engine):
        super().__init__(engine=engine, tablename=SchedulerJob.__tablename__)
        self.jobs_t = SchedulerJob.__table__

    def start(self, scheduler, alias):
        BaseJobStore.start(self, scheduler, alias)

    def shutdown(self):
        pass


def build_scheduler(engine: Engine, jobs: tuple[JobSpec, ...]) -> BlockingScheduler:
    """A scheduler with the persistent job store holding exactly `jobs`; a job already stored
    keeps its next run time, so a restart or a takeover does not skip a due run."""
    scheduler = BlockingScheduler(
        jobstores={"default": JobStore(engine), "process": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(WORKERS)}, timezone=ZoneInfo(LOCAL_TZ))
    stored = _stored_next_runs(engine, {spec.name for spec in jobs})
    for spec in jobs:
        kept = {"next_run_time": stored[spec.name]} if spec.name in stored else {}
        scheduler.add_job(scheduled, spec.trigger(), args=[spec.name], id=spec.name,
                          name=spec.name, replace_existing=True, coalesce=True, max_instances=1,
                          misfire_grace_time=spec.grace_seconds, **kept)
    return scheduler


def _stored_next_runs(engine: Engine, names: set[str]) -> dict[str, datetime]:
    """The stored jobs' next run times; stored jobs no longer in the table are removed."""
    with engine.begin() as conn:
        conn.execute(delete(SchedulerJob).where(SchedulerJob.id.not_in(names)))
        rows = conn.execute(select(SchedulerJob.id, SchedulerJob.next_run_time)).all()
    return {name: datetime.fromtimestamp(ts, UTC) for name, ts in rows if ts is not None}


class SchedulerProcess:
    """Stand by until the leader lock is ours, run the jobs while it stays ours, and repeat
    until stopped (SIGTERM or SIGINT)."""

    def __init__(self, engine: Engine, lock, jobs: tuple[JobSpec, ...], poll: float):
        self.engine, self.lock, self.jobs, self.poll = engine, lock, jobs, poll
        self.stopping = threading.Event()
        self.scheduler: BlockingScheduler | None = None

    def run(self) -> int:
        """The process's life; returns the exit status."""
        standing_by = False
        while not self.stopping.is_set():
            if not self.lock.acquire():
                if not standing_by:
                    log.info("standing by: another scheduler holds the lock (retry every %gs)",
                             self.poll)
                standing_by = True
                self.stopping.wait(self.poll)
                continue
            standing_by = False
            self._lead()
        log.info("scheduler stopped")
        return 0

    def _lead(self) -> None:
        log.info("took the scheduler lock as %s: running %d jobs", host_id(), len(self.jobs))
        try:
            self.scheduler = build_scheduler(self.engine, self.jobs)
            self.scheduler.add_job(self._check, IntervalTrigger(seconds=self.poll),
                                   id="leader-check", jobstore="process", coalesce=True,
                                   max_instances=1)
            self.scheduler.start()  # blocks until shut down
        except Exception:  # e.g. the database went away while starting: stand by, try again
            log.exception("the scheduler could not run")
            self.stopping.wait(self.poll)
        finally:
            self.scheduler = None
            self.lock.release()
        if not self.stopping.is_set():
            log.warning("stopped running jobs and released the lock; standing by again")

    def _check(self) -> None:
        """Every poll: stop the jobs if the process stops or the lock is lost."""
        if self.stopping.is_set():
            self._shutdown()
        else:
            self.still_leading()

    def still_leading(self) -> bool:
        """Whether the lock is still held; if it is lost, stop the jobs (and stand by)."""
        if self.lock.alive():
            return True
        log.error("lost the scheduler lock's connection: stopping the jobs")
        self._shutdown()
        return False

    def _shutdown(self) -> None:
        scheduler = self.scheduler
        if scheduler is not None and scheduler.running:
            with contextlib.suppress(SchedulerNotRunningError):  # stopped by another thread
                scheduler.shutdown(wait=False)

    def stop(self, signum=None, _frame=None) -> None:
        """Stop for good (the signal handler)."""
        log.info("stopping (signal %s)", signum)
        self.stopping.set()
        self._shutdown()


# ---- the commands -------------------------------------------------------------------------------

def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=(
            "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"))
    logging.getLogger("linli").setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@click.command("scheduler")
@click.option("--standby-poll", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between tries for the lock while another process holds it (and "
                   "between checks of a held lock's connection).")
@with_appcontext
def scheduler_command(standby_poll: float) -> None:
    """Run the scheduled jobs: one process per database runs them, others stand by."""
    _configure_logging()
    linli = current_app.extensions["linli"]
    process = SchedulerProcess(linli.engine, leader_lock(linli.settings.database_url),
                               job_table(), standby_poll)
    _Process.sessions, _Process.leader = linli.session_factory, process
    signal.signal(signal.SIGTERM, process.stop)
    signal.signal(signal.SIGINT, process.stop)
    sys.exit(process.run())


@click.group("jobs", help="The scheduler's jobs: list them, run one now.")
def jobs_group() -> None:
    pass


@jobs_group.command("list")
@with_appcontext
def jobs_list() -> None:
    """Each job: its schedule, its last run and how it ended, its next run."""
    factory = current_app.extensions["linli"].session_factory
    with factory() as session:
        nexts = dict(session.execute(select(SchedulerJob.id, SchedulerJob.next_run_time)).all())
        rows = [(spec, _last_run(session, spec.name)) for spec in job_table()]
    click.echo(f"{'job':<18} {'schedule':<28} {'last run':<17} {'outcome':<8} next run")
    for spec, last in rows:
        started = _local(last.started_at) if last else "never"
        click.echo(f"{spec.name:<18} {spec.schedule:<28} {started:<17} {_outcome(last):<8} "
                   f"{_local(_from_timestamp(nexts.get(spec.name)))}")


def _last_run(session: Session, name: str) -> JobRun | None:
    return session.scalar(select(JobRun).where(JobRun.job == name)
                          .order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(1))


def _outcome(run: JobRun | None) -> str:
    if run is None:
        return "-"
    return "running" if run.ok is None else ("ok" if run.ok else "failed")


def _from_timestamp(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _local(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(ZoneInfo(LOCAL_TZ)):%Y-%m-%d %H:%M}"


@jobs_group.command("run")
@click.argument("name")
@with_appcontext
def jobs_run(name: str) -> None:
    """Run job NAME now, recorded like a scheduled run; exit 1 if it fails."""
    try:
        get_job(name)
    except KeyError as exc:
        raise click.BadParameter(exc.args[0], param_hint="NAME") from None
    run = run_job(name, factory=current_app.extensions["linli"].session_factory)
    if run is None:
        raise click.ClickException(f"job {name} could not run (see the log)")
    if not run.ok:
        click.echo(run.error, err=True)
        raise click.ClickException(f"job {name} failed (run {run.id})")
    click.echo(f"job {name} ok (run {run.id}): {run.result or '{}'}")


def register_commands(app: Flask) -> None:
    """Attach `linli scheduler` and `linli jobs` to `app`."""
    app.cli.add_command(scheduler_command)
    app.cli.add_command(jobs_group)
