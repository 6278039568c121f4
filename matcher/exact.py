"""The whole problem (1+1 and 1+N together) as one CP-SAT model: exact when it proves optimality,
otherwise the best answer found within the limit and the proven bound.

Built in the usual order: variables, one function per family of constraints, objective, solve.
Runs are deterministic for a seed: the limit is CP-SAT's deterministic time, one worker.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from ortools.sat.python import cp_model

from matcher.model import Model
from matcher.problem import SolverError, clashing


class _Vars:
    def __init__(self, model: Model, cp: cp_model.CpModel):
        p, c = model.problem, model.cands
        self.x = [cp.new_bool_var(f"x{i}") for i in range(len(c))]
        self.u = {int(d): cp.new_bool_var(f"u{d}") for d in np.unique(c.d)}
        # a team member's share of the quantity; a 1+1 pair gives the whole quantity
        self.a = {}
        for i in np.flatnonzero(model.team[c.d]).tolist():
            self.a[i] = cp.new_int_var(0, int(c.give[i]), f"a{i}")
        self.q = {i: int(p.d_quantity[c.d[i]]) for i in range(len(c)) if i not in self.a}

    def share(self, i: int):
        return self.a[i] if i in self.a else self.q[i] * self.x[i]


def _demand_rules(model: Model, cp: cp_model.CpModel, v: _Vars) -> None:
    p, c = model.problem, model.cands
    for d, u in v.u.items():
        rows = range(model.start[d], model.start[d + 1])
        # a served demand has between one and k members
        cp.add(sum(v.x[i] for i in rows) <= int(model.k[d]) * u)
        cp.add(sum(v.x[i] for i in rows) >= u)
        for i in rows:
            cp.add_implication(v.x[i], u)
        if model.team[d]:
            # the members' shares add up to the quantity; each member gives at least one
            cp.add(sum(v.a[i] for i in rows) == int(p.d_quantity[d]) * u)
            for i in rows:
                cp.add(v.a[i] >= v.x[i])
                cp.add(v.a[i] <= int(c.give[i]) * v.x[i])
            # every required skill is brought by some member
            for word, bits in enumerate(p.d_skills[d].tolist()):
                for bit in range(64):
                    if bits >> bit & 1:
                        have = [i for i in rows if int(p.r_skills[c.r[i], word]) >> bit & 1]
                        cp.add(sum(v.x[i] for i in have) >= u)
        # one unit holds one share of a demand
        by_unit = defaultdict(list)
        for i in rows:
            by_unit[int(p.r_unit[c.r[i]])].append(i)
        for same in by_unit.values():
            if len(same) > 1:
                cp.add_at_most_one(v.x[i] for i in same)


def _resource_rules(model: Model, cp: cp_model.CpModel, v: _Vars) -> None:
    p, c = model.problem, model.cands
    by_resource = defaultdict(list)
    for i, r in enumerate(c.r.tolist()):
        by_resource[r].append(i)
    for r, rows in by_resource.items():
        # a resource serves at most `capacity` demands and gives at most its quantity
        cp.add(sum(v.x[i] for i in rows) <= int(p.r_capacity[r]))
        cp.add(sum(v.share(i) for i in rows) <= int(p.r_quantity[r]))
        if p.r_exclusive[r]:
            # an exclusive resource is never booked twice at the same time
            for a, i in enumerate(rows):
                for j in rows[a + 1:]:
                    if clashing(p, int(c.d[i]), int(c.d[j])):
                        cp.add_bool_or([~v.x[i], ~v.x[j]])


def _add_hint(model: Model, cp: cp_model.CpModel, v: _Vars, hint: list[int]) -> None:
    """Start from a known answer: members, served demands and shares (lead first)."""
    c, p = model.cands, model.problem
    chosen = set(hint)
    for i, var in enumerate(v.x):
        cp.add_hint(var, i in chosen)
    served = {int(c.d[i]) for i in chosen}
    for d, var in v.u.items():
        cp.add_hint(var, d in served)
    for d in served:
        rows = [i for i in range(model.start[d], model.start[d + 1]) if i in chosen]
        if not model.team[d]:
            continue
        rest = int(p.d_quantity[d]) - len(rows)
        for i in rows:
            more = min(int(c.give[i]) - 1, rest)
            rest -= more
            cp.add_hint(v.a[i], 1 + more)
    for i in set(v.a) - chosen:
        cp.add_hint(v.a[i], 0)


def solve_cpsat(model: Model, *, time_limit: float, seed: int, hint: list[int] | None = None,
                with_time: bool = False):
    """Rows chosen, their shares, the proven bound and whether the answer is optimal (and, with
    `with_time`, the deterministic time spent). SolverError when no answer was found in time."""
    c = model.cands
    cp = cp_model.CpModel()
    v = _Vars(model, cp)
    _demand_rules(model, cp, v)
    _resource_rules(model, cp, v)
    for i in model.pinned_rows.tolist():
        cp.add(v.x[i] == 1)  # pinned pairs are kept
    cost = model.member_cost
    cp.maximize(sum(int(c.score[i] - cost[c.d[i]]) * v.x[i] for i in range(len(c)))
                + sum(int(cost[d]) * u for d, u in v.u.items()))
    if hint is not None:
        _add_hint(model, cp, v, hint)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.random_seed = seed
    solver.parameters.max_deterministic_time = max(time_limit, 0.01)
    solver.parameters.max_time_in_seconds = max(time_limit, 0.01) * 4
    # measured on the county case: the LP in every node pays, probing and symmetry do not
    solver.parameters.linearization_level = 2
    solver.parameters.cp_model_probing_level = 0
    solver.parameters.symmetry_level = 0
    status = solver.solve(cp)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise SolverError(f"CP-SAT ended with {solver.status_name(status)}")
    rows = [i for i, var in enumerate(v.x) if solver.boolean_value(var)]
    alloc = [solver.value(v.a[i]) if i in v.a else v.q[i] for i in rows]
    bound = int(np.floor(solver.best_objective_bound + 1e-6))
    if with_time:
        return rows, alloc, bound, status == cp_model.OPTIMAL, solver.deterministic_time
    return rows, alloc, bound, status == cp_model.OPTIMAL
