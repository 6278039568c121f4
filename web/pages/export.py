"""Every list and report can be downloaded as CSV or XLSX: a page passes its rows and columns
to `export_or_none` and returns the file when the query string asks for one (`?format=csv` or
`?format=xlsx`, with the page's own filters applied). Column titles are in the user's language;
CSV is UTF-8 with a byte-order mark so Excel on Chinese Windows opens it correctly."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Response, request

from web.i18n import TIMEZONE

FORMATS = ("csv", "xlsx")
EXPORT_LIMIT = 100_000  # rows in one file

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def cell(value):
    """A value as a spreadsheet shows it: times in Asia/Shanghai without an offset, lists
    joined, None blank."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(TIMEZONE))
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, (list, tuple, set)):
        return defused("、".join(str(v) for v in value))
    if value is None:
        return ""
    if isinstance(value, str):
        return defused(value)
    if isinstance(value, (int, float, date)):
        return value
    return defused(str(value))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defused(text: str) -> str:
    """Text people typed, never read as a formula by Excel: a leading = + - @ (or tab) gets a
    quote mark in front (CSV/formula injection)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def table_bytes(fmt: str, columns: Sequence[tuple[str, object]], rows: Iterable[dict],
                sheet: str = "Linli") -> bytes:
    """CSV or XLSX bytes for `rows` (dicts) under `columns` (key, title)."""
    titles = [str(title) for _key, title in columns]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(titles)
        for row in rows:
            writer.writerow(["" if (v := cell(row.get(key))) is None else
                             (v.isoformat(sep=" ") if isinstance(v, datetime) else v)
                             for key, _title in columns])
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    ws = book.create_sheet(title=sheet[:31])
    ws.append(titles)
    for row in rows:
        ws.append([cell(row.get(key)) for key, _title in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def send_table(fmt: str, columns, rows, filename: str) -> Response:
    body = table_bytes(fmt, columns, rows)
    mime = "text/csv; charset=utf-8" if fmt == "csv" else XLSX
    name = f"{filename}.{fmt}"
    return Response(body, mimetype=mime, headers={
        "Content-Disposition": f"attachment; filename=\"linli.{fmt}\"; "
                               f"filename*=UTF-8''{quote(name)}"})


def wanted_format() -> str | None:
    fmt = request.args.get("format")
    return fmt if fmt in FORMATS else None


def export_or_none(columns, rows_fn, filename: str) -> Response | None:
    """The file the query string asks for, or None to render the page as usual. `rows_fn()`
    returns every matching row (not just one page), up to EXPORT_LIMIT."""
    fmt = wanted_format()
    if fmt is None:
        return None
    return send_table(fmt, columns, rows_fn(), filename)
