"""Match runs and the proposals they make (the optimiser's output that secretaries decide on).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 21:48:43.075199
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('match_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=True),
    sa.Column('subdistrict_id', sa.Integer(), nullable=True),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('(community_id IS NULL) <> (subdistrict_id IS NULL)', name=op.f('ck_match_runs_one_scope')),
    sa.CheckConstraint('progress BETWEEN 0 AND 100', name=op.f('ck_match_runs_progress_range')),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_match_runs_community_id_communities')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_match_runs_created_by_users')),
    sa.ForeignKeyConstraint(['subdistrict_id'], ['subdistricts.id'], name=op.f('fk_match_runs_subdistrict_id_subdistricts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_match_runs'))
    )
    with op.batch_alter_table('match_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_match_runs_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_match_runs_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_match_runs_subdistrict_id'), ['subdistrict_id'], unique=False)

    op.create_table('match_proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('demand_id', sa.Integer(), nullable=False),
    sa.Column('resource_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('demand_updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resource_updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_match_proposals_quantity_positive')),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], name=op.f('fk_match_proposals_assignment_id_assignments')),
    sa.ForeignKeyConstraint(['community_id'], ['communities.id'], name=op.f('fk_match_proposals_community_id_communities')),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_match_proposals_decided_by_users')),
    sa.ForeignKeyConstraint(['demand_id'], ['demand_items.id'], name=op.f('fk_match_proposals_demand_id_demand_items')),
    sa.ForeignKeyConstraint(['resource_id'], ['resource_items.id'], name=op.f('fk_match_proposals_resource_id_resource_items')),
    sa.ForeignKeyConstraint(['run_id'], ['match_runs.id'], name=op.f('fk_match_proposals_run_id_match_runs')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_match_proposals_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_match_proposals'))
    )
    with op.batch_alter_table('match_proposals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_match_proposals_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_match_proposals_demand_id'), ['demand_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_match_proposals_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_match_proposals_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_match_proposals_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_match_proposals_unit_id'), ['unit_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('match_proposals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_match_proposals_unit_id'))
        batch_op.drop_index(batch_op.f('ix_match_proposals_status'))
        batch_op.drop_index(batch_op.f('ix_match_proposals_run_id'))
        batch_op.drop_index(batch_op.f('ix_match_proposals_resource_id'))
        batch_op.drop_index(batch_op.f('ix_match_proposals_demand_id'))
        batch_op.drop_index(batch_op.f('ix_match_proposals_community_id'))

    op.drop_table('match_proposals')
    with op.batch_alter_table('match_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_match_runs_subdistrict_id'))
        batch_op.drop_index(batch_op.f('ix_match_runs_status'))
        batch_op.drop_index(batch_op.f('ix_match_runs_community_id'))

    op.drop_table('match_runs')
