"""Who is acting: a user and their scoped role grants, passed explicitly to every service."""

from __future__ import annotations

from dataclasses import dataclass, field

from web.models.people import Role


@dataclass(frozen=True)
class Grant:
    """One role with its scope; wider scope ids are filled in (a grid grant names its community)."""

    role: Role
    subdistrict_id: int | None = None
    community_id: int | None = None
    grid_id: int | None = None
    unit_id: int | None = None


@dataclass(frozen=True)
class Actor:
    """The acting user; `user_id=None` is the system itself (scheduler, automatic rules)."""

    user_id: int | None
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    @property
    def is_system(self) -> bool:
        """The system itself (CLI operator, scheduler): sees and may do everything."""
        return self.user_id is None

    def ids(self, role: Role, attr: str) -> set[int]:
        """The scope ids (`attr` of each grant) this actor holds `role` for."""
        return {getattr(g, attr) for g in self.grants if g.role == role and getattr(g, attr)}

    def has_role(self, *roles: Role) -> bool:
        return any(g.role in roles for g in self.grants)

    @property
    def secretary_communities(self) -> set[int]:
        return self.ids(Role.SECRETARY, "community_id")

    @property
    def admin_subdistricts(self) -> set[int]:
        return self.ids(Role.SUBDISTRICT_ADMIN, "subdistrict_id")

    @property
    def grid_worker_grids(self) -> set[int]:
        return self.ids(Role.GRID_WORKER, "grid_id")

    @property
    def admin_units(self) -> set[int]:
        return self.ids(Role.UNIT_ADMIN, "unit_id")

    @property
    def resident_communities(self) -> set[int]:
        return self.ids(Role.RESIDENT, "community_id")

    @property
    def clerk_communities(self) -> set[int]:
        """Communities whose supermarket counter the actor works at."""
        return self.ids(Role.CLERK, "community_id")

    def is_secretary_of(self, community_id: int) -> bool:
        return community_id in self.secretary_communities

    def is_admin_of_subdistrict(self, subdistrict_id: int) -> bool:
        return subdistrict_id in self.admin_subdistricts

    def is_unit_admin_of(self, unit_id: int) -> bool:
        return unit_id in self.admin_units

    def is_grid_worker_of(self, grid_id: int | None) -> bool:
        return grid_id is not None and grid_id in self.grid_worker_grids


SYSTEM = Actor(user_id=None)
