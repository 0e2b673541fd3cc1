"""reports: daily roll-ups (per grid and local day; days each volunteer served, per month) and the
triggers that record every change they must fold in

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 19:55:36.107493

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


# What each lower table's rows tell the roll-ups (``reports/rollups/models.py``, RollupChange):
# table -> (kind, ref_id, volunteer_id, grid_id, at, day) as expressions of the row ``{r}`` (OLD or
# NEW), and the columns whose update matters (None: no updates are followed).
_CHANGES = {
    "shifts": (("shift", "{r}.id", None, "{r}.grid_id", "{r}.starts_at", None),
               "grid_id, starts_at, status, max_headcount"),
    "shift_assignments": (("shift", "{r}.shift_id", None, None, None, None),
                          "shift_id, status, role, late_withdrawal"),
    "patrols": (("shift", "{r}.shift_id", "{r}.volunteer_id", None, None, None),
                "shift_id, volunteer_id, presence_status, served_minutes"),
    "patrol_reports": (("report", "{r}.id", None, "{r}.grid_id", "{r}.received_at", None),
                       "grid_id, received_at, level, resolved_at"),
    "patrol_report_events": (("report", "{r}.report_id", None, None, None, None), "report_id, action, created_at"),
    "ledger_entries": (("points", None, "{r}.volunteer_id", None, "{r}.created_at", None),
                       "volunteer_id, created_at, reason, amount"),
    "volunteer_badges": (("points", None, "{r}.volunteer_id", None, "{r}.earned_at", None),
                         "volunteer_id, earned_at, badge"),
    "service_records": (("manual", None, None, "{r}.grid_id", None, "{r}.served_on"),
                        "grid_id, served_on, minutes, voided_at, source_type"),
}
# Rows that matter only in some states: a patrol counts once its presence counts (verified or
# approved, with served minutes) or while it is in review; a plain check-in, the hot path, changes
# no figure and records nothing.
_ONLY_WHEN = {
    "patrols": "(({r}.presence_status IN ('verified', 'approved') AND {r}.served_minutes IS NOT NULL) "
               "OR {r}.presence_status = 'needs_review')",
}
# Updates only: a volunteer's home grid, a grid's time zone.
_MOVES = {
    "volunteers": ("home_grid_id", ("moved", None, "OLD.id", "OLD.home_grid_id", None, None)),
    "areas": ("timezone", ("zone", None, None, "NEW.id", None, None)),
}
_COLUMNS = "tx, kind, ref_id, volunteer_id, grid_id, at, day"


def _values(tx, change, row):
    kind, *refs = change
    exprs = ["NULL" if ref is None else ref.format(r=row) for ref in refs]
    return f"INSERT INTO report_rollup_changes ({_COLUMNS}) VALUES ({tx}, '{kind}', {', '.join(exprs)});"


def _guarded(table, row, statement):
    when = _ONLY_WHEN.get(table)
    return statement if when is None else f"IF {when.format(r=row)} THEN {statement} END IF;"


def _create_triggers():
    if op.get_bind().dialect.name == "postgresql":
        tx = "txid_current()"
        for table, (change, columns) in _CHANGES.items():
            old, new = (_guarded(table, row, _values(tx, change, row)) for row in ("OLD", "NEW"))
            op.execute(
                f"CREATE OR REPLACE FUNCTION report_rollup_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF TG_OP <> 'INSERT' THEN {old} END IF; "
                f"IF TG_OP <> 'DELETE' THEN {new} END IF; RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER report_rollup AFTER INSERT OR DELETE OR UPDATE OF {columns} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION report_rollup_{table}()"
            )
        for table, (column, change) in _MOVES.items():
            op.execute(
                f"CREATE OR REPLACE FUNCTION report_rollup_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"{_values(tx, change, '')} RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER report_rollup AFTER UPDATE OF {column} ON {table} FOR EACH ROW "
                f"WHEN (OLD.{column} IS DISTINCT FROM NEW.{column}) EXECUTE FUNCTION report_rollup_{table}()"
            )
        return
    for table, (change, columns) in _CHANGES.items():
        when = _ONLY_WHEN.get(table)
        on_new, on_old = ("" if when is None else f"WHEN {when.format(r=row)} " for row in ("NEW", "OLD"))
        on_either = "" if when is None else f"WHEN {when.format(r='OLD')} OR {when.format(r='NEW')} "
        op.execute(
            f"CREATE TRIGGER report_rollup_{table}_insert AFTER INSERT ON {table} {on_new}"
            f"BEGIN {_values(0, change, 'NEW')} END"
        )
        op.execute(
            f"CREATE TRIGGER report_rollup_{table}_delete AFTER DELETE ON {table} {on_old}"
            f"BEGIN {_values(0, change, 'OLD')} END"
        )
        op.execute(
            f"CREATE TRIGGER report_rollup_{table}_update AFTER UPDATE OF {columns} ON {table} {on_either}"
            f"BEGIN {_values(0, change, 'OLD')} {_values(0, change, 'NEW')} END"
        )
    for table, (column, change) in _MOVES.items():
        op.execute(
            f"CREATE TRIGGER report_rollup_{table}_update AFTER UPDATE OF {column} ON {table} "
            f"WHEN OLD.{column} IS NOT NEW.{column} BEGIN {_values(0, change, '')} END"
        )


def _drop_triggers():
    if op.get_bind().dialect.name == "postgresql":
        for table in (*_CHANGES, *_MOVES):
            op.execute(f"DROP TRIGGER IF EXISTS report_rollup ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS report_rollup_{table}()")
        return
    for table in _CHANGES:
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS report_rollup_{table}_{event}")
    for table in _MOVES:
        op.execute(f"DROP TRIGGER IF EXISTS report_rollup_{table}_update")


def upgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('report_rollup_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('tx', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('ref_id', sa.BigInteger(), nullable=True),
    sa.Column('volunteer_id', sa.BigInteger(), nullable=True),
    sa.Column('grid_id', sa.BigInteger(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('day', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_rollup_changes'))
    )
    with op.batch_alter_table('report_rollup_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_rollup_changes_tx'), ['tx'], unique=False)

    op.create_table('report_grid_day_badges',
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('badge', sa.String(length=32), nullable=False),
    sa.Column('earned', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grid_id'], ['areas.id'], name=op.f('fk_report_grid_day_badges_grid_id_areas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('grid_id', 'day', 'badge', name=op.f('pk_report_grid_day_badges'))
    )
    op.create_table('report_grid_days',
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('planned', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('cancelled', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('places_planned', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('places_filled', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('assignments', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('served', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('no_shows', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('late_withdrawals', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('in_review', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('served_minutes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('manual_minutes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('filed', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('red', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('orange', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('yellow', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('green', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('taken_up', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('resolved', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('awarded', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('reversed', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('redeemed', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('expired', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('adjusted', sa.BigInteger(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['grid_id'], ['areas.id'], name=op.f('fk_report_grid_days_grid_id_areas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('grid_id', 'day', name=op.f('pk_report_grid_days'))
    )
    with op.batch_alter_table('report_grid_days', schema=None) as batch_op:
        batch_op.create_index('ix_report_grid_days_day', ['day'], unique=False)

    op.create_table('report_volunteer_months',
    sa.Column('volunteer_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('served_days', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['volunteer_id'], ['volunteers.id'], name=op.f('fk_report_volunteer_months_volunteer_id_volunteers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('volunteer_id', 'month', name=op.f('pk_report_volunteer_months'))
    )
    with op.batch_alter_table('report_volunteer_months', schema=None) as batch_op:
        batch_op.create_index('ix_report_volunteer_months_month', ['month', 'volunteer_id'], unique=False)

    # ### end Alembic commands ###
    _create_triggers()


def downgrade():
    _drop_triggers()
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('report_volunteer_months', schema=None) as batch_op:
        batch_op.drop_index('ix_report_volunteer_months_month')

    op.drop_table('report_volunteer_months')
    with op.batch_alter_table('report_grid_days', schema=None) as batch_op:
        batch_op.drop_index('ix_report_grid_days_day')

    op.drop_table('report_grid_days')
    op.drop_table('report_grid_day_badges')
    with op.batch_alter_table('report_rollup_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_rollup_changes_tx'))

    op.drop_table('report_rollup_changes')
    # ### end Alembic commands ###
