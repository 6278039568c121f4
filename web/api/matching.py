"""Matching: runs of the optimiser, their proposals, and the secretary's decisions on them."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from matcher.problem import MODES
from web.api.common import PageArgs, ReasonIn, current_actor, db, page_of, page_out, split_args
from web.services import matching as service
from web.services import people_matching as people

PREFIX = "/matching"
blp = Blueprint("matching", __name__,
                description="Optimal pairing: match runs and the proposals secretaries decide on")

TERM_WORDS = {
    "serve": "serving the demand at all",
    "skill": "brings the required skills",
    "distance": "close to the demand",
    "pairing": "paired (结对) with the community or grid",
    "urgency": "the demand is urgent",
    "waiting": "the demand has waited",
    "rating": "the unit's past ratings",
    "fairness": "the unit already carries work (spread it)",
}
# The same terms, said of a volunteer and a service post.
PEOPLE_WORDS = {**TERM_WORDS, "serve": "filling a place of the post",
                "distance": "lives close to the post",
                "fairness": "already holds posts (spread the work)"}


class PairIn(Schema):
    demand_id = fields.Integer(required=True)
    resource_id = fields.Integer(required=True)


class RunIn(Schema):
    community_id = fields.Integer(allow_none=True, load_default=None)
    subdistrict_id = fields.Integer(allow_none=True, load_default=None)
    mode = fields.String(load_default="auto", validate=validate.OneOf(MODES))
    time_limit = fields.Float(load_default=service.DEFAULT_TIME_LIMIT,
                              validate=validate.Range(min=0.1, max=service.MAX_TIME_LIMIT))
    seed = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**31 - 1))
    weights = fields.Dict(keys=fields.String(), values=fields.Integer(), load_default=dict)
    pinned = fields.List(fields.Nested(PairIn), load_default=list)
    forbidden = fields.List(fields.Nested(PairIn), load_default=list)
    include_rejected = fields.Boolean(load_default=False,
                                      metadata={"description": "propose rejected pairs again"})


class RunOut(Schema):
    id = fields.Integer()
    community_id = fields.Integer(allow_none=True)
    subdistrict_id = fields.Integer(allow_none=True)
    mode = fields.String()
    subject = fields.String(metadata={"description": "units (to demands) or volunteers "
                                                     "(to service posts)"})
    status = fields.String(metadata={"description": "queued, running, done or failed"})
    progress = fields.Integer(metadata={"description": "0–100"})
    params = fields.Dict()
    summary = fields.Dict(allow_none=True, metadata={
        "description": "status, method, objective, bound, gap, greedy_objective, counts, timings"})
    error = fields.String(allow_none=True)
    created_by = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


class RunArgs(PageArgs):
    community_id = fields.Integer()
    subdistrict_id = fields.Integer()
    status = fields.String()


class WhyOut(Schema):
    term = fields.String()
    points = fields.Integer()
    text = fields.String()


class ProposalOut(Schema):
    id = fields.Integer()
    run_id = fields.Integer()
    demand_id = fields.Integer()
    demand_title = fields.String()
    resource_id = fields.Integer()
    resource_title = fields.String()
    unit_id = fields.Integer()
    unit_name = fields.String()
    community_id = fields.Integer()
    quantity = fields.Integer()
    role = fields.String(metadata={"description": "lead or helper"})
    score = fields.Integer()
    terms = fields.Dict(keys=fields.String(), values=fields.Integer())
    why = fields.List(fields.Nested(WhyOut), metadata={"description": "the score in words"})
    status = fields.String()
    stale = fields.String(allow_none=True, metadata={
        "description": "why an open proposal no longer holds (null while it does)"})
    reason = fields.String(allow_none=True)
    assignment_id = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class ProposalArgs(PageArgs):
    run_id = fields.Integer()
    demand_id = fields.Integer()
    unit_id = fields.Integer()
    community_id = fields.Integer()
    status = fields.String()
    q = fields.String(validate=validate.Length(max=100),
                      metadata={"description": "words in the item's title or the unit's name"})


class PreviewProposalOut(Schema):
    demand = fields.Integer(data_key="demand_id")
    resource = fields.Integer(data_key="resource_id")
    unit = fields.Integer(data_key="unit_id")
    quantity = fields.Integer()
    role = fields.String()
    score = fields.Integer()
    terms = fields.Dict(keys=fields.String(), values=fields.Integer())


class PreviewOut(Schema):
    summary = fields.Dict()
    proposals = fields.List(fields.Nested(PreviewProposalOut))


class OutcomeOut(Schema):
    id = fields.Integer()
    status = fields.String()
    assignment_id = fields.Integer(allow_none=True)
    code = fields.String()
    message = fields.String()


class ApproveAllOut(Schema):
    outcomes = fields.List(fields.Nested(OutcomeOut))


def present(proposal, stale: str | None = None) -> dict:
    """A proposal with its titles and its score in words."""
    return {**{c: getattr(proposal, c) for c in (
        "id", "run_id", "demand_id", "resource_id", "unit_id", "community_id", "quantity", "role",
        "score", "terms", "status", "reason", "assignment_id", "decided_at", "created_at")},
        "demand_title": proposal.demand.title, "resource_title": proposal.resource.title,
        "unit_name": proposal.unit.name, "stale": stale,
        "why": [{"term": t, "points": p, "text": TERM_WORDS.get(t, t)}
                for t, p in sorted(proposal.terms.items(), key=lambda kv: -abs(kv[1])) if p]}


def _split(data: dict) -> tuple[dict, dict]:
    scope = {"community_id": data.pop("community_id"), "subdistrict_id": data.pop("subdistrict_id")}
    return scope, data


@blp.route("/runs")
class Runs(MethodView):
    @blp.arguments(RunArgs, location="query")
    @blp.response(200, page_of(RunOut, "MatchRunPage"))
    def get(self, args):
        """Match runs of your community or subdistrict, newest first."""
        filters, page, per_page = split_args(args)
        return page_out(service.list_match_runs(db(), actor=current_actor(), filters=filters,
                                                page=page, per_page=per_page))

    @blp.arguments(RunIn)
    @blp.response(201, RunOut)
    @blp.alt_response(202, schema=RunOut, description="a large run, queued: poll it")
    def post(self, data):
        """Start a match run for a community (its secretary) or a subdistrict (its admin).

        Small runs finish within the request (201, status done); larger ones are queued (202)
        and run in the background: poll GET /matching/runs/{id} for its progress.
        """
        session, actor = db(), current_actor()
        scope, params = _split(data)
        run = service.create_match_run(session, actor=actor, params=params, **scope)
        if service.runs_inline(session, run):
            return service.execute_match_run(session, run_id=run.id), 201
        current_app.extensions["linli"].run_in_background(run.id)
        return run, 202


@blp.route("/runs/preview")
class RunPreview(MethodView):
    @blp.arguments(RunIn)
    @blp.response(200, PreviewOut)
    def post(self, data):
        """A dry run: what a match run would propose, and its figures; nothing is written."""
        scope, params = _split(data)
        return service.preview_match(db(), actor=current_actor(), params=params, **scope)


@blp.route("/runs/<int:run_id>")
class RunView(MethodView):
    @blp.response(200, RunOut)
    def get(self, run_id):
        """One match run: its status, progress and figures."""
        return service.get_match_run(db(), actor=current_actor(), run_id=run_id)


@blp.route("/runs/<int:run_id>/approve-all")
class RunApproveAll(MethodView):
    @blp.response(200, ApproveAllOut)
    def post(self, run_id):
        """Approve every open proposal of the run; stale ones are marked and reported."""
        return {"outcomes": service.approve_run(db(), actor=current_actor(), run_id=run_id)}


@blp.route("/proposals")
class Proposals(MethodView):
    @blp.arguments(ProposalArgs, location="query")
    @blp.response(200, page_of(ProposalOut, "ProposalPage"))
    def get(self, args):
        """Proposals in your communities, each with its score broken down."""
        filters, page, per_page = split_args(args)
        result = service.list_proposals(db(), actor=current_actor(), filters=filters,
                                        page=page, per_page=per_page)
        result.items = [present(p, service.stale_reason(p)) for p in result.items]
        return page_out(result)


@blp.route("/proposals/<int:proposal_id>")
class ProposalView(MethodView):
    @blp.response(200, ProposalOut)
    def get(self, proposal_id):
        """One proposal, with why this unit."""
        proposal = service.get_proposal(db(), actor=current_actor(), proposal_id=proposal_id)
        return present(proposal, service.stale_reason(proposal))


@blp.route("/proposals/<int:proposal_id>/approve")
class ProposalApprove(MethodView):
    @blp.response(200, ProposalOut)
    def post(self, proposal_id):
        """Approve: the proposal becomes a dispatch to the unit (409 stale_proposal if the
        demand or resource changed since the run)."""
        return present(service.approve_proposal(db(), actor=current_actor(),
                                                proposal_id=proposal_id))


@blp.route("/proposals/<int:proposal_id>/reject")
class ProposalReject(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, ProposalOut)
    def post(self, data, proposal_id):
        """Reject with a reason; the pair is not proposed again unless a run asks for it."""
        return present(service.reject_proposal(db(), actor=current_actor(),
                                               proposal_id=proposal_id, **data))


# ---- volunteers to service posts (same engine, same flow) -------------------------------------

class PeopleRunIn(Schema):
    community_id = fields.Integer(allow_none=True, load_default=None)
    subdistrict_id = fields.Integer(allow_none=True, load_default=None)
    time_limit = fields.Float(load_default=service.DEFAULT_TIME_LIMIT,
                              validate=validate.Range(min=0.1, max=service.MAX_TIME_LIMIT))
    seed = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**31 - 1))
    weights = fields.Dict(keys=fields.String(), values=fields.Integer(), load_default=dict)
    include_rejected = fields.Boolean(load_default=False)


class PeopleProposalOut(Schema):
    id = fields.Integer()
    run_id = fields.Integer()
    post_id = fields.Integer()
    user_id = fields.Integer()
    community_id = fields.Integer()
    score = fields.Integer()
    terms = fields.Dict(keys=fields.String(), values=fields.Integer())
    why = fields.Function(lambda p: [
        {"term": t, "points": v, "text": PEOPLE_WORDS.get(t, t)}
        for t, v in sorted(p.terms.items(), key=lambda kv: -abs(kv[1])) if v])
    status = fields.String()
    claim_id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class PeopleProposalArgs(PageArgs):
    run_id = fields.Integer()
    post_id = fields.Integer()
    user_id = fields.Integer()
    community_id = fields.Integer()
    status = fields.String()


@blp.route("/volunteer-runs")
class PeopleRuns(MethodView):
    @blp.arguments(PeopleRunIn)
    @blp.response(201, RunOut)
    def post(self, data):
        """Propose volunteers for the open service posts of a community or subdistrict
        (runs within the request)."""
        scope, params = _split(data)
        run = people.create_people_run(db(), actor=current_actor(), params=params, **scope)
        return people.execute_people_run(db(), run_id=run.id)


@blp.route("/volunteer-runs/<int:run_id>")
class PeopleRunView(MethodView):
    @blp.response(200, RunOut)
    def get(self, run_id):
        """One volunteer run with its figures."""
        return people.get_people_run(db(), actor=current_actor(), run_id=run_id)


@blp.route("/volunteer-runs/<int:run_id>/approve-all")
class PeopleApproveAll(MethodView):
    @blp.response(200, Schema.from_dict({"outcomes": fields.List(fields.Dict())},
                                        name="PeopleApproveAllOut"))
    def post(self, run_id):
        """Approve every open proposal of the run, each on its own (stale ones are reported)."""
        return {"outcomes": people.approve_people_run(db(), actor=current_actor(),
                                                      run_id=run_id)}


@blp.route("/volunteer-proposals")
class PeopleProposals(MethodView):
    @blp.arguments(PeopleProposalArgs, location="query")
    @blp.response(200, page_of(PeopleProposalOut, "VolunteerProposalPage"))
    def get(self, args):
        """Volunteers proposed for posts, with the score in words."""
        filters, page, per_page = split_args(args)
        return page_out(people.list_people_proposals(db(), actor=current_actor(),
                                                     filters=filters, page=page,
                                                     per_page=per_page))


@blp.route("/volunteer-proposals/<int:proposal_id>/approve")
class PeopleApprove(MethodView):
    @blp.response(200, PeopleProposalOut)
    def post(self, proposal_id):
        """Approve: the volunteer is offered the place (409 stale_proposal if it changed)."""
        return people.approve_people_proposal(db(), actor=current_actor(),
                                              proposal_id=proposal_id)


@blp.route("/volunteer-proposals/<int:proposal_id>/reject")
class PeopleReject(MethodView):
    @blp.arguments(ReasonIn)
    @blp.response(200, PeopleProposalOut)
    def post(self, data, proposal_id):
        """Reject with a reason: the pair is not proposed again unless asked."""
        return people.reject_people_proposal(db(), actor=current_actor(),
                                             proposal_id=proposal_id, **data)
