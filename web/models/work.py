"""The work on a demand: assignments (claims and dispatches), reports and service records."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.db import Base
from web.models.types import UTCDateTime


class Assignment(Base):
    """A unit's share of a demand: a self-claim (自主选单) or a dispatch (社区派单)."""

    __tablename__ = "assignments"
    __table_args__ = (
        # One unit holds at most one active assignment per demand: `active_demand_id` equals
        # `demand_id` while the assignment is active and is NULL afterwards (NULLs never clash).
        UniqueConstraint("unit_id", "active_demand_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[int] = mapped_column(ForeignKey("demand_items.id"), index=True)
    active_demand_id: Mapped[int | None] = mapped_column(ForeignKey("demand_items.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    resource_id: Mapped[int | None] = mapped_column(ForeignKey("resource_items.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(16))  # claim | dispatch
    status: Mapped[str] = mapped_column(String(16), index=True)
    is_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    response_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unit = relationship("Unit")
    demand = relationship("DemandItem", foreign_keys=[demand_id])


class WorkReport(Base):
    """What the lead unit reports for the team; a returned report stays, and a new one follows."""

    __tablename__ = "work_reports"
    __table_args__ = (
        CheckConstraint("value_fen >= 0", name="value_not_negative"),
        CheckConstraint("beneficiaries_served >= 0", name="served_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[int] = mapped_column(ForeignKey("demand_items.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(Text, default="")
    beneficiaries_served: Mapped[int] = mapped_column(Integer)
    value_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    return_reason: Mapped[str | None] = mapped_column(String(500))
    submitted_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    volunteers: Mapped[list[ReportVolunteer]] = relationship(
        back_populates="report", order_by="ReportVolunteer.id"
    )


class ReportVolunteer(Base):
    """One volunteer on a report: a user, or a name and phone for people without an account."""

    __tablename__ = "report_volunteers"
    __table_args__ = (CheckConstraint("minutes > 0", name="minutes_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("work_reports.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    minutes: Mapped[int] = mapped_column(Integer)
    report: Mapped[WorkReport] = relationship(back_populates="volunteers")


class ServiceRecord(Base):
    """One volunteer's verified hours on one report; the love bank credits each exactly once."""

    __tablename__ = "service_records"
    __table_args__ = (
        UniqueConstraint("report_volunteer_id"),
        UniqueConstraint("signup_id"),
        # from a unit's work report line, or from a checked-out activity sign-up
        CheckConstraint("(report_volunteer_id IS NULL) <> (signup_id IS NULL)", name="one_source"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid5 of its source
    report_volunteer_id: Mapped[int | None] = mapped_column(ForeignKey("report_volunteers.id"))
    signup_id: Mapped[int | None] = mapped_column(ForeignKey("session_signups.id"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("work_reports.id"), index=True)
    demand_id: Mapped[int | None] = mapped_column(ForeignKey("demand_items.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    minutes: Mapped[int] = mapped_column(Integer)
    served_on: Mapped[date] = mapped_column(Date)
    verified_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """One state change or notable action: who, when, from, to, why. Never updated."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(Integer)
    demand_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[str | None] = mapped_column(Text)  # JSON text
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
