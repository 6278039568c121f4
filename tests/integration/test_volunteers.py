"""Volunteers end to end through the services: profiles and reports, posts and their headcount,
sessions with a waiting list, check-in by code, confirmed hours credited once, teams."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import NOW
from tests.factories import category_id, make_user
from tests.integration.lovebank_helpers import publish
from web.errors import ConflictError, NotFoundError, ValidationError
from web.models import LedgerTransfer, ServiceRecord
from web.services import activities, lovebank, volunteers

pytestmark = pytest.mark.db


def volunteer(world, name: str, **data):
    if name not in world.users:
        user = make_user(world.session, name, {"role": "resident", "community_id": world["a1"],
                                               "grid_id": world["g_a1"]})
        world.users[name] = user.id
    return volunteers.save_profile(world.session, actor=world.actor(name),
                                   data={"skills": ["陪护"], **data}, now=NOW)


def post(world, headcount: int = 2):
    return volunteers.create_post(world.session, actor=world.actor("sec_a1"),
                                  community_id=world["a1"],
                                  data={"kind": "elderly_visiting", "title": "探访独居老人",
                                        "category_id": category_id(world.session),
                                        "headcount": headcount}, now=NOW)


def activity(world, post_id: int, headcount: int = 1):
    return activities.create_session(world.session, actor=world.actor("sec_a1"), data={
        "post_id": post_id, "title": "周六探访", "place": "社区活动室",
        "starts_at": NOW + timedelta(hours=1), "ends_at": NOW + timedelta(hours=3),
        "headcount": headcount}, now=NOW)


def test_a_resident_becomes_a_volunteer_and_a_unit_employee_reports_for_the_secretary_to_confirm(world):
    profile = volunteer(world, "res_a1", unit_id=world["x"], is_party_member=True,
                        profession="doctor")
    assert profile.community_id == world["a1"] and profile.report_status == "pending"
    seen = volunteers.list_profiles(world.session, actor=world.actor("unit_x"), filters={})
    assert [p.id for p in seen.items] == [profile.id]
    with pytest.raises(NotFoundError):  # another community's volunteer is not hers to see
        volunteers.decide_report(world.session, actor=world.actor("sec_b1"),
                                 profile_id=profile.id, confirm=True)
    done = volunteers.decide_report(world.session, actor=world.actor("sec_a1"),
                                    profile_id=profile.id, confirm=True)
    assert done.report_status == "confirmed"
    counts = volunteers.member_map(world.session, actor=world.actor("sec_a1"),
                                   community_id=world["a1"])
    assert counts["volunteers"] == 1 and counts["party_members"] == 1
    assert counts["by_skill"] == {"陪护": 1} and counts["reported"] == {"confirmed": 1}


def test_a_post_never_takes_more_people_than_its_headcount(world):
    p = post(world, headcount=1)
    volunteer(world, "res_a1")
    volunteer(world, "vol_2")
    claim = volunteers.claim_post(world.session, actor=world.actor("res_a1"), post_id=p.id)
    with pytest.raises(volunteers.PostFullError):
        volunteers.claim_post(world.session, actor=world.actor("vol_2"), post_id=p.id)
    volunteers.decide_claim(world.session, actor=world.actor("sec_a1"), claim_id=claim.id,
                            confirm=False, reason="时间不合适")
    second = volunteers.claim_post(world.session, actor=world.actor("vol_2"), post_id=p.id)
    assert second.status == "pending"
    assert volunteers.get_post(world.session, actor=world.actor("sec_a1"), post_id=p.id).taken == 1


def test_a_full_session_puts_people_on_a_waiting_list_that_moves_up_when_someone_withdraws(world):
    p = post(world)
    act = activity(world, p.id, headcount=1)
    volunteer(world, "res_a1")
    volunteer(world, "vol_2")
    [first] = activities.sign_up(world.session, actor=world.actor("res_a1"), session_id=act.id,
                                 now=NOW)
    [second] = activities.sign_up(world.session, actor=world.actor("vol_2"), session_id=act.id,
                                  now=NOW)
    assert (first.status, second.status) == ("signed_up", "waitlisted")
    activities.withdraw_signup(world.session, actor=world.actor("res_a1"), signup_id=first.id,
                               now=NOW)
    world.session.refresh(second)
    assert second.status == "signed_up"


def test_checked_out_hours_become_one_service_record_credited_once(world):
    publish(world)
    p = post(world)
    act = activity(world, p.id)
    volunteer(world, "res_a1")
    [signup] = activities.sign_up(world.session, actor=world.actor("res_a1"), session_id=act.id,
                                  now=NOW)
    with pytest.raises(ValidationError):
        activities.check_in(world.session, actor=world.actor("res_a1"), session_id=act.id,
                            code="WRONG1", now=NOW)
    activities.check_in(world.session, actor=world.actor("res_a1"), session_id=act.id,
                        code=act.checkin_code.lower(), now=NOW + timedelta(hours=1))
    out = activities.check_out(world.session, actor=world.actor("res_a1"), session_id=act.id,
                               code=act.checkin_code, now=NOW + timedelta(hours=3))
    assert out.minutes == 120
    done = activities.confirm_hours(world.session, actor=world.actor("sec_a1"),
                                    signup_id=signup.id, now=NOW + timedelta(hours=4))
    record = world.session.get(ServiceRecord, done.service_record_id)
    assert record.minutes == 120 and record.signup_id == signup.id
    with pytest.raises(ConflictError):
        activities.confirm_hours(world.session, actor=world.actor("sec_a1"),
                                 signup_id=signup.id, now=NOW + timedelta(hours=5))
    credits = world.session.query(LedgerTransfer).filter_by(
        source_key=f"service-record:{record.id}").all()
    assert len(credits) == 1
    [wallet] = lovebank.statement(world.session, actor=world.actor("res_a1"),
                                  user_id=world.users["res_a1"], now=NOW)
    assert wallet["balance"] == 20  # 2 h × 10 points an hour for elderly care


def test_a_team_leader_signs_the_whole_team_up_and_hours_count_per_member(world):
    p = post(world)
    act = activity(world, p.id, headcount=5)
    for name in ("res_a1", "vol_2", "vol_3"):
        volunteer(world, name)
    team = volunteers.create_team(world.session, actor=world.actor("sec_a1"), name="银发服务队",
                                  leader_id=world.users["res_a1"],
                                  member_ids=[world.users["vol_2"], world.users["vol_3"]],
                                  community_id=world["a1"], now=NOW)
    signups = activities.sign_up(world.session, actor=world.actor("res_a1"), session_id=act.id,
                                 team_id=team.id, now=NOW)
    assert len(signups) == 3 and {s.team_id for s in signups} == {team.id}
    for s in signups:
        activities.check_in(world.session, actor=world.actor("sec_a1"), session_id=act.id,
                            user_id=s.user_id, now=NOW + timedelta(hours=1))
        activities.check_out(world.session, actor=world.actor("sec_a1"), session_id=act.id,
                             user_id=s.user_id, now=NOW + timedelta(hours=2))
        activities.confirm_hours(world.session, actor=world.actor("sec_a1"), signup_id=s.id,
                                 now=NOW + timedelta(hours=2))
    hours = activities.team_hours(world.session, actor=world.actor("sec_a1"), team_id=team.id)
    assert hours["minutes"] == 180 and len(hours["members"]) == 3


def test_a_volunteer_run_proposes_people_for_open_posts_and_approval_offers_the_place(world):
    from web.services import people_matching

    post(world, headcount=2)
    volunteer(world, "res_a1")
    volunteer(world, "vol_2", preferred_categories=["legal"])  # not for elderly care
    volunteer(world, "vol_3", skills=["理发"])
    run = people_matching.create_people_run(world.session, actor=world.actor("sec_a1"),
                                            community_id=world["a1"], now=NOW)
    run = people_matching.execute_people_run(world.session, run_id=run.id, now=NOW)
    assert (run.status, run.error, run.subject) == ("done", None, "volunteers")
    proposals = people_matching.list_people_proposals(
        world.session, actor=world.actor("sec_a1"), filters={"run_id": run.id}).items
    proposed = {pr.user_id for pr in proposals}
    assert proposed == {world.users["res_a1"], world.users["vol_3"]}  # vol_2 prefers legal
    first = proposals[0]
    approved = people_matching.approve_people_proposal(world.session, actor=world.actor("sec_a1"),
                                                       proposal_id=first.id, now=NOW)
    claim = volunteers.get_claim(world.session, actor=world.actor("sec_a1"),
                                 claim_id=approved.claim_id)
    assert claim.status == "offered" and claim.user_id == first.user_id
    name = next(n for n, u in world.users.items() if u == first.user_id)
    accepted = volunteers.answer_offer(world.session, actor=world.actor(name), claim_id=claim.id,
                                       accept=True)
    assert accepted.status == "confirmed"
    second = proposals[1]
    people_matching.reject_people_proposal(world.session, actor=world.actor("sec_a1"),
                                           proposal_id=second.id, reason="本人近期外出")
    again = people_matching.execute_people_run(
        world.session, now=NOW, run_id=people_matching.create_people_run(
            world.session, actor=world.actor("sec_a1"), community_id=world["a1"], now=NOW).id)
    assert people_matching.list_people_proposals(
        world.session, actor=world.actor("sec_a1"), filters={"run_id": again.id}).total == 0
