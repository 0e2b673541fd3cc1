"""records: star levels with publicity (公示) and the objections lodged against them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('star_levels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.SmallInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('minutes_at_proposal', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('area_path', sa.String(length=255), nullable=False),
    sa.Column('proposed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('publicity_ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('open_objections', sa.Integer(), nullable=False),
    sa.Column('certified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rejected_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending','certified','rejected')", name=op.f('ck_star_levels_status_known')),
    sa.CheckConstraint('level BETWEEN 1 AND 5', name=op.f('ck_star_levels_level_known')),
    sa.CheckConstraint('open_objections >= 0', name=op.f('ck_star_levels_open_objections_not_negative')),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_star_levels_area_id_areas'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_star_levels_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_star_levels')),
    sa.UniqueConstraint('volunteer_id', 'level', name='uq_star_levels_volunteer_level')
    )
    with op.batch_alter_table('star_levels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_star_levels_area_id'), ['area_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_star_levels_area_path'), ['area_path'], unique=False)
        batch_op.create_index('ix_star_levels_due', ['status', 'publicity_ends_at'], unique=False)

    op.create_table('star_objections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('star_level_id', sa.Integer(), nullable=False),
    sa.Column('lodged_by', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('lodged_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=True),
    sa.CheckConstraint("status IN ('open','upheld','dismissed')", name=op.f('ck_star_objections_status_known')),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_star_objections_decided_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['lodged_by'], ['users.id'], name=op.f('fk_star_objections_lodged_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['star_level_id'], ['star_levels.id'], name=op.f('fk_star_objections_star_level_id_star_levels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_star_objections')),
    sa.UniqueConstraint('star_level_id', 'lodged_by', name='uq_star_objections_level_lodger')
    )
    with op.batch_alter_table('star_objections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_star_objections_star_level_id'), ['star_level_id'], unique=False)



def downgrade():
    with op.batch_alter_table('star_objections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_star_objections_star_level_id'))

    op.drop_table('star_objections')
    with op.batch_alter_table('star_levels', schema=None) as batch_op:
        batch_op.drop_index('ix_star_levels_due')
        batch_op.drop_index(batch_op.f('ix_star_levels_area_path'))
        batch_op.drop_index(batch_op.f('ix_star_levels_area_id'))

    op.drop_table('star_levels')
