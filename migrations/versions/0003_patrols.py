"""patrols: check-in and check-out, track points, checkpoints and scans, reports with photos and history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 04:21:20.045556

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('qr_version', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('qr_version >= 1', name=op.f('ck_checkpoints_qr_version_positive')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_checkpoints_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['grid_id'], ['areas.id'], name=op.f('fk_checkpoints_grid_id_areas'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints'))
    )
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkpoints_grid_id'), ['grid_id'], unique=False)

    op.create_table('patrol_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('device_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('flags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('photo_count', sa.SmallInteger(), nullable=False),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('escalated_to_id', sa.Integer(), nullable=True),
    sa.Column('resolution_note', sa.String(length=2000), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("category IN ('dispute','safety_hazard','suspicious_activity','help_needed','other')", name=op.f('ck_patrol_reports_category_known')),
    sa.CheckConstraint("level IN ('red','orange','yellow','green')", name=op.f('ck_patrol_reports_level_known')),
    sa.CheckConstraint("status IN ('open','acknowledged','assigned','escalated','resolved')", name=op.f('ck_patrol_reports_status_known')),
    sa.CheckConstraint('photo_count BETWEEN 0 AND 6', name=op.f('ck_patrol_reports_photo_count_bounded')),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_patrol_reports_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assignment_id'], ['shift_assignments.id'], name=op.f('fk_patrol_reports_assignment_id_shift_assignments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['escalated_to_id'], ['areas.id'], name=op.f('fk_patrol_reports_escalated_to_id_areas'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['grid_id'], ['areas.id'], name=op.f('fk_patrol_reports_grid_id_areas'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_patrol_reports_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrol_reports')),
    sa.UniqueConstraint('client_id', name=op.f('uq_patrol_reports_client_id'))
    )
    with op.batch_alter_table('patrol_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_reports_assignment_id'), ['assignment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrol_reports_grid_id'), ['grid_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrol_reports_level'), ['level'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrol_reports_received_at'), ['received_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrol_reports_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrol_reports_volunteer_id'), ['volunteer_id'], unique=False)
        batch_op.create_index('ix_patrol_reports_volunteer_id_id', ['volunteer_id', 'id'], unique=False)

    op.create_table('patrols',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=False),
    sa.Column('check_in_client_id', sa.String(length=36), nullable=True),
    sa.Column('check_in_device_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('check_in_received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('check_in_lat', sa.Float(), nullable=True),
    sa.Column('check_in_lon', sa.Float(), nullable=True),
    sa.Column('check_in_accuracy_m', sa.Float(), nullable=True),
    sa.Column('check_in_flags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('presence_status', sa.String(length=16), nullable=True),
    sa.Column('late_minutes', sa.Integer(), nullable=True),
    sa.Column('check_out_client_id', sa.String(length=36), nullable=True),
    sa.Column('check_out_device_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('check_out_received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('check_out_lat', sa.Float(), nullable=True),
    sa.Column('check_out_lon', sa.Float(), nullable=True),
    sa.Column('check_out_accuracy_m', sa.Float(), nullable=True),
    sa.Column('check_out_flags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('auto_closed', sa.Boolean(), nullable=False),
    sa.Column('served_minutes', sa.Integer(), nullable=True),
    sa.Column('reviewed_by', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_reason', sa.String(length=500), nullable=True),
    sa.Column('distance_m', sa.Float(), nullable=False),
    sa.Column('track_point_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("presence_status IS NULL OR presence_status IN ('verified','needs_review','approved','rejected')", name=op.f('ck_patrols_presence_status_known')),
    sa.CheckConstraint('served_minutes IS NULL OR served_minutes >= 0', name=op.f('ck_patrols_served_non_negative')),
    sa.ForeignKeyConstraint(['assignment_id'], ['shift_assignments.id'], name=op.f('fk_patrols_assignment_id_shift_assignments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewed_by'], ['users.id'], name=op.f('fk_patrols_reviewed_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['shift_id'], ['shifts.id'], name=op.f('fk_patrols_shift_id_shifts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_patrols_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrols')),
    sa.UniqueConstraint('assignment_id', name=op.f('uq_patrols_assignment_id')),
    sa.UniqueConstraint('check_in_client_id', name=op.f('uq_patrols_check_in_client_id')),
    sa.UniqueConstraint('check_out_client_id', name=op.f('uq_patrols_check_out_client_id'))
    )
    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrols_presence_status'), ['presence_status'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrols_shift_id'), ['shift_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_patrols_volunteer_id'), ['volunteer_id'], unique=False)

    op.create_table('checkpoint_scans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patrol_id', sa.Integer(), nullable=False),
    sa.Column('checkpoint_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('device_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.Column('distance_m', sa.Float(), nullable=False),
    sa.Column('flags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoints.id'], name=op.f('fk_checkpoint_scans_checkpoint_id_checkpoints'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['patrol_id'], ['patrols.id'], name=op.f('fk_checkpoint_scans_patrol_id_patrols'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoint_scans')),
    sa.UniqueConstraint('client_id', name=op.f('uq_checkpoint_scans_client_id'))
    )
    with op.batch_alter_table('checkpoint_scans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkpoint_scans_checkpoint_id'), ['checkpoint_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkpoint_scans_patrol_id'), ['patrol_id'], unique=False)

    op.create_table('patrol_report_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('assignee_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('filed','acknowledged','assigned','escalated','resolved')", name=op.f('ck_patrol_report_events_action_known')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_patrol_report_events_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_patrol_report_events_assignee_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['report_id'], ['patrol_reports.id'], name=op.f('fk_patrol_report_events_report_id_patrol_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrol_report_events'))
    )
    with op.batch_alter_table('patrol_report_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_report_events_report_id'), ['report_id'], unique=False)

    op.create_table('patrol_report_photos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('report_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=36), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('storage_key', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=32), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("content_type IN ('image/jpeg','image/png')", name=op.f('ck_patrol_report_photos_content_type_known')),
    sa.ForeignKeyConstraint(['report_id'], ['patrol_reports.id'], name=op.f('fk_patrol_report_photos_report_id_patrol_reports'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrol_report_photos')),
    sa.UniqueConstraint('client_id', name=op.f('uq_patrol_report_photos_client_id')),
    sa.UniqueConstraint('report_id', 'position', name='uq_patrol_report_photos_report_position'),
    sa.UniqueConstraint('storage_key', name=op.f('uq_patrol_report_photos_storage_key'))
    )
    with op.batch_alter_table('patrol_report_photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_report_photos_report_id'), ['report_id'], unique=False)

    op.create_table('track_points',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('patrol_id', sa.Integer(), nullable=False),
    sa.Column('device_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('accuracy_m', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['patrol_id'], ['patrols.id'], name=op.f('fk_track_points_patrol_id_patrols'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_track_points')),
    sa.UniqueConstraint('patrol_id', 'device_at', name='uq_track_points_patrol_id_device_at')
    )


def downgrade():
    op.drop_table('track_points')
    with op.batch_alter_table('patrol_report_photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrol_report_photos_report_id'))

    op.drop_table('patrol_report_photos')
    with op.batch_alter_table('patrol_report_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrol_report_events_report_id'))

    op.drop_table('patrol_report_events')
    with op.batch_alter_table('checkpoint_scans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkpoint_scans_patrol_id'))
        batch_op.drop_index(batch_op.f('ix_checkpoint_scans_checkpoint_id'))

    op.drop_table('checkpoint_scans')
    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrols_volunteer_id'))
        batch_op.drop_index(batch_op.f('ix_patrols_shift_id'))
        batch_op.drop_index(batch_op.f('ix_patrols_presence_status'))

    op.drop_table('patrols')
    with op.batch_alter_table('patrol_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_patrol_reports_volunteer_id_id')
        batch_op.drop_index(batch_op.f('ix_patrol_reports_volunteer_id'))
        batch_op.drop_index(batch_op.f('ix_patrol_reports_status'))
        batch_op.drop_index(batch_op.f('ix_patrol_reports_received_at'))
        batch_op.drop_index(batch_op.f('ix_patrol_reports_level'))
        batch_op.drop_index(batch_op.f('ix_patrol_reports_grid_id'))
        batch_op.drop_index(batch_op.f('ix_patrol_reports_assignment_id'))

    op.drop_table('patrol_reports')
    with op.batch_alter_table('checkpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkpoints_grid_id'))

    op.drop_table('checkpoints')
