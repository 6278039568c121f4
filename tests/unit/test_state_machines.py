"""The explicit state machines of web/domain/states.py: legal moves pass, every other move is refused."""

from __future__ import annotations

from enum import StrEnum

import pytest

from web.domain.states import (
    ACTIVE_ASSIGNMENT,
    CONFIRMED_ASSIGNMENT,
    TRANSITIONS,
    AssignmentStatus,
    DemandStatus,
    ReportStatus,
    ResourceStatus,
    UnitStatus,
    WishStatus,
    check_transition,
    coverage_status,
)
from web.errors import ConflictError, IllegalTransitionError

A, D = AssignmentStatus, DemandStatus
MACHINES = [UnitStatus, ResourceStatus, DemandStatus, AssignmentStatus, ReportStatus, WishStatus]

LEGAL = [
    (UnitStatus.APPLIED, UnitStatus.APPROVED),
    (UnitStatus.APPLIED, UnitStatus.REJECTED),
    (UnitStatus.APPROVED, UnitStatus.SUSPENDED),
    (UnitStatus.SUSPENDED, UnitStatus.APPROVED),
    (ResourceStatus.DRAFT, ResourceStatus.PUBLISHED),
    (ResourceStatus.PUBLISHED, ResourceStatus.WITHDRAWN),
    (ResourceStatus.WITHDRAWN, ResourceStatus.PUBLISHED),
    (ResourceStatus.PUBLISHED, ResourceStatus.EXPIRED),
    (D.DRAFT, D.OPEN),
    (D.OPEN, D.PARTLY_COVERED),
    (D.OPEN, D.COVERED),
    (D.PARTLY_COVERED, D.COVERED),
    (D.COVERED, D.PARTLY_COVERED),
    (D.COVERED, D.OPEN),
    (D.COVERED, D.IN_PROGRESS),
    (D.IN_PROGRESS, D.REPORTED),
    (D.REPORTED, D.IN_PROGRESS),
    (D.REPORTED, D.VERIFIED),
    (D.VERIFIED, D.CLOSED),
    (D.VERIFIED, D.OPEN),
    (D.OPEN, D.CANCELLED),
    (A.PENDING, A.APPROVED),
    (A.PENDING, A.REJECTED),
    (A.PENDING, A.WITHDRAWN),
    (A.OFFERED, A.ACCEPTED),
    (A.OFFERED, A.DECLINED),
    (A.OFFERED, A.RECALLED),
    (A.OFFERED, A.EXPIRED),
    (A.APPROVED, A.RELEASED),
    (A.ACCEPTED, A.RECALLED),
    (A.ACCEPTED, A.COMPLETED),
    (ReportStatus.SUBMITTED, ReportStatus.VERIFIED),
    (ReportStatus.SUBMITTED, ReportStatus.RETURNED),
    (WishStatus.SUBMITTED, WishStatus.ACCEPTED),
    (WishStatus.SUBMITTED, WishStatus.DECLINED),
    (WishStatus.SUBMITTED, WishStatus.WITHDRAWN),
]

ILLEGAL = [
    (UnitStatus.APPLIED, UnitStatus.SUSPENDED),
    (UnitStatus.REJECTED, UnitStatus.APPROVED),
    (UnitStatus.APPROVED, UnitStatus.REJECTED),
    (ResourceStatus.DRAFT, ResourceStatus.EXPIRED),
    (ResourceStatus.PUBLISHED, ResourceStatus.PUBLISHED),
    (ResourceStatus.EXPIRED, ResourceStatus.PUBLISHED),
    (D.DRAFT, D.COVERED),
    (D.OPEN, D.IN_PROGRESS),
    (D.OPEN, D.REPORTED),
    (D.IN_PROGRESS, D.OPEN),
    (D.REPORTED, D.CLOSED),
    (D.REPORTED, D.CANCELLED),
    (D.VERIFIED, D.CANCELLED),
    (D.CLOSED, D.OPEN),
    (A.REJECTED, A.APPROVED),
    (A.PENDING, A.ACCEPTED),
    (A.PENDING, A.RELEASED),
    (A.OFFERED, A.APPROVED),
    (A.APPROVED, A.REJECTED),
    (A.APPROVED, A.WITHDRAWN),
    (A.ACCEPTED, A.DECLINED),
    (A.COMPLETED, A.RELEASED),
    (ReportStatus.VERIFIED, ReportStatus.VERIFIED),
    (ReportStatus.RETURNED, ReportStatus.VERIFIED),
    (WishStatus.DECLINED, WishStatus.ACCEPTED),
    (WishStatus.ACCEPTED, WishStatus.WITHDRAWN),
]


def _name(move) -> str:
    return f"{type(move[0]).__name__}:{move[0]}->{move[1]}"


@pytest.mark.parametrize("current,target", LEGAL, ids=[_name(m) for m in LEGAL])
def test_a_legal_move_is_accepted(current, target):
    assert check_transition(current, target) is None
    assert target in TRANSITIONS[type(target)][current]


@pytest.mark.parametrize("current,target", ILLEGAL, ids=[_name(m) for m in ILLEGAL])
def test_an_illegal_move_raises_illegal_transition_error(current, target):
    with pytest.raises(IllegalTransitionError) as info:
        check_transition(current, target)
    err = info.value
    assert err.status == 409 and err.code == "illegal_transition"
    assert err.params == {"machine": type(target).__name__, "current": str(current),
                          "target": str(target)}


def test_an_illegal_transition_error_is_a_conflict_answered_409():
    assert issubclass(IllegalTransitionError, ConflictError)
    assert IllegalTransitionError("DemandStatus", "open", "closed").status == 409


def test_the_current_status_may_be_given_as_the_plain_string_stored_in_the_database():
    check_transition("pending", A.APPROVED)
    with pytest.raises(IllegalTransitionError):
        check_transition("rejected", A.APPROVED)


@pytest.mark.parametrize("machine", MACHINES, ids=[m.__name__ for m in MACHINES])
def test_every_status_of_every_machine_has_an_entry_in_the_transition_table(machine):
    assert set(TRANSITIONS[machine]) == set(machine)


@pytest.mark.parametrize("machine", MACHINES, ids=[m.__name__ for m in MACHINES])
def test_every_move_in_the_table_stays_inside_its_own_machine(machine):
    for current, targets in TRANSITIONS[machine].items():
        assert all(isinstance(t, machine) for t in targets), current
        assert current not in targets, f"{current} may not move to itself"


TERMINAL = [
    (ResourceStatus, ResourceStatus.EXPIRED),
    (DemandStatus, D.CLOSED),
    (DemandStatus, D.CANCELLED),
    *[(AssignmentStatus, s) for s in (A.REJECTED, A.DECLINED, A.WITHDRAWN, A.RECALLED,
                                      A.RELEASED, A.EXPIRED, A.CANCELLED, A.COMPLETED)],
    (ReportStatus, ReportStatus.VERIFIED),
    (ReportStatus, ReportStatus.RETURNED),
    (WishStatus, WishStatus.ACCEPTED),
    (WishStatus, WishStatus.DECLINED),
    (WishStatus, WishStatus.WITHDRAWN),
]


@pytest.mark.parametrize("machine,terminal", TERMINAL, ids=[_name(t) for t in TERMINAL])
def test_a_terminal_status_has_no_exit(machine: type[StrEnum], terminal):
    assert TRANSITIONS[machine][terminal] == frozenset()
    for target in machine:
        with pytest.raises(IllegalTransitionError):
            check_transition(terminal, target)


def test_only_closed_and_cancelled_demands_are_terminal():
    terminal = {s for s, targets in TRANSITIONS[DemandStatus].items() if not targets}
    assert terminal == {D.CLOSED, D.CANCELLED}


def test_a_demand_can_be_cancelled_until_work_is_reported_but_not_after():
    for status in (D.DRAFT, D.OPEN, D.PARTLY_COVERED, D.COVERED, D.IN_PROGRESS):
        check_transition(status, D.CANCELLED)
    for status in (D.REPORTED, D.VERIFIED, D.CLOSED):
        with pytest.raises(IllegalTransitionError):
            check_transition(status, D.CANCELLED)


def test_active_assignments_hold_quantity_and_confirmed_ones_are_a_subset():
    assert CONFIRMED_ASSIGNMENT == {A.APPROVED, A.ACCEPTED}
    assert ACTIVE_ASSIGNMENT == {A.PENDING, A.OFFERED, A.APPROVED, A.ACCEPTED}
    assert CONFIRMED_ASSIGNMENT < ACTIVE_ASSIGNMENT
    for status in ACTIVE_ASSIGNMENT:
        assert TRANSITIONS[AssignmentStatus][status], f"active {status} must have an exit"


@pytest.mark.parametrize("needed,confirmed,expected", [
    (3, 0, D.OPEN),
    (3, -1, D.OPEN),
    (3, 1, D.PARTLY_COVERED),
    (3, 2, D.PARTLY_COVERED),
    (3, 3, D.COVERED),
    (3, 4, D.COVERED),
    (1, 1, D.COVERED),
])
def test_coverage_rolls_up_from_open_to_partly_covered_to_covered(needed, confirmed, expected):
    assert coverage_status(needed, confirmed) == expected


def test_coverage_moves_between_its_states_are_all_legal_in_the_demand_machine():
    states = [coverage_status(3, c) for c in (0, 1, 3, 1, 0, 3, 0)]
    for current, target in zip(states, states[1:], strict=False):
        if current != target:
            check_transition(current, target)
