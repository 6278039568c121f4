"""The public disclosure (公示) pages its completed work, searches it, and downloads each of its
tables whole as CSV or XLSX — with the same masking as the page: units by name, people by a
masked name, no beneficiary, phone or address."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import load_workbook

from tests.conftest import NOW
from tests.factories import claim, make_demand
from tests.integration.lovebank_helpers import key
from tests.pages.test_paging_queue import rows_of
from web.services import assignments, market, reports
from web.services.disclosure import RECENT

pytestmark = pytest.mark.db


def verified(world, title: str) -> None:
    """An item of a1 done by unit x and verified by the secretary."""
    world.ids[title] = make_demand(world.session, world, "a1", "sec_a1", title=title)
    share = claim(world, "x", title)
    assignments.approve_claim(world.session, actor=world.actor("sec_a1"),
                              assignment_id=share.id, now=NOW)
    report = reports.submit_report(
        world.session, actor=world.actor("unit_x"), demand_id=world[title],
        started_on=date(2026, 11, 18), ended_on=date(2026, 11, 19),
        volunteers=[{"name": "李志愿", "phone": "13600001111", "minutes": 60}],
        beneficiaries_served=1, value_fen=2000, now=NOW)
    reports.verify_report(world.session, actor=world.actor("sec_a1"), report_id=report.id,
                          now=NOW)


def donate(world, name: str, fen: int = 5000) -> None:
    market.donate_money(world.session, actor=world.actor("sec_a1"), community_id=world["a1"],
                        amount_fen=fen, donor_type="resident", donor_name=name, reason="捐款",
                        idempotency_key=key("pub"))


def test_the_completed_work_is_paged_and_searched(client, world):
    for n in range(RECENT + 1):
        verified(world, f"上门服务{n:02d}")
    first = client.get("/public/C-a1")
    assert first.status_code == 200 and f"共 {RECENT + 1} 条,第 1 / 2 页" in first.text
    second = client.get("/public/C-a1?page=2").text
    work = second[second.index('data-testid="work"'):second.index("</table>",
                                                                    second.index('data-testid="work"'))]
    assert work.count("<tr>") == 1 + 1  # the heading and the one item left
    found = client.get("/public/C-a1?q=服务07").text
    assert "共 1 条" in found and "上门服务07" in found


def test_each_table_downloads_whole_without_personal_data(client, world):
    verified(world, "探访独居老人")
    donate(world, "王小明", 12_345)
    work = rows_of(client.get("/public/C-a1?format=csv&table=work").data)
    assert work[0] == ["时间", "事项", "类别", "共建单位"]
    assert [r[1] for r in work[1:]] == ["探访独居老人"] and work[1][3] == "Unit x"
    units = rows_of(client.get("/public/C-a1?format=csv&table=units").data)
    assert units[1] == ["Unit x", "1", "20.0"]
    donations = rows_of(client.get("/public/C-a1?format=csv&table=donations").data)
    assert donations[1][1:3] == ["王**", "123.45"]
    everything = b"".join(client.get(f"/public/C-a1?format=csv&table={t}").data
                          for t in ("work", "units", "donations")).decode("utf-8-sig")
    for personal in ("王小明", "王奶奶", "13712345678", "3号楼", "李志愿", "13600001111"):
        assert personal not in everything
    xlsx = client.get("/public/C-a1?format=xlsx&table=donations")
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert [c.value for c in sheet[2]][1] == "王**"


def test_the_page_links_each_tables_download_and_shows_no_more_than_it_should(client, world):
    for n in range(RECENT + 2):
        donate(world, f"赵{n:02d}", 100)
    page = client.get("/public/C-a1").text
    for table in ("work", "units", "donations"):
        assert f"table={table}" in page and "format=xlsx" in page
    donations = page[page.index('data-testid="donations"'):]
    assert donations.count("赵") == RECENT  # the latest on the page …
    rows = rows_of(client.get("/public/C-a1?format=csv&table=donations").data)
    assert len(rows) == 1 + RECENT + 2  # … and every one in the download
    assert client.get("/public/NOPE?format=csv").status_code == 404
