"""Best-score-first: the greedy baseline (what first-come self-claiming achieves at best), and
the team builder that the greedy and the LP rounding share.
"""

from __future__ import annotations

import numpy as np

from matcher.model import Model, covers
from matcher.problem import ProblemError, clashing


class Residual:
    """What each resource has left while a solution is built: demands, quantity, booked windows."""

    def __init__(self, model: Model):
        p = model.problem
        self.model = model
        self.capacity = p.r_capacity.copy()
        self.quantity = p.r_quantity.copy()
        self.booked: dict[int, list[int]] = {}

    def can_take(self, row: int) -> bool:
        p, c = self.model.problem, self.model.cands
        r, d = int(c.r[row]), int(c.d[row])
        if self.capacity[r] < 1 or self.quantity[r] < 1:
            return False
        if p.r_exclusive[r]:
            return not any(clashing(p, d, other) for other in self.booked.get(r, ()))
        return True

    def book(self, rows: list[int], alloc: list[int]) -> None:
        p, c = self.model.problem, self.model.cands
        for row, q in zip(rows, alloc, strict=True):
            r, d = int(c.r[row]), int(c.d[row])
            self.capacity[r] -= 1
            self.quantity[r] -= q
            if p.r_exclusive[r]:
                self.booked.setdefault(r, []).append(d)


def skill_bits(words: np.ndarray) -> int:
    """A row of 64-bit skill words as one Python int (any number of skills)."""
    return sum(int(w) << (64 * i) for i, w in enumerate(words))


def allocate(model: Model, d: int, rows: list[int], residual: Residual) -> list[int] | None:
    """Split the demand's quantity over members: one each, then the rest in order of `rows`."""
    need = int(model.problem.d_quantity[d])
    limits = [int(min(model.cands.give[row], residual.quantity[model.cands.r[row]]))
              for row in rows]
    if len(rows) > need or any(limit < 1 for limit in limits) or sum(limits) < need:
        return None
    alloc = [1] * len(rows)
    rest = need - len(rows)
    for i, limit in enumerate(limits):
        more = min(limit - 1, rest)
        alloc[i] += more
        rest -= more
    return alloc


def build_team(model: Model, d: int, order: list[int], residual: Residual, *,
               prune: bool = False, keep: frozenset = frozenset(), must: tuple = ()):
    """Members for demand d, taken in `order`: each must add a missing skill or missing quantity.

    With `prune`, members the team can do without are dropped again, weakest first (never those
    in `keep`). Returns (rows, alloc), or None when the demand cannot be covered within its team
    size.
    """
    p, c = model.problem, model.cands
    missing = skill_bits(p.d_skills[d])
    short = int(p.d_quantity[d])
    units: set[int] = set()
    chosen: list[int] = []
    for row in must:  # pinned members come in whatever they bring
        if not residual.can_take(row) or int(p.r_unit[c.r[row]]) in units:
            return None
        chosen.append(row)
        units.add(int(p.r_unit[c.r[row]]))
        missing &= ~skill_bits(p.r_skills[c.r[row]])
        short -= int(min(c.give[row], residual.quantity[c.r[row]]))
    if len(chosen) > model.k[d]:
        return None
    for row in order:
        if not missing and short <= 0:
            break
        if len(chosen) >= model.k[d]:
            return None  # not covered, and no room for anyone else
        if row in must:
            continue
        unit = int(p.r_unit[c.r[row]])
        if unit in units or not residual.can_take(row):
            continue
        brings = skill_bits(p.r_skills[c.r[row]])
        give = int(min(c.give[row], residual.quantity[c.r[row]]))
        if not (missing & brings) and short <= 0:
            continue
        if not (missing & brings) and missing and len(chosen) + 1 >= model.k[d]:
            continue  # the last place must go to someone who brings a missing skill
        chosen.append(row)
        units.add(unit)
        missing &= ~brings
        short -= give
    if missing or short > 0:
        return None
    if prune:
        chosen = _pruned(model, d, chosen, residual, keep)
    alloc = allocate(model, d, chosen, residual)
    return None if alloc is None else (chosen, alloc)


def _pruned(model: Model, d: int, chosen: list[int], residual: Residual, keep) -> list[int]:
    c = model.cands
    for row in sorted(chosen, key=lambda row: (c.score[row], row)):
        if row in keep or len(chosen) == 1:
            continue
        rest = [x for x in chosen if x != row]
        limited = [min(int(c.give[x]), int(residual.quantity[c.r[x]])) for x in rest]
        if covers(model, d, rest) and sum(limited) >= model.problem.d_quantity[d]:
            chosen = rest
    return chosen


def greedy(model: Model) -> tuple[list[int], list[int]]:
    """Best-score-first over all candidate pairs; a team demand is tried once, at its best pair."""
    c = model.cands
    residual = Residual(model)
    rows_out: list[int] = []
    alloc_out: list[int] = []
    done = np.zeros(model.problem.n_demands, bool)
    _take_pinned(model, residual, done, rows_out, alloc_out)
    order = np.lexsort((c.r, c.d, -c.score))
    for row in order.tolist():
        d = int(c.d[row])
        if done[d]:
            continue
        if not model.team[d]:
            if residual.can_take(row) and residual.quantity[c.r[row]] >= model.problem.d_quantity[d]:
                done[d] = True
                residual.book([row], [int(model.problem.d_quantity[d])])
                rows_out.append(row)
                alloc_out.append(int(model.problem.d_quantity[d]))
            continue
        done[d] = True
        mine = np.arange(model.start[d], model.start[d + 1])
        team = build_team(model, d, mine[np.lexsort((c.r[mine], -c.score[mine]))].tolist(),
                          residual)
        if team:
            residual.book(*team)
            rows_out.extend(team[0])
            alloc_out.extend(team[1])
    return rows_out, alloc_out


def _take_pinned(model: Model, residual: Residual, done: np.ndarray, rows_out: list[int],
                 alloc_out: list[int]) -> None:
    """Pinned pairs go first: their demands are built around them."""
    c = model.cands
    for d in np.unique(c.d[model.pinned_rows]).tolist():
        pinned = [int(r) for r in model.pinned_rows if c.d[r] == d]
        mine = np.arange(model.start[d], model.start[d + 1])
        rest = [int(r) for r in mine[np.lexsort((c.r[mine], -c.score[mine]))] if r not in pinned]
        team = build_team(model, d, rest, residual, must=tuple(pinned))
        done[d] = True
        if team is None:
            raise ProblemError(f"the pinned pairs of demand {model.problem.d_id[d]!r} cannot be "
                               "kept: they exceed a capacity or cannot complete the team")
        residual.book(*team)
        rows_out.extend(team[0])
        alloc_out.extend(team[1])
