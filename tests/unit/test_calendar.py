"""Working-time arithmetic in Asia/Shanghai: weekends, public holidays, make-up working days
(调休), starting on a non-working day, calendar mode, and the round trip between adding service
time and measuring it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from web.domain.calendar import add_service_time, is_working_day, service_time_between

NONE: dict[date, bool] = {}
# National Day 2026: 1–7 October off, with Saturday 10 October worked instead (调休).
NATIONAL_DAY = {**{date(2026, 10, d): False for d in range(1, 8)}, date(2026, 10, 10): True}


def shanghai(text: str) -> datetime:
    """A Beijing-time moment as an aware UTC datetime."""
    return datetime.fromisoformat(text + "+08:00").astimezone(UTC)


def add(start: str, hours: float, exceptions=NONE, working_days: bool = True) -> datetime:
    return add_service_time(shanghai(start), timedelta(hours=hours), working_days=working_days,
                            exceptions=exceptions)


def test_monday_to_friday_are_working_days_and_the_weekend_is_not():
    assert [is_working_day(date(2026, 11, d), NONE) for d in range(16, 23)] == [
        True, True, True, True, True, False, False]


def test_an_exception_overrides_the_weekday_rule_both_ways():
    assert not is_working_day(date(2026, 10, 1), NATIONAL_DAY)  # a Thursday, a holiday
    assert is_working_day(date(2026, 10, 10), NATIONAL_DAY)  # a Saturday, worked


def test_24_hours_from_friday_afternoon_is_monday_afternoon_on_working_days():
    assert add("2026-11-20T15:00", 24) == shanghai("2026-11-23T15:00")


def test_24_hours_within_the_week_is_the_next_day_at_the_same_time():
    assert add("2026-11-17T09:30", 24) == shanghai("2026-11-18T09:30")


def test_calendar_mode_is_plain_addition_over_the_weekend():
    assert add("2026-11-20T15:00", 24, working_days=False) == shanghai("2026-11-21T15:00")


def test_calendar_mode_ignores_holidays():
    assert add("2026-09-30T12:00", 72, NATIONAL_DAY, working_days=False) == \
        shanghai("2026-10-03T12:00")


def test_a_public_holiday_is_skipped():
    # Wednesday 30 September 12:00; 1–7 October are off; Thursday 8 October is worked.
    assert add("2026-09-30T12:00", 24, NATIONAL_DAY) == shanghai("2026-10-08T12:00")


def test_a_make_up_working_day_on_a_weekend_counts():
    # Friday 9 October 12:00 + 24 h: the rest of Friday, then Saturday 10 October (调休) counts.
    assert add("2026-10-09T12:00", 24, NATIONAL_DAY) == shanghai("2026-10-10T12:00")
    # Without the make-up day, the same 24 h end on Monday.
    assert add("2026-10-09T12:00", 24) == shanghai("2026-10-12T12:00")


def test_time_starting_on_a_non_working_day_starts_counting_at_the_next_working_day():
    assert add("2026-11-21T10:00", 8) == shanghai("2026-11-23T08:00")  # Saturday → Monday


def test_three_working_days_from_thursday_end_on_tuesday():
    assert add("2026-11-19T10:00", 72) == shanghai("2026-11-24T10:00")


def test_no_time_added_leaves_the_moment_where_it_is():
    assert add("2026-11-21T10:00", 0) == shanghai("2026-11-21T10:00")


def test_negative_service_time_is_refused():
    with pytest.raises(ValueError):
        add("2026-11-20T10:00", -1)


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        add_service_time(datetime(2026, 11, 20), timedelta(hours=1), working_days=True,
                         exceptions=NONE)


def test_service_time_between_counts_only_working_days():
    between = service_time_between(shanghai("2026-11-20T15:00"), shanghai("2026-11-23T15:00"),
                                   working_days=True, exceptions=NONE)
    assert between == timedelta(hours=24)


def test_service_time_between_in_calendar_mode_is_the_plain_difference():
    between = service_time_between(shanghai("2026-11-20T15:00"), shanghai("2026-11-23T15:00"),
                                   working_days=False, exceptions=NONE)
    assert between == timedelta(hours=72)


def test_service_time_over_a_whole_holiday_is_nothing():
    between = service_time_between(shanghai("2026-10-01T00:00"), shanghai("2026-10-08T00:00"),
                                   working_days=True, exceptions=NATIONAL_DAY)
    assert between == timedelta(0)


def test_service_time_backwards_is_negative():
    between = service_time_between(shanghai("2026-11-23T15:00"), shanghai("2026-11-20T15:00"),
                                   working_days=True, exceptions=NONE)
    assert between == -timedelta(hours=24)


MOMENTS = st.datetimes(min_value=datetime(2026, 9, 1), max_value=datetime(2026, 12, 31),
                       timezones=st.just(UTC))
DURATIONS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20))
EXCEPTIONS = st.sampled_from([NONE, NATIONAL_DAY])


@given(MOMENTS, DURATIONS, EXCEPTIONS, st.booleans())
def test_measuring_the_time_added_gives_back_what_was_added(start, delta, exceptions, working):
    end = add_service_time(start, delta, working_days=working, exceptions=exceptions)
    assert end >= start
    assert service_time_between(start, end, working_days=working, exceptions=exceptions) == delta


@given(MOMENTS, DURATIONS, DURATIONS, EXCEPTIONS)
def test_adding_service_time_in_two_steps_is_adding_it_at_once(start, first, second, exceptions):
    def plus(moment, delta):
        return add_service_time(moment, delta, working_days=True, exceptions=exceptions)

    assert plus(plus(start, first), second) == plus(start, first + second)
