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
        S.VERIFIED: frozenset({S.CLOSED}),
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
