"""Importing lists on the pages: the template to download, the upload, the preview with each
row's errors in Chinese beside the row, the confirmed import of all rows, a second send that
imports nothing more, and people outside the community or unit kept out; plus the same
import through the API for integrators."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from tests.pages.helpers import alerts, csrf, field_error, sign_in
from web.models import AuditEvent, DemandItem, ResourceItem

pytestmark = pytest.mark.db

HEADERS = ["标题", "类别", "数量", "紧急程度", "截止时间", "网格"]
GOOD = [["独居老人探访(导入)", "养老助老", 2, "紧急", "2026-12-31", "G1"],
        ["楼道灯维修(导入)", "维修维护", 1, "一般", "2026-12-20 18:00", ""]]
BAD_ROW = ["楼道灯维修(导入)", "养老助老", 1, "一般", "明天", ""]


@pytest.fixture(autouse=True)
def upload_folder(app, tmp_path):
    app.config["LINLI_IMPORT_FOLDER"] = str(tmp_path / "imports")
    return tmp_path / "imports"


def xlsx(rows, headers=HEADERS) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, kind: str, data: bytes, name: str = "清单.xlsx", **form):
    page = client.get(f"/import/{kind}")
    return client.post(f"/import/{kind}", data={"csrf_token": csrf(page.text),
                                                "file": (io.BytesIO(data), name), **form},
                       content_type="multipart/form-data")


def commit_form(html: str) -> dict:
    form = re.search(r'data-testid="commit-form">(.*?)</form>', html, re.S).group(1)
    return dict(re.findall(r'name="(\w+)" value="([^"]*)"', form))


def count(world, model) -> int:
    # No rollback here: the test's session shares the app's connection, and rolling back its
    # savepoint would undo what the app wrote after it.
    return world.session.scalar(select(func.count()).select_from(model))


def errors_of(html: str, row: int) -> str:
    cell = re.search(rf'data-testid="errors-{row}"[^>]*>(.*?)</td>', html, re.S).group(1)
    return re.sub(r"<[^>]+>", "", cell)


# ---- the page and the template ----------------------------------------------------------------

def test_the_secretary_finds_the_import_page_in_her_menu_in_chinese(client, world):
    home = sign_in(client, "sec_a1")
    assert 'href="/import/demands"' in home.text and "导入需求" in home.text
    page = client.get("/import/demands")
    assert page.status_code == 200
    assert '<label class="form-label" for="file">' in page.text
    assert 'accept=".xlsx,.csv"' in page.text
    assert "每列怎么填" in page.text and "a1第一网格" in page.text  # the grids to choose from


def test_the_xlsx_template_opens_in_openpyxl_with_chinese_headers_notes_and_values(client, world):
    sign_in(client, "sec_a1")
    got = client.get("/import/demands/template.xlsx")
    assert got.status_code == 200 and got.mimetype.endswith("spreadsheetml.sheet")
    assert "filename*=UTF-8''" in got.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(got.data))
    assert book.sheetnames == ["需求清单", "填写说明", "可填写的值"]
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    assert rows[0][:3] == ("标题*", "类别*", "数量*") and len(rows) == 2  # one example row
    notes = [row[0] for row in book["填写说明"].iter_rows(values_only=True)]
    assert "截止时间" in notes
    values = [row[0] for row in book["可填写的值"].iter_rows(values_only=True)]
    assert "elderly_care" in values and "G1" in values


def test_the_filled_in_template_example_passes_its_own_check(client, world):
    sign_in(client, "sec_a1")
    template = client.get("/import/demands/template.xlsx").data
    page = upload(client, "demands", template)
    assert page.status_code == 200, errors_of(page.text, 2)
    assert "共 1 行,其中 0 行有错误" in page.text


def test_the_csv_template_is_utf8_with_a_bom_and_english_for_an_english_user(client, world):
    page = sign_in(client, "unit_x")
    client.post("/language", data={"lang": "en", "next": "/", "csrf_token": csrf(page.text)})
    got = client.get("/import/resources/template.csv")
    assert got.data.startswith("\ufeff".encode())
    header, example = got.data.decode("utf-8-sig").splitlines()[:2]
    assert header.startswith("Title*,Kind*,Category*")
    assert "volunteer service" in example


# ---- the preview ------------------------------------------------------------------------------

def test_a_bad_row_shows_its_error_in_chinese_beside_it_and_nothing_is_saved(client, world):
    sign_in(client, "sec_a1")
    before = count(world, DemandItem)
    page = upload(client, "demands", xlsx([GOOD[0], BAD_ROW]))
    assert page.status_code == 422
    assert "共 2 行,其中 1 行有错误" in page.text
    assert "截止时间: 不是日期" in errors_of(page.text, 3)
    assert "没问题" in errors_of(page.text, 2)
    assert 'id="import-button"' not in page.text and 'data-testid="commit-form"' not in page.text
    assert "什么都还没有保存" in page.text
    assert count(world, DemandItem) == before


def test_file_problems_and_unknown_columns_are_told_in_chinese(client, world):
    sign_in(client, "sec_a1")
    missing = upload(client, "demands", xlsx([["a", 1]], ["标题", "数量"]))
    assert "缺少“类别”这一列" in missing.text
    old = upload(client, "demands", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64, "旧.xls")
    assert "旧版 Excel 文件" in old.text
    extra = upload(client, "demands", xlsx([GOOD[0] + ["x"]], [*HEADERS, "备注"]))
    assert extra.status_code == 200 and "不认识“备注”这一列" in extra.text


def test_no_file_chosen_is_said_under_the_file_field(client, world):
    page = sign_in(client, "sec_a1") and client.get("/import/demands")
    sent = client.post("/import/demands", data={"csrf_token": csrf(page.text)},
                       content_type="multipart/form-data")
    assert sent.status_code == 422 and field_error(sent.text, "file") == "请选择一个文件。"


def test_the_preview_speaks_english_to_an_english_user(client, world):
    page = sign_in(client, "sec_a1")
    client.post("/language", data={"lang": "en", "next": "/", "csrf_token": csrf(page.text)})
    page = upload(client, "demands", xlsx([BAD_ROW]))
    assert "截止时间: Not a date" in errors_of(page.text, 2)


# ---- the import -------------------------------------------------------------------------------

def test_a_clean_file_is_imported_whole_after_a_confirmation(client, world):
    sign_in(client, "sec_a1")
    before = count(world, DemandItem)
    preview = upload(client, "demands", xlsx(GOOD), publish="1")
    assert preview.status_code == 200 and "共 2 行,其中 0 行有错误" in preview.text
    assert 'data-confirm="确定现在导入这个文件的全部行吗?"' in preview.text
    form = commit_form(preview.text)
    asked = client.post("/import/demands/commit", data=form)  # no JavaScript: the server asks
    assert asked.status_code == 200 and "请确认" in asked.text
    assert count(world, DemandItem) == before
    done = client.post("/import/demands/commit", data={**form, "confirmed": "1"},
                       follow_redirects=True)
    assert alerts(done.text) == ["已导入 2 条需求。"]
    assert "独居老人探访(导入)" in done.text and 'id="list-link"' in done.text
    made = world.session.scalars(select(DemandItem).where(
        DemandItem.title.like("%(导入)"))).all()
    assert len(made) == 2 and {d.status for d in made} == {"open"}
    assert count(world, DemandItem) == before + 2
    assert world.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.entity_id.in_([d.id for d in made]),
        AuditEvent.entity_type == "demand_items")) == 4  # created and published, each


def test_sending_the_same_import_again_imports_nothing_more(client, world):
    sign_in(client, "sec_a1")
    form = {**commit_form(upload(client, "demands", xlsx(GOOD)).text), "confirmed": "1"}
    first = client.post("/import/demands/commit", data=form, follow_redirects=True)
    again = client.post("/import/demands/commit", data=form, follow_redirects=True)
    assert first.request.path == again.request.path
    assert "这个文件已经导入过了,不会重复导入。" in alerts(again.text)
    assert count(world, DemandItem) == 2 + 2


def test_a_changed_hash_or_another_secretarys_token_imports_nothing(app, client, world):
    sign_in(client, "sec_a1")
    form = {**commit_form(upload(client, "demands", xlsx(GOOD)).text), "confirmed": "1"}
    tampered = client.post("/import/demands/commit", data={**form, "sha256": "0" * 64},
                           follow_redirects=True)
    assert tampered.request.path == "/import/demands"
    other = app.test_client()
    page = sign_in(other, "sec_a2")
    stolen = other.post("/import/demands/commit",
                        data={**form, "csrf_token": csrf(page.text)}, follow_redirects=True)
    assert "上传的文件已经找不到了,请重新上传。" in alerts(stolen.text)
    assert count(world, DemandItem) == 2


def test_a_unit_admin_imports_resources_for_her_unit(client, world):
    home = sign_in(client, "unit_x")
    assert 'href="/import/resources"' in home.text
    rows = [["周末义诊", "志愿服务", "医疗健康", 10, 2, 50, "C-a1"]]
    headers = ["标题", "资源类型", "类别", "总数量", "每次可提供", "折合金额(元)", "服务社区"]
    preview = upload(client, "resources", xlsx(rows, headers))
    assert preview.status_code == 200, errors_of(preview.text, 2)
    done = client.post("/import/resources/commit",
                       data={**commit_form(preview.text), "confirmed": "1"},
                       follow_redirects=True)
    assert alerts(done.text) == ["已导入 1 条资源。"]
    assert 'href="/unit/resources"' in done.text
    item = world.session.scalars(select(ResourceItem).where(ResourceItem.title == "周末义诊")).one()
    assert (item.unit_id, item.status, item.value_fen_per_unit) == (world["x"], "draft", 5000)


@pytest.mark.parametrize(("user", "path"), [
    ("res_a1", "/import/demands"), ("unit_x", "/import/demands"),
    ("sec_a1", "/import/resources"), ("res_a1", "/import/resources/template.xlsx"),
])
def test_people_without_the_role_are_refused(client, world, user, path):
    sign_in(client, user)
    assert client.get(path).status_code == 403


def test_the_done_page_of_someone_elses_import_is_not_found(app, client, world):
    sign_in(client, "sec_a1")
    form = {**commit_form(upload(client, "demands", xlsx(GOOD)).text), "confirmed": "1"}
    done = client.post("/import/demands/commit", data=form)
    other = app.test_client()
    sign_in(other, "sec_a2")
    assert other.get(done.headers["Location"]).status_code == 404


# ---- the API for integrators ------------------------------------------------------------------

def api_post(client, world, query: str, data: bytes, user="sec_a1", **headers):
    return client.post(f"/api/v1/import/demands?community_id={world['a1']}&{query}",
                       data={"file": (io.BytesIO(data), "d.xlsx")},
                       content_type="multipart/form-data",
                       headers={**world.headers(user), **headers})


def test_the_api_dry_run_answers_the_preview_and_saves_nothing(client, world):
    got = api_post(client, world, "dry_run=1", xlsx([GOOD[0], BAD_ROW]))
    assert got.status_code == 200
    body = got.get_json()
    assert (body["dry_run"], body["ok"], body["rows"], body["rows_with_errors"]) == (
        True, False, 2, 1)
    assert body["problems"] == [{"row": 3, "column": "截止时间", "code": "not_a_date",
                                 "params": {}}]
    assert count(world, DemandItem) == 2


def test_the_api_refuses_a_bad_file_whole_in_the_one_error_shape(client, world):
    got = api_post(client, world, "", xlsx([GOOD[0], BAD_ROW]))
    assert got.status_code == 422
    error = got.get_json()["error"]
    assert error["code"] == "validation_error" and error["rows_with_errors"] == 1
    assert error["problems"][0]["row"] == 3
    assert count(world, DemandItem) == 2


def test_the_api_imports_once_per_idempotency_key(client, world):
    data = xlsx(GOOD)  # made once: a workbook records when it was made
    first = api_post(client, world, "publish=1", data, **{"Idempotency-Key": "k-1"})
    again = api_post(client, world, "publish=1", data, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 200 and len(first.get_json()["created_ids"]) == 2
    assert again.get_json()["created_ids"] == first.get_json()["created_ids"]
    assert again.get_json()["replayed"] is True
    assert count(world, DemandItem) == 4
    other = api_post(client, world, "publish=1", xlsx(GOOD[:1]), **{"Idempotency-Key": "k-1"})
    assert other.status_code == 409  # the same key with another file
    assert other.get_json()["error"]["code"] == "idempotency_key_reused"


def test_the_api_keeps_another_communitys_secretary_out(client, world):
    got = api_post(client, world, "dry_run=1", xlsx(GOOD), user="sec_b1")
    assert got.status_code == 403 and got.get_json()["error"]["code"] == "forbidden"
