"""Importing lists from XLSX and CSV: a secretary's demands (/import/demands), a unit admin's
resources (/import/resources). Download the template, upload the filled file, read each row's
problems in your language next to the row, fix and upload again; only a file without problems
can be imported, all its rows at once, after a confirmation. The upload waits on the server
under a random token between preview and import, so exactly the previewed file is imported,
and only once."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from flask import (
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from web.api.common import db
from web.api.demands import DemandIn
from web.api.resources import ResourceIn
from web.config import instance_path
from web.domain.actor import Actor
from web.errors import LinliError, NotFoundError, ValidationError
from web.pages.export import XLSX, send_table
from web.pages.ui import confirm, menu, translate
from web.pages.views import bp, community_of, error_text, signed_in
from web.services import interchange
from web.services.base import local_date, utcnow

SCHEMAS = {"demands": DemandIn, "resources": ResourceIn}
TITLES = {"demands": _l("Import demands"), "resources": _l("Import resources")}
LIST_PAGES = {"demands": ("pages.demand_list", "pages.secretary_home"),
              "resources": ("pages.resource_list", "pages.unit_resources", "pages.unit_home")}

menu("secretary", "pages.import_demands", TITLES["demands"])
menu("unit_admin", "pages.import_resources", TITLES["resources"])

# What to write in each column (the template's notes and the import page's column table).
COLUMN_HELP = {
    "title": _l("A short name, up to 200 characters."),
    "category": _l("A category's name or code, from the list of categories."),
    "quantity_needed": _l("How many times, people or pieces are needed: a whole number from 1."),
    "description": _l("Details, up to 5,000 characters."),
    "required_skills": _l("Skills needed, separated by 、 or commas."),
    "urgency": _l("一般, 紧急 or 特急 (normal, urgent, critical); blank means 一般."),
    "deadline": _l("A date, or a date and time, such as 2026-12-31 or 2026-12-31 18:00; a date "
                   "alone means the end of that day."),
    "window_start": _l("When the service may start; a date alone means the start of that day."),
    "window_end": _l("When the service must be over; a date alone means the end of that day."),
    "grid": _l("The grid's code or name, from the list of grids."),
    "beneficiaries_count": _l("How many residents benefit; blank means 1."),
    "beneficiary_name": _l("The resident served. Only the people handling the item see the "
                           "name, phone and address."),
    "beneficiary_phone": _l("The resident's phone number."),
    "beneficiary_address": _l("The resident's address, such as building, entrance and room."),
    "beneficiary_vulnerable": _l("是 or 否: an elderly person living alone, a disabled person, "
                                 "a family in hardship."),
    "kind": _l("志愿服务, 技能, 场地, 物资 or 资金 (volunteer service, skill, venue, goods, "
               "funds)."),
    "quantity_total": _l("How much is offered in all: a whole number from 1."),
    "capacity_per_occasion": _l("How much at most on one occasion; not more than the total."),
    "skills": _l("Skills offered, separated by 、 or commas."),
    "value_yuan": _l("What one unit is worth in yuan, such as 50 or 12.50; blank means 0."),
    "service_communities": _l("The communities served: codes or names separated by 、, from "
                              "the list of communities."),
    "expires_on": _l("The last day of the offer, such as 2026-12-31; blank means no end."),
    "is_standing_offer": _l("是 or 否: whether it is offered again and again."),
}

# Each problem's words; the %(…)s are the problem's params.
PROBLEMS = {
    "too_large": _l("The file is larger than %(max_mb)s MB. Please split it."),
    "empty": _l("The file is empty."),
    "old_excel": _l("This is an old Excel file (.xls). In Excel choose \"Save as\" and the type "
                    "\"Excel workbook (.xlsx)\" or \"CSV\", then upload that file."),
    "unreadable": _l("The file cannot be read. Please upload an .xlsx or .csv file."),
    "no_rows": _l("The file has a header row but no rows under it."),
    "too_many_rows": _l("The file has more than %(max)s rows. Please split it into smaller "
                        "files."),
    "unknown_column": _l("Column \"%(column)s\" is not known; it is left out."),
    "duplicate_column": _l("This column appears twice (first as \"%(first)s\")."),
    "missing_column": _l("Column \"%(name)s\" is missing; every file needs it."),
    "required": _l("Please fill this in."),
    "not_a_number": _l("Please enter a whole number."),
    "not_a_date": _l("Not a date. Write it like 2026-12-31 or 2026-12-31 18:00."),
    "not_yes_no": _l("Please write 是 or 否."),
    "unknown_choice": _l("\"%(value)s\" is not one of: %(choices)s."),
    "unknown_category": _l("There is no category \"%(value)s\"; see the list of categories."),
    "unknown_grid": _l("This community has no grid \"%(value)s\"; see the list of grids."),
    "unknown_community": _l("There is no community \"%(value)s\"; see the list of communities."),
    "ambiguous_community": _l("More than one community is called \"%(value)s\"; write its "
                              "code."),
    "not_money": _l("Not an amount in yuan. Write it like 50 or 12.50."),
    "out_of_range": _l("Between %(min)s and %(max)s, please."),
    "too_small": _l("At least %(min)s, please."),
    "too_big": _l("At most %(max)s, please."),
    "length": _l("Between %(min)s and %(max)s characters, please."),
    "too_long": _l("At most %(max)s characters, please."),
    "ends_before_start": _l("The end is before the start."),
    "more_than_total": _l("More than the total quantity."),
    "needs_communities": _l("To publish it, name the communities served."),
    "expired": _l("This date has already passed."),
    "not_allowed": _l("You may not record this row (for example: a grid that is not yours)."),
    "refused": _l("This row cannot be recorded."),
    "invalid": _l("This value is not accepted."),
}
CHOICE_WORDS = {**interchange.URGENCY_WORDS, **interchange.KIND_WORDS}


def _zh() -> bool:
    return get_locale().language == "zh"


def problem_text(problem: interchange.Problem) -> str:
    """One problem in the user's language."""
    params = dict(problem.params)
    if problem.code == "invalid":
        return translate(params.get("message", ""))
    if problem.code == "missing_column":
        params["name"] = params["zh"] if _zh() else params["en"]
    if problem.code == "unknown_choice":
        params["choices"] = "、".join(CHOICE_WORDS[c][0 if _zh() else 1]
                                     for c in params.get("choices", []))
    if problem.code == "unknown_column":
        params["column"] = problem.column
    try:
        text = str(PROBLEMS[problem.code]) % params
    except (KeyError, TypeError, ValueError):
        text = str(PROBLEMS["invalid"])
    if problem.code in ("refused", "not_allowed") and not _zh():
        text += f" ({params.get('message', '')})"
    return text


# ---- who imports where ------------------------------------------------------------------------

def _scope(actor: Actor, kind: str) -> int:
    """The community (demands) or unit (resources) the signed-in person imports into."""
    if kind == "demands":
        scope = community_of(actor, "secretary") or community_of(actor, "grid_worker")
    else:
        scope = next((g.unit_id for g in actor.grants
                      if str(g.role) == "unit_admin" and g.unit_id), None)
    if scope is None:
        abort(403)
    return scope


def _folder() -> Path:
    """Where uploads wait between preview and import (LINLI_IMPORT_FOLDER, else instance/)."""
    configured = current_app.config.get("LINLI_IMPORT_FOLDER")
    return Path(configured) if configured else instance_path() / "imports"


def _list_url(kind: str) -> str:
    for endpoint in LIST_PAGES[kind]:
        if endpoint in current_app.view_functions:
            return url_for(endpoint)
    return url_for("pages.home")


def _columns(kind: str) -> list[dict]:
    """The column table: header in the user's language, required or not, what to write."""
    return [{"key": c.key, "header": c.zh if _zh() else c.en, "other": c.en if _zh() else c.zh,
             "required": c.required, "help": str(COLUMN_HELP[c.key])}
            for c in interchange.COLUMNS[kind]]


def _page(actor: Actor, kind: str, scope: int, status: int = 200, **extra):
    """The import page: the upload form, and the preview when there is one."""
    allowed = interchange.allowed_values(db(), kind, scope)
    extra.setdefault("errors", {})
    can_publish = kind == "resources" or actor.is_secretary_of(scope)
    return render_template("pages/import_form.html", kind=kind, title=TITLES[kind],
                           columns=_columns(kind), allowed=allowed, zh=_zh(),
                           problem_text=problem_text, can_publish=can_publish,
                           max_rows=interchange.MAX_ROWS,
                           max_mb=interchange.MAX_BYTES // (1024 * 1024), **extra), status


# ---- the pages --------------------------------------------------------------------------------

@bp.get("/import/demands")
@signed_in
def import_demands(actor: Actor):
    """The secretary's upload form, the template to download, and what each column takes."""
    return _page(actor, "demands", _scope(actor, "demands"))


@bp.get("/import/resources")
@signed_in
def import_resources(actor: Actor):
    """The unit admin's upload form, the template, and what each column takes."""
    return _page(actor, "resources", _scope(actor, "resources"))


def _back(kind: str):
    return redirect(url_for(f"pages.import_{kind}"))


@bp.post("/import/<any(demands, resources):kind>")
@signed_in
def import_upload(actor: Actor, kind: str):
    """Check the uploaded file row by row (nothing is saved); a clean file waits for Import."""
    scope = _scope(actor, kind)
    upload = request.files.get("file")
    data = upload.stream.read(interchange.MAX_BYTES + 1) if upload else b""
    publish = request.form.get("publish") == "1"
    if not upload or not upload.filename:
        return _page(actor, kind, scope, 422, errors={"file": [_("Please choose a file.")]},
                     publish=publish)
    try:
        preview = interchange.preview_import(db(), actor=actor, kind=kind, scope_id=scope,
                                             filename=upload.filename, data=data,
                                             schema=SCHEMAS[kind], publish=publish)
    except LinliError as exc:
        flash(error_text(exc), "danger")
        return _page(actor, kind, scope, exc.status, publish=publish)
    stored = None
    if preview.ok:
        stored = interchange.stash_upload(_folder(), actor=actor, kind=kind, scope_id=scope,
                                          filename=upload.filename, data=data)
    return _page(actor, kind, scope, 200 if preview.ok else 422, preview=preview, stored=stored,
                 publish=publish)


@bp.post("/import/<any(demands, resources):kind>/commit")
@signed_in
@confirm(_l("Import every row of this file now?"))
def import_commit(actor: Actor, kind: str):
    """Import the previewed file: every row, or none."""
    scope = _scope(actor, kind)
    token, publish = request.form.get("token", ""), request.form.get("publish") == "1"
    try:
        stored = interchange.load_upload(_folder(), token, actor=actor, kind=kind,
                                         scope_id=scope, sha256=request.form.get("sha256"))
    except NotFoundError:
        flash(_("The uploaded file is no longer here; please upload it again."), "warning")
        return _back(kind)
    except LinliError as exc:
        flash(error_text(exc), "danger")
        return _back(kind)
    args = {"actor": actor, "kind": kind, "scope_id": scope, "filename": stored.filename,
            "data": stored.data, "schema": SCHEMAS[kind], "publish": publish}
    try:
        result = interchange.commit_import(db(), **args, token=token)
    except ValidationError:
        flash(_("Nothing was imported: the file has problems now. See the rows below."),
              "danger")
        preview = interchange.preview_import(db(), **args)
        return _page(actor, kind, scope, 422, preview=preview, publish=publish)
    except LinliError as exc:
        flash(error_text(exc), "danger")
        return _back(kind)
    if result.replayed:
        flash(_("This file was imported already; nothing was imported twice."), "info")
    return redirect(url_for("pages.import_done", kind=kind, token=token))


@bp.get("/import/<any(demands, resources):kind>/done/<token>")
@signed_in
def import_done(actor: Actor, kind: str, token: str):
    """What an import recorded, with a link to the list."""
    try:
        result = interchange.get_import_result(db(), actor=actor, kind=kind, token=token)
    except LinliError:
        abort(404)
    return render_template("pages/import_done.html", kind=kind, title=TITLES[kind],
                           result=result, list_url=_list_url(kind))


@bp.get("/import/<any(demands, resources):kind>/template.<any(xlsx, csv):fmt>")
@signed_in
def import_template(actor: Actor, kind: str, fmt: str):
    """The template: headers in the user's language, one example row; the XLSX also explains
    each column and lists the categories and grids (or communities)."""
    scope = _scope(actor, kind)
    allowed = interchange.allowed_values(db(), kind, scope)
    columns = [(c.key, (c.zh if _zh() else c.en) + ("*" if c.required else ""))
               for c in interchange.COLUMNS[kind]]
    example = _example(kind, allowed)
    name = str(_("demand list template") if kind == "demands" else _("resource list template"))
    if fmt == "csv":
        return send_table("csv", columns, [example], name)
    body = _template_xlsx(kind, columns, example, allowed)
    return Response(body, mimetype=XLSX, headers={
        "Content-Disposition": _attachment(f"{name}.xlsx")})


def _attachment(name: str) -> str:
    return f"attachment; filename=\"linli.xlsx\"; filename*=UTF-8''{quote(name)}"


def _example(kind: str, allowed) -> dict:
    """One filled-in row, in the user's language."""
    zh = _zh()
    soon = local_date(utcnow() + timedelta(days=30)).isoformat()
    first_category = allowed.categories[0] if allowed.categories else ("other", "其他", "Other")
    category = first_category[1] if zh else first_category[2]
    if kind == "demands":
        grid = allowed.grids[0][0] if allowed.grids else ""
        return {"title": "独居老人每周探访" if zh else "Weekly visit to an elderly neighbour",
                "category": category, "quantity_needed": 4,
                "description": "每周三上午上门陪伴聊天,帮忙买菜" if zh else
                "Wednesday mornings: company and a little shopping",
                "required_skills": "陪护、聊天" if zh else "companionship, chatting",
                "urgency": "一般" if zh else "normal", "deadline": f"{soon} 18:00",
                "grid": grid, "beneficiaries_count": 1,
                "beneficiary_name": "王奶奶" if zh else "Granny Wang",
                "beneficiary_phone": "13800000000",
                "beneficiary_address": "3号楼2单元101" if zh else "Building 3, entrance 2, 101",
                "beneficiary_vulnerable": "是" if zh else "yes"}
    community = allowed.communities[0][0] if allowed.communities else ""
    return {"title": "周末义诊" if zh else "Free weekend health check",
            "kind": "志愿服务" if zh else "volunteer service", "category": category,
            "quantity_total": 20, "capacity_per_occasion": 5,
            "description": "每月第一个周六上午,量血压、测血糖" if zh else
            "First Saturday morning of each month: blood pressure and sugar",
            "skills": "医护、健康咨询" if zh else "nursing, health advice",
            "value_yuan": "50", "service_communities": community, "expires_on": "",
            "is_standing_offer": "是" if zh else "yes"}


def _template_xlsx(kind: str, columns, example: dict, allowed) -> bytes:
    """The XLSX template: the list to fill, the notes on each column, the allowed values."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = str(_("Demands") if kind == "demands" else _("Resources"))
    sheet.append([title for _key, title in columns])
    sheet.append([example.get(key, "") for key, _title in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for i, _column in enumerate(columns):
        sheet.column_dimensions[sheet.cell(1, i + 1).column_letter].width = 18
    sheet.freeze_panes = "A2"
    notes = book.create_sheet(str(_("Notes")))
    notes.append([str(_("Column")), str(_("Also accepted")), str(_("Required")),
                  str(_("What to write"))])
    for column in _columns(kind):
        notes.append([column["header"], column["other"],
                      str(_("yes")) if column["required"] else "", column["help"]])
    notes.append([])
    notes.append([str(_("Rows without anything in them are skipped. Columns marked * must be "
                        "filled in every row. Up to %(n)s rows and %(mb)s MB per file.",
                        n=interchange.MAX_ROWS, mb=interchange.MAX_BYTES // (1024 * 1024)))])
    for row in notes.iter_rows(max_row=1):
        for cell in row:
            cell.font = Font(bold=True)
    for letter, width in (("A", 18), ("B", 22), ("C", 8), ("D", 70)):
        notes.column_dimensions[letter].width = width
    values = book.create_sheet(str(_("Allowed values")))
    values.append([str(_("Category code")), str(_("Category")), "English"])
    for row in allowed.categories:
        values.append(list(row))
    values.append([])
    if kind == "demands":
        values.append([str(_("Grid code")), str(_("Grid"))])
        places = allowed.grids
    else:
        values.append([str(_("Community code")), str(_("Community"))])
        places = allowed.communities
    for row in places:
        values.append(list(row))
    for letter in "ABC":
        values.column_dimensions[letter].width = 24
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
