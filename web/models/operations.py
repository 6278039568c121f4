"""Running the service: notifications and their deliveries, the scheduler's jobs and job runs,
the daily figures it keeps, and the working-day calendar the service levels follow."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Unicode,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from web.db import Base
from web.models.types import UTCDateTime


class Notification(Base):
    """One message in a user's inbox. Its text is written from `kind` and `params` in the
    reader's language when shown; `dedupe_key` makes sending it twice harmless."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "dedupe_key"),
        Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON text
    link: Mapped[str | None] = mapped_column(String(300))
    demand_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # Something the reader has to do (approve, answer, confirm), not just news.
    needs_action: Mapped[bool] = mapped_column(Boolean, default=False)
    dedupe_key: Mapped[str | None] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationSettings(Base):
    """A user's outgoing channels (each opt-in), quiet hours and daily digest choice."""

    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The address the SMS/WeChat gateway behind the webhook delivers to (a phone number, an
    # OpenID); the webhook's URL itself is the deployment's setting.
    webhook_address: Mapped[str | None] = mapped_column(String(200))
    webhook_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Minutes after local (Asia/Shanghai) midnight; quiet hours may wrap past midnight.
    quiet_start_minute: Mapped[int | None] = mapped_column(Integer)
    quiet_end_minute: Mapped[int | None] = mapped_column(Integer)
    # One message a day with everything new, instead of one per notification.
    daily_digest: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Delivery(Base):
    """One attempt-tracked send of a notification (or of a day's digest) on one channel.

    Written in the same transaction as the notification (an outbox); the scheduler sends it,
    retrying with back-off, so a failing channel never blocks the action that caused it."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("dedupe_key"),
        Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    notification_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"),
                                                        index=True)
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    status: Mapped[str] = mapped_column(String(12))   # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    digest_day: Mapped[date | None] = mapped_column(Date)
    dedupe_key: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRun(Base):
    """One run of one scheduled job: when, where, what it did or why it failed."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started_at", "job", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(60))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ok: Mapped[bool | None] = mapped_column(Boolean)
    result: Mapped[str | None] = mapped_column(Text)  # JSON text
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(200))


class DailyFigures(Base):
    """A day's snapshot of one community's or one unit's figures, for the dashboards."""

    __tablename__ = "daily_figures"
    __table_args__ = (UniqueConstraint("day", "scope", "scope_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    scope: Mapped[str] = mapped_column(String(12))  # community | unit
    scope_id: Mapped[int] = mapped_column(Integer)
    figures: Mapped[str] = mapped_column(Text)  # JSON text
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CalendarDay(Base):
    """A day that breaks the Monday–Friday rule: a public holiday (is_workday false) or a
    weekend working day (调休, is_workday true). Service levels on working days read it."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    name: Mapped[str] = mapped_column(String(100), default="")


class SchedulerJob(Base):
    """APScheduler's persistent job store (SQLAlchemyJobStore), declared here so the
    migrations create it and `linli db check` knows it; the columns are APScheduler 3's."""

    __tablename__ = "apscheduler_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)
