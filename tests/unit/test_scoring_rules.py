"""The points rules, pure: validation naming the bad field, rounding, multipliers and caps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.rules import (
    MAX_POINTS,
    PointsRules,
    RulesError,
    capped,
    divide,
    multiplier_for,
    parse_rules,
    points_for_service,
    rules_document,
)

RULES = {"per_hour": {"elderly_care": 10, "*": 5},
         "activities": {"deliberation_meeting": 5, "waste_sorting": 2, "building_head": 20},
         "multipliers": {"urgent": 120, "critical": 150, "vulnerable": 130},
         "daily_cap": 50, "monthly_cap": 600, "rounding": "half_up"}


def rules(**changes) -> PointsRules:
    return parse_rules({**RULES, **changes})


# ---- parse_rules ------------------------------------------------------------------------------

def test_a_full_rules_document_parses_and_round_trips():
    parsed = parse_rules(RULES)
    assert parsed.per_hour == {"elderly_care": 10, "*": 5}
    assert parsed.activities["building_head"] == 20
    assert parsed.multipliers == {"urgent": 120, "critical": 150, "vulnerable": 130}
    assert (parsed.daily_cap, parsed.monthly_cap, parsed.rounding) == (50, 600, "half_up")
    assert rules_document(parsed) == RULES
    assert parse_rules(rules_document(parsed)) == parsed


def test_an_empty_document_means_no_points_no_caps_and_half_up_rounding():
    parsed = parse_rules({})
    assert parsed == PointsRules()
    assert (parsed.daily_cap, parsed.monthly_cap, parsed.rounding) == (None, None, "half_up")
    assert parsed.rate_for("anything") == 0


def test_null_tables_and_caps_are_the_same_as_leaving_them_out():
    assert parse_rules({"per_hour": None, "activities": None, "multipliers": None,
                        "daily_cap": None, "monthly_cap": None}) == PointsRules()


def test_names_in_a_table_are_trimmed():
    assert parse_rules({"activities": {"  waste_sorting ": 2}}).activities == {"waste_sorting": 2}


@pytest.mark.parametrize(("document", "field"), [
    ("not a dict", "rules"),
    ([], "rules"),
    ({"per_hour": {}, "bonus": 3}, "bonus"),
    ({"zzz": 1, "aaa": 2}, "aaa"),
    ({"per_hour": [10]}, "per_hour"),
    ({"per_hour": {"": 10}}, "per_hour"),
    ({"per_hour": {"   ": 10}}, "per_hour"),
    ({"per_hour": {"x" * 41: 10}}, "per_hour"),
    ({"per_hour": {"elderly_care": 1.5}}, "per_hour.elderly_care"),
    ({"per_hour": {"elderly_care": "10"}}, "per_hour.elderly_care"),
    ({"per_hour": {"elderly_care": True}}, "per_hour.elderly_care"),
    ({"per_hour": {"elderly_care": -1}}, "per_hour.elderly_care"),
    ({"per_hour": {"elderly_care": MAX_POINTS + 1}}, "per_hour.elderly_care"),
    ({"activities": "waste_sorting"}, "activities"),
    ({"activities": {"waste_sorting": None}}, "activities.waste_sorting"),
    ({"activities": {"waste_sorting": -2}}, "activities.waste_sorting"),
    ({"multipliers": {"urgent": 99}}, "multipliers.urgent"),
    ({"multipliers": {"urgent": 1001}}, "multipliers.urgent"),
    ({"multipliers": {"urgent": 1.2}}, "multipliers.urgent"),
    ({"multipliers": {"holiday": 200}}, "multipliers.holiday"),
    ({"multipliers": 150}, "multipliers"),
    ({"daily_cap": 0}, "daily_cap"),
    ({"daily_cap": -5}, "daily_cap"),
    ({"daily_cap": 10.5}, "daily_cap"),
    ({"daily_cap": False}, "daily_cap"),
    ({"monthly_cap": 0}, "monthly_cap"),
    ({"monthly_cap": "600"}, "monthly_cap"),
    ({"monthly_cap": MAX_POINTS + 1}, "monthly_cap"),
    ({"rounding": "nearest"}, "rounding"),
    ({"rounding": None}, "rounding"),
])
def test_an_invalid_document_is_refused_naming_its_field(document, field):
    with pytest.raises(RulesError) as caught:
        parse_rules(document)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_a_rules_error_is_a_value_error():
    with pytest.raises(ValueError, match="rounding"):
        parse_rules({"rounding": "banker"})


@pytest.mark.parametrize("value", [0, MAX_POINTS])
def test_rates_at_the_limits_are_accepted(value):
    assert parse_rules({"per_hour": {"*": value}}).rate_for("x") == value


@pytest.mark.parametrize("value", [100, 1000])
def test_multipliers_at_the_limits_are_accepted(value):
    assert parse_rules({"multipliers": {"critical": value}}).multipliers["critical"] == value


def test_a_category_without_its_own_rate_takes_the_star_rate():
    parsed = rules()
    assert parsed.rate_for("elderly_care") == 10
    assert parsed.rate_for("tutoring") == 5
    assert parse_rules({"per_hour": {"elderly_care": 10}}).rate_for("tutoring") == 0


# ---- divide and rounding ----------------------------------------------------------------------

@pytest.mark.parametrize(("numerator", "denominator", "rounding", "expected"), [
    (10, 5, "down", 2), (10, 5, "up", 2), (10, 5, "half_up", 2),
    (11, 5, "down", 2), (11, 5, "up", 3), (11, 5, "half_up", 2),
    (12, 5, "half_up", 2), (13, 5, "half_up", 3),
    (5, 2, "half_up", 3), (5, 2, "down", 2), (5, 2, "up", 3),
    (7, 2, "half_up", 4),  # half rounds up, not to even
    (0, 7, "up", 0), (1, 7, "up", 1), (1, 7, "half_up", 0), (6, 7, "down", 0),
])
def test_divide_rounds_as_the_rules_say(numerator, denominator, rounding, expected):
    assert divide(numerator, denominator, rounding) == expected


@given(st.integers(0, 10**12), st.integers(1, 10**6))
def test_divide_down_half_up_and_up_are_ordered_and_within_one(numerator, denominator):
    down = divide(numerator, denominator, "down")
    half = divide(numerator, denominator, "half_up")
    up = divide(numerator, denominator, "up")
    assert down <= half <= up <= down + 1
    assert down == numerator // denominator
    assert all(type(x) is int for x in (down, half, up))


@pytest.mark.parametrize(("rounding", "points"), [("half_up", 3), ("down", 2), ("up", 3)])
def test_a_service_rounds_its_points_as_the_rules_say(rounding, points):
    # 5 points an hour for 30 minutes: 2.5 points
    award = points_for_service(rules(rounding=rounding), minutes=30, category="tutoring")
    assert award.points == points


@pytest.mark.parametrize(("rounding", "points"), [("half_up", 0), ("down", 0), ("up", 1)])
def test_a_minute_of_service_is_worth_a_point_only_when_rounding_up(rounding, points):
    assert points_for_service(rules(rounding=rounding), minutes=1, category="tutoring").points \
        == points


# ---- points_for_service -----------------------------------------------------------------------

def test_ninety_minutes_of_elderly_care_earn_fifteen_points():
    award = points_for_service(rules(), minutes=90, category="elderly_care")
    assert award.points == 15
    assert award.explain() == {"rate_per_hour": 10, "minutes": 90, "multiplier_percent": 100,
                               "points": 15}


def test_points_are_whole_numbers_even_when_the_exact_value_is_not():
    award = points_for_service(rules(), minutes=7, category="elderly_care", urgency="urgent",
                               vulnerable=True)
    assert type(award.points) is int
    assert award.points == 2  # 10 × 7/60 × 1.3 = 1.5166…


def test_negative_minutes_are_refused():
    with pytest.raises(ValueError, match="negative"):
        points_for_service(rules(), minutes=-1, category="elderly_care")


def test_zero_minutes_earn_nothing():
    assert points_for_service(rules(), minutes=0, category="elderly_care").points == 0


@pytest.mark.parametrize(("urgency", "vulnerable", "percent", "points"), [
    ("normal", False, 100, 10),
    ("urgent", False, 120, 12),
    ("critical", False, 150, 15),
    ("normal", True, 130, 13),
    ("urgent", True, 130, 13),     # the larger of 120 and 130, not 156
    ("critical", True, 150, 15),   # the larger of 150 and 130, not 195
])
def test_the_largest_multiplier_applies_and_multipliers_do_not_stack(urgency, vulnerable,
                                                                     percent, points):
    parsed = rules()
    assert multiplier_for(parsed, urgency=urgency, vulnerable=vulnerable) == percent
    award = points_for_service(parsed, minutes=60, category="elderly_care", urgency=urgency,
                               vulnerable=vulnerable)
    assert (award.multiplier, award.points) == (percent, points)


def test_a_multiplier_the_rules_do_not_name_counts_as_one_hundred_percent():
    parsed = parse_rules({"per_hour": {"*": 10}, "multipliers": {"critical": 200}})
    assert multiplier_for(parsed, urgency="urgent") == 100
    assert multiplier_for(parsed, vulnerable=True) == 100
    assert multiplier_for(parsed, urgency="critical", vulnerable=True) == 200


@pytest.mark.parametrize("urgency", ["normal", "low", "vulnerable", ""])
def test_only_urgent_and_critical_urgencies_carry_a_multiplier(urgency):
    parsed = parse_rules({"multipliers": {"vulnerable": 300}})
    assert multiplier_for(parsed, urgency=urgency) == 100


@given(st.integers(0, 10_000), st.integers(0, 10_000),
       st.sampled_from(["normal", "urgent", "critical"]), st.booleans(),
       st.sampled_from(["half_up", "down", "up"]))
def test_points_never_fall_as_minutes_rise(minutes, more, urgency, vulnerable, rounding):
    parsed = rules(rounding=rounding)
    few = points_for_service(parsed, minutes=minutes, category="elderly_care", urgency=urgency,
                             vulnerable=vulnerable)
    many = points_for_service(parsed, minutes=minutes + more, category="elderly_care",
                              urgency=urgency, vulnerable=vulnerable)
    assert type(few.points) is int and type(many.points) is int
    assert 0 <= few.points <= many.points


@given(st.integers(0, 10_000), st.sampled_from(["normal", "urgent", "critical"]), st.booleans())
def test_a_multiplier_never_lowers_the_points(minutes, urgency, vulnerable):
    parsed = rules()
    plain = points_for_service(parsed, minutes=minutes, category="elderly_care")
    boosted = points_for_service(parsed, minutes=minutes, category="elderly_care",
                                 urgency=urgency, vulnerable=vulnerable)
    assert boosted.points >= plain.points


# ---- caps -------------------------------------------------------------------------------------

def test_no_caps_leave_the_points_as_they_are():
    assert capped(10_000, earned_today=10**6, earned_this_month=10**6,
                  rules=PointsRules()) == 10_000


@pytest.mark.parametrize(("points", "today", "month", "left"), [
    (20, 0, 0, 20),
    (60, 0, 0, 50),     # the daily cap
    (20, 40, 40, 10),   # what is left of today
    (20, 50, 50, 0),    # today is full
    (20, 70, 70, 0),    # over already (an earlier rule version): nothing, never negative
    (30, 0, 590, 10),   # what is left of the month
    (30, 10, 600, 0),   # the month is full
    (40, 30, 580, 20),  # both bind; the smaller wins
    (40, 45, 500, 5),
])
def test_caps_leave_what_is_left_of_the_day_and_the_month(points, today, month, left):
    assert capped(points, earned_today=today, earned_this_month=month, rules=rules()) == left


def test_a_daily_cap_alone_or_a_monthly_cap_alone_applies():
    daily = parse_rules({"daily_cap": 10})
    monthly = parse_rules({"monthly_cap": 100})
    assert capped(30, earned_today=5, earned_this_month=1000, rules=daily) == 5
    assert capped(30, earned_today=1000, earned_this_month=95, rules=monthly) == 5


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6),
       st.one_of(st.none(), st.integers(1, 10**6)), st.one_of(st.none(), st.integers(1, 10**6)))
def test_capped_points_lie_between_zero_and_the_points_and_respect_each_cap(
        points, today, month, daily_cap, monthly_cap):
    parsed = PointsRules(daily_cap=daily_cap, monthly_cap=monthly_cap)
    left = capped(points, earned_today=today, earned_this_month=month, rules=parsed)
    assert type(left) is int
    assert 0 <= left <= points
    if daily_cap is not None:
        assert left <= max(daily_cap - today, 0)
    if monthly_cap is not None:
        assert left <= max(monthly_cap - month, 0)
