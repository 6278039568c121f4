"""Categories of demands and resources: a fixed starting set, extensible by subdistrict admins."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.domain.actor import Actor
from web.errors import ConflictError
from web.models import Category
from web.services.base import get_or_404, invalid, require, write


def list_categories(session: Session, *, include_inactive: bool = False) -> list[Category]:
    stmt = select(Category).order_by(Category.sort_order, Category.id)
    if not include_inactive:
        stmt = stmt.where(Category.is_active.is_(True))
    return list(session.scalars(stmt))


def _may_edit(actor: Actor) -> bool:
    return actor.is_system or bool(actor.admin_subdistricts)


@write
def create_category(session: Session, *, actor: Actor, code: str, name_zh: str, name_en: str,
                    sort_order: int = 500) -> Category:
    """A new category (subdistrict admins)."""
    require(_may_edit(actor), "only a subdistrict admin")
    if session.scalar(select(Category.id).where(Category.code == code)) is not None:
        raise ConflictError(f"the category code '{code}' exists", field="code")
    category = Category(code=code, name_zh=name_zh, name_en=name_en, sort_order=sort_order,
                        is_active=True)
    session.add(category)
    session.flush()
    return category


@write
def update_category(session: Session, *, actor: Actor, category_id: int, changes: dict):
    """Rename, reorder or retire a category (subdistrict admins); it is never deleted."""
    require(_may_edit(actor), "only a subdistrict admin")
    category = get_or_404(session, Category, category_id)
    for key, value in changes.items():
        setattr(category, key, value)
    return category


def active_category(session: Session, category_id: int) -> Category:
    """An active category, or a 422 naming `category_id`."""
    category = session.get(Category, category_id)
    if category is None or not category.is_active:
        raise invalid("category_id", "no such active category")
    return category
