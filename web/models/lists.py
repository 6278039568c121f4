"""The lists: categories, resource items (资源清单), demand items (需求清单), micro-wishes (微心愿)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    case,
    false,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.db import Base
from web.models.types import TagList, UTCDateTime


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(50))
    name_en: Mapped[str] = mapped_column(String(80))
    sort_order: Mapped[int] = mapped_column(Integer, default=100)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


resource_service_areas = Table(
    "resource_service_areas",
    Base.metadata,
    Column("resource_id", ForeignKey("resource_items.id", ondelete="CASCADE"), primary_key=True),
    Column("community_id", ForeignKey("communities.id"), primary_key=True),
)


class ResourceItem(Base):
    __tablename__ = "resource_items"
    __table_args__ = (
        CheckConstraint("quantity_remaining >= 0", name="remaining_not_negative"),
        CheckConstraint("quantity_remaining <= quantity_total", name="remaining_within_total"),
        CheckConstraint("value_fen_per_unit >= 0", name="value_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    skills: Mapped[list[str]] = mapped_column(TagList, default=list)
    capacity_per_occasion: Mapped[int] = mapped_column(Integer)
    quantity_total: Mapped[int] = mapped_column(Integer)
    quantity_remaining: Mapped[int] = mapped_column(Integer)
    # {"date_ranges": [{"start": "2026-01-01", "end": "2026-12-31"}],
    #  "weekly": [{"weekday": 5, "start": "09:00", "end": "12:00"}]}
    availability: Mapped[dict] = mapped_column(JSON, default=dict)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[int | None] = mapped_column(Integer)
    value_fen_per_unit: Mapped[int] = mapped_column(Integer, default=0)
    is_standing_offer: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    service_communities = relationship("Community", secondary=resource_service_areas)
    category: Mapped[Category] = relationship()
    unit = relationship("Unit")


class DemandItem(Base):
    __tablename__ = "demand_items"
    __table_args__ = (
        CheckConstraint("quantity_needed > 0", name="needed_positive"),
        CheckConstraint("quantity_open >= 0", name="open_not_negative"),
        CheckConstraint("quantity_open <= quantity_needed", name="open_within_needed"),
        CheckConstraint("quantity_confirmed >= 0", name="confirmed_not_negative"),
        CheckConstraint("rating IS NULL OR (rating BETWEEN 1 AND 5)", name="rating_range"),
        # A community's list, newest first, with or without a status filter: read a page
        # from the index instead of walking every community's items by date.
        Index("ix_demand_items_community_id_status_created_at", "community_id", "status",
              "created_at"),
        Index("ix_demand_items_community_id_created_at", "community_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    required_skills: Mapped[list[str]] = mapped_column(TagList, default=list)
    quantity_needed: Mapped[int] = mapped_column(Integer)
    # Not yet held by any pending, offered, approved or accepted assignment.
    quantity_open: Mapped[int] = mapped_column(Integer)
    # Held by approved or accepted assignments: what the coverage roll-up counts.
    quantity_confirmed: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    beneficiaries_count: Mapped[int] = mapped_column(Integer, default=1)
    # An elderly, disabled or otherwise vulnerable beneficiary (points rules may weigh it).
    beneficiary_vulnerable: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(20))
    beneficiary_name: Mapped[str | None] = mapped_column(String(100))
    beneficiary_phone: Mapped[str | None] = mapped_column(String(32))
    beneficiary_address: Mapped[str | None] = mapped_column(String(300))
    beneficiary_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), index=True)
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(String(1000))
    rated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Service levels: set when the item is published; a pause stops both clocks (the due times
    # move on by the paused time when it resumes); escalation_level 0 grid, 1 community,
    # 2 subdistrict (微循环 → 小循环 → 大循环).
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accept_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    close_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(String(500))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsatisfied_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    auto_confirmed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    category: Mapped[Category] = relationship()
    community = relationship("Community")


# The demand board's order — most urgent first, then oldest — over the items still open for
# claims, read from a partial index instead of sorting every open item on each page. Constants
# are inlined (not bound), so the ORDER BY is the index's own expression on every plan.
URGENCY_RANK = case(
    *((DemandItem.urgency == literal_column(f"'{u}'"), literal_column(str(rank)))
      for rank, u in enumerate(("normal", "urgent", "critical"))), else_=literal_column("0"))
CLAIMABLE_SQL = "status IN ('open', 'partly_covered', 'covered') AND quantity_open > 0"
Index("ix_demand_items_board", URGENCY_RANK.desc(), DemandItem.id,
      postgresql_where=text(CLAIMABLE_SQL), sqlite_where=text(CLAIMABLE_SQL))


class MicroWish(Base):
    __tablename__ = "micro_wishes"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    demand_id: Mapped[int | None] = mapped_column(ForeignKey("demand_items.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
