"""The solvers against a brute force on tiny instances, the min-cost flow against SciPy's
assignment solver, and the special pairs (pinned, forbidden, locked, exclusive) in every solver's
answer. Every answer also goes through the validator (matcher/validate.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from matcher.model import prepare
from matcher.problem import ProblemError, build_problem
from matcher.solve import solve
from matcher.validate import validate
from tests.unit.matcher import (
    CENTRE,
    COMMUNITIES,
    LEVELS,
    PyPick,
    Reference,
    brute_force,
    demand,
    offset,
    random_records,
    resource,
    window,
)

METHODS = ("auto", "cp-sat", "greedy", "relaxation", "columns")
EXACT = ("auto", "cp-sat")
# CP-SAT proves the tiny models below optimal long before its limit; the relaxation's polish runs
# until its (wall-clock) limit, so it gets a short one.
TIME_LIMIT = 2.0
RELAXATION_TIME_LIMIT = 0.05


def run(records: dict, method: str = "auto", **options):
    """Solve the records; returns (problem, result, assignments) after checking validity."""
    problem = build_problem(records)
    limit = RELAXATION_TIME_LIMIT if method in ("relaxation", "columns") else TIME_LIMIT
    result = solve(problem, method=method, time_limit=options.pop("time_limit", limit),
                   **options)
    assignments = result.assignments()
    assert validate(problem, assignments, options.get("mode")) == []
    return problem, result, assignments


def chosen(assignments: list[dict]) -> set[tuple]:
    return {(a["demand"], a["resource"]) for a in assignments}


# ---- exhaustive search on tiny random instances ------------------------------------------------

@pytest.mark.parametrize("method", EXACT)
@pytest.mark.parametrize("seed", range(60))
def test_the_exact_methods_reach_the_brute_force_optimum_on_tiny_random_instances(seed, method):
    records = random_records(PyPick(seed))
    ref = Reference(records)
    _, result, assignments = run(records, method)
    assert result.status == "optimal"
    assert result.objective == ref.optimum()
    assert ref.objective(assignments) == result.objective
    assert result.bound == result.objective


@pytest.mark.parametrize("method", ["greedy", "relaxation", "columns"])
@pytest.mark.parametrize("seed", range(40))
def test_the_heuristics_report_a_bound_no_lower_than_the_brute_force_optimum(seed, method):
    records = random_records(PyPick(seed))
    if method in ("relaxation", "columns") and not len(prepare(build_problem(records)).cands):
        return  # see test_every_method_answers_nothing_when_no_pair_passes_the_rules
    _, result, _ = run(records, method)
    assert result.objective <= Reference(records).optimum() <= result.bound


def test_the_bound_reported_with_a_greedy_answer_is_no_lower_than_the_optimum():
    """Greedy gives r1 to d2, so d1's team cannot be built. A team of two members that bring
    skills, distance, pairing and rating is worth more than its best pair alone."""
    here = {"lat": CENTRE[0], "lng": CENTRE[1]}
    records = {
        "demands": [demand("d1", quantity=2, community="A", grid="a", **here),
                    demand("d2", urgency="critical", community="B", grid="b", **here)],
        "resources": [resource("r1", unit="u1", communities=["A", "B"], **here),
                      resource("r2", unit="u2", communities=["A"], **here),
                      resource("r3", unit="u3", communities=["B"], **here)],
        "units": [{"id": u, "rating": 5} for u in ("u1", "u2", "u3")],
        "pairings": [{"unit": "u1", "community": "A", "grid": "a"},
                     {"unit": "u1", "community": "B", "grid": "b"},
                     {"unit": "u2", "community": "A", "grid": "a"},
                     {"unit": "u3", "community": "B", "grid": "b"}],
    }
    optimum = brute_force(records)
    assert optimum == 2 * 1900 - (1000 + 250) + 2200
    _, exact, _ = run(records, "cp-sat")
    assert exact.objective == optimum
    _, result, _ = run(records, "greedy")
    assert result.objective < optimum
    assert result.bound >= optimum


@pytest.mark.parametrize("method", ("flow", *EXACT))
@pytest.mark.parametrize("seed", range(25))
def test_the_flow_reaches_the_brute_force_optimum_when_every_quantity_is_one(seed, method):
    records = random_records(PyPick(1000 + seed), kind="unit")
    ref = Reference(records)
    _, result, assignments = run(records, method)
    assert result.objective == ref.optimum()
    assert ref.objective(assignments) == result.objective


@pytest.mark.parametrize("seed", range(25))
def test_forbidden_pairs_and_locked_units_never_appear_in_any_answer(seed):
    records = random_records(PyPick(2000 + seed))
    forbidden = {(f["demand"], f["resource"]) for f in records["forbidden"]}
    unit_of = {r["id"]: r["unit"] for r in records["resources"]}
    held = {(x["demand"], unit_of[x["resource"]]) for x in records["locked"]}
    for method in METHODS:
        if method in ("relaxation", "columns") and not prepare(build_problem(records)).cands.d.size:
            continue  # see test_every_method_answers_nothing_when_no_pair_passes_the_rules
        _, _, assignments = run(records, method)
        assert not chosen(assignments) & forbidden
        assert not {(a["demand"], a["unit"]) for a in assignments} & held


# ---- one-to-one: the flow against linear_sum_assignment ----------------------------------------

def square(n: int, seed: int) -> dict:
    """n demands and n resources, every pair a candidate, scores varied by every term."""
    rng = random.Random(seed)
    demands, resources, units, pairings = [], [], [], []
    for i in range(n):
        lat, lng = offset(*CENTRE, rng.uniform(-800, 800), rng.uniform(-800, 800))
        demands.append(demand(f"d{i}", community=rng.choice(COMMUNITIES), lat=lat, lng=lng,
                              urgency=rng.choice(list(LEVELS)), waited_days=rng.randint(0, 40)))
    for j in range(n):
        lat, lng = offset(*CENTRE, rng.uniform(-800, 800), rng.uniform(-800, 800))
        resources.append(resource(f"r{j}", unit=f"u{j}", communities=[], lat=lat, lng=lng,
                                  radius_m=rng.randint(2500, 4000), share=1, capacity=1))
        units.append({"id": f"u{j}", "rating": rng.randint(10, 50) / 10,
                      "load": rng.randint(0, 12)})
        if rng.random() < 0.5:
            pairings.append({"unit": f"u{j}", "community": rng.choice(COMMUNITIES)})
    return {"demands": demands, "resources": resources, "units": units, "pairings": pairings}


@pytest.mark.parametrize(("n", "seed"), [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4), (7, 5), (9, 6),
                                         (12, 7), (16, 8)])
def test_the_flow_matches_linear_sum_assignment_on_square_one_to_one_instances(n, seed):
    records = square(n, seed)
    problem = build_problem(records)
    c = prepare(problem).cands
    assert len(c) == n * n
    scores = np.zeros((n, n), np.int64)
    scores[c.d, c.r] = c.score
    rows, cols = linear_sum_assignment(scores, maximize=True)
    _, result, assignments = run(records, "flow")
    assert result.objective == int(scores[rows, cols].sum())
    assert len(assignments) == n
    _, auto, _ = run(records, "auto")
    assert auto.method == "flow" and auto.objective == result.objective


# ---- pinned pairs ------------------------------------------------------------------------------

def _best_and_pinned() -> dict:
    return {"demands": [demand("d1")],
            "resources": [resource("r1", unit="u1"), resource("r2", unit="u2")],
            "units": [{"id": "u1", "rating": 5}, {"id": "u2", "rating": 1}],
            "pinned": [{"demand": "d1", "resource": "r2"}]}


@pytest.mark.parametrize("method", METHODS)
def test_a_pinned_pair_is_kept_even_when_another_pair_scores_better(method):
    _, result, assignments = run(_best_and_pinned(), method)
    assert chosen(assignments) == {("d1", "r2")}
    assert result.objective == 1200 - 100


@pytest.mark.parametrize("method", EXACT)
def test_a_pinned_pair_takes_the_capacity_another_demand_would_use(method):
    records = {"demands": [demand("d1"), demand("d2", urgency="critical")],
               "resources": [resource("r1")], "pinned": [{"demand": "d1", "resource": "r1"}]}
    _, result, assignments = run(records, method)
    assert chosen(assignments) == {("d1", "r1")}


@pytest.mark.parametrize("method", EXACT)
def test_two_pinned_members_of_a_team_are_both_kept(method):
    records = {"demands": [demand("d1", quantity=2, team=True)],
               "resources": [resource("r1", quantity=2), resource("r2", quantity=2)],
               "pinned": [{"demand": "d1", "resource": "r1"}, {"demand": "d1", "resource": "r2"}]}
    expected = brute_force(records)
    assert expected == 2 * 1200 - (1000 + 250)
    _, result, assignments = run(records, method)
    assert chosen(assignments) == {("d1", "r1"), ("d1", "r2")}
    assert result.objective == expected


def test_pinned_pairs_that_exceed_a_capacity_raise_problem_error():
    records = {"demands": [demand("d1"), demand("d2")], "resources": [resource("r1")],
               "pinned": [{"demand": "d1", "resource": "r1"}, {"demand": "d2", "resource": "r1"}]}
    with pytest.raises(ProblemError):
        solve(build_problem(records), time_limit=TIME_LIMIT)


def test_a_pinned_pair_that_breaks_a_rule_raises_problem_error_even_with_no_candidates():
    records = {"demands": [demand("d1")], "resources": [resource("r1", capacity=0)],
               "pinned": [{"demand": "d1", "resource": "r1"}]}
    with pytest.raises(ProblemError):
        solve(build_problem(records), time_limit=TIME_LIMIT)


@pytest.mark.parametrize("seed", range(20))
def test_random_pinned_pairs_are_kept_at_the_brute_force_optimum(seed):
    records = random_records(PyPick(3000 + seed))
    ref = Reference(records)
    usable = [(d["id"], ref.resources[j]["id"]) for i, d in enumerate(ref.demands)
              for j in ref.cands[i] if ref.team[i] or ref.alone(i, j)]
    rng = random.Random(seed)
    pins = rng.sample(usable, min(len(usable), rng.randint(1, 2)))
    records["pinned"] = [{"demand": d, "resource": r} for d, r in pins]
    expected = brute_force(records)
    if expected is None:
        with pytest.raises(ProblemError):
            solve(build_problem(records), time_limit=TIME_LIMIT)
        return
    for method in EXACT:
        _, result, assignments = run(records, method)
        assert set(pins) <= chosen(assignments)
        assert result.objective == expected


# ---- forbidden and locked ----------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_a_forbidden_pair_is_never_chosen_even_when_it_would_score_best(method):
    records = {"demands": [demand("d1")],
               "resources": [resource("r1", unit="u1"), resource("r2", unit="u2")],
               "units": [{"id": "u1", "rating": 5}, {"id": "u2", "rating": 1}],
               "forbidden": [{"demand": "d1", "resource": "r1"}]}
    _, _, assignments = run(records, method)
    assert chosen(assignments) == {("d1", "r2")}


@pytest.mark.parametrize("method", METHODS)
def test_a_unit_with_a_locked_share_is_not_given_the_demand_again(method):
    records = {"demands": [demand("d1", quantity=2, team=True)],
               "resources": [resource("held", unit="u1", share=1, quantity=1),
                             resource("spare", unit="u1", share=2, quantity=2),
                             resource("other", unit="u2", share=2, quantity=2)],
               "units": [{"id": "u1", "rating": 5}],
               "locked": [{"demand": "d1", "resource": "held", "lead": True}]}
    _, _, assignments = run(records, method)
    assert chosen(assignments) == {("d1", "other")}
    assert [a["role"] for a in assignments] == ["helper"]  # the locked member leads


@pytest.mark.parametrize("method", METHODS)
def test_a_demand_whose_locked_members_fill_its_team_is_not_served_again(method):
    """max_team counts the locked unit: no place is left for another one."""
    records = {"demands": [demand("d1", max_team=1)],
               "resources": [resource("r1", unit="u1"), resource("r2", unit="u2")],
               "locked": [{"demand": "d1", "resource": "r1", "lead": True}]}
    assert brute_force(records) == 0
    _, result, assignments = run(records, method)
    assert assignments == [] and result.objective == 0


@pytest.mark.parametrize("method", EXACT)
def test_in_one_unit_mode_a_demand_holding_a_locked_share_is_not_given_a_second_unit(method):
    """One unit only (1+1), and one unit already holds a share: the validator refuses a second."""
    records = {"mode": "1+1", "demands": [demand("d1")],
               "resources": [resource("r1", unit="u1"), resource("r2", unit="u2")],
               "locked": [{"demand": "d1", "resource": "r1", "lead": True}]}
    _, result, _ = run(records, method)
    assert result.objective == brute_force(records) == 0


@pytest.mark.parametrize("method", EXACT)
def test_in_team_mode_a_demand_that_refuses_teams_gets_no_team(method):
    """`team: false` means one unit only (docs/matching.md), whatever the run's mode."""
    records = {"mode": "1+N", "demands": [demand("d1", quantity=2, team=False)],
               "resources": [resource("r1", unit="u1"), resource("r2", unit="u2")]}
    _, result, _ = run(records, method)
    assert result.objective == brute_force(records) == 0


# ---- teams -------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_a_team_covers_the_skills_and_quantity_and_pays_for_each_helper(method):
    records = {"demands": [demand("d1", quantity=3, skills=["陪护", "理发"], urgency="urgent",
                                  waited_days=4)],
               "resources": [resource("care", skills=["陪护"], share=2, quantity=2),
                             resource("hair", skills=["理发"], share=1, quantity=1),
                             resource("idle", skills=[], share=3, quantity=3)]}
    _, result, assignments = run(records, method)
    assert chosen(assignments) == {("d1", "care"), ("d1", "hair")}
    assert sorted(a["quantity"] for a in assignments) == [1, 2]
    assert sorted(a["role"] for a in assignments) == ["helper", "lead"]
    pair_score = 1000 + 100 + 150 + 40  # serve, half the skills, urgency, waiting
    assert result.objective == 2 * pair_score - (1000 + 250 + 150 + 40)
    assert result.objective == brute_force(records)


@pytest.mark.parametrize("method", METHODS)
def test_a_team_has_at_most_team_size_members_from_distinct_units(method):
    records = {"weights": {"team_size": 2},
               "demands": [demand("d1", quantity=3)],
               "resources": [resource("a1", unit="a", share=1), resource("a2", unit="a", share=1),
                             resource("b1", unit="b", share=1), resource("c1", unit="c", share=1)]}
    _, result, assignments = run(records, method)
    assert assignments == [] and result.objective == 0


@pytest.mark.parametrize("method", EXACT)
def test_one_unit_mode_serves_no_demand_by_a_team(method):
    records = {"demands": [demand("d1", quantity=2), demand("d2", quantity=2)],
               "resources": [resource("r1", unit="u1", share=1, quantity=2, capacity=2),
                             resource("r2", unit="u2", share=2, quantity=2)]}
    _, result, assignments = run(records, method, mode="1+1")
    assert chosen(assignments) == {("d1", "r2")} or chosen(assignments) == {("d2", "r2")}
    assert result.objective == brute_force(records, mode="1+1")


# ---- exclusive resources -----------------------------------------------------------------------

def _exclusive(second_window: dict) -> dict:
    return {"demands": [demand("d1", window=window("2026-11-21", "09:00", "10:00")),
                        demand("d2", window=second_window)],
            "resources": [resource("car", unit="u1", exclusive=True, quantity=2, capacity=2)],
            "units": [{"id": "u1", "rating": 5}]}


@pytest.mark.parametrize("method", METHODS)
def test_an_exclusive_resource_never_takes_two_demands_at_the_same_time(method):
    records = _exclusive(window("2026-11-21", "09:30", "10:30"))
    _, result, assignments = run(records, method)
    assert len(assignments) == 1
    assert result.objective == brute_force(records)


@pytest.mark.parametrize("method", METHODS)
def test_an_exclusive_resource_takes_demands_one_after_the_other(method):
    records = _exclusive(window("2026-11-21", "10:00", "11:00"))
    _, _, assignments = run(records, method)
    assert chosen(assignments) == {("d1", "car"), ("d2", "car")}


# ---- degenerate problems -----------------------------------------------------------------------

@pytest.mark.parametrize("method", (*METHODS, "flow"))
def test_every_method_answers_nothing_when_no_pair_passes_the_rules(method):
    records = {"demands": [demand("d1")], "resources": [resource("r1", capacity=0)]}
    _, result, assignments = run(records, method)
    assert assignments == [] and result.objective == 0


@pytest.mark.parametrize("method", (*METHODS, "flow"))
def test_every_method_answers_nothing_for_a_problem_without_demands(method):
    _, result, assignments = run({"resources": [resource("r1")]}, method)
    assert assignments == [] and result.objective == 0


# ---- the validator catches broken answers ------------------------------------------------------

def _answer(*pairs: tuple, quantity: int = 1) -> list[dict]:
    return [{"demand": d, "resource": r, "quantity": quantity, "role": role}
            for d, r, role in pairs]


def test_the_validator_accepts_a_good_answer():
    problem = build_problem({"demands": [demand("d1")], "resources": [resource("r1")]})
    assert validate(problem, _answer(("d1", "r1", "lead"))) == []


@pytest.mark.parametrize(("records", "answer"), [
    pytest.param({"forbidden": [{"demand": "d1", "resource": "r1"}]},
                 _answer(("d1", "r1", "lead")), id="forbidden pair"),
    pytest.param({}, _answer(("d1", "r1", "lead"), ("d2", "r1", "lead")), id="over capacity"),
    pytest.param({}, _answer(("d1", "r1", "lead"), ("d1", "r2", "lead")), id="two leads"),
    pytest.param({}, _answer(("d1", "r1", "helper")), id="no lead"),
    pytest.param({}, _answer(("d1", "r1", "lead"), quantity=2), id="share too large"),
    pytest.param({"pinned": [{"demand": "d2", "resource": "r2"}]},
                 _answer(("d1", "r1", "lead")), id="pinned pair missing"),
    pytest.param({"resources": [resource("r1", communities=["B"]), resource("r2")]},
                 _answer(("d1", "r1", "lead")), id="outside the area"),
])
def test_the_validator_reports_a_broken_answer(records, answer):
    base = {"demands": [demand("d1"), demand("d2")],
            "resources": [resource("r1"), resource("r2")]}
    assert validate(build_problem({**base, **records}), answer) != []


def test_the_validator_reports_an_exclusive_resource_booked_twice_at_once():
    records = _exclusive(window("2026-11-21", "09:30", "10:30"))
    answer = _answer(("d1", "car", "lead"), ("d2", "car", "lead"))
    assert validate(build_problem(records), answer) != []
