"""The whole co-building workflow through the API, step by step."""

import pytest

pytestmark = pytest.mark.db


def test_a_demand_goes_from_claim_to_closed_through_the_api(client, world):
    unit, sec, res = world.headers("unit_x"), world.headers("sec_a1"), world.headers("res_a1")
    d = world["d_a1"]
    r = client.post(f"/api/v1/demands/{d}/claims", headers=unit,
                    json={"unit_id": world["x"], "resource_id": world["r_x"], "quantity": 3})
    assert r.status_code == 201, r.json
    claim = r.json
    assert claim["status"] == "pending"
    r = client.post(f"/api/v1/assignments/{claim['id']}/approve", headers=sec)
    assert r.status_code == 200, r.json
    assert r.json["is_lead"] is True
    assert client.get(f"/api/v1/demands/{d}", headers=sec).json["status"] == "covered"
    r = client.post(f"/api/v1/demands/{d}/reports", headers=unit, json={
        "started_on": "2026-11-18", "ended_on": "2026-11-19", "beneficiaries_served": 1,
        "value_fen": 15000, "volunteers": [
            {"user_id": world.users["res_a1"], "hours": "2.5"},
            {"name": "张三", "phone": "13500000000", "hours": "1"}]})
    assert r.status_code == 201, r.json
    report = r.json
    r = client.post(f"/api/v1/reports/{report['id']}/verify", headers=sec)
    assert r.status_code == 200, r.json
    records = client.get("/api/v1/service-records", headers=sec).json
    assert records["total"] == 2
    assert sorted(x["minutes"] for x in records["items"]) == [60, 150]
    r = client.post(f"/api/v1/demands/{d}/confirmation", headers=res,
                    json={"rating": 5, "comment": "很好"})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "closed"
    history = client.get(f"/api/v1/demands/{d}/history", headers=sec).json
    steps = [(e["entity_type"], e["to_status"]) for e in history]
    assert ("demand_items", "closed") in steps and ("assignments", "approved") in steps
