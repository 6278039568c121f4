"""The subdistrict admin's pages: the dashboard with its charts (inline SVG, nothing fetched),
tables and downloads; the red list; unit applications approved or rejected (asked first, with a
reason); the items running late. Another subdistrict's admin sees and changes none of it."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from tests.conftest import NOW
from tests.factories import make_demand, make_user
from tests.integration.test_figures import build_known
from tests.pages.helpers import alerts, csrf, field_error, sign_in
from web.models import Unit
from web.services import demands, service_levels, units
from web.services.auth import actor_for

pytestmark = pytest.mark.db

YEAR = "from=2026-01&to=2026-12"


def rows_of(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def applicant(world, name: str, subdistrict: str = "A") -> int:
    user = make_user(world.session, name, display_name=name)
    unit = units.apply_unit(world.session, actor=actor_for(user), subdistrict_id=world[subdistrict],
                            data={"name": f"{name}公司", "type": "enterprise",
                                  "contact_name": "李", "contact_phone": "13900000001"}, now=NOW)
    return unit.id


def unit_row(world, unit_id: int) -> Unit:
    unit = world.session.get(Unit, unit_id)
    world.session.refresh(unit)
    return unit


# ---- the dashboard ---------------------------------------------------------------------------

def test_the_admin_lands_on_the_dashboard_with_tiles_charts_and_tables(client, world):
    build_known(world)
    landed = sign_in(client, "admin_a")
    assert landed.request.path == "/subdistrict"
    page = client.get(f"/subdistrict?{YEAR}")
    html = page.text
    assert page.status_code == 200 and "数据看板" in html and "A街道" in html
    assert re.search(r'data-testid="tile-claimed">\s*3<', html)
    assert re.search(r'data-testid="tile-closure_rate">\s*33.3%<', html)
    assert re.search(r'data-testid="tile-value_yuan">\s*50.00<', html)
    for key in ("month", "community", "unit"):
        chart = re.search(rf'data-testid="chart-{key}">(.*?)</div>', html, re.S).group(1)
        assert chart.startswith("<svg") and 'role="img"' in chart
        assert "<script" not in chart and "<!--" not in chart
        assert set(re.findall(r"https?://[^\"' )<]+", chart)) == {"http://www.w3.org/2000/svg"}
        assert 'class="rect reactive tooltip-trigger"' in chart  # bars drawn
        assert f'data-testid="table-{key}"' in html
    community = re.search(r'data-testid="table-community">(.*?)</table>', html, re.S).group(1)
    assert re.search(r"a1社区</th>\s*<td[^>]*>1</td>\s*<td[^>]*>1</td>\s*<td[^>]*>1</td>\s*"
                     r"<td[^>]*>100.0%</td>", community)


def test_nothing_on_the_dashboard_comes_from_another_site(client, world):
    sign_in(client, "admin_a")
    html = client.get("/subdistrict").text
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_each_table_downloads_as_csv_and_xlsx_with_its_period(client, world):
    build_known(world)
    sign_in(client, "admin_a")
    got = client.get(f"/subdistrict?{YEAR}&table=community&format=csv")
    assert got.status_code == 200 and got.mimetype == "text/csv"
    rows = rows_of(got.data)
    assert rows[0][:4] == ["社区", "开展活动", "认领事项", "办结事项"]
    assert rows[1][:5] == ["a1社区", "1", "1", "1", "100.0"]
    assert rows[2][:5] == ["a2社区", "0", "2", "0", "0.0"]
    months = rows_of(client.get(f"/subdistrict?{YEAR}&table=month&format=csv").data)
    assert len(months) == 13 and months[11][0] == "2026-11" and months[11][2] == "2"
    october = rows_of(client.get("/subdistrict?from=2026-10&to=2026-10&table=unit&format=csv")
                      .data)
    assert [r[0] for r in october[1:]] == ["Unit y", "Unit x"]  # y claimed in October
    xlsx = client.get(f"/subdistrict?{YEAR}&table=unit&format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_a_bad_month_is_shown_under_its_field_and_the_year_is_shown_instead(client, world):
    sign_in(client, "admin_a")
    page = client.get("/subdistrict?from=2026-13&to=soon")
    assert page.status_code == 422
    assert field_error(page.text, "from") == "请填写月份,例如 2026-03。"
    assert field_error(page.text, "to") == "请填写月份,例如 2026-03。"
    assert 'data-testid="chart-month"' in page.text
    backwards = client.get("/subdistrict?from=2026-05&to=2026-03")
    assert backwards.status_code == 422
    assert field_error(backwards.text, "to") == "结束时间早于开始时间。"


def test_another_subdistricts_community_cannot_be_chosen(client, world):
    sign_in(client, "admin_a")
    page = client.get(f"/subdistrict?community_id={world['b1']}")
    assert page.status_code == 422 and field_error(page.text, "community_id")
    assert "b1社区" not in page.text


def test_one_community_narrows_every_figure(client, world):
    build_known(world)
    sign_in(client, "admin_a")
    page = client.get(f"/subdistrict?{YEAR}&community_id={world['a2']}")
    assert page.status_code == 200
    assert re.search(r'data-testid="tile-claimed">\s*2<', page.text)
    assert re.search(r'data-testid="tile-value_yuan">\s*0.00<', page.text)


def test_each_admin_sees_only_their_own_subdistrict(client, world):
    build_known(world)
    sign_in(client, "admin_b")
    html = client.get(f"/subdistrict?{YEAR}").text
    assert "B街道" in html and "b1社区" in html and "a1社区" not in html
    assert re.search(r'data-testid="tile-claimed">\s*1<', html)  # unit z's, not A's three


@pytest.mark.parametrize("who", ["sec_a1", "unit_x", "res_a1"])
def test_other_roles_cannot_open_the_subdistrict_pages(client, world, who):
    sign_in(client, who)
    for path in ("/subdistrict", "/subdistrict/ranking", "/subdistrict/units",
                 "/subdistrict/due"):
        assert client.get(path).status_code == 403


def test_the_menu_offers_the_admins_pages(client, world):
    page = sign_in(client, "admin_a")
    for path in ("/subdistrict/ranking", "/subdistrict/units", "/subdistrict/due"):
        assert f'href="{path}"' in page.text


# ---- the red list ---------------------------------------------------------------------------------

def test_the_red_list_ranks_units_and_says_how(client, world):
    build_known(world)
    sign_in(client, "admin_a")
    page = client.get(f"/subdistrict/ranking?{YEAR}")
    assert page.status_code == 200 and "单位红榜" in page.text
    assert "先比参与办结的事项数" in page.text  # the rule, in words
    first = re.search(r'data-testid="rank-1">(.*?)</li>', page.text, re.S).group(1)
    assert "Unit x" in first and "办结 1 件" in first and "2.0 小时" in first
    assert "Unit y" not in page.text  # nothing closed, no hours, no value
    rows = rows_of(client.get(f"/subdistrict/ranking?{YEAR}&format=csv").data)
    assert rows[0][:3] == ["名次", "单位", "办结事项"] and rows[1][:3] == ["1", "Unit x", "1"]


# ---- unit applications ----------------------------------------------------------------------------

def test_the_admin_sees_the_applications_of_their_subdistrict_only(client, world):
    applicant(world, "新星")
    applicant(world, "远方", "B")
    sign_in(client, "admin_a")
    page = client.get("/subdistrict/units")
    assert "新星公司" in page.text and "远方公司" not in page.text
    assert "Unit x" not in page.text  # approved already
    assert "新星公司" not in client.get("/subdistrict/units?q=远").text
    rows = rows_of(client.get("/subdistrict/units?format=csv").data)
    assert [r[1] for r in rows[1:]] == ["新星公司"]


def test_approving_an_application(client, world):
    unit_id = applicant(world, "新星")
    page = sign_in(client, "admin_a") and client.get("/subdistrict/units")
    done = client.post(f"/subdistrict/units/{unit_id}", data={
        "decision": "approve", "csrf_token": csrf(page.text)}, follow_redirects=True)
    assert "新星公司 已通过审核" in " ".join(alerts(done.text))
    assert unit_row(world, unit_id).status == "approved"


def test_rejecting_asks_first_and_needs_a_reason(client, world):
    unit_id = applicant(world, "新星")
    page = sign_in(client, "admin_a") and client.get("/subdistrict/units")
    token = csrf(page.text)
    asked = client.post(f"/subdistrict/units/{unit_id}", data={
        "decision": "reject", "reason": "资料不全", "csrf_token": token})
    assert asked.status_code == 200 and "请确认" in asked.text
    assert unit_row(world, unit_id).status == "applied"
    blank = client.post(f"/subdistrict/units/{unit_id}", data={
        "decision": "reject", "reason": " ", "confirmed": "1", "csrf_token": token},
        follow_redirects=True)
    assert "请填写理由" in " ".join(alerts(blank.text))
    assert unit_row(world, unit_id).status == "applied"
    done = client.post(f"/subdistrict/units/{unit_id}", data={
        "decision": "reject", "reason": "资料不全", "confirmed": "1", "csrf_token": token},
        follow_redirects=True)
    assert "已驳回" in " ".join(alerts(done.text))
    unit = unit_row(world, unit_id)
    assert (unit.status, unit.status_reason) == ("rejected", "资料不全")


def test_another_subdistricts_admin_cannot_decide_an_application(client, world):
    unit_id = applicant(world, "新星")
    page = sign_in(client, "admin_b") and client.get("/subdistrict/units")
    refused = client.post(f"/subdistrict/units/{unit_id}", data={
        "decision": "approve", "csrf_token": csrf(page.text)}, follow_redirects=True)
    assert alerts(refused.text) and unit_row(world, unit_id).status == "applied"


# ---- items running late ---------------------------------------------------------------------------

def published(world, community: str, when, title: str) -> int:
    """An item of the community published at `when`: its service-level clocks start then."""
    demand_id = make_demand(world.session, world, community, f"sec_{community}", title=title,
                            publish=False)
    demands.publish_demand(world.session, actor=world.actor(f"sec_{community}"),
                           demand_id=demand_id, now=when)
    return demand_id


def test_items_running_late_are_listed_red_then_amber_with_filters_and_download(client, world):
    from web.services.base import utcnow

    now = utcnow()  # the page's own clock: 24 h to accept, amber with less than 6 h left
    demands.cancel_demand(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                          reason="published at the tests' fixed time, late by now", now=now)
    late = published(world, "a1", now - timedelta(hours=30), "修路灯")
    soon = published(world, "a2", now - timedelta(hours=20), "送药")
    published(world, "a1", now, "刚登记的事")
    published(world, "b1", now - timedelta(hours=30), "别处的事")
    sign_in(client, "admin_a")
    page = client.get("/subdistrict/due")
    html = page.text
    assert page.status_code == 200 and "逾期预警" in html
    assert html.index("修路灯") < html.index("送药")
    assert "刚登记的事" not in html and "别处的事" not in html
    assert f'class="badge bg-danger" data-testid="rag-{late}"' in html
    assert "已超期" in re.search(rf'data-testid="rag-{late}">([^<]*)<', html).group(1)
    assert "即将到期" in re.search(rf'data-testid="rag-{soon}">([^<]*)<', html).group(1)
    assert "网格" in re.search(rf'data-testid="level-{late}">([^<]*)<', html).group(1)
    red = client.get("/subdistrict/due?rag=red").text
    assert "修路灯" in red and "送药" not in red
    a2 = client.get(f"/subdistrict/due?community_id={world['a2']}").text
    assert "送药" in a2 and "修路灯" not in a2
    rows = rows_of(client.get("/subdistrict/due?format=csv").data)
    assert [r[1] for r in rows[1:]] == ["修路灯", "送药"]


def test_items_escalated_to_the_subdistrict_have_their_own_filter_and_column(client, world):
    from web.services.base import utcnow

    now = utcnow()
    demands.cancel_demand(world.session, actor=world.actor("sec_a1"), demand_id=world["d_a1"],
                          reason="published at the tests' fixed time, late by now", now=now)
    up = published(world, "a1", now - timedelta(hours=80), "路灯坏了三天")
    published(world, "a2", now - timedelta(hours=30), "只是晚了")
    for hours in (50, 26):  # late: to the community; 24 h later: to the subdistrict
        service_levels.check_service_levels(world.session, now=now - timedelta(hours=hours))
    sign_in(client, "admin_a")
    page = client.get("/subdistrict/due?escalated=1").text
    assert "路灯坏了三天" in page and "只是晚了" not in page
    assert "街道" in re.search(rf'data-testid="level-{up}">([^<]*)<', page).group(1)
    assert 'data-testid="level-' in client.get("/subdistrict/due").text
    rows = rows_of(client.get("/subdistrict/due?escalated=1&format=csv").data)
    assert [r[1] for r in rows[1:]] == ["路灯坏了三天"]
    assert "升级至街道" in rows[1]
