"""The last lists made searchable and filtered in the database: the secretary's proposals and
reports (words in the item's title or the unit's name), my points (kind, dates, words in the
reason; paged, downloadable, the balance and lots kept), my volunteer record (kind of service,
year, words; the totals and the certificate still count every record) and the inbox (kind,
words in what a notice names)."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.conftest import NOW
from tests.factories import claim, make_demand, make_resource
from tests.integration.lovebank_helpers import fund_wallet, key, resident
from tests.pages.helpers import csrf, sign_in
from web.models import Community, MatchProposal
from web.services import assignments, lovebank, reports
from web.services.notifications import notify

pytestmark = pytest.mark.db


def rows_of(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def total(html: str) -> int:
    return int(re.search(r"共 (\d+) 条", html).group(1))


# ---- the secretary's proposals and reports ------------------------------------------------------

def reported(world, unit: str, key_: str):
    share = claim(world, unit, key_)
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=share.id, now=NOW)
    return reports.submit_report(
        world.session, actor=world.actor(f"unit_{unit}"), demand_id=world[key_],
        started_on=date(2026, 11, 18), ended_on=date(2026, 11, 19),
        volunteers=[{"name": "李四", "phone": "13600000000", "minutes": 90}],
        beneficiaries_served=1, value_fen=1000, now=NOW)


def test_the_report_list_is_searched_by_item_title_or_unit_name(client, world):
    world.ids["d_lamp"] = make_demand(world.session, world, "a1", "sec_a1", title="修楼道灯")
    by_x = reported(world, "x", "d_a1")
    by_y = reported(world, "y", "d_lamp")
    sign_in(client, "sec_a1")
    page = client.get("/secretary/reports").text
    assert 'name="q"' in page and "事项标题或单位" in page
    by_title = client.get("/secretary/reports?q=楼道").text
    assert total(by_title) == 1 and f'data-testid="report-{by_y.id}"' in by_title
    by_unit = client.get("/secretary/reports?q=Unit x").text
    assert total(by_unit) == 1 and f'data-testid="report-{by_x.id}"' in by_unit
    rows = rows_of(client.get("/secretary/reports?format=csv&q=楼道").data)
    assert [r[1] for r in rows[1:]] == ["修楼道灯"]


def test_the_report_search_takes_wildcards_literally(client, world):
    reported(world, "x", "d_a1")
    sign_in(client, "sec_a1")
    assert total(client.get("/secretary/reports?q=%").text) == 0
    assert total(client.get("/secretary/reports?q=_").text) == 0


def test_the_proposal_list_is_searched_by_item_title_or_unit_name(client, world):
    page = sign_in(client, "sec_a1")
    client.post("/secretary/match", data={"csrf_token": csrf(page.text)})
    every = client.get("/secretary/proposals").text
    assert 'name="q"' in every and total(every) >= 1
    assert total(client.get("/secretary/proposals?q=独居老人").text) == total(every)
    assert total(client.get("/secretary/proposals?q=没有这个事项").text) == 0
    by_unit = {}
    for proposal in world.session.scalars(select(MatchProposal)):
        by_unit[proposal.unit.name] = by_unit.get(proposal.unit.name, 0) + 1
    for name, count in by_unit.items():
        assert total(client.get(f"/secretary/proposals?q={name}").text) == count
    assert total(client.get("/secretary/proposals?q=Unit z").text) == 0
    assert total(client.get("/secretary/proposals?q=100%").text) == 0


# ---- my points ----------------------------------------------------------------------------------

def adjusted(world, points: int, reason: str, at, name: str = "res_a1"):
    return lovebank.adjust_points(
        world.session, actor=world.actor("sec_a1"), community_id=world["a1"],
        user_id=world.users[name], points=points, reason=reason, idempotency_key=key("adj"),
        now=at)


def gift(world, points: int = 5):
    resident(world, "res_a1b")
    world.session.get(Community, world["a1"]).allow_gifts = True
    world.session.commit()
    return lovebank.give_points(world.session, actor=world.actor("res_a1"),
                                community_id=world["a1"], to_user_id=world.users["res_a1b"],
                                points=points, reason="送给邻居", idempotency_key=key("gift"),
                                now=NOW)


def point_lines(html: str) -> int:
    body = html[html.index('data-testid="lines"'):]
    return body[:body.index("</table>")].count("<tr><td")


def test_my_points_are_paged_in_the_database_with_the_balance_and_lots_kept(client, world):
    for _ in range(25):
        fund_wallet(world, "res_a1", 2)
    sign_in(client, "res_a1")
    first = client.get("/me/points").text
    assert 'data-testid="balance">50<' in first and 'data-testid="lots"' in first
    assert point_lines(first) == 20 and "共 25 条,第 1 / 2 页" in first
    second = client.get("/me/points?page=2").text
    assert point_lines(second) == 5 and 'data-testid="balance">50<' in second


def test_my_points_are_filtered_by_kind(client, world):
    fund_wallet(world, "res_a1", 20)
    gift(world, 5)
    sign_in(client, "res_a1")
    gifts = client.get("/me/points?kind=gift").text
    assert total(gifts) == 1 and "送给邻居" in gifts and "-5" in gifts
    assert total(client.get("/me/points?kind=adjustment").text) == 1
    assert total(client.get("/me/points?kind=nonsense").text) == 2  # an unknown kind: all


def test_my_points_are_filtered_between_two_days_in_shanghai(client, world):
    adjusted(world, 3, "十一月十八日", NOW - timedelta(days=2))
    adjusted(world, 4, "十一月二十日", NOW)
    # 2026-11-20 23:30 in Shanghai is still the 20th there, but the 20th UTC is over soon
    adjusted(world, 5, "深夜入账", NOW.replace(hour=15, minute=30))
    sign_in(client, "res_a1")
    the_20th = client.get("/me/points?from=2026-11-20&to=2026-11-20").text
    assert total(the_20th) == 2 and "十一月二十日" in the_20th and "深夜入账" in the_20th
    assert total(client.get("/me/points?to=2026-11-19").text) == 1
    assert total(client.get("/me/points?from=2026-11-21").text) == 0
    assert total(client.get("/me/points?from=bad-day").text) == 3


def test_my_points_are_searched_in_the_reason_with_wildcards_literal(client, world):
    adjusted(world, 3, "参加楼道清扫", NOW)
    adjusted(world, 4, "其他_100%", NOW)
    sign_in(client, "res_a1")
    found = client.get("/me/points?q=清扫").text
    assert total(found) == 1 and "参加楼道清扫" in found
    assert total(client.get("/me/points?q=_100%").text) == 1
    assert total(client.get("/me/points?q=%").text) == 1


def test_my_points_download_the_filtered_lines_as_csv_and_xlsx(client, world):
    fund_wallet(world, "res_a1", 20)
    gift(world, 5)
    sign_in(client, "res_a1")
    rows = rows_of(client.get("/me/points?format=csv&kind=gift").data)
    assert rows[0] == ["时间", "社区", "类别", "积分", "事由"]
    assert [r[2:] for r in rows[1:]] == [["爱心传递", "-5", "送给邻居"]]
    xlsx = client.get("/me/points?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


# ---- my volunteer record ------------------------------------------------------------------------

def served(world, title: str, code: str, ended_on: date, minutes: int) -> None:
    """An item of a1 of kind `code`, worked by unit x; res_a1 served `minutes`, verified."""
    world.ids[title] = make_demand(world.session, world, "a1", "sec_a1", title=title, code=code)
    resource = f"r_x_{code}"
    if resource not in world.ids:
        world.ids[resource] = make_resource(world.session, world, "x", "unit_x", ["a1"],
                                            code=code)
    share = claim(world, "x", title, resource=resource)
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=share.id, now=NOW)
    report = reports.submit_report(
        world.session, actor=world.actor("unit_x"), demand_id=world[title],
        started_on=ended_on, ended_on=ended_on,
        volunteers=[{"user_id": world.users["res_a1"], "minutes": minutes}],
        beneficiaries_served=1, value_fen=100, now=NOW)
    reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                          now=NOW)


@pytest.fixture
def service_history(world):
    served(world, "陪老人聊天", "elderly_care", date(2025, 6, 1), 60)
    served(world, "修水管", "repairs", date(2026, 3, 1), 120)
    served(world, "陪老人买菜", "elderly_care", date(2026, 5, 1), 30)
    return world


def test_my_volunteer_record_is_filtered_by_kind_of_service(client, service_history):
    sign_in(client, "res_a1")
    every = client.get("/me/volunteering").text
    care = re.search(r'<option value="(\d+)" >养老助老', every) or re.search(
        r'<option value="(\d+)"\s*>养老助老', every)
    found = client.get(f"/me/volunteering?category_id={care.group(1)}").text
    assert total(found) == 2 and "修水管" not in found.split('data-testid="records"')[1]


def test_my_volunteer_record_is_filtered_by_year(client, service_history):
    sign_in(client, "res_a1")
    in_2025 = client.get("/me/volunteering?year=2025").text
    assert total(in_2025) == 1 and "陪老人聊天" in in_2025.split('data-testid="records"')[1]
    assert total(client.get("/me/volunteering?year=2026").text) == 2
    assert total(client.get("/me/volunteering?year=123456").text) == 3  # not a year: all


def test_my_volunteer_record_is_searched_in_the_title_unit_and_kind(client, service_history):
    sign_in(client, "res_a1")
    assert total(client.get("/me/volunteering?q=陪老人").text) == 2
    assert total(client.get("/me/volunteering?q=Unit x").text) == 3
    assert total(client.get("/me/volunteering?q=维修").text) == 1  # the kind's name
    assert total(client.get("/me/volunteering?q=%").text) == 0


def test_my_volunteer_record_totals_every_record_whatever_the_filter(client, service_history):
    sign_in(client, "res_a1")
    page = client.get("/me/volunteering?year=2025&q=聊天").text
    assert re.search(r'data-testid="total-hours">3\.50<', page)
    years = page.split('data-testid="by-year"')[1].split("</table>")[0]
    assert "2025" in years and "2026" in years
    certificate = client.get("/me/volunteering/certificate").text
    assert re.search(r'data-testid="certificate-total">3\.50<', certificate)


def test_my_volunteer_record_is_paged_in_the_database(client, world):
    for n in range(22):
        served(world, f"探访{n:02d}", "elderly_care", date(2026, 1, 1) + timedelta(days=n), 10)
    sign_in(client, "res_a1")
    first = client.get("/me/volunteering").text
    assert "共 22 条,第 1 / 2 页" in first
    second = client.get("/me/volunteering?page=2").text
    assert second.split('data-testid="records"')[1].count('class="list-group-item"') == 2
    rows = rows_of(client.get("/me/volunteering?format=csv").data)
    assert len(rows) == 1 + 22


# ---- the inbox ----------------------------------------------------------------------------------

def tell(world, kind: str, params: dict, name: str = "res_a1", demand_id=None, at=NOW):
    notify(world.session, user_ids=[world.users[name]], kind=kind, params=params, now=at,
           demand_id=demand_id)
    world.session.commit()


def shown(html: str) -> int:
    return len(re.findall(r'data-testid="notification-\d+"', html))


def test_the_inbox_is_filtered_by_kind_shown_in_words(client, world):
    tell(world, "wish_accepted", {"title": "修楼道灯"})
    tell(world, "wish_declined", {"title": "装电梯", "reason": "超出范围"})
    tell(world, "points_credited", {"points": 5, "reason": "志愿服务"})
    sign_in(client, "res_a1")
    page = client.get("/inbox").text
    assert 'value="wish_declined" >心愿未受理</option>' in page
    declined = client.get("/inbox?kind=wish_declined").text
    assert shown(declined) == 1 and "装电梯" in declined
    assert shown(client.get("/inbox?kind=nonsense").text) == 3


def test_the_inbox_is_searched_in_what_the_notices_name(client, world):
    tell(world, "wish_accepted", {"title": "修楼道灯"})
    tell(world, "wish_declined", {"title": "装电梯", "reason": "超出范围"})
    tell(world, "confirm_requested", {"title": "别的标题"}, demand_id=world["d_a1"])
    sign_in(client, "res_a1")
    assert shown(client.get("/inbox?q=楼道").text) == 1
    assert shown(client.get("/inbox?q=超出").text) == 1  # the reason
    assert shown(client.get("/inbox?q=独居老人").text) == 1  # the item's own title
    assert shown(client.get("/inbox?q=%").text) == 0


def test_the_inbox_search_keeps_the_unread_tab_and_the_tabs_keep_the_search(client, world):
    tell(world, "wish_accepted", {"title": "修楼道灯"})
    tell(world, "wish_accepted", {"title": "修路灯"}, at=NOW - timedelta(minutes=1))
    sign_in(client, "res_a1")
    page = client.get("/inbox?unread=1&q=楼道").text
    assert shown(page) == 1
    assert '<input type="hidden" name="unread" value="1">' in page
    assert 'href="/inbox?q=%E6%A5%BC%E9%81%93"' in page  # "All" keeps the words
