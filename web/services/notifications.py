"""Notifications: the in-app inbox, and the outbox of deliveries to e-mail and webhook channels.

A service that changes something calls `notify(...)` inside its own transaction, naming who is
told, the kind of news and its parameters. The text is written later, in each reader's
language, from `KINDS` (English message ids, translated like every page message); the
deliveries to outgoing channels are rows written in the same transaction and sent by the
scheduler, so a failing channel never holds up or undoes the action.

Sending (`send_due_deliveries`, a scheduler job) claims a batch of due deliveries under
`FOR UPDATE SKIP LOCKED` and leases them (next_attempt_at moves a lease ahead) in one short
transaction, sends them with no transaction open, then records each outcome in its own short
transaction. A failed attempt is retried after 1, 5, 25, 125 and 625 minutes; the sixth failure
makes the delivery "dead" with its last error. Deliveries on a channel the deployment has not
configured stay pending, untouched, until it is (the job's summary counts them). Quiet hours
(Asia/Shanghai, possibly past midnight) move a delivery, or its retry, to their end; a user
who chose the daily digest gets no delivery per notification, but one a day per channel
(`send_daily_digests`) with everything since the previous digest.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.support import NullTranslations, Translations
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.errors import NotFoundError, PermissionDeniedError
from web.models import (
    Community,
    Delivery,
    DemandItem,
    LedgerAccount,
    Notification,
    NotificationSettings,
    PointLot,
    Role,
    RoleGrant,
    User,
)
from web.services import audit
from web.services.base import (
    LOCAL_TZ,
    Page,
    invalid,
    like_pattern,
    local_date,
    lock,
    paginate,
    write,
)
from web.services.channels import Channel, channels_from_env, public_link
from web.services.journal import AccountKind

log = logging.getLogger(__name__)


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
    wanted = {u for u in user_ids if u is not None}
    if dedupe_key is not None and wanted:  # who already has it: one query, not one per reader
        wanted -= set(session.scalars(select(Notification.user_id).where(
            Notification.user_id.in_(sorted(wanted)), Notification.dedupe_key == dedupe_key)))
    made = []
    for user_id in sorted(wanted):
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
    """Write the outgoing deliveries for new notifications (per the users' settings): one per
    enabled channel, due now or at the end of the user's quiet hours; none for a user who
    chose the daily digest."""
    wanted = _delivery_settings(session, {note.user_id for note in notes})
    rows = []
    for note in notes:
        settings = wanted.get(note.user_id)
        if settings is None:
            continue
        due = quiet_until(now, settings.quiet_start_minute, settings.quiet_end_minute)
        rows += [Delivery(user_id=note.user_id, notification_id=note.id, channel=channel,
                          status=PENDING, attempts=0, next_attempt_at=due,
                          dedupe_key=f"n:{note.id}:{channel}", created_at=now)
                 for channel, _address in enabled_channels(settings)]
    if rows:
        session.add_all(rows)
        session.flush()


def _delivery_settings(session: Session, user_ids: set[int]) -> dict[int, NotificationSettings]:
    """The settings of those users (active, not on the digest) who enabled some channel."""
    if not user_ids:
        return {}
    stmt = (select(NotificationSettings).join(User, User.id == NotificationSettings.user_id)
            .where(NotificationSettings.user_id.in_(sorted(user_ids)),
                   NotificationSettings.daily_digest.is_(False), User.is_active.is_(True),
                   or_(NotificationSettings.email_enabled.is_(True),
                       NotificationSettings.webhook_enabled.is_(True))))
    return {s.user_id: s for s in session.scalars(stmt)}


def enabled_channels(settings: NotificationSettings) -> list[tuple[str, str]]:
    """(channel, address) for each channel the user turned on and gave an address for."""
    found = []
    if settings.email_enabled and settings.email:
        found.append(("email", settings.email))
    if settings.webhook_enabled and settings.webhook_address:
        found.append(("webhook", settings.webhook_address))
    return found


# ---- rendering ----------------------------------------------------------------------------------

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
SHANGHAI = ZoneInfo(LOCAL_TZ)
LANGUAGES = ("zh_CN", "en")
# Machine words some kinds carry as parameters (an escalation's level and cause), shown in the
# reader's language; anything else in `params` is shown as given.
LEVELS = {"0": "grid", "1": "community", "2": "subdistrict"}
WORDS = {
    "level": {"grid": N_("the grid"), "community": N_("the community"),
              "subdistrict": N_("the subdistrict")},
    "cause": {"not_accepted": N_("not accepted in time"), "not_closed": N_("not closed in time"),
              "unsatisfied": N_("rated unsatisfactory twice")},
}


def language_of(locale: object) -> str:
    """'zh_CN' or 'en' for a locale name or object (zh-CN, zh_Hans_CN, en_US, …); zh_CN when
    unknown, as everywhere in Linli."""
    text = str(locale or "").replace("-", "_").lower()
    return "en" if text.startswith("en") else "zh_CN"


@functools.lru_cache(maxsize=4)
def translations(language: str) -> NullTranslations:
    """The compiled catalogue for 'zh_CN' (web/translations/zh), nothing for English."""
    if language == "en":
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [language])


def gettext_in(locale: object, message: str) -> str:
    """One message id in the reader's language (no Flask needed)."""
    return translations(language_of(locale)).gettext(message)


class _Params(dict):
    """Parameters for a message; one that is missing shows as an ellipsis, not an error."""

    def __missing__(self, key):
        return "…"


def render(kind: str, params: dict | str | None, locale: object) -> str:
    """A notification's text in the reader's language (zh_CN or en), times in Asia/Shanghai."""
    language = language_of(locale)
    if isinstance(params, str):
        params = json.loads(params or "{}")
    message = KINDS.get(kind)
    if message is None:
        return kind
    shown = _Params({name: _param(name, value, language)
                     for name, value in (params or {}).items()})
    try:
        return translations(language).gettext(message) % shown
    except (TypeError, ValueError):  # a parameter of the wrong type: show the words anyway
        return translations(language).gettext(message)


def _param(name: str, value, language: str) -> str:
    if value is None:
        return "…"
    if name.endswith("_at"):
        return format_moment(value, language)
    if name.endswith("_on"):
        return _format_day(value, language)
    if name in WORDS:
        word = WORDS[name].get(LEVELS.get(str(value), str(value)) if name == "level"
                               else str(value))
        if word:
            return translations(language).gettext(word)
    return str(value)


def format_moment(value, locale: object) -> str:
    """An ISO UTC time (or an aware datetime) as a date and hh:mm in Asia/Shanghai."""
    language = language_of(locale)
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    local = moment.astimezone(SHANGHAI)
    return (f"{format_date(local.date(), 'medium', locale=language)} "
            f"{format_time(local, 'HH:mm', tzinfo=SHANGHAI, locale=language)}")


def _format_day(value, language: str) -> str:
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return format_date(day, "medium", locale=language)


def present(note: Notification, locale: object) -> dict:
    """A notification as the pages and the API show it, its text in the reader's language."""
    params = json.loads(note.params or "{}")
    return {"id": note.id, "kind": note.kind, "text": render(note.kind, params, locale),
            "params": params, "link": note.link, "demand_id": note.demand_id,
            "needs_action": note.needs_action, "created_at": note.created_at,
            "read_at": note.read_at}


# ---- the inbox ----------------------------------------------------------------------------------

def _reader(actor: Actor) -> int:
    if actor.user_id is None:
        raise PermissionDeniedError("the system has no inbox")
    return actor.user_id


def list_notifications(session: Session, *, actor: Actor, unread_only: bool = False,
                       filters: dict | None = None, page: int = 1, per_page: int = 20) -> Page:
    """The actor's own notifications, newest first (only the unread ones if asked): by `kind`
    (one or a list of KINDS) and `q`, words in what the message names (the item's title, the
    unit, the reason, the points: its stored params) or in the title of the item it is about
    (wildcards taken literally; the sentence around them is written only when shown)."""
    stmt = select(Notification).where(Notification.user_id == _reader(actor))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    f = filters or {}
    if f.get("kind"):
        kinds = [f["kind"]] if isinstance(f["kind"], str) else list(f["kind"])
        stmt = stmt.where(Notification.kind.in_(kinds))
    if f.get("q"):
        like = like_pattern(f["q"])
        stmt = stmt.where(or_(
            Notification.params.ilike(like, escape="\\"),
            Notification.demand_id.in_(select(DemandItem.id).where(
                DemandItem.title.ilike(like, escape="\\")))))
    return paginate(session, stmt.order_by(Notification.created_at.desc(),
                                           Notification.id.desc()), page, per_page)


def unread_count(session: Session, *, actor: Actor) -> int:
    """How many of the actor's notifications are unread."""
    return session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == _reader(actor), Notification.read_at.is_(None))) or 0


@write
def mark_read(session: Session, *, actor: Actor, notification_id: int,
              now: datetime) -> Notification:
    """Mark one of the actor's notifications read (someone else's is a 404); reading it
    again keeps the first time."""
    note = session.get(Notification, notification_id)
    if note is None or note.user_id != _reader(actor):
        raise NotFoundError("Notification", notification_id)
    if note.read_at is None:
        note.read_at = now
    return note


@write
def mark_all_read(session: Session, *, actor: Actor, now: datetime) -> int:
    """Mark every unread notification of the actor read; how many were."""
    done = session.execute(update(Notification).where(
        Notification.user_id == _reader(actor), Notification.read_at.is_(None))
        .values(read_at=now))
    return done.rowcount or 0


# ---- settings -----------------------------------------------------------------------------------

SETTING_FIELDS = ("email", "email_enabled", "webhook_address", "webhook_enabled",
                  "quiet_start_minute", "quiet_end_minute", "daily_digest")
EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
LAST_MINUTE = 24 * 60 - 1


def get_settings(session: Session, *, actor: Actor) -> NotificationSettings:
    """The actor's channel settings (everything off when never saved; not added then)."""
    user_id = _reader(actor)
    found = session.get(NotificationSettings, user_id)
    if found is not None:
        return found
    return NotificationSettings(user_id=user_id, email=None, email_enabled=False,
                                webhook_address=None, webhook_enabled=False,
                                quiet_start_minute=None, quiet_end_minute=None,
                                daily_digest=False, updated_at=None)


@write
def update_settings(session: Session, *, actor: Actor, changes: dict,
                    now: datetime) -> NotificationSettings:
    """Change the actor's channels, quiet hours and digest choice; the result must hold
    together (an e-mail that looks like one, quiet hours both or neither, an address for
    each enabled channel)."""
    unknown = sorted(set(changes) - set(SETTING_FIELDS))
    if unknown:
        raise invalid(unknown[0], N_("this setting does not exist"))
    settings = get_settings(session, actor=actor)
    for name, value in changes.items():
        setattr(settings, name, _clean_setting(name, value))
    _check_settings(settings)
    settings.updated_at = now
    session.add(settings)
    session.flush()
    audit.record(session, entity_type="notification_settings", entity_id=settings.user_id,
                 action="notification_settings", actor=actor, now=now,
                 data={"changed": sorted(changes)})
    return settings


def _clean_setting(name: str, value):
    if name in ("email", "webhook_address"):
        if value is not None and not isinstance(value, str):
            raise invalid(name, N_("please enter text"))
        return (value or "").strip() or None
    if name in ("quiet_start_minute", "quiet_end_minute"):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= LAST_MINUTE):
            raise invalid(name, N_("a minute of the day, from 0 to 1439"))
        return value
    if not isinstance(value, bool):
        raise invalid(name, N_("yes or no"))
    return value


def _check_settings(s: NotificationSettings) -> None:
    if s.email is not None and (len(s.email) > 254 or not EMAIL.match(s.email)):
        raise invalid("email", N_("this does not look like an e-mail address"))
    if s.webhook_address is not None and (len(s.webhook_address) > 200 or any(
            ord(ch) < 32 for ch in s.webhook_address)):
        raise invalid("webhook_address", N_("at most 200 characters, on one line"))
    if (s.quiet_start_minute is None) != (s.quiet_end_minute is None):
        missing = "quiet_end_minute" if s.quiet_end_minute is None else "quiet_start_minute"
        raise invalid(missing, N_("quiet hours need both a start and an end"))
    if s.quiet_start_minute is not None and s.quiet_start_minute == s.quiet_end_minute:
        raise invalid("quiet_end_minute", N_("quiet hours cannot end when they start"))
    if s.email_enabled and not s.email:
        raise invalid("email", N_("enter an e-mail address to receive e-mail"))
    if s.webhook_enabled and not s.webhook_address:
        raise invalid("webhook_address", N_("enter an address to receive text messages"))


# ---- quiet hours --------------------------------------------------------------------------------

def in_quiet_hours(moment: datetime, start: int | None, end: int | None) -> bool:
    """Whether `moment` falls in quiet hours from minute `start` to `end` of the Shanghai day
    (they may wrap past midnight: 22:00–07:00)."""
    if start is None or end is None or start == end:
        return False
    local = moment.astimezone(SHANGHAI)
    minute = local.hour * 60 + local.minute
    return start <= minute < end if start < end else (minute >= start or minute < end)


def quiet_until(moment: datetime, start: int | None, end: int | None) -> datetime:
    """`moment`, or the end of the quiet hours it falls in (UTC)."""
    if not in_quiet_hours(moment, start, end):
        return moment
    local = moment.astimezone(SHANGHAI)
    finish = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if finish <= local:
        finish += timedelta(days=1)  # Shanghai keeps no daylight saving: a day is 24 h
    return finish.astimezone(moment.tzinfo)


# ---- sending ------------------------------------------------------------------------------------

PENDING, SENT, DEAD = "pending", "sent", "dead"
MAX_ATTEMPTS = 6
FIRST_RETRY = timedelta(minutes=1)
BACKOFF_FACTOR = 5
BATCH = 50
MAX_BATCHES = 20  # a run sends at most 1,000; the next run, a minute later, goes on
# How long a claimed delivery is held for its sender: longer than a batch of timeouts, so no
# second sender takes it over while the first may still be sending it.
LEASE = timedelta(minutes=30)
DIGEST_LINES = 50


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: 1, 5, 25, 125, 625 minutes."""
    return FIRST_RETRY * BACKOFF_FACTOR ** max(0, attempts - 1)


@dataclass(frozen=True)
class Outgoing:
    """One claimed delivery, composed and ready to hand to its channel outside any
    transaction; `lease` tells whether it is still ours when the outcome is recorded."""

    id: int
    channel: str
    address: str
    subject: str
    body: str
    kind: str
    lease: datetime
    quiet: tuple[int | None, int | None]


def send_due_deliveries(session: Session, *, now: datetime,
                        channels: dict[str, Channel] | None = None,
                        batch: int = BATCH) -> dict:
    """The scheduler's sender: send the due deliveries, oldest first, a batch at a time (at
    most `MAX_BATCHES` a run), on the configured channels; retry failures with back-off and
    give up after six. A failing channel never raises out of here."""
    channels = channels_from_env() if channels is None else channels
    summary = {"claimed": 0, "sent": 0, "retrying": 0, "dead": 0, "dropped": 0,
               "waiting_unconfigured": _waiting_unconfigured(session, now, channels)}
    if not channels:
        session.rollback()  # end the read (on SQLite it holds the write lock)
        return summary
    for _round in range(MAX_BATCHES):
        outgoing, dropped = _claim(session, names=sorted(channels), now=now, batch=batch)
        summary["claimed"] += len(outgoing)
        summary["dropped"] += dropped
        for out in outgoing:
            error = _hand_over(channels[out.channel], out)
            outcome = _record(session, out=out, error=error, now=now)
            summary[outcome] = summary.get(outcome, 0) + 1
        if len(outgoing) + dropped < batch:
            break
    return summary


def _waiting_unconfigured(session: Session, now: datetime, channels: dict) -> int:
    """Due deliveries on channels this deployment has not configured (they wait)."""
    stmt = select(func.count(Delivery.id)).where(Delivery.status == PENDING,
                                                 Delivery.next_attempt_at <= now)
    if channels:
        stmt = stmt.where(Delivery.channel.not_in(sorted(channels)))
    return session.scalar(stmt) or 0


@write
def _claim(session: Session, *, names: list[str], now: datetime,
           batch: int) -> tuple[list[Outgoing], int]:
    """Lease a batch of due deliveries (rows another sender holds are skipped) and compose
    their messages; deliveries the user no longer wants are dropped as dead."""
    rows = list(session.scalars(
        select(Delivery).where(Delivery.status == PENDING, Delivery.next_attempt_at <= now,
                               Delivery.channel.in_(names))
        .order_by(Delivery.next_attempt_at, Delivery.id).limit(batch)
        .with_for_update(skip_locked=True).execution_options(populate_existing=True)))
    people = _people(session, {row.user_id for row in rows})
    outgoing = [_lease(session, row, *people.get(row.user_id, (None, None)), now + LEASE)
                for row in rows]
    return [out for out in outgoing if out is not None], outgoing.count(None)


def _lease(session: Session, row: Delivery, settings: NotificationSettings | None,
           user: User | None, lease: datetime) -> Outgoing | None:
    """Take one due delivery for this sender and compose it; None (and dead) when the user
    no longer wants it or it has been tried too often."""
    address = dict(enabled_channels(settings)).get(row.channel) if settings else None
    gone = _gone_reason(row, address)
    if gone:
        row.status, row.last_error = DEAD, gone
        return None
    row.attempts += 1
    row.next_attempt_at = lease
    subject, body, kind = _compose(session, row, user)
    return Outgoing(row.id, row.channel, address, subject, body, kind, lease,
                    (settings.quiet_start_minute, settings.quiet_end_minute))


def _gone_reason(row: Delivery, address: str | None) -> str | None:
    if row.attempts >= MAX_ATTEMPTS:
        return f"gave up after {row.attempts} attempts"
    if address is None:
        return "the user turned this channel off"
    return None


def _people(session: Session, user_ids: set[int]) -> dict[int, tuple]:
    """(settings, user) of each active user among `user_ids` (the user for the language)."""
    if not user_ids:
        return {}
    rows = session.execute(select(NotificationSettings, User).join(
        User, User.id == NotificationSettings.user_id).where(
        NotificationSettings.user_id.in_(sorted(user_ids)), User.is_active.is_(True)))
    return {settings.user_id: (settings, user) for settings, user in rows}


def _compose(session: Session, row: Delivery, user: User) -> tuple[str, str, str]:
    """(subject, body, kind) of a delivery, in the recipient's language."""
    if row.notification_id is None:
        return _compose_digest(session, row, user)
    note = session.get(Notification, row.notification_id)
    text = render(note.kind, note.params, user.locale)
    url = public_link(note.link)
    body = f"{text}\n\n{url}" if url else text
    brand = gettext_in(user.locale, N_("Linli co-building"))
    return f"{brand}: {_shorten(text)}", body, note.kind


def _shorten(text: str, limit: int = 60) -> str:
    """One line (a subject never holds a line break) of at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _hand_over(channel: Channel, out: Outgoing) -> str | None:
    """Send one message; the error in words, or None when the channel took it."""
    try:
        channel.send(out.address, out.subject, out.body, kind=out.kind, ref=str(out.id))
    except Exception as exc:  # a failing channel, whatever it raises, is recorded, not raised
        log.warning("delivery %s on %s failed: %s", out.id, out.channel, exc)
        return f"{type(exc).__name__}: {exc}"[:1000]
    return None


@write
def _record(session: Session, *, out: Outgoing, error: str | None, now: datetime) -> str:
    """Record one attempt: sent, retrying after its back-off (out of quiet hours), or dead
    after the last one. A delivery whose lease another sender took over is left alone."""
    row = lock(session, Delivery, out.id)
    if row is None or row.status != PENDING or row.next_attempt_at != out.lease:
        return "lost"
    if error is None:
        row.status, row.sent_at, row.last_error = SENT, now, None
        return "sent"
    row.last_error = error
    if row.attempts >= MAX_ATTEMPTS:
        row.status = DEAD
        return "dead"
    row.next_attempt_at = quiet_until(now + retry_delay(row.attempts), *out.quiet)
    return "retrying"


# ---- the daily digest ---------------------------------------------------------------------------

DIGEST_MINUTE = 8 * 60  # 08:00 in Shanghai, for users without quiet hours


def digest_minute(settings: NotificationSettings) -> int:
    """The minute of the Shanghai day a user's digest is due: the end of their quiet hours,
    else 08:00."""
    if settings.quiet_start_minute is not None and settings.quiet_end_minute is not None:
        return settings.quiet_end_minute
    return DIGEST_MINUTE


@write
def send_daily_digests(session: Session, *, now: datetime) -> dict:
    """The hourly digest job: for each user on the daily digest whose digest time has come
    today (Shanghai) and who has news since the previous digest, one delivery per enabled
    channel, once a day (`digest:<user>:<channel>:<day>`)."""
    local = now.astimezone(SHANGHAI)
    day, minute = local.date(), local.hour * 60 + local.minute
    summary = {"users": 0, "queued": 0}
    stmt = (select(NotificationSettings).join(User, User.id == NotificationSettings.user_id)
            .where(NotificationSettings.daily_digest.is_(True), User.is_active.is_(True),
                   or_(NotificationSettings.email_enabled.is_(True),
                       NotificationSettings.webhook_enabled.is_(True)))
            .order_by(NotificationSettings.user_id))
    for settings in session.scalars(stmt).all():
        if minute < digest_minute(settings):
            continue
        queued = _queue_digest(session, settings, day, now)
        summary["users"] += bool(queued)
        summary["queued"] += queued
    return summary


def _queue_digest(session: Session, settings: NotificationSettings, day: date,
                  now: datetime) -> int:
    keys = {channel: f"digest:{settings.user_id}:{channel}:{day.isoformat()}"
            for channel, _address in enabled_channels(settings)}
    done = set(session.scalars(select(Delivery.dedupe_key).where(
        Delivery.dedupe_key.in_(sorted(keys.values())))))
    todo = [channel for channel, key in keys.items() if key not in done]
    start = _digest_start(session, settings.user_id, now)
    if not todo or not session.scalar(select(Notification.id).where(
            Notification.user_id == settings.user_id, Notification.created_at >= start,
            Notification.created_at < now).limit(1)):
        return 0
    due = quiet_until(now, settings.quiet_start_minute, settings.quiet_end_minute)
    session.add_all([Delivery(user_id=settings.user_id, notification_id=None, channel=channel,
                              status=PENDING, attempts=0, next_attempt_at=due, digest_day=day,
                              dedupe_key=keys[channel], created_at=now) for channel in todo])
    session.flush()
    return len(todo)


def _digest_start(session: Session, user_id: int, before: datetime) -> datetime:
    """Where a digest made at `before` starts: the previous digest, or a day earlier."""
    previous = session.scalar(select(func.max(Delivery.created_at)).where(
        Delivery.user_id == user_id, Delivery.digest_day.is_not(None),
        Delivery.created_at < before))
    return previous or before - timedelta(days=1)


def _compose_digest(session: Session, row: Delivery, user: User) -> tuple[str, str, str]:
    start = _digest_start(session, row.user_id, row.created_at)
    window = (Notification.user_id == row.user_id, Notification.created_at >= start,
              Notification.created_at < row.created_at)
    notes = list(session.scalars(select(Notification).where(*window)
                                 .order_by(Notification.created_at, Notification.id)
                                 .limit(DIGEST_LINES)))
    total = session.scalar(select(func.count(Notification.id)).where(*window)) or 0
    t = translations(language_of(user.locale))
    lines = [t.gettext(N_("%(count)s new notifications:")) % {"count": total}, ""]
    lines += [f"· {format_moment(n.created_at, user.locale)}  "
              f"{render(n.kind, n.params, user.locale)}" for n in notes]
    if total > len(notes):
        lines += ["", t.gettext(N_("… and %(count)s more in your inbox.")) % {
            "count": total - len(notes)}]
    url = public_link("/inbox")
    if url:
        lines += ["", url]
    subject = t.gettext(N_("Linli co-building: your notifications of %(day)s")) % {
        "day": format_date(row.digest_day, "medium", locale=language_of(user.locale))}
    return subject, "\n".join(lines), "digest"


# ---- points about to expire ---------------------------------------------------------------------

@write
def notify_expiring_points(session: Session, *, now: datetime) -> dict:
    """The daily notice job: each lot still holding points that expires within its
    community's `expiry_notice_days` is announced to the wallet's owner, once per lot."""
    today = local_date(now)
    summary = {"lots": 0, "notified": 0}
    for community in session.scalars(select(Community).order_by(Community.id)).all():
        for lot, user_id in _lots_expiring(session, community, today):
            summary["lots"] += 1
            summary["notified"] += len(notify(
                session, user_ids=[user_id], kind="points_expiring",
                params={"points": lot.remaining, "expires_on": lot.expires_on.isoformat()},
                now=now, link="/me/points", dedupe_key=f"lot-expiring:{lot.id}"))
    return summary


def _lots_expiring(session: Session, community: Community, today: date) -> list:
    """(lot, owner) of the community's wallets' lots that still hold points and expire after
    today but within its notice days."""
    last = today + timedelta(days=max(0, community.expiry_notice_days or 0))
    return session.execute(
        select(PointLot, LedgerAccount.user_id)
        .join(LedgerAccount, LedgerAccount.id == PointLot.account_id)
        .where(LedgerAccount.community_id == community.id,
               LedgerAccount.kind == str(AccountKind.WALLET), LedgerAccount.user_id.is_not(None),
               PointLot.remaining > 0, PointLot.expires_on > today, PointLot.expires_on <= last)
        .order_by(PointLot.id)).all()


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
