"""Real concurrency on volunteers (acceptance point 2, "under concurrency"): 32 volunteers claim
the same service post, or sign up for the same session, at the same moment.

Each thread has its own connection and session and calls the real service function (or the real
HTTP API on a threaded server), released together by a barrier (see fresh_db.py). A post never
takes more people than its headcount, every refusal is a clean 409 `post_full`, and a full
session puts exactly everyone past its headcount on the waiting list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW, migrate
from tests.factories import build_world, category_id, make_user
from tests.integration.fresh_db import (
    WAIT,
    FreshDatabase,
    Outcome,
    at_once,
    fresh_database_url,
    post_json,
)
from tests.live_server import serve
from web.db import make_engine, make_session_factory
from web.domain.actor import Actor
from web.domain.states import HOLDING_CLAIM
from web.models import PostClaim, ServicePost, SessionSignup
from web.services import activities, volunteers
from web.services.auth import issue_token

pytestmark = pytest.mark.db

CROWD = 32      # volunteers racing for the same places
HEADCOUNT = 5   # places of the post or the session


@dataclass
class Volunteer:
    name: str
    user_id: int
    actor: Actor


@pytest.fixture(scope="module")
def fresh_url(tmp_path_factory):
    yield from fresh_database_url(tmp_path_factory.mktemp("volunteer_cc"), "volunteer_cc")


@pytest.fixture(scope="module")
def fresh(fresh_url, fast_password_hashes):
    """A migrated database of its own with the usual world committed into it."""
    url = fresh_url
    migrate(url)
    engine = make_engine(url, pool_size=CROWD + 8, max_overflow=8, pool_timeout=WAIT)
    warm = [engine.connect() for _ in range(CROWD + 4)]  # the race is about rows, not connecting
    for conn in warm:
        conn.close()
    factory = make_session_factory(engine)
    session = factory()
    db = FreshDatabase(url, engine, factory, build_world(session))
    db.settle()
    yield db
    session.close()
    engine.dispose()


@pytest.fixture(scope="module")
def crowd(fresh) -> list[Volunteer]:
    """CROWD residents of a1, each a volunteer."""
    world, session = fresh.world, fresh.world.session
    people = []
    for i in range(CROWD):
        name = f"vol_{i}"
        user = make_user(session, name, {"role": "resident", "community_id": world["a1"],
                                         "grid_id": world["g_a1"]})
        world.users[name] = user.id
        volunteers.save_profile(session, actor=world.actor(name), data={"skills": ["陪护"]},
                                now=NOW)
        people.append(Volunteer(name, user.id, world.actor(name)))
    fresh.settle()
    return people


def new_post(db: FreshDatabase, headcount: int = HEADCOUNT) -> int:
    world = db.world
    post = volunteers.create_post(world.session, actor=world.actor("sec_a1"),
                                  community_id=world["a1"],
                                  data={"kind": "elderly_visiting", "title": "探访独居老人",
                                        "category_id": category_id(world.session),
                                        "headcount": headcount}, now=NOW)
    db.settle()
    return post.id


def new_session(db: FreshDatabase, headcount: int = HEADCOUNT) -> int:
    world = db.world
    act = activities.create_session(world.session, actor=world.actor("sec_a1"), data={
        "post_id": new_post(db), "title": "周六探访", "place": "社区活动室",
        "starts_at": NOW + timedelta(hours=1), "ends_at": NOW + timedelta(hours=3),
        "headcount": headcount}, now=NOW)
    db.settle()
    return act.id


def split(outcomes: list[Outcome]) -> tuple[list[Outcome], list[Outcome]]:
    """(successes, refusals); anything but a clean 409 post_full fails with its traceback."""
    unclean = [o for o in outcomes if o.error is not None and not (
        isinstance(o.error, volunteers.PostFullError) and o.error.status == 409
        and o.error.code == "post_full")]
    assert not unclean, f"{len(unclean)} calls failed other than with 409 post_full:\n" + \
        "\n".join(o.trace for o in unclean[:3])
    return [o for o in outcomes if o.error is None], [o for o in outcomes if o.error]


def post_state(db: FreshDatabase, post_id: int) -> tuple[int, list[int]]:
    """The post's `taken` and the users holding a place, as committed."""
    with db.factory() as session:
        taken = session.get(ServicePost, post_id).taken
        holders = list(session.scalars(select(PostClaim.user_id).where(
            PostClaim.post_id == post_id,
            PostClaim.status.in_([str(s) for s in HOLDING_CLAIM]))))
        return taken, holders


# ---- claims: the headcount holds -----------------------------------------------------------------

def test_32_volunteers_claiming_a_post_of_five_at_once_get_exactly_five_places(fresh, crowd):
    post_id = new_post(fresh)

    def claim(i: int) -> int:
        with fresh.factory() as session:
            return volunteers.claim_post(session, actor=crowd[i].actor, post_id=post_id,
                                         now=NOW).user_id

    outcomes = at_once(CROWD, claim)

    ok, refused = split(outcomes)
    assert len(ok) == HEADCOUNT and len(refused) == CROWD - HEADCOUNT
    taken, holders = post_state(fresh, post_id)
    assert taken == HEADCOUNT
    assert sorted(holders) == sorted(o.value for o in ok)


@pytest.fixture
def live_server(fresh):
    """The app on a real threaded server on 127.0.0.1, with its own engine as in production."""
    with serve(fresh.url, wait=WAIT) as url:
        yield url

def test_32_simultaneous_claim_requests_yield_five_201s_and_27_post_full_409s(fresh, crowd,
                                                                             live_server):
    post_id = new_post(fresh)
    session = fresh.world.session
    tokens = [issue_token(session, fresh.world.user(v.name), ttl_hours=1)[0] for v in crowd]
    fresh.settle()
    url = f"{live_server}/api/v1/posts/{post_id}/claims"

    outcomes = at_once(CROWD, lambda i: post_json(url, tokens[i], {}))

    errors = [o.trace for o in outcomes if o.error is not None]
    assert not errors, "client errors:\n" + "\n".join(errors)
    answers = [o.value for o in outcomes]
    assert sorted(status for status, _ in answers) == [201] * HEADCOUNT + [409] * (
        CROWD - HEADCOUNT)
    for status, body in answers:
        if status == 409:
            assert set(body) == {"error"}, body
            assert (body["error"]["status"], body["error"]["code"]) == (409, "post_full"), body
    created = sorted(body["user_id"] for status, body in answers if status == 201)
    taken, holders = post_state(fresh, post_id)
    assert taken == HEADCOUNT and sorted(holders) == created


# ---- sign-ups: the waiting list ------------------------------------------------------------------

def test_32_volunteers_signing_up_for_a_session_of_five_at_once_leave_27_on_the_waiting_list(
        fresh, crowd):
    session_id = new_session(fresh)

    def sign_up(i: int) -> str:
        with fresh.factory() as session:
            [signup] = activities.sign_up(session, actor=crowd[i].actor, session_id=session_id,
                                          now=NOW)
            return signup.status

    outcomes = at_once(CROWD, sign_up)

    errors = [o.trace for o in outcomes if o.error is not None]
    assert not errors, "sign-ups failed:\n" + "\n".join(errors[:3])
    statuses = sorted(o.value for o in outcomes)
    assert statuses == ["signed_up"] * HEADCOUNT + ["waitlisted"] * (CROWD - HEADCOUNT)
    with fresh.factory() as session:
        committed = dict(session.execute(
            select(SessionSignup.status, func.count()).where(
                SessionSignup.session_id == session_id).group_by(SessionSignup.status)).all())
    assert committed == {"signed_up": HEADCOUNT, "waitlisted": CROWD - HEADCOUNT}
