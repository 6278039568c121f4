"""Service levels through the API: each item's due times, light and escalation in its JSON,
pausing and resuming with the one error shape, lists filtered by light and sorted by due time,
and the community's service-level settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.error_shape import refused
from tests.conftest import NOW
from tests.factories import make_demand
from web.services import demands

pytestmark = pytest.mark.db

API = "/api/v1"


def demand_url(world, key: str = "d_a1", action: str = "") -> str:
    return f"{API}/demands/{world[key]}" + (f"/{action}" if action else "")


def test_an_items_json_carries_its_due_times_light_and_level(client, world):
    data = client.get(demand_url(world), headers=world.headers("sec_a1")).json
    assert data["published_at"].startswith("2026-11-20T02:00")
    assert data["accept_due_at"].startswith("2026-11-21T02:00")
    assert data["close_due_at"].startswith("2026-11-23T02:00")
    assert data["sla_state"] in ("red", "amber", "green")
    assert (data["paused"], data["escalation_level"], data["unsatisfied_count"]) == (False, 0, 0)
    assert data["accepted_at"] is None and data["auto_confirmed"] is False


def test_pausing_and_resuming_through_the_api(client, world):
    sec = world.headers("sec_a1")
    paused = client.post(demand_url(world, action="pause"), headers=sec,
                         json={"reason": "等居民出院"})
    assert paused.status_code == 200, paused.json
    assert (paused.json["paused"], paused.json["pause_reason"]) == (True, "等居民出院")
    refused(client.post(demand_url(world, action="pause"), headers=sec,
                        json={"reason": "再停一次"}), 409, "conflict")
    resumed = client.post(demand_url(world, action="resume"), headers=sec, json={})
    assert resumed.status_code == 200 and resumed.json["paused"] is False
    refused(client.post(demand_url(world, action="resume"), headers=sec, json={}), 409)


def test_a_pause_without_a_reason_is_a_422_naming_the_field(client, world):
    error = refused(client.post(demand_url(world, action="pause"),
                                headers=world.headers("sec_a1"), json={}), 422)
    assert "reason" in error["fields"]


def test_a_units_admin_sees_that_an_item_is_paused_but_not_why(client, world):
    client.post(demand_url(world, action="pause"), headers=world.headers("sec_a1"),
                json={"reason": "等居民出院"})
    shown = client.get(demand_url(world), headers=world.headers("unit_y")).json
    assert shown["paused"] is True and shown["pause_reason"] is None


def test_lists_filter_by_light_and_sort_by_the_next_due_time(client, world):
    # The API reads the real clock, days after the tests' fixed NOW: both items are late.
    older = make_demand(world.session, world, "a1", "sec_a1", publish=False)
    demands.publish_demand(world.session, actor=world.actor("sec_a1"), demand_id=older,
                           now=NOW - timedelta(days=1))
    sec = world.headers("sec_a1")
    red = client.get(f"{API}/demands?sla_state=red&sort=next_due&community_id={world['a1']}",
                     headers=sec)
    assert red.status_code == 200
    assert [d["id"] for d in red.json["items"]] == [older, world["d_a1"]]
    assert all(d["sla_state"] == "red" for d in red.json["items"])
    refused(client.get(f"{API}/demands?sla_state=purple", headers=sec), 422)
    refused(client.get(f"{API}/demands?escalation_level=3", headers=sec), 422)
    assert client.get(f"{API}/demands?escalation_level=1", headers=sec).json["total"] == 0


def test_the_secretary_sets_the_service_levels_of_her_community(client, world):
    url = f"{API}/communities/{world['a1']}"
    changed = client.patch(url, headers=world.headers("sec_a1"), json={
        "accept_within_hours": 12, "close_within_days": 5, "sla_working_days": True,
        "escalate_after_hours": 8, "auto_confirm_days": 10})
    assert changed.status_code == 200, changed.json
    assert {k: changed.json[k] for k in ("accept_within_hours", "close_within_days",
                                         "sla_working_days", "escalate_after_hours",
                                         "auto_confirm_days")} == {
        "accept_within_hours": 12, "close_within_days": 5, "sla_working_days": True,
        "escalate_after_hours": 8, "auto_confirm_days": 10}
    error = refused(client.patch(url, headers=world.headers("sec_a1"),
                                 json={"close_within_days": 0, "auto_confirm_days": 1000}), 422)
    assert {"close_within_days", "auto_confirm_days"} <= set(error["fields"])
    error = refused(client.patch(url, headers=world.headers("sec_a1"),
                                 json={"accept_within_hours": 200}), 422)
    assert "accept_within_hours" in error["fields"]
