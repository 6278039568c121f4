"""Helpers every service uses: transactions, the clock, lookups, pagination, validation."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from web.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError

F = TypeVar("F", bound=Callable[..., Any])


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def write(fn: F) -> F:
    """Run a service function as one transaction: commit if it returns, roll back if it raises.

    An integrity error from the database (a unique or check constraint) becomes a 409.
    """

    @functools.wraps(fn)
    def wrapper(session: Session, *args, **kwargs):
        try:
            result = fn(session, *args, **kwargs)
            session.commit()
            return result
        except IntegrityError as exc:
            session.rollback()
            raise ConflictError("the change conflicts with existing data", detail=str(exc.orig)) from exc
        except DataError as exc:
            session.rollback()
            raise ValidationError("a value is out of range for the database") from exc
        except BaseException:
            session.rollback()
            raise

    return wrapper  # type: ignore[return-value]


def get_or_404(session: Session, model, ident, what: str | None = None):
    """The row of `model` with primary key `ident`, or NotFoundError."""
    obj = session.get(model, ident) if ident is not None else None
    if obj is None:
        raise NotFoundError(what or model.__name__, ident)
    return obj


def lock(session: Session, model, ident):
    """Re-read a row under SELECT … FOR UPDATE, so checks that follow see the committed state.

    On PostgreSQL this takes the row lock; SQLite already holds the database's write lock
    (every transaction begins IMMEDIATE), so there the clause is left out by the dialect.
    Writes on a demand's team lock in one order — demand, then assignment or report, then
    resource — so two moves never deadlock.
    """
    stmt = (select(model).where(model.id == ident).with_for_update()
            .execution_options(populate_existing=True))
    return session.scalar(stmt)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with % and _ taken literally (escape '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filter_text_and_dates(stmt: Select, model, f: dict) -> Select:
    """Apply the list filters every list shares: `q` in title or description (wildcards taken
    literally) and `created_from` / `created_to` on created_at."""
    if f.get("q"):
        like = like_pattern(f["q"])
        stmt = stmt.where(or_(model.title.ilike(like, escape="\\"),
                              model.description.ilike(like, escape="\\")))
    if f.get("created_from"):
        stmt = stmt.where(model.created_at >= f["created_from"])
    if f.get("created_to"):
        stmt = stmt.where(model.created_at <= f["created_to"])
    return stmt


def require(condition: bool, message: str = "not allowed for your role") -> None:
    """Raise PermissionDeniedError (403) unless `condition` holds."""
    if not condition:
        raise PermissionDeniedError(message)


def invalid(field: str, message: str) -> ValidationError:
    """A 422 naming one bad field."""
    return ValidationError(f"{field}: {message}", fields={field: [message]})


def need_reason(reason: str | None, field: str = "reason") -> str:
    """A non-blank reason, or a 422."""
    if reason is None or not reason.strip():
        raise invalid(field, "a reason is required")
    return reason.strip()


@dataclass
class Page:
    """One page of a list: the rows and the counts a client needs to page on."""

    items: list
    total: int
    page: int
    per_page: int


def paginate(session: Session, stmt: Select, page: int = 1, per_page: int = 20) -> Page:
    """Run `stmt` for one page and count all its rows."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items=list(rows), total=total or 0, page=page, per_page=per_page)


LOCAL_TZ = "Asia/Shanghai"


def local_date(moment: datetime):
    """The calendar date of `moment` in Asia/Shanghai (days, deadlines and reports use it)."""
    return moment.astimezone(ZoneInfo(LOCAL_TZ)).date()
