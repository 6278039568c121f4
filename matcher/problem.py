"""A matching problem as columns of NumPy arrays, and the weights that score it.

Callers describe demands, resources, units and pairings as plain records (`build_problem`); the
engine works on arrays only, so that nothing it does loops over demand × resource pairs in Python.

Quantities: a demand needs `quantity` (still open, e.g. 5 人次). A resource gives at most `share`
to any one demand (its capacity per occasion), `quantity` in all (what remains), and serves at most
`capacity` demands in one run. Times are minutes since the Unix epoch (UTC), ±inf when open.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from matcher.weekly import FULL_WEEK, week_mask_of_slots, week_mask_of_window

INF = float("inf")
URGENCY_LEVELS = {"normal": 0, "urgent": 1, "critical": 2}
MODES = ("auto", "1+1", "1+N")
ANY = "*"  # a resource of this category fits a demand of any category


class ProblemError(ValueError):
    """The problem is malformed: unknown ids, negative quantities, an impossible pinned pair."""


class SolverError(RuntimeError):
    """A solver answered with something other than a solution."""


@dataclass(frozen=True)
class Weights:
    """Integer weights of the score; see docs/matching.md for what each term means."""

    serve: int = 1000          # serving a demand at all: dominates every other term
    skill: int = 200           # share of the demand's required skills this resource brings
    distance: int = 200        # full at 0 m, nothing at the resource's radius (or max_distance_m)
    pairing: int = 300         # the unit is paired (结对) with the demand's community
    grid_pairing: int = 100    # … and with its grid
    urgency: int = 150         # per level: normal 0, urgent 1, critical 2
    waiting: int = 10          # per day the demand has waited, up to waiting_cap_days
    waiting_cap_days: int = 30
    rating: int = 50           # per star of the unit's average rating above (or below) 3
    fairness: int = 20         # less per assignment the unit already carries, up to fairness_cap
    fairness_cap: int = 10
    helper: int = 250          # cost of each team member beyond the lead: teams stay small
    max_distance_m: int = 5000  # scale of the distance term when the resource has no radius
    team_size: int = 5         # k: at most this many units a team

    @classmethod
    def from_dict(cls, data: dict | None) -> Weights:
        """Weights from a mapping; unknown keys and non-integer values are errors."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProblemError(f"unknown weights: {', '.join(unknown)}")
        for key, value in data.items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise ProblemError(f"weight {key} must be an integer")
        if data.get("team_size", 1) < 1 or data.get("max_distance_m", 1) < 1:
            raise ProblemError("team_size and max_distance_m must be at least 1")
        return cls(**data)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Problem:
    """Columnar demands (prefix d_), resources (r_) and units (u_), plus the special pairs."""

    weights: Weights
    mode: str
    skill_names: list[str]
    category_names: list[str]
    community_names: list
    # demands
    d_id: np.ndarray
    d_category: np.ndarray       # int32, index into category_names
    d_skills: np.ndarray         # uint64 (n, words) bit set of required skills
    d_quantity: np.ndarray       # int64
    d_community: np.ndarray      # int32
    d_grid: np.ndarray           # int64, -1 when unknown
    d_lat: np.ndarray            # float64, nan when unknown
    d_lng: np.ndarray
    d_start: np.ndarray          # float64 minutes, -inf when open
    d_end: np.ndarray            # float64 minutes, +inf when open
    d_week: np.ndarray           # uint64 (n, 3): hours of the week the window touches
    d_urgency: np.ndarray        # int64 0..2
    d_waited: np.ndarray         # int64 days
    d_team: np.ndarray           # int8: -1 auto, 0 one unit only, 1 may take a team
    d_max_team: np.ndarray       # int64 k for this demand
    # resources
    r_id: np.ndarray
    r_unit: np.ndarray           # int32, index into u_id
    r_category: np.ndarray
    r_skills: np.ndarray
    r_share: np.ndarray          # int64 max per demand
    r_quantity: np.ndarray       # int64 left in all
    r_capacity: np.ndarray       # int64 max demands this run
    r_lat: np.ndarray
    r_lng: np.ndarray
    r_radius: np.ndarray         # float64 metres, nan: serves only its listed communities
    r_area_ptr: np.ndarray       # CSR of communities served
    r_area: np.ndarray
    r_span_ptr: np.ndarray       # CSR of availability intervals (minutes); none: always
    r_span_start: np.ndarray
    r_span_end: np.ndarray
    r_week: np.ndarray           # uint64 (m, 3)
    r_exclusive: np.ndarray      # bool: one demand at a time (no overlapping windows)
    # units
    u_id: np.ndarray
    u_rating: np.ndarray         # float64, nan when unrated
    u_load: np.ndarray           # int64 active assignments before this run
    # pairs, as index arrays
    pair_unit: np.ndarray        # pairings (结对): unit index, community index, grid (-1 any)
    pair_community: np.ndarray
    pair_grid: np.ndarray
    locked_d: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    locked_r: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    locked_q: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    locked_lead: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    pinned_d: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    pinned_r: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    forbidden_d: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    forbidden_r: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_demands(self) -> int:
        return len(self.d_id)

    @property
    def n_resources(self) -> int:
        return len(self.r_id)


# ---- from records ------------------------------------------------------------------------------

def _minutes(value) -> float | None:
    """Minutes since the epoch of an ISO datetime (naive means UTC) or a datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp() / 60.0


def _day_minutes(value, end: bool) -> float:
    day = value if isinstance(value, date) else date.fromisoformat(value)
    if end:
        day += timedelta(days=1)
    local = datetime.combine(day, time(), tzinfo=UTC) - timedelta(hours=8)  # Asia/Shanghai
    return local.timestamp() / 60.0


def _bits(names: list[list[str]], vocabulary: dict[str, int]) -> np.ndarray:
    words = max(1, (len(vocabulary) + 63) // 64)
    out = np.zeros((len(names), words), np.uint64)
    for row, tags in enumerate(names):
        for tag in tags:
            bit = vocabulary[tag]
            out[row, bit // 64] |= np.uint64(1) << np.uint64(bit % 64)
    return out


def _index(values, what: str) -> dict:
    index: dict = {}
    for value in values:
        if value in index:
            raise ProblemError(f"duplicate {what} id {value!r}")
        index[value] = len(index)
    return index


def _lookup(index: dict, key, what: str) -> int:
    try:
        return index[key]
    except (KeyError, TypeError):
        raise ProblemError(f"unknown {what} {key!r}") from None


def _positive(value, what: str, minimum: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ProblemError(f"{what} must be an integer of at least {minimum}")
    return value


def _float(value) -> float:
    return float("nan") if value is None else float(value)


def build_problem(data: dict) -> Problem:
    """Build a `Problem` from plain records (the JSON problem format of docs/matching.md)."""
    try:
        return _build(data)
    except ProblemError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProblemError(f"malformed problem: {exc!r}") from None


def _build(data: dict) -> Problem:
    weights = Weights.from_dict(data.get("weights"))
    mode = data.get("mode", "auto")
    if mode not in MODES:
        raise ProblemError(f"mode must be one of {', '.join(MODES)}")
    demands, resources = data.get("demands") or [], data.get("resources") or []
    units = data.get("units") or []
    unit_ids = [u["id"] for u in units]
    for r in resources:  # units named only by their resources are unrated and idle
        if r.get("unit") not in unit_ids:
            unit_ids.append(r.get("unit"))
            units.append({"id": r.get("unit")})
    unit_index = _index(unit_ids, "unit")
    d_index = _index([d["id"] for d in demands], "demand")
    r_index = _index([r["id"] for r in resources], "resource")
    skills = sorted({s for d in demands for s in d.get("skills") or []}
                    | {s for r in resources for s in r.get("skills") or []})
    skill_index = {s: i for i, s in enumerate(skills)}
    categories = sorted({str(x["category"]) for x in [*demands, *resources]} - {ANY})
    cat_index = {c: i for i, c in enumerate(categories)}
    communities = sorted({str(d["community"]) for d in demands}
                         | {str(c) for r in resources for c in r.get("communities") or []}
                         | {str(p["community"]) for p in data.get("pairings") or []})
    com_index = {c: i for i, c in enumerate(communities)}
    grids = sorted({str(d["grid"]) for d in demands if d.get("grid") is not None}
                   | {str(p["grid"]) for p in data.get("pairings") or [] if p.get("grid") is not None})
    grid_index = {g: i for i, g in enumerate(grids)}

    d_start, d_end, d_week = [], [], []
    for d in demands:
        window = d.get("window") or {}
        start, end = _minutes(window.get("start")), _minutes(window.get("end"))
        if start is not None and end is None:
            end = start + 60
        if start is not None and end < start:
            raise ProblemError(f"demand {d['id']!r}: the window ends before it starts")
        d_start.append(-INF if start is None else start)
        d_end.append(INF if end is None else end)
        week = FULL_WEEK if start is None else week_mask_of_window(start, end)
        if d.get("weekly"):  # a standing post's weekly schedule (same slots as availability)
            week = tuple(a & b for a, b in zip(week, week_mask_of_slots(d["weekly"]),
                                                strict=True))
        d_week.append(week)
    spans: list[tuple[float, float]] = []
    span_ptr, r_week, area_ptr, area = [0], [], [0], []
    for r in resources:
        availability = r.get("availability") or {}
        for span in availability.get("date_ranges") or []:
            spans.append((_day_minutes(span["start"], False), _day_minutes(span["end"], True)))
        span_ptr.append(len(spans))
        weekly = availability.get("weekly") or []
        r_week.append(week_mask_of_slots(weekly) if weekly else FULL_WEEK)
        area.extend(_lookup(com_index, str(c), "community") for c in r.get("communities") or [])
        area_ptr.append(len(area))

    def locate(pairs, name):
        d = [_lookup(d_index, p["demand"], f"demand in {name}") for p in pairs]
        r = [_lookup(r_index, p["resource"], f"resource in {name}") for p in pairs]
        return np.array(d, np.int64), np.array(r, np.int64)

    locked = data.get("locked") or []
    locked_d, locked_r = locate(locked, "locked")
    pinned_d, pinned_r = locate(data.get("pinned") or [], "pinned")
    forbidden_d, forbidden_r = locate(data.get("forbidden") or [], "forbidden")
    pairings = data.get("pairings") or []
    problem = Problem(
        weights=weights, mode=mode, skill_names=skills, category_names=categories,
        community_names=communities,
        d_id=np.array([d["id"] for d in demands], object),
        d_category=np.array([cat_index[str(d["category"])] for d in demands], np.int32),
        d_skills=_bits([d.get("skills") or [] for d in demands], skill_index),
        d_quantity=np.array([_positive(d.get("quantity", 1), "demand quantity", 1)
                             for d in demands], np.int64),
        d_community=np.array([com_index[str(d["community"])] for d in demands], np.int32),
        d_grid=np.array([-1 if d.get("grid") is None else grid_index[str(d["grid"])]
                         for d in demands], np.int64),
        d_lat=np.array([_float(d.get("lat")) for d in demands], np.float64),
        d_lng=np.array([_float(d.get("lng")) for d in demands], np.float64),
        d_start=np.array(d_start, np.float64), d_end=np.array(d_end, np.float64),
        d_week=np.array(d_week, np.uint64).reshape(len(demands), 3),
        d_urgency=np.array([URGENCY_LEVELS.get(d.get("urgency", "normal"), -1)
                            for d in demands], np.int64),
        d_waited=np.array([_positive(d.get("waited_days", 0), "waited_days")
                           for d in demands], np.int64),
        d_team=np.array([{None: -1, False: 0, True: 1}[d.get("team")] for d in demands], np.int8),
        d_max_team=np.array([_positive(d.get("max_team", weights.team_size), "max_team", 1)
                             for d in demands], np.int64),
        r_id=np.array([r["id"] for r in resources], object),
        r_unit=np.array([unit_index[r.get("unit")] for r in resources], np.int32),
        r_category=np.array([cat_index.get(str(r["category"]), -1) for r in resources], np.int32),
        r_skills=_bits([r.get("skills") or [] for r in resources], skill_index),
        r_share=np.array([_positive(r.get("share", r.get("quantity", 1)), "resource share", 1)
                          for r in resources], np.int64),
        r_quantity=np.array([_positive(r.get("quantity", 1), "resource quantity")
                             for r in resources], np.int64),
        r_capacity=np.array([_positive(r.get("capacity", r.get("quantity", 1)), "capacity")
                             for r in resources], np.int64),
        r_lat=np.array([_float(r.get("lat")) for r in resources], np.float64),
        r_lng=np.array([_float(r.get("lng")) for r in resources], np.float64),
        r_radius=np.array([_float(r.get("radius_m")) for r in resources], np.float64),
        r_area_ptr=np.array(area_ptr, np.int64), r_area=np.array(area, np.int64),
        r_span_ptr=np.array(span_ptr, np.int64),
        r_span_start=np.array([s for s, _ in spans], np.float64),
        r_span_end=np.array([e for _, e in spans], np.float64),
        r_week=np.array(r_week, np.uint64).reshape(len(resources), 3),
        r_exclusive=np.array([bool(r.get("exclusive", False)) for r in resources], bool),
        u_id=np.array(unit_ids, object),
        u_rating=np.array([_float(u.get("rating")) for u in units], np.float64),
        u_load=np.array([_positive(u.get("load", 0), "unit load") for u in units], np.int64),
        pair_unit=np.array([_lookup(unit_index, p["unit"], "unit in pairings")
                            for p in pairings], np.int64),
        pair_community=np.array([com_index[str(p["community"])] for p in pairings], np.int64),
        pair_grid=np.array([-1 if p.get("grid") is None else grid_index[str(p["grid"])]
                            for p in pairings], np.int64),
        locked_d=locked_d, locked_r=locked_r,
        locked_q=np.array([_positive(p.get("quantity", 1), "locked quantity", 1)
                           for p in locked], np.int64),
        locked_lead=np.array([bool(p.get("lead", False)) for p in locked], bool),
        pinned_d=pinned_d, pinned_r=pinned_r, forbidden_d=forbidden_d, forbidden_r=forbidden_r,
    )
    if (problem.d_urgency < 0).any():
        raise ProblemError(f"urgency must be one of {', '.join(URGENCY_LEVELS)}")
    for r in resources:
        radius = r.get("radius_m")
        if radius is not None and (r.get("lat") is None or r.get("lng") is None or radius < 0):
            raise ProblemError(f"resource {r['id']!r}: a radius needs coordinates and must be ≥ 0")
    return problem


def clashing(p: Problem, d_a: int, d_b: int) -> bool:
    """Whether two demands' windows overlap; a demand without a window clashes with nothing."""
    if not (np.isfinite(p.d_start[d_a]) and np.isfinite(p.d_start[d_b])):
        return False
    return bool(p.d_start[d_a] < p.d_end[d_b] and p.d_start[d_b] < p.d_end[d_a])
