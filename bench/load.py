"""Benchmark: a production server on PostgreSQL under a realistic mix, then the invariants.

Builds a fresh PostgreSQL database with the migrations, seeds one subdistrict through the
services (communities with secretaries, units with resources, residents holding points, a
stocked supermarket) and 10⁵ demand items in bulk (most of them history, some open), starts
the production server (`linli serve --prod`: gunicorn, gthread workers), and drives it from
`--clients` threads on loopback for `--seconds`, each thread a closed loop over this mix:

    list_api     GET  /api/v1/demands (open items of a community, a page of 20)
    list_page    GET  /secretary/demands (the secretary's list page, HTML)
    board_page   GET  /unit/board (the unit's demand board, HTML)
    statement    GET  /api/v1/ledger/statement (a resident's points)
    claim        POST /api/v1/demands/<id>/claims (a unit claims an open item)
    approve      POST /api/v1/assignments/<id>/approve (the secretary approves a claim)
    report       POST /api/v1/demands/<id>/reports (the lead unit reports the work)
    verify       POST /api/v1/reports/<id>/verify (the secretary verifies: points are credited)
    redeem       POST /api/v1/market/orders (a resident redeems points at the supermarket)

Claims feed approvals, approvals feed reports, reports feed verifications; a step with nothing
to do reads a list instead. Then it checks the invariants — `linli ledger verify`, no demand
held beyond its quantity, quantities that agree with the assignments — and prints one JSON
line: throughput, p50/p95/p99 per kind, errors, violations, and the targets. Usage:
    .venv/bin/python bench/load.py [--seconds 60] [--clients 16] [--workers 3] [--threads 8]
        [--items 100000] [--url URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bench._server import (  # noqa: E402
    BENCH_ENV,
    ROOT,
    Pacer,
    _wait_healthy,
    fast_password_hashes,
    free_port,
    fresh_postgres,
    linli_cli,
    migrate,
    serve,
)
from web.db import make_engine, make_session_factory  # noqa: E402
from web.domain.actor import SYSTEM  # noqa: E402
from web.models import Category, DemandItem, User  # noqa: E402
from web.services import lovebank, market, places, resources, units, users  # noqa: E402
from web.services.auth import actor_for, issue_token  # noqa: E402
from web.services.base import local_date, utcnow  # noqa: E402

PASSWORD = "bench-password-1"
RULES = {"per_hour": {"*": 10}, "activities": {"seed": 100000}, "daily_cap": None,
         "monthly_cap": None, "rounding": "half_up"}
LIST_KINDS = ("list_api", "list_page", "board_page")
MIX = {"list_api": 24, "list_page": 12, "board_page": 10, "statement": 10, "claim": 12,
       "approve": 10, "report": 8, "verify": 7, "redeem": 7}
TARGETS = {"list_p95_ms": 100, "requests_per_s": 200, "p99_ms": 500, "errors": 0,
           "violations": 0}


# ---- seeding ----------------------------------------------------------------------------------

@dataclass
class Place:
    """One community as the clients see it: who acts there and what they act on."""

    id: int
    secretary: tuple[int, str]                       # (user id, token)
    residents: list[tuple[int, str]] = field(default_factory=list)
    items: list[int] = field(default_factory=list)   # supermarket items
    open_items: list[tuple[int, int]] = field(default_factory=list)  # (item id, category id)


@dataclass
class Unit:
    id: int
    admin: tuple[int, str]
    resources: dict[int, int]  # category id → the unit's published resource of that category


def seed(url: str, *, communities: int, units_n: int, residents: int, items: int,
         open_share: float) -> tuple[list[Place], list[Unit]]:
    """The subdistrict through the services, then `items` demand items in bulk."""
    fast_password_hashes(PASSWORD)
    engine = make_engine(url)
    session = make_session_factory(engine)()
    sub = places.create_subdistrict(session, actor=SYSTEM, code="SD-LOAD", name="压测街道")
    session.commit()
    built = [_community(session, sub.id, n, residents) for n in range(communities)]
    made = [_unit(session, sub.id, n, [p.id for p in built]) for n in range(units_n)]
    _bulk_items(session, built, items, open_share)
    session.close()
    engine.dispose()
    return built, made


def _user(session, name: str, grant: dict):
    user = users.create_user(session, actor=SYSTEM, username=name, password=PASSWORD,
                             display_name=name, roles=[grant])
    return user.id, issue_token(session, user, ttl_hours=24)[0]


def _community(session, subdistrict_id: int, n: int, residents: int) -> Place:
    community = places.create_community(session, actor=SYSTEM, subdistrict_id=subdistrict_id,
                                        code=f"C-LOAD-{n}", name=f"压测社区{n}")
    session.commit()
    place = Place(community.id, _user(session, f"load_sec_{n}",
                                      {"role": "secretary", "community_id": community.id}))
    sec = actor_for(session.get(User, place.secretary[0]))
    lovebank.publish_rules(session, actor=sec, community_id=community.id, document=RULES,
                           effective_from=local_date(utcnow()))
    for i in range(5):
        item = market.create_item(session, actor=sec, community_id=community.id, data={
            "name": f"商品{i}", "category": "日用", "kind": "goods",
            "points_price": 1 + i, "value_fen": 500})
        market.receive_donation(session, actor=sec, item_id=item.id, quantity=100_000,
                                value_fen=50_000_000, donor_name="压测捐赠")
        place.items.append(item.id)
    place.residents = [_user(session, f"load_res_{n}_{i}",
                             {"role": "resident", "community_id": community.id})
                       for i in range(residents)]
    lovebank.award_points(session, actor=sec, community_id=community.id, activity="seed",
                          user_ids=[u for u, _ in place.residents], reason="压测初始积分",
                          idempotency_key=f"load-seed-{n}")
    return place


def _unit(session, subdistrict_id: int, n: int, community_ids: list[int]) -> Unit:
    admin = users.create_user(session, actor=SYSTEM, username=f"load_unit_{n}",
                              password=PASSWORD, display_name=f"load_unit_{n}", roles=[])
    unit = units.apply_unit(session, actor=actor_for(admin), subdistrict_id=subdistrict_id,
                            data={"name": f"压测单位{n}", "type": "enterprise",
                                  "contact_name": "联系人", "contact_phone": "13800000000"})
    units.approve_unit(session, actor=SYSTEM, unit_id=unit.id)
    admin = session.get(User, admin.id, populate_existing=True)
    offered = {}
    for category in session.scalars(select(Category.id).where(Category.is_active.is_(True))):
        offered[category] = resources.create_resource(
            session, actor=actor_for(admin), unit_id=unit.id, data={
                "kind": "volunteer_service", "category_id": category,
                "title": f"压测服务{n}-{category}", "capacity_per_occasion": 10,
                "quantity_total": 1_000_000, "value_fen_per_unit": 5000},
            service_community_ids=community_ids, publish=True).id
    token = issue_token(session, admin, ttl_hours=24)[0]
    return Unit(unit.id, (admin.id, token), offered)


def _bulk_items(session, built: list[Place], items: int, open_share: float) -> None:
    """`items` demand items, spread over the communities and the past year: `open_share` of
    them open (one needed each), the rest closed history."""
    now = utcnow()
    categories = list(session.scalars(select(Category.id).where(Category.is_active.is_(True))))
    rng = random.Random(7)
    rows = []
    for i in range(items):
        place = built[i % len(built)]
        created = now - timedelta(minutes=rng.randint(60, 365 * 24 * 60))
        is_open = rng.random() < open_share
        rows.append({
            "community_id": place.id, "category_id": rng.choice(categories),
            "title": f"需求{i}：{rng.choice(['助老', '助残', '环境', '教育', '医疗'])}服务",
            "description": "压测数据", "required_skills": [], "quantity_needed": 1,
            "quantity_open": 1 if is_open else 0, "quantity_confirmed": 0 if is_open else 1,
            "urgency": rng.choice(["normal", "normal", "urgent"]), "beneficiaries_count": 1,
            "beneficiary_vulnerable": False, "source": "secretary",
            "status": "open" if is_open else "closed", "created_at": created,
            "updated_at": created, "published_at": created,
            "accept_due_at": created + timedelta(hours=24),
            "close_due_at": created + timedelta(days=3)})
    for start in range(0, len(rows), 5000):
        session.execute(insert(DemandItem), rows[start:start + 5000])
    session.commit()
    for place in built:
        place.open_items = list(session.execute(select(DemandItem.id, DemandItem.category_id)
                                                .where(DemandItem.community_id == place.id,
                                                       DemandItem.status == "open")))
        rng.shuffle(place.open_items)
    session.commit()
    # As autovacuum would soon after a load this size: statistics for the planner, and the
    # visibility map that lets counts read the indexes alone.
    with session.get_bind().connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def page_cookie(user_id: int) -> str:
    """A signed session cookie for a page client (as the sign-in page would set it)."""
    from web.app import create_app
    from web.config import Settings

    app = create_app(Settings(database_url="sqlite://", secret_key=BENCH_ENV["LINLI_SECRET_KEY"]))
    value = app.session_interface.get_signing_serializer(app).dumps({"user_id": user_id})
    return f"{app.config['SESSION_COOKIE_NAME']}={value}"


# ---- the server -------------------------------------------------------------------------------

@contextmanager
def production_server(url: str, *, workers: int, threads: int):
    """`linli serve --prod` on a free loopback port, stopped afterwards."""
    port = free_port()
    env = {**os.environ, **BENCH_ENV, "LINLI_DATABASE_URL": url, "HOST": "127.0.0.1",
           "PORT": str(port), "LINLI_LOG_LEVEL": "WARNING"}
    cmd = [str(ROOT / ".venv/bin/linli"), "serve", "--prod", "--workers", str(workers),
           "--threads", str(threads)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, [proc])
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- the load ---------------------------------------------------------------------------------

@dataclass
class Shared:
    """The work in flight between the steps, and what the clients measured."""

    places: list[Place]
    units: list[Unit]
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: queue.Queue = field(default_factory=queue.Queue)     # (place, assignment id)
    approved: queue.Queue = field(default_factory=queue.Queue)    # (place, unit, demand id)
    reported: queue.Queue = field(default_factory=queue.Queue)    # (place, report id)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    done: Counter = field(default_factory=Counter)
    first_error: dict[str, str] = field(default_factory=dict)  # kind → the first error body

    def next_open(self, place: Place) -> tuple[int, int] | None:
        with self.lock:
            return place.open_items.pop() if place.open_items else None


class Client:
    """One closed-loop client thread with its own keep-alive connection."""

    def __init__(self, base: str, shared: Shared, seed: int, cookies: dict[int, str]):
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.shared, self.cookies = shared, cookies
        self.rng = random.Random(seed)
        self.kinds, self.weights = zip(*MIX.items(), strict=True)

    def call(self, method: str, path: str, *, token: str | None = None,
             cookie: str | None = None, body: dict | None = None) -> tuple[int, bytes, float]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if cookie:
            headers["Cookie"] = cookie
        if method == "POST":  # what moves points asks for one; the rest ignore it
            headers["Idempotency-Key"] = uuid.uuid4().hex
        data = json.dumps(body) if body is not None else None
        t0 = time.perf_counter()
        for attempt in range(2):  # a keep-alive connection the server closed is reopened once
            try:
                self.conn.request(method, path, data, headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        return response.status, payload, time.perf_counter() - t0

    def run(self, measure_from: float, until: float, pacer: Pacer | None = None) -> None:
        """Closed loop, or with a pacer each request at its due time (Pacer), its latency
        counted from then."""
        while (due := Pacer.next_send(pacer, until)) is not None:
            kind = self.rng.choices(self.kinds, self.weights)[0]
            kind, (status, payload, elapsed), after = getattr(self, kind)()
            if pacer:
                elapsed = time.perf_counter() - due
            counted = due >= measure_from
            with self.shared.lock:
                self.shared.statuses[kind][status] += 1
                if status >= 400:
                    self.shared.first_error.setdefault(kind, payload[:300].decode(errors="replace"))
                if counted:
                    self.shared.latencies[kind].append(elapsed)
                    self.shared.done[kind] += 1
            if after and status in (200, 201):
                after(json.loads(payload))

    # -- the kinds: each returns (kind, (status, body, seconds), what to do with a success) --

    def list_api(self):
        place = self.rng.choice(self.shared.places)
        unit = self.rng.choice(self.shared.units)
        path = (f"/api/v1/demands?community_id={place.id}&status=open&per_page=20"
                f"&page={self.rng.randint(1, 20)}")
        return "list_api", self.call("GET", path, token=unit.admin[1]), None

    def list_page(self):
        place = self.rng.choice(self.shared.places)
        path = f"/secretary/demands?page={self.rng.randint(1, 20)}"
        return "list_page", self.call("GET", path, cookie=self.cookies[place.secretary[0]]), None

    def board_page(self):
        unit = self.rng.choice(self.shared.units)
        path = f"/unit/board?page={self.rng.randint(1, 10)}"
        return "board_page", self.call("GET", path, cookie=self.cookies[unit.admin[0]]), None

    def statement(self):
        place = self.rng.choice(self.shared.places)
        _, token = self.rng.choice(place.residents)
        path = f"/api/v1/ledger/statement?community_id={place.id}"
        return "statement", self.call("GET", path, token=token), None

    def claim(self):
        place = self.rng.choice(self.shared.places)
        taken = self.shared.next_open(place)
        if taken is None:
            return self.list_api()
        demand_id, category_id = taken
        unit = self.rng.choice(self.shared.units)
        result = self.call("POST", f"/api/v1/demands/{demand_id}/claims", token=unit.admin[1],
                           body={"unit_id": unit.id, "resource_id": unit.resources[category_id],
                                 "quantity": 1})

        def after(body):
            self.shared.pending.put((place, unit, demand_id, body["id"]))
        return "claim", result, after

    def approve(self):
        try:
            place, unit, demand_id, assignment_id = self.shared.pending.get_nowait()
        except queue.Empty:
            return self.list_api()
        result = self.call("POST", f"/api/v1/assignments/{assignment_id}/approve",
                           token=place.secretary[1], body={})
        return "approve", result, lambda _: self.shared.approved.put((place, unit, demand_id))

    def report(self):
        try:
            place, unit, demand_id = self.shared.approved.get_nowait()
        except queue.Empty:
            return self.statement()
        today = local_date(utcnow())
        volunteers = [{"user_id": u, "hours": "1.5"} for u, _ in
                      self.rng.sample(place.residents, 2)]
        result = self.call("POST", f"/api/v1/demands/{demand_id}/reports", token=unit.admin[1],
                           body={"started_on": str(today), "ended_on": str(today),
                                 "volunteers": volunteers, "beneficiaries_served": 1,
                                 "value_fen": 5000, "summary": "压测上报"})
        return "report", result, lambda body: self.shared.reported.put((place, body["id"]))

    def verify(self):
        try:
            place, report_id = self.shared.reported.get_nowait()
        except queue.Empty:
            return self.statement()
        result = self.call("POST", f"/api/v1/reports/{report_id}/verify",
                           token=place.secretary[1], body={})
        return "verify", result, None

    def redeem(self):
        place = self.rng.choice(self.shared.places)
        _, token = self.rng.choice(place.residents)
        lines = [{"item_id": i, "quantity": 1} for i in self.rng.sample(place.items, 2)]
        result = self.call("POST", "/api/v1/market/orders", token=token,
                           body={"community_id": place.id, "lines": lines})
        return "redeem", result, None


# ---- invariants -------------------------------------------------------------------------------

HELD = ("pending", "offered", "approved", "accepted")
CONFIRMED = ("approved", "accepted")


def violations(url: str) -> dict:
    """Over-claimed items, quantities that disagree with the assignments, and the ledger."""
    engine = make_engine(url)
    with engine.connect() as conn:
        held = conn.execute(text(f"""
            SELECT d.id, d.quantity_needed, d.quantity_open, d.quantity_confirmed,
                   coalesce(sum(a.quantity) FILTER (WHERE a.status IN {HELD}), 0),
                   coalesce(sum(a.quantity) FILTER (WHERE a.status IN {CONFIRMED}), 0)
            FROM demand_items d JOIN assignments a ON a.demand_id = d.id
            WHERE d.status IN ('open', 'partly_covered', 'covered')
            GROUP BY d.id""")).all()
        stock = conn.scalar(select(func.count()).select_from(text(
            "market_items")).where(text("stock < 0")))
    engine.dispose()
    over = [r[0] for r in held if r[4] > r[1]]
    drift = [r[0] for r in held if r[2] != r[1] - r[4]]
    ledger = linli_cli(url, "ledger", "verify")
    return {"over_claimed": len(over), "open_quantity_drift": len(drift),
            "negative_stock": int(stock or 0), "ledger_verify_exit": ledger.returncode,
            "ledger_verify": ledger.stdout.strip().splitlines()[-1:] or ledger.stderr[-300:]}


# ---- the run ----------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rate", type=float, help="open loop: requests a second (Poisson "
                        "arrivals) sent by a pool of --clients threads; latency counts from "
                        "each request's due time")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--communities", type=int, default=8)
    parser.add_argument("--units", type=int, default=12)
    parser.add_argument("--residents", type=int, default=40)
    parser.add_argument("--open-share", type=float, default=0.1)
    parser.add_argument("--server", choices=("prod", "gunicorn"), default="prod",
                        help="`linli serve --prod` (default) or the bare gunicorn command")
    parser.add_argument("--url", help="an empty PostgreSQL database (default: a fresh one)")
    args = parser.parse_args()
    with _database(args.url) as url:
        migrate(url)
        t0 = time.perf_counter()
        built, made = seed(url, communities=args.communities, units_n=args.units,
                           residents=args.residents, items=args.items,
                           open_share=args.open_share)
        seeded = time.perf_counter() - t0
        cookies = {p.secretary[0]: page_cookie(p.secretary[0]) for p in built}
        cookies.update({u.admin[0]: page_cookie(u.admin[0]) for u in made})
        shared = Shared(built, made)
        with _server(args, url) as base:
            clients = [Client(base, shared, seed, cookies) for seed in range(args.clients)]
            start = time.perf_counter()
            measure_from, until = start + args.warmup, start + args.warmup + args.seconds
            pacer = Pacer(args.rate, start, until, seed=1) if args.rate else None
            threads = [threading.Thread(target=c.run, args=(measure_from, until, pacer))
                       for c in clients]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        checked = violations(url)
    print(json.dumps(summary(args, shared, checked, seeded), ensure_ascii=False))


@contextmanager
def _server(args, url: str):
    if args.server == "prod":
        with production_server(url, workers=args.workers, threads=args.threads) as (base, _):
            yield base
    else:  # plain gunicorn on the app factory, as bench/_server.py starts it
        with serve(url, workers=args.workers, pool=args.threads, server="gunicorn",
                   threads=args.threads) as server:
            yield server.base


@contextmanager
def _database(url: str | None):
    if url:
        yield url
    else:
        with fresh_postgres("linli_load") as fresh:
            yield fresh


def summary(args, shared: Shared, checked: dict, seeded: float) -> dict:
    every = [x for values in shared.latencies.values() for x in values]
    errors = {kind: sum(n for status, n in counts.items() if status >= 400)
              for kind, counts in shared.statuses.items()}
    kinds = {kind: {"n": len(values), "per_s": round(len(values) / args.seconds, 1),
                    "p50_ms": percentile(values, .50), "p95_ms": percentile(values, .95),
                    "p99_ms": percentile(values, .99), "errors": errors.get(kind, 0)}
             for kind, values in sorted(shared.latencies.items())}
    list_p95 = max((kinds[k]["p95_ms"] or 0) for k in LIST_KINDS if k in kinds)
    bad = sum(v for k, v in checked.items() if k in ("over_claimed", "open_quantity_drift",
                                                      "negative_stock", "ledger_verify_exit"))
    total = {"requests_per_s": round(len(every) / args.seconds, 1),
             "p50_ms": percentile(every, .50), "p95_ms": percentile(every, .95),
             "p99_ms": percentile(every, .99), "errors": sum(errors.values()),
             "list_p95_ms": list_p95, "violations": bad}
    met = (total["list_p95_ms"] <= TARGETS["list_p95_ms"]
           and total["requests_per_s"] >= TARGETS["requests_per_s"]
           and (total["p99_ms"] or 0) <= TARGETS["p99_ms"] and total["errors"] == 0
           and bad == 0)
    return {"bench": "load", "database": "postgresql", "items": args.items,
            "seconds": args.seconds, "clients": args.clients,
            "arrivals": f"open loop, {args.rate}/s offered" if args.rate else "closed loop",
            "workers": args.workers,
            "threads": args.threads, "seed_seconds": round(seeded, 1), "all": total,
            "kinds": kinds, "statuses": {k: dict(v) for k, v in shared.statuses.items()},
            "first_errors": shared.first_error, "invariants": checked, "targets": TARGETS, "targets_met": met,
            "date": str(date.today())}


if __name__ == "__main__":
    main()
