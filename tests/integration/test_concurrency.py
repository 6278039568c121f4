"""Real concurrency: many threads, each with its own connection, hitting the same rows at once.

The usual fixtures run a test inside one connection's rolled-back transaction, which cannot show
what happens when 32 connections race for the last open slot. These tests build their own fresh
database instead — a new SQLite file, or a new PostgreSQL database beside TEST_DATABASE_URL that
is dropped afterwards — migrate it, commit a world into it, and fire the calls from real threads
released together by a barrier.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW, migrate
from tests.factories import build_world, make_demand, make_resource, make_unit
from tests.integration.fresh_db import WAIT, FreshDatabase, Outcome, at_once, post_json
from tests.integration.fresh_db import postgres_database as _postgres_database
from tests.live_server import serve
from web.db import make_engine, make_session_factory
from web.domain.actor import Actor
from web.errors import ConflictError, NotFoundError
from web.models import Assignment, AuditEvent, DemandItem, ResourceItem
from web.services import assignments, demands
from web.services.auth import issue_token

pytestmark = pytest.mark.db

CROWD = 32          # units racing for the same demand
ENGINE_OPTIONS = {"pool_size": 40, "max_overflow": 10, "pool_timeout": WAIT}


# ---- a fresh database with committed data ---------------------------------------------------

@pytest.fixture(scope="module")
def fresh_url(tmp_path_factory):
    base_url = os.environ.get("TEST_DATABASE_URL")
    if base_url and base_url.startswith("postgresql"):
        yield from _postgres_database(base_url, "concurrency")
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('concurrency') / 'race.db'}"


@pytest.fixture(scope="module")
def fresh(fresh_url, fast_password_hashes):
    migrate(fresh_url)
    engine = make_engine(fresh_url, **ENGINE_OPTIONS)
    # Open every pooled connection once, so the race is about rows, not about connecting.
    warm = [engine.connect() for _ in range(CROWD + 4)]
    for conn in warm:
        conn.close()
    factory = make_session_factory(engine)
    session = factory()
    db = FreshDatabase(fresh_url, engine, factory, build_world(session))
    db.settle()
    yield db
    session.close()
    engine.dispose()


@dataclass
class Member:
    """One unit of the crowd: its id, its published resource, its admin's name and Actor."""

    key: str
    unit_id: int
    resource_id: int
    admin: str
    actor: Actor


def add_units(db: FreshDatabase, prefix: str, count: int, **resource) -> list[Member]:
    """`count` approved units in subdistrict A, each with a published resource serving a1."""
    world, session = db.world, db.world.session
    members = []
    for i in range(count):
        key, admin = f"{prefix}{i}", f"admin_{prefix}{i}"
        make_unit(session, world, key, "A", admin)
        resource_id = make_resource(session, world, key, admin, ["a1"], **resource)
        members.append(Member(key, world[key], resource_id, admin, world.actor(admin)))
    db.settle()
    return members


@pytest.fixture(scope="module")
def crowd(fresh) -> list[Member]:
    """32 approved units, each with a published resource (100 left) serving community a1."""
    return add_units(fresh, "crowd", CROWD)


def new_demand(db: FreshDatabase, quantity: int) -> int:
    demand_id = make_demand(db.world.session, db.world, "a1", "sec_a1", quantity=quantity)
    db.settle()
    return demand_id


# ---- firing at the same moment ---------------------------------------------------------------

def in_own_session(db: FreshDatabase, service, **kwargs) -> int:
    """Call a service function in a session of its own; the id of the row it returns."""
    with db.factory() as session:
        return service(session, **kwargs).id


def split(outcomes: list[Outcome], refusals: tuple = (ConflictError,)
          ) -> tuple[list[Outcome], list[Outcome]]:
    """(successes, refusals); any other error fails the test with its traceback."""
    unexpected = [o for o in outcomes
                  if o.error is not None and not isinstance(o.error, refusals)]
    assert not unexpected, "unexpected errors:\n" + "\n".join(o.trace for o in unexpected)
    ok = [o for o in outcomes if o.error is None]
    refused = [o for o in outcomes if o.error is not None]
    if refusals == (ConflictError,):
        assert all(o.error.status == 409 for o in refused)
    return ok, refused


def claim_call(db: FreshDatabase, member: Member, demand_id: int, quantity: int = 1):
    return lambda _i: in_own_session(
        db, assignments.claim_demand, actor=member.actor, demand_id=demand_id,
        unit_id=member.unit_id, resource_id=member.resource_id, quantity=quantity, now=NOW)


# ---- reading the committed state -------------------------------------------------------------

def demand_row(db: FreshDatabase, demand_id: int) -> DemandItem:
    with db.factory() as session:
        return session.get(DemandItem, demand_id)


def remaining(db: FreshDatabase, resource_id: int) -> int:
    with db.factory() as session:
        return session.get(ResourceItem, resource_id).quantity_remaining


def active_assignments(db: FreshDatabase, demand_id: int) -> list[Assignment]:
    with db.factory() as session:
        return list(session.scalars(select(Assignment).where(
            Assignment.active_demand_id == demand_id)))


def events(db: FreshDatabase, demand_id: int, **where) -> int:
    with db.factory() as session:
        stmt = select(func.count()).select_from(AuditEvent).where(
            AuditEvent.demand_id == demand_id)
        for column, value in where.items():
            stmt = stmt.where(getattr(AuditEvent, column) == value)
        return session.scalar(stmt)


# ---- the services, called from threads ---------------------------------------------------------

def test_exactly_one_of_32_units_gets_the_last_open_slot(fresh, crowd):
    demand_id = new_demand(fresh, quantity=1)
    before = {m.resource_id: remaining(fresh, m.resource_id) for m in crowd}

    outcomes = at_once(CROWD, lambda i: claim_call(fresh, crowd[i], demand_id)(i))

    ok, conflicts = split(outcomes)
    assert len(ok) == 1 and len(conflicts) == CROWD - 1
    demand = demand_row(fresh, demand_id)
    assert demand.quantity_open == 0 and demand.quantity_confirmed == 0
    active = active_assignments(fresh, demand_id)
    assert [a.id for a in active] == [ok[0].value]
    winner = active[0]
    assert winner.status == "pending" and winner.quantity == 1
    # only the winner's resource gave anything; the 31 losers' rollbacks left theirs whole
    after = {m.resource_id: remaining(fresh, m.resource_id) for m in crowd}
    assert {r: before[r] - after[r] for r in before if before[r] != after[r]} == {
        winner.resource_id: 1}
    assert events(fresh, demand_id, action="claimed") == 1


def test_concurrent_claims_never_take_more_than_the_demand_needs(fresh, crowd):
    demand_id = new_demand(fresh, quantity=5)

    outcomes = at_once(CROWD, lambda i: claim_call(fresh, crowd[i], demand_id)(i))

    ok, conflicts = split(outcomes)
    assert len(ok) == 5 and len(conflicts) == CROWD - 5
    assert demand_row(fresh, demand_id).quantity_open == 0
    active = active_assignments(fresh, demand_id)
    assert sorted(a.id for a in active) == sorted(o.value for o in ok)
    assert sum(a.quantity for a in active) == 5
    assert len({a.unit_id for a in active}) == 5


def test_one_unit_cannot_hold_two_open_claims_even_when_sent_at_once(fresh, crowd):
    member = crowd[0]
    demand_id = new_demand(fresh, quantity=10)
    before = remaining(fresh, member.resource_id)

    outcomes = at_once(16, claim_call(fresh, member, demand_id))

    ok, conflicts = split(outcomes)
    assert len(ok) == 1 and len(conflicts) == 15
    assert demand_row(fresh, demand_id).quantity_open == 9
    assert [a.id for a in active_assignments(fresh, demand_id)] == [ok[0].value]
    assert remaining(fresh, member.resource_id) == before - 1


def test_concurrent_claims_never_take_more_than_a_resource_has_left(fresh):
    (member,) = add_units(fresh, "scarce", 1, quantity=3, capacity=1)
    demand_ids = [new_demand(fresh, quantity=2) for _ in range(10)]

    outcomes = at_once(10, lambda i: claim_call(fresh, member, demand_ids[i])(i))

    ok, conflicts = split(outcomes)
    assert len(ok) == 3 and len(conflicts) == 7
    assert remaining(fresh, member.resource_id) == 0
    opens = sorted(demand_row(fresh, d).quantity_open for d in demand_ids)
    assert opens == [1, 1, 1] + [2] * 7  # the losers' demands were given back whole
    claimed = [a for d in demand_ids for a in active_assignments(fresh, d)]
    assert sorted(a.id for a in claimed) == sorted(o.value for o in ok)


def test_concurrent_approvals_of_a_team_keep_one_lead_and_exact_coverage(fresh, crowd):
    team = crowd[:6]
    demand_id = new_demand(fresh, quantity=6)
    claim_ids = []
    for member in team:
        with fresh.factory() as session:
            claim_ids.append(assignments.claim_demand(
                session, actor=member.actor, demand_id=demand_id, unit_id=member.unit_id,
                resource_id=member.resource_id, quantity=1, now=NOW).id)
    secretary = fresh.world.actor("sec_a1")
    fresh.settle()

    outcomes = at_once(6, lambda i: in_own_session(
        fresh, assignments.approve_claim, actor=secretary, assignment_id=claim_ids[i], now=NOW))

    ok, conflicts = split(outcomes)
    assert len(ok) == 6 and not conflicts
    demand = demand_row(fresh, demand_id)
    assert demand.status == "covered"
    assert demand.quantity_confirmed == 6 and demand.quantity_open == 0
    team_rows = active_assignments(fresh, demand_id)
    assert sorted(a.id for a in team_rows) == sorted(claim_ids)
    assert {a.status for a in team_rows} == {"approved"}
    assert sum(a.is_lead for a in team_rows) == 1
    assert events(fresh, demand_id, action="lead_assigned") == 1
    assert events(fresh, demand_id, entity_type="demand_items", to_status="covered") == 1


# ---- the same race through HTTP --------------------------------------------------------------

@pytest.fixture
def live_server(fresh):
    """The app on a real threaded server on 127.0.0.1, with its own engine as in production."""
    with serve(fresh.url, wait=WAIT) as url:
        yield url

def test_32_simultaneous_claim_requests_yield_one_201_and_31_409s(fresh, crowd, live_server):
    demand_id = new_demand(fresh, quantity=1)
    session = fresh.world.session
    tokens = [issue_token(session, fresh.world.user(m.admin), ttl_hours=1)[0] for m in crowd]
    fresh.settle()
    url = f"{live_server}/api/v1/demands/{demand_id}/claims"

    outcomes = at_once(CROWD, lambda i: post_json(url, tokens[i], {
        "unit_id": crowd[i].unit_id, "resource_id": crowd[i].resource_id, "quantity": 1}))

    errors = [o.trace for o in outcomes if o.error is not None]
    assert not errors, "client errors:\n" + "\n".join(errors)
    answers = [o.value for o in outcomes]
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] + [409] * (CROWD - 1), statuses
    (created,) = [body for status, body in answers if status == 201]
    assert created["demand_id"] == demand_id and created["status"] == "pending"
    for status, body in answers:
        if status == 409:
            assert body["error"]["status"] == 409
            assert body["error"]["code"] == "conflict"
            assert body["error"]["message"]
    assert demand_row(fresh, demand_id).quantity_open == 0
    assert [a.id for a in active_assignments(fresh, demand_id)] == [created["id"]]



# ---- racing moves on the same claim or demand -------------------------------------------------
# Two moves on one row must serialise: the loser sees the winner's result and is refused with a
# 409 (or a 404 once the demand is gone from the unit's view), never applied twice or deadlocked.

def pending_claims(db: FreshDatabase, members: list[Member], demand_id: int) -> list[int]:
    ids = []
    for member in members:
        with db.factory() as session:
            ids.append(assignments.claim_demand(
                session, actor=member.actor, demand_id=demand_id, unit_id=member.unit_id,
                resource_id=member.resource_id, quantity=1, now=NOW).id)
    return ids


def test_a_claim_approved_by_eight_requests_at_once_is_approved_and_counted_once(fresh, crowd):
    demand_id = new_demand(fresh, quantity=4)
    (claim_id,) = pending_claims(fresh, crowd[6:7], demand_id)
    secretary = fresh.world.actor("sec_a1")
    fresh.settle()

    outcomes = at_once(8, lambda _i: in_own_session(
        fresh, assignments.approve_claim, actor=secretary, assignment_id=claim_id, now=NOW))

    ok, refused = split(outcomes)
    assert len(ok) == 1 and len(refused) == 7
    demand = demand_row(fresh, demand_id)
    assert (demand.status, demand.quantity_confirmed, demand.quantity_open) == (
        "partly_covered", 1, 3)
    assert events(fresh, demand_id, entity_type="assignments", action="approved") == 1
    assert events(fresh, demand_id, action="lead_assigned") == 1


def test_a_claim_approved_and_withdrawn_at_the_same_moment_ends_one_way_only(fresh, crowd):
    team = crowd[7:13]
    demand_id = new_demand(fresh, quantity=6)
    claim_ids = pending_claims(fresh, team, demand_id)
    secretary = fresh.world.actor("sec_a1")
    fresh.settle()
    before = {m.resource_id: remaining(fresh, m.resource_id) for m in team}

    def move(i: int) -> int:
        k = i // 2
        if i % 2 == 0:
            return in_own_session(fresh, assignments.approve_claim, actor=secretary,
                                  assignment_id=claim_ids[k], now=NOW)
        return in_own_session(fresh, assignments.withdraw_claim, actor=team[k].actor,
                              assignment_id=claim_ids[k], reason="换人", now=NOW)

    outcomes = at_once(12, move)

    split(outcomes)
    with fresh.factory() as session:
        rows = [session.get(Assignment, a) for a in claim_ids]
    for k, row in enumerate(rows):
        approved, withdrawn = outcomes[2 * k], outcomes[2 * k + 1]
        assert (approved.error is None) != (withdrawn.error is None), f"claim {row.id}"
        if approved.error is None:
            assert row.status == "approved" and row.active_demand_id == demand_id
        else:
            assert row.status == "withdrawn" and row.active_demand_id is None
    kept = [row for row in rows if row.status == "approved"]
    demand = demand_row(fresh, demand_id)
    assert demand.quantity_confirmed == len(kept)
    assert demand.quantity_open == 6 - len(kept)
    assert sum(row.is_lead for row in kept) == (1 if kept else 0)
    for member, row in zip(team, rows, strict=True):
        given_back = remaining(fresh, member.resource_id) - before[member.resource_id]
        assert given_back == (1 if row.status == "withdrawn" else 0), f"claim {row.id}"


def test_no_claim_stays_open_on_a_demand_cancelled_while_units_claim_it(fresh, crowd):
    claimants = crowd[13:29]
    demand_id = new_demand(fresh, quantity=20)
    secretary = fresh.world.actor("sec_a1")
    fresh.settle()
    before = {m.resource_id: remaining(fresh, m.resource_id) for m in claimants}

    def move(i: int) -> int:
        if i == 0:
            return in_own_session(fresh, demands.cancel_demand, actor=secretary,
                                  demand_id=demand_id, reason="老人已搬走", now=NOW)
        return claim_call(fresh, claimants[i - 1], demand_id)(i)

    outcomes = at_once(len(claimants) + 1, move)

    split(outcomes, refusals=(ConflictError, NotFoundError))
    assert outcomes[0].error is None
    demand = demand_row(fresh, demand_id)
    assert demand.status == "cancelled"
    assert active_assignments(fresh, demand_id) == []
    assert demand.quantity_open == 20 and demand.quantity_confirmed == 0
    assert {m.resource_id: remaining(fresh, m.resource_id) for m in claimants} == before
