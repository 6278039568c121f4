"""Matching benchmark: seeded instances, one JSON line per case (see docs/matching.md).

    python bench/match_bench.py             # every case, each in its own process
    python bench/match_bench.py --case city # one case in this process

Timings are from loaded arrays to assignments: candidates (generation and scoring), solve,
extract. Peak memory is the case process's peak resident set (ru_maxrss), libraries included.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matcher import instances  # noqa: E402
from matcher.greedy import greedy  # noqa: E402
from matcher.model import objective_of, prepare  # noqa: E402
from matcher.solve import solve  # noqa: E402
from matcher.validate import validate  # noqa: E402

CASES = ("city", "peer_sparse", "peer_dense", "scarce", "teams_1000", "teams_5000", "county")


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _timed(problem, repeat: int = 1, **kw):
    times, result = [], None
    for _ in range(repeat):
        result = None  # let the previous answer go before the next run (peak memory)
        t0 = time.perf_counter()
        result = solve(problem, baseline=False, **kw)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _greedy_objective(problem) -> int:
    model = prepare(problem)
    return objective_of(model, greedy(model)[0])


def _line(case: str, problem, result, total: float, targets: dict, **extra) -> dict:
    peak = _peak_mb()  # before the greedy and the validator below add their own
    greedy_obj = _greedy_objective(problem)
    line = {
        "case": case, "demands": problem.n_demands, "resources": problem.n_resources,
        "candidates": len(result.model.cands),
        "candidates_per_demand": round(len(result.model.cands) / max(problem.n_demands, 1), 1),
        "method": result.method, "status": result.status,
        "candidates_s": round(result.timings["candidates"], 3),
        "solve_s": round(result.timings["solve"] + result.timings.get("greedy", 0.0), 3),
        "extract_s": round(result.timings["extract"], 3), "total_s": round(total, 3),
        "peak_mb": peak, "objective": result.objective, "bound": result.bound,
        "gap": round(result.gap, 5), "greedy_objective": greedy_obj,
        "vs_greedy": round(result.objective / greedy_obj - 1, 4) if greedy_obj else None,
        "valid": not validate(problem, result.assignments()),
        **extra, "targets": targets,
    }
    return line


def case_city() -> dict:
    problem = instances.city(radius=950)
    total, result = _timed(problem, repeat=3)
    return _line("city_1+1", problem, result, total,
                 {"total_s": 2.0, "candidates_s": 0.5, "peak_mb": 400, "gap": 0.0})


def _unit_capacity(n: int, m: int, **kw):
    return instances.city(n, m, capacity=(1, 1), **kw)


def case_peer_sparse() -> dict:
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    problem = _unit_capacity(40_000, 100_000, radius=950)
    total, result = _timed(problem, repeat=3)
    c = result.model.cands
    n, m = problem.n_demands, problem.n_resources
    t0 = time.perf_counter()
    # every demand also gets a private dummy column, so a full matching always exists; weights
    # are score + 1 (a stored zero would be no edge), dummies weigh 1
    rows = np.r_[c.d, np.arange(n)]
    cols = np.r_[c.r, m + np.arange(n)]
    weights = np.r_[c.score + 1, np.ones(n)].astype(np.float64)
    graph = csr_matrix((weights, (rows, cols)), shape=(n, m + n))
    _, matched = min_weight_full_bipartite_matching(graph, maximize=True)
    peer_s = time.perf_counter() - t0
    real = matched < m
    peer_obj = int(np.asarray(graph[np.flatnonzero(real), matched[real]]).ravel().sum()
                   - real.sum())
    return _line("peer_sparse_1+1", problem, result, total,
                 {"faster_than_peer": 3.0, "same_objective": True},
                 peer={"name": "scipy min_weight_full_bipartite_matching", "seconds":
                       round(peer_s, 3), "objective": peer_obj,
                       "speedup": round(peer_s / total, 2)})


def case_peer_dense() -> dict:
    from scipy.optimize import linear_sum_assignment

    problem = _unit_capacity(5_000, 5_000, km=4.8, radius=950)
    total, result = _timed(problem, repeat=3)
    c = result.model.cands
    t0 = time.perf_counter()
    matrix = np.zeros((problem.n_demands, problem.n_resources))
    matrix[c.d, c.r] = c.score
    rows, cols = linear_sum_assignment(matrix, maximize=True)
    peer_s = time.perf_counter() - t0
    peer_obj = int(matrix[rows, cols].sum())
    return _line("peer_dense_5000", problem, result, total,
                 {"faster_than_peer": 1.0, "same_objective": True},
                 peer={"name": "scipy linear_sum_assignment (dense)", "seconds": round(peer_s, 3),
                       "objective": peer_obj, "speedup": round(peer_s / total, 2)})


def case_scarce() -> dict:
    problem = instances.city(40_000, 10_000, capacity=(2, 6), radius=2_400)
    total, result = _timed(problem)
    return _line("scarce_1+1", problem, result, total, {"vs_greedy": 0.02})


def case_teams(n: int, limit: float, targets: dict) -> dict:
    problem = instances.teams(n=n)
    t0 = time.perf_counter()
    result = solve(problem, time_limit=limit, baseline=False)
    return _line(f"teams_{n}", problem, result, time.perf_counter() - t0, targets)


def case_county() -> dict:
    problem = instances.county()
    solve(problem)  # warm the process
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        result = solve(problem, baseline=False)
        times.append(time.perf_counter() - t0)
    return _line("county", problem, result, statistics.median(times), {"total_s": 0.05})


RUN = {
    "city": case_city, "peer_sparse": case_peer_sparse, "peer_dense": case_peer_dense,
    "scarce": case_scarce,
    "teams_1000": lambda: case_teams(1_000, 1.8, {"total_s": 2.0, "gap": 0.01,
                                                  "vs_greedy": 0.20}),
    "teams_5000": lambda: case_teams(5_000, 15.0, {"total_s": 20.0, "peak_mb": 400,
                                                   "gap": 0.05, "vs_greedy": 0.18}),
    "county": case_county,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", choices=CASES)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(RUN[args.case](), ensure_ascii=False), flush=True)
        return
    for case in CASES:  # each case in a fresh process, so peak memory is its own
        subprocess.run([sys.executable, __file__, "--case", case], check=True)


if __name__ == "__main__":
    main()
