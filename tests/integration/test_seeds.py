"""The demo county: its sizes, every demand status, the logins, determinism, histories, coverage.

This module builds its own freshly migrated SQLite databases instead of using the shared
fixtures: seeding is database-agnostic, and the PostgreSQL run (TEST_DATABASE_URL) exercises the
services through the shared fixtures elsewhere, so here SQLite is used in both runs.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from alembic.config import Config
from sqlalchemy import func, select

from alembic import command
from seeds.demo import DEMO_LOGINS, is_empty, load_demo
from web.config import PROJECT_ROOT
from web.db import make_engine, make_session_factory
from web.domain.states import DemandStatus
from web.errors import ConflictError
from web.models import (
    Assignment,
    AuditEvent,
    Community,
    DemandItem,
    Grid,
    MicroWish,
    ResourceItem,
    RoleGrant,
    Subdistrict,
    Unit,
    User,
)
from web.services.auth import authenticate

pytestmark = pytest.mark.db

NOW = datetime(2026, 11, 21, 4, 0, tzinfo=UTC)
ACTIVE = ("pending", "offered", "approved", "accepted")
CONFIRMED = ("approved", "accepted")


class FreshDatabase:
    """A temporary SQLite file migrated to head, with one open session."""

    def __init__(self, path):
        url = f"sqlite:///{path}"
        config = Config(str(PROJECT_ROOT / "alembic.ini"))
        config.attributes["url"] = url
        config.attributes["configure_logger"] = False
        command.upgrade(config, "head")
        self.engine = make_engine(url)
        self.session = make_session_factory(self.engine)()

    def close(self) -> None:
        self.session.close()
        self.engine.dispose()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A factory of fresh migrated databases, all closed at the end of the module."""
    made = []

    def make() -> FreshDatabase:
        made.append(FreshDatabase(tmp_path_factory.mktemp("seed") / "demo.db"))
        return made[-1]

    yield make
    for db in made:
        db.close()


@pytest.fixture(scope="module")
def demo(fresh):
    """The demo county, loaded once for the module; yields (session, logins)."""
    db = fresh()
    assert is_empty(db.session)
    logins = load_demo(db.session, now=NOW)
    return db.session, logins


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_demo_county_has_the_promised_sizes(demo):
    session, _ = demo
    residents = select(RoleGrant.user_id).where(RoleGrant.role == "resident")
    assert count(session, Subdistrict) == 2
    assert count(session, Community) == 6
    assert 40 <= count(session, Grid) <= 60
    assert count(session, Grid, Grid.level == 2) >= 1
    assert 130 <= count(session, Unit) <= 170
    assert 270 <= count(session, DemandItem) <= 330
    assert 550 <= count(session, User, User.id.in_(residents)) <= 650


def test_every_demand_status_occurs_in_every_community(demo):
    session, _ = demo
    rows = session.execute(select(DemandItem.community_id, DemandItem.status).distinct()).all()
    by_community: dict[int, set[str]] = {}
    for community_id, status in rows:
        by_community.setdefault(community_id, set()).add(status)
    assert len(by_community) == 6
    for statuses in by_community.values():
        assert statuses == {str(s) for s in DemandStatus}


def test_units_come_in_every_type_and_state(demo):
    session, _ = demo
    types = Counter(session.scalars(select(Unit.type)))
    states = Counter(session.scalars(select(Unit.status)))
    assert set(types) == {"enterprise", "government", "public_institution",
                          "social_organisation", "non_public_company", "other"}
    assert states["approved"] > 100 and states["applied"] >= 1
    assert states["rejected"] >= 1 and states["suspended"] == 1


def test_demo_logins_cover_every_role_and_each_one_authenticates(demo):
    session, logins = demo
    assert logins == DEMO_LOGINS
    assert sorted(login["role"] for login in logins) == sorted(
        ["subdistrict_admin", "secretary", "grid_worker", "unit_admin", "clerk", "resident"])
    for login in logins:
        user = authenticate(session, login["username"], login["password"])
        assert user.display_name == login["display_name"]
        assert login["role"] in {g.role for g in user.grants}


def _user(session, role: str) -> User:
    username = next(login["username"] for login in DEMO_LOGINS if login["role"] == role)
    return session.scalar(select(User).where(User.username == username))


def test_demo_logins_each_see_a_full_picture(demo):
    session, _ = demo
    secretary = _user(session, "secretary").grants[0]
    statuses = set(session.scalars(select(DemandItem.status).where(
        DemandItem.community_id == secretary.community_id)))
    assert statuses == {str(s) for s in DemandStatus}

    unit_id = _user(session, "unit_admin").grants[0].unit_id
    assert session.get(Unit, unit_id).status == "approved"
    assert count(session, ResourceItem, ResourceItem.unit_id == unit_id,
                 ResourceItem.status == "published") >= 2
    claim_states = set(session.scalars(select(Assignment.status).where(
        Assignment.unit_id == unit_id, Assignment.origin == "claim")))
    assert {"pending", "approved", "rejected", "completed"} <= claim_states

    resident = _user(session, "resident")
    wish_states = set(session.scalars(select(MicroWish.status).where(
        MicroWish.resident_id == resident.id)))
    assert {"accepted", "declined", "submitted"} <= wish_states

    grid_id = _user(session, "grid_worker").grants[0].grid_id
    assert count(session, DemandItem, DemandItem.grid_id == grid_id) >= 1


def test_every_demand_has_a_history(demo):
    session, _ = demo
    with_history = select(AuditEvent.demand_id).where(AuditEvent.demand_id.is_not(None))
    assert count(session, DemandItem, DemandItem.id.not_in(with_history)) == 0


def test_coverage_numbers_agree_with_the_assignments(demo):
    session, _ = demo
    shares = session.execute(select(Assignment.demand_id, Assignment.status,
                                     Assignment.quantity)).all()
    active, confirmed = Counter(), Counter()
    for demand_id, status, quantity in shares:
        active[demand_id] += quantity if status in ACTIVE else 0
        confirmed[demand_id] += quantity if status in CONFIRMED else 0
    demands = session.scalars(select(DemandItem).where(
        DemandItem.status.in_(["open", "partly_covered", "covered"]))).all()
    assert demands
    for d in demands:
        assert d.quantity_open == d.quantity_needed - active[d.id], d.id
        assert d.quantity_confirmed == confirmed[d.id], d.id


def test_nothing_in_the_demo_happens_after_now(demo):
    session, _ = demo
    assert session.scalar(select(func.max(AuditEvent.created_at))) <= NOW


def test_the_demo_loads_only_into_an_empty_database(demo):
    session, _ = demo
    assert not is_empty(session)
    with pytest.raises(ConflictError):
        load_demo(session, now=NOW)


def test_the_demo_is_deterministic(demo, fresh):
    first, _ = demo
    second = fresh().session
    load_demo(second, now=NOW)

    def picture(session):
        return session.execute(select(DemandItem.id, DemandItem.title, DemandItem.status)
                               .order_by(DemandItem.id)).all()

    assert picture(first) == picture(second)
