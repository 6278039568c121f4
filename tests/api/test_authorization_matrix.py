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
  accepted there only when the same call on an id that does not exist (in the path, else in the
  query, else in the body) answers 403 as well: the refusal then rests on the caller's role
  alone and tells nothing about the object;
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

import io
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import NOW, TEST_PASSWORD
from tests.factories import build_world, category_id, claim, make_demand, make_resource, make_user
from tests.integration.lovebank_helpers import RULES
from web.app import create_app
from web.config import Settings
from web.db import Base
from web.domain.actor import SYSTEM
from web.models import (
    ActivitySession,
    Assignment,
    Category,
    Community,
    DemandItem,
    Estate,
    LedgerAccount,
    LedgerTransfer,
    MarketItem,
    MarketOrder,
    MatchProposal,
    MatchRun,
    MicroWish,
    Notification,
    Pairing,
    PostClaim,
    ResourceItem,
    RoleGrant,
    ServicePost,
    ServiceRecord,
    SessionSignup,
    Unit,
    User,
    VolunteerProfile,
    VolunteerProposal,
    VolunteerTeam,
    WorkReport,
)
from web.services import (
    activities,
    assignments,
    lovebank,
    market,
    matching,
    notifications,
    people_matching,
    places,
    reports,
    service_levels,
    units,
    volunteers,
    wishes,
)
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
    "d_ver": DemandItem, "d_paused": DemandItem, "claim": Assignment, "offer": Assignment, "a_lead": Assignment,
    "rep": WorkReport, "record": ServiceRecord, "wish": MicroWish,
    "run": MatchRun, "proposal": MatchProposal,
    "item": MarketItem, "order": MarketOrder, "t_adjust": LedgerTransfer,
    "vol": VolunteerProfile, "post": ServicePost, "post_p": ServicePost, "post_o": ServicePost,
    "post_c": ServicePost, "c_pending": PostClaim, "c_offered": PostClaim,
    "c_confirmed": PostClaim, "sess": ActivitySession, "sess_open": ActivitySession,
    "su_res": SessionSignup, "su_in": SessionSignup, "su_out": SessionSignup,
    "su_done": SessionSignup, "team": VolunteerTeam, "vrun": MatchRun,
    "vproposal": VolunteerProposal, "note": Notification,
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
    query: dict = field(default_factory=dict)  # query parameter -> key of an id, or a literal
    idempotent: bool = False  # the request moves points or fen: send a fresh Idempotency-Key
    upload: Callable | None = None  # (ids, username) -> multipart form (files), instead of json

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
        if missing and "id" in values:
            values["id"] = MISSING_ID
        return self.rule.format(**values)

    def query_string(self, ids: dict, *, missing: bool = False) -> dict:
        """The query; `missing` puts a missing id in the first id parameter when the path has none."""
        query = {name: ids[value] if isinstance(value, str) else value
                 for name, value in self.query.items()}
        if missing and "id" not in self.params:
            first = next((n for n, v in self.query.items() if isinstance(v, str)), None)
            if first:
                query[first] = MISSING_ID
        return query


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


def _shanghai_today() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


def _statement_of_res_a1(data, ids, me):
    assert [w["user_id"] for w in data] == [ids["user_res_a1"]], data
    assert data[0]["community_id"] == ids["a1"] and data[0]["balance"] > 0, data


def _only_my_wallets(data, ids, me):
    assert all(w["user_id"] == ids[f"user_{me}"] for w in data), data


def _fund_of_a1(data, ids, me):
    assert data["community_id"] == ids["a1"] and data["balance_fen"] > 0, data


def _my_profile(data, ids, me):
    assert data["user_id"] == ids[f"user_{me}"], data


def _counts_without_names(data, ids, me):
    assert data["community_id"] == ids["a1"] and data["volunteers"] == 4, data
    assert data["party_members"] == 1 and data["reported"] == {"pending": 1}, data
    shown = json.dumps(data, ensure_ascii=False)
    for name in ("res_a1", "vol_1", "vol_2", "vol_3"):  # display names are the usernames
        assert name not in shown, data


def _session_starts() -> datetime:
    """Tomorrow at the real current time: sessions take sign-ups until they end."""
    return datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)


def _session_of(key: str) -> Callable:
    def body(ids, me):
        starts = _session_starts()
        return {key: ids["post" if key == "post_id" else "d_lead"], "title": "周六探访",
                "place": "社区活动室", "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(), "headcount": 5}
    return body


def _signed_up(data, ids, me):
    assert [(s["user_id"], s["status"]) for s in data] == [(ids[f"user_{me}"], "signed_up")], data


def _team_signed_up(data, ids, me):
    members = {ids[f"user_{n}"] for n in ("res_a1", "vol_1", "vol_2")}
    assert {s["user_id"] for s in data} == members, data
    assert {(s["team_id"], s["status"]) for s in data} == {(ids["team"], "signed_up")}, data


def _offered(data, ids, me):
    assert data["status"] == "approved" and data["claim_id"], data


def _item_write(**roles) -> dict:
    return expect(H, subdistrict_admin=(F, H), resident=(F, H), **roles)


ITEM_PATCH = _item_write(secretary=(OK, H), clerk=(OK, H))
ITEM_DONATION = _item_write(secretary=(OK, H), clerk=(OK, H))
ITEM_PURCHASE = _item_write(secretary=(OK, H), clerk=(OK, H))
REVERSE = expect(H, subdistrict_admin=(F, H), secretary=(OK, H), resident=(F, H))
READ_ORDER = dict(subdistrict_admin=(OK, H), secretary=(OK, H), clerk=(OK, H), resident=(OK, H))
# The community's journal, accounts and fund: its secretary, and its subdistrict's admin.
OVERSEE = dict(subdistrict_admin=(OK, F), secretary=(OK, F))
OVERSEE_LISTED = dict(subdistrict_admin=(L, F), secretary=(L, F))
STOCK_LISTED = dict(subdistrict_admin=(L, F), secretary=(L, F), clerk=(L, F))

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
    # The clocks of an item: its community's secretary, or the grid worker of its grid.
    Case("POST", f"{API}/demands/{{id}}/pause", {"id": "d_a1"}, body=_reason,
         expected=expect(H, **{**ON_A1_DEMAND, "secretary": (OK, H), "grid_worker": (OK, H)})),
    Case("POST", f"{API}/demands/{{id}}/resume", {"id": "d_paused"}, body=_reason,
         expected=expect(H, **{**ON_A1_DEMAND, "secretary": (OK, H), "grid_worker": (OK, H)})),
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
    # ---- the love bank: rules, settings, wallets, the journal -----------------------------------
    # The points rules (积分制管理办法) are a published policy, readable like reference data.
    Case("GET", f"{API}/communities/{{id}}/points-rules", {"id": "a1"}, expected=expect(OK),
         check=lambda data, ids, me: [v["version"] for v in data] == [1] or pytest.fail(data)),
    Case("POST", f"{API}/communities/{{id}}/points-rules", {"id": "a1"}, ok=201,
         body=lambda ids, me: {"document": RULES, "effective_from": _shanghai_today()},
         expected=expect(F, secretary=(OK, F))),
    Case("PATCH", f"{API}/communities/{{id}}/love-bank-settings", {"id": "a1"},
         body=lambda ids, me: {"allow_gifts": False, "fund_match_percent": 30},
         expected=expect(F, secretary=(OK, F))),
    # A resident sees only their own wallet; the secretary and the subdistrict admin oversee it.
    Case("GET", f"{API}/ledger/statement", variant="a resident's wallet", target="user_res_a1",
         query={"user_id": "user_res_a1"}, check=_statement_of_res_a1,
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), resident=(OK, H))),
    Case("GET", f"{API}/ledger/statement", variant="yours by default", expected=expect(OK),
         check=_only_my_wallets),
    Case("GET", f"{API}/ledger/statement.csv", target="user_res_a1",
         query={"user_id": "user_res_a1"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), resident=(OK, H))),
    Case("GET", f"{API}/ledger/statement/lines", target="user_res_a1",
         query={"user_id": "user_res_a1"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), resident=(OK, H))),
    Case("POST", f"{API}/ledger/awards", ok=201, target="a1", idempotent=True,
         body=lambda ids, me: {"community_id": ids["a1"], "activity": "building_head",
                               "user_ids": [ids["user_res_a1"]], "reason": "楼栋长"},
         expected=expect(F, secretary=(OK, F))),
    Case("POST", f"{API}/ledger/gifts", ok=201, target="a1", idempotent=True,
         body=lambda ids, me: {"community_id": ids["a1"], "to_user_id": ids["user_res_a1b"],
                               "points": 1, "reason": "爱心传递"},
         expected=expect(F, resident=(OK, F))),
    Case("POST", f"{API}/ledger/adjustments", ok=201, target="a1", idempotent=True,
         body=lambda ids, me: {"community_id": ids["a1"], "user_id": ids["user_res_a1"],
                               "points": 5, "reason": "补录"},
         expected=expect(F, secretary=(OK, F))),
    Case("GET", f"{API}/ledger/transfers", target="t_adjust",
         query={"community_id": "a1", "per_page": 100}, expected=expect(F, **OVERSEE_LISTED)),
    Case("POST", f"{API}/ledger/transfers/{{id}}/reverse", {"id": "t_adjust"}, ok=201,
         idempotent=True, body=_reason, expected=REVERSE),
    Case("GET", f"{API}/ledger/accounts", target="acct_issuing_a1", query={"community_id": "a1"},
         expected=expect(F, **OVERSEE_LISTED)),
    # ---- importing lists (a dry run: the preview, nothing written) -------------------------
    Case("POST", f"{API}/import/demands", target="a1", query={"community_id": "a1",
                                                              "dry_run": 1},
         upload=lambda ids, me: {"file": (io.BytesIO("标题,类别,数量\n修路灯,维修维护,1\n"
                                                     .encode()), "demands.csv")},
         expected=expect(F, secretary=(OK, F), grid_worker=(OK, F))),
    Case("POST", f"{API}/import/resources", target="x", query={"unit_id": "x", "dry_run": 1},
         upload=lambda ids, me: {"file": (io.BytesIO("标题,类别,数量\n法律咨询,法律咨询,5\n"
                                                     .encode()), "resources.csv")},
         expected=expect(F, unit_admin=(OK, F))),
    # ---- the supermarket: a clerk works only in their own community's supermarket -------------
    Case("GET", f"{API}/market/items", variant="item on offer", target="item",
         query={"community_id": "a1"}, expected=expect(F, **STOCK_LISTED, resident=(L, F))),
    Case("GET", f"{API}/market/items", variant="withdrawn item", target="item_off",
         query={"community_id": "a1"}, expected=expect(F, **STOCK_LISTED, resident=(U, F))),
    Case("POST", f"{API}/market/items", ok=201, target="a1",
         body=lambda ids, me: {"community_id": ids["a1"], "name": "挂面", "category": "粮油",
                               "kind": "goods", "points_price": 5},
         expected=expect(F, secretary=(OK, F), clerk=(OK, F))),
    Case("GET", f"{API}/market/items/{{id}}", {"id": "item"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), clerk=(OK, H),
                         resident=(OK, H))),
    Case("PATCH", f"{API}/market/items/{{id}}", {"id": "item"},
         body=lambda ids, me: {"name": "大米", "category": "粮油", "kind": "goods",
                               "points_price": 10, "description": "东北大米 5 kg"},
         expected=ITEM_PATCH),
    Case("POST", f"{API}/market/items/{{id}}/donations", {"id": "item"}, ok=201,
         body=lambda ids, me: {"quantity": 2, "value_fen": 5000, "donor_name": "王阿姨"},
         expected=ITEM_DONATION),
    Case("POST", f"{API}/market/items/{{id}}/purchases", {"id": "item"}, ok=201, idempotent=True,
         body=lambda ids, me: {"quantity": 2, "cost_fen": 3000, "reason": "补货"},
         expected=ITEM_PURCHASE),
    Case("GET", f"{API}/market/stock-movements", target="move", query={"community_id": "a1"},
         expected=expect(F, **STOCK_LISTED)),
    Case("POST", f"{API}/market/stock-counts", ok=201, target="a1",
         body=lambda ids, me: {"community_id": ids["a1"], "reason": "月末盘点",
                               "lines": [{"item_id": ids["item"], "counted": 3}]},
         expected=expect(F, secretary=(OK, F), clerk=(OK, F))),
    Case("GET", f"{API}/market/orders", target="order",
         expected=expect(U, **{role: (L, U) for role in READ_ORDER})),
    Case("POST", f"{API}/market/orders", variant="own basket", ok=201, target="a1",
         idempotent=True,
         body=lambda ids, me: {"community_id": ids["a1"],
                               "lines": [{"item_id": ids["item"], "quantity": 1}]},
         expected=expect(F, resident=(OK, F))),
    Case("POST", f"{API}/market/orders", variant="at the counter", ok=201, target="a1",
         idempotent=True,
         body=lambda ids, me: {"community_id": ids["a1"], "user_id": ids["user_res_a1"],
                               "lines": [{"item_id": ids["item"], "quantity": 1}]},
         expected=expect(F, secretary=(OK, F), clerk=(OK, F))),
    Case("GET", f"{API}/market/orders/{{id}}", {"id": "order"},
         expected=expect(H, **READ_ORDER)),
    Case("GET", f"{API}/market/orders/{{id}}/qr.svg", {"id": "order"},
         expected=expect(H, **READ_ORDER)),
    Case("POST", f"{API}/market/orders/{{id}}/cancel", {"id": "order"}, body=_reason,
         idempotent=True,
         expected=expect(H, **{**READ_ORDER, "subdistrict_admin": (F, H)})),
    # The counter looks an order up by its code; to anyone but the counter a code is unknown.
    Case("POST", f"{API}/market/hand-over", target="order",
         body=lambda ids, me: {"code": ids["order_code"]},
         expected=expect(H, secretary=(OK, H), clerk=(OK, H))),
    Case("GET", f"{API}/market/fund", target="a1", query={"community_id": "a1"},
         expected=expect(F, **OVERSEE), check=_fund_of_a1),
    # ---- the inbox: everyone has their own, and sees or marks no one else's ----------------------
    Case("GET", f"{API}/notifications", target="note", query={"per_page": 100},
         expected=expect(U, resident=(L, U))),
    Case("GET", f"{API}/notifications/unread-count", expected=expect(OK)),
    Case("POST", f"{API}/notifications/{{id}}/read", {"id": "note"},
         expected=expect(H, resident=(OK, H))),
    Case("POST", f"{API}/notifications/read-all", expected=expect(OK)),
    Case("GET", f"{API}/me/notification-settings", expected=expect(OK)),
    Case("PATCH", f"{API}/me/notification-settings", body=lambda ids, me: {"daily_digest": True},
         expected=expect(OK)),
    # ---- daily figures (the scheduler's snapshots): like the dashboard's, by scope --------------
    Case("GET", f"{API}/figures/daily", variant="a community's", target="a1",
         query={"community_id": "a1"}, expected=expect(F, **OVERSEE)),
    Case("GET", f"{API}/figures/daily", variant="a unit's", target="x", query={"unit_id": "x"},
         expected=expect(F, subdistrict_admin=(OK, F), unit_admin=(OK, F))),
    Case("POST", f"{API}/market/fund/donations", ok=201, target="a1", idempotent=True,
         body=lambda ids, me: {"community_id": ids["a1"], "amount_fen": 10000,
                               "donor_type": "other", "donor_name": "爱心人士",
                               "reason": "捐款"},
         expected=expect(F, secretary=(OK, F))),
    # ---- volunteers: profiles, reports (报到) and the member map ---------------------------------
    # res_a1 volunteers in a1 and reported from unit x (pending); res_b1 volunteers in b1; staff
    # have no profile of their own. The secretary and the subdistrict admin see their communities'
    # volunteers, a unit's admin the people who reported from the unit, a resident herself.
    Case("GET", f"{API}/volunteers/me", expected=expect(H, resident=OK), check=_my_profile),
    Case("PUT", f"{API}/volunteers/me",
         body=lambda ids, me: {"skills": ["陪护", "理发"], "is_party_member": True},
         expected=expect(F, resident=OK), check=_my_profile),
    Case("GET", f"{API}/volunteers", target="vol",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), unit_admin=(L, U),
                         resident=(L, U))),
    Case("GET", f"{API}/volunteers/{{id}}", {"id": "vol"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H), unit_admin=(OK, H),
                         resident=(OK, H))),
    Case("POST", f"{API}/volunteers/{{id}}/report", {"id": "vol"},
         body=lambda ids, me: {"confirm": True},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), unit_admin=(F, H),
                         resident=(F, H))),
    # Counts only, for the secretary and the subdistrict's admin; the community is reference data.
    Case("GET", f"{API}/communities/{{id}}/volunteer-map", {"id": "a1"},
         expected=expect(F, subdistrict_admin=(OK, F), secretary=(OK, F)),
         check=_counts_without_names),
    # ---- service posts (服务岗位) and claims: posts are browsable by everyone signed in -----------
    Case("GET", f"{API}/posts", variant="open post", target="post", expected=expect(L)),
    Case("GET", f"{API}/posts", variant="full post, unfilled only", target="post_full",
         query={"unfilled": True}, expected=expect(U)),
    Case("POST", f"{API}/posts", ok=201, target="a1",
         body=lambda ids, me: {"community_id": ids["a1"], "kind": "patrol",
                               "category_id": ids["cat"], "title": "夜间巡逻", "headcount": 4},
         expected=expect(F, secretary=(OK, F))),
    Case("GET", f"{API}/posts/{{id}}", {"id": "post"}, expected=expect(OK)),
    Case("PATCH", f"{API}/posts/{{id}}", {"id": "post"},
         body=lambda ids, me: {"title": "改过的标题", "headcount": 4},
         expected=expect(F, secretary=(OK, F))),
    # A volunteer claims a place in her home community only.
    Case("POST", f"{API}/posts/{{id}}/claims", {"id": "post"}, ok=201,
         expected=expect(F, resident=(OK, F))),
    # res_a1's claims: pending on post_p, offered (from a proposal) on post_o, confirmed on post_c.
    Case("GET", f"{API}/post-claims", target="c_pending",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), resident=(L, U))),
    Case("POST", f"{API}/post-claims/{{id}}/decide", {"id": "c_pending"},
         body=lambda ids, me: {"confirm": True},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), resident=(F, H))),
    Case("POST", f"{API}/post-claims/{{id}}/answer", {"id": "c_offered"},
         body=lambda ids, me: {"accept": True},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(F, H), resident=(OK, H))),
    Case("POST", f"{API}/post-claims/{{id}}/withdraw", {"id": "c_confirmed"}, body=_reason,
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), resident=(OK, H))),
    # ---- activity sessions and sign-ups: sessions are browsable by everyone signed in ---------
    # sess (of post, organised by sec_a1): res_a1 and vol_1 signed up, vol_2 checked in, vol_3
    # checked out; sess_open has no sign-ups yet. Volunteers may sign up outside their community.
    Case("GET", f"{API}/sessions", target="sess", expected=expect(L)),
    Case("POST", f"{API}/sessions", variant="of a post", ok=201, target="post",
         body=_session_of("post_id"), expected=expect(F, secretary=(OK, F))),
    Case("POST", f"{API}/sessions", variant="of a demand", ok=201, target="d_lead",
         body=_session_of("demand_id"),
         expected=expect(H, **{**ON_A1_DEMAND, "secretary": (OK, H), "unit_admin": (OK, F)})),
    Case("GET", f"{API}/sessions/{{id}}", {"id": "sess"}, expected=expect(OK)),
    Case("POST", f"{API}/sessions/{{id}}/signups", {"id": "sess_open"}, variant="yourself",
         ok=201, body=lambda ids, me: {}, expected=expect(F, resident=OK), check=_signed_up),
    Case("POST", f"{API}/sessions/{{id}}/signups", {"id": "sess_open"},
         variant="a team, by its leader", ok=201, body=lambda ids, me: {"team_id": ids["team"]},
         expected=expect(F, resident=(OK, F)), check=_team_signed_up),
    Case("POST", f"{API}/sessions/{{id}}/check-in", {"id": "sess"}, variant="by the organiser",
         target="su_signed", body=lambda ids, me: {"user_id": ids["user_vol_1"]},
         expected=expect(F, secretary=(OK, F))),
    Case("POST", f"{API}/sessions/{{id}}/check-out", {"id": "sess"}, variant="by the organiser",
         target="su_in", body=lambda ids, me: {"user_id": ids["user_vol_2"]},
         expected=expect(F, secretary=(OK, F))),
    Case("POST", f"{API}/sessions/{{id}}/close", {"id": "sess"}, body=lambda ids, me: {},
         expected=expect(F, secretary=(OK, F))),
    Case("GET", f"{API}/signups", target="su_res",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U), resident=(L, U))),
    Case("POST", f"{API}/signups/{{id}}/withdraw", {"id": "su_res"},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H), resident=(OK, H))),
    Case("POST", f"{API}/signups/{{id}}/confirm", {"id": "su_out"}, body=lambda ids, me: {},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H))),
    # ---- volunteer teams (志愿服务队): browsable by everyone signed in ----------------------------
    # team: of a1, led by res_a1, with vol_1 and vol_2.
    Case("GET", f"{API}/teams", target="team", expected=expect(L)),
    Case("POST", f"{API}/teams", variant="of a community", ok=201, target="a1",
         body=lambda ids, me: {"name": "邻里守望队", "community_id": ids["a1"],
                               "leader_id": ids["user_vol_1"], "member_ids": [ids["user_vol_2"]]},
         expected=expect(F, secretary=(OK, F))),
    Case("POST", f"{API}/teams", variant="of a unit", ok=201, target="x",
         body=lambda ids, me: {"name": "党员先锋队", "unit_id": ids["x"],
                               "leader_id": ids["user_res_a1"]},
         expected=expect(F, unit_admin=(OK, F))),
    Case("GET", f"{API}/teams/{{id}}", {"id": "team"}, expected=expect(OK)),
    Case("POST", f"{API}/teams/{{id}}/members", {"id": "team"},
         body=lambda ids, me: {"add": [ids["user_vol_3"]]},
         expected=expect(F, secretary=(OK, F), resident=(OK, F))),
    Case("GET", f"{API}/teams/{{id}}/hours", {"id": "team"}, expected=expect(OK)),
    # ---- matching people: volunteer runs and proposals (the same rules as unit runs) ----------
    Case("POST", f"{API}/matching/volunteer-runs", variant="community", ok=201, target="a1",
         body=_a1_run, expected=expect(F, subdistrict_admin=(OK, F), secretary=(OK, F)),
         check=_run_done),
    Case("POST", f"{API}/matching/volunteer-runs", variant="subdistrict", ok=201, target="A",
         body=_subdistrict_run, expected=expect(F, subdistrict_admin=(OK, F)), check=_run_done),
    Case("GET", f"{API}/matching/volunteer-runs/{{id}}", {"id": "vrun"},
         expected=expect(H, subdistrict_admin=(OK, H), secretary=(OK, H))),
    Case("POST", f"{API}/matching/volunteer-runs/{{id}}/approve-all", {"id": "vrun"},
         target="vproposal", expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H))),
    Case("GET", f"{API}/matching/volunteer-proposals", target="vproposal",
         expected=expect(U, subdistrict_admin=(L, U), secretary=(L, U))),
    Case("POST", f"{API}/matching/volunteer-proposals/{{id}}/approve", {"id": "vproposal"},
         expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H)), check=_offered),
    Case("POST", f"{API}/matching/volunteer-proposals/{{id}}/reject", {"id": "vproposal"},
         body=_reason, expected=expect(H, subdistrict_admin=(F, H), secretary=(OK, H))),
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
    # Made after the match run, so the run's proposals stay as they were.
    ids["d_paused"] = a1_demand()
    service_levels.pause_demand(session, actor=sec, demand_id=ids["d_paused"], reason="等居民回复",
                                now=NOW)
    ids["wish"] = wishes.submit_wish(session, actor=w.actor("res_a1"), title="希望有人陪我去医院",
                                     now=NOW).id
    ids["note"] = notifications.notify(session, user_ids=[w.users["res_a1"]],
                                       kind="points_expiring", now=NOW,
                                       params={"points": 5, "expires_on": "2026-12-31"})[0].id
    session.commit()
    _build_lovebank(session, w, ids)
    _build_volunteers(session, w, ids)
    for name, user_id in w.users.items():
        ids[f"user_{name}"] = user_id
    ids["grant_res_a1"] = session.scalar(select(RoleGrant.id).where(
        RoleGrant.user_id == w.users["res_a1"], RoleGrant.role == "resident"))
    headers = {name: w.headers(name) for name in w.users}
    return ids, headers


def _build_lovebank(session: Session, w, ids: dict) -> None:
    """Rules and points in a1, a second resident to give to, goods, an order and a fund."""
    sec = w.actor("sec_a1")
    w.users["res_a1b"] = make_user(session, "res_a1b",
                                   {"role": "resident", "community_id": w["a1"]}).id
    lovebank.update_settings(session, actor=sec, community_id=w["a1"],
                             changes={"allow_gifts": True, "fund_match_percent": 20}, now=NOW)
    lovebank.publish_rules(session, actor=sec, community_id=w["a1"], document=RULES,
                           effective_from=NOW.date(), now=NOW)
    lovebank.award_points(session, actor=sec, community_id=w["a1"], activity="building_head",
                          user_ids=[w.users["res_a1"]], reason="楼栋长",
                          idempotency_key="matrix-award", day=NOW.date(), now=NOW)
    item = market.create_item(session, actor=sec, community_id=w["a1"],
                              data={"name": "大米", "category": "粮油", "kind": "goods",
                                    "points_price": 10, "value_fen": 2500}, now=NOW)
    ids["item"] = item.id
    ids["move"] = market.receive_donation(session, actor=sec, item_id=item.id, quantity=5,
                                          value_fen=12500, donor_name="爱心居民", now=NOW).id
    ids["item_off"] = market.create_item(session, actor=sec, community_id=w["a1"],
                                         data={"name": "旧毛巾", "category": "日用",
                                               "kind": "goods", "points_price": 3,
                                               "is_active": False}, now=NOW).id
    # Placed at the real current time, so the code can still be collected.
    order = market.place_order(session, actor=w.actor("res_a1"), community_id=w["a1"],
                               lines=[{"item_id": item.id, "quantity": 1}],
                               idempotency_key="matrix-order")
    ids["order"], ids["order_code"] = order.id, order.code
    # The order spent the award's lot; this adjustment's lot stays whole, so it can be reversed.
    ids["t_adjust"] = lovebank.adjust_points(session, actor=sec, community_id=w["a1"],
                                             user_id=w.users["res_a1"], points=50, reason="补录",
                                             idempotency_key="matrix-adjust", now=NOW).id
    market.donate_money(session, actor=sec, community_id=w["a1"], amount_fen=100_000,
                        donor_type="unit", unit_id=w["x"], reason="共建资金",
                        idempotency_key="matrix-fund", now=NOW)
    ids["acct_issuing_a1"] = session.scalar(select(LedgerAccount.id).where(
        LedgerAccount.community_id == w["a1"], LedgerAccount.kind == "issuing"))


def _build_volunteers(session: Session, w, ids: dict) -> None:
    """Volunteers of a1 with posts, claims, sessions and sign-ups in every state, a team led by
    res_a1, and a volunteer run over a1 with an open proposal for vol_1."""
    a1, sec = w["a1"], w.actor("sec_a1")
    for name in ("vol_1", "vol_2", "vol_3"):
        w.users[name] = make_user(session, name, {"role": "resident", "community_id": a1,
                                                  "grid_id": w["g_a1"]}).id
    ids["vol"] = volunteers.save_profile(session, actor=w.actor("res_a1"), data={
        "skills": ["陪护"], "profession": "doctor", "is_party_member": True,
        "contact_consent": True, "unit_id": w["x"]}, now=NOW).id
    for name in ("res_b1", "vol_1", "vol_2", "vol_3"):
        volunteers.save_profile(session, actor=w.actor(name), data={"skills": ["陪护"]}, now=NOW)

    def post(title: str, headcount: int = 3) -> int:
        return volunteers.create_post(session, actor=sec, community_id=a1, data={
            "kind": "elderly_visiting", "category_id": ids["cat"], "title": title,
            "headcount": headcount}, now=NOW).id

    res_a1 = w.actor("res_a1")
    ids["post"] = post("探访独居老人")  # res_a1 holds no place here
    ids["post_p"], ids["post_o"], ids["post_c"] = post("政策宣讲"), post("文明劝导"), post("环境卫生")
    ids["c_pending"] = volunteers.claim_post(session, actor=res_a1, post_id=ids["post_p"],
                                             now=NOW).id
    ids["c_offered"] = volunteers.claim_post(session, actor=SYSTEM, post_id=ids["post_o"],
                                             origin="proposal", user_id=w.users["res_a1"],
                                             now=NOW).id
    ids["c_confirmed"] = volunteers.claim_post(session, actor=res_a1, post_id=ids["post_c"],
                                               now=NOW).id
    volunteers.decide_claim(session, actor=sec, claim_id=ids["c_confirmed"], confirm=True,
                            now=NOW)
    ids["post_full"] = post("楼栋长", headcount=1)
    volunteers.claim_post(session, actor=w.actor("vol_3"), post_id=ids["post_full"], now=NOW)

    starts = _session_starts()
    for key, title in (("sess", "周六探访"), ("sess_open", "周日探访")):
        ids[key] = activities.create_session(session, actor=sec, data={
            "post_id": ids["post"], "title": title, "place": "社区活动室", "starts_at": starts,
            "ends_at": starts + timedelta(hours=2), "headcount": 10}).id
    for key, name in (("su_res", "res_a1"), ("su_signed", "vol_1"), ("su_in", "vol_2"),
                      ("su_out", "vol_3")):
        [signup] = activities.sign_up(session, actor=w.actor(name), session_id=ids["sess"])
        ids[key] = signup.id
    for name in ("vol_2", "vol_3"):
        activities.check_in(session, actor=sec, session_id=ids["sess"], user_id=w.users[name])
    activities.check_out(session, actor=sec, session_id=ids["sess"], user_id=w.users["vol_3"])
    ids["team"] = volunteers.create_team(
        session, actor=sec, name="银发服务队", leader_id=w.users["res_a1"],
        member_ids=[w.users["vol_1"], w.users["vol_2"]], community_id=a1, now=NOW).id

    run = people_matching.create_people_run(session, actor=sec, community_id=a1,
                                            params={"time_limit": 1}, now=NOW)
    assert people_matching.execute_people_run(session, run_id=run.id, now=NOW).status == "done"
    ids["vrun"] = run.id
    ids["vproposal"] = session.scalar(select(VolunteerProposal.id).where(
        VolunteerProposal.run_id == run.id, VolunteerProposal.user_id == w.users["vol_1"]))
    assert ids["vproposal"] is not None


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
    ids = snap.ids
    if missing and "id" not in case.params and case.target_key and \
            not any(isinstance(v, str) for v in case.query.values()):
        ids = {**ids, case.target_key: MISSING_ID}  # the object is named in the body
    body = case.body(ids, username) if case.body else None
    if case.idempotent:
        headers = {**headers, "Idempotency-Key": f"matrix-{uuid.uuid4().hex}"}
    if case.upload:
        return client.open(case.path(snap.ids, missing=missing), method=case.method,
                           headers=headers, data=case.upload(ids, username),
                           query_string=case.query_string(snap.ids, missing=missing))
    return client.open(case.path(snap.ids, missing=missing), method=case.method,
                       headers=headers, json=body,
                       query_string=case.query_string(snap.ids, missing=missing))


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
