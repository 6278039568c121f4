"""The pages through Flask's test client: sign in, language, the resident's points and basket,
the clerk's counter, CSRF, and the Chinese catalogue being complete and compiled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.lovebank_helpers import fund_wallet, goods
from tests.pages.helpers import alerts, csrf, sign_in
from web.models import MarketOrder

pytestmark = pytest.mark.db

TRANSLATIONS = Path(__file__).resolve().parents[2] / "web" / "translations"


def test_the_login_page_is_chinese_by_default(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text and "登录" in page.text and "密码" in page.text


def test_a_wrong_password_is_refused_on_the_page(client, world):
    page = sign_in(client, "res_a1", "wrong")
    assert page.status_code == 401 and "用户名或密码错误" in page.text


def test_a_resident_lands_on_her_points_and_a_clerk_on_the_counter(app, world):
    resident, clerk = app.test_client(), app.test_client()
    assert sign_in(resident, "res_a1").request.path == "/me/points"
    assert sign_in(clerk, "clerk_a1").request.path == "/counter"


def test_the_language_switch_is_remembered_on_the_user(app, client, world):
    page = sign_in(client, "res_a1")
    switched = client.post("/language", data={"lang": "en", "next": "/me/points",
                                               "csrf_token": csrf(page.text)},
                           follow_redirects=True)
    assert "My points" in switched.text and '<html lang="en">' in switched.text
    again = app.test_client()
    assert "My points" in sign_in(again, "res_a1").text  # a new session, the user's choice


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(client, world):
    item = goods(world, price=10, stock=3)
    fund_wallet(world, "res_a1", 50)
    sign_in(client, "res_a1")
    refused = client.post("/market/order", data={f"qty-{item.id}": "1", "order_key": "k1",
                                                 "csrf_token": "forged"})
    assert refused.status_code == 400
    assert world.session.query(MarketOrder).count() == 0


def test_a_basket_ordered_on_the_page_shows_its_code_and_a_second_send_orders_nothing_more(
        client, world):
    item = goods(world, price=10, stock=3)
    fund_wallet(world, "res_a1", 50)
    market = sign_in(client, "res_a1") and client.get("/market")
    key = re.search(r'name="order_key" value="([^"]+)"', market.text).group(1)
    form = {f"qty-{item.id}": "2", "order_key": key, "csrf_token": csrf(market.text)}
    first = client.post("/market/order", data=form, follow_redirects=True)
    code = re.search(r'data-testid="code">([A-Z0-9]+)<', first.text).group(1)
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', first.text).group(1))
    assert size >= (21 + 4) * 6  # a full QR code (21 modules at least), not a Micro QR
    assert "待领取" in first.text, re.findall(r"data-testid=.status.>[^<]*<", first.text)
    second = client.post("/market/order", data=form, follow_redirects=True)
    assert second.request.path == first.request.path
    assert world.session.query(MarketOrder).filter_by(code=code).count() == 1
    assert world.session.query(MarketOrder).count() == 1


def test_a_basket_beyond_the_wallet_says_why_in_chinese_and_moves_nothing(client, world):
    item = goods(world, price=40, stock=3)
    fund_wallet(world, "res_a1", 30)
    market = sign_in(client, "res_a1") and client.get("/market")
    key = re.search(r'name="order_key" value="([^"]+)"', market.text).group(1)
    page = client.post("/market/order", data={f"qty-{item.id}": "1", "order_key": key,
                                              "csrf_token": csrf(market.text)},
                       follow_redirects=True)
    assert alerts(page.text) == ["积分不足。 可用 30 分。"]  # no English in the Chinese page
    assert world.session.query(MarketOrder).count() == 0


def test_the_clerk_hands_over_once_and_a_reused_code_is_refused(app, world):
    item = goods(world, price=10, stock=3)
    fund_wallet(world, "res_a1", 50)
    resident, clerk = app.test_client(), app.test_client()
    market = sign_in(resident, "res_a1") and resident.get("/market")
    key = re.search(r'name="order_key" value="([^"]+)"', market.text).group(1)
    ordered = resident.post("/market/order", data={f"qty-{item.id}": "1", "order_key": key,
                                                   "csrf_token": csrf(market.text)},
                            follow_redirects=True)
    code = re.search(r'data-testid="code">([A-Z0-9]+)<', ordered.text).group(1)
    counter = sign_in(clerk, "clerk_a1")
    handed = clerk.post("/counter", data={"code": code.lower(), "csrf_token": csrf(counter.text)})
    assert 'data-testid="handed"' in handed.text and "已发放" in handed.text
    again = clerk.post("/counter", data={"code": code, "csrf_token": csrf(handed.text)})
    assert 'data-testid="handed"' not in again.text
    assert any(text.startswith("当前无法办理") for text in alerts(again.text))


def test_every_message_of_the_pages_has_a_chinese_translation_compiled():
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    with open(TRANSLATIONS / "messages.pot", "rb") as handle:
        template = {m.id for m in read_po(handle) if m.id}
    with open(TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po", "rb") as handle:
        po = {m.id: m.string for m in read_po(handle) if m.id}
    with open(TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.mo", "rb") as handle:
        mo = {m.id: m.string for m in read_mo(handle) if m.id}
    assert template <= set(po), sorted(template - set(po))
    assert all(po[msgid] for msgid in template), [m for m in template if not po[m]]
    assert mo == po  # the compiled catalogue is the one in the repository


def test_the_template_catalogue_holds_every_message_in_the_code(tmp_path):
    from babel.messages.frontend import CommandLineInterface
    from babel.messages.pofile import read_po

    root = TRANSLATIONS.parents[1]
    out = tmp_path / "now.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(root / "babel.cfg"),
                                "-k", "_l", "-o", str(out), "--no-location", str(root)])
    with open(out, "rb") as handle:
        now = {m.id for m in read_po(handle) if m.id}
    with open(TRANSLATIONS / "messages.pot", "rb") as handle:
        kept = {m.id for m in read_po(handle) if m.id}
    assert now == kept, ("run `make i18n`", sorted(now ^ kept))


def test_the_public_disclosure_page_shows_work_points_and_fund_without_personal_data(
        client, world):
    from tests.factories import claim
    from web.services import market

    fund_wallet(world, "res_a1", 50)
    market.donate_money(world.session, actor=world.actor("sec_a1"), community_id=world["a1"],
                        amount_fen=12_345, donor_type="resident", donor_name="王小明",
                        reason="捐款", idempotency_key="pub-1")
    claim(world, "x", "d_a1")
    page = client.get("/public/C-a1")  # no sign-in
    assert page.status_code == 200 and "公示" in page.text
    assert "123.45" in page.text and "王**" in page.text and "王小明" not in page.text
    assert "13712345678" not in page.text and "3号楼" not in page.text and "王奶奶" not in page.text
    assert client.get("/public/NOPE").status_code == 404


def test_the_secretary_lands_on_her_work_queue_and_approves_a_claim_in_one_click(client, world):
    from tests.factories import claim
    from web.models import Assignment

    pending = claim(world, "x", "d_a1")
    page = sign_in(client, "sec_a1")
    assert page.request.path == "/secretary" and "待审批的认领" in page.text
    assert f"/secretary/claims/{pending.id}" in page.text
    done = client.post(f"/secretary/claims/{pending.id}",
                       data={"decision": "approve", "csrf_token": csrf(page.text)},
                       follow_redirects=True)
    assert "认领已批准。" in alerts(done.text)
    world.session.expire_all()
    assert world.session.get(Assignment, pending.id).status == "approved"


def test_rejecting_a_claim_without_a_reason_says_so_and_changes_nothing(client, world):
    from tests.factories import claim
    from web.models import Assignment

    pending = claim(world, "x", "d_a1")
    page = sign_in(client, "sec_a1")
    refused = client.post(f"/secretary/claims/{pending.id}",
                          data={"decision": "reject", "reason": " ", "confirmed": "1",
                                "csrf_token": csrf(page.text)}, follow_redirects=True)
    assert any(text.startswith("请检查填写的内容") and "请填写理由" in text
               for text in alerts(refused.text))
    world.session.expire_all()
    assert world.session.get(Assignment, pending.id).status == "pending"


def test_rejecting_asks_first_and_changes_nothing_until_confirmed(client, world):
    from tests.factories import claim
    from web.models import Assignment

    pending = claim(world, "x", "d_a1")
    page = sign_in(client, "sec_a1")
    form = {"decision": "reject", "reason": "重复认领", "csrf_token": csrf(page.text)}
    asked = client.post(f"/secretary/claims/{pending.id}", data=form)
    assert asked.status_code == 200 and "请确认" in asked.text and "确定驳回" in asked.text
    assert 'name="confirmed" value="1"' in asked.text and 'value="重复认领"' in asked.text
    world.session.expire_all()
    assert world.session.get(Assignment, pending.id).status == "pending"
    client.post(f"/secretary/claims/{pending.id}", data={**form, "confirmed": "1"})
    world.session.expire_all()
    assert world.session.get(Assignment, pending.id).status == "rejected"


def test_a_match_run_from_the_work_queue_proposes_with_reasons_in_words(client, world):
    from web.models import MatchProposal

    page = sign_in(client, "sec_a1")
    ran = client.post("/secretary/match", data={"csrf_token": csrf(page.text)},
                      follow_redirects=True)
    assert any(text.startswith("智能匹配完成") for text in alerts(ran.text))
    proposal = world.session.query(MatchProposal).filter_by(status="proposed").first()
    assert proposal is not None and "能够承接该事项" in ran.text
    approved = client.post(f"/secretary/proposals/{proposal.id}",
                           data={"decision": "approve", "csrf_token": csrf(ran.text)},
                           follow_redirects=True)
    assert "建议已批准,已向单位派单。" in alerts(approved.text)


def test_a_redirect_after_an_action_never_leaves_the_site(client, world):
    from tests.factories import claim

    pending = claim(world, "x", "d_a1")
    page = sign_in(client, "sec_a1")
    answer = client.post(f"/secretary/claims/{pending.id}",
                         data={"decision": "approve", "next": "//evil.example/x",
                               "csrf_token": csrf(page.text)})
    assert answer.status_code == 302 and answer.headers["Location"] == "/secretary"


def test_a_secretary_accepts_a_wish_from_the_queue_and_it_becomes_a_published_item(
        client, world):
    from tests.factories import category_id
    from web.models import DemandItem, MicroWish
    from web.services import wishes

    wish = wishes.submit_wish(world.session, actor=world.actor("res_a1"), title="想请人修门锁",
                              description="门锁坏了")
    page = sign_in(client, "sec_a1")
    assert "想请人修门锁" in page.text
    done = client.post(f"/secretary/wishes/{wish.id}/accept", data={
        "category_id": str(category_id(world.session)), "csrf_token": csrf(page.text)},
        follow_redirects=True)
    assert "微心愿已受理,已列入需求清单。" in alerts(done.text)
    world.session.expire_all()
    accepted = world.session.get(MicroWish, wish.id)
    assert accepted.status == "accepted"
    assert world.session.get(DemandItem, accepted.demand_id).status == "open"


def test_my_points_shows_the_lots_and_pages_through_the_history(client, world):
    for _ in range(25):
        fund_wallet(world, "res_a1", 2)
    sign_in(client, "res_a1")
    first = client.get("/me/points")
    assert 'data-testid="lots"' in first.text and "积分来源与到期时间" in first.text
    assert first.text.count("测试充值") == 20 and "page=2" in first.text
    second = client.get("/me/points?page=2")
    assert second.text.count("测试充值") == 5
    assert client.get("/me/points?page=x").status_code == 200


def test_the_catalogue_is_searchable_and_paged(client, world):
    for n in range(22):
        goods(world, name=f"挂面{n:02d}", price=5, stock=3)
    goods(world, name="大米", price=10, stock=3)
    sign_in(client, "res_a1")
    first = client.get("/market")
    assert "共 23 条,第 1 / 2 页" in first.text
    found = client.get("/market?q=大米")
    assert "大米" in found.text and "挂面01" not in found.text and "共 1 条" in found.text


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example", "/%09/evil.example",
                                    "/%5Cevil.example", "https://evil.example/",
                                    "javascript:alert(1)"])
def test_signing_in_never_sends_anyone_off_the_site(client, world, target):
    page = client.get("/login")
    answer = client.post("/login?next=" + target, data={
        "username": "res_a1", "password": "password123", "csrf_token": csrf(page.text)})
    assert answer.status_code == 302 and answer.headers["Location"] == "/home"
