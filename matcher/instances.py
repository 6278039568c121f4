"""Seeded random instances for benchmarks and tests, built straight as arrays.

- `city`: posts and volunteers spread over a city, each volunteer serving within a radius
  (Ningde: 95,000 volunteers, 40,000 posts); one place each, 1+1.
- `teams`: demands that need 2–5 units together to cover their skills and quantity (1+N).
- `county`: a county's units and a few dozen demands, some of them teams (Jinta: 156 units).
"""

from __future__ import annotations

import numpy as np

from matcher.problem import Problem, Weights
from matcher.weekly import FULL_WEEK

CENTRE = (26.66, 119.52)  # Ningde


def _bits(rng: np.random.Generator, rows: int, vocabulary: int, low: int, high: int):
    out = np.zeros((rows, 1), np.uint64)
    counts = rng.integers(low, high + 1, rows)
    for k in range(high):
        pick = rng.integers(0, vocabulary, rows).astype(np.uint64)
        out[:, 0] |= np.where(counts > k, np.uint64(1) << pick, np.uint64(0))
    return out


def make_problem(n: int, m: int, units: int, *, weights: Weights | None = None, mode="auto",
                 **cols) -> Problem:
    """A Problem from arrays, every column not given taking its neutral default."""
    week = np.array(FULL_WEEK, np.uint64)
    base = dict(
        weights=weights or Weights(), mode=mode, skill_names=[f"s{i}" for i in range(64)],
        category_names=[f"c{i}" for i in range(64)],
        community_names=list(range(cols.pop("communities", 1))),
        d_id=np.arange(n), d_category=np.zeros(n, np.int32), d_skills=np.zeros((n, 1), np.uint64),
        d_quantity=np.ones(n, np.int64), d_community=np.zeros(n, np.int32),
        d_grid=np.full(n, -1, np.int64), d_lat=np.full(n, np.nan), d_lng=np.full(n, np.nan),
        d_start=np.full(n, -np.inf), d_end=np.full(n, np.inf), d_week=np.tile(week, (n, 1)),
        d_urgency=np.zeros(n, np.int64), d_waited=np.zeros(n, np.int64),
        d_team=np.full(n, -1, np.int8), d_max_team=np.full(n, 5, np.int64),
        r_id=np.arange(m), r_unit=np.arange(m, dtype=np.int32) % max(units, 1),
        r_category=np.zeros(m, np.int32), r_skills=np.zeros((m, 1), np.uint64),
        r_share=np.ones(m, np.int64), r_quantity=np.ones(m, np.int64),
        r_capacity=np.ones(m, np.int64), r_lat=np.full(m, np.nan), r_lng=np.full(m, np.nan),
        r_radius=np.full(m, np.nan), r_area_ptr=np.zeros(m + 1, np.int64),
        r_area=np.zeros(0, np.int64), r_span_ptr=np.zeros(m + 1, np.int64),
        r_span_start=np.zeros(0), r_span_end=np.zeros(0), r_week=np.tile(week, (m, 1)),
        r_exclusive=np.zeros(m, bool), u_id=np.arange(units), u_rating=np.full(units, np.nan),
        u_load=np.zeros(units, np.int64), pair_unit=np.zeros(0, np.int64),
        pair_community=np.zeros(0, np.int64), pair_grid=np.zeros(0, np.int64),
    )
    base.update(cols)
    return Problem(**base)


def _scatter(rng, count: int, km: float):
    lat = CENTRE[0] + rng.uniform(-0.5, 0.5, count) * km / 111.0
    lng = CENTRE[1] + rng.uniform(-0.5, 0.5, count) * km / (111.0 * np.cos(np.radians(CENTRE[0])))
    return lat, lng


def city(n: int = 40_000, m: int = 100_000, *, seed: int = 0, categories: int = 10,
         capacity: tuple[int, int] = (1, 2), km: float = 30.0, radius: float = 800.0) -> Problem:
    """Posts (demands) and volunteers (resources) over a city; one place per post."""
    rng = np.random.default_rng(seed)
    d_lat, d_lng = _scatter(rng, n, km)
    r_lat, r_lng = _scatter(rng, m, km)
    units = m  # each volunteer is their own unit
    cap = rng.integers(capacity[0], capacity[1] + 1, m)
    needs_skill = rng.random(n) < 0.3
    d_skills = np.where(needs_skill[:, None],
                        np.uint64(1) << rng.integers(0, 20, (n, 1)).astype(np.uint64),
                        np.uint64(0))
    return make_problem(
        n, m, units,
        d_category=rng.integers(0, categories, n).astype(np.int32), d_skills=d_skills,
        d_lat=d_lat, d_lng=d_lng, d_urgency=rng.choice(3, n, p=[0.8, 0.15, 0.05]),
        d_waited=rng.integers(0, 20, n),
        r_category=rng.integers(0, categories, m).astype(np.int32),
        r_skills=_bits(rng, m, 20, 1, 4), r_capacity=cap, r_quantity=cap.copy(),
        r_lat=r_lat, r_lng=r_lng, r_radius=rng.uniform(0.6, 1.4, m) * radius,
        u_rating=np.where(rng.random(units) < 0.5, rng.uniform(2.5, 5.0, units), np.nan),
        u_load=rng.integers(0, 5, units),
    )


def teams(n: int = 1_000, units: int = 2_000, *, seed: int = 0, communities: int = 200,
          vocabulary: int = 12) -> Problem:
    """Demands needing 2–5 units that together cover their skills and quantity."""
    rng = np.random.default_rng(seed)
    m = units
    area_count = rng.integers(3, 7, m)
    area = np.concatenate([rng.choice(communities, k, replace=False) for k in area_count])
    share = rng.integers(1, 4, m)
    cap = rng.integers(1, 4, m)
    d_quantity = rng.integers(3, 9, n)
    return make_problem(
        n, m, units, communities=communities,
        d_skills=_bits(rng, n, vocabulary, 2, 4), d_quantity=d_quantity,
        d_community=rng.integers(0, communities, n).astype(np.int32),
        d_team=np.ones(n, np.int8), d_urgency=rng.choice(3, n, p=[0.7, 0.2, 0.1]),
        d_waited=rng.integers(0, 30, n),
        r_skills=_bits(rng, m, vocabulary, 1, 2), r_share=share, r_quantity=share * cap,
        r_capacity=cap, r_area_ptr=np.r_[0, np.cumsum(area_count)], r_area=area,
        u_rating=np.where(rng.random(units) < 0.6, rng.uniform(2.0, 5.0, units), np.nan),
        u_load=rng.integers(0, 8, units),
        pair_unit=np.arange(m), pair_community=rng.integers(0, communities, m),
        pair_grid=np.full(m, -1),
    )


def county(seed: int = 0) -> Problem:
    """Jinta-sized: 156 units in 12 communities, about 60 demands, a fifth of them teams."""
    rng = np.random.default_rng(seed)
    units, n, communities = 156, 60, 12
    m = units
    area_count = rng.integers(1, 4, m)
    area = np.concatenate([rng.choice(communities, k, replace=False) for k in area_count])
    share = rng.integers(2, 11, m)
    cap = rng.integers(1, 4, m)
    d_quantity = np.where(rng.random(n) < 0.2, rng.integers(10, 25, n), rng.integers(1, 6, n))
    return make_problem(
        n, m, units, communities=communities,
        d_category=rng.integers(0, 4, n).astype(np.int32),
        d_skills=_bits(rng, n, 8, 0, 2), d_quantity=d_quantity,
        d_community=rng.integers(0, communities, n).astype(np.int32),
        d_urgency=rng.choice(3, n, p=[0.7, 0.2, 0.1]), d_waited=rng.integers(0, 15, n),
        r_category=rng.integers(0, 4, m).astype(np.int32), r_skills=_bits(rng, m, 8, 1, 3),
        r_share=share, r_quantity=share * cap, r_capacity=cap,
        r_area_ptr=np.r_[0, np.cumsum(area_count)], r_area=area,
        u_rating=np.where(rng.random(units) < 0.6, rng.uniform(2.0, 5.0, units), np.nan),
        u_load=rng.integers(0, 6, units),
        pair_unit=np.arange(0, m, 3), pair_community=rng.integers(0, communities, len(range(0, m, 3))),
        pair_grid=np.full(len(range(0, m, 3)), -1),
    )
