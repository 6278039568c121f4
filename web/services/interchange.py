"""Importing resource and demand lists (资源清单, 需求清单) from XLSX and CSV files.

A file is read (XLSX, or CSV in UTF-8 with or without a byte-order mark, GB18030/GBK as
Chinese Excel saves it, or UTF-16), its headers are recognised in Chinese or English (the
tables DEMAND_COLUMNS and RESOURCE_COLUMNS; docs/import.md lists them), and each row is
converted, checked with the API's own schemas and looked up (category, grid, communities).
Every problem is a `Problem(row, column, code, params)`: the row number as the sheet shows it,
the header as the file spells it, and a stable code the pages word in the user's language.

`preview_import` goes further: it runs each row through the very service function that records
one item, inside a savepoint that is rolled back, so the preview shows what the real import
would refuse — and nothing is written. `commit_import` re-reads the same bytes and records all
rows in ONE transaction, or none: the service functions commit per call (`base.write`), so it
calls the undecorated functions (`__wrapped__`, set by functools.wraps) inside its own single
`write`. Audit rows are those the normal create writes. A token (the stored upload's) makes a
second submit of the same import return the first result instead of importing twice.

Uploads waiting between preview and import are kept in a folder the caller names
(`stash_upload`, `load_upload`), with who uploaded them, for what, and their SHA-256.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
import secrets
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from xml.etree.ElementTree import ParseError
from zoneinfo import ZoneInfo

from marshmallow import Schema
from marshmallow import ValidationError as SchemaError
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.domain.states import UnitStatus
from web.errors import (
    ConflictError,
    LinliError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from web.models import (
    Category,
    Community,
    DemandItem,
    Grid,
    IdempotencyKey,
    ResourceItem,
    Unit,
)
from web.models.people import Role
from web.services import demands as demand_service
from web.services import idempotency
from web.services import resources as resource_service
from web.services.base import LOCAL_TZ, require, utcnow, write

MAX_BYTES = 2 * 1024 * 1024  # an upload larger than this is refused unread
MAX_ROWS = 2000              # data rows in one file
MAX_COLUMNS = 60             # columns read from a sheet; anything to the right is ignored
MAX_SHEET_ROWS = 50_000      # rows, blank ones included, read from a sheet before giving up
HEADER_SEARCH = 10           # rows looked at for the header (title rows may come first)
UPLOAD_MAX_AGE = timedelta(hours=24)
KINDS = ("demands", "resources")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
TZ = ZoneInfo(LOCAL_TZ)


# ---- the column tables ----------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    """One column a file may have: the field it fills, its Chinese and English headers (plus
    other spellings), how its cells are read, and whether every row must fill it."""

    key: str
    zh: str
    en: str
    reader: str
    required: bool = False
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        return (self.zh, self.en, self.key, *self.aliases)


# The words a cell may use for each choice: (Chinese, English, other spellings…).
URGENCY_WORDS = {"normal": ("一般", "normal", "普通"), "urgent": ("紧急", "urgent", "急"),
                 "critical": ("特急", "critical", "非常紧急", "特别紧急")}
KIND_WORDS = {"volunteer_service": ("志愿服务", "volunteer service", "volunteer_service"),
              "skill": ("技能", "skill", "专业技能"), "venue": ("场地", "venue"),
              "goods": ("物资", "goods"), "funds": ("资金", "funds")}
YES = ("是", "有", "yes", "y", "true", "1", "√", "✓")
NO = ("否", "无", "no", "n", "false", "0", "×", "x")

DEMAND_COLUMNS = (
    Column("title", "标题", "Title", "text", True, ("需求名称", "需求标题", "名称")),
    Column("category", "类别", "Category", "category", True, ("分类", "类别代码", "category code")),
    Column("quantity_needed", "数量", "Quantity", "int", True,
           ("需要数量", "所需数量", "quantity needed")),
    Column("description", "说明", "Description", "text", False, ("描述", "详细说明", "需求描述")),
    Column("required_skills", "所需技能", "Required skills", "list", False, ("技能", "skills")),
    Column("urgency", "紧急程度", "Urgency", "urgency", False, ("紧急",)),
    Column("deadline", "截止时间", "Deadline", "end_time", False, ("截止日期",)),
    Column("window_start", "开始时间", "Starts", "start_time", False,
           ("服务开始时间", "window start", "start")),
    Column("window_end", "结束时间", "Ends", "end_time", False,
           ("服务结束时间", "window end", "end")),
    Column("grid", "网格", "Grid", "grid", False, ("网格代码", "所在网格", "grid code")),
    Column("beneficiaries_count", "受益人数", "Beneficiaries", "int", False,
           ("服务人数", "beneficiaries count")),
    Column("beneficiary_name", "服务对象姓名", "Beneficiary name", "text", False,
           ("服务对象", "联系人")),
    Column("beneficiary_phone", "服务对象电话", "Beneficiary phone", "text", False,
           ("联系电话", "电话")),
    Column("beneficiary_address", "服务对象地址", "Beneficiary address", "text", False,
           ("地址", "住址")),
    Column("beneficiary_vulnerable", "特殊困难群体", "Vulnerable", "yes_no", False,
           ("困难群体", "是否特殊困难群体", "beneficiary vulnerable")),
)

RESOURCE_COLUMNS = (
    Column("title", "标题", "Title", "text", True, ("资源名称", "资源标题", "名称")),
    Column("kind", "资源类型", "Kind", "kind", True, ("类型", "resource kind")),
    Column("category", "类别", "Category", "category", True, ("分类", "类别代码", "category code")),
    Column("quantity_total", "总数量", "Total quantity", "int", True,
           ("数量", "可提供总量", "quantity")),
    Column("capacity_per_occasion", "每次可提供", "Per occasion", "int", True,
           ("每次数量", "单次可提供", "capacity per occasion")),
    Column("description", "说明", "Description", "text", False, ("描述", "详细说明", "资源描述")),
    Column("skills", "技能", "Skills", "list", False, ("专业技能", "具备技能")),
    Column("value_yuan", "折合金额(元)", "Value (yuan each)", "yuan", False,
           ("折合金额", "每份折合金额", "value", "value yuan")),
    Column("service_communities", "服务社区", "Communities served", "communities", False,
           ("服务范围", "communities", "service communities")),
    Column("expires_on", "有效期至", "Expires on", "date", False, ("截止日期", "expires")),
    Column("is_standing_offer", "长期提供", "Standing offer", "yes_no", False,
           ("是否长期", "standing")),
)

COLUMNS = {"demands": DEMAND_COLUMNS, "resources": RESOURCE_COLUMNS}
# Which column a schema or service field's refusal belongs to.
FIELD_COLUMN = {"category_id": "category", "grid_id": "grid",
                "service_community_ids": "service_communities",
                "value_fen_per_unit": "value_yuan"}
MODEL = {"demands": DemandItem, "resources": ResourceItem}


def _norm(text: str) -> str:
    """A header as compared: width-folded, without spaces, stars or a bracketed hint."""
    text = unicodedata.normalize("NFKC", str(text)).casefold()
    text = re.sub(r"\(.*?\)|\[.*?\]", "", text)
    return re.sub(r"[\s*_:]+", "", text)


def _header_index(kind: str) -> dict[str, Column]:
    return {_norm(name): column for column in COLUMNS[kind] for name in column.names()}


# ---- problems and the preview -----------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """Something wrong with the file (row None) or with one cell or row of it."""

    row: int | None
    column: str | None  # the header as the file spells it
    code: str
    params: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PreviewRow:
    """One data row: its number in the sheet, its cells as text, its problems."""

    number: int
    cells: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    data: dict | None = None  # the checked values, ready for the service


@dataclass
class Preview:
    """What an import would do: the recognised columns, every row with its problems."""

    kind: str
    scope_id: int
    filename: str
    sha256: str
    columns: list[tuple[str, str]] = field(default_factory=list)  # (key, header as written)
    rows: list[PreviewRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # about the file as a whole
    notices: list[Problem] = field(default_factory=list)   # columns ignored

    @property
    def rows_with_errors(self) -> int:
        return sum(1 for row in self.rows if row.problems)

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows) and self.rows_with_errors == 0

    def all_problems(self) -> list[Problem]:
        return [*self.problems, *(p for row in self.rows for p in row.problems)]

    def as_dict(self) -> dict:
        return {"kind": self.kind, "scope_id": self.scope_id, "filename": self.filename,
                "sha256": self.sha256, "ok": self.ok, "rows": len(self.rows),
                "rows_with_errors": self.rows_with_errors,
                "columns": [{"key": k, "header": h} for k, h in self.columns],
                "problems": [p.as_dict() for p in self.all_problems()],
                "notices": [p.as_dict() for p in self.notices]}


@dataclass
class ImportResult:
    """The ids recorded, and whether this was a repeat of an import already done."""

    kind: str
    ids: list[int]
    replayed: bool = False
    titles: list[str] = field(default_factory=list)


class FileProblem(Exception):
    """The file cannot be read at all (internal: becomes a file-level Problem)."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


# ---- reading the file -------------------------------------------------------------------------

def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_table(filename: str, data: bytes) -> list[tuple[int, list]]:
    """(row number, cells) for every row of the file's first sheet; XLSX is told by content."""
    if len(data) > MAX_BYTES:
        raise FileProblem("too_large", max_mb=MAX_BYTES // (1024 * 1024))
    if not data.strip():
        raise FileProblem("empty")
    if data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":  # the old binary .xls
        raise FileProblem("old_excel")
    if filename.lower().endswith((".xlsx", ".xls", ".xlsm")):
        raise FileProblem("unreadable")
    return _read_csv(decode_text(data))


def _read_xlsx(data: bytes) -> list[tuple[int, list]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (ParseError, zipfile.BadZipFile, KeyError, ValueError, IndexError, OSError,
            TypeError, EOFError) as exc:
        raise FileProblem("unreadable") from exc
    try:
        sheet = book.worksheets[0]
        rows, filled = [], 0
        start = sheet.min_row or 1
        for number, cells in enumerate(sheet.iter_rows(max_col=MAX_COLUMNS, values_only=True),
                                       start=start):
            if number - start >= MAX_SHEET_ROWS:
                raise FileProblem("too_many_rows", max=MAX_ROWS)
            if _blank(cells):
                continue  # read no further than enough rows to tell "too many"
            rows.append((number, list(cells)))
            filled += 1
            if filled > MAX_ROWS + HEADER_SEARCH:
                break
        return rows
    except (ParseError, zipfile.BadZipFile, KeyError, ValueError, IndexError, TypeError,
            EOFError, OSError) as exc:  # a damaged sheet inside a readable zip
        raise FileProblem("unreadable") from exc
    finally:
        book.close()


def decode_text(data: bytes) -> str:
    """CSV bytes as text: UTF-8 (with or without BOM), UTF-16 with BOM, else GB18030 (GBK)."""
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[3:].decode("utf-8", errors="strict")
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
    except UnicodeDecodeError as exc:
        raise FileProblem("unreadable") from exc
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FileProblem("unreadable")


def _read_csv(text: str) -> list[tuple[int, list]]:
    first = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";", "，"), key=first.count)
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise FileProblem("unreadable") from exc
    return [(number, cells[:MAX_COLUMNS]) for number, cells in enumerate(records, start=1)]


def _blank(cells: list) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def shown(value) -> str:
    """A cell as the preview shows it."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") if value.time() != time(0) else \
            value.strftime("%Y-%m-%d")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# ---- reading the cells ------------------------------------------------------------------------

class CellProblem(Exception):
    """A cell that cannot be read as its column needs."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


@dataclass
class Lookups:
    """The names a file may use for categories, grids and communities."""

    categories: dict[str, int]
    grids: dict[str, int]
    communities: dict[str, set[int]]


def _lookups(session: Session, kind: str, scope_id: int) -> Lookups:
    categories = {}
    for c in session.scalars(select(Category).where(Category.is_active.is_(True))):
        for name in (c.code, c.name_zh, c.name_en):
            categories[_fold(name)] = c.id
    grids, communities = {}, {}
    if kind == "demands":
        for g in session.scalars(select(Grid).where(Grid.community_id == scope_id)):
            grids.setdefault(_fold(g.name), g.id)
            grids[_fold(g.code)] = g.id
    else:
        for c in session.scalars(select(Community)):
            communities.setdefault(_fold(c.code), set()).add(c.id)
            communities.setdefault(_fold(c.name), set()).add(c.id)
    return Lookups(categories, grids, communities)


def _fold(text) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text))).casefold()


def _text(value) -> str:
    return shown(value) if not isinstance(value, str) else value.strip()


def _int(value) -> int:
    if isinstance(value, bool):
        raise CellProblem("not_a_number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = unicodedata.normalize("NFKC", _text(value)).replace(",", "").strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise CellProblem("not_a_number") from None
    if number != number.to_integral_value():
        raise CellProblem("not_a_number")
    return int(number)


def _list(value) -> list[str]:
    parts = re.split(r"[,，、;；/\n]", _text(value))
    return [part.strip() for part in parts if part.strip()]


DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日")
TIME_FORMATS = ("%H:%M", "%H:%M:%S", "%H时%M分", "%H点%M分", "%H点")


def _moment(value) -> tuple[date, time | None]:
    """A cell as (date, time or None when only a date is given)."""
    if isinstance(value, datetime):
        return value.date(), (value.time() if value.time() != time(0) else None)
    if isinstance(value, date):
        return value, None
    text = unicodedata.normalize("NFKC", _text(value)).replace("T", " ")
    text = re.sub(r"\s+", " ", text).strip()
    day_text, _, time_text = text.partition(" ")
    day = _parse(day_text, DATE_FORMATS, lambda d: d.date())
    if not time_text:
        return day, None
    return day, _parse(time_text.replace("：", ":"), TIME_FORMATS, lambda d: d.time())


def _parse(text: str, formats, pick):
    for fmt in formats:
        try:
            return pick(datetime.strptime(text, fmt))
        except ValueError:
            continue
    raise CellProblem("not_a_date")


def _local_iso(day: date, moment: time) -> str:
    return datetime.combine(day, moment, tzinfo=TZ).isoformat()


def _start_time(value) -> str:
    day, moment = _moment(value)
    return _local_iso(day, moment or time(0))


def _end_time(value) -> str:
    """A date alone means the end of that day (a deadline of 30 June is met on 30 June)."""
    day, moment = _moment(value)
    return _local_iso(day, moment or time(23, 59))


def _date(value) -> str:
    day, moment = _moment(value)
    if moment is not None:
        raise CellProblem("not_a_date")
    return day.isoformat()


def _yes_no(value) -> bool:
    if isinstance(value, bool):
        return value
    text = _fold(_text(value))
    if text in YES:
        return True
    if text in NO:
        return False
    raise CellProblem("not_yes_no", value=_text(value))


def _choice(words: dict[str, tuple[str, ...]]) -> Callable:
    def read(value) -> str:
        text = _fold(_text(value))
        for code, names in words.items():
            if text in {_fold(n) for n in names}:
                return code
        raise CellProblem("unknown_choice", value=_text(value), choices=list(words))
    return read


def _yuan(value) -> int:
    """Yuan (up to 2 decimals) as integer fen."""
    if isinstance(value, bool):
        raise CellProblem("not_money")
    text = unicodedata.normalize("NFKC", _text(value))
    text = text.replace(",", "").replace("¥", "").replace("元", "").strip()
    try:
        yuan = Decimal(str(value)) if isinstance(value, int | float) else Decimal(text)
    except InvalidOperation:
        raise CellProblem("not_money") from None
    fen = yuan * 100
    if not yuan.is_finite() or fen != fen.to_integral_value() or yuan < 0:
        raise CellProblem("not_money")
    return int(fen)


def _reader(column: Column, lookups: Lookups) -> Callable:
    def category(value) -> int:
        found = lookups.categories.get(_fold(_text(value)))
        if found is None:
            raise CellProblem("unknown_category", value=_text(value))
        return found

    def grid(value) -> int:
        found = lookups.grids.get(_fold(_text(value)))
        if found is None:
            raise CellProblem("unknown_grid", value=_text(value))
        return found

    def communities(value) -> list[int]:
        ids = []
        for name in _list(value):
            found = lookups.communities.get(_fold(name), set())
            if len(found) != 1:
                raise CellProblem("unknown_community" if not found else "ambiguous_community",
                                  value=name)
            ids.extend(found)
        return sorted(set(ids))

    return {"text": _text, "int": _int, "list": _list, "start_time": _start_time,
            "end_time": _end_time, "date": _date, "yes_no": _yes_no, "yuan": _yuan,
            "urgency": _choice(URGENCY_WORDS), "kind": _choice(KIND_WORDS),
            "category": category, "grid": grid, "communities": communities}[column.reader]


# The field each column fills (most fill the field of their own name).
TARGET = {"category": "category_id", "grid": "grid_id", "value_yuan": "value_fen_per_unit",
          "service_communities": "service_community_ids"}


# ---- the API's schema messages as codes ----------------------------------------------------------

SCHEMA_CODES = [
    (re.compile(r"^Missing data for required field\.$|^Field may not be null\.$"), "required"),
    (re.compile(r"^Must be greater than or equal to (?P<min>[-\d.]+) and less than or equal "
                r"to (?P<max>[-\d.]+)\.$"), "out_of_range"),
    (re.compile(r"^Must be greater than or equal to (?P<min>[-\d.]+)\.$"), "too_small"),
    (re.compile(r"^Must be less than or equal to (?P<max>[-\d.]+)\.$"), "too_big"),
    (re.compile(r"^Length must be between (?P<min>\d+) and (?P<max>\d+)\.$"), "length"),
    (re.compile(r"^Longer than maximum length (?P<max>\d+)\.$"), "too_long"),
    (re.compile(r"^Shorter than minimum length 1\.$"), "required"),
    (re.compile(r"^ends before it starts$"), "ends_before_start"),
    (re.compile(r"^no such grid in this community$"), "unknown_grid"),
    (re.compile(r"^no such active category$"), "unknown_category"),
    (re.compile(r"^unknown community$"), "unknown_community"),
    (re.compile(r"^more than the total quantity$"), "more_than_total"),
    (re.compile(r"^at least (?P<min>\d+)$"), "too_small"),
    (re.compile(r"^name the communities served, or a radius$"), "needs_communities"),
    (re.compile(r"^the item has already expired$"), "expired"),
]


def message_code(message: str) -> tuple[str, dict]:
    """A schema's or service's English message as (code, params); unknown ones as 'invalid'."""
    for pattern, code in SCHEMA_CODES:
        found = pattern.match(message)
        if found:
            return code, {k: v for k, v in found.groupdict().items() if v is not None}
    return "invalid", {"message": message}


def _messages(errors) -> list[str]:
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in _messages(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in _messages(value)]
    return [str(errors)]


# ---- the scope: who may import where ----------------------------------------------------------

def check_scope(session: Session, actor: Actor, kind: str, scope_id: int) -> None:
    """Refuse (404/403/409) an import the actor may not make at all, before reading the file."""
    if kind not in KINDS:
        raise NotFoundError("import", kind)
    if kind == "demands":
        # The role first: a refusal then tells nothing about whether the community exists.
        grid_worker_here = any(g.role == Role.GRID_WORKER and g.community_id == scope_id
                               for g in actor.grants)
        require(actor.is_secretary_of(scope_id) or grid_worker_here or actor.is_system,
                "only the community's secretary or its grid workers")
        if session.get(Community, scope_id) is None:
            raise NotFoundError("Community", scope_id)
        return
    require(actor.is_unit_admin_of(scope_id), "only the unit's admin")
    unit = session.get(Unit, scope_id)
    if unit is None or unit.status != str(UnitStatus.APPROVED):
        raise ConflictError("the unit is not approved", unit_status=unit.status if unit else None)


# ---- parsing: file → rows with problems -------------------------------------------------------

def parse(session: Session, kind: str, scope_id: int, filename: str, data: bytes,
          schema: type[Schema]) -> Preview:
    """Read and check every row of the file with `schema` (the API's input schema for the
    kind: the service layer may not import the API, so the caller names it); no service call,
    nothing written."""
    preview = Preview(kind=kind, scope_id=scope_id, filename=filename, sha256=sha256_of(data))
    try:
        table = read_table(filename, data)
        header, start = _header(preview, table)
        if not preview.problems:
            _rows(session, preview, header, table[start:], schema)
    except FileProblem as exc:
        preview.problems.append(Problem(None, None, exc.code, exc.params))
        preview.rows = []
    return preview


def _header(preview: Preview, table: list[tuple[int, list]]) -> tuple[dict[int, Column], int]:
    """The header row, as {cell index: column}, and where the rows start; problems for what is
    wrong with it. The header is the first row naming at least two known columns among the
    first few (a sheet often has a title row above it), else the first row that is not blank."""
    known = _header_index(preview.kind)
    filled = [(at, number, cells) for at, (number, cells) in enumerate(table)
              if not _blank(cells)][:HEADER_SEARCH]
    if not filled:
        raise FileProblem("empty")
    found = [row for row in filled
             if sum(_norm(_text(c)) in known for c in row[2] if c is not None) >= 2]
    at, number, cells = (found or filled)[0]
    index, seen = {}, {}
    for i, cell in enumerate(cells):
        name = _text(cell)
        if not name:
            continue
        column = known.get(_norm(name))
        if column is None:
            preview.notices.append(Problem(number, name, "unknown_column"))
        elif column.key in seen:
            preview.problems.append(Problem(number, name, "duplicate_column",
                                            {"first": seen[column.key]}))
        else:
            seen[column.key] = name
            index[i] = column
    for column in COLUMNS[preview.kind]:
        if column.required and column.key not in seen:
            preview.problems.append(Problem(number, None, "missing_column",
                                            {"zh": column.zh, "en": column.en}))
    order = [c.key for c in COLUMNS[preview.kind]]
    preview.columns = sorted(((c.key, seen[c.key]) for c in index.values()),
                             key=lambda pair: order.index(pair[0]))
    return index, at + 1


def _rows(session: Session, preview: Preview, header: dict[int, Column], table: list,
          schema: type[Schema]) -> None:
    lookups = _lookups(session, preview.kind, preview.scope_id)
    headers = dict(preview.columns)
    readers = {i: _reader(column, lookups) for i, column in header.items()}
    checker = schema()
    for number, cells in table:
        if _blank(cells):
            continue
        if len(preview.rows) >= MAX_ROWS:
            raise FileProblem("too_many_rows", max=MAX_ROWS)
        row = PreviewRow(number=number, cells={})
        values = {}
        for i, column in header.items():
            value = cells[i] if i < len(cells) else None
            row.cells[column.key] = shown(value)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            try:
                values[TARGET.get(column.key, column.key)] = readers[i](value)
            except CellProblem as exc:
                row.problems.append(Problem(number, headers[column.key], exc.code, exc.params))
        _check_row(preview, row, values, headers, checker)
        preview.rows.append(row)
    if not preview.rows:
        raise FileProblem("no_rows")


def _check_row(preview: Preview, row: PreviewRow, values: dict, headers: dict,
               schema: Schema) -> None:
    """Check the converted values with the API's schema; keep the result on the row."""
    failed = {TARGET.get(p_key, p_key) for p_key, header in headers.items()
              if any(p.column == header for p in row.problems)}
    scope_key = "community_id" if preview.kind == "demands" else "unit_id"
    try:
        data = schema.load({**values, scope_key: preview.scope_id})
    except SchemaError as exc:
        for name, errors in exc.messages.items():
            if name in failed:
                continue  # already told why the cell could not be read
            column = _column_of(preview.kind, name, headers)
            for message in _messages(errors):
                code, params = message_code(message)
                if code == "required" and column is None:
                    column = _header_name(preview.kind, name)
                row.problems.append(Problem(row.number, column, code, params))
        return
    if not row.problems:
        row.data = data


def _column_of(kind: str, field_name: str, headers: dict) -> str | None:
    """The header (as the file spells it) of the column that fills `field_name`."""
    key = FIELD_COLUMN.get(field_name, field_name)
    return headers.get(key)


def _header_name(kind: str, field_name: str) -> str | None:
    key = FIELD_COLUMN.get(field_name, field_name)
    for column in COLUMNS[kind]:
        if column.key == key:
            return column.zh
    return None


# ---- recording: the same service functions, without their own commit -------------------------

def _create(session: Session, actor: Actor, kind: str, scope_id: int, data: dict,
            publish: bool, now: datetime):
    """Record one item as the normal create does (audit included), within the caller's
    transaction: the undecorated service function, so `write` does not commit per row."""
    data = dict(data)
    data.pop("publish", None)
    if kind == "demands":
        community_id = data.pop("community_id")
        return demand_service.create_demand.__wrapped__(
            session, actor=actor, community_id=community_id, data=data, publish=publish, now=now)
    unit_id = data.pop("unit_id")
    areas = data.pop("service_community_ids", [])
    return resource_service.create_resource.__wrapped__(
        session, actor=actor, unit_id=unit_id, data=data, service_community_ids=areas,
        publish=publish, now=now)


def _refusal(preview: Preview, row: PreviewRow, exc: LinliError) -> list[Problem]:
    """A service's refusal of one row as problems on that row."""
    headers = dict(preview.columns)
    if isinstance(exc, PermissionDeniedError):
        return [Problem(row.number, None, "not_allowed", {"message": exc.message})]
    if not exc.fields:
        return [Problem(row.number, None, "refused", {"message": exc.message})]
    out = []
    for name, messages in exc.fields.items():
        column = _column_of(preview.kind, name, headers) or _header_name(preview.kind, name)
        for message in _messages(messages):
            code, params = message_code(message)
            out.append(Problem(row.number, column, code, params))
    return out


def preview_import(session: Session, *, actor: Actor, kind: str, scope_id: int, filename: str,
                   data: bytes, schema: type[Schema], publish: bool = False,
                   now: datetime | None = None) -> Preview:
    """Every row of the file with what is wrong with it; the rows are tried through the real
    service in a savepoint that is rolled back, so nothing is written."""
    now = now or utcnow()
    check_scope(session, actor, kind, scope_id)
    preview = parse(session, kind, scope_id, filename, data, schema)
    good = [row for row in preview.rows if row.data is not None]
    if good:
        outer = session.begin_nested()
        try:
            for row in good:
                attempt = session.begin_nested()
                try:
                    _create(session, actor, kind, scope_id, row.data, publish, now)
                    attempt.commit()
                except LinliError as exc:
                    attempt.rollback()
                    row.problems.extend(_refusal(preview, row, exc))
                except (IntegrityError, DataError) as exc:
                    attempt.rollback()
                    row.problems.append(Problem(row.number, None, "refused",
                                                {"message": str(exc.orig)[:200]}))
        finally:
            outer.rollback()
    session.rollback()  # end the transaction: a preview holds no lock and writes nothing
    return preview


def commit_import(session: Session, *, actor: Actor, kind: str, scope_id: int, filename: str,
                  data: bytes, schema: type[Schema], token: str | None = None,
                  publish: bool = False, now: datetime | None = None) -> ImportResult:
    """Record every row of the file in one transaction, or none (ValidationError naming the
    rows in error). With a `token`, sending the same import again returns the first result."""
    args = {"actor": actor, "kind": kind, "scope_id": scope_id, "filename": filename,
            "data": data, "schema": schema, "publish": publish, "now": now}
    if token is None:
        return _commit(session, **args, idempotency_key=None)
    run = idempotency.idempotent(f"import_{kind}")(_commit)
    return run(session, **args, idempotency_key=f"import:{token}")


@write
def _commit(session: Session, *, actor: Actor, kind: str, scope_id: int, filename: str,
            data: bytes, schema: type[Schema], publish: bool, now: datetime | None,
            idempotency_key: str | None) -> ImportResult:
    now = now or utcnow()
    check_scope(session, actor, kind, scope_id)
    if idempotency_key:
        payload = {"sha256": sha256_of(data), "scope": scope_id, "publish": publish}
        first = idempotency.begin(session, idempotency_key, f"import_{kind}", payload,
                                  actor=actor, result_type=MODEL[kind].__tablename__, now=now)
        if first is not None:
            return ImportResult(kind, _made_by(session, kind, idempotency_key, first), True)
    preview = parse(session, kind, scope_id, filename, data, schema)
    if not preview.ok:
        raise _refused(preview)
    ids = []
    for row in preview.rows:
        try:
            ids.append(_create(session, actor, kind, scope_id, row.data, publish, now).id)
        except LinliError as exc:
            row.problems.extend(_refusal(preview, row, exc))
            raise _refused(preview) from exc
    if idempotency_key:
        idempotency.finish(session, idempotency_key, ids[0])
    return ImportResult(kind, ids)


def _refused(preview: Preview) -> ValidationError:
    problems = preview.all_problems()
    return ValidationError("the file has errors; nothing was imported",
                           rows_with_errors=preview.rows_with_errors,
                           problems=[p.as_dict() for p in problems[:200]])


def _made_by(session: Session, kind: str, key: str, first_id: int) -> list[int]:
    """The ids an earlier import under `key` recorded: every item it made shares its moment."""
    row = session.get(IdempotencyKey, key)
    model = MODEL[kind]
    return list(session.scalars(select(model.id).where(
        model.id >= first_id, model.created_by == row.user_id,
        model.created_at == row.created_at).order_by(model.id)))


def get_import_result(session: Session, *, actor: Actor, kind: str, token: str) -> ImportResult:
    """What the import under `token` recorded, with the items' titles; only for its importer."""
    row = session.get(IdempotencyKey, f"import:{token}")
    if row is None or row.operation != f"import_{kind}" or row.result_id is None \
            or row.user_id != actor.user_id:
        raise NotFoundError("import", None)
    ids = _made_by(session, kind, row.key, row.result_id)
    model = MODEL[kind]
    titles = list(session.scalars(select(model.title).where(model.id.in_(ids))
                                  .order_by(model.id)))
    return ImportResult(kind, ids, titles=titles)


# ---- uploads waiting between preview and import -----------------------------------------------

@dataclass(frozen=True)
class Upload:
    """A stored upload: its bytes and what it was uploaded for."""

    token: str
    filename: str
    data: bytes
    sha256: str
    kind: str
    scope_id: int
    user_id: int | None


def stash_upload(folder: Path, *, actor: Actor, kind: str, scope_id: int, filename: str,
                 data: bytes, now: datetime | None = None) -> Upload:
    """Keep an upload under a new random token until it is imported (or a day has passed)."""
    now = now or utcnow()
    folder.mkdir(parents=True, exist_ok=True)
    sweep_uploads(folder, now=now)
    token = secrets.token_urlsafe(24)
    meta = {"filename": filename[:200], "sha256": sha256_of(data), "kind": kind,
            "scope_id": scope_id, "user_id": actor.user_id, "created_at": now.isoformat()}
    (folder / f"{token}.bin").write_bytes(data)
    (folder / f"{token}.json").write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    return Upload(token=token, data=data, **{k: meta[k] for k in (
        "filename", "sha256", "kind", "scope_id", "user_id")})


def load_upload(folder: Path, token: str, *, actor: Actor, kind: str, scope_id: int,
                sha256: str | None = None) -> Upload:
    """The upload stored under `token` by this actor for this import, else NotFoundError (a
    wrong, expired or someone else's token); ConflictError if its bytes are not `sha256`."""
    if not TOKEN.match(token or ""):
        raise NotFoundError("upload", None)
    try:
        meta = json.loads((folder / f"{token}.json").read_text("utf-8"))
        data = (folder / f"{token}.bin").read_bytes()
    except (OSError, ValueError):
        raise NotFoundError("upload", None) from None
    if (meta.get("user_id"), meta.get("kind"), meta.get("scope_id")) != \
            (actor.user_id, kind, scope_id):
        raise NotFoundError("upload", None)
    if sha256_of(data) != meta.get("sha256") or (sha256 is not None and sha256 != meta["sha256"]):
        raise ConflictError("the file is not the one previewed")
    return Upload(token=token, data=data, **{k: meta[k] for k in (
        "filename", "sha256", "kind", "scope_id", "user_id")})


def sweep_uploads(folder: Path, *, now: datetime | None = None) -> int:
    """Delete uploads older than UPLOAD_MAX_AGE; how many went."""
    now = now or utcnow()
    gone = 0
    for path in folder.glob("*.json"):
        try:
            created = datetime.fromisoformat(json.loads(path.read_text("utf-8"))["created_at"])
        except (OSError, ValueError, KeyError):
            continue
        if now - created > UPLOAD_MAX_AGE:
            path.with_suffix(".bin").unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            gone += 1
    return gone


# ---- what the template explains ---------------------------------------------------------------

@dataclass
class Allowed:
    """The values a file may use, for the template's notes and the import page."""

    categories: list[tuple[str, str, str]]   # (code, Chinese name, English name)
    grids: list[tuple[str, str]]             # (code, name), demands only
    communities: list[tuple[str, str]]       # (code, name), resources only


def allowed_values(session: Session, kind: str, scope_id: int) -> Allowed:
    """Categories, and the grids of the community (demands) or the communities (resources)."""
    categories = [(c.code, c.name_zh, c.name_en) for c in session.scalars(
        select(Category).where(Category.is_active.is_(True)).order_by(Category.sort_order,
                                                                       Category.id))]
    grids, communities = [], []
    if kind == "demands":
        grids = [(g.code, g.name) for g in session.scalars(
            select(Grid).where(Grid.community_id == scope_id).order_by(Grid.code))]
    else:
        unit = session.get(Unit, scope_id)
        stmt = select(Community).order_by(Community.code)
        if unit is not None:
            stmt = stmt.where(Community.subdistrict_id == unit.subdistrict_id)
        communities = [(c.code, c.name) for c in session.scalars(stmt)]
    return Allowed(categories, grids, communities)
