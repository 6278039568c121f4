"""The secretary imports her demand list from Excel in a real browser: she downloads the
template, uploads a sheet with one bad row, reads the error beside the row, uploads the
corrected sheet, confirms, and finds the items on her demand list. Screenshots on a phone and
on a desktop."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook, load_workbook
from playwright.sync_api import expect

from tests.e2e.conftest import DESKTOP, PHONE
from tests.e2e.test_journeys import SECRETARY, open_menu, sign_in

pytestmark = pytest.mark.e2e

HEADERS = ["标题", "类别", "数量", "所需技能", "紧急程度", "截止时间", "网格", "受益人数"]


def sheet(rows: list[list]) -> bytes:
    book = Workbook()
    ws = book.active
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def choose(page, name: str, data: bytes) -> None:
    page.locator("#file").set_input_files(files=[{
        "name": name, "buffer": data,
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    page.locator("#check-button").click()


@pytest.mark.parametrize(("device", "tag"), [(PHONE, "phone"), (DESKTOP, "desktop")],
                         ids=["phone", "desktop"])
def test_the_secretary_imports_demands_from_a_sheet_after_fixing_a_bad_row(
        open_page, shot, device, tag):
    titles = [f"导入测试{tag}:独居老人探访", f"导入测试{tag}:楼道灯维修"]
    good = [[titles[0], "养老助老", 2, "陪护、聊天", "紧急", "2026-12-31", "G01", 1],
            [titles[1], "维修维护", 1, "电工", "一般", "2026-12-20 18:00", "", ""]]
    bad = [good[0], [*good[1][:5], "下周", *good[1][6:]]]
    page = open_page(device)
    sign_in(page, SECRETARY)
    open_menu(page)
    page.locator('#nav a[href="/import/demands"]').click()
    expect(page).to_have_url(re.compile(r"/import/demands$"))
    expect(page.locator("#file")).to_have_attribute("accept", ".xlsx,.csv")
    shot(page, "form")

    with page.expect_download() as download:
        page.locator("#template-xlsx").click()
    with open(download.value.path(), "rb") as handle:
        template = load_workbook(io.BytesIO(handle.read()))
    assert template.worksheets[0]["A1"].value == "标题*" and len(template.sheetnames) == 3

    choose(page, "需求清单.xlsx", sheet(bad))
    expect(page.get_by_test_id("summary")).to_have_text("共 2 行,其中 1 行有错误")
    expect(page.get_by_test_id("errors-3")).to_contain_text("截止时间: 不是日期")
    expect(page.get_by_test_id("errors-2")).to_contain_text("没问题")
    expect(page.locator("#import-button")).to_have_count(0)
    shot(page, "errors")

    choose(page, "需求清单.xlsx", sheet(good))
    expect(page.get_by_test_id("summary")).to_have_text("共 2 行,其中 0 行有错误")
    shot(page, "clean")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.locator("#import-button").click()
    expect(page.get_by_test_id("done")).to_have_text("已导入 2 条需求。")
    assert asked == ["确定现在导入这个文件的全部行吗?"]
    shot(page, "done")

    page.locator("#list-link").click()
    for title in titles:
        expect(page.locator("main")).to_contain_text(title)
    shot(page, "list")
