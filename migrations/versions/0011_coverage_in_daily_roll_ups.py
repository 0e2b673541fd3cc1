"""reports: the coverage report's figures in the daily roll-ups, and the shift columns that move
them in the shifts trigger

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 00:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_COVERAGE = ("coverage_shifts", "coverage_planned_minutes", "coverage_staffed_minutes", "coverage_served_minutes")

# The shifts trigger of 0010 followed the columns participation reads. Coverage also reads a
# shift's length (``ends_at``: an edit may move the end alone) and its staffed places
# (``primary_count``: changed with the assignments, which are followed too, but also reset to 0
# by a cancellation and set by autofill's bulk UPDATE; following it directly needs no such
# reasoning). Patrols (presence_status, served_minutes, shift_id) and assignments are followed
# already, with a guard that covers every counted presence.
_OLD_COLUMNS = "grid_id, starts_at, status, max_headcount"
_NEW_COLUMNS = "grid_id, starts_at, ends_at, status, max_headcount, primary_count"
_SHIFT_VALUES = ("report_rollup_changes (tx, kind, ref_id, volunteer_id, grid_id, at, day) "
                 "VALUES (0, 'shift', {r}.id, NULL, {r}.grid_id, {r}.starts_at, NULL);")


def _shift_trigger(columns):
    if op.get_bind().dialect.name == "postgresql":
        # The function (0010's report_rollup_shifts) stays; only the columns that fire it change.
        op.execute("DROP TRIGGER IF EXISTS report_rollup ON shifts")
        op.execute(
            f"CREATE TRIGGER report_rollup AFTER INSERT OR DELETE OR UPDATE OF {columns} ON shifts "
            f"FOR EACH ROW EXECUTE FUNCTION report_rollup_shifts()"
        )
        return
    op.execute("DROP TRIGGER IF EXISTS report_rollup_shifts_update")
    old, new = (f"INSERT INTO {_SHIFT_VALUES.format(r=row)}" for row in ("OLD", "NEW"))
    op.execute(f"CREATE TRIGGER report_rollup_shifts_update AFTER UPDATE OF {columns} ON shifts BEGIN {old} {new} END")


def upgrade():
    with op.batch_alter_table('report_grid_days', schema=None) as batch_op:
        for name in _COVERAGE:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), server_default='0', nullable=False))
    _shift_trigger(_NEW_COLUMNS)
    # The new columns start at 0: fill them with `flask reports rollups rebuild` (the check lists
    # every day with coverage until then).


def downgrade():
    _shift_trigger(_OLD_COLUMNS)
    with op.batch_alter_table('report_grid_days', schema=None) as batch_op:
        for name in reversed(_COVERAGE):
            batch_op.drop_column(name)
