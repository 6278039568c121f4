"""Shared helpers for the optimiser's tests: record builders, random tiny instances and a brute
force that finds the optimum by enumerating every assignment.

The brute force works on the plain records (the format of `build_problem`), not on the engine's
arrays: it re-derives candidates, scores, teams and the objective from the rules as documented,
so that it checks the engine rather than repeating it.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from matcher.problem import Weights

CENTRE = (26.66, 119.52)
LEVELS = {"normal": 0, "urgent": 1, "critical": 2}
SHANGHAI_OFFSET = timedelta(hours=8)


# ---- record builders ---------------------------------------------------------------------------

def demand(id_: str, **fields_) -> dict:
    """A demand record: category "help" in community "A", one place, unless told otherwise."""
    return {"id": id_, "category": "help", "community": "A", "quantity": 1, **fields_}


def resource(id_: str, unit: str | None = None, **fields_) -> dict:
    """A resource record of its own unit, serving community "A", one place, unless told so."""
    record = {"id": id_, "unit": unit or f"unit-{id_}", "category": "help", "communities": ["A"],
              "quantity": 1}
    record.update(fields_)
    return record


def window(day: str, start: str, end: str) -> dict:
    """A demand window on a day, in Asia/Shanghai local time."""
    return {"start": f"{day}T{start}:00+08:00", "end": f"{day}T{end}:00+08:00"}


def offset(lat: float, lng: float, north_m: float = 0.0, east_m: float = 0.0) -> tuple:
    """A point about `north_m` metres north and `east_m` metres east of (lat, lng)."""
    return (lat + north_m / 111_195.0,
            lng + east_m / (111_195.0 * math.cos(math.radians(lat))))


# ---- reference implementation of the rules -----------------------------------------------------

def haversine_m(lat1, lng1, lat2, lng2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2)
    return 2 * 6_371_000.0 * math.asin(math.sqrt(min(1.0, a)))


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _local_midnight(day: str, after: bool) -> datetime:
    start = date.fromisoformat(day) + timedelta(days=1 if after else 0)
    return datetime.combine(start, time(), tzinfo=UTC) - SHANGHAI_OFFSET


def _window(d: dict):
    w = d.get("window") or {}
    if not w.get("start"):
        return None
    start = _instant(w["start"])
    end = _instant(w["end"]) if w.get("end") else start + timedelta(hours=1)
    return start, end


def _hours_touched(start: datetime, end: datetime) -> set[tuple[int, int]] | None:
    """(weekday, hour) in local time of every hour the window touches; None: the whole week."""
    if end - start >= timedelta(days=7):
        return None
    local = (start.astimezone(UTC) + SHANGHAI_OFFSET).replace(tzinfo=None)
    stop = (end.astimezone(UTC) + SHANGHAI_OFFSET).replace(tzinfo=None)
    hour = local.replace(minute=0, second=0, microsecond=0)
    out = {(hour.weekday(), hour.hour)}
    hour += timedelta(hours=1)
    while hour < stop:
        out.add((hour.weekday(), hour.hour))
        hour += timedelta(hours=1)
    return out


def _clock(value: str) -> int:
    h, m = value.split(":")
    return int(h) * 60 + int(m)


def times_fit(d: dict, r: dict) -> bool:
    """The demand's window meets one of the resource's date ranges and one of its weekly slots."""
    span = _window(d)
    if span is None:
        return True
    start, end = span
    availability = r.get("availability") or {}
    ranges = availability.get("date_ranges") or []
    if ranges and not any(_local_midnight(x["start"], False) < end
                          and start < _local_midnight(x["end"], True) for x in ranges):
        return False
    weekly = availability.get("weekly") or []
    touched = _hours_touched(start, end)
    if weekly and touched is not None:
        slots = {(s["weekday"], h) for s in weekly
                 for h in range(_clock(s["start"]) // 60, math.ceil(_clock(s["end"]) / 60))}
        if not touched & slots:
            return False
    return True


def clash(a: dict, b: dict) -> bool:
    """Whether two demands' windows overlap (a demand without a window clashes with nothing)."""
    wa, wb = _window(a), _window(b)
    return wa is not None and wb is not None and wa[0] < wb[1] and wb[0] < wa[1]


def in_area(d: dict, r: dict) -> bool:
    if str(d["community"]) in {str(c) for c in r.get("communities") or []}:
        return True
    if r.get("radius_m") is None or d.get("lat") is None or d.get("lng") is None:
        return False
    return haversine_m(d["lat"], d["lng"], r["lat"], r["lng"]) <= r["radius_m"]


@dataclass
class Reference:
    """Candidates, scores, teams and the optimum of a problem given as records, by enumeration."""

    records: dict
    mode: str | None = None

    def __post_init__(self):
        data = self.records
        self.w = Weights(**(data.get("weights") or {}))
        self.mode = self.mode or data.get("mode", "auto")
        self.demands = data.get("demands") or []
        self.resources = data.get("resources") or []
        units = {u["id"]: u for u in data.get("units") or []}
        self.units = {r["unit"]: units.get(r["unit"], {"id": r["unit"]}) for r in self.resources}
        self.pairings = data.get("pairings") or []
        forbidden = {(p["demand"], p["resource"]) for p in data.get("forbidden") or []}
        unit_of = {r["id"]: r["unit"] for r in self.resources}
        skills_of = {r["id"]: set(r.get("skills") or []) for r in self.resources}
        held_units: dict = {}
        held_skills: dict = {}
        for p in data.get("locked") or []:
            held_units.setdefault(p["demand"], []).append(unit_of[p["resource"]])
            held_skills.setdefault(p["demand"], set()).update(skills_of[p["resource"]])
        self.pinned = {}
        for p in data.get("pinned") or []:
            self.pinned.setdefault(p["demand"], set()).add(p["resource"])
        # what each demand still asks for once its locked members are counted
        self.required = [set(d.get("skills") or []) - held_skills.get(d["id"], set())
                         for d in self.demands]
        self.held = [len(held_units.get(d["id"], [])) for d in self.demands]
        self.max_team = [d.get("max_team", self.w.team_size) - held
                         for d, held in zip(self.demands, self.held, strict=True)]
        # one unit only: the whole run is 1+1, or the demand refuses teams
        self.one_unit = [self.mode == "1+1" or d.get("team") is False for d in self.demands]
        self.cands: list[list[int]] = []
        for i, d in enumerate(self.demands):
            row = []
            for j, r in enumerate(self.resources):
                ok = (str(r["category"]) in (str(d["category"]), "*") and in_area(d, r)
                      and times_fit(d, r)
                      and self.capacity(j) > 0 and min(self.share(j), self.quantity(j)) > 0
                      and (d["id"], r["id"]) not in forbidden
                      and r["unit"] not in held_units.get(d["id"], []))
                if ok and (self.alone(i, j) or min(self.max_team[i], self.need(i)) > 1):
                    row.append(j)
            self.cands.append(row)
        self.team = []
        for i, d in enumerate(self.demands):
            if self.one_unit[i]:
                team = False
            elif self.mode == "1+N":
                team = True
            elif d.get("team") is None:
                team = bool(self.cands[i]) and not any(self.alone(i, j) for j in self.cands[i])
            else:
                team = bool(d["team"])
            self.team.append(team and self.k_of(i, True) > 1)

    # quantities
    def need(self, i: int) -> int:
        return self.demands[i].get("quantity", 1)

    def quantity(self, j: int) -> int:
        return self.resources[j].get("quantity", 1)

    def share(self, j: int) -> int:
        return self.resources[j].get("share", self.quantity(j))

    def capacity(self, j: int) -> int:
        return self.resources[j].get("capacity", self.quantity(j))

    def give(self, i: int, j: int) -> int:
        return min(self.share(j), self.quantity(j), self.need(i))

    def alone(self, i: int, j: int) -> bool:
        skills = set(self.resources[j].get("skills") or [])
        return self.required[i] <= skills and self.give(i, j) >= self.need(i)

    def k_of(self, i: int, team: bool) -> int:
        return min(self.max_team[i], self.need(i) if team else 1)

    # scores
    def terms(self, i: int, j: int) -> dict[str, int]:
        d, r, w = self.demands[i], self.resources[j], self.w
        unit = self.units[r["unit"]]
        required = self.required[i]
        skill = (w.skill if not required
                 else w.skill * len(required & set(r.get("skills") or [])) // len(required))
        distance = 0
        if None not in (d.get("lat"), d.get("lng"), r.get("lat"), r.get("lng")):
            metres = haversine_m(d["lat"], d["lng"], r["lat"], r["lng"])
            scale = w.max_distance_m if r.get("radius_m") is None else max(r["radius_m"], 1.0)
            distance = round(w.distance * min(1.0, max(0.0, 1.0 - metres / scale)))
        pairing = 0
        if any(p["unit"] == r["unit"] and str(p["community"]) == str(d["community"])
               for p in self.pairings):
            pairing += w.pairing
        if d.get("grid") is not None and any(
                p["unit"] == r["unit"] and p.get("grid") is not None
                and str(p["grid"]) == str(d["grid"]) for p in self.pairings):
            pairing += w.grid_pairing
        rating = unit.get("rating")
        return {
            "serve": w.serve, "skill": skill, "distance": distance, "pairing": pairing,
            "urgency": w.urgency * LEVELS[d.get("urgency", "normal")],
            "waiting": w.waiting * min(d.get("waited_days", 0), w.waiting_cap_days),
            "rating": 0 if rating is None else round(w.rating * (rating - 3)),
            "fairness": -w.fairness * min(unit.get("load", 0), w.fairness_cap),
        }

    def score(self, i: int, j: int) -> int:
        return sum(self.terms(i, j).values())

    def member_cost(self, i: int) -> int:
        d, w = self.demands[i], self.w
        return (w.serve + w.helper + w.urgency * LEVELS[d.get("urgency", "normal")]
                + w.waiting * min(d.get("waited_days", 0), w.waiting_cap_days))

    # enumeration
    def options(self, i: int) -> list[tuple[int, tuple[tuple[int, int], ...]]]:
        """Every way to serve demand i: (value, ((resource, share), ...))."""
        out = []
        need = self.need(i)
        if not self.team[i]:
            if self.one_unit[i] and self.held[i]:
                return []  # its one unit already holds a share
            for j in self.cands[i]:
                if self.alone(i, j) and self.k_of(i, False) >= 1:
                    out.append((self.score(i, j), ((j, need),)))
        else:
            k = self.k_of(i, True)
            for size in range(1, k + 1):
                for members in itertools.combinations(self.cands[i], size):
                    units = [self.resources[j]["unit"] for j in members]
                    if len(set(units)) < size:
                        continue
                    brought = set().union(*(set(self.resources[j].get("skills") or [])
                                            for j in members))
                    if not self.required[i] <= brought:
                        continue
                    value = (sum(self.score(i, j) for j in members)
                             - (size - 1) * self.member_cost(i))
                    ranges = [range(1, self.give(i, j) + 1) for j in members]
                    for shares in itertools.product(*ranges):
                        if sum(shares) == need:
                            out.append((value, tuple(zip(members, shares, strict=True))))
        pins = self.pinned.get(self.demands[i]["id"], set())
        return [o for o in out if pins <= {self.resources[j]["id"] for j, _ in o[1]}]

    def optimum(self) -> int | None:
        """The best objective over every valid assignment; None when the pins cannot be kept."""
        n = len(self.demands)
        options = [self.options(i) for i in range(n)]
        must = [bool(self.pinned.get(d["id"])) for d in self.demands]
        memo: dict = {}

        def best(i: int, caps: tuple, qtys: tuple, booked: tuple) -> float:
            if i == n:
                return 0
            key = (i, caps, qtys, booked)
            if key in memo:
                return memo[key]
            value = -math.inf if must[i] else best(i + 1, caps, qtys, booked)
            for worth, members in options[i]:
                c, q, b = list(caps), list(qtys), list(booked)
                ok = True
                for j, share in members:
                    if c[j] < 1 or q[j] < share:
                        ok = False
                        break
                    if self.resources[j].get("exclusive"):
                        if any(clash(self.demands[i], self.demands[o]) for o in b[j]):
                            ok = False
                            break
                        b[j] = b[j] | {i}
                    c[j] -= 1
                    q[j] -= share
                if ok:
                    value = max(value, worth + best(i + 1, tuple(c), tuple(q), tuple(b)))
            memo[key] = value
            return value

        m = len(self.resources)
        value = best(0, tuple(self.capacity(j) for j in range(m)),
                     tuple(self.quantity(j) for j in range(m)),
                     tuple(frozenset() for _ in range(m)))
        return None if value == -math.inf else int(value)

    def objective(self, assignments: list[dict]) -> int:
        """The objective of solver output, recomputed from the records."""
        d_of = {d["id"]: i for i, d in enumerate(self.demands)}
        r_of = {r["id"]: j for j, r in enumerate(self.resources)}
        members: dict = {}
        for a in assignments:
            members.setdefault(d_of[a["demand"]], []).append(r_of[a["resource"]])
        return sum(sum(self.score(i, j) for j in js) - (len(js) - 1) * self.member_cost(i)
                   for i, js in members.items())


def brute_force(records: dict, mode: str | None = None) -> int | None:
    return Reference(records, mode).optimum()


# ---- random tiny instances ---------------------------------------------------------------------

class PyPick:
    """Random choices from a seeded `random.Random`."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, seq):
        return seq[self.rng.randrange(len(seq))]


class DrawPick:
    """The same choices drawn by Hypothesis (so that failures shrink)."""

    _strategies: dict = {}

    def __init__(self, draw):
        self.draw = draw

    def int(self, lo: int, hi: int) -> int:
        strategy = self._strategies.get((lo, hi))
        if strategy is None:
            from hypothesis import strategies as st

            strategy = self._strategies[lo, hi] = st.integers(lo, hi)
        return self.draw(strategy)

    def choice(self, seq):
        return seq[self.int(0, len(seq) - 1)]


WINDOWS = [
    None,
    None,
    window("2026-11-21", "09:00", "10:00"),   # Saturday
    window("2026-11-21", "09:30", "11:00"),   # Saturday, overlaps the one before
    window("2026-11-21", "14:00", "15:00"),   # Saturday afternoon
    window("2026-11-23", "09:00", "10:00"),   # Monday
]
AVAILABILITY = [
    None,
    None,
    None,
    {"date_ranges": [{"start": "2026-11-21", "end": "2026-11-21"}]},
    {"date_ranges": [{"start": "2026-11-22", "end": "2026-11-30"}]},
    {"weekly": [{"weekday": 5, "start": "08:00", "end": "12:00"}]},
    {"date_ranges": [{"start": "2026-11-20", "end": "2026-11-25"}],
     "weekly": [{"weekday": 0, "start": "09:00", "end": "10:00"},
                {"weekday": 5, "start": "14:00", "end": "16:00"}]},
]
SKILLS = ["s0", "s1", "s2"]
COMMUNITIES = ["c0", "c1"]


# Every choice below is drawn so that its smallest value is the plainest one (no item, no
# feature, the first option): Hypothesis shrinks a failing example towards small values.

def _subset(pick, items, chance: float, most: int) -> list:
    """Each item with about this chance, at most `most` of them."""
    out = [x for x in items if pick.int(0, 11) >= 12 * (1 - chance)]
    return out[:most]


def _rare(pick, one_in: int) -> bool:
    return pick.int(0, one_in - 1) == one_in - 1


def _point(pick) -> tuple[float, float]:
    return offset(*CENTRE, pick.int(-1500, 1500), pick.int(-1500, 1500))


def random_records(pick, *, max_demands: int = 6, max_resources: int = 6,
                   kind: str = "mixed") -> dict:
    """A tiny random problem as records.

    kind "mixed": teams, skills, quantities, capacities, exclusive resources, windows, locked and
    forbidden pairs, pairings, radii — anything the rules allow (mode auto, sometimes 1+1).
    kind "flow": mode 1+1, and counting demands is enough (quantities never bind, nothing
    exclusive), the case the min-cost flow solves exactly.
    kind "unit": like "flow" with every quantity, share and capacity 1.

    The first two resources list the first demand's community and category, so that most
    problems have some pair in reach (windows, skills and quantities still decide).
    """
    nd, nr = pick.int(1, max_demands), pick.int(1, max_resources)
    nu = max(1, nr - pick.int(0, 2))  # some units own several resources
    mixed = kind == "mixed"
    units = []
    for u in range(nu):
        unit = {"id": f"u{u}", "load": pick.int(0, 12)}
        if pick.int(0, 2):
            unit["rating"] = pick.int(10, 50) / 10
        units.append(unit)
    demands = []
    for i in range(nd):
        d = {"id": f"d{i}", "category": "b" if _rare(pick, 8) else "a",
             "community": pick.choice(COMMUNITIES),
             "quantity": pick.int(1, 4) if mixed else pick.int(1, 3) if kind == "flow" else 1,
             "skills": _subset(pick, SKILLS, 1 / 4, 2),
             "urgency": pick.choice(list(LEVELS)), "waited_days": pick.int(0, 40)}
        if pick.int(0, 1):
            d["lat"], d["lng"] = _point(pick)
        if _rare(pick, 3):
            d["grid"] = pick.choice(["g0", "g1"])
        if w := pick.choice(WINDOWS):
            d["window"] = w
        if mixed and _rare(pick, 5):
            d["team"] = bool(pick.int(0, 1))
        if mixed and _rare(pick, 4):
            d["max_team"] = pick.int(1, 3)
        demands.append(d)
    resources = []
    for j in range(nr):
        r = {"id": f"r{j}", "unit": f"u{pick.int(0, nu - 1)}",
             "category": "b" if _rare(pick, 8) else "*" if _rare(pick, 8) else "a",
             "communities": _subset(pick, COMMUNITIES, 3 / 4, 2),
             "skills": _subset(pick, SKILLS, 1 / 2, 3)}
        if _rare(pick, 3):
            r["lat"], r["lng"] = _point(pick)
            r["radius_m"] = pick.int(200, 3000)
        if a := pick.choice(AVAILABILITY):
            r["availability"] = a
        if mixed:
            r["share"] = pick.int(1, 3)
            r["quantity"] = 0 if _rare(pick, 10) else pick.int(1, 6)
            r["capacity"] = 0 if _rare(pick, 10) else pick.int(1, 3)
            r["exclusive"] = _rare(pick, 4)
        elif kind == "flow":
            r["share"], r["capacity"] = pick.int(1, 3), pick.int(0, 3)
            r["quantity"] = 3 * r["capacity"]
        else:
            r["share"] = r["quantity"] = r["capacity"] = 1
        resources.append(r)
    for r in resources[:2]:
        r["category"] = demands[0]["category"]
        if demands[0]["community"] not in r["communities"]:
            r["communities"].append(demands[0]["community"])
    pairings = []
    for _ in range(pick.int(0, 3)):
        p = {"unit": f"u{pick.int(0, nu - 1)}", "community": pick.choice(COMMUNITIES)}
        if pick.int(0, 1):
            p["grid"] = pick.choice(["g0", "g1"])
        pairings.append(p)
    forbidden = [{"demand": d["id"], "resource": r["id"]}
                 for d in demands for r in resources if _rare(pick, 10)]
    mode = "1+1" if not mixed or _rare(pick, 5) else "auto"
    locked = []
    held, led = set(), set()
    if mode == "auto":
        for _ in range(pick.int(0, 2)):
            d, r = pick.choice(demands), pick.choice(resources)
            if (d["id"], r["unit"]) not in held:
                held.add((d["id"], r["unit"]))
                d.pop("team", None)  # a demand that holds shares may take more members
                lead = d["id"] not in led and bool(pick.int(0, 1))  # at most one lead
                if lead:
                    led.add(d["id"])
                locked.append({"demand": d["id"], "resource": r["id"], "lead": lead})
    return {"mode": mode, "demands": demands, "resources": resources, "units": units,
            "pairings": pairings, "forbidden": forbidden, "locked": locked}
