"""A community's points rules (积分制管理办法) and what they award: pure, integer arithmetic.

Rules are a plain dict, validated by `parse_rules` into `PointsRules`; the service keeps every
published version and credits each service record with the version in force on the day served.

    {
      "per_hour": {"elderly_care": 10, "*": 5},        # points per verified hour, by category code
      "activities": {"deliberation_meeting": 5, "waste_sorting": 2, "building_head": 20},
      "multipliers": {"urgent": 120, "critical": 150, "vulnerable": 130},  # percent
      "daily_cap": 50, "monthly_cap": 600,              # per person; null for none
      "rounding": "half_up"                             # or "down", "up"
    }
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROUNDINGS = ("half_up", "down", "up")
MULTIPLIER_KINDS = ("urgent", "critical", "vulnerable")
MAX_POINTS = 1_000_000  # per award or per hour; anything larger is a typo, not a rule


class RulesError(ValueError):
    """A rules document that cannot be used; `field` names the bad part."""

    def __init__(self, field_: str, message: str):
        super().__init__(f"{field_}: {message}")
        self.field = field_
        self.message = message


@dataclass(frozen=True)
class PointsRules:
    """One version of a community's rules."""

    per_hour: dict[str, int] = field(default_factory=dict)
    activities: dict[str, int] = field(default_factory=dict)
    multipliers: dict[str, int] = field(default_factory=dict)
    daily_cap: int | None = None
    monthly_cap: int | None = None
    rounding: str = "half_up"

    def rate_for(self, category: str) -> int:
        """Points per hour for `category` (the "*" rate when it has none of its own)."""
        return self.per_hour.get(category, self.per_hour.get("*", 0))


def _count(field_: str, value, *, low: int = 0, high: int = MAX_POINTS) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RulesError(field_, "must be a whole number")
    if not low <= value <= high:
        raise RulesError(field_, f"must be between {low} and {high}")
    return value


def _table(doc: dict, name: str, **limits) -> dict[str, int]:
    table = doc.get(name) or {}
    if not isinstance(table, dict):
        raise RulesError(name, "must be an object of name → number")
    out = {}
    for key, value in table.items():
        if not isinstance(key, str) or not key.strip() or len(key) > 40:
            raise RulesError(name, "names are 1–40 characters")
        out[key.strip()] = _count(f"{name}.{key}", value, **limits)
    return out


def parse_rules(doc: dict) -> PointsRules:
    """Validate a rules document; RulesError names the first bad field."""
    if not isinstance(doc, dict):
        raise RulesError("rules", "must be an object")
    unknown = set(doc) - {"per_hour", "activities", "multipliers", "daily_cap", "monthly_cap",
                          "rounding"}
    if unknown:
        raise RulesError(sorted(unknown)[0], "is not a rules field")
    multipliers = _table(doc, "multipliers", low=100, high=1000)
    for kind in multipliers:
        if kind not in MULTIPLIER_KINDS:
            raise RulesError(f"multipliers.{kind}", f"one of {', '.join(MULTIPLIER_KINDS)}")
    caps = {name: None if doc.get(name) is None else _count(name, doc[name], low=1)
            for name in ("daily_cap", "monthly_cap")}
    rounding = doc.get("rounding", "half_up")
    if rounding not in ROUNDINGS:
        raise RulesError("rounding", f"one of {', '.join(ROUNDINGS)}")
    return PointsRules(per_hour=_table(doc, "per_hour"), activities=_table(doc, "activities"),
                       multipliers=multipliers, rounding=rounding, **caps)


def rules_document(rules: PointsRules) -> dict:
    """The rules as the plain dict they were parsed from (for storage and display)."""
    return {"per_hour": dict(rules.per_hour), "activities": dict(rules.activities),
            "multipliers": dict(rules.multipliers), "daily_cap": rules.daily_cap,
            "monthly_cap": rules.monthly_cap, "rounding": rules.rounding}


def divide(numerator: int, denominator: int, rounding: str) -> int:
    """numerator / denominator as an integer, rounded as the rules say (both non-negative)."""
    quotient, remainder = divmod(numerator, denominator)
    if remainder == 0 or rounding == "down":
        return quotient
    if rounding == "up":
        return quotient + 1
    return quotient + (1 if 2 * remainder >= denominator else 0)


@dataclass(frozen=True)
class Award:
    """What a piece of service earns before caps, and how: kept on the credit for display."""

    points: int
    rate: int
    minutes: int
    multiplier: int  # percent, 100 when none applies

    def explain(self) -> dict:
        return {"rate_per_hour": self.rate, "minutes": self.minutes,
                "multiplier_percent": self.multiplier, "points": self.points}


def multiplier_for(rules: PointsRules, *, urgency: str = "normal", vulnerable: bool = False) -> int:
    """The largest multiplier (percent) that applies; multipliers do not stack."""
    kinds = [urgency] if urgency in ("urgent", "critical") else []
    if vulnerable:
        kinds.append("vulnerable")
    return max([rules.multipliers.get(k, 100) for k in kinds] + [100])


def points_for_service(rules: PointsRules, *, minutes: int, category: str,
                       urgency: str = "normal", vulnerable: bool = False) -> Award:
    """Points for `minutes` of verified service in `category`, before any cap."""
    if minutes < 0:
        raise ValueError("minutes cannot be negative")
    rate = rules.rate_for(category)
    multiplier = multiplier_for(rules, urgency=urgency, vulnerable=vulnerable)
    points = divide(rate * minutes * multiplier, 60 * 100, rules.rounding)
    return Award(points=points, rate=rate, minutes=minutes, multiplier=multiplier)


def capped(points: int, *, earned_today: int, earned_this_month: int, rules: PointsRules) -> int:
    """What is left of `points` under the daily and monthly caps, given what was earned already."""
    room = points
    if rules.daily_cap is not None:
        room = min(room, max(rules.daily_cap - earned_today, 0))
    if rules.monthly_cap is not None:
        room = min(room, max(rules.monthly_cap - earned_this_month, 0))
    return max(room, 0)
