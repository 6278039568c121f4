"""What every page shares: each role's menu and home, lists read from the query string (page,
search, filters), forms checked by the API's own schemas with errors by field in the user's
language, and confirmation before anything irreversible.

Role modules register themselves here (`menu(...)`, `home(...)`) so no one edits a central
table to add a page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import Schema
from marshmallow import ValidationError as SchemaError

from web.errors import LinliError
from web.i18n import TIMEZONE

# ---- menus and homes, by role ---------------------------------------------------------------

MENUS: dict[str, list[tuple[str, object]]] = {}
HOMES: dict[str, str] = {}


def menu(role: str, endpoint: str, label) -> None:
    """Add a page to a role's menu (in the order registered)."""
    entries = MENUS.setdefault(role, [])
    if endpoint not in [e for e, _label in entries]:
        entries.append((endpoint, label))


def home(role: str, endpoint: str) -> None:
    """The page a role lands on after signing in."""
    HOMES[role] = endpoint


# ---- lists ----------------------------------------------------------------------------------

PER_PAGE = 20


@dataclass
class ListArgs:
    """A list page's query: page number, search text and the named filters (blank ones left
    out); `args` keeps them for the pager's links."""

    page: int = 1
    per_page: int = PER_PAGE
    filters: dict = field(default_factory=dict)

    @property
    def args(self) -> dict:
        return {k: v for k, v in self.filters.items() if v not in (None, "")}


def list_args(*names: str, ints: tuple[str, ...] = (), per_page: int = PER_PAGE) -> ListArgs:
    """Read `page`, `q` and the filters `names` from the query string. Bad numbers are ignored
    rather than refused: a hand-edited link shows the first page, not an error."""
    def number(text, default=None):
        try:
            return int(text)
        except (TypeError, ValueError):
            return default

    filters = {}
    for name in ("q", *names):
        value = (request.args.get(name) or "").strip()
        if not value:
            continue
        if name in ints:
            value = number(value)
            if value is None:
                continue
        filters[name] = value
    page = max(1, number(request.args.get("page"), 1))
    return ListArgs(page=min(page, 10_000), per_page=per_page, filters=filters)


# ---- forms ----------------------------------------------------------------------------------

class FormInvalid(Exception):
    """A form with errors, by field, already in the user's language."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("form invalid")
        self.errors = errors


# The marshmallow and service messages a form can show, as catalogue entries (the patterns
# carry their numbers across).
MESSAGES = {
    "Missing data for required field.": _l("Please fill this in."),
    "Field may not be null.": _l("Please fill this in."),
    "Not a valid integer.": _l("Please enter a whole number."),
    "Not a valid number.": _l("Please enter a number."),
    "Not a valid string.": _l("Please enter text."),
    "Not a valid date.": _l("Please enter a date."),
    "Not a valid datetime.": _l("Please enter a date and time."),
    "Not a valid boolean.": _l("Please choose yes or no."),
    "Not a valid list.": _l("Please enter a list."),
    "Unknown field.": _l("This field is not expected here."),
    "a reason is required": _l("Please give a reason."),
    "ends before it starts": _l("The end is before the start."),
}
PATTERNS = [
    (re.compile(r"^Must be greater than or equal to (?P<min>[\d.]+)( and less than or equal "
                r"to (?P<max>[\d.]+))?\.$"), "range"),
    (re.compile(r"^Must be less than or equal to (?P<max>[\d.]+)\.$"), "max"),
    (re.compile(r"^Length must be between (?P<min>\d+) and (?P<max>\d+)\.$"), "length"),
    (re.compile(r"^Shorter than minimum length (?P<min>\d+)\.$"), "min_length"),
    (re.compile(r"^Longer than maximum length (?P<max>\d+)\.$"), "max_length"),
    (re.compile(r"^Must be one of: (?P<choices>.*)\.$"), "one_of"),
]


def translate(message: str) -> str:
    """One validation message in the user's language (the English as given when unknown)."""
    if message in MESSAGES:
        return str(MESSAGES[message])
    for pattern, kind in PATTERNS:
        found = pattern.match(message)
        if not found:
            continue
        n = found.groupdict()
        if kind == "range":
            return (_("Between %(min)s and %(max)s, please.", min=n["min"], max=n["max"])
                    if n.get("max") else _("At least %(min)s, please.", min=n["min"]))
        if kind == "max":
            return _("At most %(max)s, please.", max=n["max"])
        if kind == "length":
            return _("Between %(min)s and %(max)s characters, please.", min=n["min"],
                     max=n["max"])
        if kind == "min_length":
            return (_("Please fill this in.") if n["min"] == "1"
                    else _("At least %(min)s characters, please.", min=n["min"]))
        if kind == "max_length":
            return _("At most %(max)s characters, please.", max=n["max"])
        return _("Please choose one of: %(choices)s.", choices=n["choices"])
    return _(message)


def _flatten(errors, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(errors, list):
        for item in errors:
            if isinstance(item, (dict, list)):
                for k, v in _flatten(item, prefix).items():
                    out.setdefault(k, []).extend(v)
            else:
                out.setdefault(prefix or "_schema", []).append(translate(str(item)))
    else:
        out.setdefault(prefix or "_schema", []).append(translate(str(errors)))
    return out


def load_form(schema: Schema | type[Schema], data: dict, *, lists: tuple[str, ...] = (),
              datetimes: tuple[str, ...] = ()) -> dict:
    """Check a form with the API's schema. Blank fields count as not given; `lists` are split
    on commas (either kind); `datetimes` come from `datetime-local` inputs in Asia/Shanghai.
    Raises FormInvalid with every field's errors."""
    cleaned: dict = {}
    for key, value in data.items():
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                continue
        if key in lists and isinstance(value, str):
            value = [part.strip() for part in re.split(r"[,，、]", value) if part.strip()]
        if key in datetimes and isinstance(value, str):
            value = local_to_iso(value)
        cleaned[key] = value
    schema = schema() if isinstance(schema, type) else schema
    try:
        return schema.load(cleaned)
    except SchemaError as exc:
        raise FormInvalid(_flatten(exc.messages)) from None


def local_to_iso(value: str) -> str:
    """A `datetime-local` value (Shanghai wall time) as an ISO time with its offset; anything
    unreadable is passed on for the schema to refuse."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(TIMEZONE))
    return moment.isoformat()


def service_errors(exc: LinliError) -> dict[str, list[str]]:
    """A service's refusal by field (when it names fields), in the user's language."""
    if not exc.fields:
        return {}
    return _flatten(exc.fields)


def local_target(target: str | None, default: str) -> str:
    """`target` if it is a path on this site, else `default`. Browsers read a backslash as a
    slash and drop control characters, so `/\\evil.example` would leave the site: refused."""
    target = target or ""
    if any(ch == "\\" or ord(ch) < 32 for ch in target):
        return default
    parts = urlsplit(target)
    ok = target.startswith("/") and not target.startswith("//") and not parts.scheme \
        and not parts.netloc
    return target if ok else default


def is_id(text: str | None) -> bool:
    """A row id typed or sent by a form: ASCII digits only, small enough for any database."""
    return bool(text) and text.isascii() and text.isdecimal() and len(text) <= 9


# ---- confirming irreversible actions --------------------------------------------------------

def confirm(question, when=None):
    """Ask before an irreversible POST (only when `when()` holds, if given). With JavaScript the browser asks (`data-confirm` on the
    form sets `confirmed=1`); without it, the first POST answers with a page that asks and
    posts the same fields again with `confirmed=1`. Nothing changes until then."""
    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            if (request.method == "POST" and request.form.get("confirmed") != "1"
                    and (when is None or when())):
                fields = [(k, v) for k, v in request.form.items(multi=True)
                          if k not in ("confirmed", "csrf_token")]
                back = urlsplit(request.referrer or "")
                return render_template("pages/confirm.html", question=question,
                                       action=request.path, fields=fields,
                                       back=local_target(back.path, "/home"))
            return view(*args, **kwargs)
        return wrapper
    return decorate
