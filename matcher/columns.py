"""Large team problems by column generation over whole teams.

Each column is one feasible team of one demand (a lead and helpers covering its skills and
quantity, at most k units). The master problem picks at most one team per demand, and every
resource is in at most `capacity` chosen teams.

1. The master's linear relaxation (HiGHS, through SciPy) gives prices on resources; pricing
   (matcher/pricing.py) finds, exactly, each demand's best team at those prices; teams worth
   more than their demand's price join the master. Repeat until no team joins, the bound is
   close enough to the master's value, or the time share runs out.
2. The bound, valid after any round: for prices π ≥ 0,
   `Σ_r π_r · capacity_r + Σ_d max(0, best priced team of d)` is at least the optimum (the
   Lagrangian bound; see docs/matching.md). The lowest over all rounds is reported.
3. Teams are booked in the order the master's last relaxation prefers them, each against what
   its members have left (quantity and no-double-booking windows are checked here, not in the
   master); the greedy team builder then serves what it can of the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from matcher.greedy import Residual, allocate, build_team
from matcher.model import Model, covers
from matcher.pricing import Pricer
from matcher.problem import SolverError

ROUNDS = 60             # at most this many pricing rounds
CLOSE_ENOUGH = 0.002    # stop when the master is within this of the bound
EPS = 1e-6
SMOOTH = 0.5            # pricing looks halfway between the best prices so far and the LP's
TRACE_SLACK = 50.0      # teams within this of their demand's price are read back and checked
IPM_TOLERANCE = 1e-6    # HiGHS's default; prices need not be exact for the bound to hold


@dataclass
class Columns:
    """The teams found so far: column i serves demand d[i] with candidate rows members[i]."""

    d: list[int]
    members: list[list[int]]
    value: list[int]

    def add(self, model: Model, d: int, rows: list[int], seen: set) -> bool:
        key = (d, tuple(sorted(rows)))
        if key in seen or not covers(model, d, rows) or not _distinct_units(model, rows):
            return False
        seen.add(key)
        c = model.cands
        self.d.append(d)
        self.members.append(sorted(rows))
        self.value.append(int(c.score[rows].sum() - (len(rows) - 1) * model.member_cost[d]))
        return True


def _distinct_units(model: Model, rows: list[int]) -> bool:
    units = model.problem.r_unit[model.cands.r[rows]]
    return len(np.unique(units)) == len(units)


@dataclass
class Master:
    """The master problem's matrix: demand rows first, then one capacity row per resource."""

    matrix: sparse.csr_matrix
    upper: np.ndarray
    value: np.ndarray
    n_demands: int


def _master(model: Model, cols: Columns, demands: np.ndarray, capacity: np.ndarray) -> Master:
    c, p = model.cands, model.problem
    local = np.full(p.n_demands, -1)
    local[demands] = np.arange(len(demands))
    sizes = np.array([len(m) for m in cols.members])
    members = np.concatenate(cols.members).astype(np.int64)
    col = np.repeat(np.arange(len(cols.d)), sizes)
    rows = np.r_[local[np.asarray(cols.d)], len(demands) + c.r[members]]
    cols_all = np.r_[np.arange(len(cols.d)), col]
    matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols_all)),
                               shape=(len(demands) + p.n_resources, len(cols.d)))
    upper = np.r_[np.ones(len(demands)), capacity].astype(float)
    return Master(matrix, upper, np.asarray(cols.value, float), len(demands))


def _solve_lp(master: Master, time_limit: float):
    """The master's relaxation: (x per column, its value, demand prices, resource prices)."""
    res = linprog(-master.value, A_ub=master.matrix, b_ub=master.upper,
                  bounds=(0, None), method="highs-ipm",
                  options={"time_limit": max(time_limit, 0.05), "presolve": False,
                           "ipm_optimality_tolerance": IPM_TOLERANCE})
    if res.status != 0 or res.x is None:
        raise SolverError(f"the master relaxation ended: {res.message}")
    duals = np.maximum(-res.ineqlin.marginals, 0.0)
    return res.x, -res.fun, duals[:master.n_demands], duals[master.n_demands:]


def generate(model: Model, rows: np.ndarray, *, capacity: np.ndarray, seed_teams: list,
             time_limit: float) -> tuple[Columns, float, np.ndarray]:
    """Columns for the team demands of `rows`, the proven bound on their best total, and the
    master's last fractional answer (one value per column)."""
    deadline = time.perf_counter() + time_limit
    demands = np.unique(model.cands.d[rows])
    pricer = Pricer(model, demands, rows)
    cols, seen = Columns([], [], []), set()
    for d, members in seed_teams:
        cols.add(model, d, members, seen)
    centre = np.zeros(model.problem.n_resources)
    best_value, found = pricer.best(centre, np.zeros(len(demands)))
    bound = _lagrangian(best_value, centre, capacity)
    for team in found:
        cols.add(model, team.demand, team.rows, seen)
    x = np.zeros(len(cols.d))
    for _ in range(ROUNDS):
        if not cols.d or time.perf_counter() > deadline:
            break
        master = _master(model, cols, demands, capacity)
        try:
            x, lp_value, sigma, lp_price = _solve_lp(master, deadline - time.perf_counter())
        except SolverError:  # out of time inside the LP: keep the columns and bound so far
            break
        if bound - lp_value <= CLOSE_ENOUGH * max(bound, 1.0):
            break
        fresh = 0
        for smooth in (SMOOTH, 0.0):  # prices between the best so far and the LP's, then the LP's
            price = smooth * centre + (1 - smooth) * lp_price
            best_value, found = pricer.best(price, sigma - TRACE_SLACK)
            here = _lagrangian(best_value, price, capacity)
            if here < bound:
                bound, centre = here, price
            for team in found:  # a team joins when it is worth more than it costs at LP prices
                paid = sigma[np.searchsorted(demands, team.demand)] + (
                    lp_price - price)[model.cands.r[team.rows]].sum()
                fresh += team.value > paid + EPS and cols.add(model, team.demand, team.rows, seen)
            if fresh:
                break
        if not fresh:
            break
    if len(x) < len(cols.d):
        x = np.r_[x, np.zeros(len(cols.d) - len(x))]
    return cols, bound, x


def _lagrangian(best_value: np.ndarray, price: np.ndarray, capacity: np.ndarray) -> float:
    """Σ π·capacity + Σ_d max(0, best priced team): an upper bound for any prices π ≥ 0."""
    return float(price @ capacity + np.maximum(best_value, 0.0).sum())


def book(model: Model, cols: Columns, x: np.ndarray, rows: np.ndarray,
         residual: Residual) -> tuple[list[int], list[int]]:
    """Book teams in the order the master's relaxation prefers them (its value, then the
    team's), each when what its members have left allows; then serve what else fits."""
    c = model.cands
    chosen: list[int] = []
    alloc: list[int] = []
    served = np.zeros(model.problem.n_demands, bool)
    order = np.lexsort((np.arange(len(cols.d)), -np.asarray(cols.value), -np.round(x, 6)))
    for i in order.tolist():
        d = cols.d[i]
        if served[d]:
            continue
        members = cols.members[i]
        if not all(residual.can_take(r) for r in members):
            continue
        share = allocate(model, d, members, residual)
        if share is None:
            continue
        residual.book(members, share)
        chosen.extend(members)
        alloc.extend(share)
        served[d] = True
    # what no column could serve: a team built best score first on what is left
    in_rows = np.zeros(len(c), bool)
    in_rows[rows] = True
    for d in np.unique(c.d[rows]).tolist():
        if served[d]:
            continue
        mine = np.arange(model.start[d], model.start[d + 1])
        mine = mine[in_rows[mine]]
        team = build_team(model, d, mine[np.lexsort((c.r[mine], -c.score[mine]))].tolist(),
                          residual, prune=True)
        if team:
            residual.book(*team)
            chosen.extend(team[0])
            alloc.extend(team[1])
    return chosen, alloc
