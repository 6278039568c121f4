"""Explicit state machines: every status an object can have and every legal move between them.

A move not listed here is refused with `IllegalTransitionError` (answered 409) and changes
nothing; every legal move is written as an audit event by `web.services.audit.transition`.
"""

from __future__ import annotations

from enum import StrEnum

from web.errors import IllegalTransitionError


class UnitStatus(StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"


class ResourceStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class DemandStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PARTLY_COVERED = "partly_covered"
    COVERED = "covered"
    IN_PROGRESS = "in_progress"
    REPORTED = "reported"
    VERIFIED = "verified"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class AssignmentStatus(StrEnum):
    PENDING = "pending"  # a claim waiting for the secretary
    OFFERED = "offered"  # a dispatch waiting for the unit
    APPROVED = "approved"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    RECALLED = "recalled"
    RELEASED = "released"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class ReportStatus(StrEnum):
    SUBMITTED = "submitted"
    VERIFIED = "verified"
    RETURNED = "returned"


class WishStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"


class MatchRunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ProposalStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"    # became a dispatch to the unit
    REJECTED = "rejected"    # not proposed again unless asked
    STALE = "stale"          # the demand or the resource changed since the run
    SUPERSEDED = "superseded"  # a later run proposed again for the demand


class OrderStatus(StrEnum):
    RESERVED = "reserved"    # points debited, stock held, code issued
    COLLECTED = "collected"  # handed over at the counter
    CANCELLED = "cancelled"  # refunded at the resident's or the clerk's request
    EXPIRED = "expired"      # not collected in time, refunded by the system


class ReportInStatus(StrEnum):
    """A unit employee's report to their home community (在职党员 双报到)."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class PostStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class PostClaimStatus(StrEnum):
    OFFERED = "offered"      # proposed by a match run and approved: the volunteer decides
    PENDING = "pending"      # claimed by the volunteer: the secretary decides
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    RELEASED = "released"    # the secretary ended a confirmed claim


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class SignupStatus(StrEnum):
    SIGNED_UP = "signed_up"
    WAITLISTED = "waitlisted"
    WITHDRAWN = "withdrawn"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    CONFIRMED = "confirmed"  # hours confirmed: a service record, credited by the love bank
    NO_SHOW = "no_show"


S = DemandStatus
A = AssignmentStatus

TRANSITIONS: dict[type[StrEnum], dict[StrEnum, frozenset[StrEnum]]] = {
    UnitStatus: {
        UnitStatus.APPLIED: frozenset({UnitStatus.APPROVED, UnitStatus.REJECTED}),
        UnitStatus.APPROVED: frozenset({UnitStatus.SUSPENDED}),
        UnitStatus.SUSPENDED: frozenset({UnitStatus.APPROVED}),
        UnitStatus.REJECTED: frozenset({UnitStatus.APPLIED}),
    },
    ResourceStatus: {
        ResourceStatus.DRAFT: frozenset({ResourceStatus.PUBLISHED, ResourceStatus.WITHDRAWN}),
        ResourceStatus.PUBLISHED: frozenset({ResourceStatus.WITHDRAWN, ResourceStatus.EXPIRED}),
        ResourceStatus.WITHDRAWN: frozenset({ResourceStatus.PUBLISHED}),
        ResourceStatus.EXPIRED: frozenset(),
    },
    DemandStatus: {
        S.DRAFT: frozenset({S.OPEN, S.CANCELLED}),
        S.OPEN: frozenset({S.PARTLY_COVERED, S.COVERED, S.CANCELLED}),
        S.PARTLY_COVERED: frozenset({S.OPEN, S.COVERED, S.IN_PROGRESS, S.REPORTED, S.CANCELLED}),
        S.COVERED: frozenset({S.OPEN, S.PARTLY_COVERED, S.IN_PROGRESS, S.REPORTED, S.CANCELLED}),
        S.IN_PROGRESS: frozenset({S.REPORTED, S.CANCELLED}),
        S.REPORTED: frozenset({S.VERIFIED, S.IN_PROGRESS}),
        # Rated unsatisfactory (1 or 2 of 5): open again for rework.
        S.VERIFIED: frozenset({S.CLOSED, S.OPEN}),
        S.CLOSED: frozenset(),
        S.CANCELLED: frozenset(),
    },
    AssignmentStatus: {
        A.PENDING: frozenset({A.APPROVED, A.REJECTED, A.WITHDRAWN, A.CANCELLED}),
        A.OFFERED: frozenset({A.ACCEPTED, A.DECLINED, A.RECALLED, A.EXPIRED, A.CANCELLED}),
        A.APPROVED: frozenset({A.RELEASED, A.RECALLED, A.CANCELLED, A.COMPLETED}),
        A.ACCEPTED: frozenset({A.RELEASED, A.RECALLED, A.CANCELLED, A.COMPLETED}),
        **{s: frozenset() for s in (A.REJECTED, A.DECLINED, A.WITHDRAWN, A.RECALLED,
                                    A.RELEASED, A.EXPIRED, A.CANCELLED, A.COMPLETED)},
    },
    ReportStatus: {
        ReportStatus.SUBMITTED: frozenset({ReportStatus.VERIFIED, ReportStatus.RETURNED}),
        ReportStatus.VERIFIED: frozenset(),
        ReportStatus.RETURNED: frozenset(),
    },
    MatchRunStatus: {
        MatchRunStatus.QUEUED: frozenset({MatchRunStatus.RUNNING, MatchRunStatus.FAILED}),
        MatchRunStatus.RUNNING: frozenset({MatchRunStatus.DONE, MatchRunStatus.FAILED}),
        MatchRunStatus.DONE: frozenset(),
        MatchRunStatus.FAILED: frozenset(),
    },
    ProposalStatus: {
        ProposalStatus.PROPOSED: frozenset({ProposalStatus.APPROVED, ProposalStatus.REJECTED,
                                            ProposalStatus.STALE, ProposalStatus.SUPERSEDED}),
        **{s: frozenset() for s in (ProposalStatus.APPROVED, ProposalStatus.REJECTED,
                                    ProposalStatus.STALE, ProposalStatus.SUPERSEDED)},
    },
    OrderStatus: {
        OrderStatus.RESERVED: frozenset({OrderStatus.COLLECTED, OrderStatus.CANCELLED,
                                         OrderStatus.EXPIRED}),
        **{s: frozenset() for s in (OrderStatus.COLLECTED, OrderStatus.CANCELLED,
                                    OrderStatus.EXPIRED)},
    },
    ReportInStatus: {
        ReportInStatus.PENDING: frozenset({ReportInStatus.CONFIRMED, ReportInStatus.REJECTED}),
        ReportInStatus.CONFIRMED: frozenset(),
        ReportInStatus.REJECTED: frozenset({ReportInStatus.PENDING}),
    },
    PostStatus: {
        PostStatus.OPEN: frozenset({PostStatus.CLOSED}),
        PostStatus.CLOSED: frozenset({PostStatus.OPEN}),
    },
    PostClaimStatus: {
        PostClaimStatus.OFFERED: frozenset({PostClaimStatus.CONFIRMED, PostClaimStatus.DECLINED,
                                            PostClaimStatus.WITHDRAWN}),
        PostClaimStatus.PENDING: frozenset({PostClaimStatus.CONFIRMED, PostClaimStatus.REJECTED,
                                            PostClaimStatus.WITHDRAWN}),
        PostClaimStatus.CONFIRMED: frozenset({PostClaimStatus.RELEASED,
                                              PostClaimStatus.WITHDRAWN}),
        **{s: frozenset() for s in (PostClaimStatus.REJECTED, PostClaimStatus.DECLINED,
                                    PostClaimStatus.WITHDRAWN, PostClaimStatus.RELEASED)},
    },
    SessionStatus: {
        SessionStatus.SCHEDULED: frozenset({SessionStatus.CANCELLED, SessionStatus.COMPLETED}),
        SessionStatus.CANCELLED: frozenset(),
        SessionStatus.COMPLETED: frozenset(),
    },
    SignupStatus: {
        SignupStatus.SIGNED_UP: frozenset({SignupStatus.WITHDRAWN, SignupStatus.CHECKED_IN,
                                           SignupStatus.NO_SHOW}),
        SignupStatus.WAITLISTED: frozenset({SignupStatus.SIGNED_UP, SignupStatus.WITHDRAWN}),
        SignupStatus.CHECKED_IN: frozenset({SignupStatus.CHECKED_OUT}),
        SignupStatus.CHECKED_OUT: frozenset({SignupStatus.CONFIRMED}),
        **{s: frozenset() for s in (SignupStatus.WITHDRAWN, SignupStatus.CONFIRMED,
                                    SignupStatus.NO_SHOW)},
    },
    WishStatus: {
        WishStatus.SUBMITTED: frozenset(
            {WishStatus.ACCEPTED, WishStatus.DECLINED, WishStatus.WITHDRAWN}
        ),
        WishStatus.ACCEPTED: frozenset(),
        WishStatus.DECLINED: frozenset(),
        WishStatus.WITHDRAWN: frozenset(),
    },
}

# Assignments that hold quantity on the demand (and on the resource, when one is named).
ACTIVE_ASSIGNMENT = frozenset({A.PENDING, A.OFFERED, A.APPROVED, A.ACCEPTED})
# Assignments that count as coverage: the unit is committed and the community agreed.
CONFIRMED_ASSIGNMENT = frozenset({A.APPROVED, A.ACCEPTED})
# Post claims that hold a place of the post's headcount.
HOLDING_CLAIM = frozenset({PostClaimStatus.OFFERED, PostClaimStatus.PENDING,
                           PostClaimStatus.CONFIRMED})
# Sign-ups that hold a place of the session's headcount.
HOLDING_SIGNUP = frozenset({SignupStatus.SIGNED_UP, SignupStatus.CHECKED_IN,
                            SignupStatus.CHECKED_OUT, SignupStatus.CONFIRMED})
# Demands whose coverage still moves with claims and dispatches.
COVERAGE_STATES = frozenset({S.OPEN, S.PARTLY_COVERED, S.COVERED})
# Demands on which work can be reported.
WORKABLE_STATES = frozenset({S.PARTLY_COVERED, S.COVERED, S.IN_PROGRESS})


def check_transition(current: StrEnum, target: StrEnum) -> None:
    """Raise IllegalTransitionError unless `current -> target` is a legal move."""
    machine = TRANSITIONS[type(target)]
    current = type(target)(current)
    if target not in machine[current]:
        raise IllegalTransitionError(type(target).__name__, str(current), str(target))


def coverage_status(needed: int, confirmed: int) -> DemandStatus:
    """The coverage roll-up of a demand: open, partly covered or covered."""
    if confirmed <= 0:
        return S.OPEN
    if confirmed >= needed:
        return S.COVERED
    return S.PARTLY_COVERED
