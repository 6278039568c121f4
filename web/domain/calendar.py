"""Working-time arithmetic in Asia/Shanghai, for service levels (当日受理、三日办结).

Pure: no database. In calendar mode time is plain elapsed time. On working days only, the time
of a non-working day does not count: Monday to Friday are working days unless `exceptions` says
otherwise — a public holiday (False) or a weekend working day, 调休 (True). Asia/Shanghai has
no daylight saving, so a day is always 24 hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
MAX_DAYS = 3660  # ten years without a working day means the calendar is wrong


def is_working_day(day: date, exceptions: Mapping[date, bool]) -> bool:
    """Whether `day` is a working day: Monday–Friday unless `exceptions` says otherwise."""
    return exceptions.get(day, day.weekday() < 5)


def _midnight(day: date) -> datetime:
    """The first moment of `day` in Asia/Shanghai, in UTC."""
    return datetime.combine(day, time(), tzinfo=SHANGHAI).astimezone(UTC)


def _check(moment: datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError("pass an aware datetime")


def add_service_time(start_utc: datetime, delta: timedelta, *, working_days: bool,
                     exceptions: Mapping[date, bool]) -> datetime:
    """The moment `delta` of service time after `start_utc` (in UTC): plain addition in
    calendar mode; on working days only, time on non-working days is skipped."""
    _check(start_utc)
    if delta < timedelta(0):
        raise ValueError("service time only moves forward")
    if not working_days:
        return start_utc + delta
    moment, left = start_utc.astimezone(UTC), delta
    for _ in range(MAX_DAYS):
        day = moment.astimezone(SHANGHAI).date()
        day_end = _midnight(day + timedelta(days=1))
        if left <= timedelta(0):
            return moment
        if is_working_day(day, exceptions):
            if moment + left <= day_end:
                return moment + left
            left -= day_end - moment
        moment = day_end
    raise ValueError("no working day within ten years: check the calendar")


def service_time_between(a: datetime, b: datetime, *, working_days: bool,
                         exceptions: Mapping[date, bool]) -> timedelta:
    """The service time from `a` to `b` (negative if `b` is earlier): the inverse of
    `add_service_time`, used to move due times on by a pause."""
    _check(a)
    _check(b)
    if not working_days:
        return b - a
    if b < a:
        return -service_time_between(b, a, working_days=True, exceptions=exceptions)
    total, moment = timedelta(0), a.astimezone(UTC)
    while moment < b:
        day = moment.astimezone(SHANGHAI).date()
        day_end = min(_midnight(day + timedelta(days=1)), b)
        if is_working_day(day, exceptions):
            total += day_end - moment
        moment = day_end
    return total
