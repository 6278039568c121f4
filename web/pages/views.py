"""The pages: sign in and out, language, each role's home, the resident's points and the
supermarket, and the clerk's counter."""

from __future__ import annotations

import io
import secrets
from datetime import date
from functools import wraps

import segno
from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_date, format_datetime, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from web.api.common import csrf_token, db
from web.domain.actor import Actor
from web.errors import AuthenticationError, LinliError
from web.i18n import LANGUAGES
from web.models import Community, User
from web.pages.export import EXPORT_LIMIT, export_or_none
from web.pages.ui import HOMES, MENUS, home, list_args, local_target, menu, service_errors
from web.services import disclosure as public
from web.services import lovebank, market
from web.services.auth import authenticate, load_actor

bp = Blueprint("pages", __name__)

ROLE_NAMES = {
    "subdistrict_admin": _l("Subdistrict admin"), "secretary": _l("Community secretary"),
    "grid_worker": _l("Grid worker"), "unit_admin": _l("Unit admin"),
    "clerk": _l("Supermarket clerk"), "resident": _l("Resident"),
}
# Status words every page shows (templates: status_names.demand[...] etc.).
STATUS_NAMES = {
    "demand": {"draft": _l("draft"), "open": _l("open"), "partly_covered": _l("partly covered"),
               "covered": _l("covered"), "in_progress": _l("in progress"),
               "reported": _l("reported, to verify"), "verified": _l("verified"),
               "closed": _l("closed"), "cancelled": _l("cancelled")},
    "assignment": {"pending": _l("claimed, waiting for approval"),
                   "offered": _l("dispatched, waiting for the unit"),
                   "approved": _l("approved"), "accepted": _l("accepted"),
                   "rejected": _l("rejected"), "declined": _l("declined"),
                   "withdrawn": _l("withdrawn"), "recalled": _l("recalled"),
                   "released": _l("released"), "expired": _l("expired"),
                   "cancelled": _l("cancelled"), "completed": _l("completed")},
    "resource": {"draft": _l("draft"), "published": _l("published"),
                 "withdrawn": _l("withdrawn"), "expired": _l("expired")},
    "report": {"submitted": _l("submitted"), "verified": _l("verified"),
               "returned": _l("returned")},
    "proposal": {"proposed": _l("proposed, to review"), "approved": _l("approved"),
                 "rejected": _l("rejected"), "stale": _l("out of date"),
                 "superseded": _l("superseded by a later run")},
    "wish": {"submitted": _l("submitted"), "accepted": _l("accepted"),
             "declined": _l("declined"), "withdrawn": _l("withdrawn")},
    "unit": {"applied": _l("applied"), "approved": _l("approved"), "rejected": _l("rejected"),
             "suspended": _l("suspended")},
    "urgency": {"normal": _l("normal"), "urgent": _l("urgent"), "critical": _l("critical")},
}
ORDER_STATUS = {"reserved": _l("waiting to be collected"), "collected": _l("collected"),
                "cancelled": _l("cancelled"), "expired": _l("not collected in time, refunded")}


def category_name(category) -> str:
    """A category's name in the user's language."""
    if category is None:
        return ""
    return category.name_zh if get_locale().language == "zh" else category.name_en


def category_options() -> list[tuple[int, str]]:
    """(id, name) of the categories in use, for a select."""
    from web.services import categories

    return [(c.id, category_name(c)) for c in categories.list_categories(db())]


def category_names() -> dict[int, str]:
    """Every category's name by id, retired ones too (old items keep theirs)."""
    from web.services import categories

    return {c.id: category_name(c)
            for c in categories.list_categories(db(), include_inactive=True)}


def error_text(exc: LinliError) -> str:
    """A refused action in the user's language: the known kinds by their code (with the numbers
    that matter); the service's own English words are added only on English pages."""
    known = {
        "insufficient_points": _("Not enough points."),
        "out_of_stock": _("Not enough left in stock."),
        "limit_reached": _("That is more than one person may have this month."),
        "validation_error": _("Please check what you entered."),
        "forbidden": _("Your role may not do this."),
        "not_found": _("Not found, or not yours to see."),
        "conflict": _("This cannot be done now."),
        "idempotency_key_reused": _("This form was already sent."),
        "unauthenticated": _("Please sign in."),
    }
    text = known.get(exc.code, _("This cannot be done now."))
    if exc.code == "insufficient_points" and "available" in exc.params:
        text += " " + _("%(available)s usable.", available=exc.params["available"])
    if exc.fields:
        text += " " + "; ".join(" ".join(messages)
                                for messages in service_errors(exc).values())
    if get_locale().language != "zh":
        text += f" ({exc.message})"
    return text


@bp.app_context_processor
def _globals() -> dict:
    return {"csrf_token": csrf_token, "languages": LANGUAGES, "role_names": ROLE_NAMES,
            "order_status": ORDER_STATUS, "status_names": STATUS_NAMES,
            "get_locale": get_locale, "format_date": format_date,
            "format_datetime": format_datetime,
            "signed_in_user": g.get("page_user"), "menu_entries": _menu_entries,
            "here": here}


def here(args: dict | None = None, **changes) -> str:
    """This page's URL with its query `args` (a list's filters) and some of them changed."""
    return url_for(request.endpoint, **{**(request.view_args or {}), **(args or {}), **changes})


def _menu_entries() -> list[tuple[str, object]]:
    """The signed-in user's menu: the pages of the role they act as."""
    role = g.get("page_role")
    return MENUS.get(role, []) if role else []


@bp.before_app_request
def _who() -> None:
    """Load the signed-in user (if any) so the language and menus can follow them."""
    user_id = session.get("user_id")
    if user_id is None or request.path.startswith("/api/"):
        return
    user = db().get(User, user_id)
    if user is None or not user.is_active:
        session.pop("user_id", None)
        return
    g.page_user = user
    g.user_locale = user.locale
    roles = sorted({str(grant.role) for grant in user.grants})
    chosen = session.get("role")
    g.page_roles = roles
    g.page_role = chosen if chosen in roles else (roles[0] if roles else None)


def _check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
        abort(400, description="CSRF")


def signed_in(view):
    """A page for signed-in users; the actor is passed in, and POSTs must carry the CSRF token."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        if g.get("page_user") is None:
            return redirect(url_for("pages.login", next=request.path))
        if request.method == "POST":
            _check_csrf()
        actor = load_actor(db(), g.page_user.id)
        return view(actor, *args, **kwargs)
    return wrapper


def roles_of(actor: Actor) -> list[str]:
    return sorted({str(grant.role) for grant in actor.grants})


def current_role(actor: Actor) -> str | None:
    roles = roles_of(actor)
    chosen = session.get("role")
    return chosen if chosen in roles else (roles[0] if roles else None)


def community_of(actor: Actor, role: str) -> int | None:
    for grant in actor.grants:
        if str(grant.role) == role and grant.community_id:
            return grant.community_id
    return None


# ---- signing in, language, home -----------------------------------------------------------

@bp.get("/")
def index():
    return redirect(url_for("pages.home" if g.get("page_user") else "pages.login"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with username and password; each role lands on its own home page."""
    if request.method == "POST":
        _check_csrf()
        try:
            user = authenticate(db(), request.form.get("username", "").strip(),
                                request.form.get("password", ""))
        except AuthenticationError:
            flash(_("Wrong username or password."), "danger")
            return render_template("pages/login.html"), 401
        session.clear()
        session["user_id"] = user.id
        session["lang"] = user.locale if user.locale in LANGUAGES else "zh_CN"
        return redirect(local_target(request.args.get("next"), url_for("pages.home")))
    return render_template("pages/login.html")


@bp.post("/logout")
def logout():
    _check_csrf()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You have signed out."), "info")
    return redirect(url_for("pages.login"))


@bp.post("/language")
def language():
    """Switch the language; it is remembered in the session and on the signed-in user."""
    _check_csrf()
    lang = request.form.get("lang")
    if lang in LANGUAGES:
        session["lang"] = lang
        user = g.get("page_user")
        if user is not None:
            user.locale = lang
            db().commit()
    return redirect(local_target(request.form.get("next"), url_for("pages.index")))


@bp.post("/role")
@signed_in
def switch_role(actor: Actor):
    role = request.form.get("role")
    if role in roles_of(actor):
        session["role"] = role
    return redirect(url_for("pages.home"))


home("resident", "pages.my_points")
menu("resident", "pages.my_points", _l("My points"))
menu("resident", "pages.market_page", _l("Supermarket"))
home("clerk", "pages.counter")
menu("clerk", "pages.counter", _l("Counter"))


@bp.get("/home")
@signed_in
def home(actor: Actor):
    """Each role's home page; roles whose pages are not built yet see what exists for them."""
    role = current_role(actor)
    if role in HOMES:
        return redirect(url_for(HOMES[role]))
    return render_template("pages/home.html", role=role, roles=roles_of(actor))


# ---- the resident: points and the supermarket ----------------------------------------------

def _resident_community(actor: Actor) -> int:
    community_id = community_of(actor, "resident")
    if community_id is None:
        abort(403)
    return community_id


POINT_KINDS = {  # the kinds of line a wallet shows, in words
    "credit": _l("points for verified service"), "award": _l("award"),
    "redemption": _l("spent at the supermarket"), "refund": _l("refund"),
    "expiry": _l("expired"), "gift": _l("gift between residents"),
    "adjustment": _l("adjustment"), "reversal": _l("reversal")}
POINT_COLUMNS = [("at", _l("When")), ("community", _l("Community")), ("kind", _l("Kind")),
                 ("amount", _l("Points")), ("reason", _l("Why"))]


def _day(text: str | None):
    """A `YYYY-MM-DD` filter as a date; anything else is no filter (a hand-edited link shows
    everything rather than an error)."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _point_filters(la) -> dict:
    """The statement's filters from the query string: kind, dates (Shanghai) and words."""
    f = la.filters
    for name in ("from", "to"):
        if name in f and _day(f[name]) is None:
            del f[name]
    if f.get("kind") not in POINT_KINDS:
        f.pop("kind", None)
    return {"kind": f.get("kind"), "on_from": _day(f.get("from")), "on_to": _day(f.get("to")),
            "q": f.get("q")}


@bp.get("/me/points")
@signed_in
def my_points(actor: Actor):
    """My points: balance, open lots and when they expire, and every line with its reason,
    newest first, a page at a time: by kind, between two dates, words in the reason; the lines
    as shown download as CSV or XLSX."""
    la = list_args("kind", "from", "to")
    filters = _point_filters(la)
    wallets = lovebank.statement(db(), actor=actor, user_id=actor.user_id, with_lines=False)
    names = {c.id: c.name for c in db().query(Community).filter(
        Community.id.in_([w["community_id"] for w in wallets] or [0]))}

    def fetch(page: int, per_page: int):
        return lovebank.list_statement_lines(db(), actor=actor, user_id=actor.user_id,
                                             filters=filters, page=page, per_page=per_page)

    exported = export_or_none(POINT_COLUMNS, lambda: [
        {"at": line["at"], "community": names.get(line["community_id"], ""),
         "kind": str(POINT_KINDS.get(line["kind"], line["kind"])), "amount": line["amount"],
         "reason": line["reason"]} for line in fetch(1, EXPORT_LIMIT).items], _("my points"))
    if exported is not None:
        return exported
    return render_template("pages/points.html", wallets=wallets, names=names, la=la,
                           page=fetch(la.page, la.per_page), kinds=list(POINT_KINDS.items()))


@bp.get("/market")
@signed_in
def market_page(actor: Actor):
    """The supermarket's catalogue (search, by category, a page at a time) with a basket form
    (a fresh key makes a double send safe)."""
    community_id = _resident_community(actor)
    la = list_args("category")
    exported = export_or_none(
        [("name", _("Goods")), ("category", _("Category")), ("points", _("Points")),
         ("stock", _("In stock")), ("limit", _("At most a month"))],
        lambda: [{"name": i.name, "category": i.category, "points": i.points_price,
                  "stock": i.stock, "limit": i.monthly_limit} for i in market.list_items(
            db(), actor=actor, community_id=community_id, filters=la.filters,
            per_page=EXPORT_LIMIT).items], _("supermarket goods"))
    if exported is not None:
        return exported
    page = market.list_items(db(), actor=actor, community_id=community_id,
                             filters=la.filters, page=la.page, per_page=la.per_page)
    shelves = market.list_items(db(), actor=actor, community_id=community_id, filters={},
                                per_page=500).items
    wallets = lovebank.statement(db(), actor=actor, user_id=actor.user_id,
                                 community_id=community_id, limit=1)
    return render_template("pages/market.html", page=page, items=page.items, la=la,
                           categories=sorted({(i.category, i.category) for i in shelves}),
                           usable=wallets[0]["usable"] if wallets else 0,
                           order_key=secrets.token_urlsafe(16))


@bp.post("/market/order")
@signed_in
def market_order(actor: Actor):
    community_id = _resident_community(actor)
    lines = []
    for name, value in request.form.items():
        if name.startswith("qty-") and value.strip() not in ("", "0"):
            try:
                lines.append({"item_id": int(name[4:]), "quantity": int(value)})
            except ValueError:
                flash(_("Please check what you entered."), "danger")
                return redirect(url_for("pages.market_page"))
    if not lines:
        flash(_("Choose at least one item."), "warning")
        return redirect(url_for("pages.market_page"))
    try:
        order = market.place_order(db(), actor=actor, community_id=community_id, lines=lines,
                                   idempotency_key=request.form.get("order_key"))
    except LinliError as exc:
        flash(error_text(exc), "danger")
        return redirect(url_for("pages.market_page"))
    return redirect(url_for("pages.order_page", order_id=order.id))


@bp.get("/market/orders/<int:order_id>")
@signed_in
def order_page(actor: Actor, order_id: int):
    """An order: its code as text and as a QR code, to show at the counter."""
    try:
        order = market.get_order(db(), actor=actor, order_id=order_id)
    except LinliError:
        abort(404)
    svg = io.BytesIO()
    segno.make(order.code, error="m", micro=False).save(svg, kind="svg", scale=6, border=2, xmldecl=False,
                                           omitsize=True,
                                           svgns=True, title=order.code)
    return render_template("pages/order.html", order=order, qr=Markup(svg.getvalue().decode()))


# ---- the clerk: the counter ------------------------------------------------------------------

@bp.route("/counter", methods=["GET", "POST"])
@signed_in
def counter(actor: Actor):
    """The counter: enter or scan a code and hand the basket over."""
    handed = None
    if request.method == "POST":
        try:
            handed = market.hand_over(db(), actor=actor, code=request.form.get("code", ""))
            flash(_("Handed over. Code %(code)s is used now.", code=handed.code), "success")
        except LinliError as exc:
            flash(error_text(exc), "danger")
    return render_template("pages/counter.html", handed=handed)


# ---- public disclosure (公示), no sign-in -----------------------------------------------------

@bp.get("/public")
def public_index():
    """Every community's disclosure page."""
    communities = db().query(Community).order_by(Community.code).all()
    return render_template("pages/public_index.html", communities=communities)


def _public_tables(community_id: int) -> dict:
    """The disclosure's tables as downloads (every row, not one page): columns and rows, with
    the same masking as the page (organisations by name, people by a masked name)."""
    zh = get_locale().language == "zh"
    return {
        "work": ([("on", _("When")), ("title", _("Item")), ("category", _("Category")),
                  ("units", _("Units"))], lambda: [
            {**row, "category": row["category_zh"] if zh else row["category_en"]}
            for row in public.completed_work(db(), community_id,
                                             per_page=EXPORT_LIMIT).items]),
        "units": ([("unit", _("Unit")), ("reports", _("Reports verified")),
                   ("value_yuan", _("Value (yuan)"))], lambda: [
            {**row, "value_yuan": row["value_fen"] / 100}
            for row in public.contributors(db(), community_id)]),
        "donations": ([("on", _("When")), ("donor", _("Donor")),
                       ("yuan", _("Amount (yuan)")), ("grant_yuan", _("Matching grant (yuan)"))],
                      lambda: [{**row, "yuan": row["fen"] / 100,
                                "grant_yuan": row["grant_fen"] / 100}
                               for row in public.donations(db(), community_id)]),
    }


@bp.get("/public/<code>")
def public_page(code: str):
    """A community's disclosure: work done and by whom (paged, searchable), points, the fund;
    no personal data. Each table downloads whole (`?format=csv&table=work|units|donations`)."""
    try:
        community = public.community_by_code(db(), code)
    except LinliError:
        abort(404)
    table = request.args.get("table", "work")
    tables = _public_tables(community.id)
    columns, rows = tables.get(table, tables["work"])
    exported = export_or_none(columns, rows, f"{community.name}-{_('Public disclosure')}-"
                                             f"{table if table in tables else 'work'}")
    if exported is not None:
        return exported
    la = list_args()
    return render_template("pages/public.html", la=la, data=public.disclosure(
        db(), community_id=community.id, page=la.page, q=la.filters.get("q")))


@bp.errorhandler(400)
def _bad_request(_exc):
    return render_template("pages/error.html",
                           message=_("The form expired; please try again.")), 400


def init_pages(app) -> None:
    """Register the pages and their local Bootstrap assets (no CDN)."""
    from flask_bootstrap import Bootstrap5

    app.config.setdefault("BOOTSTRAP_SERVE_LOCAL", True)
    Bootstrap5(app)
    # Globals, not context: macros imported without context (`_ui.html`) see them too.
    app.jinja_env.globals.update(here=here, csrf_token=csrf_token)
    app.register_blueprint(bp)
