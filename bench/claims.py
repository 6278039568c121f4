"""Benchmark: claim + approve throughput and contended last-slot claims on a migrated database.

Prints one JSON line. Usage:
    .venv/bin/python bench/claims.py [--url postgresql+psycopg://postgres@127.0.0.1/DB] [--n 300]
Without --url it uses a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alembic import command  # noqa: E402
from tests.factories import NOW, build_world, make_demand, make_resource, make_unit  # noqa: E402
from web.cli import alembic_config  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.errors import ConflictError  # noqa: E402
from web.services import assignments  # noqa: E402
from web.services.auth import load_actor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url, **({} if url.startswith("sqlite") else {"pool_size": 40}))
    factory = make_session_factory(engine)
    session = factory()
    world = build_world(session)
    sec, unit = load_actor(session, world.users["sec_a1"]), load_actor(session, world.users["unit_x"])
    demand_ids = [make_demand(session, world, "a1", "sec_a1", quantity=1) for _ in range(args.n)]
    big = make_resource(session, world, "x", "unit_x", ["a1"], quantity=args.n * 2)

    start = time.perf_counter()
    for demand_id in demand_ids:
        claim = assignments.claim_demand(session, actor=unit, demand_id=demand_id,
                                         unit_id=world["x"], resource_id=big, quantity=1, now=NOW)
        assignments.approve_claim(session, actor=sec, assignment_id=claim.id, now=NOW)
    serial = time.perf_counter() - start

    contended = make_demand(session, world, "a1", "sec_a1", quantity=1)
    units = []
    for i in range(args.threads):
        make_unit(session, world, f"u{i}", "A", f"bench_admin_{i}")
        units.append((world[f"u{i}"], make_resource(session, world, f"u{i}", f"bench_admin_{i}",
                                                    ["a1"]), world.users[f"bench_admin_{i}"]))
    session.commit()
    barrier, results = threading.Barrier(len(units)), []

    def attempt(unit_id, resource_id, user_id):
        s = factory()
        actor = load_actor(s, user_id)
        s.commit()  # end the read: on SQLite an open transaction holds the write lock
        barrier.wait()
        t0 = time.perf_counter()
        try:
            assignments.claim_demand(s, actor=actor, demand_id=contended, unit_id=unit_id,
                                     resource_id=resource_id, quantity=1, now=NOW)
            results.append(("ok", time.perf_counter() - t0))
        except ConflictError:
            results.append(("conflict", time.perf_counter() - t0))
        finally:
            s.close()

    threads = [threading.Thread(target=attempt, args=u) for u in units]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    burst = time.perf_counter() - start
    print(json.dumps({
        "bench": "claims", "database": engine.dialect.name, "claims_approved": args.n,
        "claim_and_approve_per_s": round(args.n / serial, 1),
        "ms_per_claim_and_approve": round(serial / args.n * 1000, 2),
        "contended_threads": len(units),
        "contended_successes": sum(1 for r, _ in results if r == "ok"),
        "contended_conflicts": sum(1 for r, _ in results if r == "conflict"),
        "contended_burst_ms": round(burst * 1000, 1),
        "contended_max_latency_ms": round(max(t for _, t in results) * 1000, 1),
    }))
    session.close()
    engine.dispose()


if __name__ == "__main__":
    main()
