"""The pricing problem of column generation: for every team demand, its best team when each
resource charges a price.

A team of demand d is worth `cost_d + Σ (score_i − cost_d)` over its members i, where `cost_d` is
the demand's member cost (model.member_cost): the demand's own terms count once, and every member
after the first pays `helper`. With prices, each member also pays its resource's price, so the
weight of a member is `w_i = score_i − cost_d − price_i` and a team is worth `cost_d + Σ w_i`.

The best team is found exactly by dynamic programming over the demand's candidates, one
candidate at a time. A state is (members so far, required skills T, quantity q), and its value is
the best weight of a set of the candidates seen so far with that many members whose skills
include T and whose shares reach at least q. With these "at least" meanings, adding a candidate
with skills m and share g moves state (c, T, q) to (c + 1, T ∪ m, q + g) and is read backwards as
one lookup: (c + 1, T, q) comes from (c, T \\ m, max(q − g, 0)). So each step is a single gather
over all states of all demands at once (NumPy `take_along_axis`), and a team is read back by
following, for each candidate, whether it was taken. The answer of a demand is the state (size,
all its skills, its quantity).

Demands go through the recursion in chunks of one shape (required skills tracked; team size ×
quantity within a factor of four, padded to the largest), sorted by how many candidates they
keep, so that step j only touches the demands with more than j candidates.

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
STATES = 1_500_000  # states priced together at most (memory: 9 bytes a state, each step 1)
SPREAD = 4          # a chunk's demands differ in states at most by this factor


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
        self.chunks = _chunks(self.bits, self.k, self.need)

    def weights(self, price: np.ndarray) -> np.ndarray:
        """w per (demand, column): score − member cost − the resource's price; −inf for padding."""
        c = self.model.cands
        safe = np.maximum(self.rows, 0)
        w = c.score[safe] - self.cost[:, None] - price[c.r[safe]]
        return np.where(self.rows >= 0, w, NONE)

    def best(self, price: np.ndarray, floor: np.ndarray | None = None, *,
             best_only: bool = False) -> tuple[np.ndarray, list[Team]]:
        """Per demand (local index), the best team value under `price` (−inf when no team
        covers it), and the best team of each size worth more than the demand's `floor`, as
        `Team` records (no teams without a floor; with `best_only`, only each demand's best)."""
        w = self.weights(price)
        value = np.full(len(self.demands), NONE)
        found: list[Team] = []
        for chunk in self.chunks:
            self._price_chunk(chunk, w[chunk], value, found, floor, best_only)
        return value, found

    def _price_chunk(self, group: np.ndarray, w: np.ndarray, value: np.ndarray,
                     found: list[Team], floor: np.ndarray | None, best_only: bool) -> None:
        kept = self.kept_rows(group, w)
        count = kept.sum(axis=1)
        by_count = np.argsort(-count, kind="stable")
        group, w, kept, count = group[by_count], w[by_count], kept[by_count], count[by_count]
        width = max(1, int(count[0]))
        order = np.argsort(~kept, axis=1, kind="stable")[:, :width]
        w = np.take_along_axis(w, order, 1)
        mask = np.take_along_axis(self.mask[group], order, 1)
        give = np.take_along_axis(self.give[group], order, 1)
        shape = _Shape(int(self.bits[group[0]]), int(self.k[group].max()),
                       int(self.need[group].max()) + 1)
        # step j touches only the demands with more than j candidates (a prefix)
        live = np.searchsorted(-count, -np.arange(width), side="right")
        val, taken = _recursion(w, mask, give, live, shape)
        full = shape.index((1 << shape.s) - 1, self.need[group])
        final = val[1:, np.arange(len(group)), full].T + self.cost[group, None]
        final[np.arange(1, shape.k + 1)[None, :] > self.k[group, None]] = NONE
        value[group] = final.max(axis=1)
        if floor is None:
            return
        wanted = final > floor[group, None]
        if best_only:
            wanted &= final == value[group, None]
            wanted &= np.cumsum(wanted, axis=1) == 1  # the smallest of equally good teams
        n, size = np.nonzero(wanted)
        if len(n):
            picked = _trace(taken, mask, give, live, shape, n, size + 1, full[n])
            rows = np.take_along_axis(self.rows[group], order, 1)
            found.extend(self._teams(group[n], rows[n], picked, final[n, size]))

    def _teams(self, local: np.ndarray, rows: np.ndarray, picked: np.ndarray,
               value: np.ndarray) -> list[Team]:
        """Team records: demand (local index) i made of rows[i] where picked[i]."""
        at, j = np.nonzero(picked)
        members = np.split(rows[at, j], np.cumsum(picked.sum(axis=1))[:-1])
        return [Team(d, m.tolist(), v) for d, m, v in zip(
            self.demands[local].tolist(), members, value.tolist(), strict=True)]

    def kept_rows(self, group: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Per (demand, column) of `group`, whether the candidate is kept (not dominated)."""
        width = max(1, int((self.rows[group] >= 0).sum(axis=1).max(initial=0)))
        # rank by weight, ties by column: one comparison of ranks says who weighs more
        rank = np.empty((len(group), width), np.int64)
        np.put_along_axis(rank, np.argsort(-w[:, :width], axis=1, kind="stable"),
                          np.arange(width)[None, :], axis=1)
        better = rank[:, None, :] < rank[:, :, None]
        better &= self.covers[group, :width, :width]
        dominated = np.count_nonzero(better, axis=2) >= self.k[group, None]
        kept = np.zeros(self.rows[group].shape, bool)
        kept[:, :width] = (self.rows[group, :width] >= 0) & ~dominated
        return kept


@dataclass
class _Shape:
    """The states of a chunk: members 0..k, skill sets of s bits, quantities 0..q−1."""

    s: int
    k: int
    q: int

    @property
    def width(self) -> int:
        return (1 << self.s) * self.q

    def index(self, skills, quantity):
        return skills * self.q + quantity


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


def _chunks(bits: np.ndarray, k: np.ndarray, need: np.ndarray) -> list[np.ndarray]:
    """Demands priced together: the same skills tracked, team size × quantity within a factor
    `SPREAD` (each chunk is padded to its largest), at most STATES states. Fewer, larger chunks
    cost less in NumPy calls than they waste in padding."""
    size = (k + 1) * (need + 1)
    order = np.lexsort((size, bits))
    out: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order) + 1):
        if end < len(order) and bits[order[end]] == bits[order[start]] and (
                size[order[end]] <= SPREAD * size[order[start]]) and (
                (end + 1 - start) * (int(size[order[end]]) << int(bits[order[end]])) <= STATES):
            continue
        out.append(order[start:end])
        start = end
    return out


def _recursion(w: np.ndarray, mask: np.ndarray, give: np.ndarray, live: np.ndarray,
               shape: _Shape) -> tuple[np.ndarray, list[np.ndarray]]:
    """Best weight per state (members 0..k, demands, skills × quantity), and per candidate j
    whether it was taken into each state with at least one member (for the first live[j]
    demands).

    Members come first in the layout so that each step is, per member count, one flat gather of
    contiguous rows (three times faster than `take_along_axis` over all counts at once)."""
    n = len(w)
    val = np.full((shape.k + 1, n, shape.width), NONE)
    val[0, :, 0] = 0.0
    # where each state comes from, for every (skills, share) a candidate may bring
    skills = np.arange(1 << shape.s)
    brings = skills[:, None, None, None]
    share = np.arange(shape.q)[None, :, None, None]
    source = shape.index(skills[None, None, :, None] & ~brings,
                         np.maximum(np.arange(shape.q)[None, None, None, :] - share, 0))
    source = source.reshape((1 << shape.s) * shape.q, shape.width)
    row = np.arange(n)[:, None] * shape.width
    taken = []
    for j in range(w.shape[1]):
        m = int(live[j])
        came = source[mask[:m, j] * shape.q + give[:m, j]] + row[:m]
        better = np.empty((shape.k, m, shape.width), bool)
        # from the most members down, so that each count still reads the previous step; after
        # j candidates no state has more than j members
        better[min(j + 1, shape.k):] = False
        for c in range(min(j, shape.k - 1), -1, -1):
            with_j = np.take(val[c, :m].reshape(-1), came)
            with_j += w[:m, j, None]
            np.greater(with_j, val[c + 1, :m], out=better[c])
            np.maximum(val[c + 1, :m], with_j, out=val[c + 1, :m])
        taken.append(better)
    return val, taken


def _trace(taken, mask, give, live, shape: _Shape, n: np.ndarray, size: np.ndarray,
           state: np.ndarray) -> np.ndarray:
    """Which candidates (columns) make up the best team of `size` members of each demand n,
    read back from the last candidate to the first."""
    picked = np.zeros((len(n), len(taken)), bool)
    size, state = size.copy(), state.copy()
    for j in range(len(taken) - 1, -1, -1):
        here = np.flatnonzero((size > 0) & (n < live[j]))
        here = here[taken[j][size[here] - 1, n[here], state[here]]]
        if not len(here):
            continue
        picked[here, j] = True
        skills, quantity = np.divmod(state[here], shape.q)
        state[here] = shape.index(skills & ~mask[n[here], j],
                                  np.maximum(quantity - give[n[here], j], 0))
        size[here] -= 1
    return picked
