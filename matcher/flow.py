"""1+1 by min-cost flow: each demand served by one resource, each resource serving up to its
capacity, maximum total score — exact, with OR-Tools' SimpleMinCostFlow loaded in bulk.

Network: each demand supplies one unit of flow; it goes to a resource (cost: best score − pair
score) and on to the sink (at most the resource's capacity), or straight to the sink at the cost
of the best score — so a pair is used only when it pays. Minimum cost is maximum total score.
"""

from __future__ import annotations

import numpy as np
from ortools.graph.python import min_cost_flow
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from matcher.model import Model
from matcher.problem import SolverError


def flow_safe(model: Model) -> bool:
    """Whether every demand takes one unit and counting demands is enough: no resource could run
    out of quantity or double-book a window."""
    p, c = model.problem, model.cands
    if model.team[c.d].any():
        return False
    need = p.d_quantity[c.d]
    most = np.zeros(p.n_resources, np.int64)
    np.maximum.at(most, c.r, need)
    counted = np.bincount(c.r, minlength=p.n_resources)
    uses = np.minimum(p.r_capacity, counted)
    if (uses * most > p.r_quantity).any():
        return False
    return not _window_clashes(model)


def _window_clashes(model: Model) -> bool:
    """Whether some exclusive resource has two candidate demands whose windows overlap."""
    p, c = model.problem, model.cands
    rows = np.flatnonzero(p.r_exclusive[c.r] & np.isfinite(p.d_start[c.d]))
    order = rows[np.lexsort((p.d_start[c.d[rows]], c.r[rows]))]
    last, reach = -1, -np.inf
    for row in order.tolist():  # exclusive resources with timed demands only
        r, d = int(c.r[row]), int(c.d[row])
        if r == last and p.d_start[d] < reach:
            return True
        reach = p.d_end[d] if r != last else max(reach, p.d_end[d])
        last = r
    return False


def solve_flow(model: Model, capacity: np.ndarray | None = None,
               rows: np.ndarray | None = None) -> np.ndarray:
    """The chosen candidate rows of an exact max-score 1+1 assignment.

    The pair graph falls apart into independent pieces (categories never mix, places are far
    apart); each is solved on its own, which is exact and, for cost scaling, faster.
    """
    p, c = model.problem, model.cands
    rows = np.arange(len(c)) if rows is None else np.asarray(rows, np.int64)
    capacity = p.r_capacity if capacity is None else capacity
    rows = rows[capacity[c.r[rows]] > 0]
    if not len(rows):
        return rows
    n = p.n_demands
    graph = coo_matrix((np.ones(len(rows)), (c.d[rows], c.r[rows] + n)),
                       shape=(n + p.n_resources,) * 2)
    _, label = connected_components(graph, directed=False)
    piece = label[c.d[rows]]
    order = np.argsort(piece, kind="stable")
    cuts = np.flatnonzero(np.r_[True, piece[order][1:] != piece[order][:-1], True])
    chosen = [_solve_piece(c, capacity, rows[order[a:b]]) for a, b in zip(cuts[:-1], cuts[1:],
                                                                           strict=True)]
    return np.sort(np.concatenate(chosen))


def _solve_piece(c, capacity: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One connected piece: each demand sends one unit, to a resource or, at a loss, the sink."""
    score = c.score[rows]
    demands, d_local = np.unique(c.d[rows], return_inverse=True)
    resources, r_local = np.unique(c.r[rows], return_inverse=True)
    nd, nr = len(demands), len(resources)
    sink = nd + nr
    worth = int(score.max())  # costs are what a pair falls short of the best score
    solver = min_cost_flow.SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(
        np.r_[d_local, np.arange(nd), nd + np.arange(nr)].astype(np.int32),
        np.r_[nd + r_local, np.full(nd, sink), np.full(nr, sink)].astype(np.int32),
        np.r_[np.ones(len(rows) + nd, np.int64), capacity[resources]].astype(np.int64),
        np.r_[worth - score, np.full(nd, worth), np.zeros(nr, np.int64)].astype(np.int64))
    solver.set_nodes_supplies(np.r_[np.arange(nd), sink].astype(np.int32),
                              np.r_[np.ones(nd, np.int64), -nd].astype(np.int64))
    status = solver.solve()
    if status != solver.OPTIMAL:
        raise SolverError(f"min-cost flow ended with status {status}")
    return rows[solver.flows(np.arange(len(rows), dtype=np.int32)) > 0]
