"""Notifications: the in-app inbox, and the outbox of deliveries to e-mail and webhook channels.

A service that changes something calls `notify(...)` inside its own transaction, naming who is
told, the kind of news and its parameters. The text is written later, in each reader's
language, from `KINDS` (English message ids, translated like every page message); the
deliveries to outgoing channels are rows written in the same transaction and sent by the
scheduler, so a failing channel never holds up or undoes the action.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.models import Community, Notification, Role, RoleGrant, User


def N_(message: str) -> str:
    """Mark a message for translation without translating it (read by `make i18n`)."""
    return message


# kind -> message id; parameters are filled in with %(name)s. A parameter whose name ends in
# `_at` holds an ISO UTC time and is shown in Asia/Shanghai; `_on` holds a date.
KINDS: dict[str, str] = {
    "claim_pending": N_("%(unit)s claimed “%(title)s”: it waits for your approval"),
    "claim_approved": N_("Your claim on “%(title)s” was approved"),
    "claim_rejected": N_("Your claim on “%(title)s” was rejected: %(reason)s"),
    "dispatch_offered": N_("The community dispatched “%(title)s” to you: answer by %(deadline_at)s"),
    "dispatch_accepted": N_("%(unit)s accepted the dispatch of “%(title)s”"),
    "dispatch_declined": N_("%(unit)s declined the dispatch of “%(title)s”: %(reason)s"),
    "dispatch_expired": N_("The dispatch of “%(title)s” to %(unit)s was not answered in time and "
                           "went back to the pool"),
    "report_submitted": N_("%(unit)s reported the work on “%(title)s”: it waits for verification"),
    "report_verified": N_("Your report on “%(title)s” was verified"),
    "report_returned": N_("Your report on “%(title)s” was returned: %(reason)s"),
    "confirm_requested": N_("The work on “%(title)s” is done: please confirm and rate it"),
    "auto_confirmed": N_("“%(title)s” was confirmed automatically: no one confirmed it within "
                         "%(days)s days"),
    "rated_unsatisfactory": N_("The beneficiary is not satisfied with “%(title)s” (%(rating)s of "
                               "5): it is open again for rework"),
    "escalated": N_("“%(title)s” was escalated to %(level)s: %(cause)s"),
    "due_soon": N_("“%(title)s” is due by %(due_at)s"),
    "points_credited": N_("%(points)s points were credited to your love-bank account: %(reason)s"),
    "points_expiring": N_("%(points)s of your points expire on %(expires_on)s"),
    "points_expired": N_("%(points)s of your points expired"),
    "wish_accepted": N_("Your wish “%(title)s” was accepted"),
    "wish_declined": N_("Your wish “%(title)s” was declined: %(reason)s"),
}


def notify(session: Session, *, user_ids: Iterable[int | None], kind: str, params: dict,
           now: datetime, link: str | None = None, demand_id: int | None = None,
           needs_action: bool = False, dedupe_key: str | None = None) -> list[Notification]:
    """Put one notification in each user's inbox (once per `dedupe_key`) and queue its
    deliveries; call it inside the transaction of the change it reports."""
    if kind not in KINDS:
        raise KeyError(f"unknown notification kind {kind!r}")
    text = json.dumps(params, ensure_ascii=False, default=str)
    made = []
    for user_id in sorted({u for u in user_ids if u is not None}):
        if dedupe_key is not None and session.scalar(select(Notification.id).where(
                Notification.user_id == user_id, Notification.dedupe_key == dedupe_key)):
            continue
        note = Notification(user_id=user_id, kind=kind, params=text, link=link,
                            demand_id=demand_id, needs_action=needs_action,
                            dedupe_key=dedupe_key, created_at=now)
        session.add(note)
        made.append(note)
    if made:
        session.flush()
        queue_deliveries(session, made, now=now)
    return made


def queue_deliveries(session: Session, notes: list[Notification], *, now: datetime) -> None:
    """Write the outgoing deliveries for new notifications (per the users' settings)."""
    # Filled in with the channels (e-mail, webhook), quiet hours and the daily digest.


# ---- who is told --------------------------------------------------------------------------------

def _holders(session: Session, role: Role, **scope) -> list[int]:
    conds = [RoleGrant.role == str(role)] + [getattr(RoleGrant, k) == v for k, v in scope.items()]
    return list(session.scalars(select(RoleGrant.user_id).join(User).where(
        *conds, User.is_active.is_(True)).distinct()))


def secretaries_of(session: Session, community_id: int) -> list[int]:
    """The users who are secretary of the community."""
    return _holders(session, Role.SECRETARY, community_id=community_id)


def unit_admins_of(session: Session, unit_id: int) -> list[int]:
    """The users who administer the unit."""
    return _holders(session, Role.UNIT_ADMIN, unit_id=unit_id)


def grid_workers_of(session: Session, grid_id: int | None) -> list[int]:
    """The grid workers of the grid (none when there is no grid)."""
    return [] if grid_id is None else _holders(session, Role.GRID_WORKER, grid_id=grid_id)


def subdistrict_admins_of(session: Session, community_id: int) -> list[int]:
    """The admins of the subdistrict the community belongs to."""
    subdistrict_id = session.scalar(select(Community.subdistrict_id).where(
        Community.id == community_id))
    return _holders(session, Role.SUBDISTRICT_ADMIN, subdistrict_id=subdistrict_id)
