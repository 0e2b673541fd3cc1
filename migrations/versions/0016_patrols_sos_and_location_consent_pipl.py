"""patrols: SOS and location consent (PIPL)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('location_consents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_location_consents_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_location_consents'))
    )
    with op.batch_alter_table('location_consents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_location_consents_volunteer_id'), ['volunteer_id'], unique=False)
        batch_op.create_index('uq_location_consents_one_live', ['volunteer_id'], unique=True, postgresql_where=sa.text('withdrawn_at IS NULL'), sqlite_where=sa.text('withdrawn_at IS NULL'))

    op.create_table('sos_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('device_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('area_path', sa.String(length=255), nullable=False),
    sa.Column('located_by', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('escalate_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.Integer(), nullable=True),
    sa.Column('end_note', sa.String(length=500), nullable=True),
    sa.Column('positions_purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("level IN ('community','district','city')", name=op.f('ck_sos_alerts_level_known')),
    sa.CheckConstraint("located_by IN ('shift','position','home_grid')", name=op.f('ck_sos_alerts_located_by_known')),
    sa.CheckConstraint("status IN ('open','acknowledged','cancelled','closed')", name=op.f('ck_sos_alerts_status_known')),
    sa.ForeignKeyConstraint(['assignment_id'], ['shift_assignments.id'], name=op.f('fk_sos_alerts_assignment_id_shift_assignments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['ended_by'], ['users.id'], name=op.f('fk_sos_alerts_ended_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['grid_id'], ['areas.id'], name=op.f('fk_sos_alerts_grid_id_areas'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_sos_alerts_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sos_alerts')),
    sa.UniqueConstraint('client_id', name=op.f('uq_sos_alerts_client_id'))
    )
    with op.batch_alter_table('sos_alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sos_alerts_area_path'), ['area_path'], unique=False)
        batch_op.create_index(batch_op.f('ix_sos_alerts_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index('ix_sos_alerts_escalate_at', ['escalate_at'], unique=False, postgresql_where=sa.text('escalate_at IS NOT NULL'), sqlite_where=sa.text('escalate_at IS NOT NULL'))
        batch_op.create_index(batch_op.f('ix_sos_alerts_grid_id'), ['grid_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sos_alerts_volunteer_id'), ['volunteer_id'], unique=False)
        batch_op.create_index('uq_sos_alerts_one_live', ['volunteer_id'], unique=True, postgresql_where=sa.text("status IN ('open','acknowledged')"), sqlite_where=sa.text("status IN ('open','acknowledged')"))

    op.create_table('sos_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sos_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=True),
    sa.Column('response', sa.String(length=16), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.CheckConstraint("kind IN ('raised','alerted','acknowledged','escalated','cancelled','closed')", name=op.f('ck_sos_events_kind_known')),
    sa.CheckConstraint("response IS NULL OR response IN ('going','handled')", name=op.f('ck_sos_events_response_known')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_sos_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sos_id'], ['sos_alerts.id'], name=op.f('fk_sos_events_sos_id_sos_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sos_events'))
    )
    with op.batch_alter_table('sos_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sos_events_sos_id'), ['sos_id'], unique=False)

    op.create_table('sos_positions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sos_id', sa.Integer(), nullable=False),
    sa.Column('device_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['sos_id'], ['sos_alerts.id'], name=op.f('fk_sos_positions_sos_id_sos_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sos_positions')),
    sa.UniqueConstraint('sos_id', 'device_at', name='uq_sos_positions_sos_id_device_at')
    )
    op.create_table('sos_recipients',
    sa.Column('sos_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('alerted_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("reason IN ('organiser','nearby','staff')", name=op.f('ck_sos_recipients_reason_known')),
    sa.ForeignKeyConstraint(['sos_id'], ['sos_alerts.id'], name=op.f('fk_sos_recipients_sos_id_sos_alerts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sos_recipients_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sos_id', 'user_id', name=op.f('pk_sos_recipients'))
    )
    with op.batch_alter_table('sos_recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sos_recipients_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('checkpoint_scans', schema=None) as batch_op:
        batch_op.alter_column('lat',
               existing_type=sa.FLOAT(),
               nullable=True)
        batch_op.alter_column('lon',
               existing_type=sa.FLOAT(),
               nullable=True)

    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.add_column(sa.Column('positions_purged_at', sa.DateTime(timezone=True), nullable=True))



def downgrade():
    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.drop_column('positions_purged_at')

    with op.batch_alter_table('checkpoint_scans', schema=None) as batch_op:
        batch_op.alter_column('lon',
               existing_type=sa.FLOAT(),
               nullable=False)
        batch_op.alter_column('lat',
               existing_type=sa.FLOAT(),
               nullable=False)

    with op.batch_alter_table('sos_recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sos_recipients_user_id'))

    op.drop_table('sos_recipients')
    op.drop_table('sos_positions')
    with op.batch_alter_table('sos_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sos_events_sos_id'))

    op.drop_table('sos_events')
    with op.batch_alter_table('sos_alerts', schema=None) as batch_op:
        batch_op.drop_index('uq_sos_alerts_one_live', postgresql_where=sa.text("status IN ('open','acknowledged')"), sqlite_where=sa.text("status IN ('open','acknowledged')"))
        batch_op.drop_index(batch_op.f('ix_sos_alerts_volunteer_id'))
        batch_op.drop_index(batch_op.f('ix_sos_alerts_grid_id'))
        batch_op.drop_index('ix_sos_alerts_escalate_at', postgresql_where=sa.text('escalate_at IS NOT NULL'), sqlite_where=sa.text('escalate_at IS NOT NULL'))
        batch_op.drop_index(batch_op.f('ix_sos_alerts_assignment_id'))
        batch_op.drop_index(batch_op.f('ix_sos_alerts_area_path'))

    op.drop_table('sos_alerts')
    with op.batch_alter_table('location_consents', schema=None) as batch_op:
        batch_op.drop_index('uq_location_consents_one_live', postgresql_where=sa.text('withdrawn_at IS NULL'), sqlite_where=sa.text('withdrawn_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_location_consents_volunteer_id'))

    op.drop_table('location_consents')
