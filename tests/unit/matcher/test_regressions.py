"""Saved instances replayed against their known optimum, and the seeded generators of
matcher/instances.py run end to end through the solver and the validator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from matcher import instances
from matcher.problem import build_problem
from matcher.solve import solve
from matcher.validate import validate
from tests.unit.matcher import Reference

SAVED = sorted((Path(__file__).parent / "instances").glob("*.json"))


def test_the_saved_instances_are_there():
    assert len(SAVED) >= 3


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("method", ["auto", "cp-sat"])
@pytest.mark.parametrize("path", SAVED, ids=lambda path: path.stem)
def test_a_saved_instance_solves_to_its_known_optimum(path, method):
    saved = _load(path)
    problem = build_problem(saved["problem"])
    result = solve(problem, method=method, time_limit=5.0, seed=0)
    assert result.status == "optimal"
    assert result.objective == saved["expected_objective"]
    assert validate(problem, result.assignments()) == []
    assert result.greedy_objective <= result.objective


@pytest.mark.parametrize("path", SAVED, ids=lambda path: path.stem)
def test_a_saved_instances_optimum_is_confirmed_by_brute_force(path):
    saved = _load(path)
    assert Reference(saved["problem"]).optimum() == saved["expected_objective"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_county_instance_solves_to_a_valid_answer_no_worse_than_greedy(seed):
    problem = instances.county(seed)
    result = solve(problem, time_limit=5.0, seed=seed)
    assert result.served > 0
    assert validate(problem, result.assignments()) == []
    assert result.objective >= result.greedy_objective
    assert result.bound >= result.objective


def test_a_teams_instance_solved_by_the_relaxation_is_valid_and_within_its_bound():
    problem = instances.teams(n=60, units=120)
    result = solve(problem, method="relaxation", time_limit=0.5, seed=0)
    assert result.method == "relaxation"
    assert result.served > 0
    assert validate(problem, result.assignments()) == []
    assert result.objective >= result.greedy_objective
    assert result.bound >= result.objective


def test_a_small_city_instance_goes_through_the_flow_and_is_valid():
    problem = instances.city(n=300, m=600, seed=3, km=5.0)
    result = solve(problem, time_limit=5.0)
    assert result.method == "flow" and result.status == "optimal"
    assert result.served > 0
    assert validate(problem, result.assignments()) == []
    assert result.objective >= result.greedy_objective
