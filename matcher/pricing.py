"""The pricing problem of column generation: for every team demand, its best team when each
resource charges a price.

A team of demand d is worth `cost_d + Σ (score_i − cost_d)` over its members i, where `cost_d` is
the demand's member cost (model.member_cost): the demand's own terms count once, and every member
after the first pays `helper`. With prices, each member also pays its resource's price, so the
weight of a member is `w_i = score_i − cost_d − price_i` and a team is worth `cost_d + Σ w_i`.

The best team is found exactly by dynamic programming over the demand's candidates, one
candidate at a time, with states (required skills covered, members so far, quantity so far capped
at the demand's quantity). All demands whose states have the same shape go through the
recursion together, as NumPy arrays.

Two relaxations keep the recursion small; each only lets more teams through, so the best value
found is never below the true best (what the bound needs), and a team that breaks a rule is
dropped by the caller (`matcher.model.covers`):
- only the first `SKILL_BITS` required skills are tracked, and quantities are tracked up to
  `QUANTITY_CAP`;
- members from one unit are not kept apart.

Before the recursion, a candidate is dropped when at least k others (k: the demand's team size)
bring every required skill it brings, at least its share, and weigh more (ties by row). Some
optimal team never needs it: such a team holds at most k − 1 others, so one of those better
candidates is free to take its place (proof in docs/matching.md). This keeps about a third of
the candidates on the benchmark instances. It is applied only where a demand's candidates all
come from distinct units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from matcher.model import Model

SKILL_BITS = 6
QUANTITY_CAP = 24
NONE = -np.inf
CHUNK = 1000  # demands priced together at most (memory: every stage is kept)


@dataclass
class Team:
    """A team found by pricing: the demand, its candidate rows, and its priced value."""

    demand: int
    rows: list[int]
    value: float


class Pricer:
    """Per-demand candidate tables, built once; `best` runs the recursion for given prices."""

    def __init__(self, model: Model, demands: np.ndarray, rows: np.ndarray):
        p, c = model.problem, model.cands
        self.model = model
        self.demands = np.asarray(demands, np.int64)
        rows = np.asarray(rows, np.int64)
        local = np.full(p.n_demands, -1)
        local[self.demands] = np.arange(len(self.demands))
        rows = rows[local[c.d[rows]] >= 0]
        owner = local[c.d[rows]]
        count = np.bincount(owner, minlength=len(self.demands))
        width = max(1, int(count.max(initial=0)))
        first = np.searchsorted(owner, np.arange(len(self.demands)))
        col = np.arange(len(rows)) - first[owner]
        self.rows = np.full((len(self.demands), width), -1, np.int64)
        self.rows[owner, col] = rows
        self.need = np.minimum(p.d_quantity[self.demands], QUANTITY_CAP)
        self.k = model.k[self.demands].astype(np.int64)
        self.cost = model.member_cost[self.demands].astype(np.float64)
        required = _required_bits(model, self.demands)
        self.bits = (required >= 0).sum(axis=1)
        self.mask = np.zeros_like(self.rows)
        self.give = np.zeros_like(self.rows)
        r_bits = np.unpackbits(p.r_skills.view(np.uint8), axis=1, bitorder="little")
        for b in range(required.shape[1]):
            has = r_bits[c.r[rows], np.maximum(required[owner, b], 0)].astype(np.int64)
            self.mask[owner, col] |= (has * (required[owner, b] >= 0)) << b
        self.give[owner, col] = np.minimum(c.give[rows], self.need[owner])
        units = np.where(self.rows >= 0, p.r_unit[c.r[np.maximum(self.rows, 0)]], -1 - np.arange(
            width))
        units = np.sort(units, axis=1)
        distinct = (units[:, 1:] != units[:, :-1]).all(axis=1)
        m_i, m_j = self.mask[:, :, None], self.mask[:, None, :]
        self.covers = (((m_i & m_j) == m_i) & (self.give[:, None, :] >= self.give[:, :, None])
                       & distinct[:, None, None])
        self.covers &= ~np.eye(width, dtype=bool)[None]
        self.groups = _groups(self.bits, self.k, self.need)

    def weights(self, price: np.ndarray) -> np.ndarray:
        """w per (demand, column): score − member cost − the resource's price; −inf for padding."""
        c = self.model.cands
        safe = np.maximum(self.rows, 0)
        w = c.score[safe] - self.cost[:, None] - price[c.r[safe]]
        return np.where(self.rows >= 0, w, NONE)

    def best(self, price: np.ndarray, floor: np.ndarray | None = None
             ) -> tuple[np.ndarray, list[Team]]:
        """Per demand (local index), the best team value under `price` (−inf when no team
        covers it), and the best team of each size worth more than the demand's `floor`, as
        `Team` records (no teams without a floor)."""
        w = self.weights(price)
        value = np.full(len(self.demands), NONE)
        found: list[Team] = []
        for members in self.groups:
            for chunk in np.array_split(members, max(1, len(members) // CHUNK + 1)):
                self._price_group(chunk, w[chunk], value, found, floor)
        return value, found

    def _price_group(self, group: np.ndarray, w: np.ndarray, value: np.ndarray,
                     found: list[Team], floor: np.ndarray | None) -> None:
        kept = self.kept_rows(group, w)
        order = np.argsort(~kept, axis=1, kind="stable")
        width = max(1, int(kept.sum(axis=1).max(initial=0)))
        order = order[:, :width]
        w = np.where(np.take_along_axis(kept, order, 1), np.take_along_axis(w, order, 1), NONE)
        mask = np.take_along_axis(self.mask[group], order, 1)
        give = np.take_along_axis(self.give[group], order, 1)
        s, k, need = int(self.bits[group[0]]), int(self.k[group[0]]), int(self.need[group[0]])
        stages = _recursion(w, mask, give, s, k, need)
        final = stages[-1][:, (1 << s) - 1, 1:, need] + self.cost[group, None]
        value[group] = final.max(axis=1)
        if floor is None:
            return
        rows = np.take_along_axis(self.rows[group], order, 1)
        for n, size in zip(*np.nonzero(final > floor[group, None]), strict=True):
            picked = _trace(stages, w[n], mask[n], give[n], n, int(size) + 1, s, need)
            found.append(Team(int(self.demands[group[n]]), rows[n, picked].tolist(),
                              float(final[n, size])))

    def kept_rows(self, group: np.ndarray, w: np.ndarray) -> np.ndarray:
        index = np.arange(w.shape[1])
        better = (w[:, None, :] > w[:, :, None]) | (
            (w[:, None, :] == w[:, :, None]) & (index[None, None, :] < index[None, :, None]))
        dominated = (self.covers[group] & better).sum(axis=2) >= self.k[group, None]
        return (self.rows[group] >= 0) & ~dominated


def _required_bits(model: Model, demands: np.ndarray) -> np.ndarray:
    """Per demand, the indexes of its first SKILL_BITS required skills, −1 padded."""
    p = model.problem
    bits = np.unpackbits(p.d_skills[demands].view(np.uint8), axis=1, bitorder="little")
    out = np.full((len(demands), SKILL_BITS), -1, np.int64)
    owner, skill = np.nonzero(bits)
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner)
    keep = rank < SKILL_BITS
    out[owner[keep], rank[keep]] = skill[keep]
    return out


def _groups(bits: np.ndarray, k: np.ndarray, need: np.ndarray) -> list[np.ndarray]:
    """Demands whose recursion states have the same shape."""
    key = (bits * 64 + k) * (QUANTITY_CAP + 1) + need
    order = np.argsort(key, kind="stable")
    cuts = np.flatnonzero(np.diff(key[order])) + 1
    return [g for g in np.split(order, cuts) if len(g)]


def _recursion(w: np.ndarray, mask: np.ndarray, give: np.ndarray, s: int, k: int,
               need: int) -> list[np.ndarray]:
    """Best priced value per state (skills covered, members, quantity), after each candidate.

    Stage j is an array (demands, 2**s, k + 1, need + 1); −inf marks an unreachable state."""
    n, width = w.shape
    value = np.full((n, 1 << s, k + 1, need + 1), NONE)
    value[:, 0, 0, 0] = 0.0
    stages = [value]
    full = np.arange(1 << s)
    for j in range(width):
        live = w[:, j] > NONE
        if not live.any():
            stages.append(value)
            continue
        # with this candidate: first the best state each skill set can come from ...
        came = value.copy()
        for b in range(s):
            has = ((mask[:, j] >> b) & 1).astype(bool)
            view = came.reshape(n, 1 << (s - b - 1), 2, 1 << b, k + 1, need + 1)
            np.maximum(view[:, :, 1], view[:, :, 0], out=view[:, :, 1],
                       where=has[:, None, None, None, None])
        reach = (full[None, :] & mask[:, j, None]) == mask[:, j, None]
        came[~reach] = NONE
        # ... then one member more and its share more (capped at the need)
        shifted = np.full_like(came, NONE)
        for g in np.unique(give[live, j]).tolist():
            sel = np.flatnonzero(live & (give[:, j] == g))
            part = came[sel]
            moved = np.full_like(part, NONE)
            if g < need:
                moved[..., g:need] = part[..., :need - g]
            moved[..., need] = part[..., max(need - g, 0):].max(axis=-1)
            shifted[sel] = moved
        after = value.copy()
        np.maximum(after[:, :, 1:], shifted[:, :, :-1] + w[:, j, None, None, None],
                   out=after[:, :, 1:])
        value = after
        stages.append(value)
    return stages


def _trace(stages, w, mask, give, n: int, size: int, s: int, need: int) -> list[int]:
    """The candidates (columns) of the best team of `size` members of demand n, read back."""
    m, c, q = (1 << s) - 1, size, need
    picked = []
    for j in range(len(stages) - 2, -1, -1):
        here = stages[j + 1][n, m, c, q]
        if here == stages[j][n, m, c, q]:
            continue
        mj, g = int(mask[j]), int(give[j])
        sources = range(max(need - g, 0), need + 1) if q == need else [q - g]
        found = None
        sub = mj & m
        while found is None:
            prev = (m & ~mj) | sub
            for q0 in sources:
                if q0 >= 0 and stages[j][n, prev, c - 1, q0] + w[j] == here:
                    found = (prev, q0)
                    break
            if sub == 0:
                break
            sub = (sub - 1) & (mj & m)
        if found is None:  # cannot happen: every value came from some state
            raise AssertionError("pricing could not read its team back")
        picked.append(j)
        m, c, q = found[0], c - 1, found[1]
    return picked[::-1]
