"""The acting user and their scope helpers (web/domain/actor.py)."""

from __future__ import annotations

import dataclasses

import pytest

from web.domain.actor import SYSTEM, Actor, Grant
from web.models.people import Role

SECRETARY_1 = Grant(Role.SECRETARY, subdistrict_id=10, community_id=1)
SECRETARY_2 = Grant(Role.SECRETARY, subdistrict_id=10, community_id=2)
GRID_WORKER = Grant(Role.GRID_WORKER, subdistrict_id=10, community_id=1, grid_id=7)
UNIT_ADMIN = Grant(Role.UNIT_ADMIN, subdistrict_id=10, unit_id=5)
SUB_ADMIN = Grant(Role.SUBDISTRICT_ADMIN, subdistrict_id=10)
RESIDENT = Grant(Role.RESIDENT, subdistrict_id=10, community_id=3, grid_id=9)
CLERK = Grant(Role.CLERK, subdistrict_id=10, community_id=4)


def test_the_system_actor_has_no_user_and_no_grants():
    assert SYSTEM.is_system
    assert SYSTEM.user_id is None and SYSTEM.grants == ()


def test_a_signed_in_user_is_not_the_system_even_without_roles():
    assert not Actor(user_id=1).is_system


def test_the_system_actor_holds_no_scoped_role():
    assert not SYSTEM.is_secretary_of(1)
    assert not SYSTEM.is_unit_admin_of(1)
    assert not SYSTEM.has_role(*Role)


def test_a_secretary_is_secretary_of_their_own_community_only():
    actor = Actor(user_id=1, grants=(SECRETARY_1,))
    assert actor.is_secretary_of(1)
    assert not actor.is_secretary_of(2)
    assert actor.secretary_communities == {1}


def test_a_person_with_two_secretary_grants_serves_both_communities():
    actor = Actor(user_id=1, grants=(SECRETARY_1, SECRETARY_2))
    assert actor.secretary_communities == {1, 2}
    assert actor.is_secretary_of(2)


def test_a_grid_workers_community_does_not_make_them_its_secretary():
    actor = Actor(user_id=2, grants=(GRID_WORKER,))
    assert actor.grid_worker_grids == {7}
    assert actor.is_grid_worker_of(7)
    assert not actor.is_grid_worker_of(8)
    assert not actor.is_secretary_of(1)
    assert actor.secretary_communities == set()


def test_no_one_is_the_grid_worker_of_no_grid():
    actor = Actor(user_id=2, grants=(GRID_WORKER,))
    assert not actor.is_grid_worker_of(None)


def test_a_unit_admin_administers_their_unit_only():
    actor = Actor(user_id=3, grants=(UNIT_ADMIN,))
    assert actor.admin_units == {5}
    assert actor.is_unit_admin_of(5)
    assert not actor.is_unit_admin_of(6)


def test_the_subdistrict_filled_in_on_a_unit_grant_does_not_make_its_admin_a_subdistrict_admin():
    actor = Actor(user_id=3, grants=(UNIT_ADMIN, SECRETARY_1))
    assert actor.admin_subdistricts == set()
    assert not actor.is_admin_of_subdistrict(10)


def test_a_subdistrict_admin_is_admin_of_their_subdistrict_only():
    actor = Actor(user_id=4, grants=(SUB_ADMIN,))
    assert actor.is_admin_of_subdistrict(10)
    assert not actor.is_admin_of_subdistrict(11)
    assert actor.secretary_communities == set()


def test_a_residents_home_community_is_known_but_is_not_a_secretary_scope():
    actor = Actor(user_id=5, grants=(RESIDENT,))
    assert actor.resident_communities == {3}
    assert not actor.is_secretary_of(3)
    assert actor.grid_worker_grids == set()


def test_a_clerk_has_the_clerk_role_and_no_other_scope():
    actor = Actor(user_id=6, grants=(CLERK,))
    assert actor.has_role(Role.CLERK)
    assert not actor.has_role(Role.SECRETARY, Role.RESIDENT)
    assert actor.secretary_communities == set() and actor.resident_communities == set()


def test_one_person_may_hold_several_roles_each_with_its_own_scope():
    actor = Actor(user_id=7, grants=(RESIDENT, UNIT_ADMIN, GRID_WORKER))
    assert actor.has_role(Role.RESIDENT) and actor.has_role(Role.UNIT_ADMIN)
    assert actor.has_role(Role.SECRETARY, Role.GRID_WORKER)
    assert not actor.has_role(Role.SECRETARY)
    assert actor.resident_communities == {3}
    assert actor.admin_units == {5}
    assert actor.grid_worker_grids == {7}


def test_ids_collects_the_scope_of_one_role_and_skips_empty_scopes():
    actor = Actor(user_id=8, grants=(SECRETARY_1, Grant(Role.SECRETARY), GRID_WORKER))
    assert actor.ids(Role.SECRETARY, "community_id") == {1}
    assert actor.ids(Role.GRID_WORKER, "community_id") == {1}
    assert actor.ids(Role.UNIT_ADMIN, "unit_id") == set()


def test_an_actor_cannot_be_changed_after_it_is_made():
    actor = Actor(user_id=1, grants=(SECRETARY_1,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        actor.user_id = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        SECRETARY_1.community_id = 2  # type: ignore[misc]
