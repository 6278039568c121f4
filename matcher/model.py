"""The prepared model every solver shares: which demands take one unit or a team, their
candidates grouped by demand, residual skills after locked pairs, and the objective.

The objective: a one-unit pairing is worth its pair score. A team is worth the demand's own terms
(serve, urgency, waiting) once, every member's pair terms (skill, distance, pairing, rating,
fairness), less `helper` for each member after the first. See docs/matching.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from matcher.candidates import Candidates, generate
from matcher.problem import Problem, ProblemError


@dataclass
class Model:
    problem: Problem
    cands: Candidates            # only the rows usable under the mode
    team: np.ndarray             # bool per demand: may be served by several units
    k: np.ndarray                # most members per demand (team size, capped by quantity)
    start: np.ndarray            # CSR: candidates of demand i are rows start[i]:start[i+1]
    pinned_rows: np.ndarray      # candidate rows that must be chosen

    @property
    def member_cost(self) -> np.ndarray:
        """Per demand, what each member after the first costs: its demand terms count once."""
        p, w = self.problem, self.problem.weights
        return (w.serve + w.helper + w.urgency * p.d_urgency
                + w.waiting * np.minimum(p.d_waited, w.waiting_cap_days))


def _without_locked_skills(p: Problem) -> Problem:
    """Skills a locked member already brings are no longer required; its unit counts toward k."""
    if not len(p.locked_d):
        return p
    skills = p.d_skills.copy()
    np.bitwise_and.at(skills, p.locked_d, ~p.r_skills[p.locked_r])
    held = np.bincount(p.locked_d, minlength=p.n_demands)
    return replace(p, d_skills=skills, d_max_team=np.maximum(p.d_max_team - held, 0))


def prepare(problem: Problem, mode: str | None = None) -> Model:
    """Generate candidates and decide, per demand, between one unit and a team."""
    mode = mode or problem.mode
    p = _without_locked_skills(problem)
    cands = generate(p)
    has_alone = np.zeros(p.n_demands, bool)
    has_alone[cands.d[cands.alone]] = True
    if mode == "1+1":
        team = np.zeros(p.n_demands, bool)
    elif mode == "1+N":
        team = p.d_team != 0
    else:
        has_any = np.zeros(p.n_demands, bool)
        has_any[cands.d] = True
        team = np.where(p.d_team < 0, has_any & ~has_alone, p.d_team > 0)
    team &= np.minimum(p.d_max_team, p.d_quantity) > 1  # one place: one unit, whatever the mode
    k = np.where(team, np.minimum(p.d_max_team, p.d_quantity), np.minimum(p.d_max_team, 1))
    # one unit only (mode 1+1 or team false): a demand someone already holds takes nobody else
    held = np.bincount(problem.locked_d, minlength=p.n_demands) > 0
    k[held & ((mode == "1+1") | (p.d_team == 0))] = 0
    usable = (team[cands.d] | cands.alone) & (k[cands.d] > 0)
    if not usable.all():  # copying a million rows for nothing costs a tenth of a second
        cands = cands.take(usable)
    start = np.searchsorted(cands.d, np.arange(p.n_demands + 1))
    rows = _pinned_rows(p, cands)
    return Model(p, cands, team, k, start, rows)


def _pinned_rows(p: Problem, cands: Candidates) -> np.ndarray:
    if not len(p.pinned_d):
        return np.zeros(0, np.int64)
    keys = cands.d * max(1, p.n_resources) + cands.r
    wanted = p.pinned_d * max(1, p.n_resources) + p.pinned_r
    pos = np.searchsorted(keys, wanted)
    found = np.zeros(len(wanted), bool)
    if len(keys):
        found = (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == wanted)
    if not found.all():
        bad = [(p.d_id[d], p.r_id[r]) for d, r in zip(p.pinned_d[~found], p.pinned_r[~found],
                                                       strict=True)]
        raise ProblemError(f"pinned pairs break a hard rule: {bad}")
    return pos


def objective_of(model: Model, rows: np.ndarray) -> int:
    """The objective of a choice of candidate rows (the members of served demands)."""
    rows = np.asarray(rows, np.int64)
    if not len(rows):
        return 0
    d = model.cands.d[rows]
    members = np.bincount(d, minlength=model.problem.n_demands)
    extra = np.maximum(members - 1, 0)
    return int(model.cands.score[rows].sum() - (model.member_cost * extra).sum())


def covers(model: Model, d: int, rows) -> bool:
    """Whether members `rows` of demand d bring its skills and quantity, within its team size."""
    p, c = model.problem, model.cands
    rows = list(rows)
    if not rows or len(rows) > model.k[d]:
        return False
    brought = np.bitwise_or.reduce(p.r_skills[c.r[rows]], axis=0)
    return bool(((p.d_skills[d] & ~brought) == 0).all()) and int(c.give[rows].sum()) >= \
        p.d_quantity[d]


