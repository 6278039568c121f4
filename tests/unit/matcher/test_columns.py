"""Column generation for teams: the pricing recursion against enumeration, its Lagrangian bound
against CP-SAT's proven optimum, and its answers through the validator."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from matcher import columns, instances
from matcher.greedy import Residual
from matcher.model import covers, objective_of, prepare
from matcher.pricing import QUANTITY_CAP, Pricer
from matcher.solve import solve
from matcher.validate import validate


def _enumerated_best(model, d: int, price: np.ndarray) -> float:
    """The best priced team of demand d, by trying every set of its candidates."""
    c = model.cands
    rows = range(model.start[d], model.start[d + 1])
    best = -np.inf
    for size in range(1, int(model.k[d]) + 1):
        for team in itertools.combinations(rows, size):
            if covers(model, d, team):
                team = list(team)
                best = max(best, objective_of(model, team) - price[c.r[team]].sum())
    return best


@pytest.mark.parametrize("seed", range(3))
def test_pricing_finds_the_best_priced_team_that_enumeration_finds(seed):
    model = prepare(instances.teams(n=10, units=24, seed=seed, communities=8))
    demands = np.flatnonzero(model.team)
    pricer = Pricer(model, demands, np.arange(len(model.cands)))
    price = np.random.default_rng(seed).uniform(0, 200, model.problem.n_resources)
    value, teams = pricer.best(price, np.full(len(demands), -np.inf))
    for local, d in enumerate(demands.tolist()):
        assert value[local] == pytest.approx(_enumerated_best(model, d, price), abs=1e-6)
    for team in teams:  # every team read back covers its demand and is worth what was priced
        assert covers(model, team.demand, team.rows)
        priced = objective_of(model, team.rows) - price[model.cands.r[team.rows]].sum()
        assert priced == pytest.approx(team.value, abs=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_the_column_generation_bound_is_no_lower_than_the_proven_optimum(seed):
    problem = instances.teams(n=25, units=40, seed=seed, communities=8)
    exact = solve(problem, method="cp-sat", time_limit=20.0)
    assert exact.status == "optimal"
    result = solve(problem, method="columns", time_limit=1.0)
    assert validate(problem, result.assignments()) == []
    assert result.objective <= exact.objective <= result.bound


@pytest.mark.parametrize("seed", range(3))
def test_pricing_keeps_the_best_priced_team_when_demands_of_every_shape_are_priced_together(seed):
    """Team sizes up to 7 and quantities past the tracked cap share chunks; capped quantities
    may only raise the value (a relaxation), never lower it."""
    problem = instances.teams(n=12, units=16, seed=seed, communities=6)
    rng = np.random.default_rng(seed)
    problem.d_max_team[:] = rng.integers(2, 8, problem.n_demands)
    problem.d_quantity[:] = rng.integers(2, 30, problem.n_demands)
    problem.r_share[:] = rng.integers(1, 9, problem.n_resources)
    problem.r_quantity[:] = problem.r_share * problem.r_capacity
    model = prepare(problem)
    demands = np.flatnonzero(model.team)
    pricer = Pricer(model, demands, np.arange(len(model.cands)))
    price = rng.uniform(0, 300, problem.n_resources)
    value, _ = pricer.best(price)
    for local, d in enumerate(demands.tolist()):
        best = _enumerated_best(model, d, price)
        if problem.d_quantity[d] <= QUANTITY_CAP:
            assert value[local] == pytest.approx(best, abs=1e-6)
        else:
            assert value[local] >= best - 1e-6


def test_pricing_reads_back_only_each_demands_best_team_when_asked():
    model = prepare(instances.teams(n=40, units=60, seed=5, communities=8))
    demands = np.flatnonzero(model.team)
    pricer = Pricer(model, demands, np.arange(len(model.cands)))
    price = np.random.default_rng(5).uniform(0, 100, model.problem.n_resources)
    value, teams = pricer.best(price, np.zeros(len(demands)), best_only=True)
    worth = value > 0
    assert sorted(t.demand for t in teams) == demands[worth].tolist()
    for team in teams:
        assert team.value == pytest.approx(value[np.searchsorted(demands, team.demand)])


@pytest.mark.parametrize("seed", range(3))
def test_the_warm_start_bound_alone_is_no_lower_than_the_proven_optimum(seed):
    """The subgradient steps before the first master give a valid bound by themselves."""
    problem = instances.teams(n=25, units=40, seed=seed, communities=8)
    exact = solve(problem, method="cp-sat", time_limit=20.0)
    assert exact.status == "optimal"
    model = prepare(problem)
    demands = np.flatnonzero(model.team)
    rows = np.arange(len(model.cands))
    pricer = Pricer(model, demands, rows)
    cols = columns.Columns(model, columns._exact_pricing(model, pricer))
    bound, prices = columns._warm_start(pricer, cols, problem.r_capacity.astype(float),
                                        time.perf_counter() + 60)
    assert (prices >= 0).all()
    assert bound >= exact.objective - 1e-6
    assert len(cols) >= exact.served  # every served demand has a column in the pool


def test_the_booking_program_picks_at_most_one_team_a_demand_within_capacities():
    model = prepare(instances.teams(n=60, units=120, seed=2, communities=12))
    rows = np.arange(len(model.cands))
    capacity = model.problem.r_capacity.astype(float)
    cols, _, x = columns.generate(model, rows, capacity=capacity, seed_teams=[], time_limit=60.0)
    picked, proven = columns._integral(model, cols, x, model.problem.r_capacity, 5.0)
    assert proven and picked.any()
    demands = np.asarray(cols.d)[picked]
    assert len(np.unique(demands)) == len(demands)
    used = np.bincount(np.concatenate([model.cands.r[cols.members[i]]
                                       for i in np.flatnonzero(picked)]),
                       minlength=model.problem.n_resources)
    assert (used <= model.problem.r_capacity).all()
    booked, _ = columns.book(model, cols, x, rows, Residual(model))
    assert objective_of(model, booked) >= np.asarray(cols.value)[picked].sum() * 0.99


def test_the_column_generation_answer_is_valid_and_beats_greedy_on_a_team_instance():
    problem = instances.teams(n=150, units=300, seed=4, communities=30)
    result = solve(problem, method="columns", time_limit=3.0)
    assert validate(problem, result.assignments()) == []
    assert result.objective >= result.greedy_objective
    assert result.objective <= result.bound
    assert result.gap < 0.02


def test_column_generation_gives_the_same_teams_and_bound_twice():
    """Deterministic when it converges within its time (the time limit only cuts it short)."""
    model = prepare(instances.teams(n=60, units=120, seed=2, communities=12))
    rows = np.arange(len(model.cands))
    capacity = model.problem.r_capacity.astype(float)
    answers = []
    for _ in range(2):
        cols, bound, x = columns.generate(model, rows, capacity=capacity, seed_teams=[],
                                          time_limit=60.0)
        answers.append((columns.book(model, cols, x, rows, Residual(model)), bound))
    assert answers[0] == answers[1]
