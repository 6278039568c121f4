"""The love bank's ledger rules, pure: balanced legs, lots spent oldest first, the hash chain.

The service layer stores transfers and entries; everything that decides *what* the entries are,
or whether a journal still fits together, lives here so it can be tested without a database.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

GENESIS = "0" * 64
MAX_AMOUNT = 10**9  # points or fen in one transfer; larger is bad input, not a transfer


class LedgerRuleError(ValueError):
    """A transfer that breaks a ledger rule (unbalanced, empty, too large)."""


class InsufficientFunds(LedgerRuleError):
    """The lots hold less than asked for."""

    def __init__(self, wanted: int, available: int):
        super().__init__(f"needs {wanted}, has {available}")
        self.wanted = wanted
        self.available = available


@dataclass(frozen=True)
class Leg:
    """One side of a transfer: `amount` (signed) into `account`, from or to one lot."""

    account: int
    amount: int
    lot: int | None = None


def check_balanced(legs: Sequence[Leg]) -> None:
    """Every transfer moves something and its legs sum to zero."""
    if not legs or all(leg.amount == 0 for leg in legs):
        raise LedgerRuleError("a transfer needs at least one non-zero leg")
    if sum(leg.amount for leg in legs) != 0:
        raise LedgerRuleError("legs do not sum to zero")
    if any(abs(leg.amount) > MAX_AMOUNT for leg in legs):
        raise LedgerRuleError("amount too large")


@dataclass(frozen=True)
class Lot:
    """Points earned together, spendable until `expires_on` (None: never)."""

    id: int
    remaining: int
    earned_on: date
    expires_on: date | None


def spending_order(lots: Iterable[Lot]) -> list[Lot]:
    """Lots in the order they are spent: the oldest first (a gift keeps its lot's age)."""
    return sorted(lots, key=lambda lot: (lot.earned_on, lot.id))


def take_from_lots(lots: Iterable[Lot], amount: int, *, today: date) -> list[tuple[int, int]]:
    """(lot id, points) to spend `amount` from unexpired lots, oldest first; or InsufficientFunds."""
    if amount <= 0:
        raise LedgerRuleError("amount must be positive")
    usable = [lot for lot in spending_order(lots)
              if lot.remaining > 0 and (lot.expires_on is None or lot.expires_on > today)]
    taken, left = [], amount
    for lot in usable:
        if left == 0:
            break
        take = min(lot.remaining, left)
        taken.append((lot.id, take))
        left -= take
    if left:
        raise InsufficientFunds(amount, amount - left)
    return taken


def add_months(day: date, months: int) -> date:
    """`day` plus whole months, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def expiry_for(earned_on: date, months: int | None) -> date | None:
    """The day a lot earned on `earned_on` expires (it is spendable before it), or None."""
    return None if not months else add_months(earned_on, months)


def canonical(payload: dict) -> bytes:
    """The bytes a transfer's hash is computed over: sorted keys, no spaces, UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def chain_hash(previous: str, payload: dict) -> str:
    """The hash of one journal link: SHA-256 of the previous hash and this transfer's payload."""
    return hashlib.sha256(previous.encode() + b"\n" + canonical(payload)).hexdigest()


def request_fingerprint(operation: str, payload: dict) -> str:
    """A stable fingerprint of a point-moving request, to tell a retry from a different request."""
    return hashlib.sha256(operation.encode() + b"\n" + canonical(payload)).hexdigest()
