"""The scheduler's job table and its wrapper: every run recorded as a JobRun, ok or failed, and a
failing job never stops the next; `linli jobs run` and `linli jobs list`. (Two real scheduler
processes sharing one database: test_scheduler_processes.py.)"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW
from web import scheduler
from web.models import JobRun
from web.scheduler import JOBS, JobSpec, get_job, job_table, run_job, summary_json

pytestmark = pytest.mark.db

BROKEN = JobSpec("broken", "tests.integration.test_scheduler:explode", every=timedelta(minutes=1))
MISSING = JobSpec("missing", "web.services.no_such_module:nothing", every=timedelta(minutes=1))


def explode(session, *, now):
    raise ValueError(f"broken on purpose at {now.isoformat()}")


@pytest.fixture
def broken_jobs(monkeypatch):
    """The job table with a job that raises and one whose function does not exist."""
    monkeypatch.setattr(scheduler, "JOBS", (*JOBS, BROKEN, MISSING))


def runs_of(session, job: str) -> list[JobRun]:
    session.expire_all()
    return list(session.scalars(select(JobRun).where(JobRun.job == job).order_by(JobRun.id)))


# ---- the job table ----------------------------------------------------------------------------

def test_the_job_table_names_every_job_of_the_issue_with_its_service_function():
    table = {spec.name: spec.target for spec in JOBS}
    assert table == {
        "service-levels": "web.services.service_levels:check_service_levels",
        "dispatch-timeouts": "web.services.service_levels:expire_dispatches",
        "auto-confirm": "web.services.service_levels:auto_confirm",
        "points-expiry": "web.services.lovebank:expire_points",
        "expiry-notices": "web.services.notifications:notify_expiring_points",
        "orders-expiry": "web.services.market:expire_orders",
        "deliveries": "web.services.notifications:send_due_deliveries",
        "digests": "web.services.notifications:send_daily_digests",
        "auto-proposals": "web.services.auto_matching:propose_for_new_items",
        "daily-figures": "web.services.snapshots:snapshot_daily_figures",
    }


def test_daily_jobs_fire_at_their_time_in_shanghai():
    # NOW is 10:00 in Shanghai on 20 November: points expire at 00:10 on the 21st (16:10 UTC
    # on the 20th), daily figures follow at 00:30
    fire = {name: get_job(name).trigger().get_next_fire_time(None, NOW)
            for name in ("points-expiry", "daily-figures", "expiry-notices")}
    assert {k: v.astimezone(UTC) for k, v in fire.items()} == {
        "points-expiry": datetime(2026, 11, 20, 16, 10, tzinfo=UTC),
        "daily-figures": datetime(2026, 11, 20, 16, 30, tzinfo=UTC),
        "expiry-notices": datetime(2026, 11, 21, 1, 0, tzinfo=UTC),
    }


def test_schedules_read_in_words():
    assert [(s.name, s.schedule) for s in JOBS if s.name in (
        "deliveries", "service-levels", "digests", "points-expiry")] == [
        ("service-levels", "every 5 min"), ("points-expiry", "daily 00:10 Asia/Shanghai"),
        ("deliveries", "every 1 min"), ("digests", "every 1 h")]


def test_every_job_may_start_late_within_its_period_but_not_later():
    assert get_job("deliveries").grace_seconds == 60
    assert get_job("auto-proposals").grace_seconds == 30 * 60
    assert get_job("daily-figures").grace_seconds == 6 * 3600


def test_the_test_only_jobs_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LINLI_SCHEDULER_EXTRA_JOB", "heartbeat:1, failing:3")
    extra = [(s.name, s.every) for s in job_table()[len(JOBS):]]
    assert extra == [("heartbeat", timedelta(seconds=1)), ("failing", timedelta(seconds=3))]


def test_an_unknown_test_only_job_is_refused(monkeypatch):
    import click

    monkeypatch.setenv("LINLI_SCHEDULER_EXTRA_JOB", "rm-rf:1")
    with pytest.raises(click.UsageError, match="heartbeat"):
        job_table()


def test_a_list_result_is_kept_as_its_count_and_first_items():
    assert json.loads(summary_json(list(range(150)))) == {"count": 150,
                                                         "items": list(range(100))}
    assert json.loads(summary_json({"day": "2026-11-19"})) == {"day": "2026-11-19"}
    assert summary_json(None) is None


# ---- the wrapper --------------------------------------------------------------------------------

def test_a_job_that_succeeds_is_recorded_ok_with_its_summary(session, session_factory):
    run = run_job("orders-expiry", factory=session_factory, now=NOW)
    [stored] = runs_of(session, "orders-expiry")
    assert (stored.id, stored.ok, stored.error) == (run.id, True, None)
    assert (stored.started_at, stored.finished_at) == (NOW, NOW)
    assert json.loads(stored.result) == {"count": 0, "items": []}
    assert stored.host.endswith(f":{os.getpid()}")


def test_a_job_that_raises_is_recorded_failed_with_its_traceback(session, session_factory,
                                                                 broken_jobs):
    run = run_job("broken", factory=session_factory, now=NOW)
    [stored] = runs_of(session, "broken")
    assert (stored.id, stored.ok, stored.result, stored.finished_at) == (run.id, False, None, NOW)
    assert "Traceback" in stored.error
    assert "ValueError: broken on purpose at 2026-11-20T02:00:00+00:00" in stored.error


def test_a_job_whose_function_is_missing_is_recorded_as_failed(session, session_factory, broken_jobs):
    run = run_job("missing", factory=session_factory, now=NOW)
    assert run.ok is False
    assert "ModuleNotFoundError" in run.error


def test_after_a_failed_run_the_next_job_still_runs(session, session_factory, broken_jobs):
    run_job("broken", factory=session_factory, now=NOW)
    after = run_job("orders-expiry", factory=session_factory, now=NOW + timedelta(minutes=1))
    assert after.ok is True
    assert [r.ok for r in runs_of(session, "broken") + runs_of(session, "orders-expiry")] == [
        False, True]


def test_a_run_that_cannot_even_be_recorded_is_logged_not_raised(caplog):
    def no_database():
        raise ConnectionError("the database is away")

    assert run_job("orders-expiry", factory=no_database, now=NOW) is None
    assert "job orders-expiry could not run or be recorded" in caplog.text


def test_a_job_that_leaves_its_transaction_open_does_not_have_it_committed(
        session, session_factory, monkeypatch):
    def sloppy(s, *, now):
        s.add(JobRun(job="left-open", started_at=now))  # added, never committed

    monkeypatch.setattr(scheduler, "JOBS", (JobSpec("sloppy", "x:y", every=timedelta(1)),))
    monkeypatch.setattr(JobSpec, "load", lambda self: sloppy)
    assert run_job("sloppy", factory=session_factory, now=NOW).ok is True
    assert runs_of(session, "left-open") == []


# ---- the commands -------------------------------------------------------------------------------

def test_jobs_run_runs_the_job_now_through_the_wrapper(runner, session):
    result = runner.invoke(args=["jobs", "run", "orders-expiry"])
    assert result.exit_code == 0, result.output
    [stored] = runs_of(session, "orders-expiry")
    assert stored.ok is True
    assert f"job orders-expiry ok (run {stored.id})" in result.output


def test_jobs_run_of_a_failing_job_exits_1_with_the_error(runner, session, broken_jobs):
    result = runner.invoke(args=["jobs", "run", "broken"])
    assert result.exit_code == 1
    assert "job broken failed" in result.output
    assert [r.ok for r in runs_of(session, "broken")] == [False]


def test_jobs_run_of_an_unknown_job_names_the_known_ones_and_runs_nothing(runner, session):
    result = runner.invoke(args=["jobs", "run", "nonsense"])
    assert result.exit_code == 2
    assert "auto-proposals" in result.output
    assert session.scalar(select(func.count()).select_from(JobRun)) == 0


def test_jobs_list_shows_each_job_with_its_schedule_and_last_outcome(runner, session_factory,
                                                                     broken_jobs):
    run_job("orders-expiry", factory=session_factory, now=NOW)
    run_job("broken", factory=session_factory, now=NOW)
    result = runner.invoke(args=["jobs", "list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert set(lines) == {s.name for s in job_table()}
    assert "every 15 min" in lines["orders-expiry"]
    assert "2026-11-20 10:00" in lines["orders-expiry"] and " ok " in lines["orders-expiry"]
    assert " failed " in lines["broken"]
    assert "never" in lines["daily-figures"]
