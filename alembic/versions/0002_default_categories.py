"""default categories, in zh-CN and English

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = [
    ("elderly_care", "养老助老", "Elderly care"),
    ("children_youth", "儿童青少年", "Children and youth"),
    ("repairs", "维修维护", "Repairs and maintenance"),
    ("environment", "环境卫生", "Environment and sanitation"),
    ("legal", "法律咨询", "Legal advice"),
    ("health", "医疗健康", "Health"),
    ("education", "教育讲座", "Education and lectures"),
    ("culture_sports", "文化体育", "Culture and sports"),
    ("safety", "平安建设", "Safety"),
    ("employment", "就业创业", "Employment"),
    ("disability", "助残服务", "Disability support"),
    ("other", "其他", "Other"),
]

categories = sa.table(
    "categories",
    sa.column("code", sa.String),
    sa.column("name_zh", sa.String),
    sa.column("name_en", sa.String),
    sa.column("sort_order", sa.Integer),
    sa.column("is_active", sa.Boolean),
)


def upgrade() -> None:
    op.bulk_insert(
        categories,
        [
            {"code": c, "name_zh": zh, "name_en": en, "sort_order": (i + 1) * 10, "is_active": True}
            for i, (c, zh, en) in enumerate(CATEGORIES)
        ],
    )


def downgrade() -> None:
    codes = [c for c, _, _ in CATEGORIES]
    op.execute(categories.delete().where(categories.c.code.in_(codes)))
