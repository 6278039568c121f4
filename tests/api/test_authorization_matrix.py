"""The authorization matrix (acceptance point 22): every endpoint × every role × own scope vs another scope.

Every /api/v1 endpoint and method (from the app's own url_map, without openapi.json and the docs)
has one row in MATRIX, and `test_every_api_endpoint_is_in_the_authorization_matrix` fails when an
endpoint exists that the matrix does not cover, so a new endpoint must be added here.

Each row names the object the endpoint acts on, built once in a snapshot of the test world (see
below): a pending claim of unit x on d_a1, an offered dispatch to unit x, the approved lead share
of unit x, a submitted report, a verified demand with its service record, a micro-wish of res_a1,
a draft demand in a1, a draft resource of unit x, a pairing of x with a1, an applied unit and a
suspended unit in subdistrict A, a match run over a1 with an open proposal for d_open, and so on. Every object lies in the "own" scope — subdistrict A,
community a1, grid g_a1, unit x, resident res_a1 — and each role is played twice:

    role               own scope   other scope
    subdistrict_admin  admin_a     admin_b
    secretary          sec_a1      sec_b1
    grid_worker        grid_a1     grid_b1
    unit_admin         unit_x      unit_z      (the applicant itself for its own application)
    clerk              clerk_a1    clerk_b1
    resident           res_a1      res_b1

plus one anonymous caller. Each cell is one test and expects one outcome:

- allowed: the endpoint's success status (2xx); lists must contain the object ("listed");
- "unlisted": a list answers 200 but must not contain the object;
- 401 for the anonymous caller;
- 404 for an object outside the caller's scope, which must not be visible at all. A 403 is
  accepted there only when the same call on an id that does not exist answers 403 as well: the
  refusal then rests on the caller's role alone and tells nothing about the object;
- 403 for an object the caller can see but whose action their role does not allow;
- one special cell: a unit admin who only sees a demand on the board may not read, through the
  demand's history, the claims of other units (403, or a history without them).

A refused write must change nothing: after every refused POST/PATCH/DELETE the row counts of
every table and the target object's row (its status included) are what they were before.

By design, some reads are open to every signed-in user, and the matrix says so:
- reference data — subdistricts, communities, grids, estates, buildings and categories — is
  readable by every signed-in user (the public disclosure names the places too);
- approved units (and their pairings) are listed to everyone signed in;
- published resources are readable by everyone signed in, and published demands (anything but
  draft and cancelled) by every unit admin: the demand board. The beneficiary's contact fields
  (beneficiary_name/phone/address) must then be null for a unit admin without a confirmed
  assignment on the demand, for secretaries of other communities and for subdistrict admins
  (the issue names only the secretary, the grid worker and the assigned units as needing them);
  `test_beneficiary_contact_*` checks this.

Speed: a full world plus the dozen target objects takes about half a second to build, and the
matrix has about 900 cells. The world is therefore built once per module inside an outer
transaction, and every cell runs inside its own savepoint that is rolled back afterwards, so each
cell starts from exactly the same fresh state, as if the world had just been built for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import NOW, TEST_PASSWORD
from tests.factories import build_world, category_id, claim, make_demand, make_resource, make_user
from web.app import create_app
from web.config import Settings
from web.db import Base
from web.domain.actor import SYSTEM
from web.models import (
    Assignment,
    Category,
    Community,
    DemandItem,
    Estate,
    MatchProposal,
    MatchRun,
    MicroWish,
    Pairing,
    ResourceItem,
    RoleGrant,
    ServiceRecord,
    Unit,
    User,
    WorkReport,
)
from web.services import assignments, matching, places, reports, units, wishes
from web.services.auth import actor_for

pytestmark = pytest.mark.db

API = "/api/v1"
MISSING_ID = 987_654_321

# ---- outcomes ---------------------------------------------------------------------------------

OK = "allowed"  # the endpoint's success status
LISTED = "listed"  # 200, and the list holds the object
UNLISTED = "unlisted"  # 200, and the list does not hold the object
UNAUTHENTICATED = 401
FORBIDDEN = 403  # visible, but the role may not act on it
HIDDEN = 404  # outside the caller's scope: not visible at all

# Refused (403), or 200 without a single event about other units' claims, dispatches or reports.
WORK_OF_OTHERS_HIDDEN = "the work of other units hidden"

F, H, L, U = FORBIDDEN, HIDDEN, LISTED, UNLISTED

ROLES = ("subdistrict_admin", "secretary", "grid_worker", "unit_admin", "clerk", "resident")
ACTORS = {
    "subdistrict_admin": ("admin_a", "admin_b"),
    "secretary": ("sec_a1", "sec_b1"),
    "grid_worker": ("grid_a1", "grid_b1"),
    "unit_admin": ("unit_x", "unit_z"),
    "clerk": ("clerk_a1", "clerk_b1"),
    "resident": ("res_a1", "res_b1"),
}

# The model of each target object, for the "a refused write changes nothing" check.
TARGET_MODELS = {
    "A": None, "a1": Community, "g_a1": None, "e_a1": Estate, "bld_a1": None, "cat": Category,
    "x": Unit, "w": Unit, "s": Unit, "pairing": Pairing, "user_res_a1": User,
    "r_x": ResourceItem, "r_draft": ResourceItem,
    "d_a1": DemandItem, "d_draft": DemandItem, "d_open": DemandItem, "d_lead": DemandItem,
    "d_ver": DemandItem, "claim": Assignment, "offer": Assignment, "a_lead": Assignment,
    "rep": WorkReport, "record": ServiceRecord, "wish": MicroWish,
    "run": MatchRun, "proposal": MatchProposal,
}


def expect(default=HIDDEN, **roles) -> dict[str, tuple]:
    """(own, other) outcome for each role: `default` unless named; one value means both scopes."""
    table = {}
    for role in ROLES:
        value = roles.pop(role, default)
        table[role] = value if isinstance(value, tuple) else (value, value)
    assert not roles, f"unknown roles {roles}"
    return table


@dataclass(frozen=True)
class Case:
    method: str
    rule: str  # the url_map rule, parameters written {id} (first) and {name} (the others)
    params: dict = field(default_factory=dict)  # placeholder -> key of the object's id
    expected: dict = field(default_factory=dict)
    ok: int = 200
    body: Callable | None = None  # (ids, username) -> json
    variant: str = ""
    target: str | None = None  # the object acted on or looked for; default: params["id"]
    actors: dict = field(default_factory=dict)  # role -> (own, other) instead of ACTORS
    anonymous: object = UNAUTHENTICATED
    check: Callable | None = None  # (response json, ids, username) -> None, on success

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.rule}"

    @property
    def label(self) -> str:
        return f"{self.endpoint} ({self.variant})" if self.variant else self.endpoint

    @property
    def target_key(self) -> str | None:
        return self.target or self.params.get("id")

    def path(self, ids: dict, *, missing: bool = False) -> str:
        values = {name: ids[key] for name, key in self.params.items()}
        if missing:
            values["id"] = MISSING_ID
        return self.rule.format(**values)


def _creds(ids, me):
    return {"username": me or "res_a1", "password": TEST_PASSWORD}


def _reason(ids, me):
    return {"reason": "授权矩阵测试"}


def _past(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()


def _me_is_me(data, ids, me):
    assert data["id"] == ids[f"user_{me}"]


def _a1_run(ids, me):
    return {"community_id": ids["a1"], "time_limit": 1}


def _subdistrict_run(ids, me):
    return {"subdistrict_id": ids["A"], "time_limit": 1}


def _run_done(data, ids, me):
    assert data["status"] == "done", data


def _dispatched(data, ids, me):
    assert data["status"] == "approved" and data["assignment_id"], data


# Published demands of a1 (grid g_a1, beneficiary res_a1): who can see them and not act.
ON_A1_DEMAND = dict(subdistrict_admin=(F, H), secretary=(F, H), grid_worker=(F, H),
                    unit_admin=(F, F), resident=(F, H))
READ_A1_DEMAND = dict(subdistrict_admin=(OK, H), secretary=(OK, H), grid_worker=(OK, H),
                      unit_admin=(OK, OK), resident=(OK, H))

MATRIX: list[Case] = [
    # ---- signing in ---------------------------------------------------------------------------
    Case("POST", f"{API}/auth/token", ok=201, body=_creds, expected=expect(OK), anonymous=OK),
    Case("DELETE", f"{API}/auth/token", ok=204, expected=expect(OK)),
    Case("POST", f"{API}/auth/session", body=_creds, expected=expect(OK), anonymous=OK),
    Case("DELETE", f"{API}/auth/session", ok=204, expected=expect(OK)),
    Case("GET", f"{API}/auth/me", expected=expect(OK), check=_me_is_me),
    # ---- reference data: readable by every signed-in user -------------------------------------
    Case("GET", f"{API}/subdistricts", target="A", expected=expect(L)),
    Case("GET", f"{API}/communities", target="a1", expected=expect(L)),
    Case("GET", f"{API}/communities/{{id}}", {"id": "a1"}, expected=expect(OK)),
    Case("PATCH", f"{API}/communities/{{id}}", {"id": "a1"},
         body=lambda ids, me: {"dispatch_response_hours": 48},
         expected=expect(F, secretary=(OK, F))),
    Case("GET", f"{API}/communities/{{id}}/grids", {"id": "a1"}, target="g_a1",
         expected=expect(L)),
    Case("POST", f"{API}/communities/{{id}}/grids", {"id": "a1"}, ok=201,
         body=lambda ids, me: {"code": "G9", "name": "新网格"},
         expected=expect(F, secretary=(OK, F))),
    Case("GET", f"{API}/communities/{{id}}/estates", {"id": "a1"}, target="e_a1",
         expected=expect(L)),
    Case("POST", f"{API}/communities/{{id}}/estates", {"id": "a1"}, ok=201,
         body=lambda ids, me: {"name": "新小区"}, expected=expect(F, secretary=(OK, F))),
    Case("GET", f"{API}/estates/{{id}}/buildings", {"id": "e_a1"}, target="bld_a1",
         expected=expect(L)),
    Case("POST", f"{API}/estates/{{id}}/buildings", {"id": "e_a1"}, ok=201,
         body=lambda ids, me: {"name": "9号楼"}, expected=expect(F, secretary=(OK, F))),
    Case("GET", f"{API}/categories", target="cat", expected=expect(L)),
    Case("POST", f"{API}/categories", ok=201,
         body=lambda ids, me: {"code": "matrix_new", "name_zh": "新类别", "name_en": "New"},
         expected=expect(F, subdistrict_admin=OK)),
    Case("PATCH", f"{API}/categories/{{id}}", {"id": "cat"},
         body=lambda ids, me: {"sort_order": 7}, expected=expect(F, subdistrict_admin=OK)),
    # ---- units and pairings -------------------------------------------------------------------
    Case("GET", f"{API}/units", variant="applied unit", target="w",
         actors={"unit_admin": ("unit_w", "unit_z")},
         expected=expect(U, subdistrict_admin=(L, U), unit_admin=(L, U))),
    Case("GET", f"{API}/units", variant="approved unit", target="x", expected=expect(L)),
    Case("POST", f"{API}/units", ok=201,
         body=lambda ids, me: {"subdistrict_id": ids["A"], "name": "新单位", "type": "enterprise",
                               "contact_name": "赵", "contact_phone": "13911112222"},
         expected=expect(OK)),
    Case("GET", f"{API}/units/{{id}}", {"id": "w"}, variant="applied unit",
         actors={"unit_admin": ("unit_w", "unit_z")},
         expected=expect(H, subdistrict_admin=(OK, H), unit_admin=(OK, H))),
    Case("GET", f"{API}/units/{{id}}", {"id": "x"}, variant="approved unit", expected=expect(OK)),
    Case("PATCH", f"{API}/units/{{id}}", {"id": "x"}, body=lambda ids, me: {"contact_name": "王"},
         expected=expect(F, unit_admin=(OK, F))),
    Case("POST", f"{API}/units/{{id}}/approve", {"id": "w"},
         actors={"unit_admin": ("unit_w", "unit_z")},
         expected=expect(H, subdistrict_admin=(OK, H), unit_admin=(F, H))),
    Case("POST", f"{API}/units/{{id}}/reject", {"id": "w"}, body=_reason,
         actors={"unit_admin": ("unit_w", "unit_z")},
         expected=expect(H, subdistrict_admin=(OK, H), unit_admin=(F, H))),
    Case("POST", f"{API}/units/{{id}}/suspend", {"id": "x"}, body=_reason,
         expected=expect(F, subdistrict_admin=(OK, F))),
    Case("POST", f"{API}/units/{{id}}/reinstate", {"id": "s"},
         actors={"unit_admin": ("unit_s", "unit_z")},
         expected=expect(H, subdistrict_admin=(OK, H), unit_admin=(F, H))),
    Case("GET", f"{API}/units/{{id}}/pairings", {"id": "x"}, target="pairing", expected=expect(L)),
    Case("POST", f"{API}/units/{{id}}/pairings", {"id": "x"}, ok=201,
         body=lambda ids, me: {"community_id": ids["a1"], "starts_on": "2026-01-01"},
         expected=expect(F, subdistrict_admin=(OK, F), secretary=(OK, F))),
    Case("POST", f"{API}/units/pairings/{{id}}/end", {"id": "pairing"},
         body=lambda ids, me: {"ends_on": "2026-12-31", "reason": "协议到期"},
         expected=expect(F, subdistrict_admin=(OK, F), secretary=(OK, F))),
    # ---- users and roles ----------------------------------------------------------------------
    Case("GET", f"{API}/users", target="user_res_a1",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), resident=(L, U))),
    Case("POST", f"{API}/users", ok=201, target="a1",
         body=lambda ids, me: {"username": "matrix_new", "password": TEST_PASSWORD,
                               "display_name": "新居民", "roles": [
                                   {"role": "resident", "community_id": ids["a1"],
                                    "grid_id": ids["g_a1"]}]},
         expected=expect(F, subdistrict_admin=(OK, F), secretary=(OK, F))),
    Case("GET", f"{API}/users/{{id}}", {"id": "user_res_a1"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), resident=(OK, H))),
    Case("POST", f"{API}/users/{{id}}/roles", {"id": "user_res_a1"}, ok=201,
         body=lambda ids, me: {"role": "grid_worker", "grid_id": ids["g_a1"]},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), resident=(F, H))),
    Case("DELETE", f"{API}/users/{{id}}/roles/{{grant_id}}",
         {"id": "user_res_a1", "grant_id": "grant_res_a1"}, ok=204,
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), resident=(F, H))),
    # ---- resource lists -----------------------------------------------------------------------
    Case("GET", f"{API}/resources", variant="draft resource", target="r_draft",
         expected=expect(U, subdistrict_admin=(L, U), unit_admin=(L, U))),
    Case("GET", f"{API}/resources", variant="published resource", target="r_x",
         expected=expect(L)),
    Case("POST", f"{API}/resources", ok=201, target="x",
         body=lambda ids, me: {"unit_id": ids["x"], "kind": "skill", "category_id": ids["cat"],
                               "title": "法律咨询", "capacity_per_occasion": 1,
                               "quantity_total": 5, "service_community_ids": [ids["a1"]]},
         expected=expect(F, unit_admin=(OK, F))),
    Case("GET", f"{API}/resources/{{id}}", {"id": "r_draft"}, variant="draft resource",
         expected=expect(H, subdistrict_admin=(OK, H), unit_admin=(OK, H))),
    Case("GET", f"{API}/resources/{{id}}", {"id": "r_x"}, variant="published resource",
         expected=expect(OK)),
    Case("PATCH", f"{API}/resources/{{id}}", {"id": "r_draft"},
         body=lambda ids, me: {"title": "改过的标题"},
         expected=expect(H, subdistrict_admin=(F, H), unit_admin=(OK, H))),
    Case("POST", f"{API}/resources/{{id}}/publish", {"id": "r_draft"},
         expected=expect(H, subdistrict_admin=(F, H), unit_admin=(OK, H))),
    Case("POST", f"{API}/resources/{{id}}/withdraw", {"id": "r_x"}, body=_reason,
         expected=expect(F, unit_admin=(OK, F))),
    # ---- demand lists -------------------------------------------------------------------------
    Case("GET", f"{API}/demands", variant="draft demand", target="d_draft",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), grid_worker=(L, U),
                         resident=(L, U))),
    Case("GET", f"{API}/demands", variant="published demand", target="d_a1",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), grid_worker=(L, U),
                         unit_admin=(L, L), resident=(L, U))),
    Case("POST", f"{API}/demands", ok=201, target="a1",
         body=lambda ids, me: {"community_id": ids["a1"], "grid_id": ids["g_a1"],
                               "category_id": ids["cat"], "title": "楼道清扫",
                               "quantity_needed": 2},
         expected=expect(F, secretary=(OK, F), grid_worker=(OK, F))),
    Case("GET", f"{API}/demands/{{id}}", {"id": "d_draft"}, variant="draft demand",
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), grid_worker=(OK, H),
                         resident=(OK, H))),
    Case("GET", f"{API}/demands/{{id}}", {"id": "d_a1"}, variant="published demand",
         expected=expect(H, **READ_A1_DEMAND)),
    Case("PATCH", f"{API}/demands/{{id}}", {"id": "d_draft"}, variant="draft demand",
         body=lambda ids, me: {"title": "改过的标题"},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), grid_worker=(F, H),
                         resident=(F, H))),
    Case("PATCH", f"{API}/demands/{{id}}", {"id": "d_a1"}, variant="published demand",
         body=lambda ids, me: {"title": "改过的标题"},
         expected=expect(H, **{**ON_A1_DEMAND, "secretary": (OK, H)})),
    Case("POST", f"{API}/demands/{{id}}/publish", {"id": "d_draft"},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), grid_worker=(F, H),
                         resident=(F, H))),
    Case("POST", f"{API}/demands/{{id}}/cancel", {"id": "d_a1"}, body=_reason,
         expected=expect(H, **{**ON_A1_DEMAND, "secretary": (OK, H)})),
    Case("POST", f"{API}/demands/{{id}}/start", {"id": "d_lead"},
         expected=expect(H, **{**ON_A1_DEMAND, "unit_admin": (OK, F)})),
    Case("POST", f"{API}/demands/{{id}}/confirmation", {"id": "d_ver"},
         body=lambda ids, me: {"rating": 5, "comment": "满意"},
         expected=expect(H, **{**ON_A1_DEMAND, "grid_worker": (OK, H), "resident": (OK, H)})),
    # The history names every unit's claims, quantities and reasons; a unit that merely reads
    # the demand board (unit z, no share in d_a1) must not read unit x's claim through it.
    Case("GET", f"{API}/demands/{{id}}/history", {"id": "d_a1"},
         expected=expect(H, **{**READ_A1_DEMAND, "unit_admin": (OK, WORK_OF_OTHERS_HIDDEN)})),
    Case("POST", f"{API}/demands/{{id}}/claims", {"id": "d_open"}, ok=201,
         body=lambda ids, me: {"unit_id": ids["x"], "resource_id": ids["r_x"], "quantity": 1},
         expected=expect(H, **{**ON_A1_DEMAND, "unit_admin": (OK, F)})),
    Case("POST", f"{API}/demands/{{id}}/dispatches", {"id": "d_open"}, ok=201,
         body=lambda ids, me: {"unit_id": ids["x"], "quantity": 1},
         expected=expect(H, **{**ON_A1_DEMAND, "secretary": (OK, H)})),
    Case("POST", f"{API}/demands/{{id}}/lead", {"id": "d_lead"},
         body=lambda ids, me: {"assignment_id": ids["a_lead"]},
         expected=expect(H, **{**ON_A1_DEMAND, "secretary": (OK, H)})),
    Case("GET", f"{API}/demands/{{id}}/assignments", {"id": "d_a1"}, target="claim",
         expected=expect(H, subdistrict_admin=(L, H), secretary=(L, H), grid_worker=(U, H),
                         unit_admin=(L, U), resident=(U, H))),
    Case("POST", f"{API}/demands/{{id}}/reports", {"id": "d_lead"}, ok=201,
         body=lambda ids, me: {"started_on": _past(3), "ended_on": _past(2),
                               "beneficiaries_served": 1, "value_fen": 10000,
                               "volunteers": [{"name": "张三", "phone": "13500000000",
                                               "hours": "2"}]},
         expected=expect(H, **{**ON_A1_DEMAND, "unit_admin": (OK, F)})),
    # ---- claims and dispatches ----------------------------------------------------------------
    Case("GET", f"{API}/assignments", target="claim",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), unit_admin=(L, U))),
    Case("GET", f"{API}/assignments/{{id}}", {"id": "claim"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), unit_admin=(OK, H))),
    Case("POST", f"{API}/assignments/{{id}}/approve", {"id": "claim"},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), unit_admin=(F, H))),
    Case("POST", f"{API}/assignments/{{id}}/reject", {"id": "claim"}, body=_reason,
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), unit_admin=(F, H))),
    Case("POST", f"{API}/assignments/{{id}}/withdraw", {"id": "claim"}, body=_reason,
         expected=expect(H, subdistrict_admin=(F, H), secretary=(F, H), unit_admin=(OK, H))),
    Case("POST", f"{API}/assignments/{{id}}/accept", {"id": "offer"},
         body=lambda ids, me: {},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(F, H), unit_admin=(OK, H))),
    Case("POST", f"{API}/assignments/{{id}}/decline", {"id": "offer"}, body=_reason,
         expected=expect(H, subdistrict_admin=(F, H), secretary=(F, H), unit_admin=(OK, H))),
    Case("POST", f"{API}/assignments/{{id}}/recall", {"id": "a_lead"}, body=_reason,
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), unit_admin=(F, H))),
    Case("POST", f"{API}/assignments/{{id}}/release", {"id": "a_lead"}, body=_reason,
         expected=expect(H, subdistrict_admin=(F, H), secretary=(F, H), unit_admin=(OK, H))),
    # ---- reports and service records ----------------------------------------------------------
    Case("GET", f"{API}/reports", target="rep",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), grid_worker=(L, U),
                         unit_admin=(L, U), resident=(L, U))),
    Case("GET", f"{API}/reports/{{id}}", {"id": "rep"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), grid_worker=(OK, H),
                         unit_admin=(OK, H), resident=(OK, H))),
    Case("POST", f"{API}/reports/{{id}}/verify", {"id": "rep"},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), grid_worker=(F, H),
                         unit_admin=(F, H), resident=(F, H))),
    Case("POST", f"{API}/reports/{{id}}/return", {"id": "rep"}, body=_reason,
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), grid_worker=(F, H),
                         unit_admin=(F, H), resident=(F, H))),
    Case("GET", f"{API}/service-records", target="record",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), unit_admin=(L, U))),
    # ---- micro-wishes -------------------------------------------------------------------------
    Case("GET", f"{API}/micro-wishes", target="wish",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), grid_worker=(L, U),
                         resident=(L, U))),
    Case("POST", f"{API}/micro-wishes", ok=201,
         body=lambda ids, me: {"title": "想要一副老花镜", "description": "看报纸用"},
         expected=expect(F, resident=OK)),
    Case("GET", f"{API}/micro-wishes/{{id}}", {"id": "wish"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), grid_worker=(OK, H),
                         resident=(OK, H))),
    Case("POST", f"{API}/micro-wishes/{{id}}/accept", {"id": "wish"},
         body=lambda ids, me: {"demand": {"category_id": ids["cat"]}},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), grid_worker=(OK, H),
                         resident=(F, H))),
    Case("POST", f"{API}/micro-wishes/{{id}}/decline", {"id": "wish"}, body=_reason,
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), grid_worker=(OK, H),
                         resident=(F, H))),
    Case("POST", f"{API}/micro-wishes/{{id}}/withdraw", {"id": "wish"},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(F, H), grid_worker=(F, H),
                         resident=(OK, H))),
    # ---- matching: runs and proposals -----------------------------------------------------------
    # A community's secretary or its subdistrict's admin starts runs (the admin also over the whole
    # subdistrict); only the secretary decides on proposals. Runs and proposals are seen by those
    # two roles alone; the community itself is reference data, so starting a run elsewhere is 403.
    Case("GET", f"{API}/matching/runs", target="run",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U))),
    Case("POST", f"{API}/matching/runs", variant="community", ok=201, target="a1", body=_a1_run,
         expected=expect(F, subdistrict_admin=(OK, F), secretary=(OK, F)), check=_run_done),
    Case("POST", f"{API}/matching/runs", variant="subdistrict", ok=201, target="A",
         body=_subdistrict_run, expected=expect(F, subdistrict_admin=(OK, F)), check=_run_done),
    Case("POST", f"{API}/matching/runs/preview", variant="community", target="a1", body=_a1_run,
         expected=expect(F, subdistrict_admin=(OK, F), secretary=(OK, F))),
    Case("POST", f"{API}/matching/runs/preview", variant="subdistrict", target="A",
         body=_subdistrict_run, expected=expect(F, subdistrict_admin=(OK, F))),
    Case("GET", f"{API}/matching/runs/{{id}}", {"id": "run"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H))),
    Case("POST", f"{API}/matching/runs/{{id}}/approve-all", {"id": "run"}, target="proposal",
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H))),
    Case("GET", f"{API}/matching/proposals", target="proposal",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U))),
    Case("GET", f"{API}/matching/proposals/{{id}}", {"id": "proposal"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H))),
    Case("POST", f"{API}/matching/proposals/{{id}}/approve", {"id": "proposal"},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H)), check=_dispatched),
    Case("POST", f"{API}/matching/proposals/{{id}}/reject", {"id": "proposal"}, body=_reason,
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H))),
]


def cells():
    for case in MATRIX:
        yield pytest.param(case, "anonymous", None, id=f"{case.label}-anonymous")
        for role in ROLES:
            for scope in ("own", "other"):
                yield pytest.param(case, role, scope, id=f"{case.label}-{role}-{scope}")


# ---- the world, built once; every test runs in a savepoint rolled back afterwards -------------

@dataclass
class Snapshot:
    connection: object
    app: object
    ids: dict
    headers: dict
    contact: dict


def _build(session: Session) -> tuple[dict, dict]:
    """The shared world plus every object the matrix acts on; returns (ids, headers)."""
    w = build_world(session)
    w.users["clerk_b1"] = make_user(session, "clerk_b1",
                                    {"role": "clerk", "community_id": w["b1"]}).id
    # A secretary of a2 who also runs unit y: a board reader from another community.
    w.users["sec_a2_unit_y"] = make_user(
        session, "sec_a2_unit_y", {"role": "secretary", "community_id": w["a2"]},
        {"role": "unit_admin", "unit_id": w["y"]}).id
    ids = dict(w.ids)
    ids["cat"] = category_id(session)
    ids["e_a1"] = places.create_estate(session, actor=SYSTEM, community_id=w["a1"],
                                       name="幸福小区").id
    ids["bld_a1"] = places.create_building(session, actor=SYSTEM, estate_id=ids["e_a1"],
                                           name="3号楼", grid_id=w["g_a1"]).id
    # An applied unit w and a suspended unit s in subdistrict A, each with its own admin.
    for key, admin in (("w", "unit_w"), ("s", "unit_s")):
        user = make_user(session, admin)
        w.users[admin] = user.id
        ids[key] = units.apply_unit(session, actor=actor_for(user), subdistrict_id=w["A"],
                                    data={"name": f"Unit {key}", "type": "social_organisation",
                                          "contact_name": "Chen", "contact_phone": "13600000000"},
                                    now=NOW).id
    units.approve_unit(session, actor=SYSTEM, unit_id=ids["s"], now=NOW)
    units.suspend_unit(session, actor=SYSTEM, unit_id=ids["s"], reason="整改", now=NOW)
    ids["pairing"] = units.create_pairing(session, actor=SYSTEM, unit_id=w["x"],
                                          community_id=w["a1"], starts_on=date(2026, 1, 1),
                                          now=NOW).id
    ids["r_draft"] = make_resource(session, w, "x", "unit_x", ["a1"], publish=False)
    sec, unit_x = w.actor("sec_a1"), w.actor("unit_x")

    def a1_demand(publish=True, quantity=1):
        return make_demand(session, w, "a1", "sec_a1", grid="g_a1", beneficiary="res_a1",
                           quantity=quantity, publish=publish)

    ids["d_draft"] = a1_demand(publish=False)
    ids["d_open"] = a1_demand(quantity=3)
    ids["claim"] = claim(w, "x", "d_a1").id  # pending, on d_a1
    ids["d_disp"] = a1_demand()
    # Dispatched at the real current time, so its response deadline lies ahead.
    ids["offer"] = assignments.dispatch_demand(session, actor=sec, demand_id=ids["d_disp"],
                                               unit_id=w["x"], quantity=1).id
    # d_lead: unit x holds the approved (lead) share; d_rep: reported; d_ver: verified.
    for key in ("d_lead", "d_rep", "d_ver"):
        ids[key] = a1_demand()
        w.ids[key] = ids[key]
        share = claim(w, "x", key)
        assignments.approve_claim(session, actor=sec, assignment_id=share.id, now=NOW)
        if key == "d_lead":
            ids["a_lead"] = share.id
            continue
        report = reports.submit_report(
            session, actor=unit_x, demand_id=ids[key], started_on=date.today() - timedelta(3),
            ended_on=date.today() - timedelta(2), beneficiaries_served=1, value_fen=5000,
            volunteers=[{"name": "李四", "phone": "13500000001", "minutes": 90}])
        if key == "d_rep":
            ids["rep"] = report.id
        else:
            reports.verify_report(session, actor=sec, report_id=report.id)
            ids["record"] = session.scalar(select(ServiceRecord.id).where(
                ServiceRecord.report_id == report.id))
    # A match run over a1 (d_a1 and d_open are open); its proposal for d_open is the target.
    ids["run"] = matching.create_match_run(session, actor=sec, community_id=w["a1"]).id
    matching.execute_match_run(session, run_id=ids["run"])
    ids["proposal"] = session.scalar(select(MatchProposal.id).where(
        MatchProposal.run_id == ids["run"], MatchProposal.demand_id == ids["d_open"]))
    assert ids["proposal"] is not None
    ids["wish"] = wishes.submit_wish(session, actor=w.actor("res_a1"), title="希望有人陪我去医院",
                                     now=NOW).id
    for name, user_id in w.users.items():
        ids[f"user_{name}"] = user_id
    ids["grant_res_a1"] = session.scalar(select(RoleGrant.id).where(
        RoleGrant.user_id == w.users["res_a1"], RoleGrant.role == "resident"))
    headers = {name: w.headers(name) for name in w.users}
    return ids, headers


@pytest.fixture(scope="module")
def snapshot(engine):
    with engine.connect() as connection:
        outer = connection.begin()

        def session_factory() -> Session:
            return Session(bind=connection, join_transaction_mode="create_savepoint",
                           expire_on_commit=False)

        setup = session_factory()
        ids, headers = _build(setup)
        contact = {c: getattr(setup.get(DemandItem, ids["d_a1"]), c)
                   for c in ("beneficiary_name", "beneficiary_phone", "beneficiary_address")}
        setup.close()
        app = create_app(Settings(database_url=str(engine.url), secret_key="test-secret",
                                  testing=True), engine=engine)
        app.extensions["linli"].use_sessions(session_factory)
        yield Snapshot(connection, app, ids, headers, contact)
        outer.rollback()


@pytest.fixture
def fresh(snapshot):
    """The snapshot, in a savepoint that is rolled back when the test ends."""
    savepoint = snapshot.connection.begin_nested()
    yield snapshot
    if savepoint.is_active:
        savepoint.rollback()


# ---- helpers ------------------------------------------------------------------------------------

def state_of(snap: Snapshot, case: Case):
    """Row counts of every table, and the target object's row."""
    conn = snap.connection
    counts = {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
              for t in Base.metadata.sorted_tables}
    key = case.target_key
    model = TARGET_MODELS.get(key) if key else None
    row = None
    if model is not None:
        table = model.__table__
        row = tuple(conn.execute(select(table).where(table.c.id == snap.ids[key])).one())
    return counts, row


def call(snap: Snapshot, case: Case, username: str | None, *, missing: bool = False):
    client = snap.app.test_client()
    headers = snap.headers[username] if username else {}
    json = case.body(snap.ids, username) if case.body else None
    return client.open(case.path(snap.ids, missing=missing), method=case.method,
                       headers=headers, json=json)


def ids_in(data) -> set:
    items = data["items"] if isinstance(data, dict) else data
    return {item["id"] for item in items}


def error_code(response) -> int:
    body = response.get_json(silent=True) or {}
    assert set(body) == {"error"}, body
    assert body["error"]["status"] == response.status_code, body
    return response.status_code


# ---- the tests ----------------------------------------------------------------------------------

def api_endpoints(app) -> set[str]:
    """Every "METHOD /api/v1/..." the app serves, parameters written {id} and {name}."""
    found = set()
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if not path.startswith(API) or path == f"{API}/openapi.json" or \
                path.startswith(f"{API}/docs"):
            continue
        names = re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", path)
        for index, name in enumerate(names):
            path = re.sub(r"<[^<>]+>", "{id}" if index == 0 else "{" + name + "}", path, count=1)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add(f"{method} {path}")
    return found


def test_every_api_endpoint_is_in_the_authorization_matrix(snapshot):
    served = api_endpoints(snapshot.app)
    covered = {case.endpoint for case in MATRIX}
    assert not served - covered, f"add these endpoints to MATRIX: {sorted(served - covered)}"
    assert not covered - served, f"MATRIX names endpoints that do not exist: {sorted(covered - served)}"


@pytest.mark.parametrize(("case", "role", "scope"), list(cells()))
def test_cross_scope_access(fresh, case: Case, role: str, scope: str | None):
    if role == "anonymous":
        username, wanted = None, case.anonymous
    else:
        own, other = case.actors.get(role, ACTORS[role])
        username = own if scope == "own" else other
        wanted = case.expected[role][0 if scope == "own" else 1]
    writes = case.method != "GET"
    before = state_of(fresh, case) if writes else None
    response = call(fresh, case, username)
    status = response.status_code
    where = f"{case.label} as {username or 'anonymous'}: {status} {response.get_json(silent=True)}"

    if wanted == WORK_OF_OTHERS_HIDDEN:
        if status == 200:
            leaked = [e for e in response.json if e["entity_type"] != "demand_items"]
            assert not leaked, f"other units' work leaked: {where}"
        else:
            assert status == FORBIDDEN, where
        return

    if wanted in (OK, LISTED, UNLISTED):
        assert status == case.ok, where
        data = response.get_json(silent=True)
        if wanted in (LISTED, UNLISTED):
            present = fresh.ids[case.target_key] in ids_in(data)
            assert present is (wanted == LISTED), f"{wanted}? {where}"
        if case.check:
            case.check(data, fresh.ids, username)
        return

    assert status >= 400, f"expected {wanted}: {where}"
    assert error_code(response) in (UNAUTHENTICATED, FORBIDDEN, HIDDEN), where
    if writes:
        assert state_of(fresh, case) == before, f"a refused write changed something: {where}"
    if wanted == HIDDEN and status == FORBIDDEN:
        # A refusal on the role alone is fine only if it says nothing about the object.
        twin = call(fresh, case, username, missing=True)
        assert twin.status_code == FORBIDDEN, \
            f"403 on a hidden object but {twin.status_code} on a missing one: {where}"
        return
    assert status == wanted, f"expected {wanted}: {where}"


# ---- the beneficiary's contact details ----------------------------------------------------------

CONTACT = ("beneficiary_name", "beneficiary_phone", "beneficiary_address")


@pytest.mark.parametrize(("viewer", "demand", "visible"), [
    pytest.param("sec_a1", "d_a1", True, id="the community's secretary sees it"),
    pytest.param("grid_a1", "d_a1", True, id="the grid's worker sees it"),
    pytest.param("res_a1", "d_a1", True, id="the beneficiary sees it"),
    pytest.param("unit_x", "d_lead", True, id="a unit with a confirmed share sees it"),
    pytest.param("unit_x", "d_a1", False, id="a unit with a pending claim does not"),
    pytest.param("unit_y", "d_a1", False, id="a unit of the same subdistrict on the board does not"),
    pytest.param("unit_z", "d_a1", False, id="a unit of another subdistrict on the board does not"),
    pytest.param("sec_a2_unit_y", "d_a1", False,
                 id="a secretary of another community reading the board does not"),
    pytest.param("admin_a", "d_a1", False, id="the subdistrict admin does not"),
])
def test_beneficiary_contact_is_shown_only_to_those_who_need_it(fresh, viewer, demand, visible):
    headers = fresh.headers[viewer]
    client = fresh.app.test_client()
    one = client.get(f"{API}/demands/{fresh.ids[demand]}", headers=headers)
    assert one.status_code == 200, one.json
    page = client.get(f"{API}/demands?per_page=100", headers=headers)
    assert page.status_code == 200, page.json
    listed = [d for d in page.json["items"] if d["id"] == fresh.ids[demand]]
    assert len(listed) == 1
    for shown in (one.json, listed[0]):
        assert shown["contact_visible"] is visible
        if visible:
            assert {c: shown[c] for c in CONTACT} == fresh.contact
        else:
            assert {c: shown[c] for c in CONTACT} == dict.fromkeys(CONTACT)


def test_beneficiary_contact_is_hidden_from_a_unit_once_its_share_ends(fresh):
    client = fresh.app.test_client()
    sec, unit = fresh.headers["sec_a1"], fresh.headers["unit_x"]
    d_lead = fresh.ids["d_lead"]
    assert client.get(f"{API}/demands/{d_lead}", headers=unit).json["contact_visible"] is True
    r = client.post(f"{API}/assignments/{fresh.ids['a_lead']}/recall", headers=sec,
                    json={"reason": "换单位"})
    assert r.status_code == 200, r.json
    shown = client.get(f"{API}/demands/{d_lead}", headers=unit)
    assert shown.status_code == 200, shown.json
    assert shown.json["contact_visible"] is False
    assert {c: shown.json[c] for c in CONTACT} == dict.fromkeys(CONTACT)


def test_secretaries_of_other_communities_cannot_see_a_communitys_demands(fresh):
    client = fresh.app.test_client()
    for name in ("sec_a2", "sec_b1"):
        headers = fresh.headers[name]
        assert client.get(f"{API}/demands/{fresh.ids['d_a1']}", headers=headers).status_code == 404
        page = client.get(f"{API}/demands?per_page=100", headers=headers).json
        assert fresh.ids["d_a1"] not in ids_in(page)
