"""records: the service record's trainings, evaluations and corrections of service hours (issue 16)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('record_evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.SmallInteger(), nullable=False),
    sa.Column('rating', sa.String(length=16), nullable=False),
    sa.Column('comment', sa.String(length=500), nullable=True),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.Column('correction_reason', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("rating IN ('excellent','good','pass','fail')", name=op.f('ck_record_evaluations_rating_known')),
    sa.CheckConstraint('(corrects_id IS NULL) = (correction_reason IS NULL)', name=op.f('ck_record_evaluations_correction_has_reason')),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_record_evaluations_area_id_areas'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['corrects_id'], ['record_evaluations.id'], name=op.f('fk_record_evaluations_corrects_id_record_evaluations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_record_evaluations_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_record_evaluations_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_evaluations')),
    sa.UniqueConstraint('corrects_id', name=op.f('uq_record_evaluations_corrects_id'))
    )
    with op.batch_alter_table('record_evaluations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_evaluations_volunteer_id'), ['volunteer_id'], unique=False)
        batch_op.create_index('uq_record_evaluations_original', ['volunteer_id', 'year', 'area_id'], unique=True, postgresql_where=sa.text('corrects_id IS NULL'), sqlite_where=sa.text('corrects_id IS NULL'))

    op.create_table('record_trainings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('held_on', sa.Date(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('corrects_id', sa.Integer(), nullable=True),
    sa.Column('correction_reason', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(corrects_id IS NULL) = (correction_reason IS NULL)', name=op.f('ck_record_trainings_correction_has_reason')),
    sa.CheckConstraint('minutes >= 0 AND minutes <= 1440', name=op.f('ck_record_trainings_minutes_sane')),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_record_trainings_area_id_areas'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['corrects_id'], ['record_trainings.id'], name=op.f('fk_record_trainings_corrects_id_record_trainings'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_record_trainings_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_record_trainings_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_trainings')),
    sa.UniqueConstraint('corrects_id', name=op.f('uq_record_trainings_corrects_id'))
    )
    with op.batch_alter_table('record_trainings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_trainings_volunteer_id'), ['volunteer_id'], unique=False)

    op.create_table('record_service_corrections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('original_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('replacement_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('minutes_before', sa.Integer(), nullable=False),
    sa.Column('minutes_after', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('points_unrecovered', sa.Integer(), nullable=False),
    sa.Column('corrected_by', sa.Integer(), nullable=True),
    sa.Column('corrected_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('minutes_after >= 0 AND minutes_after <= 1440', name=op.f('ck_record_service_corrections_minutes_after_sane')),
    sa.ForeignKeyConstraint(['corrected_by'], ['users.id'], name=op.f('fk_record_service_corrections_corrected_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['original_id'], ['service_records.id'], name=op.f('fk_record_service_corrections_original_id_service_records'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['replacement_id'], ['service_records.id'], name=op.f('fk_record_service_corrections_replacement_id_service_records'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_record_service_corrections_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_service_corrections')),
    sa.UniqueConstraint('original_id', name=op.f('uq_record_service_corrections_original_id')),
    sa.UniqueConstraint('replacement_id', name=op.f('uq_record_service_corrections_replacement_id'))
    )
    with op.batch_alter_table('record_service_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_service_corrections_volunteer_id'), ['volunteer_id'], unique=False)


def downgrade():
    with op.batch_alter_table('record_service_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_service_corrections_volunteer_id'))

    op.drop_table('record_service_corrections')
    with op.batch_alter_table('record_trainings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_trainings_volunteer_id'))

    op.drop_table('record_trainings')
    with op.batch_alter_table('record_evaluations', schema=None) as batch_op:
        batch_op.drop_index('uq_record_evaluations_original', postgresql_where=sa.text('corrects_id IS NULL'), sqlite_where=sa.text('corrects_id IS NULL'))
        batch_op.drop_index(batch_op.f('ix_record_evaluations_volunteer_id'))

    op.drop_table('record_evaluations')
