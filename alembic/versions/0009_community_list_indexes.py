"""indexes for a community's demand list, newest first (with or without a status filter), so a
page is read from the index at 10^5 items instead of walking every community's items by date

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 05:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('demand_items', schema=None) as batch_op:
        batch_op.create_index('ix_demand_items_community_id_status_created_at',
                              ['community_id', 'status', 'created_at'], unique=False)
        batch_op.create_index('ix_demand_items_community_id_created_at',
                              ['community_id', 'created_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('demand_items', schema=None) as batch_op:
        batch_op.drop_index('ix_demand_items_community_id_created_at')
        batch_op.drop_index('ix_demand_items_community_id_status_created_at')
