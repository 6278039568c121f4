"""Places: subdistrict → community → grid (nested levels) → estate → building."""

from __future__ import annotations

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.db import Base


class Subdistrict(Base):
    __tablename__ = "subdistricts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    communities: Mapped[list[Community]] = relationship(back_populates="subdistrict")


class Community(Base):
    __tablename__ = "communities"

    id: Mapped[int] = mapped_column(primary_key=True)
    subdistrict_id: Mapped[int] = mapped_column(ForeignKey("subdistricts.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    # Claims by units paired with this community (or one of its grids) skip the secretary.
    auto_approve_paired_claims: Mapped[bool] = mapped_column(Boolean, default=False)
    # How long a dispatched unit has to answer, in hours.
    dispatch_response_hours: Mapped[int] = mapped_column(Integer, default=24)
    # The love bank: months before earned points expire (None: never), whether residents may
    # give points to each other (爱心传递), days to collect a supermarket order, and the
    # charity federation's matching grant on money donations to the fund, in percent.
    points_expiry_months: Mapped[int | None] = mapped_column(Integer)
    allow_gifts: Mapped[bool] = mapped_column(Boolean, default=False)
    collect_within_days: Mapped[int] = mapped_column(Integer, default=7)
    fund_match_percent: Mapped[int] = mapped_column(Integer, default=0)
    # Service levels (当日吹哨受理、三日闭环办结): hours to accept a published item, days to close
    # it, whether the clocks run on Asia/Shanghai working days only, hours an overdue item waits
    # at one level (grid, community) before it escalates to the next, days before verified work
    # the beneficiary has not confirmed is confirmed automatically, days of notice before points
    # expire, and whether the scheduler proposes pairs for new open items on its own.
    accept_within_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    close_within_days: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    sla_working_days: Mapped[bool] = mapped_column(Boolean, default=False,
                                                   server_default=false())
    escalate_after_hours: Mapped[int] = mapped_column(Integer, default=24, server_default="24")
    auto_confirm_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    expiry_notice_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    auto_propose: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    subdistrict: Mapped[Subdistrict] = relationship(back_populates="communities")


class Grid(Base):
    __tablename__ = "grids"
    __table_args__ = (UniqueConstraint("community_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    community: Mapped[Community] = relationship()


class Estate(Base):
    __tablename__ = "estates"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)


class Building(Base):
    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(ForeignKey("estates.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    estate: Mapped[Estate] = relationship()
