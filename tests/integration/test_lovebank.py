"""The love bank's services on a real database: versioned rules, credits from verified reports,
caps, multipliers, awards, gifts, expiry, reversals, append-only history, verify_books and the
`linli ledger` commands."""

from __future__ import annotations

import gc
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from tests.conftest import NOW
from tests.factories import make_demand
from tests.integration.lovebank_helpers import (
    RULES,
    TODAY,
    award,
    books_ok,
    fund_wallet,
    goods,
    key,
    later,
    order,
    publish,
    resident,
    served,
    settings,
)
from web.errors import (
    AlreadyPostedError,
    ConflictError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InsufficientPointsError,
    ValidationError,
)
from web.models import LedgerAccount, LedgerTransfer, PointLot, PointsRuleVersion, ServiceRecord
from web.services import lovebank
from web.services.journal import AccountKind, find_wallet, verify_books
from web.services.lovebank import credit_service_record

pytestmark = pytest.mark.db


# ---- helpers ----------------------------------------------------------------------------------

def transfers(world, kind: str | None = None) -> list[LedgerTransfer]:
    world.session.expire_all()
    stmt = select(LedgerTransfer).order_by(LedgerTransfer.id)
    if kind:
        stmt = stmt.where(LedgerTransfer.kind == kind)
    return list(world.session.scalars(stmt))


def balance(world, name: str, community: str = "a1") -> int:
    wallet = find_wallet(world.session, world[community], world.users[name])
    if wallet is None:
        return 0
    world.session.refresh(wallet)
    return wallet.balance


def lots(world, name: str, community: str = "a1") -> list[PointLot]:
    wallet = find_wallet(world.session, world[community], world.users[name])
    world.session.expire_all()
    return list(world.session.scalars(select(PointLot).where(PointLot.account_id == wallet.id)
                                      .order_by(PointLot.earned_on, PointLot.id)))


def community_account(world, kind: AccountKind, community: str = "a1") -> int:
    world.session.expire_all()
    return world.session.scalar(select(LedgerAccount.balance).where(
        LedgerAccount.kind == str(kind), LedgerAccount.community_id == world[community])) or 0


def publish_at(world, effective_from: date, now: datetime, rules: dict | None = None):
    """Publish rules as sec_a1 at an earlier moment (rules never reach back before `now`)."""
    return lovebank.publish_rules(world.session, actor=world.actor("sec_a1"),
                                  community_id=world["a1"], document=rules or RULES,
                                  effective_from=effective_from, now=now)


def award_on(world, day: date, *names: str, activity: str = "building_head", now=NOW):
    return lovebank.award_points(
        world.session, actor=world.actor("sec_a1"), community_id=world["a1"],
        activity=activity, user_ids=[world.users[n] for n in names], reason="楼栋长",
        idempotency_key=key("award"), day=day, now=now)


def new_demand(world, **extra) -> str:
    name = f"d_{len(world.ids)}"
    world.ids[name] = make_demand(world.session, world, "a1", "sec_a1", grid="g_a1", **extra)
    return name


def volunteer(world, name: str, minutes: int) -> dict:
    return {"user_id": world.users[name], "minutes": minutes}


def credits_for(world, name: str) -> list[LedgerTransfer]:
    wallet = find_wallet(world.session, world["a1"], world.users[name])
    return [t for t in transfers(world, "credit")
            if any(e.account_id == wallet.id for e in t.entries)]


ONE_MONTH_AGO = NOW - timedelta(days=30)  # 2026-10-21


# ---- rules, versioned -------------------------------------------------------------------------

def test_a_credit_records_the_rule_version_in_force_on_the_day_served(world):
    publish_at(world, date(2026, 10, 21), ONE_MONTH_AGO)
    doubled = {**RULES, "per_hour": {"elderly_care": 20, "*": 5}}
    v2 = publish(world, rules=doubled, effective_from=date(2026, 11, 25))
    assert v2.version == 2
    served(world, [volunteer(world, "res_a1", 90)], ended_on=date(2026, 11, 19))
    # served the day before v2 starts, verified after it started: the served day decides
    served(world, [volunteer(world, "res_a1", 90)], demand=new_demand(world),
           ended_on=date(2026, 11, 24), now=later(6))
    served(world, [volunteer(world, "res_a1", 90)], demand=new_demand(world),
           ended_on=date(2026, 11, 25), now=later(6))
    credits = credits_for(world, "res_a1")
    assert [(t.rule_version, t.detail["credited"]) for t in credits] == [(1, 15), (1, 15), (2, 30)]
    assert balance(world, "res_a1") == 60
    books_ok(world)


def test_rules_cannot_be_published_to_take_effect_in_the_past(world):
    with pytest.raises(ValidationError) as caught:
        publish(world, effective_from=TODAY - timedelta(days=1))
    assert "effective_from" in caught.value.fields
    assert world.session.scalar(select(func.count()).select_from(PointsRuleVersion)) == 0


def test_rules_take_effect_from_today_at_the_earliest_in_beijing_time(world):
    # 2026-11-19 17:00 UTC is already 20 November in Beijing
    version = lovebank.publish_rules(world.session, actor=world.actor("sec_a1"),
                                     community_id=world["a1"], document=RULES,
                                     effective_from=TODAY,
                                     now=datetime(2026, 11, 19, 17, 0, tzinfo=UTC))
    assert version.effective_from == TODAY


def test_the_version_in_force_is_the_latest_effective_on_the_day(world):
    v1 = publish(world)
    v2 = publish(world, rules={**RULES, "daily_cap": 80}, effective_from=date(2026, 12, 1))
    in_force = lambda day: lovebank.rules_in_force(world.session, world["a1"], day)  # noqa: E731
    assert in_force(TODAY - timedelta(days=1)) is None
    assert in_force(TODAY).id == v1.id
    assert in_force(date(2026, 11, 30)).id == v1.id
    assert in_force(date(2026, 12, 1)).id == v2.id
    assert in_force(date(2030, 1, 1)).id == v2.id
    assert lovebank.rules_in_force(world.session, world["a2"], TODAY) is None


def test_an_invalid_rules_document_is_refused_naming_its_field(world):
    with pytest.raises(ValidationError) as caught:
        publish(world, rules={**RULES, "multipliers": {"urgent": 50}})
    assert set(caught.value.fields) == {"document.multipliers.urgent"}


def test_only_the_communitys_secretary_publishes_rules(world):
    from web.errors import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        lovebank.publish_rules(world.session, actor=world.actor("sec_a2"),
                               community_id=world["a1"], document=RULES, effective_from=TODAY,
                               now=NOW)


def test_an_award_uses_the_rules_in_force_on_its_day(world):
    publish_at(world, date(2026, 10, 21), ONE_MONTH_AGO)
    publish(world, rules={**RULES, "activities": {"building_head": 30}},
            effective_from=date(2026, 11, 25))
    first = award_on(world, TODAY, "res_a1")
    second = award_on(world, date(2026, 11, 25), "res_a1", now=later(5))
    assert (first.rule_version, first.detail["points"]) == (1, {str(world.users["res_a1"]): 20})
    assert (second.rule_version, second.detail["points"]) == (2, {str(world.users["res_a1"]): 30})


# ---- credits from verified reports ------------------------------------------------------------

def test_verifying_a_report_credits_each_volunteer_with_an_account_exactly_once(world):
    publish(world)
    resident(world, "res_a1_b")
    report = served(world, [volunteer(world, "res_a1", 90), volunteer(world, "res_a1_b", 60),
                            {"name": "张三", "phone": "13500000000", "minutes": 120}])
    credits = transfers(world, "credit")
    assert len(credits) == 2
    records = {r.id: r for r in world.session.scalars(select(ServiceRecord))}
    assert {t.source_key for t in credits} == {f"service-record:{r.id}" for r in records.values()
                                               if r.user_id is not None}
    assert all(t.source_type == "service_record" and t.source_id in records for t in credits)
    assert (balance(world, "res_a1"), balance(world, "res_a1_b")) == (15, 10)
    assert community_account(world, AccountKind.ISSUING) == -25

    with pytest.raises(IllegalTransitionError):
        lovebank_verify_again(world, report.id)
    for record in records.values():  # crediting a record again is a no-op, not a double credit
        assert credit_service_record(world.session, record, actor=world.actor("sec_a1"),
                                     now=NOW) is None
    world.session.commit()
    assert len(transfers(world, "credit")) == 2
    assert (balance(world, "res_a1"), balance(world, "res_a1_b")) == (15, 10)
    books_ok(world)


def lovebank_verify_again(world, report_id: int):
    from web.services import reports

    return reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report_id,
                                 now=NOW)


def test_a_credit_line_says_why_it_came_and_from_which_record(world):
    publish(world)
    served(world, [volunteer(world, "res_a1", 90)])
    [credit] = transfers(world, "credit")
    record = world.session.scalar(select(ServiceRecord))
    assert credit.reason == f"service on {TODAY}: 90 min"
    assert credit.detail == {"rate_per_hour": 10, "minutes": 90, "multiplier_percent": 100,
                             "points": 15, "credited": 15, "capped": 0}
    [line] = lovebank.statement(world.session, actor=world.actor("res_a1"),
                                user_id=world.users["res_a1"], now=NOW)[0]["lines"]
    assert (line["amount"], line["kind"], line["source_type"], line["source_id"]) == (
        15, "credit", "service_record", record.id)


def test_without_rules_in_force_a_verified_record_stays_but_earns_nothing(world):
    publish(world, effective_from=TODAY + timedelta(days=1))
    served(world, [volunteer(world, "res_a1", 90)])
    assert world.session.scalar(select(func.count()).select_from(ServiceRecord)) == 1
    assert transfers(world, "credit") == []
    assert balance(world, "res_a1") == 0


@pytest.mark.parametrize(("urgency", "vulnerable", "points"), [
    ("normal", False, 10),
    ("urgent", False, 12),
    ("critical", False, 15),
    ("normal", True, 13),
    ("urgent", True, 13),
    ("critical", True, 15),
])
def test_urgency_and_a_vulnerable_beneficiary_multiply_but_do_not_stack(world, urgency,
                                                                        vulnerable, points):
    publish(world)
    demand = new_demand(world, urgency=urgency, beneficiary_vulnerable=vulnerable)
    served(world, [volunteer(world, "res_a1", 60)], demand=demand)
    [credit] = transfers(world, "credit")
    assert credit.detail["credited"] == points
    assert balance(world, "res_a1") == points


# ---- caps -------------------------------------------------------------------------------------

def test_the_daily_cap_cuts_a_long_day_and_records_what_was_capped(world):
    publish(world)
    served(world, [volunteer(world, "res_a1", 6 * 60)])  # 60 points, the cap is 50
    [credit] = transfers(world, "credit")
    assert (credit.detail["points"], credit.detail["credited"], credit.detail["capped"]) == (
        60, 50, 10)
    assert balance(world, "res_a1") == 50
    with pytest.raises(ConflictError, match="cap"):
        award(world, "res_a1")
    assert balance(world, "res_a1") == 50


def test_a_record_verified_when_the_day_is_full_credits_nothing(world):
    publish(world)
    award(world, "res_a1")
    award(world, "res_a1")
    served(world, [volunteer(world, "res_a1", 120)])  # 20 points, 10 of room left
    served(world, [volunteer(world, "res_a1", 60)], demand=new_demand(world))
    assert [t.detail["credited"] for t in transfers(world, "credit")] == [10]
    assert balance(world, "res_a1") == 50


def test_the_monthly_cap_counts_the_whole_month_and_a_new_month_starts_afresh(world):
    publish_at(world, date(2026, 10, 21), ONE_MONTH_AGO,
               rules={**RULES, "daily_cap": None, "monthly_cap": 50})
    award_on(world, date(2026, 11, 1), "res_a1")
    award_on(world, date(2026, 11, 18), "res_a1")
    assert award_on(world, TODAY, "res_a1").detail["points"] == {str(world.users["res_a1"]): 10}
    with pytest.raises(ConflictError, match="cap"):
        award_on(world, TODAY, "res_a1")
    december = award_on(world, date(2026, 12, 1), "res_a1", now=later(11))
    assert december.detail["points"] == {str(world.users["res_a1"]): 20}
    assert balance(world, "res_a1") == 70


def test_adjustments_and_gifts_do_not_use_up_the_cap(world):
    publish(world)
    settings(world, allow_gifts=True)
    resident(world, "res_a1_b")
    fund_wallet(world, "res_a1_b", 500)
    lovebank.give_points(world.session, actor=world.actor("res_a1_b"), community_id=world["a1"],
                         to_user_id=world.users["res_a1"], points=100, reason="爱心传递",
                         idempotency_key=key("gift"), now=NOW)
    fund_wallet(world, "res_a1", 100)
    award(world, "res_a1")
    award(world, "res_a1")
    assert balance(world, "res_a1") == 240


# ---- awards to many residents -----------------------------------------------------------------

def test_an_award_to_many_residents_is_one_transfer_with_a_lot_each(world):
    publish(world)
    for name in ("res_a1_b", "res_a1_c"):
        resident(world, name)
    transfer = award(world, "res_a1", "res_a1_b", "res_a1_c")
    assert (transfer.kind, transfer.reason, transfer.rule_version) == ("award", "为社区服务", 1)
    positive = sorted(e.amount for e in transfer.entries if e.amount > 0)
    assert positive == [20, 20, 20]
    assert all(e.lot_id is not None for e in transfer.entries if e.amount > 0)
    assert [e.amount for e in transfer.entries if e.amount < 0] == [-60]
    for name in ("res_a1", "res_a1_b", "res_a1_c"):
        assert balance(world, name) == 20
        [lot] = lots(world, name)
        assert (lot.origin, lot.earned_on, lot.expires_on, lot.amount) == (
            "earned", TODAY, None, 20)
    books_ok(world)


def test_an_award_gives_each_resident_what_is_left_under_their_own_cap(world):
    publish(world)
    resident(world, "res_a1_b")
    award(world, "res_a1")
    award(world, "res_a1")  # res_a1 has 10 left today
    transfer = award(world, "res_a1", "res_a1_b")
    assert transfer.detail["points"] == {str(world.users["res_a1"]): 10,
                                         str(world.users["res_a1_b"]): 20}
    assert (balance(world, "res_a1"), balance(world, "res_a1_b")) == (50, 20)


def test_an_award_naming_someone_who_is_not_a_resident_moves_nothing(world):
    publish(world)
    with pytest.raises(ValidationError) as caught:
        award(world, "res_a1", "res_b1")
    assert "user_ids" in caught.value.fields
    assert transfers(world) == []


@pytest.mark.parametrize("activity", ["karaoke", ""])
def test_an_award_for_an_activity_the_rules_do_not_name_is_refused(world, activity):
    publish(world)
    with pytest.raises(ValidationError) as caught:
        award(world, "res_a1", activity=activity)
    assert "activity" in caught.value.fields


def test_an_award_needs_a_reason(world):
    publish(world)
    with pytest.raises(ValidationError) as caught:
        lovebank.award_points(world.session, actor=world.actor("sec_a1"),
                              community_id=world["a1"], activity="building_head",
                              user_ids=[world.users["res_a1"]], reason="  ",
                              idempotency_key=key(), now=NOW)
    assert "reason" in caught.value.fields


def test_an_award_sent_twice_with_one_key_moves_points_once(world):
    publish(world)
    args = dict(actor=world.actor("sec_a1"), community_id=world["a1"], activity="building_head",
                user_ids=[world.users["res_a1"]], reason="楼栋长", idempotency_key="same-key",
                now=NOW)
    first = lovebank.award_points(world.session, **args)
    again = lovebank.award_points(world.session, **args)
    assert again.id == first.id
    assert balance(world, "res_a1") == 20
    with pytest.raises(IdempotencyKeyReusedError):
        lovebank.award_points(world.session, **{**args, "activity": "waste_sorting"})
    assert len(transfers(world, "award")) == 1


# ---- gifts (爱心传递) --------------------------------------------------------------------------

def give(world, giver: str, taker: str, points: int, now=NOW):
    return lovebank.give_points(world.session, actor=world.actor(giver), community_id=world["a1"],
                                to_user_id=world.users[taker], points=points, reason="爱心传递",
                                idempotency_key=key("gift"), now=now)


def test_a_gift_is_refused_unless_the_community_allows_gifts(world):
    resident(world, "res_a1_b")
    fund_wallet(world, "res_a1", 50)
    with pytest.raises(ConflictError, match="does not allow"):
        give(world, "res_a1", "res_a1_b", 10)
    assert (balance(world, "res_a1"), balance(world, "res_a1_b")) == (50, 0)
    settings(world, allow_gifts=True)
    give(world, "res_a1", "res_a1_b", 10)
    assert (balance(world, "res_a1"), balance(world, "res_a1_b")) == (40, 10)
    settings(world, allow_gifts=False)
    with pytest.raises(ConflictError, match="does not allow"):
        give(world, "res_a1", "res_a1_b", 10)


def test_gifted_points_keep_the_day_they_were_earned_and_their_expiry(world):
    publish_at(world, date(2026, 10, 21), ONE_MONTH_AGO)
    settings(world, allow_gifts=True, points_expiry_months=12)
    resident(world, "res_a1_b")
    award_on(world, date(2026, 11, 1), "res_a1")  # 20, expires 2027-11-01
    fund_wallet(world, "res_a1", 30)              # 30, earned today, expires 2027-11-20
    gift = give(world, "res_a1", "res_a1_b", 25)
    assert gift.kind == "gift" and gift.detail == {"from": world.users["res_a1"],
                                                   "to": world.users["res_a1_b"]}
    got = lots(world, "res_a1_b")
    assert [(x.origin, x.earned_on, x.expires_on, x.amount, x.remaining) for x in got] == [
        ("gift", date(2026, 11, 1), date(2027, 11, 1), 20, 20),
        ("gift", TODAY, date(2027, 11, 20), 5, 5)]
    assert [(x.amount, x.remaining) for x in lots(world, "res_a1")] == [(20, 0), (30, 25)]
    assert (balance(world, "res_a1"), balance(world, "res_a1_b")) == (25, 25)
    books_ok(world)


def test_a_gift_to_oneself_or_to_another_communitys_resident_is_refused(world):
    settings(world, allow_gifts=True)
    fund_wallet(world, "res_a1", 50)
    for taker in ("res_a1", "res_b1"):
        with pytest.raises(ValidationError) as caught:
            give(world, "res_a1", taker, 10)
        assert "to_user_id" in caught.value.fields
    assert balance(world, "res_a1") == 50


def test_a_gift_larger_than_the_usable_points_moves_nothing(world):
    settings(world, allow_gifts=True)
    resident(world, "res_a1_b")
    fund_wallet(world, "res_a1", 50)
    with pytest.raises(InsufficientPointsError):
        give(world, "res_a1", "res_a1_b", 51)
    with pytest.raises(InsufficientPointsError):
        give(world, "res_a1_b", "res_a1", 1)  # no wallet at all
    assert (balance(world, "res_a1"), balance(world, "res_a1_b")) == (50, 0)
    books_ok(world)


@pytest.mark.parametrize("points", [0, -5, 1_000_001, 2.5, True])
def test_a_gift_of_a_bad_amount_is_refused(world, points):
    settings(world, allow_gifts=True)
    resident(world, "res_a1_b")
    fund_wallet(world, "res_a1", 50)
    with pytest.raises(ValidationError):
        give(world, "res_a1", "res_a1_b", points)
    assert balance(world, "res_a1") == 50


# ---- expiry -----------------------------------------------------------------------------------

def expire(world, now, dry_run: bool = False) -> list[dict]:
    return lovebank.expire_points(world.session, now=now, dry_run=dry_run)


def test_points_expire_on_their_day_and_the_job_is_safe_to_run_twice(world):
    publish(world)
    settings(world, points_expiry_months=1)
    award(world, "res_a1")  # earned 2026-11-20, expires 2026-12-20
    [lot] = lots(world, "res_a1")
    assert lot.expires_on == date(2026, 12, 20)
    assert expire(world, later(29)) == []  # 19 December
    assert balance(world, "res_a1") == 20
    done = expire(world, later(30))
    assert done == [{"lot_id": lot.id, "user_id": world.users["res_a1"],
                     "community_id": world["a1"], "points": 20, "expired_on": "2026-12-20"}]
    assert balance(world, "res_a1") == 0
    assert community_account(world, AccountKind.EXPIRY) == 20
    assert expire(world, later(30)) == []
    assert expire(world, later(400)) == []
    [expiry] = transfers(world, "expiry")
    assert (expiry.source_type, expiry.source_id) == ("lot", str(lot.id))
    assert "expired 2026-12-20" in expiry.reason
    books_ok(world)


def test_lots_expire_each_on_its_own_day(world):
    publish_at(world, date(2026, 10, 21), ONE_MONTH_AGO)
    settings(world, points_expiry_months=1)
    award_on(world, date(2026, 10, 31), "res_a1")  # expires 2026-11-30
    award_on(world, TODAY, "res_a1")               # expires 2026-12-20
    assert [x["points"] for x in expire(world, later(9))] == []
    assert [x["expired_on"] for x in expire(world, later(10))] == ["2026-11-30"]
    assert balance(world, "res_a1") == 20
    assert [x["expired_on"] for x in expire(world, later(30))] == ["2026-12-20"]
    assert balance(world, "res_a1") == 0


def test_a_resident_sees_what_expires_when_in_advance(world):
    publish_at(world, date(2026, 10, 21), ONE_MONTH_AGO)
    settings(world, points_expiry_months=1)
    award_on(world, date(2026, 10, 31), "res_a1")
    award_on(world, TODAY, "res_a1")
    [wallet] = lovebank.statement(world.session, actor=world.actor("res_a1"),
                                  user_id=world.users["res_a1"], now=NOW)
    assert [(x["earned_on"], x["expires_on"], x["remaining"]) for x in wallet["lots"]] == [
        (date(2026, 10, 31), date(2026, 11, 30), 20), (TODAY, date(2026, 12, 20), 20)]
    assert (wallet["balance"], wallet["usable"]) == (40, 40)


def test_a_lapsed_lot_cannot_be_spent_even_before_the_job_moves_it(world):
    publish(world)
    settings(world, points_expiry_months=1)
    award(world, "res_a1")
    item = goods(world, price=10)
    [wallet] = lovebank.statement(world.session, actor=world.actor("res_a1"),
                                  user_id=world.users["res_a1"], now=later(30))
    assert (wallet["balance"], wallet["usable"]) == (20, 0)
    with pytest.raises(InsufficientPointsError):
        order(world, (item.id, 1), now=later(30))
    assert balance(world, "res_a1") == 20


def test_a_dry_run_lists_what_would_expire_and_moves_nothing(world):
    publish(world)
    settings(world, points_expiry_months=1)
    award(world, "res_a1")
    assert [x["points"] for x in expire(world, later(30), dry_run=True)] == [20]
    assert balance(world, "res_a1") == 20
    assert transfers(world, "expiry") == []
    assert [x["points"] for x in expire(world, later(30))] == [20]


def test_without_an_expiry_setting_points_never_expire(world):
    publish(world)
    award(world, "res_a1")
    assert lots(world, "res_a1")[0].expires_on is None
    assert expire(world, later(3650)) == []
    assert balance(world, "res_a1") == 20


def test_a_lot_spent_in_part_expires_only_what_is_left(world):
    publish(world)
    settings(world, points_expiry_months=1)
    award(world, "res_a1")
    item = goods(world, price=8)
    order(world, (item.id, 1))
    assert [x["points"] for x in expire(world, later(30))] == [12]
    assert balance(world, "res_a1") == 0
    books_ok(world)


# ---- reversals --------------------------------------------------------------------------------

def reverse(world, transfer_id: int, idempotency_key: str | None = None):
    return lovebank.reverse_transfer(world.session, actor=world.actor("sec_a1"),
                                     transfer_id=transfer_id, reason="记错了",
                                     idempotency_key=idempotency_key or key("rev"), now=NOW)


def test_a_reversal_mirrors_the_original_and_links_to_it(world):
    publish(world)
    resident(world, "res_a1_b")
    original = award(world, "res_a1", "res_a1_b")
    reversal = reverse(world, original.id)
    assert (reversal.kind, reversal.reverses_id, reversal.source_key, reversal.reason) == (
        "reversal", original.id, f"reversal:{original.id}", "记错了")
    assert sorted((e.account_id, e.lot_id, e.amount) for e in reversal.entries) == sorted(
        (e.account_id, e.lot_id, -e.amount) for e in original.entries)
    assert (balance(world, "res_a1"), balance(world, "res_a1_b")) == (0, 0)
    assert community_account(world, AccountKind.ISSUING) == 0
    assert all(x.remaining == 0 for x in lots(world, "res_a1"))
    books_ok(world)


def test_a_credit_cannot_be_reversed_twice(world):
    fund_wallet(world, "res_a1", 30)
    [original] = transfers(world, "adjustment")
    reverse(world, original.id)
    with pytest.raises(AlreadyPostedError):
        reverse(world, original.id)
    assert len(transfers(world, "reversal")) == 1
    assert balance(world, "res_a1") == 0


def test_a_debit_cannot_be_reversed_twice(world):
    fund_wallet(world, "res_a1", 30)
    debit = lovebank.adjust_points(world.session, actor=world.actor("sec_a1"),
                                   community_id=world["a1"], user_id=world.users["res_a1"],
                                   points=-10, reason="多记了", idempotency_key=key(), now=NOW)
    reverse(world, debit.id)
    with pytest.raises(AlreadyPostedError):
        reverse(world, debit.id)
    assert len(transfers(world, "reversal")) == 1
    assert balance(world, "res_a1") == 30


def test_a_reversal_sent_again_with_its_key_returns_the_first(world):
    fund_wallet(world, "res_a1", 30)
    [original] = transfers(world, "adjustment")
    first = reverse(world, original.id, idempotency_key="rev-once")
    assert reverse(world, original.id, idempotency_key="rev-once").id == first.id
    assert len(transfers(world, "reversal")) == 1


def test_neither_a_reversal_nor_a_redemption_can_be_reversed(world):
    fund_wallet(world, "res_a1", 30)
    [adjustment] = transfers(world, "adjustment")
    reversal = reverse(world, adjustment.id)
    fund_wallet(world, "res_a1", 30)
    order(world, (goods(world).id, 1))
    [redemption] = transfers(world, "redemption")
    for transfer_id in (reversal.id, redemption.id):
        with pytest.raises(ConflictError, match="not reversed"):
            reverse(world, transfer_id)
    assert balance(world, "res_a1") == 20


def test_points_already_spent_cannot_be_reversed(world):
    publish(world)
    original = award(world, "res_a1")
    order(world, (goods(world, price=10).id, 1))
    with pytest.raises(InsufficientPointsError, match="spent"):
        reverse(world, original.id)
    assert balance(world, "res_a1") == 10
    assert transfers(world, "reversal") == []


def test_reversing_a_debit_puts_the_points_back_in_their_lots(world):
    fund_wallet(world, "res_a1", 30)
    debit = lovebank.adjust_points(world.session, actor=world.actor("sec_a1"),
                                   community_id=world["a1"], user_id=world.users["res_a1"],
                                   points=-12, reason="多记了", idempotency_key=key(), now=NOW)
    assert balance(world, "res_a1") == 18
    reverse(world, debit.id)
    assert [(x.amount, x.remaining) for x in lots(world, "res_a1")] == [(30, 30)]
    books_ok(world)


# ---- append-only history ----------------------------------------------------------------------

def some_history(world) -> dict[str, int]:
    publish(world)
    award(world, "res_a1")
    order(world, (goods(world).id, 1))
    world.session.expire_all()
    from web.models import LedgerEntry, StockMovement

    return {"ledger_transfers": world.session.scalar(select(func.min(LedgerTransfer.id))),
            "ledger_entries": world.session.scalar(select(func.min(LedgerEntry.id))),
            "stock_movements": world.session.scalar(select(func.min(StockMovement.id)))}


@pytest.mark.parametrize(("table", "statement"), [
    ("ledger_entries", "UPDATE ledger_entries SET amount = amount + 1 WHERE id = :id"),
    ("ledger_entries", "DELETE FROM ledger_entries WHERE id = :id"),
    ("ledger_transfers", "UPDATE ledger_transfers SET reason = 'rewritten' WHERE id = :id"),
    ("ledger_transfers", "DELETE FROM ledger_transfers WHERE id = :id"),
    ("stock_movements", "UPDATE stock_movements SET delta = delta + 1 WHERE id = :id"),
    ("stock_movements", "DELETE FROM stock_movements WHERE id = :id"),
])
def test_the_database_refuses_to_change_or_delete_ledger_history(world, connection, table,
                                                                  statement):
    ident = some_history(world)[table]
    before = connection.execute(text(f"SELECT * FROM {table} WHERE id = :id"),
                                {"id": ident}).one()
    savepoint = connection.begin_nested()
    with pytest.raises(DatabaseError, match="append-only"):
        connection.execute(text(statement), {"id": ident})
    savepoint.rollback()
    assert connection.execute(text(f"SELECT * FROM {table} WHERE id = :id"),
                              {"id": ident}).one() == before


# ---- verify_books -----------------------------------------------------------------------------



def tamper(connection, statement: str, **params) -> None:
    """Rewrite history behind the triggers' back (inside the test's transaction, rolled back)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text(statement), params)
        connection.execute(text("SET LOCAL session_replication_role = origin"))
        return
    for table in ("ledger_entries", "ledger_transfers"):
        connection.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
    connection.execute(text(statement), params)


def journal(world) -> list[LedgerTransfer]:
    publish(world)
    resident(world, "res_a1_b")
    award(world, "res_a1")
    award(world, "res_a1_b")
    fund_wallet(world, "res_a1", 5)
    return transfers(world)


def test_verify_books_finds_nothing_wrong_in_an_honest_journal(world):
    journal(world)
    problems, figures = verify_books(world.session)
    assert problems == []
    assert figures["transfers"] == 3 and figures["entries"] == 6 and figures["lots"] == 3


def test_verify_books_names_the_transfer_whose_entries_were_changed(world, connection):
    first, second, third = journal(world)
    wallet_leg = next(e for e in second.entries if e.lot_id is not None)
    issuing_leg = next(e for e in second.entries if e.lot_id is None)
    # both legs changed so they still balance: only the hash can tell
    tamper(connection, "UPDATE ledger_entries SET amount = amount + 100 WHERE id = :id",
           id=wallet_leg.id)
    tamper(connection, "UPDATE ledger_entries SET amount = amount - 100 WHERE id = :id",
           id=issuing_leg.id)
    world.session.expire_all()
    problems, _ = verify_books(world.session)
    assert (problems[0].what, problems[0].ident) == ("transfer", second.id)
    assert "hash" in problems[0].message
    assert {(p.what, p.ident) for p in problems[1:]} >= {
        ("ledger_accounts", wallet_leg.account_id), ("point_lots", wallet_leg.lot_id)}


def test_verify_books_names_a_transfer_whose_reason_was_rewritten(world, connection):
    first, second, third = journal(world)
    tamper(connection, "UPDATE ledger_transfers SET reason = 'rewritten' WHERE id = :id",
           id=first.id)
    world.session.expire_all()
    problems, _ = verify_books(world.session)
    assert [(p.what, p.ident) for p in problems] == [("transfer", first.id)]


def test_verify_books_closes_its_cursor_when_it_stops_at_a_mismatch(world, connection,
                                                                   monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    first, second, third = journal(world)
    tamper(connection, "UPDATE ledger_transfers SET reason = 'rewritten' WHERE id = :id",
           id=first.id)
    world.session.expire_all()
    problems, _ = verify_books(world.session)
    gc.collect()
    assert problems[0].ident == first.id
    assert [str(u.exc_value) for u in unraisable] == []


def test_verify_books_notices_an_entry_that_breaks_the_balance(world, connection):
    first, second, third = journal(world)
    leg = next(e for e in third.entries if e.lot_id is None)
    tamper(connection, "UPDATE ledger_entries SET amount = amount - 1 WHERE id = :id", id=leg.id)
    world.session.expire_all()
    problems, _ = verify_books(world.session)
    assert (problems[0].what, problems[0].ident) == ("transfer", third.id)
    assert "sum to zero" in problems[0].message


def test_verify_books_notices_a_cached_balance_that_drifted(world, connection):
    journal(world)
    wallet = find_wallet(world.session, world["a1"], world.users["res_a1"])
    connection.execute(text("UPDATE ledger_accounts SET balance = balance + 7 WHERE id = :id"),
                       {"id": wallet.id})
    world.session.expire_all()
    problems, _ = verify_books(world.session)
    assert [(p.what, p.ident) for p in problems] == [("ledger_accounts", wallet.id)]
    assert "cached balance 32" in problems[0].message


# ---- the `linli ledger` commands --------------------------------------------------------------

def test_ledger_verify_exits_zero_on_honest_books(runner, world):
    journal(world)
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert "ledger verify OK" in result.output and "3 transfers" in result.output


def test_ledger_verify_exits_non_zero_and_names_the_first_bad_transfer(runner, world, connection):
    first, second, third = journal(world)
    tamper(connection, "UPDATE ledger_transfers SET reason = 'rewritten' WHERE id = :id",
           id=second.id)
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert f"MISMATCH transfer {second.id}" in result.output
    assert f"ledger verify FAILED: first mismatch at transfer {second.id}" in result.output


def test_ledger_verify_reports_stock_that_does_not_match_its_movements(runner, world, connection):
    item = goods(world, stock=5)
    connection.execute(text("UPDATE market_items SET stock = 9 WHERE id = :id"), {"id": item.id})
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert f"first mismatch at market_items {item.id}" in result.output


def lapsed_lot(world) -> PointLot:
    """A lot earned in January 2020 that lapsed a month later (the command runs on the real
    clock)."""
    long_ago = datetime(2020, 1, 15, 2, 0, tzinfo=UTC)
    publish_at(world, date(2020, 1, 15), long_ago)
    settings(world, points_expiry_months=1)
    award_on(world, date(2020, 1, 15), "res_a1", now=long_ago)
    return lots(world, "res_a1")[0]


def test_ledger_expire_moves_lapsed_points_once(runner, world):
    lot = lapsed_lot(world)
    dry = runner.invoke(args=["ledger", "expire", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would expire lot {lot.id}: 20 points" in dry.output
    assert balance(world, "res_a1") == 20
    result = runner.invoke(args=["ledger", "expire"])
    assert result.exit_code == 0, result.output
    assert f"expired lot {lot.id}: 20 points of user {world.users['res_a1']}" in result.output
    assert "expired 1 lots (20 points); refunded 0 uncollected orders" in result.output
    assert balance(world, "res_a1") == 0
    again = runner.invoke(args=["ledger", "expire"])
    assert again.exit_code == 0
    assert "expired 0 lots (0 points)" in again.output
    assert len(transfers(world, "expiry")) == 1


def test_ledger_statement_shows_balance_lots_with_expiry_and_lines(runner, world):
    publish(world)
    settings(world, points_expiry_months=12)
    award(world, "res_a1")
    result = runner.invoke(args=["ledger", "statement", "res_a1"])
    assert result.exit_code == 0, result.output
    assert f"res_a1 in community {world['a1']}: balance 20 (20 usable)" in result.output
    assert "20/20 earned 2026-11-20, expires 2027-11-20" in result.output
    assert "award" in result.output and "为社区服务" in result.output
    by_id = runner.invoke(args=["ledger", "statement", str(world.users["res_a1"]), "--csv"])
    assert by_id.exit_code == 0, by_id.output
    header, line = by_id.output.strip().splitlines()
    assert header == "at,community_id,amount,kind,reason,source"
    assert line.endswith(f",{world['a1']},20,award,为社区服务,award:building_head")


def test_ledger_statement_of_an_unknown_user_fails(runner, world):
    result = runner.invoke(args=["ledger", "statement", "nobody"])
    assert result.exit_code != 0
    assert "no user 'nobody'" in result.output


def test_ledger_statement_of_a_user_without_a_wallet_says_so(runner, world):
    result = runner.invoke(args=["ledger", "statement", "res_a1"])
    assert result.exit_code == 0
    assert "res_a1: no wallet yet" in result.output
