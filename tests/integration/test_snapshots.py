"""Daily figures: the nightly snapshot of each community's and each unit's day (the same numbers
as the dashboard), replaced in place when run again, and read back by those who may see them —
on the service and through GET /api/v1/figures/daily."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import NOW
from tests.factories import claim
from web.errors import NotFoundError, PermissionDeniedError, ValidationError
from web.models import DailyFigures
from web.services import assignments
from web.services.snapshots import list_daily_figures, snapshot_daily_figures

pytestmark = pytest.mark.db

DAY = date(2026, 11, 20)  # NOW's day in Shanghai
NEXT_NIGHT = NOW + timedelta(hours=15)  # 01:00 on the 21st in Shanghai


def approved_claim(world, unit: str) -> None:
    made = claim(world, unit, "d_a1")
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"), assignment_id=made.id,
                              now=NOW)


def stored(session, day: date = DAY) -> dict[tuple[str, int], DailyFigures]:
    session.expire_all()
    return {(f.scope, f.scope_id): f for f in session.scalars(
        select(DailyFigures).where(DailyFigures.day == day))}


def figures_of(session, scope: str, scope_id: int, day: date = DAY) -> dict:
    return json.loads(stored(session, day)[(scope, scope_id)].figures)


# ---- the snapshot -------------------------------------------------------------------------------

def test_the_snapshot_of_yesterday_holds_each_community_and_each_unit(world):
    approved_claim(world, "x")

    outcome = snapshot_daily_figures(world.session, now=NEXT_NIGHT)

    assert outcome == {"day": "2026-11-20", "communities": 3, "units": 3}
    assert set(stored(world.session)) == {("community", world[c]) for c in ("a1", "a2", "b1")} | {
        ("unit", world[u]) for u in ("x", "y", "z")}
    a1 = figures_of(world.session, "community", world["a1"])
    assert (a1["claimed"], a1["published"], a1["closed"]) == (1, 1, 0)
    assert a1["same_day_rate"] == "100.0"
    assert figures_of(world.session, "community", world["a2"])["published"] == 0
    unit_x = figures_of(world.session, "unit", world["x"])
    assert (unit_x["claimed"], unit_x["activities"]) == (1, None)
    assert figures_of(world.session, "unit", world["y"])["claimed"] == 0


def test_the_snapshot_agrees_with_the_dashboards_figures_for_the_day(world):
    from web.domain.actor import SYSTEM
    from web.services.figures import subdistrict_figures

    approved_claim(world, "x")
    snapshot_daily_figures(world.session, now=NEXT_NIGHT)
    dashboard = subdistrict_figures(world.session, actor=SYSTEM, subdistrict_id=world["A"],
                                    start=DAY, end=DAY, now=NEXT_NIGHT)
    for row in dashboard.by_community:
        kept = figures_of(world.session, "community", row.key)
        assert (kept["claimed"], kept["published"], kept["minutes"]) == (
            row.claimed, row.published, row.minutes)


def test_running_the_snapshot_twice_leaves_the_same_rows(world):
    approved_claim(world, "x")
    snapshot_daily_figures(world.session, now=NEXT_NIGHT)
    first = {k: (f.id, f.figures, f.created_at) for k, f in stored(world.session).items()}

    snapshot_daily_figures(world.session, now=NEXT_NIGHT)

    assert {k: (f.id, f.figures, f.created_at)
            for k, f in stored(world.session).items()} == first


def test_a_second_run_replaces_the_days_figures_in_place(world):
    approved_claim(world, "x")
    snapshot_daily_figures(world.session, now=NEXT_NIGHT)
    first_id = stored(world.session)[("community", world["a1"])].id
    approved_claim(world, "y")  # a late correction to the same day

    snapshot_daily_figures(world.session, now=NEXT_NIGHT + timedelta(hours=1))

    row = stored(world.session)[("community", world["a1"])]
    assert (row.id, json.loads(row.figures)["claimed"]) == (first_id, 2)
    assert row.created_at == NEXT_NIGHT + timedelta(hours=1)


def test_each_day_keeps_its_own_rows(world):
    approved_claim(world, "x")
    snapshot_daily_figures(world.session, now=NEXT_NIGHT)
    snapshot_daily_figures(world.session, now=NEXT_NIGHT, day=DAY - timedelta(days=1))
    assert figures_of(world.session, "community", world["a1"])["claimed"] == 1
    assert figures_of(world.session, "community", world["a1"], DAY - timedelta(days=1))[
        "claimed"] == 0


# ---- reading them back --------------------------------------------------------------------------

def read(world, who: str, scope: str = "community", key: str = "a1", **period):
    return list_daily_figures(world.session, actor=world.actor(who), scope=scope,
                              scope_id=world[key], now=NEXT_NIGHT, **period)


@pytest.fixture
def two_days(world):
    approved_claim(world, "x")
    snapshot_daily_figures(world.session, now=NEXT_NIGHT)
    snapshot_daily_figures(world.session, now=NEXT_NIGHT, day=DAY - timedelta(days=1))


def test_the_secretary_reads_her_communitys_days_oldest_first(world, two_days):
    page = read(world, "sec_a1")
    assert [(r["day"], r["figures"]["claimed"]) for r in page.items] == [
        (DAY - timedelta(days=1), 0), (DAY, 1)]
    assert page.total == 2


def test_a_period_narrows_the_days(world, two_days):
    assert [r["day"] for r in read(world, "admin_a", start=DAY, end=DAY).items] == [DAY]


def test_the_default_period_is_the_thirty_days_up_to_yesterday(world, two_days):
    late = list_daily_figures(world.session, actor=world.actor("admin_a"), scope="community",
                              scope_id=world["a1"], now=NEXT_NIGHT + timedelta(days=29))
    assert [r["day"] for r in late.items] == [DAY]


@pytest.mark.parametrize("who, scope, key", [
    ("sec_a2", "community", "a1"),
    ("admin_b", "community", "a1"),
    ("res_a1", "community", "a1"),
    ("unit_y", "unit", "x"),
    ("admin_b", "unit", "x"),
    ("sec_a1", "unit", "x"),
])
def test_figures_outside_the_readers_scope_are_refused(world, two_days, who, scope, key):
    with pytest.raises(PermissionDeniedError):
        read(world, who, scope, key)


@pytest.mark.parametrize("who", ["unit_x", "admin_a"])
def test_a_units_figures_are_read_by_its_admin_and_its_subdistricts_admin(world, two_days, who):
    assert [r["figures"]["claimed"] for r in read(world, who, "unit", "x").items] == [0, 1]


def test_an_unknown_community_or_unit_is_not_found(world):
    for scope in ("community", "unit"):
        with pytest.raises(NotFoundError):
            list_daily_figures(world.session, actor=world.actor("admin_a"), scope=scope,
                               scope_id=999_999, now=NEXT_NIGHT)


def test_a_backwards_period_or_an_unknown_scope_is_refused(world):
    with pytest.raises(ValidationError):
        read(world, "admin_a", start=DAY, end=DAY - timedelta(days=1))
    with pytest.raises(ValidationError):
        list_daily_figures(world.session, actor=world.actor("admin_a"), scope="grid",
                           scope_id=world["g_a1"], now=NEXT_NIGHT)


# ---- the API ------------------------------------------------------------------------------------

def test_the_api_lists_a_communitys_daily_figures(client, world, two_days):
    r = client.get(f"/api/v1/figures/daily?community_id={world['a1']}"
                   f"&start=2026-11-19&end=2026-11-20", headers=world.headers("admin_a"))
    assert r.status_code == 200, r.json
    assert (r.json["total"], r.json["per_page"]) == (2, 100)
    assert [(i["day"], i["scope"], i["scope_id"], i["figures"]["claimed"])
            for i in r.json["items"]] == [("2026-11-19", "community", world["a1"], 0),
                                          ("2026-11-20", "community", world["a1"], 1)]


def test_the_api_lists_a_units_daily_figures_to_its_admin(client, world, two_days):
    r = client.get(f"/api/v1/figures/daily?unit_id={world['x']}&start=2026-11-20",
                   headers=world.headers("unit_x"))
    assert r.status_code == 200, r.json
    assert [(i["scope"], i["scope_id"], i["figures"]["claimed"]) for i in r.json["items"]] == [
        ("unit", world["x"], 1)]


@pytest.mark.parametrize("query, status", [
    ("", 422),
    ("community_id={a1}&unit_id={x}", 422),
    ("community_id=99999999999", 422),
    ("community_id={a1}&start=2026-11-20&end=2026-11-01", 422),
    ("community_id={a1}&start=20-11-2026", 422),
    ("community_id=999999", 404),
    ("unit_id=999999", 404),
])
def test_bad_api_queries_are_client_errors(client, world, query, status):
    r = client.get(f"/api/v1/figures/daily?{query.format(a1=world['a1'], x=world['x'])}",
                   headers=world.headers("admin_a"))
    assert r.status_code == status, r.json
    assert r.json["error"]["status"] == status


def test_the_api_refuses_another_subdistricts_admin_and_anonymous_readers(client, world):
    url = f"/api/v1/figures/daily?community_id={world['a1']}"
    assert client.get(url, headers=world.headers("admin_b")).status_code == 403
    assert client.get(url).status_code == 401
