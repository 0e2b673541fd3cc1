"""records: certificates of service, their gap-free counters per issuer and year, and area seals

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('certificate_counters',
    sa.Column('issuer_area_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.SmallInteger(), nullable=False),
    sa.Column('last_sequence', sa.Integer(), nullable=False),
    sa.CheckConstraint('last_sequence >= 1', name=op.f('ck_certificate_counters_last_sequence_positive')),
    sa.ForeignKeyConstraint(['issuer_area_id'], ['areas.id'], name=op.f('fk_certificate_counters_issuer_area_id_areas'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('issuer_area_id', 'year', name=op.f('pk_certificate_counters'))
    )
    op.create_table('area_seals',
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('photo_key', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('uploaded_by', sa.Integer(), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_area_seals_area_id_areas'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['uploaded_by'], ['users.id'], name=op.f('fk_area_seals_uploaded_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('area_id', name=op.f('pk_area_seals'))
    )
    op.create_table('certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('issuer_area_id', sa.Integer(), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=True),
    sa.Column('year', sa.SmallInteger(), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('issued_by', sa.Integer(), nullable=True),
    sa.Column('minutes', sa.Integer(), nullable=True),
    sa.Column('content', sa.String(length=1000), nullable=True),
    sa.Column('places', sa.String(length=1000), nullable=True),
    sa.Column('volunteer_name', sa.String(length=50), nullable=True),
    sa.Column('volunteer_number', sa.String(length=64), nullable=True),
    sa.Column('id_number_encrypted', sa.Text(), nullable=True),
    sa.Column('full_id_number', sa.Boolean(), nullable=False),
    sa.Column('issuer_name', sa.String(length=100), nullable=True),
    sa.Column('seal_key', sa.String(length=200), nullable=True),
    sa.Column('star_level', sa.SmallInteger(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.Integer(), nullable=True),
    sa.Column('revoke_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint("status = 'requested' OR (number IS NOT NULL AND minutes IS NOT NULL AND issued_at IS NOT NULL)", name=op.f('ck_certificates_issued_complete')),
    sa.CheckConstraint("status IN ('requested','issued','revoked')", name=op.f('ck_certificates_status_known')),
    sa.CheckConstraint('last_day >= first_day', name=op.f('ck_certificates_period_ordered')),
    sa.ForeignKeyConstraint(['issued_by'], ['users.id'], name=op.f('fk_certificates_issued_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['issuer_area_id'], ['areas.id'], name=op.f('fk_certificates_issuer_area_id_areas'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['revoked_by'], ['users.id'], name=op.f('fk_certificates_revoked_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_certificates_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificates')),
    sa.UniqueConstraint('issuer_area_id', 'year', 'sequence', name='uq_certificates_issuer_year_sequence'),
    sa.UniqueConstraint('number', name=op.f('uq_certificates_number'))
    )
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificates_issuer_area_id'), ['issuer_area_id'], unique=False)
        batch_op.create_index('ix_certificates_status_id', ['status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificates_volunteer_id'), ['volunteer_id'], unique=False)
        batch_op.create_index('uq_certificates_live_period', ['volunteer_id', 'issuer_area_id', 'first_day', 'last_day'], unique=True, postgresql_where=sa.text("status <> 'revoked'"), sqlite_where=sa.text("status <> 'revoked'"))



def downgrade():
    with op.batch_alter_table('certificates', schema=None) as batch_op:
        batch_op.drop_index('uq_certificates_live_period', postgresql_where=sa.text("status <> 'revoked'"), sqlite_where=sa.text("status <> 'revoked'"))
        batch_op.drop_index(batch_op.f('ix_certificates_volunteer_id'))
        batch_op.drop_index('ix_certificates_status_id')
        batch_op.drop_index(batch_op.f('ix_certificates_issuer_area_id'))

    op.drop_table('certificates')
    op.drop_table('area_seals')
    op.drop_table('certificate_counters')
