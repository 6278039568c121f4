"""Large team problems by column generation over whole teams.

Each column is one feasible team of one demand (a lead and helpers covering its skills and
quantity, at most k units). The master problem picks at most one team per demand, and every
resource is in at most `capacity` chosen teams.

1. Warm start: a few subgradient steps on the Lagrangian bound, using pricing alone
   (matcher/pricing.py finds each demand's best team at given resource prices, exactly). Each
   step raises the prices of over-used resources and lowers those of idle ones, and each
   demand's best team at every step joins the pool, so the first master already sees the teams
   that good prices favour.
2. Rounds: the master's linear relaxation (HiGHS interior point through SciPy, without
   crossover) gives prices; pricing at those prices finds every demand's best team of each
   size, and those worth more than their demand's price join, with the pool's teams that now
   pay. Repeat until none joins, the bound is close enough to the master's value (or the
   caller's booking of it is), or the time share runs out.
3. The bound, valid after any step: for prices π ≥ 0,
   `Σ_r π_r · capacity_r + Σ_d max(0, best priced team of d)` is at least the optimum (the
   Lagrangian bound; see docs/matching.md). The lowest over all prices tried is reported.
4. Booking: the relaxation's whole teams and those HiGHS's MIP picks among its fractional ones
   are booked first, then the others in the order the relaxation prefers them, each against
   what its members have left (quantity and no-double-booking windows are checked here, not in
   the master); the greedy team builder then serves what it can of the rest.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable

import numpy as np
from ortools.linear_solver.python import model_builder_helper
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, OptimizeWarning, linprog, milp

from matcher.greedy import Residual, allocate, build_team
from matcher.model import Model, covers, objective_of
from matcher.pricing import QUANTITY_CAP, SKILL_BITS, Pricer

ROUNDS = 60             # at most this many master rounds
WARM_STEPS = 8          # subgradient steps before the first master
WARM_TARGET = 0.8       # each step aims the bound at this share of the current one (Polyak)
WARM_SHARE = 0.5        # of the time, what the warm start may use at most (the masters need it)
WARM_SHRINK = 0.5       # the step shrinks so much after a step that did not lower the bound
CLOSE_ENOUGH = 0.002    # stop when the master is within this of the bound
ASK_GAP = 0.01          # ask the caller whether to stop when the master is within this
POOL_SLACK = 200.0      # the first master takes the teams worth at least −this at the best prices
EPS = 1e-6
SUPPORT = 1e-3          # the relaxation's columns above 1 − this are whole, above this used
PDLP_TOLERANCE = 3e-4   # the first master's relative tolerance (PDLP)
MIP_SECONDS = 0.5       # at most this long for the booking's integer program (usually 0.05 s)
MIP_LEAST = 0.02        # not worth starting with less time than this


class Columns:
    """The teams found so far: column i serves demand d[i] with candidate rows members[i]."""

    def __init__(self, model: Model, exact: np.ndarray):
        self.model = model
        self.exact = exact  # per demand: pricing tracks all its rules (no check needed)
        self.cost = model.member_cost
        self.d: list[int] = []
        self.members: list[list[int]] = []
        self.value: list[int] = []
        self.seen: set = set()

    def __len__(self) -> int:
        return len(self.d)

    def worth(self, price: np.ndarray) -> np.ndarray:
        """Per column, its value less the prices of its members' resources."""
        if not self.members:
            return np.zeros(0)
        sizes = np.fromiter(map(len, self.members), np.int64, len(self.members))
        rows = np.fromiter((r for m in self.members for r in m), np.int64, int(sizes.sum()))
        paid = np.add.reduceat(price[self.model.cands.r[rows]], np.r_[0, np.cumsum(sizes)[:-1]])
        return np.asarray(self.value, float) - paid

    def add(self, d: int, rows: list[int]) -> bool:
        """Add the team `rows` of demand d unless it is known or breaks a rule."""
        rows = sorted(rows)
        key = (d, *rows)
        if key in self.seen:
            return False
        self.seen.add(key)
        if not self.exact[d] and not (covers(self.model, d, rows)
                                      and _distinct_units(self.model, rows)):
            return False
        self.d.append(d)
        self.members.append(rows)
        self.value.append(int(self.model.cands.score[rows].sum() - (len(rows) - 1) * self.cost[d]))
        return True


def _distinct_units(model: Model, rows: list[int]) -> bool:
    units = model.problem.r_unit[model.cands.r[rows]]
    return len(np.unique(units)) == len(units)


def _exact_pricing(model: Model, pricer: Pricer) -> np.ndarray:
    """Per demand, whether a team priced for it always keeps every rule: all its skills and its
    whole quantity are tracked and its candidates come from distinct units."""
    p = model.problem
    exact = np.zeros(p.n_demands, bool)
    skills = np.unpackbits(p.d_skills[pricer.demands].view(np.uint8), axis=1).sum(axis=1)
    units = p.r_unit[model.cands.r[np.maximum(pricer.rows, 0)]]
    units = np.sort(np.where(pricer.rows >= 0, units, -1 - np.arange(pricer.rows.shape[1])), 1)
    distinct = (units[:, 1:] != units[:, :-1]).all(axis=1)
    exact[pricer.demands] = ((skills <= SKILL_BITS)
                             & (p.d_quantity[pricer.demands] <= QUANTITY_CAP) & distinct)
    return exact


class Master:
    """The master's relaxation: one row per demand (at most one team), then one per resource
    (at most its capacity); columns are added as they are found.

    HiGHS's interior point through SciPy, without crossover: the prices of a point inside the
    optimal face, not of a vertex, steady pricing better (and crossover would cost a third more).
    SciPy passes `run_crossover` to HiGHS as it is, with a warning that is silenced here. The
    first master, whose prices only steer pricing, goes to PDLP (OR-Tools) instead."""

    def __init__(self, n_demands: int, capacity: np.ndarray):
        self.n_demands = n_demands
        self.upper = np.r_[np.ones(n_demands), capacity].astype(float)
        self.rows: list[np.ndarray] = []
        self.value: list[float] = []
        self.ids = np.zeros(0, np.int64)  # the pool's index of each column
        self.solved = 0

    @property
    def n_columns(self) -> int:
        return len(self.value)

    def add(self, ids: np.ndarray, demand: np.ndarray, resources: list[np.ndarray],
            value: np.ndarray) -> None:
        """Pool columns `ids`: each serves its demand (a local index) with the resources."""
        if not len(ids):
            return
        sizes = np.fromiter(map(len, resources), np.int64, len(resources)) + 1
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        flat = np.empty(int(sizes.sum()), np.int64)
        flat[first] = demand
        rest = np.ones(len(flat), bool)
        rest[first] = False
        flat[rest] = self.n_demands + np.concatenate(resources)
        self.rows.extend(np.split(flat, first[1:]))
        self.value.extend(value.tolist())
        self.ids = np.r_[self.ids, ids]

    def solve(self, time_limit: float, *, first_order: bool = False):
        """(x per column, value, demand prices, resource prices), or None when out of time.

        `first_order` solves with PDLP (OR-Tools) to a looser tolerance, in about half the time:
        enough for prices that only steer pricing (the bound holds for any prices)."""
        sizes = np.array([len(r) for r in self.rows])
        matrix = sparse.csc_matrix(
            (np.ones(int(sizes.sum())), np.concatenate(self.rows),
             np.r_[0, np.cumsum(sizes)]), shape=(len(self.upper), len(self.rows)))
        self.solved += 1
        solved = self._pdlp(matrix, time_limit) if first_order else None
        return solved or self._ipm(matrix, time_limit)

    def _ipm(self, matrix: sparse.csc_matrix, time_limit: float):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            res = linprog(-np.asarray(self.value, float), A_ub=matrix, b_ub=self.upper,
                          bounds=(0, None), method="highs-ipm",
                          options={"time_limit": max(time_limit, 0.01), "presolve": False,
                                   "run_crossover": "off"})
        if res.status != 0 or res.x is None:
            return None
        dual = np.maximum(-res.ineqlin.marginals, 0.0)
        return res.x, -res.fun, dual[:self.n_demands], dual[self.n_demands:]

    def _pdlp(self, matrix: sparse.csc_matrix, time_limit: float):
        n = matrix.shape[1]
        model = model_builder_helper.ModelBuilderHelper()
        model.fill_model_from_sparse_data(np.zeros(n), np.full(n, np.inf),
                                          np.asarray(self.value, float),
                                          np.full(len(self.upper), -np.inf), self.upper,
                                          matrix.tocsr())
        model.set_maximize(True)
        solver = model_builder_helper.ModelSolverHelper("pdlp")
        solver.set_solver_specific_parameters(
            "termination_criteria { simple_optimality_criteria { eps_optimal_relative: "
            f"{PDLP_TOLERANCE} eps_optimal_absolute: {PDLP_TOLERANCE} }} }} num_threads: 1")
        solver.set_time_limit_in_seconds(max(time_limit, 0.01))
        solver.solve(model)
        if solver.status() != model_builder_helper.SolveStatus.OPTIMAL:
            return None
        dual = np.maximum(np.asarray(solver.dual_values()), 0.0)
        return (np.maximum(np.asarray(solver.variable_values()), 0.0), solver.objective_value(),
                dual[:self.n_demands], dual[self.n_demands:])


def generate(model: Model, rows: np.ndarray, *, capacity: np.ndarray, seed_teams: list,
             time_limit: float, enough: Callable | None = None
             ) -> tuple[Columns, float, np.ndarray]:
    """Columns for the team demands of `rows`, the proven bound on their best total, and the
    master's last fractional answer (one value per column, zero for those not in the master).

    `enough(cols, x, bound)`, asked after each round whose master is within `ASK_GAP` of the
    bound, ends the rounds when it answers true (say, when booking `x` is close enough)."""
    deadline = time.perf_counter() + time_limit
    demands = np.unique(model.cands.d[rows])
    pricer = Pricer(model, demands, rows)
    cols = Columns(model, _exact_pricing(model, pricer))
    for d, members in seed_teams:
        cols.add(d, members)
    seeds = len(cols)
    warm_until = time.perf_counter() + WARM_SHARE * (deadline - time.perf_counter())
    bound, centre = _warm_start(pricer, cols, capacity, warm_until)
    master = Master(len(demands), capacity)
    # the first master: the seed teams, and the teams worth about their cost at the best prices
    join = cols.worth(centre) >= -POOL_SLACK
    join[:seeds] = True
    x = np.zeros(len(cols))
    for _ in range(ROUNDS):
        if not join.any() or time.perf_counter() > deadline:
            break
        ids = np.flatnonzero(join)
        master.add(ids, np.searchsorted(demands, np.asarray(cols.d)[ids]),
                   [model.cands.r[cols.members[i]] for i in ids.tolist()],
                   np.asarray(cols.value)[ids])
        solved = master.solve(deadline - time.perf_counter(), first_order=not master.solved)
        if solved is None:  # out of time inside the LP: keep the columns and bound so far
            break
        x_master, lp_value, sigma, price = solved
        x = np.zeros(len(cols))
        x[master.ids] = x_master
        if bound - lp_value <= CLOSE_ENOUGH * max(bound, 1.0):
            break
        best_value, found = pricer.best(price, sigma + EPS)
        bound = min(bound, _lagrangian(best_value, price, capacity))
        for team in found:
            cols.add(team.demand, team.rows)
        x = np.r_[x, np.zeros(len(cols) - len(x))]
        # a team joins when it is worth more than its demand's price at these prices: the new
        # ones, and those of the pool kept out of the master so far
        join = cols.worth(price) - sigma[np.searchsorted(demands, cols.d)] > EPS
        join[master.ids] = False
        if not join.any():
            break
        if enough is not None and bound - lp_value <= ASK_GAP * bound and enough(cols, x, bound):
            break
    return cols, bound, np.r_[x, np.zeros(len(cols) - len(x))]


def _warm_start(pricer: Pricer, cols: Columns, capacity: np.ndarray, deadline: float
                ) -> tuple[float, np.ndarray]:
    """Subgradient steps from zero prices: the lowest bound met and its prices. Every demand's
    best team at each step joins the pool.

    Each step aims at a bound `WARM_TARGET` times the current one (Polyak's step); the step
    halves whenever the bound did not fall, as it zigzags once the prices are close."""
    price = np.zeros(len(capacity))
    bound, centre, scale = np.inf, price, 1.0
    resource = pricer.model.cands.r
    for step in range(WARM_STEPS + 1):
        if step and time.perf_counter() > deadline:
            break
        value, found = pricer.best(price, np.zeros(len(pricer.demands)), best_only=True)
        here = _lagrangian(value, price, capacity)
        if here < bound:
            bound, centre = here, price
        elif step:
            scale *= WARM_SHRINK
        for team in found:
            cols.add(team.demand, team.rows)
        used = [resource[team.rows] for team in found]
        use = np.bincount(np.concatenate(used), minlength=len(capacity)) if used else 0
        # the subgradient of the bound; a price at zero cannot fall further
        slope = capacity - use
        slope[(price <= 0) & (slope > 0)] = 0
        step_size = scale * (1 - WARM_TARGET) * here / max(float(slope @ slope), 1.0)
        price = np.maximum(price - step_size * slope, 0.0)
    return bound, centre


def _lagrangian(best_value: np.ndarray, price: np.ndarray, capacity: np.ndarray) -> float:
    """Σ π·capacity + Σ_d max(0, best priced team): an upper bound for any prices π ≥ 0."""
    return float(price @ capacity + np.maximum(best_value, 0.0).sum())


def book(model: Model, cols: Columns, x: np.ndarray, rows: np.ndarray, residual: Residual,
         time_limit: float = MIP_SECONDS) -> tuple[list[int], list[int]]:
    """Book teams in the order the master's relaxation prefers them (its value, then the
    team's), each when what its members have left allows; then serve what else fits. The teams
    of the master's integer program (on the relaxation's columns, at most `time_limit` seconds)
    go first; when that program ran out of time, the relaxation's order alone is tried too and
    the better booking kept."""
    order = np.lexsort((np.arange(len(cols.d)), -np.asarray(cols.value), -np.round(x, 6)))
    picked, proven = _integral(model, cols, x, residual.capacity, time_limit)
    orders = [np.r_[order[picked[order]], order[~picked[order]]]]
    if not proven:  # the program ran out of time: the relaxation's order may do better
        orders.append(order)
    best = None
    for order in orders:
        left = copy.copy(residual)
        left.capacity, left.quantity = residual.capacity.copy(), residual.quantity.copy()
        left.booked = {r: list(ds) for r, ds in residual.booked.items()}
        chosen, alloc = _book_in_order(model, cols, order, rows, left)
        value = objective_of(model, chosen)
        if best is None or value > best[0]:
            best = (value, chosen, alloc, left)
    _, chosen, alloc, left = best
    residual.capacity, residual.quantity, residual.booked = left.capacity, left.quantity, left.booked
    return chosen, alloc


def _book_in_order(model: Model, cols: Columns, order: np.ndarray, rows: np.ndarray,
                   residual: Residual) -> tuple[list[int], list[int]]:
    """Book the columns in `order`, each when what its members have left allows and its demand
    is not served yet; then a team built best score first for each demand still unserved."""
    c = model.cands
    chosen: list[int] = []
    alloc: list[int] = []
    served = np.zeros(model.problem.n_demands, bool)
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


def _integral(model: Model, cols: Columns, x: np.ndarray, capacity: np.ndarray,
              time_limit: float) -> tuple[np.ndarray, bool]:
    """Per column, whether the master as an integer program picks it, and whether the program
    was solved: the relaxation's whole columns are kept, and HiGHS chooses among its fractional
    ones on the capacity left. The relaxation is nearly integral, so this small program solves
    in a few hundredths of a second and loses little of its value."""
    picked = x >= 1 - SUPPORT
    demand = np.asarray(cols.d, np.int64)
    served = np.zeros(model.problem.n_demands, bool)
    served[demand[picked]] = True
    used = np.flatnonzero((x > SUPPORT) & ~picked & ~served[demand])
    if not len(used):
        return picked, True
    if time_limit < MIP_LEAST:
        return picked, False
    taken = [model.cands.r[cols.members[i]] for i in np.flatnonzero(picked).tolist()]
    left = np.maximum(capacity - np.bincount(np.concatenate([[], *taken]).astype(np.int64),
                                             minlength=len(capacity)), 0)
    members = [model.cands.r[cols.members[i]] for i in used.tolist()]
    sizes = np.array([len(m) for m in members])
    demands, row = np.unique(demand[used], return_inverse=True)
    matrix = sparse.csc_matrix(
        (np.ones(len(used) + int(sizes.sum())),
         (np.r_[row, len(demands) + np.concatenate(members)],
          np.r_[np.arange(len(used)), np.repeat(np.arange(len(used)), sizes)])),
        shape=(len(demands) + len(capacity), len(used)))
    res = milp(-np.asarray(cols.value, float)[used],
               constraints=LinearConstraint(matrix, -np.inf,
                                            np.r_[np.ones(len(demands)), left]),
               integrality=np.ones(len(used)), bounds=Bounds(0, 1),
               options={"time_limit": min(time_limit, MIP_SECONDS)})
    if res.x is not None:  # none when nothing was found in time: the whole columns alone
        picked[used] = res.x > 0.5
    return picked, res.status == 0
