"""patrols: the running state of a track's summary (incremental upload, issue 19)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

Existing patrols get NULL: their next upload recounts the stored points once and keeps the state
from then on.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.add_column(sa.Column('track_distance_sum_m', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('track_implausible_count', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('track_last_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('track_anchor_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('track_anchor_lat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('track_anchor_lon', sa.Float(), nullable=True))


def downgrade():
    with op.batch_alter_table('patrols', schema=None) as batch_op:
        batch_op.drop_column('track_anchor_lon')
        batch_op.drop_column('track_anchor_lat')
        batch_op.drop_column('track_anchor_at')
        batch_op.drop_column('track_last_at')
        batch_op.drop_column('track_implausible_count')
        batch_op.drop_column('track_distance_sum_m')
