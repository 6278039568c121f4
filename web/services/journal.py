"""The journal's mechanics: accounts, posting a balanced transfer onto a community's hash chain.

Every movement of points or fen goes through `post`. Locks are taken in one order — wallets
(by id), then supermarket items (by id), then the community's chain head, then the other
accounts by the UPDATE that moves their balance — so two postings never deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scoring.ledger import GENESIS, LedgerRuleError, Leg, Lot, chain_hash, check_balanced
from web.domain.actor import Actor
from web.errors import AlreadyPostedError, ValidationError
from web.models import (
    LedgerAccount,
    LedgerEntry,
    LedgerHead,
    LedgerLink,
    LedgerTransfer,
    PointLot,
)
from web.services.base import lock


class AccountKind(StrEnum):
    WALLET = "wallet"            # a resident's points in one community
    ISSUING = "issuing"          # where a community's points come from
    SUPERMARKET = "supermarket"  # points spent at the community's supermarket
    EXPIRY = "expiry"            # points that lapsed
    ADJUSTMENT = "adjustment"    # corrections by hand
    FUND = "fund"                # the community fund (社区基金), in fen
    DONATIONS = "donations"      # money given to the fund by units and residents
    GRANTS = "grants"            # a charity federation's matching grants
    PURCHASES = "purchases"      # money the fund spent on supermarket stock


ASSET_OF = {AccountKind.FUND: "fen", AccountKind.DONATIONS: "fen", AccountKind.GRANTS: "fen",
            AccountKind.PURCHASES: "fen"}
# Accounts that stand for the world outside the community may go negative; the rest may not.
MAY_GO_NEGATIVE = {AccountKind.ISSUING, AccountKind.ADJUSTMENT, AccountKind.DONATIONS,
                   AccountKind.GRANTS}


class TransferKind(StrEnum):
    CREDIT = "credit"            # points for a verified service record
    AWARD = "award"              # points for an activity, by the secretary
    REDEMPTION = "redemption"    # points spent at the supermarket
    REFUND = "refund"            # an order cancelled or not collected
    EXPIRY = "expiry"            # a lot's points lapsed
    GIFT = "gift"                # 爱心传递 between residents
    ADJUSTMENT = "adjustment"    # a correction by hand
    REVERSAL = "reversal"        # a mistake undone
    DONATION = "donation"        # money into the fund
    PURCHASE = "purchase"        # money out of the fund for stock


def asset_of(kind: AccountKind) -> str:
    return ASSET_OF.get(kind, "points")


def account_key(kind: AccountKind, community_id: int, user_id: int | None = None) -> str:
    key = f"{kind}:{asset_of(kind)}:{community_id}"
    return f"{key}:{user_id}" if user_id is not None else key


def account(session: Session, kind: AccountKind, community_id: int, user_id: int | None = None,
            *, now: datetime) -> LedgerAccount:
    """The account of `kind` (a wallet needs `user_id`), created on first use."""
    key = account_key(kind, community_id, user_id)
    found = session.scalar(select(LedgerAccount).where(LedgerAccount.key == key))
    if found is not None:
        return found
    new = LedgerAccount(key=key, kind=str(kind), asset=asset_of(kind), community_id=community_id,
                        user_id=user_id, may_go_negative=kind in MAY_GO_NEGATIVE, balance=0,
                        created_at=now)
    try:
        with session.begin_nested():  # another transaction may create it at the same moment
            session.add(new)
    except IntegrityError:
        return session.scalar(select(LedgerAccount).where(LedgerAccount.key == key))
    return new


def find_wallet(session: Session, community_id: int, user_id: int, *,
                locked: bool = False) -> LedgerAccount | None:
    """A resident's wallet, or None; `locked` reads it under its row lock in the same query (for
    one wallet — several are locked in id order by `lock_wallets`)."""
    key = account_key(AccountKind.WALLET, community_id, user_id)
    stmt = select(LedgerAccount).where(LedgerAccount.key == key)
    if locked:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return session.scalar(stmt)


def lock_wallets(session: Session, wallets: list[LedgerAccount]) -> None:
    """Lock wallets in id order: every check on a wallet's lots is made under this lock."""
    for wallet_id in sorted({w.id for w in wallets}):
        lock(session, LedgerAccount, wallet_id)


def open_lots(session: Session, wallet: LedgerAccount) -> list[Lot]:
    """The wallet's lots that still hold points (read under the wallet's lock)."""
    rows = session.execute(select(PointLot.id, PointLot.remaining, PointLot.earned_on,
                                  PointLot.expires_on)
                           .where(PointLot.account_id == wallet.id, PointLot.remaining > 0))
    return [Lot(*row) for row in rows]


def new_lot(session: Session, wallet: LedgerAccount, amount: int, *, origin: str,
            earned_on: date, expires_on: date | None) -> PointLot:
    """A lot for points arriving in a wallet (its remaining rises with the entry that fills it)."""
    lot = PointLot(account_id=wallet.id, origin=origin, earned_on=earned_on,
                   expires_on=expires_on, amount=amount, remaining=0)
    session.add(lot)
    session.flush()
    return lot


@dataclass
class Posting:
    """What a transfer is for: its kind, why, and where it comes from."""

    kind: TransferKind
    reason: str
    source_type: str
    source_id: str | None = None
    source_key: str | None = None
    reverses_id: int | None = None
    rule_version: int | None = None
    detail: dict | None = None


HEADS = LedgerHead.__table__


def _head(session: Session, community_id: int) -> tuple[int, str]:
    """The community's chain head (seq, hash), read under its row lock, created on first use."""
    stmt = select(HEADS.c.seq, HEADS.c.hash).where(HEADS.c.community_id == community_id) \
        .with_for_update()
    head = session.execute(stmt).first()
    if head is None:
        try:
            with session.begin_nested():
                session.execute(HEADS.insert().values(community_id=community_id, seq=0,
                                                      hash=GENESIS))
        except IntegrityError:
            pass
        head = session.execute(stmt).first()
    return head.seq, head.hash


def link_payload(transfer: LedgerTransfer, seq: int,
                 legs: list[tuple[int, int | None, int]]) -> dict:
    """What a link's hash covers: the transfer, every field that says what moved, why and when,
    and its legs."""
    return {
        "seq": seq, "transfer_id": transfer.id, "community_id": transfer.community_id,
        "asset": transfer.asset, "kind": transfer.kind, "reason": transfer.reason,
        "source_type": transfer.source_type, "source_id": transfer.source_id,
        "source_key": transfer.source_key, "reverses_id": transfer.reverses_id,
        "rule_version": transfer.rule_version, "detail": transfer.detail,
        "created_by": transfer.created_by, "created_at": transfer.created_at.isoformat(),
        "legs": [list(leg) for leg in legs],
    }


PENDING = "linli_ledger_pending"  # session.info: transfers and shared-account moves to seal


def post(session: Session, community_id: int, legs: list[Leg], posting: Posting, *,
         actor: Actor, now: datetime) -> LedgerTransfer:
    """Write one balanced transfer and its legs, and move the cached balances.

    Wallets and lots move at once, so their CHECK constraints refuse an overdraft here. The
    community's shared accounts (issuing, supermarket, fund, …) move, and the transfer joins
    the hash chain, when the transaction commits (`seal`): those hot rows and the chain's head
    are then locked only for the last moment of the transaction.
    """
    try:
        check_balanced(legs)
    except LedgerRuleError as exc:
        raise ValidationError(str(exc)) from exc
    accounts = {i: session.get(LedgerAccount, i) for i in {leg.account for leg in legs}}
    assets = {a.asset for a in accounts.values()}
    if len(assets) != 1 or any(a.community_id != community_id for a in accounts.values()):
        raise ValidationError("a transfer moves one asset within one community")
    if posting.source_key and session.scalar(select(LedgerTransfer.id).where(
            LedgerTransfer.source_key == posting.source_key)):
        raise AlreadyPostedError("this has already been posted", source_key=posting.source_key)
    transfer = LedgerTransfer(
        community_id=community_id, asset=assets.pop(), kind=str(posting.kind),
        reason=posting.reason, source_type=posting.source_type, source_id=posting.source_id,
        source_key=posting.source_key, reverses_id=posting.reverses_id,
        rule_version=posting.rule_version, detail=posting.detail, created_by=actor.user_id,
        created_at=now.astimezone(UTC))
    session.add(transfer)
    session.flush()
    session.execute(LedgerEntry.__table__.insert(), [  # one statement for every leg
        {"transfer_id": transfer.id, "account_id": leg.account, "lot_id": leg.lot,
         "amount": leg.amount, "created_at": now} for leg in legs])
    pending = session.info.setdefault(PENDING, {"transfers": [], "shared": {}})
    wallets: dict[int, int] = {}
    for leg in legs:
        if accounts[leg.account].kind == AccountKind.WALLET:
            wallets[leg.account] = wallets.get(leg.account, 0) + leg.amount
        else:
            pending["shared"][leg.account] = pending["shared"].get(leg.account, 0) + leg.amount
        if leg.lot is not None:
            session.execute(PointLot.__table__.update().where(PointLot.id == leg.lot)
                            .values(remaining=PointLot.remaining + leg.amount))
            loaded = session.identity_map.get(session.identity_key(PointLot, leg.lot))
            if loaded is not None:
                session.expire(loaded, ["remaining"])
    for account_id, amount in sorted(wallets.items()):
        _move_balance(session, account_id, amount)
    pending["transfers"].append((transfer, [(leg.account, leg.lot, leg.amount) for leg in legs]))
    for acc in accounts.values():
        session.expire(acc, ["balance"])
    return transfer


def _move_balance(session: Session, account_id: int, amount: int) -> None:
    """Move a cached balance by SQL arithmetic; CHECK constraints refuse an overdraft."""
    if amount:
        session.execute(LedgerAccount.__table__.update().where(LedgerAccount.id == account_id)
                        .values(balance=LedgerAccount.balance + amount))


@event.listens_for(Session, "before_commit")
def seal(session: Session) -> None:
    """As the transaction commits: move the shared accounts (in id order), then lock each
    community's chain head and append a link per transfer posted in this transaction.

    SQLAlchemy also calls this when a savepoint is released; what is pending is sealed then,
    which is as correct, only earlier."""
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    for account_id, amount in sorted(pending["shared"].items()):
        _move_balance(session, account_id, amount)
    by_community: dict[int, list] = {}
    for transfer, legs in pending["transfers"]:
        by_community.setdefault(transfer.community_id, []).append((transfer, legs))
    for community_id in sorted(by_community):
        seq, digest = _head(session, community_id)
        links: list[dict] = []
        for transfer, legs in by_community[community_id]:
            prev, seq = digest, seq + 1
            digest = chain_hash(prev, link_payload(transfer, seq, legs))
            links.append({"community_id": community_id, "seq": seq, "transfer_id": transfer.id,
                          "prev_hash": prev, "hash": digest})
        session.execute(HEADS.update().where(HEADS.c.community_id == community_id)
                        .values(seq=seq, hash=digest))
        session.execute(LedgerLink.__table__.insert(), links)
        loaded = session.identity_map.get(session.identity_key(LedgerHead, community_id))
        if loaded is not None:  # read earlier in this session (the books' check): now stale
            session.expire(loaded)


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous) -> None:
    """A rolled-back transaction leaves nothing to seal (a savepoint's rollback, such as a lost
    race to create an account, leaves the transaction's postings standing)."""
    if previous.parent is None:
        session.info.pop(PENDING, None)


# ---- checking the books -----------------------------------------------------------------------

@dataclass
class Mismatch:
    """The first thing in the books that does not fit, in words."""

    what: str
    ident: int | str
    message: str


def verify_books(session: Session) -> tuple[list[Mismatch], dict]:
    """Recompute every community's hash chain, every balance and every lot from the entries."""
    problems: list[Mismatch] = []
    figures = {"communities": 0, "transfers": 0, "entries": 0, "accounts": 0, "lots": 0}
    for community_id in session.scalars(select(LedgerHead.community_id)
                                        .order_by(LedgerHead.community_id)):
        figures["communities"] += 1
        problems += _verify_chain(session, community_id, figures)
    problems += _verify_sums(session, LedgerAccount, LedgerEntry.account_id, "balance", figures,
                             "accounts")
    problems += _verify_sums(session, PointLot, LedgerEntry.lot_id, "remaining", figures, "lots")
    return problems, figures


def _verify_chain(session: Session, community_id: int, figures: dict) -> list[Mismatch]:
    head = session.get(LedgerHead, community_id)
    stmt = (select(LedgerLink, LedgerTransfer)
            .join(LedgerTransfer, LedgerTransfer.id == LedgerLink.transfer_id)
            .where(LedgerLink.community_id == community_id).order_by(LedgerLink.seq)
            .execution_options(yield_per=1000))
    with session.execute(stmt) as result:  # closes the server-side cursor on an early return
        problems = _walk(session, community_id, head, result, figures)
    if problems:
        return problems
    unlinked = session.scalar(select(LedgerTransfer.id).where(
        LedgerTransfer.community_id == community_id,
        LedgerTransfer.id.not_in(select(LedgerLink.transfer_id))).limit(1))
    if unlinked is not None:
        return [Mismatch("transfer", unlinked, "is not in its community's hash chain")]
    return []


def _walk(session: Session, community_id: int, head: LedgerHead, rows,
          figures: dict) -> list[Mismatch]:
    previous, expected_seq = GENESIS, 1
    for link, transfer in rows:
        figures["transfers"] += 1
        entries = list(session.scalars(select(LedgerEntry)
                                       .where(LedgerEntry.transfer_id == transfer.id)
                                       .order_by(LedgerEntry.id)))
        figures["entries"] += len(entries)
        triples = [(e.account_id, e.lot_id, e.amount) for e in entries]
        if link.seq != expected_seq or link.community_id != transfer.community_id:
            return [Mismatch("transfer", transfer.id, f"community {community_id}: link "
                             f"{link.seq} where {expected_seq} was expected")]
        if sum(e.amount for e in entries) != 0 or not entries:
            return [Mismatch("transfer", transfer.id, "legs do not sum to zero")]
        if link.prev_hash != previous:
            return [Mismatch("transfer", transfer.id, "does not link to the transfer before it")]
        if chain_hash(previous, link_payload(transfer, link.seq, triples)) != link.hash:
            return [Mismatch("transfer", transfer.id, "its content does not match its hash "
                             "(an entry or a field was changed)")]
        previous, expected_seq = link.hash, expected_seq + 1
    if head.seq != expected_seq - 1 or head.hash != previous:
        return [Mismatch("chain", community_id, "the chain's head does not match its last link")]
    return []


def _verify_sums(session: Session, model, column, cached: str, figures: dict,
                 counter: str) -> list[Mismatch]:
    from sqlalchemy import func

    sums = dict(session.execute(select(column, func.sum(LedgerEntry.amount))
                                .where(column.is_not(None)).group_by(column)).all())
    problems = []
    for row in session.scalars(select(model).order_by(model.id)):
        figures[counter] += 1
        computed = sums.get(row.id, 0) or 0
        if getattr(row, cached) != computed:
            problems.append(Mismatch(model.__tablename__, row.id,
                                     f"cached {cached} {getattr(row, cached)} but the entries "
                                     f"sum to {computed}"))
        elif model is LedgerAccount and not row.may_go_negative and computed < 0:
            problems.append(Mismatch("ledger_accounts", row.id, "is overdrawn"))
    return problems
