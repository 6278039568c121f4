"""Volunteer time: reported in hours, kept as whole minutes so sums are exact."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MAX_MINUTES_PER_REPORT_LINE = 24 * 60 * 31


def hours_to_minutes(hours: Decimal | int | str) -> int:
    """Whole minutes in `hours`, rounded half up (1.25 h → 75 min)."""
    minutes = (Decimal(str(hours)) * 60).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(minutes)


def minutes_to_hours(minutes: int) -> Decimal:
    """Hours with two decimals for display (75 min → 1.25)."""
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
