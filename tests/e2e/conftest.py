"""Browser tests' fixtures: a freshly migrated and seeded database, the real app on a live
threaded server, Debian's Chromium driven headless by Playwright, and a screenshots folder.

Everything here is built once per session: the demo seed alone takes tens of seconds. When
Chromium is missing every e2e-marked test is skipped with one reason, so `make test` says so.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.live_server import serve

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = f"Chromium not installed at {CHROMIUM}: browser tests not run"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
SEED_TIMEOUT = 180  # seconds `linli seed demo` may take before the run is called stuck
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


def pytest_collection_modifyitems(config, items) -> None:
    """Without Chromium, skip every browser test with the same clear reason — except where
    LINLI_REQUIRE_BROWSER=1 (CI sets it), where a missing browser fails the run instead."""
    if CHROMIUM.exists():
        return
    if os.environ.get("LINLI_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(f"{NO_CHROMIUM}, and LINLI_REQUIRE_BROWSER=1 requires them")
    skip = pytest.mark.skip(reason=NO_CHROMIUM)
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(skip)


_shots_taken: list[Path] = []


def pytest_terminal_summary(terminalreporter) -> None:
    """Say where this run's screenshots are."""
    if _shots_taken:
        terminalreporter.write_line(f"e2e screenshots ({len(_shots_taken)}): {SCREENSHOTS}")


def linli(*args: str, env: dict[str, str]) -> None:
    """Run the real `linli` command line (the one beside this Python) and fail on an error."""
    command = [str(Path(sys.executable).with_name("linli")), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          timeout=SEED_TIMEOUT, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory) -> str:
    """A new SQLite file, migrated and loaded with the demo county by `linli` itself."""
    folder = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{folder / 'linli.db'}"
    env = {**os.environ, "LINLI_DATABASE_URL": url, "LINLI_INSTANCE_PATH": str(folder)}
    linli("db", "upgrade", env=env)
    linli("seed", "demo", env=env)
    return url


@pytest.fixture(scope="session")
def live_server(demo_database) -> Iterator[str]:
    """The app on a real threaded server on 127.0.0.1, on a free port."""
    with serve(demo_database, secret_key="e2e-secret") as url:
        yield url

@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, for the whole session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser, live_server) -> Iterator[Callable]:
    """open_page(device) -> a page in a fresh browser context (its own cookies) on the server;
    every context opened by the test is closed after it."""
    contexts = []

    def open_(device: dict):
        context = browser.new_context(base_url=live_server, **device)
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshots_folder() -> Path:
    """tests/e2e/screenshots/, emptied at the start of the session."""
    SCREENSHOTS.mkdir(exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    return SCREENSHOTS


@pytest.fixture
def shot(request, screenshots_folder) -> Callable:
    """shot(page, "what") saves a full-page screenshot named after the test and a counter."""
    journey = request.node.name.removeprefix("test_")
    numbers = itertools.count(1)

    def save(page, what: str) -> Path:
        path = screenshots_folder / f"{journey}-{next(numbers):02d}-{what}.png"
        page.screenshot(path=str(path), full_page=True)
        _shots_taken.append(path)
        return path

    return save
