"""A real `linli serve --prod`: gunicorn with two workers on the test database answers /readyz,
its /metrics sums the requests of both workers, its logs are JSON lines, and it cleans up."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.db

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def prod_server(database_url, tmp_path):
    """`linli serve --prod --workers 2` on a free loopback port; always stopped afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(LINLI_DATABASE_URL=database_url, LINLI_SECRET_KEY="prod-test",
               LINLI_INSTANCE_PATH=str(tmp_path / "instance"), LINLI_POOL_SIZE="2")
    env.pop("LINLI_LOG_FORMAT", None)
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([str(BIN / "linli"), "serve", "--prod", "--workers", "2",
                                    "--threads", "2", "--port", str(port)],
                                   env=env, stdout=stdout, stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, process, err)
        yield base, process, out, err
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_ready(base: str, process: subprocess.Popen, log: Path, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited:\n{log.read_text()}"
        try:
            if get(base + "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not become ready:\n{log.read_text()}")


def healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "linli_http_requests_total" and s.labels == {
                    "endpoint": "healthz", "method": "GET", "status": "200"}:
                return s.value
    return 0.0


def worker_pids(folder: Path) -> set[str]:
    return {m.group(1) for f in folder.glob("counter_*.db")
            if (m := re.fullmatch(r"counter_(\d+)\.db", f.name))}


def test_linli_serve_prod_answers_readyz_and_its_metrics_sum_both_workers(prod_server):
    base, process, out, err = prod_server
    folder = Path(re.search(r"gathered in (\S+)", out.read_text()).group(1))
    status, body = get(base + "/readyz")
    assert status == 200 and json.loads(body)["checks"]["database"]["ok"] is True
    sent = 0
    with ThreadPoolExecutor(16) as pool:
        while len(worker_pids(folder)) < 2 and sent < 2000:  # until both workers counted some
            assert all(s == 200 for s, _ in pool.map(lambda _: get(base + "/healthz"), range(16)))
            sent += 16
    assert len(worker_pids(folder)) == 2, "one worker served every request"
    for _ in range(4):  # whichever worker answers the scrape, it reports the sum
        status, text = get(base + "/metrics")
        assert status == 200
        assert healthz_count(text) == sent


def test_linli_serve_prod_logs_json_lines_and_removes_its_metrics_folder_on_exit(prod_server):
    base, process, out, err = prod_server
    folder = Path(re.search(r"gathered in (\S+)", out.read_text()).group(1))
    assert get(base + "/api/v1/auth/me")[0] == 401
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    lines = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    requests = [line for line in lines if line["logger"] == "linli.request"]
    assert any(line["path"] == "/api/v1/auth/me" and line["status"] == 401 and
               len(line["request_id"]) == 32 for line in requests)
    assert not folder.exists()
