"""rewards: point rules, ledger and balances, service records, badges, catalogue and redemptions, leaderboard preferences

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 06:36:36.184958

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('catalogue_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=2000), nullable=False),
    sa.Column('points_cost', sa.Integer(), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=False),
    sa.Column('per_volunteer_limit', sa.Integer(), nullable=True),
    sa.Column('valid_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('photo_key', sa.String(length=200), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('per_volunteer_limit IS NULL OR per_volunteer_limit > 0', name=op.f('ck_catalogue_items_limit_positive')),
    sa.CheckConstraint('points_cost > 0 AND points_cost <= 1000000', name=op.f('ck_catalogue_items_cost_sane')),
    sa.CheckConstraint('stock >= 0', name=op.f('ck_catalogue_items_stock_non_negative')),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_catalogue_items_area_id_areas'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_catalogue_items_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_items'))
    )
    with op.batch_alter_table('catalogue_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalogue_items_area_id'), ['area_id'], unique=False)

    op.create_table('point_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('city_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('points_per_hour', sa.Integer(), nullable=False),
    sa.Column('rounding_minutes', sa.Integer(), nullable=False),
    sa.Column('report_bonus', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('daily_cap', sa.Integer(), nullable=True),
    sa.Column('streak_days', sa.Integer(), nullable=True),
    sa.Column('streak_bonus', sa.Integer(), nullable=False),
    sa.Column('expiry_years', sa.Integer(), nullable=True),
    sa.Column('manual_hours_earn_points', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('daily_cap IS NULL OR daily_cap > 0', name=op.f('ck_point_rules_daily_cap_positive')),
    sa.CheckConstraint('points_per_hour >= 0 AND points_per_hour <= 1000', name=op.f('ck_point_rules_points_per_hour_sane')),
    sa.CheckConstraint('rounding_minutes BETWEEN 1 AND 240', name=op.f('ck_point_rules_rounding_sane')),
    sa.ForeignKeyConstraint(['city_id'], ['areas.id'], name=op.f('fk_point_rules_city_id_areas'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_point_rules_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_point_rules')),
    sa.UniqueConstraint('city_id', 'version', name='uq_point_rules_city_version')
    )
    with op.batch_alter_table('point_rules', schema=None) as batch_op:
        batch_op.create_index('ix_point_rules_city_effective', ['city_id', 'effective_from'], unique=False)

    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('source_type', sa.String(length=24), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('rule_version', sa.Integer(), nullable=True),
    sa.Column('reverses_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount <> 0', name=op.f('ck_ledger_entries_amount_non_zero')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_ledger_entries_actor_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_entries.id'], name=op.f('fk_ledger_entries_reverses_id_ledger_entries'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_ledger_entries_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('source_type', 'source_id', 'reason', name='uq_ledger_entries_source_reason')
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_ledger_entries_volunteer_id_id', ['volunteer_id', 'id'], unique=False)

    op.create_table('point_balances',
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('balance', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance >= 0', name=op.f('ck_point_balances_balance_non_negative')),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_point_balances_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('volunteer_id', name=op.f('pk_point_balances'))
    )
    op.create_table('redemptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pickup_code', sa.String(length=16), nullable=True),
    sa.Column('client_id', sa.String(length=36), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('fulfilled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('requested','approved','fulfilled','cancelled','rejected')", name=op.f('ck_redemptions_status_known')),
    sa.CheckConstraint('points > 0', name=op.f('ck_redemptions_points_positive')),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_redemptions_decided_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['item_id'], ['catalogue_items.id'], name=op.f('fk_redemptions_item_id_catalogue_items'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_redemptions_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_redemptions')),
    sa.UniqueConstraint('client_id', name=op.f('uq_redemptions_client_id')),
    sa.UniqueConstraint('pickup_code', name=op.f('uq_redemptions_pickup_code'))
    )
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_redemptions_item_id'), ['item_id'], unique=False)
        batch_op.create_index('ix_redemptions_volunteer_item', ['volunteer_id', 'item_id'], unique=False)

    op.create_table('reward_preferences',
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('leaderboard_opt_out', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_reward_preferences_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('volunteer_id', name=op.f('pk_reward_preferences'))
    )
    op.create_table('service_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('source_type', sa.String(length=24), nullable=False),
    sa.Column('source_id', sa.String(length=64), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('served_on', sa.Date(), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=True),
    sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('minutes > 0 AND minutes <= 1440', name=op.f('ck_service_records_minutes_sane')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_service_records_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['grid_id'], ['areas.id'], name=op.f('fk_service_records_grid_id_areas'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_service_records_volunteer_id_volunteers'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_records')),
    sa.UniqueConstraint('source_type', 'source_id', name='uq_service_records_source')
    )
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.create_index('ix_service_records_served_on', ['served_on'], unique=False)
        batch_op.create_index('ix_service_records_volunteer_served_on', ['volunteer_id', 'served_on'], unique=False)

    op.create_table('volunteer_badges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('badge', sa.String(length=40), nullable=False),
    sa.Column('earned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_volunteer_badges_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_volunteer_badges')),
    sa.UniqueConstraint('volunteer_id', 'badge', name='uq_volunteer_badges_volunteer_badge')
    )


def downgrade():
    op.drop_table('volunteer_badges')
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.drop_index('ix_service_records_volunteer_served_on')
        batch_op.drop_index('ix_service_records_served_on')

    op.drop_table('service_records')
    op.drop_table('reward_preferences')
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_index('ix_redemptions_volunteer_item')
        batch_op.drop_index(batch_op.f('ix_redemptions_item_id'))

    op.drop_table('redemptions')
    op.drop_table('point_balances')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_volunteer_id_id')
        batch_op.drop_index('ix_ledger_entries_created_at')

    op.drop_table('ledger_entries')
    with op.batch_alter_table('point_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_point_rules_city_effective')

    op.drop_table('point_rules')
    with op.batch_alter_table('catalogue_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalogue_items_area_id'))

    op.drop_table('catalogue_items')
