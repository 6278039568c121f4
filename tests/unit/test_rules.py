"""The pure rules: matcher/rules.py (skills, distance, availability) and scoring/hours.py."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from matcher.rules import availability_overlaps, distance_m, missing_skills, skills_cover
from scoring.hours import MAX_MINUTES_PER_REPORT_LINE, hours_to_minutes, minutes_to_hours


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=UTC)


# ---- skills -----------------------------------------------------------------------------------

def test_skills_cover_when_every_required_skill_is_offered():
    assert skills_cover(["陪护", "理发", "电工"], ["理发", "陪护"])


def test_skills_do_not_cover_when_one_required_skill_is_missing():
    assert not skills_cover(["陪护"], ["陪护", "电工"])


def test_no_required_skills_are_covered_by_anyone_even_with_no_skills():
    assert skills_cover([], [])
    assert skills_cover(["陪护"], set())


def test_skills_cover_accepts_sets_and_ignores_duplicates():
    assert skills_cover({"a", "b"}, ["a", "a"])


def test_missing_skills_lists_the_required_skills_not_offered_sorted():
    assert missing_skills(["陪护"], ["电工", "陪护", "理发", "电工"]) == sorted(["电工", "理发"])
    assert missing_skills(["b"], ["c", "a", "b"]) == ["a", "c"]


def test_missing_skills_is_empty_when_the_skills_cover():
    assert missing_skills(["a", "b"], ["b"]) == []


# ---- distance ---------------------------------------------------------------------------------

def test_distance_between_a_point_and_itself_is_zero():
    assert distance_m(40.0, 98.9, 40.0, 98.9) == 0.0


def test_one_degree_of_latitude_is_about_111_km():
    # 2 * pi * 6_371_000 / 360 = 111_194.93 m
    assert distance_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_194.93, abs=0.5)


def test_one_degree_of_longitude_on_the_equator_equals_one_degree_of_latitude():
    assert distance_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(distance_m(0.0, 0.0, 1.0, 0.0))


def test_distance_from_beijing_to_shanghai_is_about_1068_km():
    # Tiananmen (39.9042, 116.4074) to the Bund (31.2304, 121.4737).
    assert distance_m(39.9042, 116.4074, 31.2304, 121.4737) == pytest.approx(1_067_000, rel=0.005)


def test_distance_is_symmetric():
    a = (40.0, 98.9, 40.01, 98.95)
    assert distance_m(*a) == pytest.approx(distance_m(a[2], a[3], a[0], a[1]))


def test_half_way_round_the_earth_is_pi_times_the_radius():
    assert distance_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(3.14159265 * 6_371_000, rel=1e-6)


# ---- availability -----------------------------------------------------------------------------

RANGES = {"date_ranges": [{"start": "2026-11-01", "end": "2026-11-30"},
                          {"start": "2027-01-10", "end": "2027-01-20"}]}


def test_a_resource_without_date_ranges_is_always_available():
    assert availability_overlaps(None, at("2026-11-20"), at("2026-11-21"))
    assert availability_overlaps({}, at("2030-01-01"), None)
    assert availability_overlaps({"date_ranges": [], "weekly": [{"weekday": 1}]},
                                 at("2026-11-20"), at("2026-11-21"))


def test_a_demand_without_a_window_fits_any_availability():
    assert availability_overlaps(RANGES, None, None)


def test_a_window_inside_a_date_range_overlaps():
    assert availability_overlaps(RANGES, at("2026-11-10"), at("2026-11-12"))


def test_a_window_overlapping_the_edge_of_a_range_overlaps():
    assert availability_overlaps(RANGES, at("2026-10-25"), at("2026-11-01"))
    assert availability_overlaps(RANGES, at("2026-11-30", 23), at("2026-12-05"))


def test_a_window_in_the_second_range_overlaps():
    assert availability_overlaps(RANGES, at("2027-01-15"), at("2027-01-16"))


def test_a_window_between_the_ranges_does_not_overlap():
    assert not availability_overlaps(RANGES, at("2026-12-01"), at("2027-01-09"))


def test_a_window_with_only_a_start_is_checked_on_that_day():
    assert availability_overlaps(RANGES, at("2026-11-30"), None)
    assert not availability_overlaps(RANGES, at("2026-12-01"), None)


def test_date_ranges_may_be_given_as_date_objects():
    from datetime import date

    ranges = {"date_ranges": [{"start": date(2026, 11, 1), "end": date(2026, 11, 2)}]}
    assert availability_overlaps(ranges, at("2026-11-02"), None)
    assert not availability_overlaps(ranges, at("2026-11-03"), None)


# ---- hours ------------------------------------------------------------------------------------

@pytest.mark.parametrize("hours,minutes", [
    ("1.25", 75), ("2.5", 150), ("1", 60), (3, 180), (Decimal("0.5"), 30), ("0.01", 1),
    ("0.0083", 0),      # 0.498 min rounds down
    ("0.00834", 1),     # 0.5004 min rounds up
    ("1.0125", 61),     # 60.75 → 61
    ("0.025", 2),       # exactly 1.5 min: half up
    ("0.0416", 2),      # 2.496 → 2
])
def test_hours_convert_to_whole_minutes_rounded_half_up(hours, minutes):
    assert hours_to_minutes(hours) == minutes
    assert isinstance(hours_to_minutes(hours), int)


def test_a_float_number_of_hours_converts_through_its_decimal_text():
    assert hours_to_minutes(0.1) == 6
    assert hours_to_minutes(1.1) == 66


@pytest.mark.parametrize("minutes,hours", [
    (75, Decimal("1.25")), (60, Decimal("1.00")), (1, Decimal("0.02")), (20, Decimal("0.33")),
    (50, Decimal("0.83")), (0, Decimal("0.00")), (90, Decimal("1.50")),
])
def test_minutes_show_as_hours_with_two_decimals(minutes, hours):
    result = minutes_to_hours(minutes)
    assert result == hours
    assert result.as_tuple().exponent == -2


def test_hours_to_minutes_and_back_keep_quarter_hours_exact():
    for quarter in range(1, 40):
        hours = Decimal(quarter) / 4
        assert minutes_to_hours(hours_to_minutes(hours)) == hours


def test_the_longest_report_line_is_31_days_of_minutes():
    assert MAX_MINUTES_PER_REPORT_LINE == 31 * 24 * 60
    assert hours_to_minutes(24 * 31) == MAX_MINUTES_PER_REPORT_LINE
