"""Candidate pairs (demand, resource) and their integer scores, built with array operations only.

Places come from two indexes: resources that list communities are joined to the demands of those
communities by a sorted-key range lookup; resources with a radius are joined to nearby demands by
a k-d tree over points on the unit sphere (SciPy's cKDTree), per category and radius band. Every
other rule is a vectorised filter over the pairs those produce. See docs/matching.md.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from matcher.problem import Problem
from matcher.weekly import FULL_WEEK

EARTH_RADIUS_M = 6_371_000.0
TERMS = ("serve", "skill", "distance", "pairing", "urgency", "waiting", "rating", "fairness")


@dataclass
class Candidates:
    """Parallel arrays, one row per possible pair, sorted by (demand, resource)."""

    d: np.ndarray        # demand index
    r: np.ndarray        # resource index
    give: np.ndarray     # the most this resource can give this demand
    alone: np.ndarray    # this resource covers the demand's quantity and skills by itself
    terms: np.ndarray    # (pairs, len(TERMS)) integer score terms
    score: np.ndarray    # their sum

    def __len__(self) -> int:
        return len(self.d)

    def take(self, mask: np.ndarray) -> Candidates:
        """The candidates where `mask` holds (or at the given positions)."""
        return Candidates(self.d[mask], self.r[mask], self.give[mask], self.alone[mask],
                          self.terms[mask], self.score[mask])

    def breakdown(self, row: int) -> dict[str, int]:
        return {name: int(v) for name, v in zip(TERMS, self.terms[row], strict=True)}


def _unit_vectors(lat: np.ndarray, lng: np.ndarray) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lng)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def _chord(metres: np.ndarray | float) -> np.ndarray:
    return 2.0 * np.sin(np.minimum(np.asarray(metres) / EARTH_RADIUS_M, np.pi) / 2.0)


def distances_m(lat1, lng1, lat2, lng2) -> np.ndarray:
    """Great-circle distances in metres (haversine), element by element."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.asarray(lng2) - lng1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def expand_ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [lo, hi): the owner of each position and the positions, concatenated."""
    counts = hi - lo
    owner = np.repeat(np.arange(len(lo)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.repeat(lo - starts, counts) + np.arange(counts.sum())


def _by_community(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Pairs where the resource lists the demand's community and the category fits (a resource
    of any category, -1, fits every demand)."""
    n_com = max(1, len(p.community_names))
    entry_r = np.repeat(np.arange(p.n_resources), np.diff(p.r_area_ptr))
    any_cat = p.r_category[entry_r] < 0
    out_d, out_r = [], []
    for wild in (False, True):
        entries = entry_r[any_cat == wild]
        area = p.r_area[any_cat == wild]
        key_d = p.d_community.astype(np.int64)
        key_r = area.astype(np.int64)
        if not wild:
            key_d = key_d + p.d_category.astype(np.int64) * n_com
            key_r = key_r + p.r_category[entries].astype(np.int64) * n_com
        order = np.argsort(key_d, kind="stable")
        sorted_keys = key_d[order]
        lo = np.searchsorted(sorted_keys, key_r, "left")
        hi = np.searchsorted(sorted_keys, key_r, "right")
        owner, positions = expand_ranges(lo, hi)
        out_d.append(order[positions].astype(np.int64))
        out_r.append(entries[owner].astype(np.int64))
    return np.concatenate(out_d), np.concatenate(out_r)


def _near(d_points, r_points, radius, demands, resources):
    """Pairs of `resources` and `demands` (index arrays) within each resource's radius."""
    d_tree, r_tree = cKDTree(d_points[demands]), cKDTree(r_points[resources])
    reach = float(_chord(radius[resources].max()))
    near = r_tree.sparse_distance_matrix(d_tree, reach, output_type="ndarray")
    ok = near["v"] <= _chord(radius[resources[near["i"]]])
    metres = 2.0 * EARTH_RADIUS_M * np.arcsin(np.minimum(near["v"][ok] / 2, 1.0))
    return demands[near["j"][ok]], resources[near["i"][ok]], metres


def _by_radius(p: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs within the resource's radius, per category and band of similar radii, with their
    distances in metres. The k-d tree queries release the GIL, so they run on every core."""
    has_radius = ~np.isnan(p.r_radius)
    located = ~(np.isnan(p.d_lat) | np.isnan(p.d_lng))
    tasks = []
    if has_radius.any() and located.any():
        band = np.floor(np.log2(np.maximum(p.r_radius, 1.0), where=has_radius,
                                out=np.zeros(p.n_resources))).astype(np.int64)
        for category in np.unique(p.r_category[has_radius]).tolist():
            fits = (p.d_category == category) if category >= 0 else True
            demands = np.flatnonzero(located & fits)
            in_category = has_radius & (p.r_category == category)
            if len(demands):
                tasks += [(demands, np.flatnonzero(in_category & (band == b)))
                          for b in np.unique(band[in_category]).tolist()]
    if not tasks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    d_points, r_points = _unit_vectors(p.d_lat, p.d_lng), _unit_vectors(p.r_lat, p.r_lng)
    with ThreadPoolExecutor(min(len(tasks), os.cpu_count() or 1)) as pool:
        parts = list(pool.map(lambda t: _near(d_points, r_points, p.r_radius, *t), tasks))
    return (np.concatenate([x[0] for x in parts]).astype(np.int64),
            np.concatenate([x[1] for x in parts]).astype(np.int64),
            np.concatenate([x[2] for x in parts]))


def _sorted_pairs(p: Problem, d: np.ndarray, r: np.ndarray, metres: np.ndarray):
    """The pairs sorted by (demand, resource), each once (a measured distance wins)."""
    width = max(1, p.n_resources)
    keys = d * width + r
    order = np.argsort(keys)
    keys = keys[order]
    metres = metres[order]
    if not len(keys):
        return keys, keys, metres
    first = np.r_[True, keys[1:] != keys[:-1]]
    if not first.all():  # a pair found both ways keeps its measured distance
        last = np.r_[keys[1:] != keys[:-1], True]
        metres[first] = np.fmin(metres[first], metres[last])
    keys, metres = keys[first], metres[first]
    return keys // width, keys % width, metres


def _in_pairs(a: np.ndarray, b: np.ndarray, set_a: np.ndarray, set_b: np.ndarray,
              width: int) -> np.ndarray:
    """Whether each (a, b) is among the (set_a, set_b) pairs."""
    if not len(set_a):
        return np.zeros(len(a), bool)
    return np.isin(a * width + b, np.asarray(set_a, np.int64) * width + set_b)


def _windows_fit(p: Problem, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The demand's window meets one of the resource's date spans and one of its weekly hours."""
    full = np.array(FULL_WEEK, np.uint64)
    if (p.d_week == full).all() or (p.r_week == full).all():
        ok = np.ones(len(d), bool)
    else:
        ok = ((p.d_week[d] & p.r_week[r]) != 0).any(axis=1)
    if not len(p.r_span_start):
        return ok
    counts = (p.r_span_ptr[r + 1] - p.r_span_ptr[r])
    limited = np.flatnonzero(counts > 0)
    if len(limited):
        owner, spans = expand_ranges(p.r_span_ptr[r[limited]], p.r_span_ptr[r[limited] + 1])
        dd = d[limited][owner]
        meets = (p.r_span_start[spans] < p.d_end[dd]) & (p.d_start[dd] < p.r_span_end[spans])
        any_meets = np.zeros(len(limited), bool)
        np.logical_or.at(any_meets, owner, meets)
        ok[limited] &= any_meets
    return ok


def hard_rules(p: Problem, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Whether each pair passes every hard rule except place (category, quantity, time, bans)."""
    ok = (p.d_category[d] == p.r_category[r]) | (p.r_category[r] < 0)
    ok &= (p.r_capacity[r] > 0) & (np.minimum(p.r_share[r], p.r_quantity[r]) > 0)
    ok &= ~_in_pairs(d, r, p.forbidden_d, p.forbidden_r, max(1, p.n_resources))
    n_units = max(1, len(p.u_id))
    ok &= ~_in_pairs(d, p.r_unit[r].astype(np.int64), p.locked_d,
                     p.r_unit[p.locked_r].astype(np.int64), n_units)
    ok[ok] &= _windows_fit(p, d[ok], r[ok])
    return ok


def in_area(p: Problem, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Whether each resource's service area includes its demand's place (for checking answers)."""
    owner, entries = expand_ranges(p.r_area_ptr[r], p.r_area_ptr[r + 1])
    listed = np.zeros(len(d), bool)
    np.logical_or.at(listed, owner, p.r_area[entries] == p.d_community[d[owner]])
    near = ~np.isnan(p.r_radius[r]) & ~np.isnan(p.d_lat[d])
    dist = distances_m(p.d_lat[d], p.d_lng[d], p.r_lat[r], p.r_lng[r])
    return listed | (near & (np.nan_to_num(dist, nan=np.inf) <= p.r_radius[r] + 1e-6))


def score_terms(p: Problem, d: np.ndarray, r: np.ndarray,
                metres: np.ndarray | None = None) -> np.ndarray:
    """The integer score terms of each pair, as columns in the order of TERMS."""
    w = p.weights
    u = p.r_unit[r]
    terms = np.empty((len(d), len(TERMS)), np.int64)
    terms[:, 0] = w.serve
    terms[:, 1] = _skill_terms(p, d, r)
    terms[:, 2] = _distance_terms(p, d, r, metres)
    terms[:, 3] = _pairing_terms(p, d, u.astype(np.int64)) if len(p.pair_unit) else 0
    # terms of the demand alone and of the unit alone, computed once each and gathered
    terms[:, 4] = (w.urgency * p.d_urgency)[d]
    terms[:, 5] = (w.waiting * np.minimum(p.d_waited, w.waiting_cap_days))[d]
    rating = np.where(np.isnan(p.u_rating), 0, np.rint(w.rating * (np.nan_to_num(p.u_rating) - 3)))
    terms[:, 6] = rating.astype(np.int64)[u]
    terms[:, 7] = (-w.fairness * np.minimum(p.u_load, w.fairness_cap))[u]
    return terms


def _skill_terms(p: Problem, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The share of the demand's required skills the resource brings (all, if none required)."""
    w = p.weights
    required = np.bitwise_count(p.d_skills).sum(axis=1).astype(np.int64)
    out = np.full(len(d), w.skill, np.int64)
    asks = np.flatnonzero(required[d] > 0)
    if len(asks):
        da = d[asks]
        matched = np.bitwise_count(p.d_skills[da] & p.r_skills[r[asks]]).sum(axis=1)
        out[asks] = (w.skill * matched) // required[da]
    return out


def _distance_terms(p: Problem, d, r, metres) -> np.ndarray:
    """Full at 0 m, nothing at the resource's radius (or max_distance_m); 0 when unknown."""
    w = p.weights
    metres = np.full(len(d), np.nan) if metres is None else metres.copy()
    todo = np.flatnonzero(np.isnan(metres))
    if len(todo):
        metres[todo] = distances_m(p.d_lat[d[todo]], p.d_lng[d[todo]], p.r_lat[r[todo]],
                                   p.r_lng[r[todo]])
    scale = np.where(np.isnan(p.r_radius), w.max_distance_m, np.maximum(p.r_radius, 1.0))[r]
    near = np.clip(1.0 - metres / scale, 0.0, 1.0)
    return np.where(np.isnan(near), 0, np.rint(w.distance * near)).astype(np.int64)


def _pairing_terms(p: Problem, d: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A bonus when the unit is paired (结对) with the demand's community, more for its grid."""
    w = p.weights
    n_com = max(1, len(p.community_names))
    paired = _in_pairs(u, p.d_community[d].astype(np.int64), p.pair_unit, p.pair_community, n_com)
    gridded = p.pair_grid >= 0
    n_grid = int(max(p.d_grid.max(initial=0), p.pair_grid.max(initial=0))) + 1
    on_grid = (p.d_grid[d] >= 0) & _in_pairs(u, p.d_grid[d], p.pair_unit[gridded],
                                            p.pair_grid[gridded], n_grid)
    return w.pairing * paired + w.grid_pairing * on_grid


def pair_give(p: Problem, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.minimum(np.minimum(p.r_share[r], p.r_quantity[r]), p.d_quantity[d])


def covers_alone(p: Problem, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Whether the resource alone brings every required skill and the whole quantity."""
    skills = ((p.d_skills[d] & ~p.r_skills[r]) == 0).all(axis=1)
    return skills & (pair_give(p, d, r) >= p.d_quantity[d])


def generate(p: Problem) -> Candidates:
    """Every possible pair of the problem, scored.

    A pair that cannot serve its demand alone is kept only if the demand may take a team.
    """
    d1, r1 = _by_community(p)
    d2, r2, m2 = _by_radius(p)
    d, r, metres = _sorted_pairs(p, np.concatenate((d1, d2)), np.concatenate((r1, r2)),
                                 np.concatenate((np.full(len(d1), np.nan), m2)))
    keep = hard_rules(p, d, r)
    alone = covers_alone(p, d[keep], r[keep])
    useful = alone | (np.minimum(p.d_max_team, p.d_quantity)[d[keep]] > 1)
    keep[keep] = useful
    d, r, metres, alone = d[keep], r[keep], metres[keep], alone[useful]
    terms = score_terms(p, d, r, metres)
    return Candidates(d, r, pair_give(p, d, r), alone, terms, terms.sum(axis=1))
