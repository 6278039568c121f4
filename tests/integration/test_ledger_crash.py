"""Crashes: the real server is killed with SIGKILL in the middle of a stream of point moves.

`linli serve` runs as a child process on a fresh database (a SQLite file, or a new PostgreSQL
database beside TEST_DATABASE_URL). A few client threads stream orders, awards and adjustments at
it over HTTP, each with its own Idempotency-Key; the server is killed at a random moment, five
times over. After each restart `linli ledger verify` must pass, every acknowledged (201) request
must be in the books, every refused one must not, and each wallet and item must hold exactly
what the requests that did commit imply. A request that got no answer may or may not have
committed; it is sent again with the same key after the restart, and must then move nothing
more than once.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import migrate
from tests.factories import build_world
from tests.integration import lovebank_helpers as lb
from tests.integration.fresh_db import fresh_database_url, post_json
from web.db import make_engine, make_session_factory
from web.models import IdempotencyKey, LedgerTransfer, MarketItem, MarketOrder
from web.services import lovebank
from web.services.auth import issue_token
from web.services.base import local_date, utcnow
from web.services.journal import find_wallet

pytestmark = pytest.mark.db

SEED = 15
KILLS = 5
CLIENTS = 4
RESIDENTS = 4
AWARD = 20  # building_head, with no caps in this community's rules
ITEMS = {"大米": 3, "食用油": 5, "洗衣液": 8}  # name → points price
BIN = Path(sys.executable).parent
# A request is cut off by the kill long before this; it only bounds a hung server.
REQUEST_TIMEOUT = 20
UNANSWERED = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError,
              OSError)


@dataclass
class Town:
    """The committed set-up: ids, bearer tokens, and what each wallet and item held at first."""

    url: str
    community_id: int
    residents: list[int]
    items: dict[int, int]  # item id → price
    tokens: dict[int | str, str]  # resident id, or "secretary" → bearer token
    balances: dict[int, int]
    stock: dict[int, int]


@pytest.fixture(scope="module")
def crash_url(tmp_path_factory):
    yield from fresh_database_url(tmp_path_factory.mktemp("ledger_crash"), "ledger_crash")


@pytest.fixture(scope="module")
def town(crash_url, fast_password_hashes) -> Town:
    """Rules without caps in force today, four residents with points, three stocked items."""
    migrate(crash_url)
    engine = make_engine(crash_url)
    with make_session_factory(engine)() as session:
        world = build_world(session)
        rules = {**lb.RULES, "daily_cap": None, "monthly_cap": None}
        lovebank.publish_rules(session, actor=world.actor("sec_a1"), community_id=world["a1"],
                               document=rules, effective_from=local_date(utcnow()))
        people = [lb.resident(world, f"crash_res{i}") for i in range(RESIDENTS)]
        for person in people:
            lb.fund_wallet(world, person.username, 150)
        items = {lb.goods(world, name, price=price, stock=400).id: price
                 for name, price in ITEMS.items()}
        users = {**{p.id: p for p in people}, "secretary": world.user("sec_a1")}
        tokens = {who: issue_token(session, user, ttl_hours=2)[0] for who, user in users.items()}
        residents = [p.id for p in people]
        session.commit()
    engine.dispose()
    town = Town(crash_url, world["a1"], residents, items, tokens, {}, {})
    town.balances, town.stock = read_books(town)
    return town


# ---- the server as a child process -------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """One run of `linli serve`; its log is kept to explain a failure."""

    process: subprocess.Popen
    base: str
    log: Path

    @classmethod
    def launch(cls, town: Town, instance: Path) -> Server:
        """Start the process; call wait_until_up before sending it anything."""
        port = free_port()
        log = instance / f"serve-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([str(BIN / "linli"), "serve", "--port", str(port)],
                                       env=linli_env(town, instance), stdout=out,
                                       stderr=subprocess.STDOUT)
        return cls(process, f"http://127.0.0.1:{port}", log)

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server died:\n{self.log.read_text()}"
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except UNANSWERED:
                time.sleep(0.1)
        raise AssertionError(f"the server did not come up:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no rollback, no flush; then reap the process."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def linli_env(town: Town, instance: Path) -> dict:
    return {**os.environ, "LINLI_DATABASE_URL": town.url, "LINLI_INSTANCE_PATH": str(instance),
            "LINLI_SECRET_KEY": "crash-test"}


def ledger_verify(town: Town, instance: Path) -> subprocess.Popen:
    """Start `linli ledger verify`; its exit code and output come from .communicate()."""
    return subprocess.Popen([str(BIN / "linli"), "ledger", "verify"], env=linli_env(town, instance),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def restart_and_verify(town: Town, instance: Path, when: str) -> Server:
    """Restart the server and, while it boots and before any request reaches it, run
    `linli ledger verify` (both start in a second or two; the database is the same)."""
    server = Server.launch(town, instance)
    with ledger_verify(town, instance) as verify:
        output, _ = verify.communicate(timeout=120)
    try:
        server.wait_until_up()
    except BaseException:
        server.kill()
        raise
    if verify.returncode != 0:
        server.kill()
        raise AssertionError(f"{when}: linli ledger verify exited {verify.returncode}:\n{output}")
    return server


# ---- the stream of requests --------------------------------------------------------------------

@dataclass
class Move:
    """One point-moving request, what it would move, and the answer it got (None: no answer)."""

    key: str
    path: str
    token: str
    body: dict
    points: dict[int, int]  # user id → change
    stock: dict[int, int] = field(default_factory=dict)  # item id → change
    status: int | None = None
    answer: dict | None = None

    def send(self, base: str) -> None:
        try:
            self.status, self.answer = post_json(
                base + self.path, self.token, self.body,
                headers={"Idempotency-Key": self.key}, timeout=REQUEST_TIMEOUT)
        except UNANSWERED:
            self.status, self.answer = None, None


def random_move(rng: random.Random, town: Town, key: str) -> Move:
    """An order (most often), an award to one or two residents, or an adjustment up or down."""
    c, roll = town.community_id, rng.random()
    if roll < 0.55:
        user, (item, price) = rng.choice(town.residents), rng.choice(list(town.items.items()))
        quantity = rng.randint(1, 2)
        return Move(key, "/api/v1/market/orders", town.tokens[user],
                    {"community_id": c, "lines": [{"item_id": item, "quantity": quantity}]},
                    {user: -price * quantity}, {item: -quantity})
    secretary = town.tokens["secretary"]
    if roll < 0.75:
        people = rng.sample(town.residents, rng.randint(1, 2))
        return Move(key, "/api/v1/ledger/awards", secretary,
                    {"community_id": c, "activity": "building_head", "user_ids": people,
                     "reason": "楼栋长值班"}, {u: AWARD for u in people})
    user, points = rng.choice(town.residents), rng.choice([-30, -10, 15, 25, 40])
    return Move(key, "/api/v1/ledger/adjustments", secretary,
                {"community_id": c, "user_id": user, "points": points, "reason": "核对更正"},
                {user: points})


def stream(server: Server, town: Town, rng: random.Random, epoch: int, stop: threading.Event,
           moves: list[Move]) -> list[threading.Thread]:
    """Start CLIENTS threads sending moves until `stop` is set or the server stops answering."""
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(10_000):
            with lock:
                move = random_move(rng, town, f"crash-{epoch}-{n}-{i}")
                moves.append(move)
            move.send(server.base)
            if move.status is None or stop.is_set():
                return

    threads = [threading.Thread(target=client, args=(n,), name=f"client-{n}", daemon=True)
               for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    return threads


# ---- checking the books against the answers ----------------------------------------------------

def read_books(town: Town) -> tuple[dict[int, int], dict[int, int]]:
    """(balance of each resident's wallet, stock of each item) as committed."""
    engine = make_engine(town.url)
    try:
        with make_session_factory(engine)() as session:
            balances = {u: find_wallet(session, town.community_id, u).balance
                        for u in town.residents}
            stock = {i: session.get(MarketItem, i).stock for i in town.items}
            return balances, stock
    finally:
        engine.dispose()


def committed_keys(town: Town, moves: list[Move]) -> dict[str, int | None]:
    engine = make_engine(town.url)
    try:
        with make_session_factory(engine)() as session:
            rows = session.execute(select(IdempotencyKey.key, IdempotencyKey.result_id).where(
                IdempotencyKey.key.in_([m.key for m in moves])))
            return dict(rows.all())
    finally:
        engine.dispose()


def orders_and_redemptions(town: Town) -> tuple[int, int]:
    engine = make_engine(town.url)
    try:
        with make_session_factory(engine)() as session:
            return (session.scalar(select(func.count()).select_from(MarketOrder)),
                    session.scalar(select(func.count()).select_from(LedgerTransfer).where(
                        LedgerTransfer.kind == "redemption")))
    finally:
        engine.dispose()


def check_books(town: Town, moves: list[Move], when: str) -> None:
    """Acknowledged moves are in, refused ones are not, and the numbers are what the
    committed moves imply."""
    keys = committed_keys(town, moves)
    unexpected = [(m.key, m.status, m.answer) for m in moves
                  if m.status not in (None, 201, 409)]
    assert not unexpected, f"{when}: answers other than 201 or 409: {unexpected[:5]}"
    for move in moves:
        if move.status == 201:
            assert keys.get(move.key) is not None, f"{when}: {move.key} was acknowledged " \
                f"but is not in the books"
        elif move.status == 409:
            assert move.answer["error"]["code"] in ("insufficient_points", "out_of_stock")
            assert move.key not in keys, f"{when}: {move.key} was refused but is in the books"
    assert all(result is not None for result in keys.values()), \
        f"{when}: a key was stored without its result (a half-finished request)"
    balances, stock = dict(town.balances), dict(town.stock)
    for move in moves:
        if move.key in keys:
            for user, change in move.points.items():
                balances[user] += change
            for item, change in move.stock.items():
                stock[item] += change
    assert read_books(town) == (balances, stock), when
    orders, redemptions = orders_and_redemptions(town)
    assert orders == redemptions == sum(1 for m in moves if m.key in keys and m.stock)


def test_killing_the_server_mid_stream_leaves_books_that_verify_and_match_every_answer(
        town, tmp_path):
    rng = random.Random(SEED)
    moves: list[Move] = []
    server = restart_and_verify(town, tmp_path, "at the start")
    try:
        for epoch in range(KILLS):
            stop = threading.Event()
            threads = stream(server, town, rng, epoch, stop, moves)
            time.sleep(rng.uniform(0.5, 1.5))
            server.kill()
            stop.set()
            for thread in threads:
                thread.join(timeout=REQUEST_TIMEOUT + 5)
            assert not any(t.is_alive() for t in threads), "a client hung after the kill"
            when = f"after kill {epoch + 1}"
            server = restart_and_verify(town, tmp_path, when)
            check_books(town, moves, when)
            # A client that got no answer sends the same request again, with the same key.
            for move in [m for m in moves if m.status is None]:
                move.send(server.base)
                assert move.status is not None, f"{when}: the restarted server did not answer"
            check_books(town, moves, f"{when}, unanswered requests sent again")
    finally:
        server.kill()
    assert sum(1 for m in moves if m.status == 201) >= KILLS * CLIENTS, \
        "the stream moved too little to prove anything"
