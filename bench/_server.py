"""What the benchmarks against a running server share: a fresh database, the server, pgbench.

The server is Werkzeug's threaded server, pre-forked: `workers` processes each bind the same
port with SO_REUSEPORT (the kernel spreads connections across them) and serve each connection
on its own thread, with their own engine and pool. Run as a script, this file is one worker:
    .venv/bin/python bench/_server.py --url URL --port PORT [--pool 40] [--profile DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
BENCH_ENV = {"LINLI_SECRET_KEY": "bench-secret-key", "PYTHONUNBUFFERED": "1"}


# ---- databases ------------------------------------------------------------------------------

def _admin(server: str):
    import psycopg

    dsn = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    return psycopg.connect(dsn, autocommit=True)


@contextmanager
def fresh_postgres(prefix: str, server: str = PG_SERVER):
    """Yield the URL of a new, empty database on `server`; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with _admin(server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with _admin(server) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate(url: str) -> None:
    """Build the schema at `url` with the real Alembic migrations."""
    from alembic import command
    from web.cli import alembic_config

    command.upgrade(alembic_config(url), "head")


def fast_password_hashes(password: str) -> None:
    """Argon2 is slow on purpose; seed many users with one precomputed hash (as the tests do)."""
    from web.services import auth, users

    known = auth.hash_password(password)
    users.hash_password = lambda pw: known if pw == password else auth.hash_password(pw)


def linli_cli(url: str, *args: str) -> subprocess.CompletedProcess:
    """Run `linli ARGS` against `url`."""
    env = {**os.environ, **BENCH_ENV, "LINLI_DATABASE_URL": url}
    return subprocess.run([str(ROOT / ".venv/bin/linli"), *args], env=env, capture_output=True,
                          text=True, check=False)


# ---- the server -----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User plus system CPU seconds each live process has used so far."""
    tick, used = os.sysconf("SC_CLK_TCK"), {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / tick
    return used


def backends_of(database: str) -> list[int]:
    """The PostgreSQL backends serving `database` on this machine."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text.startswith("postgres:") and f" {database} " in text:
            pids.append(int(cmdline.parent.name))
    return pids


@dataclass
class Server:
    base: str
    procs: list[subprocess.Popen]

    @property
    def pids(self) -> list[int]:
        own = [p.pid for p in self.procs]
        return own + children_of(own)


def children_of(pids: list[int]) -> list[int]:
    """The live child processes of `pids` (gunicorn's workers under its master)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid in pids:
            found.append(int(stat.parent.name))
    return found


@contextmanager
def serve(url: str, *, workers: int, pool: int, profile_dir: str | None = None,
          server: str = "werkzeug", threads: int = 8):
    """Start the server on one port — `workers` pre-forked Werkzeug processes, or gunicorn with
    `workers` gthread workers of `threads` threads (the production command in the README) —
    yield the Server, and stop it after."""
    port = free_port()
    env = {**os.environ, **BENCH_ENV}
    if server == "gunicorn":
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        cmd = [gunicorn, "--workers", str(workers), "--worker-class", "gthread",
               "--threads", str(threads), "--bind", f"127.0.0.1:{port}", "--log-level",
               "warning", "web.app:create_app()"]
        procs = [subprocess.Popen(cmd, env={**env, "LINLI_DATABASE_URL": url,
                                            "LINLI_POOL_SIZE": str(pool)})]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--url", url, "--port", str(port),
               "--pool", str(pool)] + (["--profile", profile_dir] if profile_dir else [])
        procs = [subprocess.Popen(cmd, env=env) for _ in range(workers)]
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, procs)
        yield Server(base, procs)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(base: str, procs: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a server worker exited while starting")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    time.sleep(0.5 * len(procs))  # let the other workers bind too
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server at {base} did not become healthy")


def _listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(256)
    return sock


def run_worker(url: str, port: int, pool: int, profile_dir: str | None) -> None:
    """One server process: the real app factory behind Werkzeug's threaded server."""
    from werkzeug.serving import make_server

    from web.app import create_app
    from web.config import Settings
    from web.db import make_engine

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on the hot path
    sock = _listening_socket(port)
    # Connections open only as requests need them, up to `pool`; beyond it a request waits.
    options = {} if url.startswith("sqlite") else {"pool_size": pool, "max_overflow": 0,
                                                   "pool_timeout": 120}
    engine = make_engine(url, **options)
    app = create_app(Settings(database_url=url, secret_key=BENCH_ENV["LINLI_SECRET_KEY"]),
                     engine=engine)
    profiler = RequestProfiler(app.wsgi_app, engine) if profile_dir else None
    if profiler:
        app.wsgi_app = profiler
    server = make_server("127.0.0.1", port, app, threaded=True, fd=sock.fileno())

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()
    if profiler:
        profiler.dump(Path(profile_dir))


# ---- profiling (only with --profile) --------------------------------------------------------

class RequestProfiler:
    """cProfile around every request, plus wall time per SQL statement; merged at exit."""

    def __init__(self, app, engine):
        from sqlalchemy import event
        from sqlalchemy.orm import Session

        self.app, self.lock = app, threading.Lock()
        self.profiles: list[cProfile.Profile] = []
        self.sql: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
        self.requests: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
        self.local = threading.local()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._before_commit)
        event.listen(Session, "after_commit", self._after_commit)
        event.listen(Session, "after_rollback", self._forget)

    def _before(self, _conn, _cursor, statement, *_args):
        self.local.t0 = time.perf_counter()

    def _after(self, _conn, _cursor, statement, *_args):
        now = time.perf_counter()
        self._record(_shape(statement), now - self.local.t0)
        if "FOR UPDATE" in statement and not hasattr(self.local, "locked"):
            self.local.locked = now  # the transaction's first row lock
        if "FROM ledger_heads" in statement and "FOR UPDATE" in statement:
            self.local.head = now

    def _before_commit(self, _conn):
        self.local.commit_t0 = time.perf_counter()

    def _after_commit(self, _session):
        t0 = getattr(self.local, "commit_t0", None)
        now = time.perf_counter()
        if t0 is not None:
            self._record("COMMIT", now - t0)
            self.local.commit_t0 = None
        for name, label in (("locked", "first row lock"), ("head", "chain head lock")):
            if hasattr(self.local, name):
                self._record(f"HELD: {label} → commit", now - getattr(self.local, name))
                delattr(self.local, name)

    def _forget(self, _session):
        for name in ("locked", "head"):
            if hasattr(self.local, name):
                delattr(self.local, name)

    def _record(self, key: str, seconds: float) -> None:
        with self.lock:
            row = self.sql[key]
            row[0] += 1
            row[1] += seconds
            row[2] = max(row[2], seconds)

    def __call__(self, environ, start_response):
        profile = cProfile.Profile()
        t0 = time.perf_counter()
        profile.enable()
        try:
            return list(self.app(environ, start_response))
        finally:
            profile.disable()
            key = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"
            with self.lock:
                self.profiles.append(profile)
                self.requests[key][0] += 1
                self.requests[key][1] += time.perf_counter() - t0

    def dump(self, folder: Path) -> None:
        import pstats

        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"worker-{os.getpid()}"
        if self.profiles:
            stats = pstats.Stats(self.profiles[0])
            for profile in self.profiles[1:]:
                stats.add(profile)
            stats.dump_stats(f"{stem}.prof")
        (Path(f"{stem}.json")).write_text(json.dumps(
            {"requests": self.requests, "sql": self.sql}, ensure_ascii=False))


def summarise_profile(folder: str, top: int = 15) -> str:
    """The workers' figures merged: time per request, the slowest SQL by total time, and the
    functions with the most cumulative time."""
    import io
    import pstats

    sql: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    requests: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for path in Path(folder).glob("worker-*.json"):
        data = json.loads(path.read_text())
        for key, (n, total, worst) in data["sql"].items():
            row = sql[key]
            row[0], row[1], row[2] = row[0] + n, row[1] + total, max(row[2], worst)
        for key, (n, total) in data["requests"].items():
            requests[key][0] += n
            requests[key][1] += total
    out = io.StringIO()
    for key, (n, total) in sorted(requests.items()):
        print(f"{n:6d} requests, {total / n * 1000:7.1f} ms mean in the app: {key}", file=out)
    print("SQL by total wall time (count, total ms, mean ms, max ms):", file=out)
    for key, (n, total, worst) in sorted(sql.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"{n:6d} {total * 1000:9.0f} {total / n * 1000:7.2f} {worst * 1000:8.1f}  "
              f"{key[:110]}", file=out)
    profiles = [str(p) for p in Path(folder).glob("worker-*.prof")]
    if profiles:
        stats = pstats.Stats(*profiles, stream=out)
        stats.sort_stats("cumulative").print_stats(r"web/", top)
    return out.getvalue()


def _shape(statement: str) -> str:
    """A statement with its literals and parameter lists folded, to group alike statements."""
    text = re.sub(r"\s+", " ", statement).strip()
    text = re.sub(r"%\(\w+\)s|\$\d+|\?", "?", text)
    text = re.sub(r"\(\?(, \?)+\)", "(?…)", text)
    return text[:160]


# ---- pgbench --------------------------------------------------------------------------------

ONE_UPDATE = ("\\set aid random(1, 100000 * :scale)\n"
              "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n")
ONE_HOT_ROW = "UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1;\n"


def pgbench(*, clients: int, seconds: int, server: str = PG_SERVER) -> dict:
    """TPS pgbench reaches on this machine: its simple update (-N), one UPDATE of a random row,
    and one UPDATE of a single hot row (what one serialised chain head allows)."""
    import tempfile

    host = re.search(r"@([^:/]+)(?::(\d+))?", server)
    conn = ["-h", host.group(1), "-p", host.group(2) or "5432", "-U", "postgres"]
    results = {"clients": clients, "threads": 2, "seconds": seconds, "scale": 10}
    with fresh_postgres("linli_pgbench", server) as url, tempfile.TemporaryDirectory() as tmp:
        db = url.rsplit("/", 1)[1]
        subprocess.run(["pgbench", *conn, "-i", "-q", "-s", "10", db], check=True,
                       capture_output=True)
        for name, script in (("one_update", ONE_UPDATE), ("one_hot_row", ONE_HOT_ROW)):
            Path(tmp, f"{name}.sql").write_text(script)
        runs = {"simple_update_N": ["-N"],
                "one_update": ["-f", f"{tmp}/one_update.sql"],
                "one_hot_row_update": ["-f", f"{tmp}/one_hot_row.sql"]}
        for name, extra in runs.items():
            out = subprocess.run(["pgbench", *conn, "-c", str(clients), "-j", "2", "-T",
                                  str(seconds), "-n", *extra, db], check=True,
                                 capture_output=True, text=True).stdout
            tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
            latency = re.search(r"latency average = ([\d.]+) ms", out)
            results[f"{name}_tps"] = round(float(tps.group(1)), 1) if tps else None
            results[f"{name}_latency_avg_ms"] = float(latency.group(1)) if latency else None
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="one benchmark server worker")
    parser.add_argument("--url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pool", type=int, default=40)
    parser.add_argument("--profile")
    args = parser.parse_args()
    run_worker(args.url, args.port, args.pool, args.profile)


if __name__ == "__main__":
    main()


# ---- open-loop arrivals (with --rate) ---------------------------------------------------------

class Pacer:
    """Open-loop load: the send times of a Poisson process at `rate` requests a second, handed
    to the client threads in order. A client sends at its time, or at once when it is late
    (every client busy), and the request's latency counts from the time it was due, so a slow
    server is not hidden by clients that wait for it (no coordinated omission). Closed-loop
    clients, by contrast, measure the latency of a saturated server: by Little's law it is
    then the number of clients over the throughput, whatever the server does."""

    def __init__(self, rate: float, start: float, until: float, seed: int = 0):
        self.rate, self.until = rate, until
        self.rng, self.lock = random.Random(seed), threading.Lock()
        self.next = start

    def take(self) -> float | None:
        """The next send time, or None when the run is over."""
        with self.lock:
            due = self.next
            if due >= self.until:
                return None
            self.next += self.rng.expovariate(self.rate)
            return due

    @staticmethod
    def next_send(pacer: Pacer | None, until: float) -> float | None:
        """When a client sends next: now (closed loop), or its turn's due time, waited for (open
        loop); None when the run is over."""
        due = pacer.take() if pacer else time.perf_counter()
        if due is None or due >= until:
            return None
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        return due
