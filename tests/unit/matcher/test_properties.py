"""Properties every answer must have, on tiny problems drawn by Hypothesis: valid, never worse
than the greedy baseline, repeatable for a seed, and the flow exact on one-unit problems."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from matcher.model import prepare
from matcher.problem import build_problem
from matcher.solve import solve
from matcher.validate import validate
from tests.unit.matcher import DrawPick, Reference, random_records

# The same examples on every run (derandomize), so that the suite is repeatable and its time
# bounded; no explain phase, which traces every line while shrinking and makes a failure slow.
SMALL = settings(max_examples=60, deadline=None, database=None, print_blob=True,
                 derandomize=True,
                 phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
                 suppress_health_check=[HealthCheck.too_slow])
TIME_LIMIT = 1.0  # CP-SAT proves these tiny models optimal long before
RELAXATION_TIME_LIMIT = 0.02  # the relaxation's polish runs until this wall-clock limit


@st.composite
def problems(draw, kind: str = "mixed") -> dict:
    """Records of a tiny problem (at most 6 demands and 6 resources)."""
    return random_records(DrawPick(draw), kind=kind)


def _solve(records: dict, method: str, seed: int = 0):
    problem = build_problem(records)
    limit = RELAXATION_TIME_LIMIT if method in ("relaxation", "columns") else TIME_LIMIT
    return problem, solve(problem, method=method, time_limit=limit, seed=seed)


@pytest.mark.parametrize("method", ["auto", "cp-sat", "greedy", "relaxation", "columns"])
@SMALL
@given(records=problems())
def test_every_answer_passes_the_validator(method, records):
    problem, result = _solve(records, method)
    assert validate(problem, result.assignments()) == []


@pytest.mark.parametrize("method", ["auto", "cp-sat"])
@SMALL
@given(records=problems())
def test_the_optimiser_never_does_worse_than_greedy_and_stays_within_its_bound(method, records):
    _, result = _solve(records, method)
    assert result.greedy_objective is not None
    assert result.objective >= result.greedy_objective
    assert result.bound >= result.objective


@pytest.mark.parametrize("method", ["auto", "cp-sat", "greedy"])
@SMALL
@given(records=problems())
def test_the_reported_objective_is_that_of_the_reported_assignments(method, records):
    _, result = _solve(records, method)
    assert Reference(records).objective(result.assignments()) == result.objective


@pytest.mark.parametrize("method", ["auto", "cp-sat"])
@SMALL
@given(records=problems(), seed=st.integers(0, 2**16))
def test_solving_twice_with_the_same_seed_gives_the_same_assignments(method, records, seed):
    _, first = _solve(records, method, seed)
    _, second = _solve(records, method, seed)
    assert first.assignments() == second.assignments()
    assert first.objective == second.objective


@SMALL
@given(records=problems(kind="flow"))
def test_the_flow_and_cp_sat_agree_on_one_unit_problems(records):
    problem = build_problem(records)
    assert not prepare(problem).team.any()
    flow = solve(problem, method="flow")
    exact = solve(problem, method="cp-sat", time_limit=TIME_LIMIT)
    assert exact.status == "optimal"
    assert flow.objective == exact.objective
    assert validate(problem, flow.assignments()) == []
