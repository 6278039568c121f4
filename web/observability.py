"""Watching the service run: request ids, structured logs, /healthz, /readyz and /metrics.

- Every request gets an id (a sane incoming `X-Request-ID`, else a new one), echoed in the
  response's `X-Request-ID`, in JSON error bodies and in every log line written meanwhile.
- Logs go to stderr, one JSON object per line (`LINLI_LOG_FORMAT=json`) or as plain text.
- /healthz: the process answers (no database call). /readyz: the database answers at the code's
  Alembic head, and Redis answers when configured; 503 with the reason otherwise.
- /metrics: Prometheus. Request counts and latencies are counted in the process (summed over
  gunicorn's workers in multiprocess mode); ledger transfers, job runs and match runs are read
  from the database at scrape time, so they cover every process that writes them (web workers,
  the scheduler, the CLI) and only what was committed.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime
from functools import cache

from flask import Flask, Response, abort, current_app, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import case, func, select, text

from web.config import PROJECT_ROOT

log = logging.getLogger("linli.request")

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
QUIET_ENDPOINTS = {"healthz", "readyz", "metrics"}  # polled every few seconds: logged at DEBUG
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RUN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)

REQUESTS = Counter("linli_http_requests", "HTTP requests answered",
                   ["endpoint", "method", "status"])
LATENCY = Histogram("linli_http_request_duration_seconds", "Time to answer an HTTP request",
                    ["endpoint", "method", "status"], buckets=LATENCY_BUCKETS)


# ---- request ids and logs -----------------------------------------------------------------------

def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    return g.get("request_id") if has_request_context() else None


def new_request_id(incoming: str | None) -> str:
    """The client's (or nginx's) X-Request-ID when it is sane, else a fresh uuid4 hex."""
    if incoming and REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


# What every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_FIELDS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC), level, logger, message, request_id, pid, and
    whatever the call passed in `extra=` (method, path, status, duration_ms, user_id …)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        entry = {"timestamp": stamp.replace("+00:00", "Z"), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage(),
                 "request_id": getattr(record, "request_id", None) or current_request_id(),
                 "pid": record.process}
        entry.update({k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Plain lines for a terminal (`make run`), with the request id in brackets."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = getattr(record, "request_id", None) or current_request_id() or "-"
        return super().format(record)


def configure_logging(fmt: str = "text", level: str = "INFO", stream=None) -> logging.Handler:
    """Send every log record to stderr (or `stream`) as JSON or text; safe to call again."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "linli", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.linli = True
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # our request log replaces its own
    logging.getLogger("alembic").setLevel(logging.WARNING)  # /readyz reads the migrations quietly
    return handler


def _start_request() -> None:
    g.request_id = new_request_id(request.headers.get("X-Request-ID"))
    g.request_started = time.perf_counter()


def _user_id() -> int | None:
    actor, user = g.get("actor"), g.get("page_user")
    return actor.user_id if actor is not None else (user.id if user is not None else None)


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id") or new_request_id(None)
    response.headers["X-Request-ID"] = request_id
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    endpoint = request.url_rule.endpoint if request.url_rule else "unmatched"
    method = request.method if request.method in METHODS else "other"
    status = str(response.status_code)
    REQUESTS.labels(endpoint, method, status).inc()
    LATENCY.labels(endpoint, method, status).observe(seconds)
    duration_ms = round(seconds * 1000, 1)
    log.log(logging.DEBUG if endpoint in QUIET_ENDPOINTS else logging.INFO,
            "%s %s %s %sms", request.method, request.path, status, duration_ms,
            extra={"method": request.method, "path": request.path,
                   "status": response.status_code, "duration_ms": duration_ms,
                   "endpoint": endpoint, "user_id": _user_id(), "remote_addr": request.remote_addr})
    return response


# ---- health and readiness ---------------------------------------------------------------------

@cache
def code_heads() -> frozenset[str]:
    """The Alembic head revision(s) of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(str(PROJECT_ROOT / "alembic")).get_heads())


def database_check(engine) -> dict:
    """Does the database answer, and is its schema at the code's head revision?"""
    try:
        with engine.connect().execution_options(linli_read_only=True) as conn:
            found = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except Exception as exc:  # the answer is the database's state, whatever it is
        return {"ok": False, "dialect": engine.dialect.name,
                "reason": f"database unreachable or not migrated ({type(exc).__name__})"}
    heads = code_heads()
    check = {"ok": found == heads, "dialect": engine.dialect.name,
             "revision": ",".join(sorted(found)) or None, "head": ",".join(sorted(heads))}
    if found != heads:
        check["reason"] = "the database's migrations are not at the code's head: run linli db upgrade"
    return check


def redis_check(url: str) -> dict:
    """Does Redis (the rate limits' storage) answer a PING?"""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "reason": f"redis unreachable ({type(exc).__name__})"}
    finally:
        client.close()


def healthz():
    """Liveness: the process answers (the database is /readyz's business)."""
    return {"status": "ok"}


def readyz():
    """Readiness: the database answers at the code's head revision, and Redis when configured."""
    linli = current_app.extensions["linli"]
    checks = {"database": database_check(linli.engine)}
    if linli.settings.redis_url:
        checks["redis"] = redis_check(linli.settings.redis_url)
    ready = all(check["ok"] for check in checks.values())
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503


# ---- metrics ----------------------------------------------------------------------------------

def _duration(engine, started, finished):
    """Seconds between two timestamp columns, in the database's own arithmetic."""
    if engine.dialect.name == "postgresql":
        return func.extract("epoch", finished - started)
    return (func.julianday(finished) - func.julianday(started)) * 86400.0


def _histogram_rows(session, engine, table, labels, buckets):
    started, finished = table.c.started_at, table.c.finished_at
    seconds = _duration(engine, started, finished)
    columns = [func.count(), func.coalesce(func.sum(seconds), 0.0)]
    columns += [func.sum(case((seconds <= bound, 1), else_=0)) for bound in buckets]
    query = (select(*[table.c[name] for name in labels], *columns)
             .where(started.is_not(None), finished.is_not(None))
             .group_by(*[table.c[name] for name in labels]))
    return session.execute(query).all()


def _histogram(name, doc, rows, labels, buckets) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    width = len(labels)
    for row in rows:
        count, total = int(row[width]), float(row[width + 1])
        cumulative = [(str(bound), int(n or 0)) for bound, n in zip(buckets, row[width + 2:],
                                                                    strict=True)]
        family.add_metric([str(v) for v in row[:width]], cumulative + [("+Inf", count)], total)
    return family


class DatabaseCollector:
    """Figures read from the database at scrape time: ledger transfers by kind, scheduler job
    runs (counts by outcome, durations, last success) and match-run durations."""

    def __init__(self, linli):
        self.linli = linli

    def collect(self):
        """Yield the metric families; a database that does not answer yields only `up 0`."""
        up = GaugeMetricFamily("linli_metrics_database_up", "The database answered the scrape")
        session = self.linli.read_session_factory()
        try:
            families = list(self._families(session))
        except Exception:
            logging.getLogger(__name__).warning("metrics: the database did not answer",
                                                exc_info=True)
            families = []
        finally:
            session.close()
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families

    def _families(self, session):
        from web.models import JobRun, LedgerTransfer, MatchRun

        engine = self.linli.engine
        transfers = CounterMetricFamily("linli_ledger_transfers", "Ledger transfers written, by "
                                        "kind (committed, from every process)", labels=["kind"])
        for kind, n in session.execute(select(LedgerTransfer.kind, func.count())
                                       .group_by(LedgerTransfer.kind)):
            transfers.add_metric([kind], n)
        yield transfers
        yield from self._jobs(session, engine, JobRun.__table__)
        yield _histogram("linli_match_run_duration_seconds", "Match runs from start to finish",
                         _histogram_rows(session, engine, MatchRun.__table__,
                                         ["subject", "status"], RUN_BUCKETS),
                         ["subject", "status"], RUN_BUCKETS)

    def _jobs(self, session, engine, table):
        runs = CounterMetricFamily("linli_job_runs", "Scheduler job runs by outcome "
                                   "(ok, failed, running)", labels=["job", "outcome"])
        outcome = case((table.c.finished_at.is_(None), "running"),
                       (table.c.ok.is_(True), "ok"), else_="failed")
        for job, result, n in session.execute(select(table.c.job, outcome, func.count())
                                              .group_by(table.c.job, outcome)):
            runs.add_metric([job, result], n)
        yield runs
        yield _histogram("linli_job_duration_seconds", "Scheduler job runs from start to finish",
                         _histogram_rows(session, engine, table, ["job"], RUN_BUCKETS),
                         ["job"], RUN_BUCKETS)
        last = GaugeMetricFamily("linli_job_last_success_timestamp_seconds",
                                 "When each job last finished without error", labels=["job"])
        for job, at in session.execute(select(table.c.job, func.max(table.c.finished_at))
                                       .where(table.c.ok.is_(True)).group_by(table.c.job)):
            at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
            last.add_metric([job], (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())
        yield last


def process_registry():
    """The registry of this process's counters, or of every gunicorn worker's together when
    PROMETHEUS_MULTIPROC_DIR is set (multiprocess mode)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def metrics_allowed(settings) -> bool:
    """Loopback, a network in LINLI_METRICS_ALLOW, or the bearer token LINLI_METRICS_TOKEN."""
    token = settings.metrics_token
    sent = request.headers.get("Authorization", "")
    if token and sent.lower().startswith("bearer ") and secrets.compare_digest(
            sent[7:].strip().encode(), token.encode()):
        return True
    if settings.proxies == 0 and request.headers.get("X-Forwarded-For"):
        return False  # came through a proxy we were not told about: its address says nothing
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return address.is_loopback or any(address in net for net in metrics_networks(settings))


def metrics_networks(settings) -> list:
    """LINLI_METRICS_ALLOW as networks (a bad entry stops the app at start)."""
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in settings.metrics_allow.split(",") if part.strip()]


def metrics():
    """Prometheus text: this process's (or all workers') counters, then the database figures."""
    linli = current_app.extensions["linli"]
    if not metrics_allowed(linli.settings):
        abort(404)
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(linli))
    body = generate_latest(process_registry()) + generate_latest(database)
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST,
                                   "Cache-Control": "no-store"})


def init_observability(app: Flask) -> None:
    """Request ids, the request log and counts (call first, so it wraps every other hook),
    and the /healthz, /readyz and /metrics endpoints."""
    metrics_networks(app.extensions["linli"].settings)  # fail now on a malformed setting
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
    app.add_url_rule("/metrics", "metrics", metrics)
