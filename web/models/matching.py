"""Match runs (a whole community or subdistrict paired at once) and the proposals they make."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.db import Base
from web.models.types import UTCDateTime


class MatchRun(Base):
    """One run of the optimiser over a scope; its figures stay for the record."""

    __tablename__ = "match_runs"
    __table_args__ = (
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_range"),
        CheckConstraint("(community_id IS NULL) <> (subdistrict_id IS NULL)", name="one_scope"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"), index=True)
    subdistrict_id: Mapped[int | None] = mapped_column(ForeignKey("subdistricts.id"), index=True)
    mode: Mapped[str] = mapped_column(String(8))
    # what is matched: units' resources to demands, or volunteers to service posts
    subject: Mapped[str] = mapped_column(String(12), default="units", server_default="units")
    status: Mapped[str] = mapped_column(String(16), index=True)
    # time_limit, seed, weights, pinned, forbidden, include_rejected: what the run was asked
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    # status, method, objective, bound, gap, greedy objective, counts and timings of the solve
    summary: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MatchProposal(Base):
    """A pair the optimiser proposes; the secretary approves it (a dispatch) or rejects it."""

    __tablename__ = "match_proposals"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("match_runs.id"), index=True)
    demand_id: Mapped[int] = mapped_column(ForeignKey("demand_items.id"), index=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resource_items.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(8))  # lead | helper
    score: Mapped[int] = mapped_column(Integer)
    terms: Mapped[dict] = mapped_column(JSON)  # the score broken down by term
    status: Mapped[str] = mapped_column(String(16), index=True)
    # what the demand and the resource looked like at the run: a later edit makes this stale
    demand_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resource_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assignment_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))
    reason: Mapped[str | None] = mapped_column(String(500))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    demand = relationship("DemandItem")
    resource = relationship("ResourceItem")
    unit = relationship("Unit")


class VolunteerProposal(Base):
    """A volunteer the optimiser proposes for a service post; approved, it becomes an offer of
    the place that the volunteer accepts or declines."""

    __tablename__ = "volunteer_proposals"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("match_runs.id"), index=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("service_posts.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    score: Mapped[int] = mapped_column(Integer)
    terms: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    post_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    profile_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claim_id: Mapped[int | None] = mapped_column(ForeignKey("post_claims.id"))
    reason: Mapped[str | None] = mapped_column(String(500))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
