"""The WSGI entry point for gunicorn: `gunicorn -c python:web.gunicorn_conf web.wsgi:app`.

Importing this module is what starts a web worker, so it configures the logs (JSON or text,
LINLI_LOG_FORMAT / LINLI_LOG_LEVEL) and builds the app from the environment.
"""

from __future__ import annotations

from web.app import create_app
from web.config import log_format, log_level
from web.observability import configure_logging

configure_logging(log_format(), log_level())
app = create_app()
