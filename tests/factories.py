"""Test data with sensible defaults, built through the services (so every row is legal).

`build_world` makes two subdistricts so every test can check one scope against another:
subdistrict A with communities a1 and a2, subdistrict B with community b1; a grid in each;
one user per role and scope; approved units x, y (subdistrict A) and z (B), each with a
published resource; one published demand in a1 and one in b1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import NOW, TEST_PASSWORD
from web.domain.actor import SYSTEM, Actor
from web.models import Category, User
from web.services import assignments, demands, places, resources, units, users
from web.services.auth import actor_for, issue_token


def category_id(session: Session, code: str = "elderly_care") -> int:
    return session.scalar(select(Category.id).where(Category.code == code))


@dataclass
class World:
    session: Session
    ids: dict = field(default_factory=dict)
    users: dict = field(default_factory=dict)

    def actor(self, name: str) -> Actor:
        user = self.session.get(User, self.users[name])
        self.session.refresh(user)
        return actor_for(user)

    def user(self, name: str) -> User:
        return self.session.get(User, self.users[name])

    def headers(self, name: str) -> dict:
        token, _ = issue_token(self.session, self.user(name), ttl_hours=1)
        return {"Authorization": f"Bearer {token}"}

    def __getitem__(self, key: str) -> int:
        return self.ids[key]


def make_user(session: Session, username: str, *roles: dict, display_name: str | None = None,
              phone: str | None = "13800000000") -> User:
    return users.create_user(session, actor=SYSTEM, username=username, password=TEST_PASSWORD,
                             display_name=display_name or username, phone=phone,
                             roles=list(roles), now=NOW)


def make_unit(session: Session, world: World, key: str, subdistrict: str, admin: str) -> int:
    admin_user = make_user(session, admin)
    world.users[admin] = admin_user.id
    unit = units.apply_unit(session, actor=actor_for(admin_user),
                            subdistrict_id=world[subdistrict],
                            data={"name": f"Unit {key}", "type": "enterprise",
                                  "contact_name": "Li", "contact_phone": "13900000000"}, now=NOW)
    units.approve_unit(session, actor=SYSTEM, unit_id=unit.id, now=NOW)
    world.ids[key] = unit.id
    return unit.id


def make_resource(session: Session, world: World, unit_key: str, admin: str, communities: list,
                  *, quantity: int = 100, capacity: int = 10, code: str = "elderly_care",
                  skills=("陪护",), publish: bool = True, **extra) -> int:
    item = resources.create_resource(
        session, actor=world.actor(admin), unit_id=world[unit_key],
        data={"kind": "volunteer_service", "category_id": category_id(session, code),
              "title": f"{unit_key} 志愿服务", "skills": list(skills),
              "capacity_per_occasion": capacity, "quantity_total": quantity,
              "value_fen_per_unit": 5000, **extra},
        service_community_ids=[world[c] for c in communities], publish=publish, now=NOW)
    return item.id


def make_demand(session: Session, world: World, community: str, secretary: str, *,
                grid: str | None = None, quantity: int = 3, code: str = "elderly_care",
                beneficiary: str | None = None, publish: bool = True, **extra) -> int:
    data = {"category_id": category_id(session, code), "title": "独居老人探访",
            "quantity_needed": quantity, "grid_id": world[grid] if grid else None,
            "beneficiary_name": "王奶奶", "beneficiary_phone": "13712345678",
            "beneficiary_address": "3号楼2单元", **extra}
    demand = demands.create_demand(session, actor=world.actor(secretary),
                                   community_id=world[community], data=data, publish=publish,
                                   now=NOW)
    if beneficiary:
        demand.beneficiary_user_id = world.users[beneficiary]
        session.commit()
    return demand.id


def build_world(session: Session) -> World:
    w = World(session)
    for key in ("A", "B"):
        w.ids[key] = places.create_subdistrict(session, actor=SYSTEM, code=f"SD-{key}",
                                               name=f"{key}街道").id
    for key, sub in (("a1", "A"), ("a2", "A"), ("b1", "B")):
        w.ids[key] = places.create_community(session, actor=SYSTEM, subdistrict_id=w[sub],
                                             code=f"C-{key}", name=f"{key}社区",
                                             lat=40.0, lng=98.9).id
        w.ids[f"g_{key}"] = places.create_grid(session, actor=SYSTEM, community_id=w[key],
                                               code="G1", name=f"{key}第一网格").id
    people = {
        "admin_a": {"role": "subdistrict_admin", "subdistrict_id": w["A"]},
        "admin_b": {"role": "subdistrict_admin", "subdistrict_id": w["B"]},
        "sec_a1": {"role": "secretary", "community_id": w["a1"]},
        "sec_a2": {"role": "secretary", "community_id": w["a2"]},
        "sec_b1": {"role": "secretary", "community_id": w["b1"]},
        "grid_a1": {"role": "grid_worker", "grid_id": w["g_a1"]},
        "grid_b1": {"role": "grid_worker", "grid_id": w["g_b1"]},
        "clerk_a1": {"role": "clerk", "community_id": w["a1"]},
        "res_a1": {"role": "resident", "community_id": w["a1"], "grid_id": w["g_a1"]},
        "res_b1": {"role": "resident", "community_id": w["b1"], "grid_id": w["g_b1"]},
    }
    for name, role in people.items():
        w.users[name] = make_user(session, name, role).id
    make_unit(session, w, "x", "A", "unit_x")
    make_unit(session, w, "y", "A", "unit_y")
    make_unit(session, w, "z", "B", "unit_z")
    w.ids["r_x"] = make_resource(session, w, "x", "unit_x", ["a1", "a2"])
    w.ids["r_y"] = make_resource(session, w, "y", "unit_y", ["a1"])
    w.ids["r_z"] = make_resource(session, w, "z", "unit_z", ["b1"])
    w.ids["d_a1"] = make_demand(session, w, "a1", "sec_a1", grid="g_a1", beneficiary="res_a1")
    w.ids["d_b1"] = make_demand(session, w, "b1", "sec_b1", grid="g_b1", beneficiary="res_b1")
    return w


def claim(world: World, unit: str, demand: str, quantity: int = 1, resource: str | None = None):
    return assignments.claim_demand(
        world.session, actor=world.actor(f"unit_{unit}"), demand_id=world[demand],
        unit_id=world[unit], resource_id=world[resource or f"r_{unit}"], quantity=quantity,
        now=NOW)


def pair(world: World, unit: str, community: str, starts_on: date = date(2026, 1, 1)):
    return units.create_pairing(world.session, actor=SYSTEM, unit_id=world[unit],
                                community_id=world[community], starts_on=starts_on, now=NOW)
