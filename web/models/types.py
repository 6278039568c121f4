"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class TagList(TypeDecorator):
    """A list of short tags stored as ',a,b,' so `LIKE '%,a,%'` filters on every database."""

    impl = String(1000)
    cache_ok = True

    def coerce_compared_value(self, op, value):
        """A LIKE pattern compared with the column is a plain string, not a tag list."""
        return String()

    def process_bind_param(self, value, dialect):
        if value is None:
            return ","
        tags = sorted({str(t).strip() for t in value if str(t).strip()})
        return "," + ",".join(tags) + ("," if tags else "")

    def process_result_value(self, value, dialect):
        if not value:
            return []
        return [t for t in value.split(",") if t]


def tag_pattern(tag: str) -> str:
    """The LIKE pattern that finds `tag` in a TagList column."""
    escaped = tag.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%,{escaped},%"
