"""The real app on a real threaded server on 127.0.0.1, for tests that need HTTP over a socket."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from werkzeug.serving import make_server

from web.app import create_app
from web.config import Settings


@contextmanager
def serve(database_url: str, *, secret_key: str = "live-secret", wait: float = 60) -> Iterator[str]:
    """Serve the app with its own engine (as in production) on a free port; yield its base URL."""
    app = create_app(Settings(database_url=database_url, secret_key=secret_key, testing=True))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=wait)
        server.server_close()
        app.extensions["linli"].engine.dispose()
