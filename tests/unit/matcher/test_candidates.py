"""Candidate pairs and their scores (matcher/candidates.py, matcher/problem.py): each hard rule
with a pair that passes and one that does not, every score term, and malformed problems."""

from __future__ import annotations

import pytest

from matcher.candidates import TERMS, generate
from matcher.model import prepare
from matcher.problem import ProblemError, Weights, build_problem
from tests.unit.matcher import (
    CENTRE,
    PyPick,
    Reference,
    demand,
    offset,
    random_records,
    resource,
    window,
)

SATURDAY_9_TO_10 = window("2026-11-21", "09:00", "10:00")  # 2026-11-21 is a Saturday


def candidates(demands: list[dict], resources: list[dict], **extra) -> dict[tuple, dict]:
    """The candidate pairs by (demand id, resource id): give, alone, score and terms."""
    p = build_problem({"demands": demands, "resources": resources, **extra})
    c = generate(p)
    out = {}
    for row in range(len(c)):
        key = (p.d_id[c.d[row]], p.r_id[c.r[row]])
        out[key] = {"give": int(c.give[row]), "alone": bool(c.alone[row]),
                    "score": int(c.score[row]), "terms": c.breakdown(row)}
    return out


def pair(d: dict, r: dict, **extra) -> dict | None:
    """The one candidate of a demand and a resource, or None when they do not pair."""
    return candidates([d], [r], **extra).get((d["id"], r["id"]))


def terms(d: dict, r: dict, **extra) -> dict[str, int]:
    found = pair(d, r, **extra)
    assert found is not None, "expected a candidate"
    return found["terms"]


# ---- category and place ------------------------------------------------------------------------

def test_a_resource_of_the_same_category_is_a_candidate():
    assert pair(demand("d", category="助餐"), resource("r", category="助餐")) is not None


def test_a_resource_of_another_category_is_not_a_candidate():
    assert pair(demand("d", category="助餐"), resource("r", category="理发")) is None


def test_a_resource_of_any_category_is_a_candidate_for_every_category():
    cands = candidates([demand("d1", category="助餐"), demand("d2", category="理发")],
                       [resource("r", category="*", capacity=2, quantity=2)])
    assert set(cands) == {("d1", "r"), ("d2", "r")}


def test_a_resource_of_any_category_with_a_radius_reaches_demands_of_every_category():
    lat, lng = offset(*CENTRE, north_m=300)
    cands = candidates([demand("d1", category="助餐", community="X", lat=lat, lng=lng),
                        demand("d2", category="理发", community="X", lat=lat, lng=lng)],
                       [resource("r", category="*", communities=[], lat=CENTRE[0], lng=CENTRE[1],
                                 radius_m=500)])
    assert set(cands) == {("d1", "r"), ("d2", "r")}


def test_a_resource_listing_the_demands_community_is_a_candidate():
    assert pair(demand("d", community="东城"), resource("r", communities=["西城", "东城"]))


def test_a_resource_not_listing_the_demands_community_is_not_a_candidate():
    assert pair(demand("d", community="东城"), resource("r", communities=["西城"])) is None


def test_community_names_and_numbers_match_as_text():
    assert pair(demand("d", community=7), resource("r", communities=["7"])) is not None


def _located(north_m: float, radius_m: float, **fields) -> tuple[dict, dict]:
    lat, lng = offset(*CENTRE, north_m=north_m)
    d = demand("d", community="far away", lat=lat, lng=lng)
    r = resource("r", communities=[], lat=CENTRE[0], lng=CENTRE[1], radius_m=radius_m, **fields)
    return d, r


def test_a_resource_within_its_radius_is_a_candidate():
    assert pair(*_located(north_m=900, radius_m=1000)) is not None


def test_a_resource_outside_its_radius_is_not_a_candidate():
    assert pair(*_located(north_m=1100, radius_m=1000)) is None


def test_a_demand_without_coordinates_is_outside_every_radius():
    d, r = _located(north_m=0, radius_m=1000)
    del d["lat"], d["lng"]
    assert pair(d, r) is None


def test_a_resource_with_a_radius_still_serves_the_communities_it_lists():
    d, r = _located(north_m=5000, radius_m=1000)
    r["communities"] = [d["community"]]
    assert pair(d, r) is not None


# ---- time --------------------------------------------------------------------------------------

def _dates(start: str, end: str) -> dict:
    return {"date_ranges": [{"start": start, "end": end}]}


def _weekly(*slots: tuple[int, str, str]) -> dict:
    return {"weekly": [{"weekday": w, "start": s, "end": e} for w, s, e in slots]}


def test_a_date_range_covering_the_window_is_a_candidate():
    r = resource("r", availability=_dates("2026-11-20", "2026-11-21"))
    assert pair(demand("d", window=SATURDAY_9_TO_10), r) is not None


def test_a_date_range_ending_the_day_before_the_window_is_not_a_candidate():
    r = resource("r", availability=_dates("2026-11-01", "2026-11-20"))
    assert pair(demand("d", window=SATURDAY_9_TO_10), r) is None


def test_a_date_range_starting_the_day_after_the_window_is_not_a_candidate():
    r = resource("r", availability=_dates("2026-11-22", "2026-11-30"))
    assert pair(demand("d", window=SATURDAY_9_TO_10), r) is None


def test_a_date_range_runs_to_the_end_of_its_last_day_in_shanghai_time():
    r = resource("r", availability=_dates("2026-11-21", "2026-11-21"))
    late = demand("d", window=window("2026-11-21", "23:00", "23:59"))
    next_day = demand("d", window=window("2026-11-22", "00:30", "01:00"))
    assert pair(late, r) is not None
    assert pair(next_day, r) is None


def test_one_of_several_date_ranges_is_enough():
    r = resource("r", availability={"date_ranges": [
        {"start": "2026-10-01", "end": "2026-10-02"}, {"start": "2026-11-21", "end": "2026-11-21"}]})
    assert pair(demand("d", window=SATURDAY_9_TO_10), r) is not None


def test_a_demand_without_a_window_fits_any_availability():
    r = resource("r", availability={**_dates("2026-11-01", "2026-11-02"),
                                    **_weekly((6, "09:00", "10:00"))})
    assert pair(demand("d"), r) is not None


def test_a_weekly_slot_on_the_windows_weekday_and_hours_is_a_candidate():
    r = resource("r", availability=_weekly((5, "08:00", "12:00")))
    assert pair(demand("d", window=SATURDAY_9_TO_10), r) is not None


def test_a_weekly_slot_on_another_weekday_is_not_a_candidate():
    r = resource("r", availability=_weekly((6, "08:00", "12:00"), (4, "08:00", "12:00")))
    assert pair(demand("d", window=SATURDAY_9_TO_10), r) is None


def test_a_weekly_slot_at_other_hours_of_the_same_day_is_not_a_candidate():
    r = resource("r", availability=_weekly((5, "10:00", "12:00"), (5, "14:00", "16:00")))
    assert pair(demand("d", window=SATURDAY_9_TO_10), r) is None


def test_a_window_that_runs_into_a_weekly_slot_is_a_candidate():
    r = resource("r", availability=_weekly((5, "11:00", "12:00")))
    assert pair(demand("d", window=window("2026-11-21", "10:30", "11:30")), r) is not None


def test_naive_window_times_are_utc_and_weekly_slots_are_shanghai_time():
    d = demand("d", window={"start": "2026-11-21T01:00:00", "end": "2026-11-21T02:00:00"})
    assert pair(d, resource("r", availability=_weekly((5, "09:00", "10:00")))) is not None
    assert pair(d, resource("r", availability=_weekly((5, "01:00", "02:00")))) is None


def test_both_the_date_range_and_the_weekly_slot_must_fit():
    both = {**_dates("2026-11-21", "2026-11-21"), **_weekly((5, "09:00", "10:00"))}
    wrong_day = {**_dates("2026-11-22", "2026-11-22"), **_weekly((5, "09:00", "10:00"))}
    d = demand("d", window=SATURDAY_9_TO_10)
    assert pair(d, resource("r", availability=both)) is not None
    assert pair(d, resource("r", availability=wrong_day)) is None


# ---- what the resource has left ----------------------------------------------------------------

def test_a_resource_with_quantity_and_capacity_left_is_a_candidate():
    assert pair(demand("d"), resource("r", share=1, quantity=1, capacity=1)) is not None


def test_a_resource_with_no_quantity_left_is_not_a_candidate():
    assert pair(demand("d"), resource("r", share=1, quantity=0, capacity=1)) is None


def test_a_resource_with_no_capacity_left_is_not_a_candidate():
    assert pair(demand("d"), resource("r", share=1, quantity=3, capacity=0)) is None


def test_a_candidate_gives_the_least_of_share_quantity_and_what_the_demand_needs():
    cands = candidates([demand("small", quantity=1), demand("big", quantity=5, team=True)],
                       [resource("r", share=3, quantity=2, capacity=2)])
    assert cands[("small", "r")]["give"] == 1
    assert cands[("big", "r")]["give"] == 2


# ---- special pairs -----------------------------------------------------------------------------

def test_a_forbidden_pair_is_not_a_candidate_but_its_demand_and_resource_still_pair_elsewhere():
    cands = candidates([demand("d1"), demand("d2")], [resource("r1"), resource("r2")],
                       forbidden=[{"demand": "d1", "resource": "r1"}])
    assert set(cands) == {("d1", "r2"), ("d2", "r1"), ("d2", "r2")}


def test_a_unit_holding_a_locked_share_is_not_a_candidate_again_for_that_demand():
    demands = [demand("d1", quantity=3, team=True), demand("d2")]
    resources = [resource("r1", unit="u1", share=1), resource("r1b", unit="u1", share=1),
                 resource("r2", unit="u2", share=1)]
    cands = candidates(demands, resources, locked=[{"demand": "d1", "resource": "r1"}])
    assert ("d1", "r1") not in cands
    assert ("d1", "r1b") not in cands  # any resource of the same unit
    assert ("d1", "r2") in cands
    assert ("d2", "r1") in cands and ("d2", "r1b") in cands  # other demands are not affected


# ---- skills and quantity for one unit ----------------------------------------------------------

def test_a_one_place_demand_pairs_with_a_resource_that_has_every_required_skill():
    found = pair(demand("d", skills=["陪护", "理发"]), resource("r", skills=["理发", "陪护", "电工"]))
    assert found is not None and found["alone"]


def test_a_one_place_demand_does_not_pair_with_a_resource_missing_a_required_skill():
    assert pair(demand("d", skills=["陪护", "理发"]), resource("r", skills=["理发"])) is None


def test_a_one_unit_demand_does_not_pair_with_a_resource_that_cannot_give_its_quantity():
    d = demand("d", quantity=3, team=False, max_team=1)
    assert pair(d, resource("r", share=2, quantity=5)) is None
    assert pair(d, resource("r", share=3, quantity=5))["alone"]


def test_a_demand_that_may_take_a_team_keeps_partial_candidates_marked_as_not_alone():
    found = pair(demand("d", quantity=3, skills=["陪护", "理发"]),
                 resource("r", skills=["理发"], share=1, quantity=4))
    assert found is not None
    assert not found["alone"] and found["give"] == 1


def test_required_skills_brought_by_a_locked_member_are_no_longer_required():
    demands = [demand("d", quantity=2, skills=["陪护", "理发"])]
    resources = [resource("held", unit="u1", skills=["陪护"]),
                 resource("r", unit="u2", skills=["理发"], share=2, quantity=2)]
    p = build_problem({"demands": demands, "resources": resources,
                       "locked": [{"demand": "d", "resource": "held", "lead": True}]})
    model = prepare(p)
    assert [(p.d_id[d], p.r_id[r]) for d, r in zip(model.cands.d, model.cands.r, strict=True)] \
        == [("d", "r")]
    assert model.cands.alone.tolist() == [True]


# ---- scores ------------------------------------------------------------------------------------

def test_a_plain_pair_scores_serving_and_full_skill_only():
    found = pair(demand("d"), resource("r"))
    assert found["terms"] == {"serve": 1000, "skill": 200, "distance": 0, "pairing": 0,
                              "urgency": 0, "waiting": 0, "rating": 0, "fairness": 0}
    assert found["score"] == 1200


def test_the_breakdown_names_the_terms_in_order():
    assert list(terms(demand("d"), resource("r"))) == list(TERMS)


@pytest.mark.parametrize("seed", range(15))
def test_the_breakdown_of_every_candidate_sums_to_its_score(seed):
    p = build_problem(random_records(PyPick(seed)))
    c = generate(p)
    for row in range(len(c)):
        assert sum(c.breakdown(row).values()) == c.score[row]


@pytest.mark.parametrize("seed", range(40))
def test_candidates_and_scores_agree_with_the_rules_written_out_pair_by_pair(seed):
    records = random_records(PyPick(seed))
    ref = Reference(records)
    p = build_problem(records)
    model = prepare(p)
    c = model.cands
    got = {(p.d_id[c.d[i]], p.r_id[c.r[i]]): (int(c.score[i]), c.breakdown(i))
           for i in range(len(c))}
    expected = {(d["id"], ref.resources[j]["id"]): (ref.score(i, j), ref.terms(i, j))
                for i, d in enumerate(ref.demands) for j in ref.cands[i]
                if ref.team[i] or ref.alone(i, j)}
    assert got == expected


def test_pairing_with_the_demands_community_earns_the_pairing_bonus():
    d, r = demand("d", community="东城", grid="3"), resource("r", unit="u", communities=["东城"])
    assert terms(d, r)["pairing"] == 0
    assert terms(d, r, pairings=[{"unit": "u", "community": "东城"}])["pairing"] == 300
    assert terms(d, r, pairings=[{"unit": "u", "community": "东城", "grid": "3"}])["pairing"] \
        == 300 + 100
    assert terms(d, r, pairings=[{"unit": "u", "community": "东城", "grid": "4"}])["pairing"] \
        == 300
    assert terms(d, r, units=[{"id": "other"}],
                 pairings=[{"unit": "u", "community": "西城"},
                           {"unit": "other", "community": "东城", "grid": "3"}])["pairing"] == 0


@pytest.mark.parametrize(("urgency", "term"), [("normal", 0), ("urgent", 150), ("critical", 300)])
def test_urgency_adds_its_weight_per_level(urgency, term):
    assert terms(demand("d", urgency=urgency), resource("r"))["urgency"] == term


@pytest.mark.parametrize(("days", "term"), [(0, 0), (12, 120), (30, 300), (45, 300)])
def test_waiting_earns_per_day_up_to_the_cap(days, term):
    assert terms(demand("d", waited_days=days), resource("r"))["waiting"] == term


@pytest.mark.parametrize(("rating", "term"), [(None, 0), (3, 0), (4.5, 75), (5, 100), (2.0, -50)])
def test_a_rating_above_three_adds_and_one_below_takes_off(rating, term):
    units = [{"id": "u"} if rating is None else {"id": "u", "rating": rating}]
    assert terms(demand("d"), resource("r", unit="u"), units=units)["rating"] == term


@pytest.mark.parametrize(("load", "term"), [(0, 0), (3, -60), (10, -200), (25, -200)])
def test_fairness_takes_off_per_assignment_already_held_up_to_the_cap(load, term):
    units = [{"id": "u", "load": load}]
    assert terms(demand("d"), resource("r", unit="u"), units=units)["fairness"] == term


def test_the_distance_term_decreases_with_distance_to_nothing_at_the_radius():
    found = [terms(*_located(north_m=m, radius_m=2000))["distance"]
             for m in (0, 400, 800, 1200, 1600, 1999)]
    assert found[0] == 200
    assert all(a > b for a, b in zip(found, found[1:], strict=False))
    assert found[-1] == 0
    assert found[2] == pytest.approx(200 * (1 - 800 / 2000), abs=1)


def test_the_distance_term_scales_by_max_distance_when_the_resource_has_no_radius():
    lat, lng = offset(*CENTRE, north_m=1000)
    d = demand("d", lat=lat, lng=lng)
    r = resource("r", lat=CENTRE[0], lng=CENTRE[1])
    assert terms(d, r)["distance"] == pytest.approx(200 * (1 - 1000 / 5000), abs=1)
    far = demand("d", lat=offset(*CENTRE, north_m=8000)[0], lng=CENTRE[1])
    assert terms(far, r)["distance"] == 0


def test_the_distance_term_is_nothing_when_a_place_is_unknown():
    assert terms(demand("d"), resource("r", lat=CENTRE[0], lng=CENTRE[1]))["distance"] == 0


def test_the_skill_term_is_the_share_of_the_required_skills_a_team_member_brings():
    d = demand("d", quantity=3, skills=["a", "b", "c"])
    assert terms(d, resource("r", skills=["a"], quantity=3))["skill"] == 200 * 1 // 3
    assert terms(d, resource("r", skills=["a", "c", "x"], quantity=3))["skill"] == 200 * 2 // 3
    assert terms(d, resource("r", skills=[], quantity=3))["skill"] == 0


def test_weights_from_the_problem_replace_the_defaults():
    weights = {"serve": 500, "skill": 10, "urgency": 7, "waiting": 1, "waiting_cap_days": 5}
    found = terms(demand("d", urgency="critical", waited_days=9), resource("r"), weights=weights)
    assert found["serve"] == 500 and found["skill"] == 10
    assert found["urgency"] == 14 and found["waiting"] == 5


def test_a_problem_without_any_pair_in_reach_has_no_candidates():
    p = build_problem({"demands": [demand("d", category="助餐")],
                       "resources": [resource("r", category="理发")]})
    assert len(generate(p)) == 0


# ---- malformed problems ------------------------------------------------------------------------

GOOD = {"demands": [demand("d")], "resources": [resource("r")]}


@pytest.mark.parametrize("change", [
    pytest.param({"weights": {"bonus": 5}}, id="unknown weight"),
    pytest.param({"weights": {"serve": 1.5}}, id="weight not an integer"),
    pytest.param({"weights": {"team_size": 0}}, id="team size below one"),
    pytest.param({"mode": "2+2"}, id="bad mode"),
    pytest.param({"pinned": [{"demand": "nobody", "resource": "r"}]}, id="unknown pinned demand"),
    pytest.param({"pinned": [{"demand": "d", "resource": "nothing"}]},
                 id="unknown pinned resource"),
    pytest.param({"forbidden": [{"demand": "d", "resource": "nothing"}]},
                 id="unknown forbidden resource"),
    pytest.param({"locked": [{"demand": "nobody", "resource": "r"}]}, id="unknown locked demand"),
    pytest.param({"pairings": [{"unit": "nobody", "community": "A"}]}, id="unknown pairing unit"),
    pytest.param({"demands": [demand("d", quantity=-1)]}, id="negative demand quantity"),
    pytest.param({"demands": [demand("d", quantity=0)]}, id="zero demand quantity"),
    pytest.param({"resources": [resource("r", share=1, quantity=-2)]},
                 id="negative resource quantity"),
    pytest.param({"resources": [resource("r", capacity=-1)]}, id="negative capacity"),
    pytest.param({"demands": [demand("d", urgency="asap")]}, id="unknown urgency"),
    pytest.param({"demands": [demand("d", waited_days=-3)]}, id="negative waiting"),
    pytest.param({"demands": [demand("d"), demand("d")]}, id="duplicate demand id"),
    pytest.param({"resources": [resource("r", radius_m=500)]}, id="radius without coordinates"),
    pytest.param({"demands": [demand("d", window=window("2026-11-21", "10:00", "09:00"))]},
                 id="window ends before it starts"),
    pytest.param({"resources": [resource("r", availability=_weekly((7, "09:00", "10:00")))]},
                 id="weekday out of range"),
    pytest.param({"demands": [{"id": "d", "category": "help"}]}, id="demand without community"),
])
def test_a_malformed_problem_raises_problem_error(change):
    with pytest.raises(ProblemError):
        build_problem({**GOOD, **change})


def test_a_pinned_pair_that_breaks_a_hard_rule_raises_problem_error():
    p = build_problem({"demands": [demand("d1"), demand("d2")],
                       "resources": [resource("r1"), resource("r2", category="other")],
                       "pinned": [{"demand": "d1", "resource": "r2"}]})
    with pytest.raises(ProblemError):
        prepare(p)


def test_weights_know_every_field_and_nothing_else():
    assert Weights.from_dict(Weights().as_dict()) == Weights()
    with pytest.raises(ProblemError):
        Weights.from_dict({"serve": True})
