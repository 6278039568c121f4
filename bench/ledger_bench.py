"""Benchmark: concurrent redemptions and credits against a running server, then the books.

Builds a fresh PostgreSQL database (or `--url`, or `--sqlite`), migrates it, seeds communities,
residents with points (awards through the services) and well-stocked items, serves the app
(Werkzeug's threaded server, pre-forked into `--workers` processes), and fires baskets
(POST /api/v1/market/orders) and credits (POST /api/v1/ledger/adjustments and /awards) from
`--clients` threads, each request with its own Idempotency-Key (a few are sent twice, and the
replay must return the first result). Then it checks the books — `linli ledger verify`, every
wallet against the client's own tally, no overspend, no negative stock — runs pgbench on the
same PostgreSQL for the physical limit of one transaction per request, prints one JSON line
and drops its databases. Usage:
    .venv/bin/python bench/ledger_bench.py [--seconds 20] [--clients 32] [--communities 1]
        [--workers 3] [--url URL | --sqlite] [--profile DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import (  # noqa: E402
    Pacer,
    backends_of,
    cpu_seconds,
    fast_password_hashes,
    fresh_postgres,
    linli_cli,
    migrate,
    pgbench,
    serve,
    summarise_profile,
)
from web.db import make_engine, make_session_factory  # noqa: E402
from web.domain.actor import SYSTEM  # noqa: E402
from web.services import lovebank, market, places, users  # noqa: E402
from web.services.auth import actor_for, issue_token  # noqa: E402
from web.services.base import local_date, utcnow  # noqa: E402

PASSWORD = "bench-password-1"
RULES = {"per_hour": {"*": 10}, "activities": {"seed": 1000, "volunteer_day": 5},
         "daily_cap": None, "monthly_cap": None, "rounding": "half_up"}
SEED_POINTS = RULES["activities"]["seed"]
STOCK = 100_000
TARGETS = {"redemptions_per_s": 100, "p99_ms": 200, "violations": 0}


# ---- seeding through the services ------------------------------------------------------------

@dataclass
class Community:
    id: int
    secretary_token: str
    residents: list[tuple[int, str]] = field(default_factory=list)  # (user id, token)
    items: dict[int, int] = field(default_factory=dict)             # item id → points price


def seed(url: str, *, communities: int, residents: int, items: int) -> list[Community]:
    """Communities with a secretary, points rules, stocked items and residents holding points."""
    fast_password_hashes(PASSWORD)
    engine = make_engine(url)
    session = make_session_factory(engine)()
    sub = places.create_subdistrict(session, actor=SYSTEM, code="SD-BENCH", name="基准街道")
    session.commit()
    built = [_seed_community(session, sub.id, n, residents // communities, items)
             for n in range(communities)]
    session.close()
    engine.dispose()
    return built


def _user(session, name: str, role: str, community_id: int):
    return users.create_user(session, actor=SYSTEM, username=name, password=PASSWORD,
                             display_name=name, roles=[{"role": role,
                                                        "community_id": community_id}])


def _token(session, user) -> str:
    return issue_token(session, user, ttl_hours=24)[0]


def _seed_community(session, subdistrict_id: int, n: int, residents: int,
                    items: int) -> Community:
    community = places.create_community(session, actor=SYSTEM, subdistrict_id=subdistrict_id,
                                        code=f"C-BENCH-{n}", name=f"基准社区{n}")
    session.commit()
    secretary = _user(session, f"bench_sec_{n}", "secretary", community.id)
    built = Community(community.id, _token(session, secretary))
    sec = actor_for(secretary)
    today = local_date(utcnow())
    lovebank.publish_rules(session, actor=sec, community_id=community.id, document=RULES,
                           effective_from=today)
    for i in range(items):
        item = market.create_item(session, actor=sec, community_id=community.id, data={
            "name": f"商品{i}", "category": "日用", "kind": "goods",
            "points_price": 1 + i % 5, "value_fen": 500})
        market.receive_donation(session, actor=sec, item_id=item.id, quantity=STOCK,
                                value_fen=500 * STOCK, donor_name="基准捐赠")
        built.items[item.id] = item.points_price
    for i in range(residents):
        user = _user(session, f"bench_res_{n}_{i}", "resident", community.id)
        built.residents.append((user.id, _token(session, user)))
    ids = [user_id for user_id, _ in built.residents]
    for start in range(0, len(ids), 1000):  # an award names at most 1000 residents
        lovebank.award_points(session, actor=sec, community_id=community.id, activity="seed",
                              user_ids=ids[start:start + 1000], reason="基准初始积分",
                              idempotency_key=f"seed-{n}-{start}")
    return built


# ---- the load ---------------------------------------------------------------------------------

@dataclass
class Tally:
    """What the clients saw succeed: the books must match it exactly."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    succeeded_in_window: Counter = field(default_factory=Counter)
    wallet_delta: Counter = field(default_factory=Counter)   # (community, user) → points
    sold: Counter = field(default_factory=Counter)           # item → quantity
    spent: Counter = field(default_factory=Counter)          # community → points
    orders: Counter = field(default_factory=Counter)         # community → orders
    replays: int = 0
    replay_mismatches: int = 0
    replay_errors: int = 0


class Client:
    """One client thread's connection and its share of the load."""

    def __init__(self, base: str, communities: list[Community], tally: Tally, args, seed: int):
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.communities, self.tally, self.args = communities, tally, args
        self.rng = random.Random(seed)

    def post(self, path: str, token: str, body: dict, key: str) -> tuple[int, dict, float]:
        data = json.dumps(body)
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key,
                   "Content-Type": "application/json"}
        t0 = time.perf_counter()
        for attempt in range(2):  # a keep-alive connection the server closed is reopened once
            try:
                self.conn.request("POST", path, data, headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        elapsed = time.perf_counter() - t0
        return response.status, json.loads(payload or b"{}"), elapsed

    def run(self, start: float, measure_from: float, until: float,
            pacer: Pacer | None = None) -> None:
        """Closed loop (send, wait for the answer, send again) or, with a pacer, each request
        at its due time, its latency counted from then."""
        while (due := Pacer.next_send(pacer, until)) is not None:
            community = self.rng.choice(self.communities)
            roll = self.rng.random()
            if roll < self.args.credit_share / 2:
                kind, request = "adjustment", self.adjustment(community)
            elif roll < self.args.credit_share:
                kind, request = "award", self.award(community)
            else:
                kind, request = "redemption", self.redemption(community)
            key = f"{kind}-{uuid.uuid4().hex}"
            status, body, elapsed = self.post(*request, key)
            latency = time.perf_counter() - due if pacer else elapsed
            counted = due >= measure_from
            with self.tally.lock:
                self.tally.statuses[kind][status] += 1
                if counted:
                    self.tally.latencies[kind].append(latency)
                    self.tally.succeeded_in_window[kind] += status == 201
                if status == 201:
                    self.record(kind, community, body, request[2])
            if status == 201 and self.rng.random() < self.args.replay_share:
                self.replay(request, key, body)

    def redemption(self, community: Community):
        user_id, token = self.rng.choice(community.residents)
        chosen = self.rng.sample(sorted(community.items), self.rng.randint(1, 3))
        lines = [{"item_id": i, "quantity": self.rng.randint(1, 2)} for i in chosen]
        return "/api/v1/market/orders", token, {"community_id": community.id, "lines": lines}

    def adjustment(self, community: Community):
        user_id, _ = self.rng.choice(community.residents)
        return "/api/v1/ledger/adjustments", community.secretary_token, {
            "community_id": community.id, "user_id": user_id,
            "points": self.rng.randint(1, 20), "reason": "基准调整"}

    def award(self, community: Community):
        named = self.rng.sample(community.residents, self.rng.randint(1, 5))
        return "/api/v1/ledger/awards", community.secretary_token, {
            "community_id": community.id, "activity": "volunteer_day",
            "user_ids": [user_id for user_id, _ in named], "reason": "基准志愿日"}

    def record(self, kind: str, community: Community, body: dict, sent: dict) -> None:
        t = self.tally
        if kind == "redemption":
            t.wallet_delta[(community.id, body["user_id"])] -= body["total_points"]
            t.spent[community.id] += body["total_points"]
            t.orders[community.id] += 1
            for line in body["lines"]:
                t.sold[line["item_id"]] += line["quantity"]
        elif kind == "adjustment":
            t.wallet_delta[(community.id, sent["user_id"])] += sent["points"]
        else:
            for user_id, points in body["detail"]["points"].items():
                t.wallet_delta[(community.id, int(user_id))] += points

    def replay(self, request, key: str, first: dict) -> None:
        """The same key and body again: the first result comes back and nothing moves."""
        status, body, _ = self.post(*request, key)
        with self.tally.lock:
            self.tally.replays += 1
            if status >= 500:  # the server failed (e.g. no connection); nothing to judge
                self.tally.replay_errors += 1
            elif status != 201 or body.get("id") != first.get("id"):
                self.tally.replay_mismatches += 1


def fire(base: str, communities: list[Community], args) -> tuple[Tally, float]:
    """Run the clients for the warm-up plus the measured seconds; the measured window's length.
    With `--rate`, requests arrive at that rate (open loop) and the clients are a pool that
    sends them."""
    tally = Tally()
    clients = [Client(base, communities, tally, args, seed=n) for n in range(args.clients)]
    start = time.perf_counter()
    measure_from, until = start + args.warmup, start + args.warmup + args.seconds
    pacer = Pacer(args.rate, start, until, seed=1) if args.rate else None
    threads = [threading.Thread(target=c.run, args=(start, measure_from, until, pacer))
               for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, time.perf_counter() - measure_from  # to the last answer: never flattering


# ---- the books afterwards ----------------------------------------------------------------------

def check_books(url: str, communities: list[Community], tally: Tally) -> dict:
    """Every invariant, each as a count of the things that break it."""
    from sqlalchemy import func, select

    from web.models import LedgerAccount, MarketItem, MarketOrder, PointLot

    verify = linli_cli(url, "ledger", "verify")
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        accounts = list(s.scalars(select(LedgerAccount).where(LedgerAccount.asset == "points")))
        wallets = {(a.community_id, a.user_id): a.balance for a in accounts if a.kind == "wallet"}
        expected = {(c.id, u): SEED_POINTS + tally.wallet_delta[(c.id, u)]
                    for c in communities for u, _ in c.residents}
        by_kind = defaultdict(int)
        for a in accounts:
            by_kind[(a.community_id, a.kind)] += a.balance
        items = list(s.scalars(select(MarketItem)))
        orders = dict(s.execute(select(MarketOrder.community_id, func.count())
                                .group_by(MarketOrder.community_id)).all())
        bad_lots = s.scalar(select(func.count()).select_from(PointLot).where(
            (PointLot.remaining < 0) | (PointLot.remaining > PointLot.amount)))
        stock_drift = market.stock_matches_movements(s)
    engine.dispose()
    books = {
        "ledger_verify_failed": int(verify.returncode != 0),
        "wallets_not_matching_client_tally": sum(wallets.get(k) != v for k, v in expected.items()),
        "overspent_wallets": sum(b < 0 for b in wallets.values()),
        "bad_lots": bad_lots,
        "negative_stock": sum(i.stock is not None and i.stock < 0 for i in items),
        "stock_not_matching_sales": sum(i.stock != STOCK - tally.sold[i.id] for i in items),
        "stock_not_matching_movements": len(stock_drift),
        "communities_wallets_not_issued_minus_spent": 0,
        "orders_not_matching_client_tally": sum(
            orders.get(c.id, 0) != tally.orders[c.id] for c in communities),
        "replays_not_returning_first_result": tally.replay_mismatches,
    }
    for c in communities:
        issued = -(by_kind[(c.id, "issuing")] + by_kind[(c.id, "adjustment")])
        spent, expired = by_kind[(c.id, "supermarket")], by_kind[(c.id, "expiry")]
        if by_kind[(c.id, "wallet")] != issued - spent - expired or spent != tally.spent[c.id]:
            books["communities_wallets_not_issued_minus_spent"] += 1
    books["ledger_verify_output"] = verify.stdout.strip().splitlines()[-1:] or verify.stderr[-300:]
    return books


# ---- figures ---------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000, 1)


def figures(tally: Tally, kinds: tuple[str, ...], window: float) -> dict:
    """Successes per second in the measured window; latency percentiles of every request."""
    latencies = [x for k in kinds for x in tally.latencies[k]]
    ok = sum(tally.succeeded_in_window[k] for k in kinds)
    return {"per_s": round(ok / window, 1), "measured": len(latencies), "succeeded": ok,
            "statuses": dict(sum((tally.statuses[k] for k in kinds), Counter())),
            "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="an existing, empty database (not dropped afterwards)")
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite file")
    parser.add_argument("--communities", type=int, default=1)
    parser.add_argument("--residents", type=int, default=2000, help="in all communities")
    parser.add_argument("--items", type=int, default=50, help="per community")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=3, help="server processes")
    parser.add_argument("--server", choices=["gunicorn", "werkzeug"], default="gunicorn",
                        help="gunicorn gthread workers (production) or pre-forked Werkzeug")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--pool", type=int, help="connections per worker (default: an even "
                        "share of the clients; requests beyond it wait for one)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--rate", type=float, help="open loop: requests a second in all "
                        "(Poisson arrivals); latency counts from each request's due time")
    parser.add_argument("--credit-share", type=float, default=0.2)
    parser.add_argument("--replay-share", type=float, default=0.02)
    parser.add_argument("--pgbench-seconds", type=int, default=10, help="0 to skip pgbench")
    parser.add_argument("--profile", help="write per-worker cProfile and SQL timings here")
    args = parser.parse_args()

    with ExitStack() as stack:
        if args.url:
            url = args.url
        elif args.sqlite:
            url = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/bench.db"
        else:
            url = stack.enter_context(fresh_postgres("linli_ledger_bench"))
        migrate(url)
        t0 = time.perf_counter()
        communities = seed(url, communities=args.communities, residents=args.residents,
                           items=args.items)
        seeded = time.perf_counter() - t0
        pool = args.pool or -(-args.clients // args.workers)
        load_before = os.getloadavg()[0]
        with serve(url, workers=args.workers, pool=pool, profile_dir=args.profile,
                   server=args.server, threads=args.threads) as server:
            database = url.rsplit("/", 1)[-1]
            cpu_before = cpu_seconds(server.pids + backends_of(database))
            tally, window = fire(server.base, communities, args)
            cpu_after = (cpu_seconds(server.pids), cpu_seconds(backends_of(database)))
        load_after = os.getloadavg()[0]
        books = check_books(url, communities, tally)
        reference = (pgbench(clients=args.clients, seconds=args.pgbench_seconds)
                     if args.pgbench_seconds else None)
    violations = sum(v for k, v in books.items() if isinstance(v, int))
    done = sum(sum(c.values()) for c in tally.statuses.values()) + tally.replays
    used = [sum(after.get(pid, 0) - cpu_before.get(pid, 0) for pid in after)
            for after in cpu_after]
    redemptions = figures(tally, ("redemption",), window)
    credits = figures(tally, ("adjustment", "award"), window)
    if args.profile:
        print(summarise_profile(args.profile), file=sys.stderr)
    print(f"violations: {violations}", file=sys.stderr)
    print(json.dumps({
        "bench": "ledger", "database": url.split(":", 1)[0].split("+")[0],
        "server": (f"gunicorn, {args.workers} gthread workers × {args.threads} threads"
                   if args.server == "gunicorn" else
                   f"werkzeug threaded, {args.workers} pre-forked processes (SO_REUSEPORT)")
                  + ("" if url.startswith("sqlite") else f", pool of up to {pool} each"),
        "cores": os.cpu_count(), "clients": args.clients,
        "arrivals": f"open loop, {args.rate}/s offered" if args.rate else "closed loop",
        "communities": args.communities,
        "residents": args.residents, "items_per_community": args.items,
        "seconds": round(window, 1), "seed_s": round(seeded, 1),
        "credit_share": args.credit_share,
        "redemptions": redemptions, "credits": credits,
        "adjustments": figures(tally, ("adjustment",), window),
        "awards": figures(tally, ("award",), window),
        "replays": tally.replays, "replay_server_errors": tally.replay_errors,
        "cpu_ms_per_request": {"app_workers": round(used[0] / done * 1000, 2),
                               "postgres_backends": round(used[1] / done * 1000, 2)},
        "load_avg_1m": {"before": round(load_before, 1), "after": round(load_after, 1)},
        "books": books, "violations": violations,
        "pgbench": reference,
        "targets": TARGETS,
        "targets_met": {
            "redemptions_per_s": redemptions["per_s"] >= TARGETS["redemptions_per_s"],
            "p99_ms": (redemptions["p99_ms"] or 1e9) <= TARGETS["p99_ms"],
            "violations": violations == 0},
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
