"""Gunicorn settings for Linli (`gunicorn -c python:web.gunicorn_conf … web.wsgi:app`).

`linli serve --prod` uses this module and adds --bind, --workers and --threads on the command
line (which win over the values here). Threads in each worker (gthread), no access log (the app
writes its own JSON request log), gunicorn's own messages as JSON when LINLI_LOG_FORMAT=json,
and Prometheus' multiprocess files cleaned at start and released when a worker exits.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 4
accesslog = None
graceful_timeout = 30  # a worker finishes the requests in hand before it stops
timeout = 120          # a match run of up to 2,000 demands is solved inside its request
keepalive = 5
control_socket_disable = True  # gunicorn ≥ 25's runtime control socket: unused, and one per home

if os.environ.get("LINLI_LOG_FORMAT", "text").lower() == "json":
    # gunicorn's own messages as JSON on stderr; the root logger is the app's (web.wsgi).
    logconfig_dict = {
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False,
                               "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False,
                                "qualname": "gunicorn.access"},
        },
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "formatters": {"json": {"()": "web.observability.JsonFormatter"}},
    }


def on_starting(server):
    """Empty the multiprocess directory: counts from an earlier run must not be added in."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()


def child_exit(server, worker):
    """A worker is gone: mark its live gauges dead (its counters stay in the sums)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the multiprocess directory if `linli serve --prod` made it for this run."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder and os.environ.get("LINLI_METRICS_DIR_OWNED") == "1":
        shutil.rmtree(folder, ignore_errors=True)
