"""Importing demand and resource lists from XLSX and CSV, on the service layer: reading every
kind of file, recognising headers in Chinese or English, each kind of error with its row and
column, the preview writing nothing, all rows or none, one import per stored upload, and who may
import where."""

from __future__ import annotations

import codecs
import csv
import io
from datetime import UTC, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from tests.conftest import NOW
from tests.factories import category_id
from web.api.demands import DemandIn
from web.api.resources import ResourceIn
from web.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from web.models import AuditEvent, Category, DemandItem, ResourceItem
from web.services import interchange, places
from web.services.interchange import MAX_ROWS, Problem

pytestmark = pytest.mark.db

HEADERS = ["标题", "类别", "数量", "所需技能", "紧急程度", "截止时间", "网格", "受益人数"]
GOOD = [["独居老人探访", "养老助老", 2, "陪护、聊天", "紧急", "2026-12-31", "G1", 1],
        ["楼道灯维修", "repairs", "3", "电工", "", datetime(2026, 12, 20, 18, 0), "", ""]]
RESOURCE_HEADERS = ["标题", "资源类型", "类别", "总数量", "每次可提供", "折合金额(元)", "服务社区"]


# ---- helpers ----------------------------------------------------------------------------------

def xlsx(rows: list[list], headers: list[str] = HEADERS) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_text(rows: list[list], headers: list[str] = HEADERS) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def preview(world, data: bytes, *, user="sec_a1", community="a1", filename="需求.xlsx", **kw):
    return interchange.preview_import(world.session, actor=world.actor(user), kind="demands",
                                      scope_id=world[community], filename=filename, data=data,
                                      schema=DemandIn, now=NOW, **kw)


def commit(world, data: bytes, *, user="sec_a1", community="a1", filename="需求.xlsx", **kw):
    return interchange.commit_import(world.session, actor=world.actor(user), kind="demands",
                                     scope_id=world[community], filename=filename, data=data,
                                     schema=DemandIn, now=NOW, **kw)


def resource_file(rows: list[list], headers=RESOURCE_HEADERS) -> bytes:
    return xlsx(rows, headers)


def count(world, model) -> int:
    world.session.rollback()
    return world.session.scalar(select(func.count()).select_from(model))


def codes(result) -> list[tuple]:
    return [(p.row, p.column, p.code) for p in result.all_problems()]


# ---- reading files ----------------------------------------------------------------------------

def test_an_xlsx_with_chinese_headers_is_previewed_row_by_row_and_nothing_is_written(world):
    before = count(world, DemandItem), count(world, AuditEvent)
    result = preview(world, xlsx(GOOD))
    assert result.ok and result.rows_with_errors == 0
    assert [row.number for row in result.rows] == [2, 3]
    first = result.rows[0]
    assert first.cells["title"] == "独居老人探访" and first.cells["urgency"] == "紧急"
    assert first.data["category_id"] == category_id(world.session, "elderly_care")
    assert first.data["required_skills"] == ["陪护", "聊天"]
    assert first.data["deadline"] == datetime(2026, 12, 31, 15, 59, tzinfo=UTC)  # 23:59 local
    assert first.data["grid_id"] == world["g_a1"]
    assert result.rows[1].data["quantity_needed"] == 3
    assert result.rows[1].data["deadline"] == datetime(2026, 12, 20, 10, 0, tzinfo=UTC)
    assert (count(world, DemandItem), count(world, AuditEvent)) == before


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_csv_in_utf8_with_or_without_bom_gbk_and_utf16_reads_the_same(world, encoding):
    text = csv_text([row[:5] + ["2026-12-31 09:30"] + row[6:] for row in GOOD])
    if encoding == "utf-16":
        text = text.replace(",", "\t")  # Excel's "Unicode text" is tab-separated UTF-16
    result = preview(world, text.encode(encoding), filename="需求.csv")
    assert result.ok, codes(result)
    assert [row.data["title"] for row in result.rows] == ["独居老人探访", "楼道灯维修"]
    assert result.rows[0].data["deadline"] == datetime(2026, 12, 31, 1, 30, tzinfo=UTC)


def test_a_utf8_bom_is_not_taken_as_part_of_the_first_header(world):
    data = codecs.BOM_UTF8 + csv_text(GOOD[:1]).encode()
    assert preview(world, data, filename="x.csv").columns[0] == ("title", "标题")


def test_english_headers_other_spellings_and_marks_are_recognised(world):
    headers = ["Title*", "CATEGORY", "Quantity needed", " 紧急程度 ", "Grid (code)", "需求描述"]
    result = preview(world, xlsx([["Fix a light", "Repairs and maintenance", 1, "critical",
                                   "a1第一网格", "Stairwell 3"]], headers))
    assert result.ok, codes(result)
    data = result.rows[0].data
    assert data["urgency"] == "critical" and data["grid_id"] == world["g_a1"]
    assert data["description"] == "Stairwell 3"
    assert data["category_id"] == category_id(world.session, "repairs")


def test_unknown_columns_are_reported_and_ignored_and_empty_rows_skipped(world):
    headers = [*HEADERS, "序号?", "备注"]
    rows = [GOOD[0] + [1, "x"], [None] * 10, ["", " "], GOOD[1] + [2, "y"]]
    result = preview(world, xlsx(rows, headers))
    assert result.ok
    assert [(p.column, p.code) for p in result.notices] == [("序号?", "unknown_column"),
                                                             ("备注", "unknown_column")]
    assert [row.number for row in result.rows] == [2, 5]  # the sheet's own row numbers


def test_a_missing_required_column_or_a_column_given_twice_stops_the_file(world):
    result = preview(world, xlsx([["a", 1]], ["标题", "数量"]))
    assert not result.ok and result.rows == []
    assert [(p.code, p.params["zh"]) for p in result.problems] == [("missing_column", "类别")]
    twice = preview(world, xlsx([["a", "养老助老", 1, "b"]], ["标题", "类别", "数量", "Title"]))
    assert [(p.column, p.code, p.params) for p in twice.problems] == [
        ("Title", "duplicate_column", {"first": "标题"})]


BAD_CELLS = [
    ("标题", "", "required"),
    ("标题", "长" * 201, "length"),
    ("类别", "不存在的类别", "unknown_category"),
    ("数量", "两个", "not_a_number"),
    ("数量", "2.5", "not_a_number"),
    ("数量", 0, "out_of_range"),
    ("所需技能", "长" * 31, "length"),
    ("紧急程度", "马上", "unknown_choice"),
    ("截止时间", "明天", "not_a_date"),
    ("截止时间", "2026-13-01", "not_a_date"),
    ("网格", "G9", "unknown_grid"),
    ("受益人数", -1, "out_of_range"),
]


@pytest.mark.parametrize(("header", "value", "code"), BAD_CELLS)
def test_each_bad_cell_is_named_by_its_row_and_header(world, header, value, code):
    row = list(GOOD[0])
    row[HEADERS.index(header)] = value
    result = preview(world, xlsx([GOOD[1], row]))
    assert not result.ok and result.rows_with_errors == 1
    assert codes(result) == [(3, header, code)]


def test_problems_carry_what_the_page_needs_to_word_them(world):
    row = list(GOOD[0])
    row[HEADERS.index("紧急程度")] = "马上"
    row[HEADERS.index("数量")] = 0
    result = preview(world, xlsx([row]))
    assert Problem(2, "紧急程度", "unknown_choice",
                   {"value": "马上", "choices": ["normal", "urgent", "critical"]}) \
        in result.all_problems()
    assert Problem(2, "数量", "out_of_range", {"min": "1", "max": "100000"}) \
        in result.all_problems()


def test_a_window_that_ends_before_it_starts_and_yes_no_words_are_checked(world):
    headers = ["标题", "类别", "数量", "开始时间", "结束时间", "特殊困难群体"]
    result = preview(world, xlsx([["a", "其他", 1, "2026-12-02", "2026-12-01", "是"],
                                  ["b", "其他", 1, "", "", "也许"],
                                  ["c", "其他", 1, "", "", "否"]], headers))
    assert codes(result) == [(2, "结束时间", "ends_before_start"),
                             (3, "特殊困难群体", "not_yes_no")]
    assert result.rows[2].data["beneficiary_vulnerable"] is False


@pytest.mark.parametrize(("data", "filename", "code"), [
    (b"", "x.csv", "empty"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old.xls", "old_excel"),
    (b"PK\x03\x04 not really a zip", "x.xlsx", "unreadable"),
    (b"\x81\x30\xff\xfe\xfd", "x.csv", "unreadable"),
    ("标题,类别,数量\n".encode(), "x.csv", "no_rows"),
    (b"x" * (interchange.MAX_BYTES + 1), "big.csv", "too_large"),
])
def test_files_that_cannot_be_imported_are_refused_whole(world, data, filename, code):
    result = preview(world, data, filename=filename)
    assert [p.code for p in result.problems] == [code] and result.rows == []


def test_more_rows_than_the_limit_are_refused(world):
    text = csv_text([["探访", "其他", 1]] * (MAX_ROWS + 1), ["标题", "类别", "数量"])
    result = preview(world, text.encode(), filename="x.csv")
    assert [(p.code, p.params) for p in result.problems] == [("too_many_rows", {"max": MAX_ROWS})]


# ---- what the services refuse shows in the preview ------------------------------------------

def test_the_preview_shows_what_only_the_service_refuses(world):
    # A grid worker may record only in her own grid: the schema cannot know, the service does.
    other = places.create_grid(world.session, actor=world.actor("sec_a1"),
                               community_id=world["a1"], code="G2", name="第二网格")
    rows = [["在本网格", "其他", 1, "", "", "", "G1", ""], ["在别的网格", "其他", 1, "", "", "", "G2", ""]]
    result = preview(world, xlsx(rows), user="grid_a1")
    assert other.id and [(p.row, p.code) for p in result.all_problems()] == [(3, "not_allowed")]
    assert count(world, DemandItem) == 2


def test_a_resource_row_asking_more_per_occasion_than_in_all_is_refused(world):
    rows = [["周末义诊", "志愿服务", "医疗健康", 10, 20, 50, "C-a1"]]
    result = interchange.preview_import(
        world.session, actor=world.actor("unit_x"), kind="resources", scope_id=world["x"],
        filename="r.xlsx", data=resource_file(rows), schema=ResourceIn, now=NOW)
    assert codes(result) == [(2, "每次可提供", "more_than_total")]


# ---- all rows or none -------------------------------------------------------------------------

def test_a_good_file_records_every_row_with_its_audit_in_one_go(world):
    before = count(world, DemandItem)
    result = commit(world, xlsx(GOOD), publish=True)
    assert len(result.ids) == 2 and not result.replayed
    assert count(world, DemandItem) == before + 2
    made = world.session.scalars(select(DemandItem).where(DemandItem.id.in_(result.ids))
                                 .order_by(DemandItem.id)).all()
    assert [(d.title, d.status, d.source, d.created_by) for d in made] == [
        ("独居老人探访", "open", "secretary", world.users["sec_a1"]),
        ("楼道灯维修", "open", "secretary", world.users["sec_a1"])]
    assert made[0].urgency == "urgent" and made[1].urgency == "normal"
    actions = world.session.execute(select(AuditEvent.entity_id, AuditEvent.action).where(
        AuditEvent.entity_type == "demand_items", AuditEvent.entity_id.in_(result.ids))
        .order_by(AuditEvent.id)).all()
    assert [a for _id, a in actions] == ["created", "published", "created", "published"]


def test_a_file_with_one_bad_row_records_nothing(world):
    rows = [GOOD[0], GOOD[1], ["坏行", "不存在的类别", 1]]
    before = count(world, DemandItem), count(world, AuditEvent)
    with pytest.raises(ValidationError) as refused:
        commit(world, xlsx(rows))
    assert refused.value.params["rows_with_errors"] == 1
    assert refused.value.params["problems"][0]["row"] == 4
    assert (count(world, DemandItem), count(world, AuditEvent)) == before


def test_a_row_the_service_refuses_at_the_end_undoes_the_rows_before_it(world):
    # The last row passes every check but the service's own (a grid worker, another grid):
    # the rows recorded before it in the same transaction must go too.
    places.create_grid(world.session, actor=world.actor("sec_a1"), community_id=world["a1"],
                       code="G2", name="第二网格")
    rows = [["一", "其他", 1, "", "", "", "G1", ""], ["二", "其他", 1, "", "", "", "G1", ""],
            ["三", "其他", 1, "", "", "", "G2", ""]]
    before = count(world, DemandItem), count(world, AuditEvent)
    with pytest.raises(ValidationError) as refused:
        commit(world, xlsx(rows), user="grid_a1")
    assert [p["code"] for p in refused.value.params["problems"]] == ["not_allowed"]
    assert (count(world, DemandItem), count(world, AuditEvent)) == before


def test_a_grid_worker_imports_into_her_grid_as_the_grid_worker(world):
    rows = [["一", "其他", 1, "", "", "", "G1", ""]]
    result = commit(world, xlsx(rows), user="grid_a1")
    demand = world.session.get(DemandItem, result.ids[0])
    assert (demand.source, demand.status, demand.grid_id) == ("grid_worker", "draft",
                                                              world["g_a1"])


def test_the_same_upload_sent_twice_is_imported_once(world):
    data = xlsx(GOOD)
    first = commit(world, data, token="t" * 32)
    again = commit(world, data, token="t" * 32)
    assert again.replayed and again.ids == first.ids
    assert count(world, DemandItem) == 2 + 2
    found = interchange.get_import_result(world.session, actor=world.actor("sec_a1"),
                                          kind="demands", token="t" * 32)
    assert found.ids == first.ids and found.titles == ["独居老人探访", "楼道灯维修"]
    with pytest.raises(NotFoundError):
        interchange.get_import_result(world.session, actor=world.actor("sec_a2"),
                                      kind="demands", token="t" * 32)


def test_a_category_retired_between_preview_and_import_stops_the_whole_import(world):
    data = xlsx(GOOD)
    assert preview(world, data).ok
    repairs = world.session.get(Category, category_id(world.session, "repairs"))
    repairs.is_active = False
    world.session.commit()
    with pytest.raises(ValidationError):
        commit(world, data)
    assert count(world, DemandItem) == 2


def test_resources_are_recorded_for_the_unit_with_their_service_area_and_value(world):
    rows = [["周末义诊", "志愿服务", "health", 10, 2, "50.5", "C-a1、a2社区"],
            ["会议室", "场地", "其他", 4, 1, 0, ""]]
    result = interchange.commit_import(
        world.session, actor=world.actor("unit_x"), kind="resources", scope_id=world["x"],
        filename="r.xlsx", data=resource_file(rows), schema=ResourceIn, now=NOW)
    made = world.session.scalars(select(ResourceItem).where(ResourceItem.id.in_(result.ids))
                                 .order_by(ResourceItem.id)).all()
    assert [(r.title, r.kind, r.unit_id, r.status, r.value_fen_per_unit) for r in made] == [
        ("周末义诊", "volunteer_service", world["x"], "draft", 5050),
        ("会议室", "venue", world["x"], "draft", 0)]
    assert sorted(c.id for c in made[0].service_communities) == [world["a1"], world["a2"]]
    assert world.session.scalar(select(func.count()).select_from(AuditEvent).where(
        AuditEvent.entity_type == "resource_items", AuditEvent.entity_id.in_(result.ids),
        AuditEvent.action == "created")) == 2


def test_money_and_communities_that_cannot_be_read_are_named(world):
    rows = [["a", "志愿服务", "其他", 1, 1, "五十", ""], ["b", "志愿服务", "其他", 1, 1, "1.234", ""],
            ["c", "志愿服务", "其他", 1, 1, "", "不存在社区"], ["d", "goods", "其他", 1, 1, "", ""],
            ["e", "服务", "其他", 1, 1, "", ""]]
    result = interchange.preview_import(
        world.session, actor=world.actor("unit_x"), kind="resources", scope_id=world["x"],
        filename="r.xlsx", data=resource_file(rows), schema=ResourceIn, now=NOW)
    assert codes(result) == [(2, "折合金额(元)", "not_money"), (3, "折合金额(元)", "not_money"),
                             (4, "服务社区", "unknown_community"),
                             (6, "资源类型", "unknown_choice")]


# ---- who may import where ---------------------------------------------------------------------

@pytest.mark.parametrize(("user", "kind", "scope"), [
    ("sec_a2", "demands", "a1"),     # a secretary of another community
    ("sec_b1", "demands", "a1"),     # … of another subdistrict
    ("grid_b1", "demands", "a1"),    # a grid worker elsewhere
    ("unit_x", "demands", "a1"),     # a unit admin
    ("res_a1", "demands", "a1"),     # a resident
    ("unit_y", "resources", "x"),    # the admin of another unit
    ("sec_a1", "resources", "x"),    # a secretary
])
def test_no_one_imports_outside_their_own_community_or_unit(world, user, kind, scope):
    schema = DemandIn if kind == "demands" else ResourceIn
    data = xlsx(GOOD) if kind == "demands" else resource_file([["会议室", "场地", "其他", 4, 1, 0, ""]])
    before = count(world, DemandItem), count(world, ResourceItem)
    for run in (interchange.preview_import, interchange.commit_import):
        with pytest.raises(PermissionDeniedError):
            run(world.session, actor=world.actor(user), kind=kind, scope_id=world[scope],
                filename="f.xlsx", data=data, schema=schema, now=NOW)
    assert (count(world, DemandItem), count(world, ResourceItem)) == before


def test_importing_into_a_community_that_does_not_exist_is_refused_like_any_other(world):
    """A secretary is refused on her role (403) whether or not the community exists, so the
    answer tells nothing; the system itself is told it does not exist."""
    from web.domain.actor import SYSTEM
    from web.errors import PermissionDeniedError

    with pytest.raises(PermissionDeniedError):
        interchange.preview_import(world.session, actor=world.actor("sec_a1"), kind="demands",
                                   scope_id=999_999, filename="f.xlsx", data=xlsx(GOOD),
                                   schema=DemandIn, now=NOW)
    with pytest.raises(NotFoundError):
        interchange.preview_import(world.session, actor=SYSTEM, kind="demands",
                                   scope_id=999_999, filename="f.xlsx", data=xlsx(GOOD),
                                   schema=DemandIn, now=NOW)


# ---- stored uploads ---------------------------------------------------------------------------

def test_a_stored_upload_is_given_back_only_to_its_uploader_for_the_same_import(world, tmp_path):
    data = xlsx(GOOD)
    actor = world.actor("sec_a1")
    stored = interchange.stash_upload(tmp_path, actor=actor, kind="demands",
                                      scope_id=world["a1"], filename="需求.xlsx", data=data,
                                      now=NOW)
    back = interchange.load_upload(tmp_path, stored.token, actor=actor, kind="demands",
                                   scope_id=world["a1"], sha256=stored.sha256)
    assert back.data == data and back.filename == "需求.xlsx"
    for token, who, kind in [(stored.token, "sec_a2", "demands"), (stored.token, "sec_a1",
                                                                     "resources"),
                             ("../../etc/passwd", "sec_a1", "demands"), ("x" * 32, "sec_a1",
                                                                          "demands")]:
        with pytest.raises(NotFoundError):
            interchange.load_upload(tmp_path, token, actor=world.actor(who), kind=kind,
                                    scope_id=world["a1"])
    with pytest.raises(ConflictError):  # the page's hidden hash must be the stored file's
        interchange.load_upload(tmp_path, stored.token, actor=actor, kind="demands",
                                scope_id=world["a1"], sha256="0" * 64)
    (tmp_path / f"{stored.token}.bin").write_bytes(data + b"changed")
    with pytest.raises(ConflictError):
        interchange.load_upload(tmp_path, stored.token, actor=actor, kind="demands",
                                scope_id=world["a1"])


def test_uploads_older_than_a_day_are_swept(world, tmp_path):
    actor = world.actor("sec_a1")
    old = interchange.stash_upload(tmp_path, actor=actor, kind="demands", scope_id=world["a1"],
                                   filename="a.csv", data=b"x", now=NOW)
    assert interchange.sweep_uploads(tmp_path, now=NOW.replace(day=21, hour=3)) == 1
    assert not (tmp_path / f"{old.token}.bin").exists()


def test_a_title_row_above_the_headers_is_passed_over(world):
    book = Workbook()
    sheet = book.active
    sheet.append(["东城社区需求清单(2026年12月)"])
    sheet.append([])
    sheet.append(HEADERS)
    sheet.append(GOOD[0])
    out = io.BytesIO()
    book.save(out)
    result = preview(world, out.getvalue())
    assert result.ok, codes(result)
    assert [row.number for row in result.rows] == [4] and result.notices == []


def test_blank_rows_between_rows_do_not_hide_rows_beyond_them(world):
    rows = [GOOD[0], *([[None]] * 500), GOOD[1]]
    result = preview(world, xlsx(rows))
    assert [row.number for row in result.rows] == [2, 503]


@pytest.mark.parametrize("data,name", [
    pytest.param(b"\xff\xfe" + b"a", "list.csv", id="broken UTF-16"),
    pytest.param("damaged", "list.xlsx", id="a damaged sheet inside the zip"),
    pytest.param("no sheets", "list.xlsx", id="a workbook without sheets"),
])
def test_a_damaged_file_is_refused_as_unreadable_not_a_crash(world, data, name):
    import io
    import zipfile

    from web.services import interchange

    if data in ("damaged", "no sheets"):
        from openpyxl import Workbook

        out = io.BytesIO()
        Workbook().save(out)
        source = zipfile.ZipFile(io.BytesIO(out.getvalue()))
        out2 = io.BytesIO()
        with zipfile.ZipFile(out2, "w") as target:
            for info in source.infolist():
                body = source.read(info.filename)
                if info.filename == "xl/worksheets/sheet1.xml":
                    if data == "no sheets":
                        continue
                    body = b"<worksheet><sheetData><row"  # cut off
                target.writestr(info, body)
        data = out2.getvalue()
    with pytest.raises(interchange.FileProblem) as refused:
        interchange.read_table(name, data)
    assert refused.value.code == "unreadable"
