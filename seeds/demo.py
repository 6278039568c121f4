"""The demo county (金塔-like): places, people, units, resources and ~300 demands in every state.

Everything is built by calling the service functions in `web.services`, with explicit `now=`
values spread over the 120 days before `now`, so every object is in a legal state and every
state change has its audit row. The one shortcut: argon2 takes ~0.1 s a hash, so apart from the
six demo logins (made with `users.create_user`), the ~800 users are inserted in bulk with one
precomputed hash of the shared demo password, with the same scoped grants `create_user` fills in
and the same "created" audit row. Only `random.Random(seed)` is used: the same seed and `now`
give the same county, row for row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seeds import demo_data as D
from seeds import lovebank_demo, volunteers_demo
from web.domain.actor import SYSTEM, Actor
from web.errors import ConflictError
from web.models import Category, RoleGrant, Subdistrict, User
from web.models.people import Role
from web.services import assignments as claims
from web.services import audit, demands, places, reports, resources, units, users, wishes
from web.services.auth import hash_password, load_actor
from web.services.base import local_date, utcnow

PASSWORD = "linli-demo-2026"

DEMO_LOGINS: list[dict] = [
    {"role": "subdistrict_admin", "username": "admin.jincheng", "password": PASSWORD,
     "display_name": "刘志刚", "scope": "金城街道(东城、西苑、南街社区)"},
    {"role": "secretary", "username": "secretary.dongcheng", "password": PASSWORD,
     "display_name": "王丽娟", "scope": "金城街道 东城社区党委书记"},
    {"role": "grid_worker", "username": "grid.dongcheng.01", "password": PASSWORD,
     "display_name": "马晓燕", "scope": "东城社区 第一网格网格员"},
    {"role": "unit_admin", "username": "unit.admin", "password": PASSWORD,
     "display_name": "陈建华", "scope": f"{D.DEMO_UNIT}(共建单位管理员)"},
    {"role": "clerk", "username": "clerk.dongcheng", "password": PASSWORD,
     "display_name": "赵春梅", "scope": "东城社区 爱心超市管理员"},
    {"role": "resident", "username": "resident.zhang", "password": PASSWORD,
     "display_name": "张桂兰", "scope": "东城社区 第一网格 居民"},
]
_DEMO = {login["role"]: login for login in DEMO_LOGINS}
_DEMO_USERNAMES = frozenset(login["username"] for login in DEMO_LOGINS)

COMMUNITIES_PER_STATUS = {  # per community: 50 demands, every status
    "draft": 3, "open": 7, "partly_covered": 4, "covered": 4, "in_progress": 5, "reported": 4,
    "verified": 4, "closed": 16, "cancelled": 3,
}
# How long ago (days) a demand that ends in each status was recorded.
AGE_DAYS = {
    "draft": (0.3, 12), "open": (1.5, 25), "partly_covered": (2, 35), "covered": (2, 40),
    "in_progress": (4, 50), "reported": (3, 60), "verified": (6, 90), "closed": (12, 112),
    "cancelled": (3, 100),
}
COVERAGE = ("open", "partly_covered", "covered")
WORK_ORDER = ("in_progress", "reported", "verified", "closed")
RESIDENTS_PER_COMMUNITY = 100
ROADS = ["解放路", "金塔大道", "航天路", "北大街", "南大街", "东环路", "西环路", "鼎新路",
         "胡杨路", "文化路"]


def is_empty(session: Session) -> bool:
    """Whether the database holds no places yet (the demo loads only into an empty one)."""
    return not session.scalar(select(func.count()).select_from(Subdistrict))


def load_demo(session: Session, *, seed: int = 20261121, now: datetime | None = None) -> list[dict]:
    """Fill an empty, migrated database with the demo county; return the demo logins
    [{"role", "username", "password", "display_name", "scope"}] (one per role)."""
    if not is_empty(session):
        raise ConflictError("the database already holds data; "
                            "the demo loads only into an empty one")
    _County(session, random.Random(seed), now or utcnow()).build()
    return [dict(login) for login in DEMO_LOGINS]


# ---- the in-memory picture of what has been built ---------------------------------------------

@dataclass
class Person:
    user_id: int
    name: str
    phone: str
    grid_id: int | None = None
    address: str = ""


@dataclass
class Building:
    id: int
    name: str
    grid_id: int
    estate: Estate


@dataclass
class Estate:
    id: int
    name: str
    lat: float
    lng: float
    buildings: list[Building] = field(default_factory=list)


@dataclass
class GridInfo:
    id: int
    name: str
    number: str
    worker: Actor | None = None
    buildings: list[Building] = field(default_factory=list)


@dataclass
class Place:
    id: int
    slug: str
    name: str
    subdistrict: SubInfo
    lat: float
    lng: float
    auto: bool
    secretary: Actor | None = None
    grids: list[GridInfo] = field(default_factory=list)
    estates: list[Estate] = field(default_factory=list)
    residents: list[Person] = field(default_factory=list)


@dataclass
class SubInfo:
    id: int
    slug: str
    name: str
    code: str
    admin: Actor | None = None
    places: list[Place] = field(default_factory=list)


@dataclass
class UnitInfo:
    id: int
    name: str
    type: str
    sector: str
    subdistrict: SubInfo
    admin_id: int
    lat: float
    lng: float
    approved_at: datetime
    actor: Actor | None = None
    resources: list[ResRef] = field(default_factory=list)


@dataclass
class ResRef:
    id: int
    unit: UnitInfo
    category: str
    capacity: int
    remaining: int
    value_fen: int


@dataclass
class Share:
    ref: ResRef
    quantity: int
    holds_resource: bool
    confirmed: bool = False


@dataclass
class Plan:
    place: Place
    target: str
    source: str
    category: str
    template: tuple
    t0: datetime
    grid: GridInfo
    building: Building | None
    quantity: int
    team: bool
    urgency: str
    beneficiaries: int
    resident: Person | None = None
    cancel_stage: str = "draft"


@dataclass
class Run:
    plan: Plan
    clock: Clock
    demand_id: int = 0
    shares: dict[int, Share] = field(default_factory=dict)
    started: datetime | None = None

    @property
    def confirmed(self) -> int:
        return sum(s.quantity for s in self.shares.values() if s.confirmed)

    @property
    def active_units(self) -> set[int]:
        return {s.ref.unit.id for s in self.shares.values()}


class Clock:
    """A demand's own time: moves forward by random steps, never past its limit."""

    def __init__(self, rng: random.Random, start: datetime, limit: datetime, speed: float = 1.0):
        self.rng, self.t, self.limit, self.speed = rng, start, limit, speed

    def after(self, lo_hours: float, hi_hours: float) -> datetime:
        wanted = timedelta(seconds=int(self.rng.uniform(lo_hours, hi_hours) * 3600 * self.speed))
        room = (self.limit - self.t) / 3
        self.t += max(min(wanted, room), timedelta(seconds=1))
        return self.t


# ---- the builder --------------------------------------------------------------------------------

class _County:
    """Builds the county step by step; each step calls the services with the right actor."""

    def __init__(self, session: Session, rng: random.Random, now: datetime):
        self.s, self.rng, self.now = session, rng, now
        self.start = now - timedelta(days=120)
        self.password_hash = hash_password(PASSWORD)
        self.categories = {c.code: c.id for c in session.scalars(select(Category))}
        self.subs: list[SubInfo] = []
        self.places: list[Place] = []
        self.units: list[UnitInfo] = []
        self.pool: dict[tuple[int, str], list[ResRef]] = {}
        self.paired: set[tuple[int, int]] = set()
        self.actors: dict[int, Actor] = {}
        self.demo_unit: UnitInfo | None = None
        self.suspended: tuple[UnitInfo, SubInfo] | None = None
        self.demo_resident: Person | None = None
        self.demo_wants = {"pending", "rejected", "withdrawn", "declined", "offered",
                           "released", "claim", "dispatch"}
        self.phones: set[str] = set()

    def build(self) -> None:
        self._places()
        self._staff()
        self._residents()
        self._units()
        self._resources()
        self._pairings()
        lovebank_demo.publish_rules(self)
        for plan in sorted(self._plans(), key=lambda p: p.t0):
            self._run(plan)
        self._loose_wishes()
        lovebank_demo.open_shops(self)
        volunteers_demo.build(self)

    # ---- small helpers ------------------------------------------------------------------------

    def at(self, days_ago: float, jitter_hours: float = 0) -> datetime:
        hours = days_ago * 24 - self.rng.uniform(0, jitter_hours)
        return self.now - timedelta(seconds=int(hours * 3600))

    def actor(self, user_id: int) -> Actor:
        if user_id not in self.actors:
            self.actors[user_id] = load_actor(self.s, user_id)
        return self.actors[user_id]

    def name(self, female: bool | None = None) -> str:
        rng = self.rng
        surname = rng.choice(D.SURNAMES_COMMON if rng.random() < 0.6 else D.SURNAMES_MORE)
        female = rng.random() < 0.5 if female is None else female
        return surname + rng.choice(D.GIVEN_FEMALE if female else D.GIVEN_MALE)

    def phone(self) -> str:
        while True:
            number = f"1{self.rng.choice('3579')}{self.rng.randrange(10**9):09d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def jitter(self, lat: float, lng: float, spread: float) -> tuple[float, float]:
        return (round(lat + self.rng.uniform(-spread, spread), 6),
                round(lng + self.rng.uniform(-spread, spread), 6))

    # ---- places ---------------------------------------------------------------------------------

    def _places(self) -> None:
        for slug, name, code in D.SUBDISTRICTS:
            sub = places.create_subdistrict(self.s, actor=SYSTEM, code=code, name=name)
            self.subs.append(SubInfo(sub.id, slug, name, code))
        by_slug = {s.slug: s for s in self.subs}
        for slug, name, sub_slug, lat, lng, _grids, _estates in D.COMMUNITIES:
            sub = by_slug[sub_slug]
            code = f"{sub.code}{len(sub.places) + 1:03d}"
            row = places.create_community(self.s, actor=SYSTEM, subdistrict_id=sub.id, code=code,
                                          name=name, lat=lat, lng=lng)
            place = Place(row.id, slug, name, sub, lat, lng, slug in D.AUTO_APPROVE)
            sub.places.append(place)
            self.places.append(place)

    def _staff(self) -> None:
        admins = self._users([
            (f"admin.{sub.slug}", self._display("subdistrict_admin", i == 0), self.phone(),
             self.start + timedelta(minutes=5 + i),
             [{"role": "subdistrict_admin", "subdistrict_id": sub.id}])
            for i, sub in enumerate(self.subs)], SYSTEM)
        for sub, user_id in zip(self.subs, admins, strict=True):
            sub.admin = self.actor(user_id)
        secretaries = self._users([
            (f"secretary.{p.slug}", self._display("secretary", p.slug == "dongcheng"),
             self.phone(), self.start + timedelta(hours=1 + i), [self._grant(Role.SECRETARY, p)])
            for i, p in enumerate(self.places)], SYSTEM)
        for i, (place, user_id) in enumerate(zip(self.places, secretaries, strict=True)):
            place.secretary = self.actor(user_id)
            self._community_staff(place, self.start + timedelta(hours=2 + i))

    def _display(self, role: str, demo: bool) -> str:
        return _DEMO[role]["display_name"] if demo else self.name()

    def _community_staff(self, place: Place, t: datetime) -> None:
        self._grids_and_buildings(place, D.COMMUNITIES[self.places.index(place)])
        clerk = self._display("clerk", place.slug == "dongcheng")
        rows = [(f"clerk.{place.slug}", clerk, self.phone(), t, [self._grant(Role.CLERK, place)])]
        rows += [(f"grid.{place.slug}.{grid.number}",
                  self._display("grid_worker", place.slug == "dongcheng" and grid.number == "01"),
                  self.phone(), t + timedelta(minutes=10 + k),
                  [self._grant(Role.GRID_WORKER, place, grid_id=grid.id)])
                 for k, grid in enumerate(place.grids)]
        made = self._users(rows, place.secretary)
        for grid, user_id in zip(place.grids, made[1:], strict=True):
            grid.worker = self.actor(user_id)
        if place.auto:
            places.update_community_settings(self.s, actor=place.secretary, community_id=place.id,
                                             changes={"auto_approve_paired_claims": True})
        if place.slug == "beihewan":
            places.update_community_settings(self.s, actor=place.secretary, community_id=place.id,
                                             changes={"dispatch_response_hours": 48})

    def _grids_and_buildings(self, place: Place, spec: tuple) -> None:
        level_one = spec[5]
        for k in range(level_one):
            row = places.create_grid(self.s, actor=place.secretary, community_id=place.id,
                                     code=f"G{k + 1:02d}", name=f"第{D.GRID_NUMERALS[k]}网格")
            place.grids.append(GridInfo(row.id, row.name, f"{k + 1:02d}"))
        parent = place.grids[self.rng.randrange(1, level_one)]
        row = places.create_grid(self.s, actor=place.secretary, community_id=place.id,
                                 code=f"G{parent.number}-1", name=f"{parent.name}一组",
                                 parent_id=parent.id)
        place.grids.append(GridInfo(row.id, row.name, f"{parent.number}a"))
        slots = 0
        for estate_name in spec[6]:
            lat, lng = self.jitter(place.lat, place.lng, 0.004)
            row = places.create_estate(self.s, actor=place.secretary, community_id=place.id,
                                       name=estate_name, lat=lat, lng=lng)
            estate = Estate(row.id, estate_name, lat, lng)
            place.estates.append(estate)
            for b in range(self.rng.randint(4, 7)):
                grid = place.grids[slots % len(place.grids)]
                slots += 1
                row = places.create_building(self.s, actor=place.secretary, estate_id=estate.id,
                                             name=f"{b + 1}号楼", grid_id=grid.id)
                building = Building(row.id, row.name, grid.id, estate)
                estate.buildings.append(building)
                grid.buildings.append(building)

    def _grant(self, role: Role, place: Place, grid_id: int | None = None) -> dict:
        return {"role": str(role), "subdistrict_id": place.subdistrict.id,
                "community_id": place.id, "grid_id": grid_id}

    def _users(self, rows: list[tuple], actor: Actor) -> list[int]:
        """Create users from (username, display name, phone, time, grants); their ids in order.

        The demo logins go through `users.create_user`; the rest are inserted in bulk with one
        precomputed hash of the shared password (argon2 is slow on purpose), with the same
        scoped grants and the same "created" audit row `create_user` writes.
        """
        made = iter(self._bulk_users([r for r in rows if r[0] not in _DEMO_USERNAMES], actor))
        ids = []
        for username, display, phone, t, grants in rows:
            if username in _DEMO_USERNAMES:
                ids.append(users.create_user(
                    self.s, actor=actor, username=username, password=PASSWORD,
                    display_name=display, phone=phone, roles=grants, now=t).id)
            else:
                ids.append(next(made).id)
        return ids

    def _bulk_users(self, rows: list[tuple], actor: Actor) -> list[User]:
        made = []
        for username, display, phone, t, grants in rows:
            user = User(username=username, display_name=display, phone=phone, locale="zh_CN",
                        password_hash=self.password_hash, is_active=True, created_at=t,
                        grants=[RoleGrant(created_at=t, **g) for g in grants])
            self.s.add(user)
            made.append(user)
        self.s.flush()
        for user in made:
            audit.record(self.s, entity_type="users", entity_id=user.id, action="created",
                         actor=actor, now=user.created_at,
                         data={"roles": [g.role for g in user.grants]})
        self.s.commit()
        return made

    # ---- residents ------------------------------------------------------------------------------

    def _residents(self) -> None:
        for place in self.places:
            rows, people = [], []
            for n in range(RESIDENTS_PER_COMMUNITY):
                building = self.rng.choice([b for e in place.estates for b in e.buildings])
                username = f"resident.{place.slug}.{n:03d}"
                if place.slug == "dongcheng" and n == 0:
                    building, username = place.grids[0].buildings[0], _DEMO["resident"]["username"]
                person = Person(0, self._display("resident", n == 0 and place.slug == "dongcheng"),
                                self.phone(), building.grid_id, self._address(place, building))
                rows.append((username, person.name, person.phone,
                             self.at(self.rng.uniform(114, 119)),
                             [self._grant(Role.RESIDENT, place, grid_id=building.grid_id)]))
                people.append(person)
            for person, user_id in zip(people, self._users(rows, place.secretary), strict=True):
                person.user_id = user_id
            place.residents = people
        self.demo_resident = self.places[0].residents[0]

    def _address(self, place: Place, building: Building) -> str:
        floor, room = self.rng.randint(1, 6), self.rng.randint(1, 2)
        return (f"金塔县{place.name}{building.estate.name}{building.name}"
                f"{self.rng.randint(1, 3)}单元{floor}0{room}室")

    # ---- units ----------------------------------------------------------------------------------

    def _unit_specs(self) -> list[tuple[str, str, str]]:
        specs = [(n, "government", s) for n, s in D.GOVERNMENT]
        specs += [(n, "public_institution", s) for n, s in D.PUBLIC_INSTITUTIONS]
        specs += [(n, "enterprise", s) for n, s in D.ENTERPRISES]
        specs += [(n, "social_organisation", s) for n, s in D.SOCIAL_ORGANISATIONS]
        for i, trade_name in enumerate(D.TRADE_NAMES):
            trade, sector = D.TRADES[i % len(D.TRADES)]
            name = (f"甘肃{trade_name}{trade}金塔分所" if trade == "律师事务所"
                    else f"金塔县{trade_name}{trade}")
            specs.append((name, "non_public_company", sector))
        specs += [(n, "other", s) for n, s in D.OTHER_UNITS]
        return specs

    def _units(self) -> None:
        specs = self._unit_specs()
        demo_index = next(i for i, s in enumerate(specs) if s[0] == D.DEMO_UNIT)
        others = [i for i in range(len(specs)) if i != demo_index]
        special = self.rng.sample(others, 8)
        fate = {i: "applied" for i in special[:5]} | {special[5]: "rejected",
                                                      special[6]: "rejected",
                                                      special[7]: "suspended"}
        admins = self._unit_admins(specs, demo_index)
        for i, (name, unit_type, sector) in enumerate(specs):
            sub = self.subs[0] if i == demo_index else self.subs[i % 2]
            self._apply(name, unit_type, sector, sub, admins[i], fate.get(i, "approved"),
                        demo=i == demo_index)
        self.s.expire_all()  # apply_unit adds the admin's grant behind the loaded users' backs
        self.actors.clear()
        for unit in self.units:
            unit.actor = self.actor(unit.admin_id)

    def _unit_admins(self, specs: list, demo_index: int) -> list[Person]:
        rows, people = [], []
        for i in range(len(specs)):
            demo = i == demo_index
            person = Person(0, self._display("unit_admin", demo), self.phone())
            username = _DEMO["unit_admin"]["username"] if demo else f"unit.{i + 1:03d}"
            rows.append((username, person.name, person.phone,
                         self.at(self.rng.uniform(118.5, 119.5)), []))
            people.append(person)
        for person, user_id in zip(people, self._users(rows, SYSTEM), strict=True):
            person.user_id = user_id
        return people

    def _apply(self, name: str, unit_type: str, sector: str, sub: SubInfo, admin: Person,
               fate: str, demo: bool) -> None:
        lat, lng = self.jitter(39.9880, 98.9060, 0.015)
        data = {"name": name, "type": unit_type, "contact_name": admin.name,
                "contact_phone": admin.phone, "lat": lat, "lng": lng,
                "address": f"金塔县{self.rng.choice(ROADS)}{self.rng.randint(1, 300)}号",
                "description": D.UNIT_DESCRIPTIONS[unit_type]}
        applied_at = {"applied": self.at(self.rng.uniform(0.5, 6)),
                      "rejected": self.at(self.rng.uniform(50, 70))}.get(fate, self.at(118.3, 20))
        applicant = Actor(user_id=admin.user_id)
        row = units.apply_unit(self.s, actor=applicant, subdistrict_id=sub.id, data=data,
                               now=applied_at)
        decided_at = applied_at + timedelta(hours=self.rng.uniform(4, 40))
        if fate == "applied":
            return
        if fate == "rejected":
            units.reject_unit(self.s, actor=sub.admin, unit_id=row.id, now=decided_at,
                              reason=self.rng.choice(["申请材料中的营业执照已过期,请更新后重新申请",
                                                      "该组织尚未在县民政局登记,暂不符合共建单位条件"]))
            return
        units.approve_unit(self.s, actor=sub.admin, unit_id=row.id, now=decided_at)
        unit = UnitInfo(row.id, name, unit_type, sector, sub, admin.user_id, lat, lng, decided_at)
        self.units.append(unit)
        if demo:
            self.demo_unit = unit
        if fate == "suspended":
            self.suspended = (unit, sub)

    # ---- resources ------------------------------------------------------------------------------

    def _resources(self) -> None:
        for unit in self.units:
            t = unit.approved_at + timedelta(hours=self.rng.uniform(2, 30))
            if unit is self.demo_unit:
                templates = D.DEMO_UNIT_RESOURCES
            else:
                options = D.SECTOR_RESOURCES[unit.sector]
                templates = self.rng.sample(options, min(len(options), self.rng.randint(1, 3)))
            area = self._service_area(unit)
            for k, template in enumerate(templates):
                self._resource(unit, template, area, k, t + timedelta(minutes=20 * k))
        unit, sub = self.suspended
        units.suspend_unit(self.s, actor=sub.admin, unit_id=unit.id, now=self.at(9, 24),
                           reason="经营场所已迁出本县,暂停共建资格,待核实后恢复")
        self.units.remove(unit)
        for key in self.pool:
            self.pool[key] = [r for r in self.pool[key] if r.unit is not unit]

    def _service_area(self, unit: UnitInfo) -> list[Place]:
        if unit is self.demo_unit or (unit.type in ("government", "public_institution")
                                      and self.rng.random() < 0.25):
            return list(self.places)
        home = unit.subdistrict.places
        area = self.rng.sample(home, self.rng.randint(2, 3))
        if self.rng.random() < 0.35:
            other = next(s for s in self.subs if s is not unit.subdistrict)
            area.append(self.rng.choice(other.places))
        return sorted(area, key=lambda p: p.id)

    def _resource(self, unit: UnitInfo, template: tuple, area: list[Place], k: int,
                  t: datetime) -> None:
        category, kind, title, description, skills, capacity, total, value = template
        capacity = capacity if isinstance(capacity, int) else self.rng.randint(*capacity)
        total = total if isinstance(total, int) else self.rng.randint(*total)
        day = local_date(t)
        data = {
            "kind": kind, "category_id": self.categories[category], "title": title,
            "description": f"{description}(提供单位:{unit.name})", "skills": list(skills),
            "capacity_per_occasion": capacity, "quantity_total": total,
            "availability": {
                "date_ranges": [{"start": day.isoformat(),
                                 "end": (day + timedelta(days=365)).isoformat()}],
                "weekly": [{"weekday": self.rng.choice([0, 2, 4, 5, 6]),
                            "start": self.rng.choice(["09:00", "14:30", "19:00"]),
                            "end": self.rng.choice(["12:00", "17:30", "21:00"])}]},
            "lat": unit.lat, "lng": unit.lng, "value_fen_per_unit": value,
            "is_standing_offer": kind == "volunteer_service",
        }
        fate = "published" if k == 0 or unit is self.demo_unit else self.rng.choices(
            ["published", "draft", "withdrawn"], [8, 1, 1])[0]
        row = resources.create_resource(self.s, actor=unit.actor, unit_id=unit.id, data=data,
                                        service_community_ids=[p.id for p in area],
                                        publish=fate != "draft", now=t)
        if fate == "withdrawn":
            resources.withdraw_resource(self.s, actor=unit.actor, resource_id=row.id,
                                        reason="该项服务人员调整,暂停提供", now=self.at(60, 40 * 24))
        if fate != "published":
            return
        ref = ResRef(row.id, unit, category, capacity, total, value)
        unit.resources.append(ref)
        for place in area:
            self.pool.setdefault((place.id, category), []).append(ref)

    # ---- pairings (结对) -------------------------------------------------------------------------

    def _pairings(self) -> None:
        starts = local_date(self.now - timedelta(days=200)).replace(day=1)
        for unit in self.units:
            if unit is self.demo_unit:
                dongcheng, xiyuan = self.places[0], self.places[1]
                self._pair(unit, dongcheng, dongcheng.grids[0], starts, None)
                self._pair(unit, xiyuan, None, starts, None)
                continue
            if self.rng.random() > 0.65:
                continue
            home = unit.subdistrict.places
            for place in self.rng.sample(home, 2 if self.rng.random() < 0.15 else 1):
                grid = self.rng.choice(place.grids) if self.rng.random() < 0.4 else None
                ends = None if self.rng.random() < 0.5 else starts.replace(year=starts.year + 3)
                self._pair(unit, place, grid, starts, ends)

    def _pair(self, unit: UnitInfo, place: Place, grid: GridInfo | None, starts: date,
              ends: date | None) -> None:
        note = (f"“四包”责任:{unit.name}包{grid.name}" if grid else
                f"{unit.name}与{place.name}签订党建共建协议")
        signer = place.secretary if self.rng.random() < 0.7 else place.subdistrict.admin
        units.create_pairing(self.s, actor=signer, unit_id=unit.id, community_id=place.id,
                             starts_on=starts, ends_on=ends, grid_id=grid.id if grid else None,
                             note=note, now=self.at(113.5, 24))
        self.paired.add((unit.id, place.id))

    # ---- planning the demands -------------------------------------------------------------------

    def _plans(self) -> list[Plan]:
        plans = []
        for place in self.places:
            targets = [s for s, n in COMMUNITIES_PER_STATUS.items() for _ in range(n)]
            self.rng.shuffle(targets)
            if place.slug == "dongcheng":  # the demo resident's wishes: one closed, one under way
                for target, wish in zip(("closed", "in_progress"), self._demo_wishes[:2],
                                        strict=True):
                    targets.remove(target)
                    plans.append(self._plan(place, target, self.demo_resident, wish))
            plans.extend(self._plan(place, target) for target in targets)
        return plans

    def _someone(self, place: Place) -> Person:
        """A random resident other than the demo resident, whose wishes are set apart."""
        return self.rng.choice([p for p in place.residents if p is not self.demo_resident])

    @property
    def _demo_wishes(self) -> list[tuple]:
        return [next(w for w in D.WISHES if w[1] == title) for title in D.DEMO_RESIDENT_WISHES]

    def _plan(self, place: Place, target: str, resident: Person | None = None,
              wish: tuple | None = None) -> Plan:
        rng = self.rng
        source = "micro_wish" if resident else rng.choices(
            ["micro_wish", "grid_worker", "secretary"], [25, 30, 45])[0]
        if target == "partly_covered":
            source = "secretary" if source == "micro_wish" else source
        if source == "micro_wish":
            resident = resident or self._someone(place)
            category, template = (wish[0], wish) if wish else self._wish_template(place)
            grid = next(g for g in place.grids if g.id == resident.grid_id)
            quantity, team, beneficiaries = 1, False, 1
        else:
            category, template = self._demand_template(place, partial=target == "partly_covered")
            grid = rng.choice(place.grids)
            team = template[3]
            quantity = rng.randint(*template[4])
            if target == "partly_covered":
                quantity = max(quantity, 2)
            beneficiaries = rng.randint(*template[5])
        building = rng.choice(grid.buildings) if grid.buildings else None
        lo, hi = AGE_DAYS[target]
        urgency = rng.choices(["normal", "urgent", "critical"], [70, 22, 8])[0]
        stage = rng.choice(["draft", "open", "open", "covered", "in_progress"])
        return Plan(place, target, source, category, template, self.at(rng.uniform(lo, hi)),
                    grid, building, quantity, team, urgency, beneficiaries, resident, stage)

    def _units_for(self, place: Place, category: str) -> int:
        return len({r.unit.id for r in self.pool.get((place.id, category), [])})

    def _demand_template(self, place: Place, partial: bool) -> tuple[str, tuple]:
        codes = list(D.CATEGORY_WEIGHTS)
        while True:
            category = self.rng.choices(codes, [D.CATEGORY_WEIGHTS[c] for c in codes])[0]
            template = self.rng.choice(D.DEMAND_TEMPLATES[category])
            if partial and template[4][1] < 2:
                continue
            if self._units_for(place, category) >= (5 if template[3] else 3):
                return category, template

    def _wish_template(self, place: Place) -> tuple[str, tuple]:
        while True:
            template = self.rng.choice(D.WISHES)
            if self._units_for(place, template[0]) >= 3:
                return template[0], template

    # ---- running one demand through its life ----------------------------------------------------

    def _run(self, plan: Plan) -> None:
        speed = {"normal": 1.0, "urgent": 0.5, "critical": 0.2}[plan.urgency]
        run = Run(plan, Clock(self.rng, plan.t0, self.now - timedelta(hours=2), speed))
        self._record(run)
        if plan.target == "draft":
            return
        if plan.target == "cancelled":
            self._run_to_cancel(run)
            return
        self._noise(run)
        self._cover(run)
        if plan.target in COVERAGE:
            self._leftover(run)
            return
        self._work(run)

    def _demand_data(self, plan: Plan) -> dict:
        place, rng = plan.place, self.rng
        estate = plan.building.estate if plan.building else rng.choice(place.estates)
        window_start = (plan.t0 + timedelta(days=rng.uniform(0.5, 6) * (
            0.2 if plan.urgency == "critical" else 1))).replace(minute=0, second=0, microsecond=0)
        window_end = window_start + timedelta(days=rng.choice([0, 1, 3, 7, 14]), hours=3)
        lat, lng = self.jitter(estate.lat, estate.lng, 0.0008)
        data = {"grid_id": plan.grid.id, "building_id": plan.building.id if plan.building else None,
                "category_id": self.categories[plan.category],
                "required_skills": list(plan.template[3] if plan.source == "micro_wish"
                                        else plan.template[2]),
                "window_start": window_start, "window_end": window_end, "deadline": window_end,
                "urgency": plan.urgency, "beneficiaries_count": plan.beneficiaries,
                "lat": lat, "lng": lng, "quantity_needed": plan.quantity}
        if plan.source == "micro_wish":
            return data | {"beneficiary_address": plan.resident.address}
        full_name = self.name()
        # Titles and descriptions are read by every unit on the demand board, so they name the
        # beneficiary the way a notice board would (王奶奶); the full name stays in the
        # beneficiary's contact fields, which only the people handling the item see.
        public_name = full_name[0] + rng.choice(["奶奶", "爷爷", "阿姨", "叔叔"])
        fill = {"estate": estate.name, "building": plan.building.name if plan.building else "1号楼",
                "name": public_name, "age": rng.randint(68, 93), "n": plan.beneficiaries}
        data |= {"title": plan.template[0].format(**fill),
                 "description": plan.template[1].format(**fill)}
        if plan.template[6]:
            data |= {"beneficiary_name": full_name, "beneficiary_phone": self.phone(),
                     "beneficiary_address": self._address(place, plan.building)
                     if plan.building else None}
        return data

    def _record(self, run: Run) -> None:
        plan, place = run.plan, run.plan.place
        publish = plan.target != "draft" and not (
            plan.target == "cancelled" and plan.cancel_stage == "draft")
        data = self._demand_data(plan)
        if plan.source == "micro_wish":
            run.demand_id = self._from_wish(run, data, publish)
        elif plan.source == "grid_worker":
            row = demands.create_demand(self.s, actor=plan.grid.worker, community_id=place.id,
                                        data=data, now=run.clock.t)
            run.demand_id = row.id
            if publish:
                demands.publish_demand(self.s, actor=place.secretary, demand_id=row.id,
                                       now=run.clock.after(1, 30))
        else:
            at_once = publish and self.rng.random() < 0.8
            row = demands.create_demand(self.s, actor=place.secretary, community_id=place.id,
                                        data=data, publish=at_once, now=run.clock.t)
            run.demand_id = row.id
            if publish and not at_once:
                demands.publish_demand(self.s, actor=place.secretary, demand_id=row.id,
                                       now=run.clock.after(2, 48))

    def _from_wish(self, run: Run, data: dict, publish: bool) -> int:
        plan, place = run.plan, run.plan.place
        category, title, description, _skills = plan.template
        resident = self.actor(plan.resident.user_id)
        wished_at = run.clock.t - timedelta(hours=self.rng.uniform(2, 40) * run.clock.speed)
        wish = wishes.submit_wish(self.s, actor=resident, title=title, description=description,
                                  category_id=self.categories[category], now=wished_at)
        by_secretary = self.rng.random() < 0.55
        triager = place.secretary if by_secretary else plan.grid.worker
        _wish, row = wishes.accept_wish(self.s, actor=triager, wish_id=wish.id, demand=data,
                                        publish=publish and by_secretary, now=run.clock.t)
        if publish and not by_secretary:
            demands.publish_demand(self.s, actor=place.secretary, demand_id=row.id,
                                   now=run.clock.after(1, 24))
        return row.id

    # ---- claims and dispatches ------------------------------------------------------------------

    def _candidates(self, run: Run, quantity: int, unpaired: bool) -> list[ResRef]:
        place, taken = run.plan.place, run.active_units

        def fits(ref: ResRef) -> bool:
            return (ref.unit.id not in taken and ref.capacity >= quantity
                    and ref.remaining >= quantity
                    and not (unpaired and (ref.unit.id, place.id) in self.paired))

        exact = [r for r in self.pool.get((place.id, run.plan.category), []) if fits(r)]
        return exact or [r for r in self.pool.get((place.id, "other"), []) if fits(r)]

    def _pick(self, run: Run, quantity: int, outcome: str, unpaired: bool = False) -> ResRef | None:
        """A unit's resource for one share; the demo unit is preferred until it has each outcome."""
        found = self._candidates(run, quantity, unpaired)
        if not found:
            return None
        demo = [r for r in found if r.unit is self.demo_unit]
        if demo and (outcome in self.demo_wants or self.rng.random() < 0.12):
            self.demo_wants.discard(outcome)
            return demo[0]
        return self.rng.choice(found)

    def _claim(self, run: Run, ref: ResRef, quantity: int):
        claim = claims.claim_demand(
            self.s, actor=ref.unit.actor, demand_id=run.demand_id, unit_id=ref.unit.id,
            resource_id=ref.id, quantity=quantity, now=run.clock.after(2, 60),
            note=f"{ref.unit.name}{self.rng.choice(D.VOLUNTEER_TEAMS)}认领")
        ref.remaining -= quantity
        run.shares[claim.id] = Share(ref, quantity, True, claim.status == "approved")
        return claim

    def _dispatch(self, run: Run, ref: ResRef, quantity: int, with_resource: bool,
                  at: datetime | None = None):
        secretary = run.plan.place.secretary
        dispatch = claims.dispatch_demand(
            self.s, actor=secretary, demand_id=run.demand_id, unit_id=ref.unit.id,
            quantity=quantity, resource_id=ref.id if with_resource else None,
            note="请在规定时限内确认是否承接", now=at or run.clock.after(2, 48))
        if with_resource:
            ref.remaining -= quantity
        run.shares[dispatch.id] = Share(ref, quantity, with_resource)
        return dispatch

    def _end(self, run: Run, assignment_id: int) -> None:
        share = run.shares.pop(assignment_id)
        if share.holds_resource:
            share.ref.remaining += share.quantity

    def _confirm_share(self, run: Run, ref: ResRef, quantity: int) -> int:
        """One unit's share, claimed and approved or dispatched and accepted; its assignment id."""
        place = run.plan.place
        by_claim = self.rng.random() < 0.65
        if ref.unit is self.demo_unit:  # make sure the demo unit has both kinds
            for kind in ("claim", "dispatch"):
                if kind in self.demo_wants:
                    self.demo_wants.discard(kind)
                    by_claim = kind == "claim"
                    break
        if by_claim:
            claim = self._claim(run, ref, quantity)
            if claim.status == "pending":
                claims.approve_claim(self.s, actor=place.secretary, assignment_id=claim.id,
                                     now=run.clock.after(1, 30))
                run.shares[claim.id].confirmed = True
            return claim.id
        with_resource = self.rng.random() < 0.5
        dispatch = self._dispatch(run, ref, quantity, with_resource)
        share = run.shares[dispatch.id]
        name_it = not with_resource and self.rng.random() < 0.7
        claims.accept_dispatch(self.s, actor=ref.unit.actor, assignment_id=dispatch.id,
                               resource_id=ref.id if name_it else None,
                               now=run.clock.after(0.3, 20))
        if name_it:
            ref.remaining -= quantity
            share.holds_resource = True
        share.confirmed = True
        return dispatch.id

    def _noise(self, run: Run) -> None:
        """Claims and dispatches that came to nothing: rejected, withdrawn, declined, recalled,
        released."""
        rng, place = self.rng, run.plan.place
        secretary = place.secretary
        quantity = min(run.plan.quantity, rng.randint(1, 2))
        if rng.random() < 0.12 and (ref := self._pick(run, quantity, "rejected", place.auto)):
            claim = self._claim(run, ref, quantity)
            claims.reject_claim(self.s, actor=secretary, assignment_id=claim.id,
                                reason=rng.choice(D.REJECT_CLAIM_REASONS),
                                now=run.clock.after(2, 30))
            self._end(run, claim.id)
        if rng.random() < 0.07 and (ref := self._pick(run, quantity, "withdrawn", place.auto)):
            claim = self._claim(run, ref, quantity)
            claims.withdraw_claim(self.s, actor=ref.unit.actor, assignment_id=claim.id,
                                  reason=rng.choice(D.WITHDRAW_REASONS), now=run.clock.after(1, 20))
            self._end(run, claim.id)
        if rng.random() < 0.10 and (ref := self._pick(run, quantity, "declined")):
            dispatch = self._dispatch(run, ref, quantity, rng.random() < 0.5)
            claims.decline_dispatch(self.s, actor=ref.unit.actor, assignment_id=dispatch.id,
                                    reason=rng.choice(D.DECLINE_DISPATCH_REASONS),
                                    now=run.clock.after(0.5, 20))
            self._end(run, dispatch.id)
        if rng.random() < 0.05 and (ref := self._pick(run, quantity, "recalled")):
            dispatch = self._dispatch(run, ref, quantity, rng.random() < 0.5)
            claims.recall_assignment(self.s, actor=secretary, assignment_id=dispatch.id,
                                     reason=rng.choice(D.RECALL_REASONS),
                                     now=run.clock.after(0.5, 10))
            self._end(run, dispatch.id)
        if rng.random() < 0.04 and (ref := self._pick(run, quantity, "released")):
            assignment_id = self._confirm_share(run, ref, quantity)
            claims.release_assignment(self.s, actor=ref.unit.actor, assignment_id=assignment_id,
                                      reason=rng.choice(D.RELEASE_REASONS),
                                      now=run.clock.after(4, 72))
            self._end(run, assignment_id)

    def _target_confirmed(self, plan: Plan) -> int:
        q = plan.quantity
        if plan.target == "open":
            return 0
        if plan.target == "partly_covered":
            return self.rng.randint(1, q - 1)
        if plan.target in WORK_ORDER and q >= 4 and self.rng.random() < 0.1:
            return self.rng.randint((q + 1) // 2, q - 1)  # work starts with the team not full
        return q

    def _cover(self, run: Run) -> None:
        plan = run.plan
        goal = self._target_confirmed(plan)
        while run.confirmed < goal:
            left = goal - run.confirmed
            wanted = min(left, self.rng.randint(1, 3)) if plan.team else left
            ref = self._pick(run, wanted, "approved") or self._pick(run, 1, "approved")
            if ref is None:
                raise RuntimeError(f"no unit can serve the demand {run.demand_id}")
            self._confirm_share(run, ref, min(wanted, ref.capacity, ref.remaining))
        confirmed = [a for a, s in run.shares.items() if s.confirmed]
        if len(confirmed) >= 2 and plan.target != "partly_covered" and self.rng.random() < 0.4:
            demands.set_lead(self.s, actor=plan.place.secretary, demand_id=run.demand_id,
                             assignment_id=self.rng.choice(confirmed[1:]),
                             now=run.clock.after(1, 12))

    def _leftover(self, run: Run, recent: bool = True) -> None:
        """A claim still waiting for the secretary, or a dispatch still waiting for the unit.

        A dispatch left `recent` is made in the last hours, so its time to answer has not run out.
        """
        plan, rng = run.plan, self.rng
        open_quantity = plan.quantity - sum(s.quantity for s in run.shares.values())
        if open_quantity < 1 or plan.target == "covered":
            return
        quantity = min(open_quantity, rng.randint(1, 2))
        roll = rng.random()
        if roll < 0.35 and (ref := self._pick(run, quantity, "pending", plan.place.auto)):
            self._claim(run, ref, quantity)
        elif roll < 0.6 and (ref := self._pick(run, quantity, "offered")):
            at = run.clock.after(0.1, 0.5)
            if recent:
                at = run.clock.t = max(at, self.now - timedelta(hours=rng.uniform(1, 20)))
            self._dispatch(run, ref, quantity, rng.random() < 0.5, at=at)

    # ---- cancelling -----------------------------------------------------------------------------

    def _run_to_cancel(self, run: Run) -> None:
        stage = run.plan.cancel_stage
        if stage in ("covered", "in_progress"):
            self._cover(run)
        elif stage == "open" and self.rng.random() < 0.5:
            self._leftover(run, recent=False)
        if stage == "in_progress":
            self._start(run)
        self._cancel(run)

    def _cancel(self, run: Run) -> None:
        demands.cancel_demand(self.s, actor=run.plan.place.secretary, demand_id=run.demand_id,
                              reason=self.rng.choice(D.CANCEL_REASONS), now=run.clock.after(4, 96))
        for assignment_id in list(run.shares):
            self._end(run, assignment_id)

    # ---- the work: start, report, verify, confirm -----------------------------------------------

    def _lead_actor(self, run: Run) -> Actor:
        lead = demands.lead_assignment(self.s, run.demand_id)
        return next(u.actor for u in self.units if u.id == lead.unit_id)

    def _start(self, run: Run) -> None:
        run.started = run.clock.after(4, 96)
        demands.start_work(self.s, actor=self._lead_actor(run), demand_id=run.demand_id,
                           now=run.started)

    def _work(self, run: Run) -> None:
        target, rng = run.plan.target, self.rng
        if target == "in_progress" or rng.random() < 0.85:
            self._start(run)
        if target == "in_progress" and rng.random() > 0.25:
            return
        report_id, ended_on = self._report(run, None)
        if target == "in_progress" or rng.random() < 0.2:  # sent back for correction
            reports.return_report(self.s, actor=run.plan.place.secretary, report_id=report_id,
                                  reason=rng.choice(D.RETURN_REASONS), now=run.clock.after(4, 48))
            if target == "in_progress":
                return
            report_id, _ = self._report(run, ended_on)
        if target == "reported":
            return
        reports.verify_report(self.s, actor=run.plan.place.secretary, report_id=report_id,
                              now=run.clock.after(6, 72))
        run.shares.clear()  # completed: the resources stay used
        if target == "closed":
            self._confirm(run)

    def _report(self, run: Run, ended_on: date | None) -> tuple[int, date]:
        plan, rng = run.plan, self.rng
        at = run.clock.after(12, 120)
        started = run.started or at - timedelta(hours=rng.uniform(1, 6))
        ended_on = ended_on or local_date(at)
        started_on = min(local_date(started), ended_on)
        value = sum(s.quantity * (s.ref.value_fen if s.holds_resource else 5000)
                    for s in run.shares.values() if s.confirmed)
        report = reports.submit_report(
            self.s, actor=self._lead_actor(run), demand_id=run.demand_id, started_on=started_on,
            ended_on=ended_on, volunteers=self._volunteers(plan),
            beneficiaries_served=plan.beneficiaries, value_fen=value,
            summary=rng.choice(D.REPORT_SUMMARIES), now=at)
        return report.id, ended_on

    def _volunteers(self, plan: Plan) -> list[dict]:
        rng = self.rng
        count = rng.randint(2, 6) if plan.team else rng.randint(1, 3)
        lines = []
        for member in rng.sample(plan.place.residents, count):
            minutes = rng.choice([30, 60, 90, 120, 120, 180, 240])
            if rng.random() < 0.45:  # a party member living here, reporting in (双报到)
                lines.append({"user_id": member.user_id, "minutes": minutes})
            else:
                lines.append({"name": self.name(), "phone": self.phone(), "minutes": minutes})
        return lines

    def _confirm(self, run: Run) -> None:
        plan, rng = run.plan, self.rng
        by_resident = plan.resident is not None and rng.random() < 0.8
        actor = self.actor(plan.resident.user_id) if by_resident else plan.grid.worker
        rating = rng.choices([5, 4, 3, 2], [70, 22, 6, 2])[0]
        demands.confirm_demand(self.s, actor=actor, demand_id=run.demand_id, rating=rating,
                               comment=rng.choice(D.RATING_COMMENTS[rating]),
                               now=run.clock.after(12, 120))

    # ---- micro-wishes that did not become demands -----------------------------------------------

    def _loose_wishes(self) -> None:
        for place in self.places:
            for k in range(7):
                resident, wish = self._someone(place), self.rng.choice(D.WISHES)
                if place.slug == "dongcheng" and k < 2:
                    resident, wish = self.demo_resident, self._demo_wishes[2 + k]
                fate = ["declined", "submitted", "declined", "submitted", "withdrawn",
                        "declined", "submitted"][k]
                self._loose_wish(place, resident, wish, fate)

    def _loose_wish(self, place: Place, resident: Person, wish: tuple, fate: str) -> None:
        category, title, description, _ = wish
        days = self.rng.uniform(0.2, 6) if fate == "submitted" else self.rng.uniform(5, 100)
        t = self.at(days)
        actor = self.actor(resident.user_id)
        wish = wishes.submit_wish(self.s, actor=actor, title=title, description=description,
                                  category_id=self.categories[category], now=t)
        later = t + timedelta(hours=self.rng.uniform(2, 72))
        if fate == "declined":
            grid = next(g for g in place.grids if g.id == resident.grid_id)
            triager = place.secretary if self.rng.random() < 0.6 else grid.worker
            wishes.decline_wish(self.s, actor=triager, wish_id=wish.id, now=later,
                                reason=self.rng.choice(D.DECLINE_REASONS))
        elif fate == "withdrawn":
            wishes.withdraw_wish(self.s, actor=actor, wish_id=wish.id, now=later)
