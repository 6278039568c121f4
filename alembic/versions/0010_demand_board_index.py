"""a partial index for the demand board (items still open for claims, most urgent first, then
oldest), so a board page reads 20 rows from the index instead of sorting every open item

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANK = ("CASE WHEN (urgency = 'normal') THEN 0 WHEN (urgency = 'urgent') THEN 1 "
        "WHEN (urgency = 'critical') THEN 2 ELSE 0 END")
CLAIMABLE = "status IN ('open', 'partly_covered', 'covered') AND quantity_open > 0"


def upgrade() -> None:
    op.create_index('ix_demand_items_board', 'demand_items', [sa.text(f"({RANK}) DESC"), 'id'],
                    unique=False, postgresql_where=sa.text(CLAIMABLE),
                    sqlite_where=sa.text(CLAIMABLE))


def downgrade() -> None:
    op.drop_index('ix_demand_items_board', table_name='demand_items')
