"""The secretary's pages: the work queue (each item's action one click away) and match runs with
proposals explained in plain words."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from web.api.common import db
from web.domain.actor import Actor
from web.errors import LinliError
from web.models import DemandItem, ReportVolunteer, Unit
from web.pages.ui import confirm, home, local_target, menu
from web.pages.views import bp, category_options, community_of, error_text, signed_in
from web.services import assignments, demands, matching, reports, service_levels, wishes
from web.services.base import utcnow

WHY = {
    "serve": _l("serves the item at all"), "skill": _l("brings the skills asked for"),
    "distance": _l("close by"), "pairing": _l("paired (结对) with this community or grid"),
    "urgency": _l("the item is urgent"), "waiting": _l("the item has waited"),
    "rating": _l("good ratings for past work"),
    "fairness": _l("already carries much work (spread it)"),
}
OPEN_STATES = "open,partly_covered,covered,in_progress,reported"
# The service-level lights and escalation levels (微循环 → 小循环 → 大循环), in words.
SLA_NAMES = {"red": _l("overdue"), "amber": _l("due soon"), "green": _l("on time")}
ESCALATION_NAMES = {0: _l("at the grid"), 1: _l("escalated to the community"),
                    2: _l("escalated to the subdistrict")}

home("secretary", "pages.secretary_home")
menu("secretary", "pages.secretary_home", _l("Work queue"))


def rejecting() -> bool:
    return request.form.get("decision") not in ("approve", "verify")


def rag_of(demand) -> str:
    """The item's service-level light (red, amber, green) now; '' when no clock runs (a draft,
    work verified or closed, a cancelled item)."""
    return service_levels.sla_state(demand, utcnow()) or ""


def _rag(demand, now) -> str:
    """The item's service-level light at `now`: red when a due time (to be accepted, to be
    closed) has passed, amber when it is near, else green — also when no clock runs."""
    return service_levels.sla_state(demand, now) or "green"


QUEUE_ROWS = 10  # rows a queue section shows; each links to its full list


@bp.get("/secretary")
@signed_in
def secretary_home(actor: Actor):
    """The work queue: claims, proposals, wishes, reports, and items overdue or nearly so —
    the first few of each, how many there are in all, and a link to the full list."""
    community_id = community_of(actor, "secretary")
    if community_id is None:
        return redirect(url_for("pages.home"))
    session, mine, now = db(), {"community_id": community_id}, utcnow()
    due = demands.list_demands(session, actor=actor, filters={**mine, "status": OPEN_STATES},
                               per_page=QUEUE_ROWS, sort="next_due", now=now)
    queue = {
        "claims": assignments.list_assignments(session, actor=actor, filters={
            "status": "pending", **mine}, per_page=QUEUE_ROWS),
        "proposals": matching.list_proposals(session, actor=actor, filters={
            "status": "proposed", **mine}, per_page=QUEUE_ROWS),
        "wishes": wishes.list_wishes(session, actor=actor, filters={
            "status": "submitted", **mine}, per_page=QUEUE_ROWS),
        "reports": reports.list_reports(session, actor=actor, filters={
            "status": "submitted"}, per_page=QUEUE_ROWS),
        "due": [(d, _rag(d, now), service_levels.next_due(d)) for d in due.items
                if service_levels.next_due(d) is not None],
        "due_total": due.total,
    }
    return render_template("pages/secretary.html", q=queue, why=WHY,
                           about=report_details(queue["reports"].items),
                           escalation_names=ESCALATION_NAMES, open_states=OPEN_STATES,
                           categories=category_options())


def report_details(found: list) -> dict[int, dict]:
    """What a report's row shows besides the report: its item's title, its unit's name, its
    volunteers and their minutes — three queries for a whole page, none per row."""
    ids = [r.id for r in found] or [0]
    titles = dict(db().execute(select(DemandItem.id, DemandItem.title).where(
        DemandItem.id.in_({r.demand_id for r in found} or {0}))).all())
    names = dict(db().execute(select(Unit.id, Unit.name).where(
        Unit.id.in_({r.unit_id for r in found} or {0}))).all())
    people = {report_id: (n, minutes) for report_id, n, minutes in db().execute(
        select(ReportVolunteer.report_id, func.count(), func.sum(ReportVolunteer.minutes))
        .where(ReportVolunteer.report_id.in_(ids)).group_by(ReportVolunteer.report_id))}
    return {r.id: {"title": titles.get(r.demand_id, ""), "unit": names.get(r.unit_id, ""),
                   "volunteers": people.get(r.id, (0, 0))[0],
                   "minutes": people.get(r.id, (0, 0))[1] or 0} for r in found}


def _act(call, done: str):
    try:
        call()
        flash(done, "success")
    except LinliError as exc:
        flash(error_text(exc), "danger")
    return redirect(local_target(request.form.get("next"), url_for("pages.secretary_home")))


@bp.post("/secretary/claims/<int:assignment_id>")
@signed_in
@confirm(_l("Reject? The unit is told your reason."), when=rejecting)
def decide_claim(actor: Actor, assignment_id: int):
    if request.form.get("decision") == "approve":
        return _act(lambda: assignments.approve_claim(db(), actor=actor,
                                                      assignment_id=assignment_id),
                    _("Claim approved."))
    return _act(lambda: assignments.reject_claim(db(), actor=actor, assignment_id=assignment_id,
                                                 reason=request.form.get("reason")),
                _("Claim rejected."))


@bp.post("/secretary/proposals/<int:proposal_id>")
@signed_in
@confirm(_l("Reject? The unit is told your reason."), when=rejecting)
def decide_proposal(actor: Actor, proposal_id: int):
    if request.form.get("decision") == "approve":
        return _act(lambda: matching.approve_proposal(db(), actor=actor,
                                                      proposal_id=proposal_id),
                    _("Proposal approved: the unit has been dispatched."))
    return _act(lambda: matching.reject_proposal(db(), actor=actor, proposal_id=proposal_id,
                                                 reason=request.form.get("reason")),
                _("Proposal rejected."))


@bp.post("/secretary/reports/<int:report_id>")
@signed_in
@confirm(_l("Verify the report? The volunteers' points are credited at once."),
         when=lambda: request.form.get("decision") == "verify")
@confirm(_l("Return the report? The unit is told your reason."), when=rejecting)
def decide_report(actor: Actor, report_id: int):
    if request.form.get("decision") == "verify":
        return _act(lambda: reports.verify_report(db(), actor=actor, report_id=report_id),
                    _("Report verified; the volunteers' points are credited."))
    return _act(lambda: reports.return_report(db(), actor=actor, report_id=report_id,
                                              reason=request.form.get("reason")),
                _("Report returned for correction."))


@bp.post("/secretary/wishes/<int:wish_id>/decline")
@signed_in
@confirm(_l("Decline the wish? The resident is told your reason."))
def decline_wish(actor: Actor, wish_id: int):
    return _act(lambda: wishes.decline_wish(db(), actor=actor, wish_id=wish_id,
                                            reason=request.form.get("reason")),
                _("Wish declined."))


@bp.post("/secretary/wishes/<int:wish_id>/accept")
@signed_in
def accept_wish(actor: Actor, wish_id: int):
    """Accept a micro-wish: it becomes a published item on the demand list."""
    category = request.form.get("category_id", type=int)
    return _act(lambda: wishes.accept_wish(db(), actor=actor, wish_id=wish_id,
                                           demand={"category_id": category} if category else {},
                                           publish=True),
                _("Wish accepted: it is on the demand list now."))


@bp.post("/secretary/match")
@signed_in
def run_match(actor: Actor):
    """Start a match run for the secretary's community; it finishes within the request."""
    community_id = community_of(actor, "secretary")
    if community_id is None:
        abort(403)
    try:
        run = matching.create_match_run(db(), actor=actor, community_id=community_id)
        run = matching.execute_match_run(db(), run_id=run.id)
        count = (run.summary or {}).get("pairs", 0)
        flash(_("Match run done: %(n)s proposals.", n=count), "success")
    except LinliError as exc:
        flash(error_text(exc), "danger")
    return redirect(url_for("pages.secretary_home"))


@bp.post("/secretary/match/approve-all")
@signed_in
@confirm(_l("Approve all proposals? Each approved proposal dispatches its unit."))
def approve_all(actor: Actor):
    community_id = community_of(actor, "secretary")
    if community_id is None:
        abort(403)
    ids, page = [], 1
    while True:  # every open proposal, a hundred at a time, read before any is approved
        found = matching.list_proposals(db(), actor=actor, filters={
            "status": "proposed", "community_id": community_id}, page=page, per_page=100)
        ids += [p.id for p in found.items]
        if page * found.per_page >= found.total:
            break
        page += 1
    done = 0
    for proposal_id in ids:
        try:
            matching.approve_proposal(db(), actor=actor, proposal_id=proposal_id)
            done += 1
        except LinliError:
            db().rollback()
    flash(_("%(done)s of %(all)s proposals approved; the rest had changed.", done=done,
            all=len(ids)), "success")
    return redirect(url_for("pages.secretary_home"))
