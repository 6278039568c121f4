"""Hours of the week as 168-bit masks (three 64-bit words), in Asia/Shanghai time (UTC+8).

Bit h is hour h of a week that starts on Monday 00:00. A demand's window touches some hours; a
resource's weekly slots (每周六上午) cover some; they fit when the masks share a bit.
"""

from __future__ import annotations

import math

HOURS = 168
OFFSET_MIN = 8 * 60          # Asia/Shanghai keeps no daylight-saving time
EPOCH_WEEKDAY = 3            # 1970-01-01 was a Thursday
FULL_WEEK = ((1 << 64) - 1, (1 << 64) - 1, (1 << (HOURS - 128)) - 1)


def _mask(hours) -> tuple[int, int, int]:
    value = 0
    for hour in hours:
        value |= 1 << (hour % HOURS)
    return value & ((1 << 64) - 1), (value >> 64) & ((1 << 64) - 1), value >> 128


def hour_of_week(minutes: float) -> int:
    """The local hour of the week (0 = Monday 00:00–01:00) of a UTC minute since the epoch."""
    local = int(math.floor(minutes)) + OFFSET_MIN
    day, minute = divmod(local, 1440)
    return ((day + EPOCH_WEEKDAY) % 7) * 24 + minute // 60


def week_mask_of_window(start: float, end: float) -> tuple[int, int, int]:
    """The hours of the week that a window [start, end) in UTC minutes touches."""
    if end - start >= 7 * 1440:
        return FULL_WEEK
    first = hour_of_week(start)
    hours = max(1, math.ceil((end - math.floor(start / 60) * 60) / 60))
    return _mask(range(first, first + hours))


def _clock(value: str) -> int:
    hours, minutes = value.split(":")
    result = int(hours) * 60 + int(minutes)
    if not 0 <= result <= 24 * 60:
        raise ValueError(f"not a time of day: {value}")
    return result


def week_mask_of_slots(slots: list[dict]) -> tuple[int, int, int]:
    """The hours covered by weekly slots like {"weekday": 5, "start": "09:00", "end": "12:00"}."""
    hours: list[int] = []
    for slot in slots:
        weekday = int(slot["weekday"])
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6, not {weekday}")
        start, end = _clock(slot["start"]), _clock(slot["end"])
        hours.extend(weekday * 24 + h for h in range(start // 60, math.ceil(end / 60)))
    return _mask(hours)
