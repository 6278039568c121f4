"""Polishing a team answer with CP-SAT, a neighbourhood at a time (large-neighbourhood search).

Each round frees the demands that compete for the resources of one demand (an unserved one
first), gives them back the capacity they hold, and lets CP-SAT solve that small problem exactly,
starting from the current answer; a better answer replaces the old one. Rounds are chosen by the
seed and bounded by CP-SAT's deterministic time, so a run is repeatable.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from matcher.exact import solve_cpsat
from matcher.model import Model, objective_of
from matcher.problem import SolverError

NEIGHBOURHOOD = 15
ROUND_LIMIT = 0.2  # CP-SAT's deterministic time for one neighbourhood


def _sub_model(model: Model, demands: np.ndarray, capacity: np.ndarray,
               quantity: np.ndarray) -> tuple[Model, np.ndarray]:
    c, p = model.cands, model.problem
    rows = np.concatenate([np.arange(model.start[d], model.start[d + 1]) for d in demands])
    rows = np.sort(rows[capacity[c.r[rows]] > 0])
    sub_c = c.take(rows)
    pinned = np.searchsorted(rows, np.intersect1d(model.pinned_rows, rows))
    sub = Model(replace(p, r_capacity=capacity, r_quantity=quantity), sub_c, model.team, model.k,
                np.searchsorted(sub_c.d, np.arange(p.n_demands + 1)), pinned)
    return sub, rows


def polish(model: Model, rows: list[int], alloc: list[int], *, time_limit: float, seed: int):
    """A better (or the same) answer, as (rows, alloc)."""
    c, p = model.cands, model.problem
    rng = np.random.default_rng(seed)
    chosen = dict(zip(rows, alloc, strict=True))
    order = np.argsort(c.r, kind="stable")
    cuts = np.searchsorted(c.r[order], np.arange(p.n_resources + 1))
    budget, spent, wall = max(time_limit, 0.05), 0.0, time.perf_counter() + time_limit
    has_cands = np.flatnonzero(np.diff(model.start) > 0)
    while spent < budget and time.perf_counter() < wall and len(has_cands):
        served = np.zeros(p.n_demands, bool)
        served[c.d[list(chosen)]] = True
        idle = has_cands[~served[has_cands]]
        pool = idle if len(idle) and rng.random() < 0.7 else has_cands
        centre = int(rng.choice(pool))
        mine = np.unique(c.r[model.start[centre]:model.start[centre + 1]])
        near = np.unique(np.concatenate(
            [c.d[order[cuts[r]:cuts[r + 1]]] for r in mine.tolist()] + [[centre]]))
        if len(near) > NEIGHBOURHOOD:
            near = np.union1d(rng.choice(near, NEIGHBOURHOOD - 1, replace=False), [centre])
        free = np.zeros(p.n_demands, bool)
        free[near] = True
        kept = {row: q for row, q in chosen.items() if not free[c.d[row]]}
        capacity = p.r_capacity - np.bincount(c.r[list(kept)], minlength=p.n_resources)
        quantity = p.r_quantity - np.bincount(c.r[list(kept)], weights=list(kept.values()),
                                              minlength=p.n_resources).astype(np.int64)
        sub, sub_rows = _sub_model(model, near, capacity, quantity)
        before = [int(x) for x in np.searchsorted(sub_rows, [r for r in chosen if free[c.d[r]]])]
        # CP-SAT may run four times its deterministic limit in wall time: never past the end
        limit = min(ROUND_LIMIT, (wall - time.perf_counter()) / 4)
        if limit < 0.01:
            break
        try:
            got, got_alloc, _, _, used = solve_cpsat(sub, time_limit=limit, seed=seed,
                                                     hint=before, with_time=True)
        except SolverError:
            spent += 0.05
            continue
        spent += used
        old = objective_of(model, [r for r in chosen if free[c.d[r]]])
        new = objective_of(model, sub_rows[got]) if got else 0
        if new > old:
            chosen = {**kept, **dict(zip(sub_rows[got].tolist(), got_alloc, strict=True))}
    return list(chosen), list(chosen.values())
