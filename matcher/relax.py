"""Large team problems: the linear relaxation (HiGHS, through SciPy) gives a proven bound and a
fractional answer; rounding builds teams in the order the relaxation prefers, then a greedy pass
serves what is left, then a local search swaps members for better ones.

Variables: x per candidate (a member), u per demand (served), a per candidate of a resource whose
quantity could run out (its share). Rows, one family each below.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from matcher.candidates import expand_ranges
from matcher.greedy import Residual, build_team
from matcher.model import Model
from matcher.problem import SolverError


def _skill_pairs(model: Model, rows_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(skill row, demand, candidate row) for every required skill a candidate brings."""
    p, c = model.problem, model.cands
    bits = np.unpackbits(p.d_skills.view(np.uint8), axis=1, bitorder="little")
    dem, skill = np.nonzero(bits[rows_of])
    dem = rows_of[dem]
    owner, cand = expand_ranges(model.start[dem], model.start[dem + 1])
    r_bits = np.unpackbits(p.r_skills.view(np.uint8), axis=1, bitorder="little")
    has = r_bits[c.r[cand], skill[owner]].astype(bool)
    return owner[has], dem, cand[has]


def _fewest_members(model: Model, rows: np.ndarray, demands: np.ndarray) -> np.ndarray:
    """Per demand, the fewest members whose shares can reach its quantity (1 if none can)."""
    c, p = model.cands, model.problem
    order = np.lexsort((-c.give[rows], c.d[rows]))
    d_sorted, give = c.d[rows][order], c.give[rows][order]
    first = np.searchsorted(d_sorted, demands)
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    running = np.cumsum(give)
    before = np.repeat(running[first] - give[first], np.diff(np.r_[first, len(order)]))
    reached = (running - before) >= p.d_quantity[d_sorted]
    hit = np.flatnonzero(reached)
    owner = np.searchsorted(demands, d_sorted[hit])
    best = np.full(len(demands), np.iinfo(np.int64).max)
    np.minimum.at(best, owner, rank[hit] + 1)
    return np.where(best < np.iinfo(np.int64).max, best, 1)


def solve_relaxation(model: Model, rows: np.ndarray, *, integral: bool = False,
                     time_limit: float | None = None):
    """The LP over candidate rows `rows` (all their demands): (x values, u values, bound).

    `integral=True` solves the same model as a MIP with HiGHS instead (for measurements)."""
    p, c = model.problem, model.cands
    rows = np.asarray(rows, np.int64)
    if not len(rows):  # nothing to pair: nothing to relax
        return np.zeros(len(c)), np.zeros(p.n_demands), 0
    demands = np.unique(c.d[rows])
    local = np.full(p.n_demands, -1)
    local[demands] = np.arange(len(demands))
    n_x, n_u = len(rows), len(demands)
    cd, cr, give = c.d[rows], c.r[rows], c.give[rows]
    counted = np.bincount(cr, minlength=p.n_resources)
    most = np.zeros(p.n_resources, np.int64)
    np.maximum.at(most, cr, give)
    tight = np.minimum(counted, p.r_capacity) * most > p.r_quantity
    a_of = np.flatnonzero(tight[cr])
    n_a = len(a_of)
    ux = n_x + local[cd]  # column of each row's u
    blocks = []  # (row ids, col ids, values, rhs)
    nrow = 0

    def add(r_idx, c_idx, vals, rhs):
        """Append a family of rows: entries (row within the family, column, value) ≤ rhs."""
        nonlocal nrow
        blocks.append((np.asarray(r_idx) + nrow, c_idx, vals))
        rhs_all.append(rhs)
        nrow += len(rhs)

    rhs_all: list[np.ndarray] = []
    ld = local[cd]
    # a served demand has at most k members
    add(np.r_[ld, np.arange(n_u)], np.r_[np.arange(n_x), n_x + np.arange(n_u)],
        np.r_[np.ones(n_x), -model.k[demands].astype(float)], np.zeros(n_u))
    # members bring the quantity: tight members count their share a, the others their give
    loose = ~tight[cr]
    add(np.r_[ld[loose], ld[a_of], np.arange(n_u)],
        np.r_[np.flatnonzero(loose), n_x + n_u + np.arange(n_a), n_x + np.arange(n_u)],
        np.r_[-give[loose].astype(float), -np.ones(n_a), p.d_quantity[demands].astype(float)],
        np.zeros(n_u))
    # a team has at least as many members as the largest shares need to reach the quantity
    fewest = _fewest_members(model, rows, demands)
    add(np.r_[ld, np.arange(n_u)], np.r_[np.arange(n_x), n_x + np.arange(n_u)],
        np.r_[-np.ones(n_x), fewest.astype(float)], np.zeros(n_u))
    # every required skill is brought by a member
    skill_row, dem, cand = _skill_pairs(model, demands)
    pos = np.searchsorted(rows, cand)
    add(np.r_[skill_row, np.arange(len(dem))], np.r_[pos, n_x + local[dem]],
        np.r_[-np.ones(len(pos)), np.ones(len(dem))], np.zeros(len(dem)))
    # a member only of a served demand
    add(np.r_[np.arange(n_x), np.arange(n_x)], np.r_[np.arange(n_x), ux],
        np.r_[np.ones(n_x), -np.ones(n_x)], np.zeros(n_x))
    # each resource serves at most its capacity
    used = np.unique(cr)
    res_row = np.searchsorted(used, cr)
    add(res_row, np.arange(n_x), np.ones(n_x), p.r_capacity[used].astype(float))
    if n_a:
        # tight resources give at most their quantity; a share only with its member
        t_used = np.unique(cr[a_of])
        add(np.searchsorted(t_used, cr[a_of]), n_x + n_u + np.arange(n_a), np.ones(n_a),
            p.r_quantity[t_used].astype(float))
        add(np.r_[np.arange(n_a), np.arange(n_a)], np.r_[n_x + n_u + np.arange(n_a), a_of],
            np.r_[np.ones(n_a), -give[a_of].astype(float)], np.zeros(n_a))
    n_cols = n_x + n_u + n_a
    a_ub = sparse.csr_matrix(
        (np.concatenate([b[2] for b in blocks]),
         (np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks]))),
        shape=(nrow, n_cols))
    big = model.member_cost
    cost = -np.r_[(c.score[rows] - big[cd]).astype(float), big[demands].astype(float),
                  np.zeros(n_a)]
    lower = np.zeros(n_cols)
    lower[np.searchsorted(rows, np.intersect1d(model.pinned_rows, rows))] = 1.0
    upper = np.r_[np.ones(n_x + n_u), give[a_of].astype(float)]
    if integral:
        res = milp(cost, constraints=LinearConstraint(a_ub, -np.inf, np.concatenate(rhs_all)),
                   bounds=Bounds(lower, upper),
                   integrality=np.r_[np.ones(n_x + n_u), np.zeros(n_a)],
                   options={"time_limit": time_limit or 60, "disp": False})
        if res.x is None:
            raise SolverError(f"the MIP ended: {res.message}")
        return res.x, -res.fun, -getattr(res, "mip_dual_bound", res.fun)
    res = linprog(cost, A_ub=a_ub, b_ub=np.concatenate(rhs_all),
                  bounds=np.column_stack((lower, upper)), method="highs",
                  options={"time_limit": time_limit} if time_limit else None)
    if res.status != 0:
        raise SolverError(f"the linear relaxation ended: {res.message}")
    x = np.zeros(len(c))
    x[rows] = res.x[:n_x]
    u = np.zeros(p.n_demands)
    u[demands] = res.x[n_x:n_x + n_u]
    return x, u, int(np.floor(-res.fun + 1e-6))


def round_relaxation(model: Model, rows: np.ndarray, x: np.ndarray, u: np.ndarray,
                     residual: Residual) -> tuple[list[int], list[int]]:
    """Teams in the order the relaxation prefers, members by their fractional value."""
    c = model.cands
    demands = np.unique(c.d[rows])
    value = np.zeros(model.problem.n_demands)
    np.add.at(value, c.d[rows], x[rows] * c.score[rows])
    order = demands[np.lexsort((demands, -value[demands], -np.round(u[demands], 3)))]
    chosen: list[int] = []
    alloc: list[int] = []
    in_rows = np.zeros(len(c), bool)
    in_rows[rows] = True
    for sweep in ("relaxation", "score"):
        for d in order.tolist():
            if sweep == "relaxation" and u[d] < 1e-6:
                continue
            mine = np.arange(model.start[d], model.start[d + 1])
            mine = mine[in_rows[mine]]
            key = (-x[mine], -c.score[mine]) if sweep == "relaxation" else (-c.score[mine],)
            team = build_team(model, d, mine[np.lexsort((c.r[mine], *key[::-1]))].tolist(),
                              residual, prune=True)
            if team:
                residual.book(*team)
                chosen.extend(team[0])
                alloc.extend(team[1])
                in_rows[mine] = False  # served: not again in the next sweep
    return chosen, alloc
