"""The love bank: points rules, a double-entry journal of points and fen, lots, idempotency keys.

Transfers and entries are append-only (the database refuses UPDATE and DELETE). The cached
`balance` of an account and `remaining` of a lot are the only mutable numbers; CHECK constraints
keep wallets and lots from going below zero, and `linli ledger verify` recomputes both from
the entries.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.db import Base
from web.models.types import UTCDateTime


class PointsRuleVersion(Base):
    """One published version of a community's points rules; in force from `effective_from`."""

    __tablename__ = "points_rules"
    __table_args__ = (UniqueConstraint("community_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)
    document: Mapped[dict] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerAccount(Base):
    """An account in points or fen: a wallet, a community's issuing account, the fund, …"""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint("may_go_negative OR balance >= 0", name="not_overdrawn"),
        CheckConstraint("asset IN ('points', 'fen')", name="known_asset"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)  # kind:asset:community[:user]
    kind: Mapped[str] = mapped_column(String(16))
    asset: Mapped[str] = mapped_column(String(8))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    may_go_negative: Mapped[bool] = mapped_column(Boolean)
    balance: Mapped[int] = mapped_column(Integer, default=0)  # cache of SUM(entries.amount)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LedgerHead(Base):
    """The end of one community's hash chain: the last link's sequence number and hash."""

    __tablename__ = "ledger_heads"

    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class LedgerTransfer(Base):
    """One movement of points or fen, with its reason and source; never changed afterwards."""

    __tablename__ = "ledger_transfers"
    __table_args__ = (UniqueConstraint("reverses_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    asset: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    source_type: Mapped[str] = mapped_column(String(24))
    source_id: Mapped[str | None] = mapped_column(String(64))
    # A unique key per source (a service record, a lot's expiry, an order's refund): the
    # database refuses a second transfer for the same thing, however the calls race.
    source_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transfers.id"))
    rule_version: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict | None] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    entries: Mapped[list[LedgerEntry]] = relationship(order_by="LedgerEntry.id")
    link: Mapped[LedgerLink | None] = relationship(uselist=False, viewonly=True)


class LedgerLink(Base):
    """A transfer's place in its community's hash chain, appended as the transaction commits
    (so the chain's head is locked only for that moment)."""

    __tablename__ = "ledger_links"
    __table_args__ = (UniqueConstraint("community_id", "seq"), UniqueConstraint("transfer_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"))
    seq: Mapped[int] = mapped_column(Integer)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("ledger_transfers.id"))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LedgerEntry(Base):
    """One leg of a transfer: a signed amount into one account (and one lot, for wallets)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (CheckConstraint("amount <> 0", name="amount_not_zero"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("ledger_transfers.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("point_lots.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PointLot(Base):
    """Points that arrived in a wallet together and expire together."""

    __tablename__ = "point_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    origin: Mapped[str] = mapped_column(String(16))  # earned | gift | adjustment
    earned_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date, index=True)
    amount: Mapped[int] = mapped_column(Integer)
    remaining: Mapped[int] = mapped_column(Integer)  # cache of SUM(entries.amount) on the lot


class IdempotencyKey(Base):
    """A client's key for one point-moving request, and what that request produced."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(40))
    fingerprint: Mapped[str] = mapped_column(String(64))
    result_type: Mapped[str] = mapped_column(String(24))
    result_id: Mapped[int | None] = mapped_column(Integer)  # set when the request completes
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MarketItem(Base):
    """Something a community's public-welfare supermarket (公益超市) offers for points."""

    __tablename__ = "market_items"
    __table_args__ = (
        CheckConstraint("points_price > 0", name="price_positive"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock_not_negative"),
        CheckConstraint("value_fen >= 0", name="value_not_negative"),
        CheckConstraint("kind IN ('goods', 'service')", name="known_kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(8))
    description: Mapped[str] = mapped_column(Text, default="")
    points_price: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)  # None for a service; cache of movements
    monthly_limit: Mapped[int | None] = mapped_column(Integer)  # per person per month
    visible_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    visible_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    value_fen: Mapped[int] = mapped_column(Integer, default=0)
    photo_url: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MarketOrder(Base):
    """A resident's basket: points debited and stock held until the clerk hands it over."""

    __tablename__ = "market_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    total_points: Mapped[int] = mapped_column(Integer)
    transfer_id: Mapped[int] = mapped_column(ForeignKey("ledger_transfers.id"))
    refund_transfer_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transfers.id"))
    collect_by: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    at_counter: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    handed_over_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lines: Mapped[list[MarketOrderLine]] = relationship(order_by="MarketOrderLine.id")


class MarketOrderLine(Base):
    __tablename__ = "market_order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("market_orders.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("market_items.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    points_each: Mapped[int] = mapped_column(Integer)
    value_fen_each: Mapped[int] = mapped_column(Integer)
    item: Mapped[MarketItem] = relationship()


class StockMovement(Base):
    """One change of an item's stock, with where it came from or went; never changed."""

    __tablename__ = "stock_movements"
    __table_args__ = (CheckConstraint("delta <> 0", name="delta_not_zero"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("market_items.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    delta: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    donor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    donor_name: Mapped[str | None] = mapped_column(String(100))
    value_fen: Mapped[int] = mapped_column(Integer, default=0)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("market_orders.id"))
    fund_transfer_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transfers.id"))
    count_id: Mapped[int | None] = mapped_column(ForeignKey("stock_counts.id"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StockCount(Base):
    """A stock count (盘点): what was counted against what the movements say."""

    __tablename__ = "stock_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lines: Mapped[list[StockCountLine]] = relationship(order_by="StockCountLine.id")


class StockCountLine(Base):
    __tablename__ = "stock_count_lines"
    __table_args__ = (CheckConstraint("counted >= 0", name="counted_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    count_id: Mapped[int] = mapped_column(ForeignKey("stock_counts.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("market_items.id"))
    expected: Mapped[int] = mapped_column(Integer)
    counted: Mapped[int] = mapped_column(Integer)
