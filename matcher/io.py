"""The result format of `linli match solve` (docs/matching.md): plain JSON-ready values."""

from __future__ import annotations

from matcher.candidates import TERMS
from matcher.solve import Result


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def result_json(result: Result, *, with_candidates: bool = False) -> dict:
    """The summary, the assignments and (optionally) every candidate pair with its score
    (`candidate_pairs`; `candidates` is their count)."""
    out = {**result.summary(),
           "assignments": [{k: _plain(v) for k, v in a.items()} for a in result.assignments()]}
    if with_candidates:
        p, c = result.model.problem, result.model.cands
        out["candidate_pairs"] = [
            {"demand": _plain(p.d_id[d]), "resource": _plain(p.r_id[r]), "score": int(s),
             "alone": bool(alone), "terms": dict(zip(TERMS, map(int, t), strict=True))}
            for d, r, s, alone, t in zip(c.d.tolist(), c.r.tolist(), c.score.tolist(),
                                         c.alone.tolist(), c.terms.tolist(), strict=True)]
    return out
