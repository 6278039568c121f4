"""The ledger's pure rules: balanced legs, lots spent oldest first, month arithmetic, the chain."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.ledger import (
    GENESIS,
    MAX_AMOUNT,
    InsufficientFunds,
    LedgerRuleError,
    Leg,
    Lot,
    add_months,
    canonical,
    chain_hash,
    check_balanced,
    expiry_for,
    request_fingerprint,
    spending_order,
    take_from_lots,
)

TODAY = date(2026, 11, 20)


# ---- check_balanced ---------------------------------------------------------------------------

def test_legs_that_sum_to_zero_are_balanced():
    check_balanced([Leg(1, 10, 7), Leg(2, -10)])
    check_balanced([Leg(1, 3), Leg(2, 4), Leg(3, -7)])
    check_balanced([Leg(1, MAX_AMOUNT), Leg(2, -MAX_AMOUNT)])


@pytest.mark.parametrize(("legs", "message"), [
    ([], "non-zero"),
    ([Leg(1, 0)], "non-zero"),
    ([Leg(1, 0), Leg(2, 0)], "non-zero"),
    ([Leg(1, 10)], "sum to zero"),
    ([Leg(1, 10), Leg(2, -9)], "sum to zero"),
    ([Leg(1, MAX_AMOUNT + 1), Leg(2, -MAX_AMOUNT - 1)], "too large"),
])
def test_an_unbalanced_empty_or_huge_transfer_is_refused(legs, message):
    with pytest.raises(LedgerRuleError, match=message):
        check_balanced(legs)


@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=8))
def test_any_legs_plus_their_negated_sum_balance_unless_all_are_zero(amounts):
    legs = [Leg(i, a) for i, a in enumerate(amounts)] + [Leg(99, -sum(amounts))]
    if all(a == 0 for a in amounts):
        with pytest.raises(LedgerRuleError):
            check_balanced(legs)
    else:
        check_balanced(legs)


# ---- take_from_lots ---------------------------------------------------------------------------

def lot(ident: int, remaining: int, earned: date, expires: date | None = None) -> Lot:
    return Lot(ident, remaining, earned, expires)


def test_the_oldest_lot_is_spent_first_whatever_order_the_lots_come_in():
    lots = [lot(3, 10, date(2026, 11, 1)), lot(1, 10, date(2026, 9, 1)),
            lot(2, 10, date(2026, 10, 1))]
    assert take_from_lots(lots, 15, today=TODAY) == [(1, 10), (2, 5)]


def test_lots_earned_on_the_same_day_are_spent_in_id_order():
    lots = [lot(9, 5, date(2026, 10, 1)), lot(4, 5, date(2026, 10, 1))]
    assert take_from_lots(lots, 7, today=TODAY) == [(4, 5), (9, 2)]
    assert [x.id for x in spending_order(lots)] == [4, 9]


def test_a_gift_lot_keeps_its_age_so_an_old_gift_is_spent_before_new_points():
    gift = lot(50, 5, date(2026, 1, 1))  # a later id, an older day
    earned = lot(10, 5, date(2026, 11, 1))
    assert take_from_lots([earned, gift], 5, today=TODAY) == [(50, 5)]


def test_only_as_many_lots_as_needed_are_touched():
    lots = [lot(1, 10, date(2026, 1, 1)), lot(2, 10, date(2026, 2, 1))]
    assert take_from_lots(lots, 10, today=TODAY) == [(1, 10)]


def test_a_lot_that_expires_today_or_earlier_is_skipped():
    lots = [lot(1, 10, date(2025, 11, 20), expires=TODAY),
            lot(2, 10, date(2025, 10, 1), expires=TODAY - timedelta(days=1)),
            lot(3, 10, date(2026, 1, 1), expires=TODAY + timedelta(days=1)),
            lot(4, 10, date(2026, 2, 1))]
    assert take_from_lots(lots, 15, today=TODAY) == [(3, 10), (4, 5)]


def test_a_lot_is_still_spendable_on_the_day_before_it_expires():
    lots = [lot(1, 10, date(2025, 11, 20), expires=TODAY)]
    assert take_from_lots(lots, 10, today=TODAY - timedelta(days=1)) == [(1, 10)]
    with pytest.raises(InsufficientFunds):
        take_from_lots(lots, 10, today=TODAY)


def test_empty_lots_are_skipped():
    lots = [lot(1, 0, date(2026, 1, 1)), lot(2, 4, date(2026, 2, 1))]
    assert take_from_lots(lots, 4, today=TODAY) == [(2, 4)]


def test_asking_for_more_than_the_usable_lots_hold_says_how_much_there_is():
    lots = [lot(1, 10, date(2026, 1, 1)), lot(2, 100, date(2025, 1, 1), expires=TODAY)]
    with pytest.raises(InsufficientFunds) as caught:
        take_from_lots(lots, 11, today=TODAY)
    assert (caught.value.wanted, caught.value.available) == (11, 10)
    assert isinstance(caught.value, LedgerRuleError)


def test_spending_from_no_lots_is_insufficient():
    with pytest.raises(InsufficientFunds) as caught:
        take_from_lots([], 1, today=TODAY)
    assert caught.value.available == 0


@pytest.mark.parametrize("amount", [0, -1, -100])
def test_spending_nothing_or_a_negative_amount_is_refused(amount):
    with pytest.raises(LedgerRuleError, match="positive"):
        take_from_lots([lot(1, 10, date(2026, 1, 1))], amount, today=TODAY)


lots_strategy = st.lists(
    st.builds(lambda remaining, earned, life: (remaining, earned, life),
              st.integers(0, 50),
              st.dates(date(2025, 1, 1), date(2026, 12, 31)),
              st.one_of(st.none(), st.integers(-60, 400))),
    max_size=8,
).map(lambda rows: [Lot(i + 1, r, e, None if life is None else e + timedelta(days=life))
                    for i, (r, e, life) in enumerate(rows)])


@given(lots_strategy, st.integers(1, 400))
def test_take_from_lots_takes_exactly_the_amount_or_raises(lots, amount):
    usable = {x.id: x for x in lots if x.remaining > 0
              and (x.expires_on is None or x.expires_on > TODAY)}
    try:
        taken = take_from_lots(lots, amount, today=TODAY)
    except InsufficientFunds as exc:
        assert sum(x.remaining for x in usable.values()) < amount
        assert exc.available == sum(x.remaining for x in usable.values())
        return
    assert sum(points for _, points in taken) == amount
    assert len({ident for ident, _ in taken}) == len(taken)
    for ident, points in taken:
        assert ident in usable  # never an expired or empty lot
        assert 0 < points <= usable[ident].remaining  # never more than a lot holds
    # oldest first: every lot taken before the last is emptied, and no older lot is left over
    order = [x.id for x in spending_order(usable.values())]
    assert [ident for ident, _ in taken] == order[:len(taken)]
    assert all(points == usable[ident].remaining for ident, points in taken[:-1])


# ---- add_months and expiry_for ----------------------------------------------------------------

@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2026, 1, 15), 1, date(2026, 2, 15)),
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2028, 1, 31), 1, date(2028, 2, 29)),   # a leap year
    (date(2026, 3, 31), 1, date(2026, 4, 30)),
    (date(2026, 8, 31), 1, date(2026, 9, 30)),
    (date(2026, 11, 20), 12, date(2027, 11, 20)),
    (date(2026, 12, 31), 1, date(2027, 1, 31)),
    (date(2026, 12, 15), 13, date(2028, 1, 15)),
    (date(2028, 2, 29), 12, date(2029, 2, 28)),
    (date(2026, 5, 31), 120, date(2036, 5, 31)),
    (date(2026, 3, 31), -1, date(2026, 2, 28)),
    (date(2026, 1, 10), -1, date(2025, 12, 10)),
    (date(2026, 6, 30), 0, date(2026, 6, 30)),
])
def test_add_months_clamps_to_the_end_of_a_shorter_month(day, months, expected):
    assert add_months(day, months) == expected


@given(st.dates(date(2000, 1, 1), date(2090, 12, 31)), st.integers(0, 120))
def test_add_months_lands_in_the_right_month_never_past_the_day(day, months):
    result = add_months(day, months)
    assert (result.year * 12 + result.month) - (day.year * 12 + day.month) == months
    assert result.day <= day.day
    assert result.day == day.day or (result + timedelta(days=1)).month != result.month


def test_a_lot_expires_a_set_number_of_months_after_it_was_earned():
    assert expiry_for(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert expiry_for(date(2026, 11, 20), 12) == date(2027, 11, 20)


@pytest.mark.parametrize("months", [None, 0])
def test_without_an_expiry_setting_a_lot_never_expires(months):
    assert expiry_for(date(2026, 11, 20), months) is None


# ---- the hash chain ---------------------------------------------------------------------------

PAYLOAD = {"seq": 1, "community_id": 3, "asset": "points", "kind": "credit",
           "reason": "service on 2026-11-19: 90 min", "source_type": "service_record",
           "source_id": "17", "source_key": "service-record:17", "reverses_id": None,
           "rule_version": 1, "detail": {"minutes": 90, "points": 15},
           "created_by": 5, "created_at": "2026-11-20T02:00:00+00:00",
           "legs": [[10, 4, 15], [11, None, -15]]}


def test_the_chain_hash_is_a_sha256_hex_digest_and_is_deterministic():
    first = chain_hash(GENESIS, PAYLOAD)
    assert len(first) == 64 and int(first, 16) >= 0
    assert chain_hash(GENESIS, dict(reversed(list(PAYLOAD.items())))) == first
    assert GENESIS == "0" * 64


def test_canonical_bytes_sort_keys_drop_spaces_and_keep_chinese_as_utf8():
    assert canonical({"b": 1, "a": "积分"}) == '{"a":"积分","b":1}'.encode()
    assert canonical({"day": date(2026, 11, 20)}) == b'{"day":"2026-11-20"}'


def test_the_hash_depends_on_the_previous_link():
    assert chain_hash(GENESIS, PAYLOAD) != chain_hash("f" * 64, PAYLOAD)


CHANGES = {
    "seq": 2, "community_id": 4, "asset": "fen", "kind": "award", "reason": "service on …",
    "source_type": "award", "source_id": "18", "source_key": "service-record:18",
    "reverses_id": 1, "rule_version": 2, "detail": {"minutes": 90, "points": 16},
    "created_by": 6, "created_at": "2026-11-20T02:00:01+00:00",
    "legs": [[10, 4, 16], [11, None, -16]],
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_changing_any_field_changes_the_hash(field):
    assert set(CHANGES) == set(PAYLOAD)
    assert chain_hash(GENESIS, {**PAYLOAD, field: CHANGES[field]}) != chain_hash(GENESIS, PAYLOAD)


@pytest.mark.parametrize("legs", [
    [[10, 4, 14], [11, None, -14]],         # another amount
    [[12, 4, 15], [11, None, -15]],         # another account
    [[10, 5, 15], [11, None, -15]],         # another lot
    [[10, None, 15], [11, None, -15]],      # no lot
    [[11, None, -15], [10, 4, 15]],         # the legs in another order
    [[10, 4, 15], [11, None, -15], [12, None, 0]],
])
def test_changing_any_leg_changes_the_hash(legs):
    assert chain_hash(GENESIS, {**PAYLOAD, "legs": legs}) != chain_hash(GENESIS, PAYLOAD)


@given(st.sampled_from(sorted(PAYLOAD)), st.one_of(st.integers(), st.text(max_size=20),
                                                  st.none()))
def test_any_different_value_in_any_field_gives_a_different_hash(field, value):
    changed = {**PAYLOAD, field: value}
    if changed[field] == PAYLOAD[field]:
        return
    assert chain_hash(GENESIS, changed) != chain_hash(GENESIS, PAYLOAD)


def test_a_request_fingerprint_tells_a_retry_from_a_different_request():
    same = request_fingerprint("gift", {"to": 5, "points": 10})
    assert request_fingerprint("gift", {"points": 10, "to": 5}) == same
    assert request_fingerprint("gift", {"to": 5, "points": 11}) != same
    assert request_fingerprint("adjust", {"to": 5, "points": 10}) != same
