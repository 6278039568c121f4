"""Hard pairing rules shared by self-claims, dispatches and (later) the optimiser.

Plain Python: skills, distance, time windows. No Flask, no database.
"""

from __future__ import annotations

import math
from datetime import date, datetime

EARTH_RADIUS_M = 6_371_000.0


def skills_cover(offered: list[str] | set[str], required: list[str] | set[str]) -> bool:
    """Whether the offered skills include every required one."""
    return set(required) <= set(offered)


def missing_skills(offered: list[str] | set[str], required: list[str] | set[str]) -> list[str]:
    """The required skills that are not offered, sorted."""
    return sorted(set(required) - set(offered))


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def _day(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def availability_overlaps(
    availability: dict | None, window_start: datetime | None, window_end: datetime | None
) -> bool:
    """Whether a resource's date ranges overlap a demand's window (no ranges: always available).

    Weekly time windows are kept for the optimiser; a self-claim checks only the dates, since the
    unit chooses the occasion itself.
    """
    ranges = (availability or {}).get("date_ranges") or []
    if not ranges or window_start is None:
        return True
    start = window_start.date()
    end = (window_end or window_start).date()
    return any(_day(r["start"]) <= end and start <= _day(r["end"]) for r in ranges)
