"""The community's books for its secretary: the love bank's accounts and journal, the
supermarket's goods and orders, and the community fund — each list searchable, paged and
downloadable."""

from __future__ import annotations

from flask import abort, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from web.api.common import db
from web.domain.actor import Actor
from web.models import User
from web.pages.export import EXPORT_LIMIT, export_or_none
from web.pages.ui import list_args, menu
from web.pages.views import ORDER_STATUS, bp, community_of, signed_in
from web.services import lovebank, market
from web.services.journal import AccountKind, TransferKind

menu("secretary", "pages.books", _l("Points and supermarket"))

TRANSFER_KINDS = {
    TransferKind.CREDIT: _l("points for verified service"), TransferKind.AWARD: _l("award"),
    TransferKind.REDEMPTION: _l("spent at the supermarket"), TransferKind.REFUND: _l("refund"),
    TransferKind.EXPIRY: _l("expired"), TransferKind.GIFT: _l("gift between residents"),
    TransferKind.ADJUSTMENT: _l("adjustment"), TransferKind.REVERSAL: _l("reversal"),
    TransferKind.DONATION: _l("donation to the fund"),
    TransferKind.PURCHASE: _l("stock bought by the fund"),
}
ACCOUNT_KINDS = {
    AccountKind.ISSUING: _l("points issued (all time)"),
    AccountKind.SUPERMARKET: _l("points spent at the supermarket"),
    AccountKind.EXPIRY: _l("points expired"), AccountKind.ADJUSTMENT: _l("adjustments"),
    AccountKind.FUND: _l("fund balance (fen)"), AccountKind.DONATIONS: _l("donations (fen)"),
    AccountKind.GRANTS: _l("matching grants (fen)"), AccountKind.PURCHASES: _l("purchases (fen)"),
}
JOURNAL_COLUMNS = [("id", _l("No.")), ("at", _l("When")), ("kind", _l("Kind")),
                   ("asset", _l("Unit of account")), ("amount", _l("Amount")),
                   ("reason", _l("Reason")), ("by", _l("By"))]


def _community(actor: Actor) -> int:
    community_id = community_of(actor, "secretary")
    if community_id is None:
        abort(403)
    return community_id


@bp.get("/secretary/books")
@signed_in
def books(actor: Actor):
    """The love bank's accounts and journal (filter by kind), the fund, the goods in stock."""
    community_id = _community(actor)
    session = db()
    la = list_args("kind")
    filters = {"kind": la.filters["kind"]} if la.filters.get("kind") in TRANSFER_KINDS else {}
    if la.filters.get("q"):
        filters["q"] = la.filters["q"]

    def rows():
        every = lovebank.list_transfers(session, actor=actor, community_id=community_id,
                                        filters=filters, per_page=EXPORT_LIMIT).items
        return _journal_rows(every)

    exported = export_or_none(JOURNAL_COLUMNS, rows, _("points journal"))
    if exported is not None:
        return exported
    journal = lovebank.list_transfers(session, actor=actor, community_id=community_id,
                                      filters=filters, page=la.page, per_page=la.per_page)
    accounts = lovebank.list_accounts(session, actor=actor, community_id=community_id)
    fund = market.fund_summary(session, actor=actor, community_id=community_id)
    goods = market.list_items(session, actor=actor, community_id=community_id, filters={},
                              per_page=GOODS_SHOWN)
    return render_template("pages/secretary_books.html", la=la, journal=journal,
                           lines=_journal_rows(journal.items), accounts=accounts, fund=fund,
                           goods=goods, kinds=list(TRANSFER_KINDS.items()),
                           account_kinds=ACCOUNT_KINDS)


def _journal_rows(transfers) -> list[dict]:
    people = {u.id: u.display_name for u in db().query(User).filter(
        User.id.in_({t.created_by for t in transfers if t.created_by} or {0}))}
    amounts = lovebank.transfer_amounts(db(), [t.id for t in transfers])
    return [{"id": t.id, "at": t.created_at, "kind": str(TRANSFER_KINDS.get(t.kind, t.kind)),
             "asset": _("points") if t.asset == "points" else _("fen"), "amount": amounts.get(t.id, 0),
             "reason": t.reason, "by": people.get(t.created_by, _("the system"))}
            for t in transfers]


GOODS_SHOWN = 20  # goods on the books page; the goods list has them all
GOODS_KINDS = {"goods": _l("goods"), "service": _l("service")}
GOODS_COLUMNS = [("id", _l("No.")), ("name", _l("Item")), ("category", _l("Category")),
                 ("kind", _l("Kind")), ("points", _l("Points")), ("stock", _l("In stock")),
                 ("active", _l("On offer"))]


@bp.get("/secretary/goods")
@signed_in
def community_goods(actor: Actor):
    """The supermarket's goods and services: by kind, words in the name, page, download."""
    community_id = _community(actor)
    la = list_args("kind")
    if la.filters.get("kind") not in (None, *GOODS_KINDS):
        la.filters.pop("kind")

    def fetch(page: int, per_page: int):
        return market.list_items(db(), actor=actor, community_id=community_id,
                                 filters=la.filters, page=page, per_page=per_page)

    exported = export_or_none(GOODS_COLUMNS, lambda: [{
        "id": i.id, "name": i.name, "category": i.category,
        "kind": str(GOODS_KINDS.get(i.kind, i.kind)), "points": i.points_price,
        "stock": i.stock, "active": _("yes") if i.is_active else _("no")}
        for i in fetch(1, EXPORT_LIMIT).items], _("supermarket goods"))
    if exported is not None:
        return exported
    return render_template("pages/secretary_goods.html", la=la,
                           page=fetch(la.page, la.per_page), kinds=list(GOODS_KINDS.items()))


ORDER_COLUMNS = [("code", _l("Code")), ("at", _l("Ordered at")), ("status", _l("Status")),
                 ("points", _l("Points")), ("resident", _l("Resident"))]


@bp.get("/secretary/orders")
@signed_in
def community_orders(actor: Actor):
    """The supermarket's orders: filter by status, page, download."""
    community_id = _community(actor)
    la = list_args("status")
    filters = {"community_id": community_id, "q": la.filters.get("q")}
    if la.filters.get("status") in ORDER_STATUS:
        filters["status"] = la.filters["status"]

    def rows(items):
        people = {u.id: u.display_name for u in db().query(User).filter(
            User.id.in_({o.user_id for o in items} or {0}))}
        return [{"code": o.code, "at": o.created_at,
                 "status": str(ORDER_STATUS.get(o.status, o.status)), "points": o.total_points,
                 "resident": people.get(o.user_id, "")} for o in items]

    exported = export_or_none(ORDER_COLUMNS, lambda: rows(market.list_orders(
        db(), actor=actor, filters=filters, per_page=EXPORT_LIMIT).items), _("supermarket orders"))
    if exported is not None:
        return exported
    page = market.list_orders(db(), actor=actor, filters=filters, page=la.page,
                              per_page=la.per_page)
    return render_template("pages/secretary_orders.html", la=la, page=page,
                           lines=rows(page.items), statuses=list(ORDER_STATUS.items()))
