"""The Flask application factory. Nothing happens at import time: no engine, no app."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, g, send_from_directory
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from web.config import Settings
from web.db import make_engine, make_session_factory
from web.errors import LinliError

DOCS_ASSETS = "/api/v1/docs/assets/"


class DatabaseIntConverter(IntegerConverter):
    """`<int:id>` limited to what an INTEGER column holds, so a huge id is a 404, not a 500."""

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


@dataclass
class Linli:
    """What the app holds for its lifetime: settings, the engine, the session factory."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    # Sessions for GET/HEAD requests: on SQLite they read a WAL snapshot instead of queueing
    # behind writers for the write lock. (PostgreSQL does not need it; it does no harm.)
    read_session_factory: sessionmaker[Session] | None = None

    # Runs a match run outside the request; tests swap in a synchronous runner.
    background: Callable[[Callable[[], object]], object] | None = None

    def run_in_background(self, run_id: int) -> None:
        """Execute a queued match run on the app's worker thread, in its own session."""
        from web.services.matching import execute_match_run

        def job():
            with self.session_factory() as session:
                execute_match_run(session, run_id=run_id)

        if self.background is None:
            self.background = ThreadPoolExecutor(1, thread_name_prefix="linli-match").submit
        self.background(job)

    def use_sessions(self, factory) -> None:
        """Serve every request, reads and writes, from `factory` (tests bind it to one connection)."""
        self.session_factory = factory
        self.read_session_factory = factory


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> Flask:
    """Build the app: database, API, pages, docs, health, metrics, rate limits, CLI."""
    settings = settings or Settings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_NAME="linli_session",
        JSON_AS_ASCII=False,
        # No request body is larger than an import file (2 MB): refuse bigger ones (413)
        # before they are read.
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
        API_TITLE="Linli 邻里共建 API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=DOCS_ASSETS,
        API_SPEC_OPTIONS={"security": [{"bearer": []}]},
    )
    app.json.ensure_ascii = False
    app.url_map.converters["int"] = DatabaseIntConverter
    if engine is None:
        sqlite = settings.database_url.startswith("sqlite")
        engine = make_engine(settings.database_url, **({} if sqlite else {
            "pool_size": settings.pool_size, "max_overflow": settings.pool_size}))
    app.extensions["linli"] = Linli(
        settings, engine, make_session_factory(engine),
        make_session_factory(engine.execution_options(linli_read_only=True)))

    if settings.proxies:  # the client's address and scheme from the proxies' headers
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxies, x_proto=settings.proxies,
                                x_host=settings.proxies)
    from web.observability import init_observability
    from web.ratelimit import init_rate_limits

    init_observability(app)  # first: the request id and timing wrap every other hook
    _register_api(app)
    _register_pages(app)
    _register_basics(app)
    init_rate_limits(app)  # after the pages' hook that loads the signed-in user
    from web.cli import register_cli

    register_cli(app)
    return app


def _register_api(app: Flask) -> None:
    from sqlalchemy.exc import DataError

    from web.api import init_api
    from web.api.common import handle_data_error, handle_linli_error, handle_unexpected

    init_api(app)
    app.register_error_handler(LinliError, handle_linli_error)
    app.register_error_handler(DataError, handle_data_error)
    app.register_error_handler(Exception, handle_unexpected)


def _register_pages(app: Flask) -> None:
    from web.i18n import init_i18n
    from web.pages.views import init_pages

    init_i18n(app)
    init_pages(app)


def _register_basics(app: Flask) -> None:
    import swagger_ui_bundle

    assets = Path(swagger_ui_bundle.swagger_ui_path)

    @app.get(DOCS_ASSETS + "<path:filename>")
    def docs_assets(filename: str):
        """Swagger UI's files, served from the installed package (no CDN)."""
        return send_from_directory(assets, filename, max_age=86400)

    @app.teardown_appcontext
    def close_session(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()
