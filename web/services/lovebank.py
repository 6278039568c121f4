"""The love bank (爱心银行): points rules, earning, awards, gifts, corrections, expiry, statements.

Each function that moves points is one transaction, takes an idempotency key where a client
calls it, and posts through `journal.post`; the wallet is locked before its lots are read.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scoring.ledger import InsufficientFunds, Leg, expiry_for, take_from_lots
from scoring.rules import (
    PointsRules,
    RulesError,
    capped,
    parse_rules,
    points_for_service,
    rules_document,
)
from web.domain.actor import SYSTEM, Actor
from web.errors import AlreadyPostedError, ConflictError, InsufficientPointsError, NotFoundError
from web.models import (
    ActivitySession,
    Category,
    Community,
    DemandItem,
    LedgerAccount,
    LedgerEntry,
    LedgerTransfer,
    PointLot,
    PointsRuleVersion,
    RoleGrant,
    ServiceRecord,
    SessionSignup,
)
from web.models.people import Role
from web.services import audit
from web.services import idempotency as keys
from web.services.base import (
    LOCAL_TZ,
    Page,
    get_or_404,
    invalid,
    like_pattern,
    local_date,
    need_reason,
    paginate,
    require,
    utcnow,
    write,
)
from web.services.journal import (
    AccountKind,
    Posting,
    TransferKind,
    account,
    find_wallet,
    lock_wallets,
    new_lot,
    open_lots,
    post,
)
from web.services.notifications import notify

EARNING_ORIGINS = ("earned",)


# ---- rules ------------------------------------------------------------------------------------

def may_manage(actor: Actor, community_id: int) -> bool:
    """The community's secretary (or the system) manages its love bank."""
    return actor.is_system or actor.is_secretary_of(community_id)


def may_oversee(session: Session, actor: Actor, community_id: int) -> bool:
    """The secretary, or the admin of the community's subdistrict, may read its books."""
    if may_manage(actor, community_id):
        return True
    community = session.get(Community, community_id)
    return community is not None and actor.is_admin_of_subdistrict(community.subdistrict_id)


@write
def publish_rules(session: Session, *, actor: Actor, community_id: int, document: dict,
                  effective_from: date, note: str | None = None,
                  now: datetime | None = None) -> PointsRuleVersion:
    """Publish a new version of the community's points rules, in force from `effective_from`."""
    now = now or utcnow()
    get_or_404(session, Community, community_id)
    require(may_manage(actor, community_id), "only the community's secretary")
    try:
        rules = parse_rules(document)
    except RulesError as exc:
        raise invalid(f"document.{exc.field}", exc.message) from exc
    if effective_from < local_date(now):
        raise invalid("effective_from", "rules apply from today or later, never to the past")
    last = session.scalar(select(func.max(PointsRuleVersion.version))
                          .where(PointsRuleVersion.community_id == community_id)) or 0
    version = PointsRuleVersion(community_id=community_id, version=last + 1,
                                effective_from=effective_from, document=rules_document(rules),
                                note=note, created_by=actor.user_id, created_at=now)
    session.add(version)
    session.flush()
    audit.record(session, entity_type="points_rules", entity_id=version.id, action="published",
                 actor=actor, now=now, data={"community_id": community_id,
                                             "version": version.version,
                                             "effective_from": effective_from})
    return version


def rules_in_force(session: Session, community_id: int, day: date) -> PointsRuleVersion | None:
    """The version in force on `day`: the latest published with effective_from ≤ day."""
    return session.scalar(
        select(PointsRuleVersion)
        .where(PointsRuleVersion.community_id == community_id,
               PointsRuleVersion.effective_from <= day)
        .order_by(PointsRuleVersion.effective_from.desc(), PointsRuleVersion.version.desc())
        .limit(1))


def list_rules(session: Session, *, actor: Actor, community_id: int) -> list[PointsRuleVersion]:
    """Every version of a community's rules, newest first (public to the community)."""
    get_or_404(session, Community, community_id)
    return list(session.scalars(select(PointsRuleVersion)
                                .where(PointsRuleVersion.community_id == community_id)
                                .order_by(PointsRuleVersion.version.desc())))


@write
def update_settings(session: Session, *, actor: Actor, community_id: int, changes: dict,
                    now: datetime | None = None) -> Community:
    """The community's love-bank settings: expiry, gifts, collection days, fund matching."""
    now = now or utcnow()
    community = get_or_404(session, Community, community_id)
    require(may_manage(actor, community_id), "only the community's secretary")
    limits = {"points_expiry_months": (1, 120), "collect_within_days": (1, 90),
              "fund_match_percent": (0, 100)}
    for name, (low, high) in limits.items():
        value = changes.get(name)
        if value is not None and not low <= value <= high:
            raise invalid(name, f"between {low} and {high}")
    before = {k: getattr(community, k) for k in changes}
    for name, value in changes.items():
        setattr(community, name, value)
    audit.record(session, entity_type="communities", entity_id=community.id,
                 action="love_bank_settings", actor=actor, now=now,
                 data={"before": before, "after": changes})
    return community


# ---- earning ----------------------------------------------------------------------------------

def _earned_since(session: Session, wallet: LedgerAccount, first: date, last: date) -> int:
    return session.scalar(select(func.coalesce(func.sum(PointLot.amount), 0)).where(
        PointLot.account_id == wallet.id, PointLot.origin.in_(EARNING_ORIGINS),
        PointLot.earned_on >= first, PointLot.earned_on <= last)) or 0


def _room(session: Session, wallet: LedgerAccount, rules: PointsRules, points: int,
          day: date) -> int:
    """What is left of `points` under the rules' daily and monthly caps on `day`."""
    month_start = day.replace(day=1)
    return capped(points, earned_today=_earned_since(session, wallet, day, day),
                  earned_this_month=_earned_since(session, wallet, month_start, day), rules=rules)


def _credit_leg(session: Session, wallet: LedgerAccount, points: int, day: date,
                community: Community) -> Leg:
    lot = new_lot(session, wallet, points, origin="earned", earned_on=day,
                  expires_on=expiry_for(day, community.points_expiry_months))
    return Leg(wallet.id, points, lot.id)


def credit_service_record(session: Session, record: ServiceRecord, *, actor: Actor,
                          now: datetime) -> LedgerTransfer | None:
    """Credit one verified service record to its volunteer, once (inside the caller's transaction).

    Nothing is credited to a volunteer without an account, where no rules are in force, or
    when the caps leave no room; the service record stays and can be read either way.
    """
    if record.user_id is None:
        return None
    source_key = f"service-record:{record.id}"  # one credit per record, whatever races
    if session.scalar(select(LedgerTransfer.id).where(LedgerTransfer.source_key == source_key)):
        return None
    version = rules_in_force(session, record.community_id, record.served_on)
    if version is None:
        return None
    rules = parse_rules(version.document)
    community = session.get(Community, record.community_id)
    demand = session.get(DemandItem, record.demand_id) if record.demand_id else None
    category = session.get(Category, record.category_id)
    award = points_for_service(
        rules, minutes=record.minutes, category=category.code,
        urgency=demand.urgency if demand else "normal",
        vulnerable=bool(demand and demand.beneficiary_vulnerable))
    wallet = account(session, AccountKind.WALLET, community.id, record.user_id, now=now)
    lock_wallets(session, [wallet])
    points = _room(session, wallet, rules, award.points, record.served_on)
    if points <= 0:
        return None
    issuing = account(session, AccountKind.ISSUING, community.id, now=now)
    legs = [_credit_leg(session, wallet, points, record.served_on, community),
            Leg(issuing.id, -points)]
    detail = {**award.explain(), "credited": points, "capped": award.points - points}
    transfer = post(session, community.id, legs, Posting(
        TransferKind.CREDIT, f"service on {record.served_on}: {record.minutes} min",
        "service_record", record.id, source_key, rule_version=version.version, detail=detail),
        actor=actor, now=now)
    notify(session, user_ids=[record.user_id], kind="points_credited", now=now,
           link="/me/points", params={"points": points, "minutes": record.minutes,
                                      "served_on": record.served_on.isoformat(),
                                      "reason": _service_title(session, record, demand)})
    return transfer


def _service_title(session: Session, record: ServiceRecord, demand: DemandItem | None) -> str:
    """What the volunteer served: the demand's title, or the activity session's."""
    if demand is not None:
        return demand.title
    return session.scalar(select(ActivitySession.title).join(
        SessionSignup, SessionSignup.session_id == ActivitySession.id).where(
        SessionSignup.id == record.signup_id)) or ""


def residents_of(session: Session, community_id: int, user_ids: list[int]) -> set[int]:
    """Which of `user_ids` hold the resident role in the community."""
    return set(session.scalars(select(RoleGrant.user_id).where(
        RoleGrant.role == str(Role.RESIDENT), RoleGrant.community_id == community_id,
        RoleGrant.user_id.in_(user_ids))))


def get_transfer(session: Session, transfer_id: int) -> LedgerTransfer:
    return get_or_404(session, LedgerTransfer, transfer_id, "LedgerTransfer")


@keys.idempotent("award")
@write
def award_points(session: Session, *, actor: Actor, community_id: int, activity: str,
                 user_ids: list[int], reason: str | None, idempotency_key: str | None,
                 day: date | None = None, now: datetime | None = None) -> LedgerTransfer:
    """The secretary awards an activity's points (from the rules) to residents, with a reason."""
    now = now or utcnow()
    reason = need_reason(reason)
    day = day or local_date(now)
    payload = {"community_id": community_id, "activity": activity,
               "user_ids": sorted(user_ids), "reason": reason, "day": day}
    done = keys.begin(session, idempotency_key, "award", payload, actor=actor,
                      result_type="transfer", now=now)
    if done is not None:
        return get_transfer(session, done)
    community = get_or_404(session, Community, community_id)
    require(may_manage(actor, community_id), "only the community's secretary")
    if day > local_date(now):
        raise invalid("day", "points cannot be awarded for days to come")
    version = rules_in_force(session, community_id, day)
    rules = parse_rules(version.document) if version else None
    if rules is None or activity not in rules.activities:
        raise invalid("activity", "not an activity of the community's points rules")
    people = sorted(set(user_ids))
    if not people or len(people) > 1000:
        raise invalid("user_ids", "name between 1 and 1000 residents")
    strangers = set(people) - residents_of(session, community_id, people)
    if strangers:
        raise invalid("user_ids", f"not residents of this community: {sorted(strangers)}")
    wallets = [account(session, AccountKind.WALLET, community_id, u, now=now) for u in people]
    lock_wallets(session, wallets)
    legs, given = [], {}
    for wallet in wallets:
        points = _room(session, wallet, rules, rules.activities[activity], day)
        given[str(wallet.user_id)] = points
        if points > 0:
            legs.append(_credit_leg(session, wallet, points, day, community))
    if not legs:
        raise ConflictError("everyone named has reached their points cap")
    issuing = account(session, AccountKind.ISSUING, community_id, now=now)
    legs.append(Leg(issuing.id, -sum(leg.amount for leg in legs)))
    transfer = post(session, community_id, legs, Posting(
        TransferKind.AWARD, reason, "award", activity, rule_version=version.version,
        detail={"activity": activity, "points": given, "day": str(day)}), actor=actor, now=now)
    for points in sorted({p for p in given.values() if p > 0}):  # one notice per person
        notify(session, user_ids=[int(u) for u, p in given.items() if p == points],
               kind="points_credited", params={"points": points, "reason": reason}, now=now,
               link="/me/points")
    keys.finish(session, idempotency_key, transfer.id)
    return transfer


# ---- spending from lots -----------------------------------------------------------------------

def spend_legs(session: Session, wallet: LedgerAccount, amount: int, today: date) -> list[Leg]:
    """Debit legs taking `amount` from the wallet's lots, oldest first (wallet already locked)."""
    try:
        taken = take_from_lots(open_lots(session, wallet), amount, today=today)
    except InsufficientFunds as exc:
        raise InsufficientPointsError(f"the wallet holds {exc.available} usable points, "
                                      f"{exc.wanted} are needed", available=exc.available,
                                      wanted=exc.wanted) from exc
    return [Leg(wallet.id, -take, lot_id) for lot_id, take in taken]


def _points_amount(amount: int, field: str = "points") -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or not 1 <= amount <= 1_000_000:
        raise invalid(field, "a whole number from 1 to 1,000,000")
    return amount


@keys.idempotent("gift")
@write
def give_points(session: Session, *, actor: Actor, community_id: int, to_user_id: int,
                points: int, reason: str | None, idempotency_key: str | None,
                now: datetime | None = None) -> LedgerTransfer:
    """爱心传递: a resident gives points to another resident of the same community."""
    now = now or utcnow()
    reason = need_reason(reason)
    payload = {"community_id": community_id, "to": to_user_id, "points": points, "reason": reason}
    done = keys.begin(session, idempotency_key, "gift", payload, actor=actor,
                      result_type="transfer", now=now)
    if done is not None:
        return get_transfer(session, done)
    community = get_or_404(session, Community, community_id)
    _points_amount(points)
    require(community_id in actor.resident_communities, "only a resident of the community")
    if not community.allow_gifts:
        raise ConflictError("this community does not allow giving points")
    if to_user_id == actor.user_id or not residents_of(session, community_id, [to_user_id]):
        raise invalid("to_user_id", "another resident of the same community")
    giver = find_wallet(session, community_id, actor.user_id)
    if giver is None:
        raise InsufficientPointsError("the wallet is empty", available=0, wanted=points)
    taker = account(session, AccountKind.WALLET, community_id, to_user_id, now=now)
    lock_wallets(session, [giver, taker])
    out = spend_legs(session, giver, points, local_date(now))
    legs = list(out)
    for leg in out:  # the points keep their age and their expiry
        source = session.get(PointLot, leg.lot)
        lot = new_lot(session, taker, -leg.amount, origin="gift", earned_on=source.earned_on,
                      expires_on=source.expires_on)
        legs.append(Leg(taker.id, -leg.amount, lot.id))
    transfer = post(session, community_id, legs, Posting(
        TransferKind.GIFT, reason, "gift", str(to_user_id),
        detail={"from": actor.user_id, "to": to_user_id}), actor=actor, now=now)
    keys.finish(session, idempotency_key, transfer.id)
    return transfer


@keys.idempotent("adjust")
@write
def adjust_points(session: Session, *, actor: Actor, community_id: int, user_id: int,
                  points: int, reason: str | None, idempotency_key: str | None,
                  now: datetime | None = None) -> LedgerTransfer:
    """The secretary corrects a wallet by hand, up or down, with a reason."""
    now = now or utcnow()
    reason = need_reason(reason)
    payload = {"community_id": community_id, "user_id": user_id, "points": points,
               "reason": reason}
    done = keys.begin(session, idempotency_key, "adjust", payload, actor=actor,
                      result_type="transfer", now=now)
    if done is not None:
        return get_transfer(session, done)
    community = get_or_404(session, Community, community_id)
    require(may_manage(actor, community_id), "only the community's secretary")
    _points_amount(abs(points) if isinstance(points, int) else points)
    if not residents_of(session, community_id, [user_id]):
        raise invalid("user_id", "not a resident of this community")
    wallet = account(session, AccountKind.WALLET, community_id, user_id, now=now)
    adjustment = account(session, AccountKind.ADJUSTMENT, community_id, now=now)
    lock_wallets(session, [wallet])
    today = local_date(now)
    if points > 0:
        lot = new_lot(session, wallet, points, origin="adjustment", earned_on=today,
                      expires_on=expiry_for(today, community.points_expiry_months))
        legs = [Leg(wallet.id, points, lot.id), Leg(adjustment.id, -points)]
    else:
        legs = spend_legs(session, wallet, -points, today) + [Leg(adjustment.id, -points)]
    transfer = post(session, community_id, legs, Posting(
        TransferKind.ADJUSTMENT, reason, "adjustment", str(user_id)), actor=actor, now=now)
    keys.finish(session, idempotency_key, transfer.id)
    return transfer


def may_see_transfer(session: Session, actor: Actor, transfer: LedgerTransfer) -> bool:
    """The community's staff, or a resident whose wallet the transfer moved."""
    if may_oversee(session, actor, transfer.community_id):
        return True
    return actor.user_id is not None and session.scalar(
        select(LedgerEntry.id).join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transfer_id == transfer.id,
               LedgerAccount.user_id == actor.user_id).limit(1)) is not None


REVERSIBLE = {TransferKind.CREDIT, TransferKind.AWARD, TransferKind.GIFT,
              TransferKind.ADJUSTMENT, TransferKind.DONATION}


@keys.idempotent("reverse")
@write
def reverse_transfer(session: Session, *, actor: Actor, transfer_id: int, reason: str | None,
                     idempotency_key: str | None, now: datetime | None = None) -> LedgerTransfer:
    """Undo a transfer made by mistake with one that mirrors it and links to it."""
    now = now or utcnow()
    reason = need_reason(reason)
    done = keys.begin(session, idempotency_key, "reverse", {"transfer_id": transfer_id,
                                                            "reason": reason},
                      actor=actor, result_type="transfer", now=now)
    if done is not None:
        return get_transfer(session, done)
    original = get_transfer(session, transfer_id)
    if not may_see_transfer(session, actor, original):
        raise NotFoundError("LedgerTransfer", transfer_id)
    require(may_manage(actor, original.community_id), "only the community's secretary")
    if original.kind not in REVERSIBLE:
        raise ConflictError(f"a {original.kind} is undone by its own action, not reversed")
    if session.scalar(select(LedgerTransfer.id).where(
            LedgerTransfer.reverses_id == original.id)) is not None:
        raise AlreadyPostedError("this transfer has been reversed already",
                                 transfer_id=original.id)
    wallets = [session.get(LedgerAccount, e.account_id) for e in original.entries
               if e.lot_id is not None]
    lock_wallets(session, wallets)
    for entry in original.entries:
        if entry.lot_id is not None and entry.amount > 0:
            lot = session.get(PointLot, entry.lot_id, populate_existing=True)
            if lot.remaining < entry.amount:
                raise InsufficientPointsError("those points have been spent already; adjust the "
                                              "wallet instead", lot_id=lot.id)
    legs = [Leg(e.account_id, -e.amount, e.lot_id) for e in original.entries]
    transfer = post(session, original.community_id, legs, Posting(
        TransferKind.REVERSAL, reason, "reversal", str(original.id),
        f"reversal:{original.id}", reverses_id=original.id), actor=actor, now=now)
    keys.finish(session, idempotency_key, transfer.id)
    return transfer


# ---- expiry -----------------------------------------------------------------------------------

def lots_due(session: Session, today: date) -> list[PointLot]:
    """Lots whose expiry day has come and that still hold points."""
    return list(session.scalars(select(PointLot).where(
        PointLot.expires_on <= today, PointLot.remaining > 0).order_by(PointLot.id)))


@write
def expire_points(session: Session, *, now: datetime | None = None, dry_run: bool = False,
                  actor: Actor = SYSTEM) -> list[dict]:
    """Move every lapsed lot's points to the expiry account; safe to run twice (a lot at zero
    is skipped)."""
    now = now or utcnow()
    today = local_date(now)
    done = []
    for lot in lots_due(session, today):
        wallet = session.get(LedgerAccount, lot.account_id)
        lock_wallets(session, [wallet])
        lot = session.get(PointLot, lot.id, populate_existing=True)
        if lot.remaining <= 0:
            continue
        done.append({"lot_id": lot.id, "user_id": wallet.user_id,
                     "community_id": wallet.community_id, "points": lot.remaining,
                     "expired_on": str(lot.expires_on)})
        if dry_run:
            continue
        sink = account(session, AccountKind.EXPIRY, wallet.community_id, now=now)
        post(session, wallet.community_id,
             [Leg(wallet.id, -lot.remaining, lot.id), Leg(sink.id, lot.remaining)],
             Posting(TransferKind.EXPIRY, f"points earned {lot.earned_on} expired "
                     f"{lot.expires_on}", "lot", str(lot.id)), actor=actor, now=now)
        notify(session, user_ids=[wallet.user_id], kind="points_expired", now=now,
               params={"points": done[-1]["points"], "expired_on": str(lot.expires_on)},
               link="/me/points", dedupe_key=f"lot-expired:{lot.id}")
    if dry_run:
        session.rollback()
    return done


# ---- reading ----------------------------------------------------------------------------------

def wallets_of(session: Session, user_id: int) -> list[LedgerAccount]:
    return list(session.scalars(select(LedgerAccount).where(
        LedgerAccount.kind == str(AccountKind.WALLET), LedgerAccount.user_id == user_id)
        .order_by(LedgerAccount.community_id)))


def may_read_wallet(session: Session, actor: Actor, wallet: LedgerAccount) -> bool:
    return (actor.is_system or wallet.user_id == actor.user_id
            or may_oversee(session, actor, wallet.community_id))


WALLET_KINDS = (TransferKind.CREDIT, TransferKind.AWARD, TransferKind.REDEMPTION,
                TransferKind.REFUND, TransferKind.EXPIRY, TransferKind.GIFT,
                TransferKind.ADJUSTMENT, TransferKind.REVERSAL)  # the kinds that reach a wallet


def _readable_wallets(session: Session, actor: Actor, user_id: int,
                      community_id: int | None) -> list[LedgerAccount]:
    """The person's wallets the actor may read (404 when there are some and none is)."""
    wallets = [w for w in wallets_of(session, user_id)
               if community_id is None or w.community_id == community_id]
    visible = [w for w in wallets if may_read_wallet(session, actor, w)]
    if not visible and not (actor.user_id == user_id or actor.is_system):
        raise NotFoundError("Wallet", user_id)
    return visible


def statement(session: Session, *, actor: Actor, user_id: int, community_id: int | None = None,
              now: datetime | None = None, limit: int | None = None,
              with_lines: bool = True) -> list[dict]:
    """A person's wallets: balance, open lots with expiry, and every line with its reason
    (`with_lines=False` for the summary alone; `list_statement_lines` pages and filters)."""
    today = local_date(now or utcnow())
    return [_wallet_statement(session, w, today, limit, with_lines)
            for w in _readable_wallets(session, actor, user_id, community_id)]


def _wallet_statement(session: Session, wallet: LedgerAccount, today: date,
                      limit: int | None, with_lines: bool = True) -> dict:
    lots = list(session.scalars(select(PointLot).where(
        PointLot.account_id == wallet.id, PointLot.remaining > 0)
        .order_by(PointLot.earned_on, PointLot.id)))
    lines = _wallet_lines(session, wallet, limit) if with_lines else []
    usable = sum(lot.remaining for lot in lots if lot.expires_on is None or lot.expires_on > today)
    expiring: dict[date, int] = {}
    for lot in lots:
        if lot.expires_on is not None and lot.expires_on > today:
            expiring[lot.expires_on] = expiring.get(lot.expires_on, 0) + lot.remaining
    return {"community_id": wallet.community_id, "user_id": wallet.user_id,
            "balance": wallet.balance, "usable": usable,
            "expiring": [{"on": day, "points": pts} for day, pts in sorted(expiring.items())],
            "lots": [{"id": lot.id, "origin": lot.origin, "earned_on": lot.earned_on,
                      "expires_on": lot.expires_on, "amount": lot.amount,
                      "remaining": lot.remaining} for lot in lots],
            "lines": lines}


def _wallet_lines(session: Session, wallet: LedgerAccount, limit: int | None) -> list[dict]:
    stmt = (select(LedgerEntry, LedgerTransfer)
            .join(LedgerTransfer, LedgerEntry.transfer_id == LedgerTransfer.id)
            .where(LedgerEntry.account_id == wallet.id)
            .order_by(LedgerTransfer.created_at.desc(), LedgerEntry.id.desc()))
    if limit:
        stmt = stmt.where(LedgerEntry.transfer_id.in_(
            select(LedgerEntry.transfer_id).where(LedgerEntry.account_id == wallet.id)
            .order_by(LedgerEntry.transfer_id.desc()).limit(limit)))
    lines: dict[int, dict] = {}
    for entry, transfer in session.execute(stmt):  # one line per transfer, however many lots
        line = lines.setdefault(transfer.id, _line(transfer, wallet.community_id))
        line["amount"] += entry.amount
        if entry.lot_id is not None:
            line["lots"].append(entry.lot_id)
    return list(lines.values())


def _line(transfer: LedgerTransfer, community_id: int, amount: int = 0) -> dict:
    return {"at": transfer.created_at, "amount": amount, "kind": transfer.kind,
            "reason": transfer.reason, "source_type": transfer.source_type,
            "source_id": transfer.source_id, "transfer_id": transfer.id,
            "rule_version": transfer.rule_version, "community_id": community_id, "lots": []}


def list_statement_lines(session: Session, *, actor: Actor, user_id: int,
                         community_id: int | None = None, filters: dict | None = None,
                         page: int = 1, per_page: int = 20) -> Page:
    """A person's statement lines (one per transfer and wallet, its points summed over lots),
    newest first, paged in the database. Filters: `kind` (one or a list of WALLET_KINDS),
    `on_from` / `on_to` (dates in Asia/Shanghai, both included), `q` in the reason."""
    wallets = {w.id: w.community_id
               for w in _readable_wallets(session, actor, user_id, community_id)}
    amount = func.sum(LedgerEntry.amount).label("amount")
    stmt = (select(LedgerTransfer, LedgerEntry.account_id, amount)
            .join(LedgerEntry, LedgerEntry.transfer_id == LedgerTransfer.id)
            .where(LedgerEntry.account_id.in_(list(wallets) or [0]))
            .group_by(LedgerTransfer.id, LedgerEntry.account_id))
    stmt = _statement_filters(stmt, filters or {})
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(LedgerTransfer.created_at.desc(),
                                         LedgerTransfer.id.desc())
                           .limit(per_page).offset((page - 1) * per_page)).all()
    lines = [_line(t, wallets[account_id], int(points)) for t, account_id, points in rows]
    _attach_lots(session, lines, {t.id: account_id for t, account_id, _p in rows})
    return Page(items=lines, total=total, page=page, per_page=per_page)


def _statement_filters(stmt, f: dict):
    if f.get("kind"):
        kinds = [f["kind"]] if isinstance(f["kind"], str) else list(f["kind"])
        stmt = stmt.where(LedgerTransfer.kind.in_(kinds))
    zone = ZoneInfo(LOCAL_TZ)
    if f.get("on_from"):
        stmt = stmt.where(LedgerTransfer.created_at >= datetime.combine(
            f["on_from"], time(), tzinfo=zone))
    if f.get("on_to"):
        stmt = stmt.where(LedgerTransfer.created_at < datetime.combine(
            f["on_to"] + timedelta(days=1), time(), tzinfo=zone))
    if f.get("q"):
        stmt = stmt.where(LedgerTransfer.reason.ilike(like_pattern(f["q"]), escape="\\"))
    return stmt


def _attach_lots(session: Session, lines: list[dict], accounts: dict[int, int]) -> None:
    """Each line's lots, in one query for the page."""
    by_id = {line["transfer_id"]: line for line in lines}
    found = session.execute(select(LedgerEntry.transfer_id, LedgerEntry.account_id,
                                   LedgerEntry.lot_id).where(
        LedgerEntry.transfer_id.in_(list(by_id) or [0]), LedgerEntry.lot_id.is_not(None))
        .order_by(LedgerEntry.id.desc()))
    for transfer_id, account_id, lot_id in found:
        if accounts.get(transfer_id) == account_id:
            by_id[transfer_id]["lots"].append(lot_id)


def list_transfers(session: Session, *, actor: Actor, community_id: int, filters: dict,
                   page: int = 1, per_page: int = 20) -> Page:
    """A community's journal, newest first (its secretary and subdistrict admin)."""
    get_or_404(session, Community, community_id)
    require(may_oversee(session, actor, community_id), "only the community's staff")
    stmt = select(LedgerTransfer).where(LedgerTransfer.community_id == community_id)
    for key in ("kind", "asset"):
        if filters.get(key):
            stmt = stmt.where(getattr(LedgerTransfer, key) == filters[key])
    if filters.get("q"):
        stmt = stmt.where(LedgerTransfer.reason.ilike(like_pattern(filters["q"]), escape="\\"))
    return paginate(session, stmt.order_by(LedgerTransfer.id.desc()), page, per_page)


def transfer_amounts(session: Session, transfer_ids: list[int]) -> dict[int, int]:
    """What each transfer moved (the sum of its positive legs), in one query for a whole page."""
    if not transfer_ids:
        return {}
    rows = session.execute(select(LedgerEntry.transfer_id, func.sum(LedgerEntry.amount))
                           .where(LedgerEntry.transfer_id.in_(transfer_ids),
                                  LedgerEntry.amount > 0)
                           .group_by(LedgerEntry.transfer_id))
    return {transfer_id: int(total) for transfer_id, total in rows}


def list_accounts(session: Session, *, actor: Actor, community_id: int) -> list[LedgerAccount]:
    """The community's accounts other than wallets, with their balances."""
    get_or_404(session, Community, community_id)
    require(may_oversee(session, actor, community_id), "only the community's staff")
    return list(session.scalars(select(LedgerAccount).where(
        LedgerAccount.community_id == community_id,
        LedgerAccount.kind != str(AccountKind.WALLET)).order_by(LedgerAccount.id)))
