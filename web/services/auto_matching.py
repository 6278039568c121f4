"""Auto-proposals: the scheduler's periodic match run for each community that turns it on.

A community with `auto_propose` gets a run whenever it has open items published since its last
automatic run finished (or it never had one). The run is an ordinary match run asked by the
system (`created_by` empty) and marked `"automatic": true` in its params, with an audit event
saying so; it only proposes — the secretary still approves or rejects every pair.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from web.domain.actor import SYSTEM
from web.domain.states import COVERAGE_STATES, MatchRunStatus
from web.errors import LinliError
from web.models import AuditEvent, Community, DemandItem, MatchProposal, MatchRun
from web.services import audit, matching
from web.services.base import write

log = logging.getLogger(__name__)

# Seconds each automatic run may spend solving: bounded, so one community never holds up the
# scheduler's other jobs for long.
AUTO_TIME_LIMIT = 10.0
AUTO_PARAMS = {"mode": "auto", "time_limit": AUTO_TIME_LIMIT, "seed": 0}
AUTOMATIC = "automatic"  # the audit action, and the key in the run's params


def propose_for_new_items(session: Session, *, now: datetime) -> dict:
    """Run a proposing match run for every auto-proposing community with newly published open
    items; never approves. Safe to run twice: with nothing new, it does nothing."""
    runs, failed = [], []
    for community_id in communities_due(session):
        try:
            runs.append(_propose(session, community_id, now))
        except LinliError as exc:  # one community's trouble does not stop the others
            session.rollback()
            log.warning("auto-proposals for community %s failed: %s", community_id, exc.message)
            failed.append({"community_id": community_id, "error": exc.message})
    return {"runs": runs, "failed": failed}


def communities_due(session: Session) -> list[int]:
    """Communities that propose on their own and have open items published since their last
    finished automatic run (any open item if they never had one)."""
    due = []
    for community_id in session.scalars(select(Community.id).where(
            Community.auto_propose.is_(True)).order_by(Community.id)):
        since = last_automatic_run(session, community_id)
        conds = [DemandItem.community_id == community_id,
                 DemandItem.status.in_([str(s) for s in COVERAGE_STATES]),
                 DemandItem.quantity_open > 0]
        if since is not None:
            conds.append(DemandItem.published_at > since)
        if session.scalar(select(exists().where(*conds))):
            due.append(community_id)
    session.rollback()  # end the read before the runs
    return due


def last_automatic_run(session: Session, community_id: int) -> datetime | None:
    """When the community's last automatic run that finished was asked for (None: never)."""
    return session.scalar(
        select(func.max(AuditEvent.created_at))
        .join(MatchRun, MatchRun.id == AuditEvent.entity_id)
        .where(AuditEvent.entity_type == "match_runs", AuditEvent.action == AUTOMATIC,
               MatchRun.community_id == community_id,
               MatchRun.status == str(MatchRunStatus.DONE)))


def _propose(session: Session, community_id: int, now: datetime) -> dict:
    run = matching.create_match_run(session, actor=SYSTEM, community_id=community_id,
                                    params=AUTO_PARAMS, now=now)
    mark_automatic(session, run_id=run.id, now=now)
    if not matching.runs_inline(session, run):
        log.info("auto-proposals: community %s has a large run (%s)", community_id, run.id)
    run = matching.execute_match_run(session, run_id=run.id, now=now)
    outcome = {"community_id": community_id, "run_id": run.id, "status": run.status,
               "proposals": session.scalar(select(func.count()).select_from(MatchProposal)
                                           .where(MatchProposal.run_id == run.id)),
               "error": run.error}
    session.rollback()  # end the read
    log.info("auto-proposals: %s", outcome)
    return outcome


@write
def mark_automatic(session: Session, *, run_id: int, now: datetime) -> None:
    """Mark a queued run as the scheduler's own (in its params and in the audit trail)."""
    run = session.get(MatchRun, run_id)
    run.params = {**run.params, AUTOMATIC: True}
    audit.record(session, entity_type="match_runs", entity_id=run.id, action=AUTOMATIC,
                 actor=SYSTEM, now=now, reason="auto-proposals for new open items")
