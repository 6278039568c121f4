"""The demo county's volunteers: profiles and reports (双报到), service posts and claims, a team
per community, and sessions — one held (hours confirmed and credited), one coming (with a
waiting list). Called by `seeds.demo` after the love bank has its rules."""

from __future__ import annotations

from datetime import timedelta

from web.services import activities, volunteers
from web.services.auth import load_actor

SKILLS = ["陪护", "理发", "电工", "水暖", "法律咨询", "心理疏导", "急救", "书法", "摄影", "编程",
          "烹饪", "驾驶", "外语", "手工"]
# kind, category code, title, headcount
POSTS = [
    ("policy_explanation", "education", "政策宣讲员", 3),
    ("civilised_promotion", "culture_sports", "文明劝导员", 4),
    ("sanitation", "environment", "环境卫生监督员", 4),
    ("elderly_visiting", "elderly_care", "独居老人探访员", 5),
    ("patrol", "safety", "平安巡逻队员", 6),
    ("building_head", "other", "楼栋长", 4),
    ("mediation", "legal", "矛盾调解员", 2),
]
VOLUNTEERS_PER_COMMUNITY = 30


def build(county) -> None:
    """Volunteers, posts, claims, a team and two sessions in every community."""
    for place in county.places:
        people = _profiles(county, place)
        posts = _posts(county, place)
        _claims(county, place, people, posts)
        team = volunteers.create_team(
            county.s, actor=place.secretary, name=f"{place.name}银发志愿服务队",
            leader_id=people[1], member_ids=people[2:7], community_id=place.id,
            speciality="助老", now=county.at(40))
        _held_session(county, place, posts[3], team.id, people)
        _coming_session(county, place, posts[4], people)


def _profiles(county, place) -> list[int]:
    rng, t = county.rng, county.at(70)
    units = [u for u in county.units if u.subdistrict is place.subdistrict]
    chosen = place.residents[:VOLUNTEERS_PER_COMMUNITY]
    for k, person in enumerate(chosen):
        actor = load_actor(county.s, person.user_id)
        data = {"skills": rng.sample(SKILLS, rng.randint(1, 3)),
                "profession": rng.choice(volunteers.PROFESSIONS),
                "preferred_categories": rng.sample(["elderly_care", "environment", "safety",
                                                    "health", "education"], 2),
                "availability": {"weekly": [{"weekday": d, "start": "09:00", "end": "12:00"}
                                            for d in rng.sample(range(7), 2)]},
                "is_party_member": rng.random() < 0.4, "contact_consent": rng.random() < 0.7}
        if units and k % 3 == 0:  # an employee of a unit reporting to where they live
            data["unit_id"] = rng.choice(units).id
        profile = volunteers.save_profile(county.s, actor=actor, data=data,
                                          now=t + timedelta(minutes=k))
        if profile.report_status and k % 2 == 0:
            volunteers.decide_report(county.s, actor=place.secretary, profile_id=profile.id,
                                     confirm=True, now=t + timedelta(days=1))
    return [p.user_id for p in chosen]


def _posts(county, place) -> list:
    t = county.at(65)
    return [volunteers.create_post(county.s, actor=place.secretary, community_id=place.id, data={
        "kind": kind, "category_id": county.categories[code], "title": title,
        "headcount": headcount, "required_skills": [],
        "schedule": {"weekly": [{"weekday": 5, "start": "09:00", "end": "11:00"}]}}, now=t)
        for kind, code, title, headcount in POSTS]


def _claims(county, place, people: list[int], posts: list) -> None:
    rng, t = county.rng, county.at(60)
    for k, user_id in enumerate(people[7:25]):
        post = posts[k % len(posts)]
        if post.taken >= post.headcount - (1 if post.kind == "patrol" else 0):
            continue  # leave places open: the secretary sees unfilled posts
        claim = volunteers.claim_post(county.s, actor=load_actor(county.s, user_id),
                                      post_id=post.id, now=t + timedelta(hours=k))
        if rng.random() < 0.7:
            volunteers.decide_claim(county.s, actor=place.secretary, claim_id=claim.id,
                                    confirm=True, now=t + timedelta(days=1, hours=k))


def _held_session(county, place, post, team_id: int, people: list[int]) -> None:
    """Ten days ago: the team signed up, checked in and out; hours confirmed and credited."""
    start = county.at(10)
    leader = load_actor(county.s, people[1])
    act = activities.create_session(county.s, actor=place.secretary, data={
        "post_id": post.id, "title": f"{post.title}集中活动", "place": f"{place.name}党群服务中心",
        "starts_at": start, "ends_at": start + timedelta(hours=3), "headcount": 8},
        now=start - timedelta(days=3))
    signups = activities.sign_up(county.s, actor=leader, session_id=act.id, team_id=team_id,
                                 now=start - timedelta(days=2))
    for k, signup in enumerate(signups):
        activities.check_in(county.s, actor=place.secretary, session_id=act.id,
                            user_id=signup.user_id, now=start + timedelta(minutes=k))
        activities.check_out(county.s, actor=place.secretary, session_id=act.id,
                             user_id=signup.user_id, now=start + timedelta(hours=2, minutes=30))
        activities.confirm_hours(county.s, actor=place.secretary, signup_id=signup.id,
                                 now=start + timedelta(hours=4))
    activities.close_session(county.s, actor=place.secretary, session_id=act.id,
                             now=start + timedelta(hours=5))


def _coming_session(county, place, post, people: list[int]) -> None:
    """In three days: full, with two people on the waiting list."""
    start = county.now + timedelta(days=3)
    act = activities.create_session(county.s, actor=place.secretary, data={
        "post_id": post.id, "title": f"{post.title}周末巡逻", "place": f"{place.name}北门",
        "starts_at": start, "ends_at": start + timedelta(hours=2), "headcount": 4},
        now=county.at(2))
    for k, user_id in enumerate([people[0]] + people[25:30]):
        activities.sign_up(county.s, actor=load_actor(county.s, user_id), session_id=act.id,
                           now=county.at(1.5) + timedelta(minutes=k))
