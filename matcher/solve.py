"""Choosing a solver and reading out the answer.

- Only 1+1 demands, and counting demands is enough → min-cost flow: exact.
- Small problems (up to `EXACT_LIMIT` candidate pairs) → CP-SAT on the whole model, warm-started
  from the greedy answer: exact when it proves optimality within the limit.
- Large problems with teams → column generation over whole teams (matcher/columns.py), its
  master booked (stopping as soon as the booking is within `STOP_GAP` of the bound); 1+1
  demands then go through the flow on what capacity is left. The bound is the Lagrangian bound
  of the column generation (plus the flow's on full capacity). With pinned pairs, the compact
  linear relaxation (matcher/relax.py) instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from matcher import columns
from matcher.candidates import TERMS
from matcher.exact import solve_cpsat
from matcher.flow import flow_safe, solve_flow
from matcher.greedy import Residual, greedy
from matcher.model import Model, objective_of, prepare
from matcher.polish import polish
from matcher.problem import Problem, SolverError
from matcher.relax import round_relaxation, solve_relaxation

EXACT_LIMIT = 20_000
COLUMN_SHARE = 0.8  # of the time left, what column generation may use (the rest: booking, polish)
STOP_GAP = 0.008    # column generation stops once its booked teams are this close to the bound


@dataclass
class Result:
    """The chosen candidate rows of a model, with shares, leads and how good the answer is."""

    model: Model
    rows: np.ndarray
    alloc: np.ndarray
    lead: np.ndarray
    objective: int
    bound: int
    status: str                     # optimal | feasible
    method: str                     # flow | cp-sat | relaxation | greedy
    greedy_objective: int | None
    timings: dict = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """How far the answer may be from the optimum, as a fraction of the bound."""
        return 0.0 if self.bound <= 0 else max(0.0, (self.bound - self.objective) / self.bound)

    def assignments(self) -> list[dict]:
        """One record per chosen pair: ids, share, role and the score broken down by term."""
        p, c = self.model.problem, self.model.cands
        out = []
        for row, q, lead in zip(self.rows.tolist(), self.alloc.tolist(), self.lead.tolist(),
                                strict=True):
            out.append({"demand": p.d_id[c.d[row]], "resource": p.r_id[c.r[row]],
                        "unit": p.u_id[p.r_unit[c.r[row]]], "quantity": int(q),
                        "role": "lead" if lead else "helper", "score": int(c.score[row]),
                        "terms": c.breakdown(row)})
        return out

    def summary(self) -> dict:
        return {"status": self.status, "method": self.method, "objective": self.objective,
                "bound": self.bound, "gap": round(self.gap, 6),
                "greedy_objective": self.greedy_objective, "served": self.served,
                "demands": self.model.problem.n_demands, "pairs": len(self.rows),
                "candidates": len(self.model.cands),
                "timings": {k: round(v, 4) for k, v in self.timings.items()}}

    @property
    def served(self) -> int:
        return len(np.unique(self.model.cands.d[self.rows]))


def _leads(model: Model, rows: np.ndarray) -> np.ndarray:
    """The best-scoring new member leads, unless a locked member already leads the demand."""
    p, c = model.problem, model.cands
    lead = np.zeros(len(rows), bool)
    if not len(rows):
        return lead
    led = np.zeros(p.n_demands, bool)
    led[p.locked_d[p.locked_lead]] = True
    order = np.lexsort((c.r[rows], -c.score[rows], c.d[rows]))
    first = np.r_[True, c.d[rows][order][1:] != c.d[rows][order][:-1]]
    lead[order[first]] = True
    return lead & ~led[c.d[rows]]


def _result(model, rows, alloc, bound, status, method, greedy_obj, timings) -> Result:
    rows = np.asarray(rows, np.int64)
    alloc = np.asarray(alloc, np.int64)
    order = np.argsort(rows, kind="stable")
    rows, alloc = rows[order], alloc[order]
    objective = objective_of(model, rows)
    if status == "optimal":
        bound = objective
    return Result(model, rows, alloc, _leads(model, rows), objective, max(bound, objective),
                  status, method, greedy_obj, timings)


def solve(problem: Problem, *, mode: str | None = None, time_limit: float = 10.0,
          seed: int = 0, method: str = "auto", baseline: bool = True) -> Result:
    """Solve a problem; `method` forces flow, cp-sat, columns, relaxation or greedy (else chosen).

    `baseline=False` skips the greedy answer where the solver does not need it (flow)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model = prepare(problem, mode)
    timings["candidates"] = time.perf_counter() - t0
    if method == "auto":
        method = _choose(model)
    if method == "columns" and len(model.pinned_rows):
        method = "relaxation"  # column generation does not keep pinned pairs
    g_rows, g_alloc, greedy_obj = [], [], None
    if baseline or method != "flow":
        t1 = time.perf_counter()
        g_rows, g_alloc = greedy(model)
        greedy_obj = objective_of(model, g_rows)
        timings["greedy"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    if method == "greedy":
        rows, alloc, bound, status = g_rows, g_alloc, _upper(model), "feasible"
    elif method == "flow":
        rows = solve_flow(model)
        alloc = model.problem.d_quantity[model.cands.d[rows]]
        rows, alloc, bound, status = rows, alloc, 0, "optimal"
    elif method == "cp-sat":
        try:
            rows, alloc, bound, optimal = solve_cpsat(model, time_limit=time_limit, seed=seed,
                                                      hint=g_rows)
        except SolverError:  # nothing found in time: keep the greedy answer
            rows, alloc, bound, optimal = g_rows, g_alloc, _upper(model), False
        status = "optimal" if optimal else "feasible"
    else:
        try:
            if method == "columns":
                rows, alloc, bound = _by_columns(model, g_rows, t0 + time_limit)
            else:
                rows, alloc, bound = _relaxed(model, time_limit)
        except SolverError:  # the relaxation ran out of time: the greedy answer, pruned
            rows, alloc = round_relaxation(model, np.arange(len(model.cands)),
                                           np.zeros(len(model.cands)),
                                           np.zeros(model.problem.n_demands), Residual(model))
            bound = _upper(model)
        t_polish = time.perf_counter()
        rows, alloc = polish(model, rows, alloc, time_limit=max(0.0, time_limit - (
            t_polish - t0)), seed=seed)
        timings["polish"] = time.perf_counter() - t_polish
        status = "feasible"
        if greedy_obj > objective_of(model, rows):
            rows, alloc = g_rows, g_alloc
    timings["solve"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    result = _result(model, rows, alloc, bound, status, method, greedy_obj, timings)
    timings["extract"] = time.perf_counter() - t3
    return result


def _choose(model: Model) -> str:
    if not model.team.any() and flow_safe(model) and not len(model.pinned_rows):
        return "flow"
    if len(model.cands) <= EXACT_LIMIT:
        return "cp-sat"
    return "relaxation" if len(model.pinned_rows) else "columns"


def _upper(model: Model) -> int:
    """A quick proven bound: every demand served by its best pair, plus, for a team, its best
    k − 1 other members where they add value."""
    c = model.cands
    best = np.zeros(model.problem.n_demands, np.int64)
    np.maximum.at(best, c.d, c.score)
    total = int(best.sum())
    cost = model.member_cost
    for d in np.flatnonzero(model.team & (model.k > 1)).tolist():
        gains = np.sort(c.score[model.start[d]:model.start[d + 1]] - cost[d])[::-1]
        total += int(np.maximum(gains[:model.k[d] - 1], 0).sum())
    return total


def _relaxed(model: Model, time_limit: float) -> tuple[list[int], list[int], int]:
    """Teams by the relaxation, then 1+1 demands by flow on the capacity left."""
    c = model.cands
    team_rows = np.flatnonzero(model.team[c.d])
    single_rows = np.flatnonzero(~model.team[c.d])
    if len(single_rows) and len(team_rows) and flow_safe_part(model, single_rows):
        x, u, bound = solve_relaxation(model, team_rows, time_limit=time_limit)
        residual = Residual(model)
        rows, alloc = round_relaxation(model, team_rows, x, u, residual)
        full = solve_flow(model, rows=single_rows)
        bound += objective_of(model, full)
        singles = solve_flow(model, capacity=_left_for_singles(model, residual, single_rows),
                             rows=_not_clashing(model, residual, single_rows))
        return ([*rows, *singles.tolist()],
                [*alloc, *model.problem.d_quantity[c.d[singles]].tolist()], bound)
    everything = np.arange(len(c))
    x, u, bound = solve_relaxation(model, everything, time_limit=time_limit)
    rows, alloc = round_relaxation(model, everything, x, u, Residual(model))
    return rows, alloc, bound


def _by_columns(model: Model, greedy_rows: list[int], deadline: float
                ) -> tuple[list[int], list[int], int]:
    """Teams by column generation, then 1+1 demands by flow on the capacity left (or, when the
    flow cannot take them, by the greedy team builder in the master's sweep)."""
    c, p = model.cands, model.problem
    team_rows = np.flatnonzero(model.team[c.d])
    single_rows = np.flatnonzero(~model.team[c.d])
    split = bool(len(single_rows)) and flow_safe_part(model, single_rows)
    rows = team_rows if split else np.arange(len(c))
    seed: dict[int, list[int]] = {}
    for row in greedy_rows:
        if model.team[c.d[row]]:
            seed.setdefault(int(c.d[row]), []).append(int(row))
    residual = Residual(model)
    chosen, alloc, bound = [], [], 0
    if len(team_rows):
        share = COLUMN_SHARE * (deadline - time.perf_counter())
        booked = _Booking(model, rows, deadline)
        cols, upper, x = columns.generate(model, team_rows, capacity=p.r_capacity.astype(float),
                                          seed_teams=sorted(seed.items()), time_limit=share,
                                          enough=booked.enough)
        # the objective is integral, so the bound may be rounded down (a hair of float slack)
        bound = int(np.floor(upper + 1e-6))
        chosen, alloc, residual = booked.answer(cols, x)
    if not split:
        if len(single_rows):  # 1+1 demands could not be priced: their best pairs bound them
            bound += _upper(_single_part(model, single_rows))
        return chosen, alloc, bound
    bound += objective_of(model, solve_flow(model, rows=single_rows))
    singles = solve_flow(model, capacity=_left_for_singles(model, residual, single_rows),
                         rows=_not_clashing(model, residual, single_rows))
    return ([*chosen, *singles.tolist()],
            [*alloc, *p.d_quantity[c.d[singles]].tolist()], bound)


class _Booking:
    """Books the master's answer while column generation runs, so that it stops as soon as the
    booked teams are within `STOP_GAP` of the bound; the last booking is kept for the answer."""

    def __init__(self, model: Model, rows: np.ndarray, deadline: float):
        self.model, self.rows, self.deadline = model, rows, deadline
        self.last: tuple | None = None

    def _book(self, cols: columns.Columns, x: np.ndarray):
        residual = Residual(self.model)
        chosen, alloc = columns.book(self.model, cols, x, self.rows, residual,
                                     time_limit=(self.deadline - time.perf_counter()) / 2)
        return chosen, alloc, residual

    def enough(self, cols: columns.Columns, x: np.ndarray, upper: float) -> bool:
        chosen, alloc, residual = self._book(cols, x)
        self.last = (len(cols), x, chosen, alloc, residual)
        teams = [row for row in chosen if self.model.team[self.model.cands.d[row]]]
        return objective_of(self.model, teams) >= (1 - STOP_GAP) * upper

    def answer(self, cols: columns.Columns, x: np.ndarray):
        """(rows, shares, what is left) of booking `x`, reusing the last booking if the same."""
        if self.last and self.last[0] == len(cols) and np.array_equal(self.last[1], x):
            return self.last[2:]
        return self._book(cols, x)


def _single_part(model: Model, rows: np.ndarray) -> Model:
    """The model restricted to the candidate rows `rows`."""
    return Model(model.problem, model.cands.take(rows), model.team, model.k,
                 np.searchsorted(model.cands.d[rows], np.arange(model.problem.n_demands + 1)),
                 np.zeros(0, np.int64))


def _left_for_singles(model: Model, residual: Residual, rows: np.ndarray) -> np.ndarray:
    """Demands each resource can still take, so that its quantity cannot run out."""
    c = model.cands
    most = np.ones(model.problem.n_resources, np.int64)
    np.maximum.at(most, c.r[rows], model.problem.d_quantity[c.d[rows]])
    return np.maximum(np.minimum(residual.capacity, residual.quantity // most), 0)


def _not_clashing(model: Model, residual: Residual, rows: np.ndarray) -> np.ndarray:
    """The 1+1 rows whose exclusive resource is not booked by a team at the same time."""
    exclusive = model.problem.r_exclusive[model.cands.r[rows]]
    keep = ~exclusive
    keep[exclusive] = [residual.can_take(row) for row in rows[exclusive].tolist()]
    return rows[keep]


def flow_safe_part(model: Model, rows: np.ndarray) -> bool:
    """Whether the 1+1 rows alone can go through the flow (quantity and windows never bind)."""
    sub = Model(model.problem, model.cands.take(rows), model.team, model.k,
                np.searchsorted(model.cands.d[rows], np.arange(model.problem.n_demands + 1)),
                np.zeros(0, np.int64))
    return not len(model.pinned_rows) and flow_safe(sub)


__all__ = ["solve", "Result", "TERMS"]
