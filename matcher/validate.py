"""Check any answer against the problem, without a solver: every hard rule, every capacity and
quantity, team sizes and skills, no exclusive resource booked twice at the same time, pinned pairs
kept. Returns the broken rules in plain words; an empty list means the answer is valid.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from matcher.candidates import hard_rules, in_area
from matcher.greedy import skill_bits as _skills
from matcher.problem import Problem, clashing


def validate(problem: Problem, assignments: list[dict], mode: str | None = None) -> list[str]:
    """The rules the assignments break (records with demand, resource, quantity, role)."""
    p, mode = problem, mode or problem.mode
    d_of = {v: i for i, v in enumerate(p.d_id.tolist())}
    r_of = {v: i for i, v in enumerate(p.r_id.tolist())}
    errors: list[str] = []
    pairs = []
    for a in assignments:
        if a["demand"] not in d_of or a["resource"] not in r_of:
            errors.append(f"unknown pair {a['demand']!r} / {a['resource']!r}")
            continue
        pairs.append((d_of[a["demand"]], r_of[a["resource"]], int(a["quantity"]),
                      a.get("role") == "lead"))
    if not pairs:
        return errors + _pinned_kept(p, set())
    d = np.array([x[0] for x in pairs], np.int64)
    r = np.array([x[1] for x in pairs], np.int64)
    q = np.array([x[2] for x in pairs], np.int64)
    ok = hard_rules(p, d, r) & in_area(p, d, r)
    for i in np.flatnonzero(~ok).tolist():
        errors.append(f"pair {p.d_id[d[i]]!r} / {p.r_id[r[i]]!r} breaks a hard rule "
                      "(category, place, time, capacity, forbidden or already held)")
    for i in np.flatnonzero((q < 1) | (q > p.r_share[r])).tolist():
        errors.append(f"pair {p.d_id[d[i]]!r} / {p.r_id[r[i]]!r}: share {q[i]} is not within "
                      f"1..{p.r_share[r[i]]}")
    errors += _demands(p, pairs, mode)
    errors += _resources(p, pairs)
    return errors + _pinned_kept(p, {(x[0], x[1]) for x in pairs})


def _demands(p: Problem, pairs, mode: str) -> list[str]:
    errors = []
    members = defaultdict(list)
    for d, r, q, lead in pairs:
        members[d].append((r, q, lead))
    locked = defaultdict(list)
    for d, r, lead in zip(p.locked_d.tolist(), p.locked_r.tolist(), p.locked_lead.tolist(),
                          strict=True):
        locked[d].append((r, lead))
    for d, team in members.items():
        name = repr(p.d_id[d])
        held = locked.get(d, [])
        units = [int(p.r_unit[r]) for r, _, _ in team] + [int(p.r_unit[r]) for r, _ in held]
        if len(set(units)) != len(units):
            errors.append(f"demand {name}: a unit holds two shares")
        if sum(q for _, q, _ in team) != p.d_quantity[d]:
            errors.append(f"demand {name}: shares add up to {sum(q for _, q, _ in team)}, "
                          f"not {p.d_quantity[d]}")
        one_unit = mode == "1+1" or p.d_team[d] == 0
        if len(team) + len(held) > (1 if one_unit else p.d_max_team[d]) and team:
            errors.append(f"demand {name}: {len(team) + len(held)} units, more than allowed")
        brought = 0
        for r in [r for r, _, _ in team] + [r for r, _ in held]:
            brought |= _skills(p.r_skills[r])
        if _skills(p.d_skills[d]) & ~brought:
            errors.append(f"demand {name}: a required skill is missing from the team")
        leads = sum(lead for _, _, lead in team) + sum(lead for _, lead in held)
        if leads != 1:
            errors.append(f"demand {name}: {leads} leads, not one")
    return errors


def _resources(p: Problem, pairs) -> list[str]:
    errors = []
    booked = defaultdict(list)
    for d, r, q, _ in pairs:
        booked[r].append((d, q))
    for r, uses in booked.items():
        name = repr(p.r_id[r])
        if len(uses) > p.r_capacity[r]:
            errors.append(f"resource {name}: {len(uses)} demands, capacity {p.r_capacity[r]}")
        if sum(q for _, q in uses) > p.r_quantity[r]:
            errors.append(f"resource {name}: gives {sum(q for _, q in uses)}, "
                          f"has {p.r_quantity[r]}")
        if p.r_exclusive[r]:
            ds = [d for d, _ in uses]
            if any(clashing(p, a, b) for i, a in enumerate(ds) for b in ds[i + 1:]):
                errors.append(f"resource {name}: booked twice at the same time")
    return errors


def _pinned_kept(p: Problem, chosen: set) -> list[str]:
    return [f"pinned pair {p.d_id[d]!r} / {p.r_id[r]!r} is missing"
            for d, r in zip(p.pinned_d.tolist(), p.pinned_r.tolist(), strict=True)
            if (d, r) not in chosen]
