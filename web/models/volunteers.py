"""Volunteers (志愿者) and in-service party members reporting to where they live (双报到): profiles,
service posts (服务岗位) and their claims, activity sessions and sign-ups, volunteer teams."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.db import Base
from web.models.types import TagList, UTCDateTime


class VolunteerProfile(Base):
    """What a person can do and when; an employee of a unit also reports (报到) to their home."""

    __tablename__ = "volunteer_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    # None for a resident volunteer; pending → confirmed | rejected for a unit employee's report
    report_status: Mapped[str | None] = mapped_column(String(16), index=True)
    report_reason: Mapped[str | None] = mapped_column(String(500))
    profession: Mapped[str | None] = mapped_column(String(40))
    skills: Mapped[list[str]] = mapped_column(TagList, default=list)
    preferred_categories: Mapped[list[str]] = mapped_column(TagList, default=list)
    availability: Mapped[dict] = mapped_column(JSON, default=dict)
    is_party_member: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    user = relationship("User")

    # the state machine's `transition` reads and writes `status`
    @property
    def status(self) -> str | None:
        return self.report_status

    @status.setter
    def status(self, value: str) -> None:
        self.report_status = value


class ServicePost(Base):
    """A standing post a community offers volunteers, with a headcount it never exceeds."""

    __tablename__ = "service_posts"
    __table_args__ = (
        CheckConstraint("headcount >= 1", name="headcount_positive"),
        CheckConstraint("taken >= 0 AND taken <= headcount", name="taken_in_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    headcount: Mapped[int] = mapped_column(Integer)
    taken: Mapped[int] = mapped_column(Integer, default=0)  # pending + confirmed claims
    schedule: Mapped[dict] = mapped_column(JSON, default=dict)  # weekly slots, like availability
    required_skills: Mapped[list[str]] = mapped_column(TagList, default=list)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PostClaim(Base):
    """A volunteer's claim of a post place; the secretary confirms it."""

    __tablename__ = "post_claims"
    # One active claim per person per post: `active_post_id` is the post while active, else NULL.
    __table_args__ = (UniqueConstraint("user_id", "active_post_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("service_posts.id"), index=True)
    active_post_id: Mapped[int | None] = mapped_column(ForeignKey("service_posts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    origin: Mapped[str] = mapped_column(String(16))  # claim | proposal
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ActivitySession(Base):
    """One occasion of work on a covered demand or a post: when, where, how many people."""

    __tablename__ = "activity_sessions"
    __table_args__ = (
        CheckConstraint("headcount >= 1", name="headcount_positive"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("(demand_id IS NULL) <> (post_id IS NULL)", name="one_subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    demand_id: Mapped[int | None] = mapped_column(ForeignKey("demand_items.id"), index=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("service_posts.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    title: Mapped[str] = mapped_column(String(200))
    place: Mapped[str] = mapped_column(String(300))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    headcount: Mapped[int] = mapped_column(Integer)
    checkin_code: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(16), index=True)
    organiser_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SessionSignup(Base):
    """A person signed up for a session (or waiting for a place), checked in and out."""

    __tablename__ = "session_signups"
    __table_args__ = (UniqueConstraint("session_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("activity_sessions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("volunteer_teams.id"))
    status: Mapped[str] = mapped_column(String(16), index=True)
    signed_up_at: Mapped[datetime] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    minutes: Mapped[int | None] = mapped_column(Integer)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    service_record_id: Mapped[str | None] = mapped_column(String(36))


class VolunteerTeam(Base):
    """A volunteer team (志愿服务队) of a unit or a community, with a leader."""

    __tablename__ = "volunteer_teams"
    __table_args__ = (
        CheckConstraint("(unit_id IS NULL) <> (community_id IS NULL)", name="one_owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("communities.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    speciality: Mapped[str | None] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    members: Mapped[list[TeamMember]] = relationship(order_by="TeamMember.id")


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("volunteer_teams.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
