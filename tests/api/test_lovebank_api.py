"""The love bank through the HTTP API: rules, awards, statements, gifts, corrections, idempotency.

Set-up goes through the services (tests/integration/lovebank_helpers.py, at the fixed NOW);
the requests under test run at the real time, as a client's would. Every refusal is checked for
the one error shape and for having moved nothing.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.api.error_shape import refused
from tests.integration.lovebank_helpers import (
    RULES,
    award,
    balance,
    books_ok,
    fund_wallet,
    journal_state,
    key,
    keyed,
    publish,
    resident,
)

pytestmark = pytest.mark.db

API = "/api/v1"


def shanghai_today():
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def statement(client, world, viewer: str = "res_a1", **query) -> list[dict]:
    r = client.get(f"{API}/ledger/statement", headers=world.headers(viewer), query_string=query)
    assert r.status_code == 200, r.json
    return r.json


@pytest.fixture
def gifts_on(client, world):
    """Community a1 allows gifts (through the API); res_a1 holds 100 points; res_a1b lives there."""
    r = client.patch(f"{API}/communities/{world['a1']}/love-bank-settings",
                     headers=world.headers("sec_a1"), json={"allow_gifts": True})
    assert r.status_code == 200, r.json
    assert r.json["allow_gifts"] is True
    fund_wallet(world, "res_a1", 100)
    resident(world, "res_a1b")
    return world


# ---- rules --------------------------------------------------------------------------------------

def test_a_secretary_publishes_versions_of_the_rules_that_anyone_signed_in_can_read(client, world):
    sec = world.headers("sec_a1")
    url = f"{API}/communities/{world['a1']}/points-rules"
    today = shanghai_today()
    first = client.post(url, headers=sec, json={"document": RULES,
                                                "effective_from": today.isoformat()})
    assert first.status_code == 201, first.json
    assert first.json["version"] == 1 and first.json["document"]["daily_cap"] == 50
    changed = {**RULES, "daily_cap": 80}
    second = client.post(url, headers=sec, json={
        "document": changed, "effective_from": (today + timedelta(days=10)).isoformat(),
        "note": "提高每日上限"})
    assert second.status_code == 201, second.json
    listed = client.get(url, headers=world.headers("res_a1"))
    assert listed.status_code == 200, listed.json
    assert [(v["version"], v["document"]["daily_cap"]) for v in listed.json] == [(2, 80), (1, 50)]


def test_rules_for_a_past_day_are_refused(client, world):
    before = journal_state(world)
    r = client.post(f"{API}/communities/{world['a1']}/points-rules",
                    headers=world.headers("sec_a1"),
                    json={"document": RULES,
                          "effective_from": (shanghai_today() - timedelta(days=1)).isoformat()})
    assert "effective_from" in refused(r, 422, "validation_error")["fields"]
    assert journal_state(world) == before


@pytest.mark.parametrize("document", [
    pytest.param({**RULES, "per_hour": {"elderly_care": -5}}, id="negative points per hour"),
    pytest.param({**RULES, "multipliers": {"urgent": 50}}, id="a multiplier below 100 percent"),
    pytest.param({**RULES, "bonus": 10}, id="an unknown field"),
    pytest.param({**RULES, "rounding": "sideways"}, id="an unknown rounding"),
])
def test_a_broken_rules_document_is_refused_naming_the_field(client, world, document):
    before = journal_state(world)
    r = client.post(f"{API}/communities/{world['a1']}/points-rules",
                    headers=world.headers("sec_a1"),
                    json={"document": document, "effective_from": shanghai_today().isoformat()})
    error = refused(r, 422, "validation_error")
    assert any(name.startswith("document.") for name in error["fields"]), error
    assert journal_state(world) == before


# ---- awards and statements ----------------------------------------------------------------------

def test_an_award_credits_every_named_resident_and_shows_on_their_statements(client, world):
    publish(world)
    resident(world, "res_a1b")
    r = client.post(f"{API}/ledger/awards", headers=keyed(world.headers("sec_a1")),
                    json={"community_id": world["a1"], "activity": "building_head",
                          "user_ids": [world.users["res_a1"], world.users["res_a1b"]],
                          "reason": "担任楼栋长"})
    assert r.status_code == 201, r.json
    transfer = r.json
    assert transfer["kind"] == "award" and transfer["rule_version"] == 1
    assert sum(e["amount"] for e in transfer["entries"]) == 0
    assert balance(world, "res_a1") == 20 and balance(world, "res_a1b") == 20
    (wallet,) = statement(client, world)
    assert wallet["balance"] == 20 and wallet["usable"] == 20
    assert [(lot["remaining"], lot["expires_on"]) for lot in wallet["lots"]] == [(20, None)]
    (line,) = wallet["lines"]
    assert (line["amount"], line["kind"], line["reason"], line["source_type"],
            line["transfer_id"]) == (20, "award", "担任楼栋长", "award", transfer["id"])
    books_ok(world)


def test_points_that_expire_show_their_expiry_day_on_the_statement(client, world):
    r = client.patch(f"{API}/communities/{world['a1']}/love-bank-settings",
                     headers=world.headers("sec_a1"), json={"points_expiry_months": 12})
    assert r.status_code == 200 and r.json["points_expiry_months"] == 12, r.json
    fund_wallet(world, "res_a1", 30)
    (wallet,) = statement(client, world)
    assert [lot["expires_on"] for lot in wallet["lots"]] == ["2027-11-20"]


def test_the_statement_csv_starts_with_a_utf8_bom_and_lists_every_line(client, world):
    publish(world)
    award(world, "res_a1")
    fund_wallet(world, "res_a1", 15)
    r = client.get(f"{API}/ledger/statement.csv", headers=world.headers("res_a1"))
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    assert r.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0] == ["at", "community_id", "amount", "kind", "reason", "source_type",
                       "source_id", "transfer_id"]
    assert sorted((row[2], row[3], row[4]) for row in rows[1:]) == [
        ("15", "adjustment", "测试充值"), ("20", "award", "为社区服务")]
    assert {row[1] for row in rows[1:]} == {str(world["a1"])}


def test_a_secretary_reads_a_residents_statement_but_a_resident_reads_only_their_own(
        client, world):
    fund_wallet(world, "res_a1", 40)
    (wallet,) = statement(client, world, "sec_a1", user_id=world.users["res_a1"])
    assert wallet["user_id"] == world.users["res_a1"] and wallet["balance"] == 40
    r = client.get(f"{API}/ledger/statement", headers=world.headers("res_b1"),
                   query_string={"user_id": world.users["res_a1"]})
    refused(r, 404, "not_found")
    r = client.get(f"{API}/ledger/statement.csv", headers=world.headers("res_b1"),
                   query_string={"user_id": world.users["res_a1"]})
    refused(r, 404, "not_found")
    assert statement(client, world, "res_b1") == []


def test_an_award_to_someone_who_is_not_a_resident_of_the_community_is_refused(client, world):
    publish(world)
    before = journal_state(world)
    for stranger in ("res_b1", "sec_a1", "unit_x"):
        r = client.post(f"{API}/ledger/awards", headers=keyed(world.headers("sec_a1")),
                        json={"community_id": world["a1"], "activity": "building_head",
                              "user_ids": [world.users["res_a1"], world.users[stranger]],
                              "reason": "楼栋长"})
        assert "user_ids" in refused(r, 422, "validation_error")["fields"]
    assert journal_state(world) == before


@pytest.mark.parametrize("change", [
    pytest.param({"activity": "flying"}, id="an activity the rules do not name"),
    pytest.param({"user_ids": []}, id="nobody"),
    pytest.param({"user_ids": [987_654]}, id="an unknown user"),
    pytest.param({"reason": ""}, id="no reason"),
    pytest.param({"day": "2099-01-01"}, id="a day to come"),
])
def test_an_award_with_bad_input_is_refused_and_moves_nothing(client, world, change):
    publish(world)
    before = journal_state(world)
    body = {"community_id": world["a1"], "activity": "building_head",
            "user_ids": [world.users["res_a1"]], "reason": "楼栋长", **change}
    r = client.post(f"{API}/ledger/awards", headers=keyed(world.headers("sec_a1")), json=body)
    refused(r, 422, "validation_error")
    assert journal_state(world) == before


def test_an_award_without_published_rules_is_refused(client, world):
    before = journal_state(world)
    r = client.post(f"{API}/ledger/awards", headers=keyed(world.headers("sec_a1")),
                    json={"community_id": world["a1"], "activity": "building_head",
                          "user_ids": [world.users["res_a1"]], "reason": "楼栋长"})
    assert "activity" in refused(r, 422, "validation_error")["fields"]
    assert journal_state(world) == before


def test_an_award_beyond_everyones_daily_cap_is_refused(client, world):
    publish(world, rules={**RULES, "daily_cap": 20})
    body = {"community_id": world["a1"], "activity": "building_head",
            "user_ids": [world.users["res_a1"]], "reason": "楼栋长"}
    first = client.post(f"{API}/ledger/awards", headers=keyed(world.headers("sec_a1")), json=body)
    assert first.status_code == 201, first.json
    before = journal_state(world)
    r = client.post(f"{API}/ledger/awards", headers=keyed(world.headers("sec_a1")),
                    json={**body, "reason": "又一次"})
    refused(r, 409, "conflict")
    assert journal_state(world) == before and balance(world) == 20


# ---- gifts (爱心传递) ---------------------------------------------------------------------------

def gift(client, world, to: str = "res_a1b", points: int = 30, giver: str = "res_a1",
         idempotency_key: str | None = None, **extra):
    body = {"community_id": world["a1"], "to_user_id": world.users[to], "points": points,
            "reason": "爱心传递", **extra}
    return client.post(f"{API}/ledger/gifts", json=body,
                       headers=keyed(world.headers(giver), idempotency_key))


def test_a_resident_gives_points_to_a_neighbour_when_the_community_allows_it(client, gifts_on):
    world = gifts_on
    r = gift(client, world)
    assert r.status_code == 201, r.json
    assert r.json["kind"] == "gift"
    assert (balance(world, "res_a1"), balance(world, "res_a1b")) == (70, 30)
    (theirs,) = statement(client, world, "res_a1b")
    assert [(line["amount"], line["kind"]) for line in theirs["lines"]] == [(30, "gift")]
    books_ok(world)


def test_a_gift_is_refused_once_the_community_turns_gifts_off(client, gifts_on):
    world = gifts_on
    r = client.patch(f"{API}/communities/{world['a1']}/love-bank-settings",
                     headers=world.headers("sec_a1"), json={"allow_gifts": False})
    assert r.status_code == 200 and r.json["allow_gifts"] is False, r.json
    before = journal_state(world)
    refused(gift(client, world), 409, "conflict")
    assert journal_state(world) == before
    assert (balance(world, "res_a1"), balance(world, "res_a1b")) == (100, 0)


def test_gifts_are_off_unless_the_community_allows_them(client, world):
    fund_wallet(world, "res_a1", 100)
    resident(world, "res_a1b")
    before = journal_state(world)
    refused(gift(client, world), 409, "conflict")
    assert journal_state(world) == before


@pytest.mark.parametrize("to", ["res_a1", "res_b1", "sec_a1"],
                         ids=["to oneself", "to a resident of another community",
                              "to someone who is not a resident"])
def test_a_gift_to_anyone_but_another_resident_of_the_community_is_refused(client, gifts_on, to):
    world = gifts_on
    before = journal_state(world)
    assert "to_user_id" in refused(gift(client, world, to=to), 422, "validation_error")["fields"]
    assert journal_state(world) == before and balance(world, "res_a1") == 100




@pytest.mark.parametrize("points", [
    pytest.param(0, id="zero"),
    pytest.param(-5, id="negative"),
    pytest.param(10**9, id="huge"),
    pytest.param(2**63, id="beyond 64 bits"),
    pytest.param(None, id="null"),
    pytest.param(2.9, id="a fraction"),
])
def test_a_gift_of_a_bad_amount_is_refused_and_moves_nothing(client, gifts_on, points):
    world = gifts_on
    before = journal_state(world)
    assert "points" in refused(gift(client, world, points=points), 422,
                               "validation_error")["fields"]
    assert journal_state(world) == before


def test_a_gift_larger_than_the_wallet_is_refused(client, gifts_on):
    world = gifts_on
    before = journal_state(world)
    error = refused(gift(client, world, points=101), 409, "insufficient_points")
    assert error["available"] == 100
    assert journal_state(world) == before


def test_a_gift_from_an_empty_wallet_is_refused(client, gifts_on):
    world = gifts_on
    resident(world, "res_a1c")
    before = journal_state(world)
    refused(gift(client, world, giver="res_a1c", to="res_a1b"), 409, "insufficient_points")
    assert journal_state(world) == before


def test_a_resident_of_another_community_cannot_give_from_this_one(client, gifts_on):
    world = gifts_on
    before = journal_state(world)
    refused(gift(client, world, giver="res_b1"), 403, "forbidden")
    assert journal_state(world) == before


# ---- adjustments and reversals ------------------------------------------------------------------

def adjust(client, world, points: int, name: str = "res_a1", by: str = "sec_a1",
           reason: str = "补录积分", idempotency_key: str | None = None):
    return client.post(f"{API}/ledger/adjustments",
                       headers=keyed(world.headers(by), idempotency_key),
                       json={"community_id": world["a1"], "user_id": world.users[name],
                             "points": points, "reason": reason})


def test_a_secretary_adjusts_a_wallet_up_and_down_with_a_reason(client, world):
    assert adjust(client, world, 40).status_code == 201
    r = adjust(client, world, -15, reason="多记了")
    assert r.status_code == 201, r.json
    assert balance(world) == 25
    (wallet,) = statement(client, world)
    assert sorted((line["amount"], line["reason"]) for line in wallet["lines"]) == [
        (-15, "多记了"), (40, "补录积分")]
    books_ok(world)


@pytest.mark.parametrize("points", [0, 1_000_001, -1_000_001, 10**12],
                         ids=["zero", "over a million", "under minus a million", "huge"])
def test_an_adjustment_by_a_bad_amount_is_refused_and_moves_nothing(client, world, points):
    fund_wallet(world, "res_a1", 10)
    before = journal_state(world)
    assert "points" in refused(adjust(client, world, points), 422, "validation_error")["fields"]
    assert journal_state(world) == before


def test_an_adjustment_that_would_take_a_wallet_below_zero_is_refused(client, world):
    fund_wallet(world, "res_a1", 10)
    before = journal_state(world)
    refused(adjust(client, world, -11), 409, "insufficient_points")
    assert journal_state(world) == before and balance(world) == 10


def test_an_adjustment_for_someone_outside_the_community_is_refused(client, world):
    before = journal_state(world)
    assert "user_id" in refused(adjust(client, world, 10, name="res_b1"), 422)["fields"]
    assert journal_state(world) == before


def test_a_reversal_undoes_a_transfer_and_links_to_it(client, world):
    original = adjust(client, world, 40).json
    r = client.post(f"{API}/ledger/transfers/{original['id']}/reverse",
                    headers=keyed(world.headers("sec_a1")), json={"reason": "录错了人"})
    assert r.status_code == 201, r.json
    assert r.json["kind"] == "reversal" and r.json["reverses_id"] == original["id"]
    assert sorted(e["amount"] for e in r.json["entries"]) == [-40, 40]
    assert balance(world) == 0
    (wallet,) = statement(client, world)
    assert sorted((line["kind"], line["amount"]) for line in wallet["lines"]) == [
        ("adjustment", 40), ("reversal", -40)]
    books_ok(world)


def test_reversing_a_transfer_twice_is_refused(client, world):
    original = adjust(client, world, 40).json
    url = f"{API}/ledger/transfers/{original['id']}/reverse"
    first = client.post(url, headers=keyed(world.headers("sec_a1")), json={"reason": "录错了"})
    assert first.status_code == 201, first.json
    before = journal_state(world)
    again = client.post(url, headers=keyed(world.headers("sec_a1")), json={"reason": "再撤一次"})
    refused(again, 409)
    assert journal_state(world) == before and balance(world) == 0


def test_reversing_points_already_spent_is_refused(client, gifts_on):
    world = gifts_on
    given = gift(client, world, points=30).json
    adjust(client, world, -30, name="res_a1b", reason="兑换")
    before = journal_state(world)
    r = client.post(f"{API}/ledger/transfers/{given['id']}/reverse",
                    headers=keyed(world.headers("sec_a1")), json={"reason": "撤回赠送"})
    refused(r, 409, "insufficient_points")
    assert journal_state(world) == before


def test_a_reversal_itself_cannot_be_reversed(client, world):
    original = adjust(client, world, 40).json
    reversal = client.post(f"{API}/ledger/transfers/{original['id']}/reverse",
                           headers=keyed(world.headers("sec_a1")), json={"reason": "错"}).json
    before = journal_state(world)
    r = client.post(f"{API}/ledger/transfers/{reversal['id']}/reverse",
                    headers=keyed(world.headers("sec_a1")), json={"reason": "撤销撤销"})
    refused(r, 409, "conflict")
    assert journal_state(world) == before


def test_reversing_a_transfer_that_does_not_exist_is_a_404(client, world):
    r = client.post(f"{API}/ledger/transfers/987654/reverse",
                    headers=keyed(world.headers("sec_a1")), json={"reason": "没有这笔"})
    refused(r, 404, "not_found")


# ---- idempotency --------------------------------------------------------------------------------

def test_the_same_key_and_body_return_the_first_transfer_and_move_nothing_more(client, world):
    publish(world)
    body = {"community_id": world["a1"], "activity": "building_head",
            "user_ids": [world.users["res_a1"]], "reason": "楼栋长"}
    headers = keyed(world.headers("sec_a1"), key("retry"))
    first = client.post(f"{API}/ledger/awards", headers=headers, json=body)
    assert first.status_code == 201, first.json
    after_first = journal_state(world)
    again = client.post(f"{API}/ledger/awards", headers=headers, json=body)
    assert again.status_code == 201, again.json
    assert again.json == first.json
    assert journal_state(world) == after_first
    assert balance(world) == 20


def test_the_same_key_with_another_body_is_refused_with_409(client, world):
    idempotency_key = key("reused")
    assert adjust(client, world, 40, idempotency_key=idempotency_key).status_code == 201
    before = journal_state(world)
    r = adjust(client, world, 400, idempotency_key=idempotency_key)
    refused(r, 409, "idempotency_key_reused")
    assert journal_state(world) == before and balance(world) == 40


def test_a_key_used_for_one_kind_of_request_is_refused_for_another(client, gifts_on):
    world = gifts_on
    idempotency_key = key("crossed")
    assert adjust(client, world, 40, idempotency_key=idempotency_key).status_code == 201
    before = journal_state(world)
    refused(gift(client, world, idempotency_key=idempotency_key), 409, "idempotency_key_reused")
    assert journal_state(world) == before


def test_a_retried_gift_moves_the_points_once(client, gifts_on):
    world = gifts_on
    idempotency_key = key("gift")
    first = gift(client, world, idempotency_key=idempotency_key)
    again = gift(client, world, idempotency_key=idempotency_key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["id"] == first.json["id"]
    assert (balance(world, "res_a1"), balance(world, "res_a1b")) == (70, 30)


def test_a_retried_reversal_returns_the_first_reversal(client, world):
    original = adjust(client, world, 40).json
    headers = keyed(world.headers("sec_a1"), key("reverse"))
    url = f"{API}/ledger/transfers/{original['id']}/reverse"
    first = client.post(url, headers=headers, json={"reason": "录错了"})
    again = client.post(url, headers=headers, json={"reason": "录错了"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json["id"] == first.json["id"] and balance(world) == 0


@pytest.mark.parametrize("header", [None, "", "   ", "k" * 201],
                         ids=["missing", "empty", "blank", "too long"])
def test_a_point_moving_request_without_a_usable_key_is_refused_with_422(client, gifts_on,
                                                                          header):
    world = gifts_on
    publish(world)
    transfer = adjust(client, world, 5).json
    before = journal_state(world)
    a1, res, res_b = world["a1"], world.users["res_a1"], world.users["res_a1b"]
    requests = [
        ("sec_a1", "ledger/awards", {"community_id": a1, "activity": "building_head",
                                     "user_ids": [res], "reason": "楼栋长"}),
        ("res_a1", "ledger/gifts", {"community_id": a1, "to_user_id": res_b, "points": 5,
                                    "reason": "送"}),
        ("sec_a1", "ledger/adjustments", {"community_id": a1, "user_id": res, "points": 5,
                                          "reason": "补"}),
        ("sec_a1", f"ledger/transfers/{transfer['id']}/reverse", {"reason": "错"}),
    ]
    for who, path, body in requests:
        headers = world.headers(who)
        if header is not None:
            headers["Idempotency-Key"] = header
        r = client.post(f"{API}/{path}", headers=headers, json=body)
        assert "idempotency_key" in refused(r, 422, "validation_error")["fields"], path
    assert journal_state(world) == before


# ---- the journal and the accounts ---------------------------------------------------------------

def test_the_journal_and_the_accounts_balance_to_zero(client, world):
    publish(world)
    award(world, "res_a1")
    fund_wallet(world, "res_a1", 30)
    sec = world.headers("sec_a1")
    journal = client.get(f"{API}/ledger/transfers", headers=sec,
                         query_string={"community_id": world["a1"]})
    assert journal.status_code == 200, journal.json
    assert journal.json["total"] == 2
    assert [t["chain_seq"] for t in journal.json["items"]] == [2, 1]
    assert all(sum(e["amount"] for e in t["entries"]) == 0 for t in journal.json["items"])
    only_awards = client.get(f"{API}/ledger/transfers", headers=sec,
                             query_string={"community_id": world["a1"], "kind": "award"})
    assert [t["kind"] for t in only_awards.json["items"]] == ["award"]
    accounts = client.get(f"{API}/ledger/accounts", headers=world.headers("admin_a"),
                          query_string={"community_id": world["a1"]})
    assert accounts.status_code == 200, accounts.json
    by_kind = {a["kind"]: a["balance"] for a in accounts.json}
    assert "wallet" not in by_kind
    assert by_kind["issuing"] == -20 and by_kind["adjustment"] == -30
    assert sum(a["balance"] for a in accounts.json if a["asset"] == "points") + balance(world) == 0


@pytest.mark.parametrize("viewer", ["admin_b", "sec_b1", "clerk_a1", "res_a1", "grid_a1"])
def test_the_journal_is_closed_to_anyone_but_the_secretary_and_the_subdistrict_admin(
        client, world, viewer):
    for path in ("ledger/transfers", "ledger/accounts", "market/fund"):
        r = client.get(f"{API}/{path}", headers=world.headers(viewer),
                       query_string={"community_id": world["a1"]})
        refused(r, 403, "forbidden")


@pytest.mark.parametrize("community_id", [987_654, 2**31, 2**40], ids=["unknown", "2**31",
                                                                       "2**40"])
def test_a_request_naming_an_unknown_or_huge_community_is_refused_not_crashed(
        client, world, community_id):
    before = journal_state(world)
    r = client.post(f"{API}/ledger/adjustments", headers=keyed(world.headers("sec_a1")),
                    json={"community_id": community_id, "user_id": world.users["res_a1"],
                          "points": 5, "reason": "补"})
    assert r.status_code in (404, 422), r.json
    refused(r, r.status_code)
    r = client.get(f"{API}/ledger/transfers", headers=world.headers("sec_a1"),
                   query_string={"community_id": community_id})
    assert r.status_code in (404, 422), r.json
    refused(r, r.status_code)
    assert journal_state(world) == before


@pytest.mark.parametrize("user_id", [987_654, 2**31, 2**40], ids=["unknown", "2**31", "2**40"])
def test_a_request_naming_an_unknown_or_huge_user_is_refused_not_crashed(client, gifts_on,
                                                                        user_id):
    world = gifts_on
    before = journal_state(world)
    r = client.post(f"{API}/ledger/adjustments", headers=keyed(world.headers("sec_a1")),
                    json={"community_id": world["a1"], "user_id": user_id, "points": 5,
                          "reason": "补"})
    refused(r, 422, "validation_error")
    r = client.post(f"{API}/ledger/gifts", headers=keyed(world.headers("res_a1")),
                    json={"community_id": world["a1"], "to_user_id": user_id, "points": 5,
                          "reason": "送"})
    refused(r, 422, "validation_error")
    r = client.get(f"{API}/ledger/statement", headers=world.headers("sec_a1"),
                   query_string={"user_id": user_id})
    assert r.status_code in (404, 422), r.json
    refused(r, r.status_code)
    assert journal_state(world) == before


@pytest.mark.parametrize("change", [
    pytest.param({"points_expiry_months": 0}, id="expiry after zero months"),
    pytest.param({"points_expiry_months": 121}, id="expiry after more than ten years"),
    pytest.param({"collect_within_days": 0}, id="zero days to collect"),
    pytest.param({"fund_match_percent": -1}, id="a negative matching percent"),
    pytest.param({"fund_match_percent": 101}, id="a matching percent over 100"),
    pytest.param({"allow_gifts": None}, id="gifts neither on nor off"),
])
def test_bad_love_bank_settings_are_refused_and_change_nothing(client, world, change):
    from web.models import Community

    community = world.session.get(Community, world["a1"])
    before = {name: getattr(community, name) for name in (
        "points_expiry_months", "collect_within_days", "fund_match_percent", "allow_gifts")}
    r = client.patch(f"{API}/communities/{world['a1']}/love-bank-settings",
                     headers=world.headers("sec_a1"), json=change)
    assert set(change) <= set(refused(r, 422, "validation_error")["fields"])
    world.session.refresh(community)
    assert {name: getattr(community, name) for name in before} == before
