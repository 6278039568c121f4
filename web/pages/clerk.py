"""The supermarket clerk's pages beside the counter: redeeming for a resident who has no phone,
taking in donated or bought stock, counting the stock (盘点) with its differences, and every
stock movement.

The clerk works in the community of their clerk role (a secretary, who may also run the
counter, in their own community).
"""

from __future__ import annotations

import secrets
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from web.api.common import db
from web.api.market import CountIn, DonationIn, PurchaseIn
from web.domain.actor import Actor
from web.errors import LinliError
from web.models import Community, MarketOrder, RoleGrant, StockCount, User
from web.models.people import Role
from web.pages.export import EXPORT_LIMIT, export_or_none
from web.pages.ui import FormInvalid, confirm, is_id, list_args, load_form, menu, service_errors
from web.pages.views import bp, community_of, error_text, signed_in
from web.services import market, units
from web.services.base import Page, like_pattern, paginate
from web.services.lovebank import residents_of

menu("clerk", "pages.counter_redeem", _l("Redeem for a resident"))
menu("clerk", "pages.counter_stock", _l("Stock in"))
menu("clerk", "pages.counter_count", _l("Stock count"))
menu("clerk", "pages.counter_movements", _l("Stock movements"))

MOVEMENT_KINDS = {"donation": _l("donated"), "purchase": _l("bought"),
                  "redemption": _l("redeemed"), "return": _l("returned (order cancelled)"),
                  "count": _l("stock count difference")}
MAX_YUAN = Decimal("10000000")  # 10⁹ fen, the services' limit


def _community(actor: Actor) -> Community:
    """The community whose supermarket the actor runs (as clerk, else as secretary)."""
    community_id = community_of(actor, "clerk") or community_of(actor, "secretary")
    if community_id is None:
        abort(403)
    return db().get(Community, community_id)


def _goods(actor: Actor, community_id: int) -> list:
    """The community's goods (things with stock), in catalogue order."""
    page = market.list_items(db(), actor=actor, community_id=community_id,
                             filters={"kind": "goods"}, per_page=1000)
    return page.items


def _whole(data: dict, *names: str) -> dict:
    """Turn the form's whole numbers into ints (the API's schemas are strict); anything else is
    left as typed, for the schema to refuse under its field."""
    out = dict(data)
    for name in names:
        text = out.get(name)
        if isinstance(text, str) and is_id(text.strip().lstrip("-")):
            out[name] = int(text)
    return out


def _fen(text: str | None, name: str, errors: dict, required: bool = True) -> int | None:
    """An amount in yuan (up to two decimals) as integer fen; an error under `name` if not."""
    text = (text or "").strip().replace(",", "").replace("，", "")
    if not text:
        if required:
            errors[name] = [_("Please fill this in.")]
        return None
    try:
        yuan = Decimal(text)
    except InvalidOperation:
        errors[name] = [_("Please enter an amount in yuan, like 25 or 12.50.")]
        return None
    if not yuan.is_finite() or yuan < 0 or yuan > MAX_YUAN or yuan != yuan.quantize(Decimal("0.01")):
        errors[name] = [_("Please enter an amount in yuan, like 25 or 12.50.")]
        return None
    return int((yuan * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def mask_phone(phone: str | None) -> str:
    """A phone number with its middle hidden (13812345678 → 138****5678)."""
    phone = (phone or "").strip()
    if len(phone) >= 8:
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
    if len(phone) >= 3:
        return "*" * (len(phone) - 2) + phone[-2:]
    return "*" * len(phone)


# ---- redeeming for a resident at the counter ----------------------------------------------------

def find_residents(community_id: int, q: str | None, page: int, per_page: int) -> Page:
    """The community's residents whose name or phone contains `q` (the clerk sees no other
    people; `users.list_users` does not serve clerks)."""
    stmt = (select(User).where(User.is_active.is_(True), User.id.in_(
        select(RoleGrant.user_id).where(RoleGrant.role == str(Role.RESIDENT),
                                        RoleGrant.community_id == community_id))))
    if q:
        like = like_pattern(q)
        stmt = stmt.where(or_(User.display_name.ilike(like, escape="\\"),
                              User.phone.like(like, escape="\\")))
    return paginate(db(), stmt.order_by(User.display_name, User.id), page, per_page)


def _resident(community_id: int, user_id: str | None) -> User | None:
    if not is_id(user_id) or not residents_of(db(), community_id, [int(user_id)]):
        return None
    return db().get(User, int(user_id))


def _basket(errors: dict) -> list[dict]:
    lines = []
    for name, value in request.form.items():
        if not name.startswith("qty-") or value.strip() in ("", "0"):
            continue
        if not is_id(name[4:]) or not is_id(value.strip()) or not 1 <= int(value) <= 99:
            errors[name] = [_("Between %(min)s and %(max)s, please.", min=0, max=99)]
            continue
        lines.append({"item_id": int(name[4:]), "quantity": int(value)})
    return lines


@bp.route("/counter/redeem", methods=["GET", "POST"])
@signed_in
@confirm(_l("Hand these over now and take the points from the resident's account?"))
def counter_redeem(actor: Actor):
    """Find a resident without a phone, choose goods for them and hand them over at once."""
    community = _community(actor)
    args = request.form if request.method == "POST" else request.args
    resident = _resident(community.id, args.get("user_id"))
    if resident is None:
        la = list_args()
        found = find_residents(community.id, la.filters.get("q"), la.page, la.per_page) \
            if la.filters.get("q") else None
        return render_template("pages/clerk_redeem_find.html", la=la, found=found,
                               mask=mask_phone, community=community)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        lines = _basket(errors)
        if not lines and not errors:
            errors["_schema"] = [_("Choose at least one item.")]
        if not errors:
            try:
                order = market.place_order(db(), actor=actor, community_id=community.id,
                                           lines=lines, for_user_id=resident.id,
                                           idempotency_key=request.form.get("order_key"))
                flash(_("Handed over to %(name)s: %(points)s points taken.",
                        name=resident.display_name, points=order.total_points), "success")
                return redirect(url_for("pages.counter_redeem", user_id=resident.id,
                                        done=order.id))
            except LinliError as exc:
                flash(error_text(exc), "danger")
        status = 422
    done = None
    if is_id(request.args.get("done")):
        done = db().get(MarketOrder, int(request.args["done"]))
        if done is None or done.community_id != community.id or done.user_id != resident.id:
            done = None
    items = [i for i in market.list_items(db(), actor=actor, community_id=community.id,
                                          filters={}, per_page=1000).items if i.is_active]
    return render_template("pages/clerk_redeem.html", resident=resident, items=items,
                           mask=mask_phone, errors=errors, done=done,
                           order_key=request.form.get("order_key") or secrets.token_urlsafe(16),
                           values=request.form), status


# ---- taking stock in ---------------------------------------------------------------------------

def _stock_page(actor: Actor, community: Community, errors: dict | None = None,
                form: str | None = None, status: int = 200):
    approved = units.list_units(db(), actor=actor, status="approved",
                                subdistrict_id=community.subdistrict_id, per_page=1000).items
    goods = _goods(actor, community.id)
    return render_template(
        "pages/clerk_stock.html", goods=goods,
        goods_options=[(g.id, _("%(name)s (%(n)s in stock)", name=g.name, n=g.stock))
                       for g in goods],
        unit_options=[(u.id, u.name) for u in approved], errors=errors or {}, form=form,
        values=request.form if form else {}, may_buy=market.may_run_counter(actor, community.id),
        purchase_key=(request.form.get("idempotency_key") if form == "purchase" else None)
        or secrets.token_urlsafe(16)), status


def _item_id(errors: dict, name: str = "item_id") -> int | None:
    text = request.form.get(name, "").strip()
    if not is_id(text):
        errors[name] = [_("Please choose the goods.")]
        return None
    return int(text)


def _renamed(errors: dict, names: dict) -> dict:
    """Errors by the service's or schema's field names, shown under the form's fields."""
    return {names.get(k, k): v for k, v in errors.items()}


DONATION_FIELDS = {"value_fen": "value_yuan"}
PURCHASE_FIELDS = {"item_id": "buy_item_id", "quantity": "buy_quantity",
                   "reason": "buy_reason", "cost_fen": "cost_yuan"}


@bp.get("/counter/stock")
@signed_in
def counter_stock(actor: Actor):
    """Take in stock: goods donated by a unit or a resident, or bought with the fund."""
    return _stock_page(actor, _community(actor))


@bp.post("/counter/stock/donation")
@signed_in
def counter_donation(actor: Actor):
    community = _community(actor)
    errors: dict[str, list[str]] = {}
    item_id = _item_id(errors)
    value_fen = _fen(request.form.get("value_yuan"), "value_yuan", errors)
    donor = request.form.get("donor_type")
    data = {k: request.form.get(k, "") for k in ("quantity", "reason")}
    if donor == "unit":
        data["unit_id"] = request.form.get("unit_id", "")
        if not data["unit_id"].strip():
            errors["unit_id"] = [_("Please choose the unit that gives.")]
    elif donor == "resident":
        data["donor_name"] = request.form.get("donor_name", "")
        if not data["donor_name"].strip():
            errors["donor_name"] = [_("Please write who gives.")]
    else:
        errors["donor_type"] = [_("Please choose who gives.")]
    try:
        loaded = load_form(DonationIn, _whole({**data, "value_fen": value_fen or 0},
                                              "quantity", "unit_id"))
    except FormInvalid as exc:
        errors = {**_renamed(exc.errors, DONATION_FIELDS), **errors}
    if errors:
        return _stock_page(actor, community, errors, "donation", 422)
    try:
        movement = market.receive_donation(db(), actor=actor, item_id=item_id,
                                           **{**loaded, "value_fen": value_fen})
    except LinliError as exc:
        flash(error_text(exc), "danger")
        return _stock_page(actor, community, _renamed(service_errors(exc), DONATION_FIELDS),
                           "donation", 422)
    flash(_("Received: %(n)s more in stock.", n=movement.delta), "success")
    return redirect(url_for("pages.counter_stock"))


@bp.post("/counter/stock/purchase")
@signed_in
@confirm(_l("Pay for this stock from the community fund?"))
def counter_purchase(actor: Actor):
    community = _community(actor)
    errors: dict[str, list[str]] = {}
    item_id = _item_id(errors, "buy_item_id")
    cost_fen = _fen(request.form.get("cost_yuan"), "cost_yuan", errors)
    if cost_fen == 0:
        errors["cost_yuan"] = [_("At least %(min)s, please.", min="0.01")]
    try:
        loaded = load_form(PurchaseIn, _whole({
            "quantity": request.form.get("buy_quantity", ""),
            "reason": request.form.get("buy_reason", ""), "cost_fen": cost_fen or 1},
            "quantity"))
    except FormInvalid as exc:
        errors = {**_renamed(exc.errors, PURCHASE_FIELDS), **errors}
    if errors:
        return _stock_page(actor, community, errors, "purchase", 422)
    try:
        movement = market.purchase_stock(db(), actor=actor, item_id=item_id,
                                         idempotency_key=request.form.get("idempotency_key"),
                                         **{**loaded, "cost_fen": cost_fen})
    except LinliError as exc:
        flash(error_text(exc), "danger")
        return _stock_page(actor, community, _renamed(service_errors(exc), PURCHASE_FIELDS),
                           "purchase", 422)
    flash(_("Bought: %(n)s more in stock, paid from the community fund.", n=movement.delta),
          "success")
    return redirect(url_for("pages.counter_stock"))


# ---- the stock count ------------------------------------------------------------------------------

def _count_lines(goods: list, errors: dict) -> list[dict]:
    """The counted numbers typed in (blank: not counted); an error under each bad one."""
    lines = []
    for item in goods:
        text = request.form.get(f"counted-{item.id}", "").strip()
        if not text:
            continue
        if not is_id(text) or int(text) > 10**7:
            errors[f"counted-{item.id}"] = [_("Please enter the number you counted (0 or more).")]
            continue
        lines.append({"item_id": item.id, "counted": int(text)})
    return lines


@bp.route("/counter/count", methods=["GET", "POST"])
@signed_in
@confirm(_l("Record this count? Each difference changes the stock, with your reason."))
def counter_count(actor: Actor):
    """Count the goods on the shelves; what differs from the records is adjusted and shown."""
    community = _community(actor)
    goods = _goods(actor, community.id)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        lines = _count_lines(goods, errors)
        if not lines and not errors:
            errors["_schema"] = [_("Enter the number counted for at least one item.")]
        try:
            load_form(CountIn, {"community_id": community.id, "lines": lines or [{}],
                                "reason": request.form.get("reason", "")})
        except FormInvalid as exc:
            errors.update({k: v for k, v in exc.errors.items() if not k.startswith("lines")})
        if not errors:
            try:
                count = market.count_stock(db(), actor=actor, community_id=community.id,
                                           lines=lines, reason=request.form.get("reason"))
                flash(_("Count recorded."), "success")
                return redirect(url_for("pages.counter_count", count_id=count.id))
            except LinliError as exc:
                flash(error_text(exc), "danger")
                errors.update(service_errors(exc))
        return render_template("pages/clerk_count.html", goods=goods, errors=errors,
                               values=request.form, count=None), 422
    return render_template("pages/clerk_count.html", goods=goods, errors=errors, values={},
                           count=_past_count(community.id, goods))


def _past_count(community_id: int, goods: list) -> dict | None:
    """The count named in the query string, with its differences (the community's only)."""
    text = request.args.get("count_id", "")
    count = db().get(StockCount, int(text)) if is_id(text) else None
    if count is None or count.community_id != community_id:
        return None
    names = {item.id: item.name for item in goods}
    lines = [{"name": names.get(line.item_id, str(line.item_id)), "expected": line.expected,
              "counted": line.counted, "difference": line.counted - line.expected}
             for line in count.lines]
    return {"count": count, "lines": lines,
            "differing": sum(1 for line in lines if line["difference"])}


# ---- stock movements ---------------------------------------------------------------------------------

@bp.get("/counter/movements")
@signed_in
def counter_movements(actor: Actor):
    """Every movement of the supermarket's stock, newest first: by goods, kind and donor unit,
    and words in the goods' name, the reason or the donor's name."""
    community = _community(actor)
    la = list_args("item_id", "kind", "unit_id", ints=("item_id", "unit_id"))
    if la.filters.get("kind") not in (None, *MOVEMENT_KINDS):
        la.filters.pop("kind")
    goods = _goods(actor, community.id)
    names = {item.id: item.name for item in goods}
    unit_names = {u.id: u.name for u in units.list_units(
        db(), actor=actor, subdistrict_id=community.subdistrict_id, per_page=1000).items}

    def page_of(page: int, per_page: int) -> Page:
        return market.list_stock_movements(db(), actor=actor, community_id=community.id,
                                           filters=la.filters, page=page, per_page=per_page)

    def row(m) -> dict:
        donor = unit_names.get(m.unit_id, "") if m.unit_id else (m.donor_name or "")
        return {"id": m.id, "at": m.created_at, "item": names.get(m.item_id, str(m.item_id)),
                "kind": str(MOVEMENT_KINDS.get(m.kind, m.kind)), "delta": m.delta,
                "value_yuan": float(Decimal(m.value_fen) / 100), "donor": donor,
                "reason": m.reason or "", "order_id": m.order_id, "count_id": m.count_id}

    exported = export_or_none(
        [("id", "ID"), ("at", _("Time")), ("item", _("Goods")), ("kind", _("Kind")),
         ("delta", _("Change")), ("value_yuan", _("Value (yuan)")), ("donor", _("Donor")),
         ("reason", _("Reason")), ("order_id", _("Order")), ("count_id", _("Stock count"))],
        lambda: [row(m) for m in page_of(1, EXPORT_LIMIT).items], _("Stock movements"))
    if exported is not None:
        return exported
    page = page_of(la.page, la.per_page)
    return render_template("pages/clerk_movements.html", page=page, la=la,
                           rows=[row(m) for m in page.items],
                           goods=[(item.id, item.name) for item in goods],
                           units=sorted(unit_names.items(), key=lambda u: u[1]),
                           kinds=list(MOVEMENT_KINDS.items()))
