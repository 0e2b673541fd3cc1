"""shift_assignments: the shift's times on each place (shift_starts_at, shift_ends_at), kept by triggers,
and two indexes that read a volunteer's places in time order (the schedule read, issue 19)

- ``shift_starts_at`` and ``shift_ends_at``, filled from each place's shift (every row, in one
  UPDATE, before the triggers exist);
- ``ix_shift_assignments_volunteer_shift_ends_at (volunteer_id, shift_ends_at)``: the places not
  ended yet, however long the history; ``ix_shift_assignments_volunteer_shift_starts_at
  (volunteer_id, shift_starts_at, id)``: the schedule's keyset order, for the past read backwards;
- the triggers that keep the copies, the only writers of them (``shifts/models.py``, Assignment).
  PostgreSQL: BEFORE INSERT OR UPDATE OF shift_id or of the copies on ``shift_assignments`` reads
  the shift's times FOR KEY SHARE (the lock the foreign key's check takes a moment later anyway:
  no new conflict); BEFORE UPDATE OF starts_at, ends_at on ``shifts`` takes the shift's row FOR
  UPDATE (a no-op for the app, whose moves hold it already: ``shifts.planning.editing``), which
  KEY SHARE waits for, so an insert racing a move reads the moved times, even against a bare
  UPDATE (a non-key update alone does not hold KEY SHARE back); and AFTER it, the new times are
  written to the shift's places (an insert that came first has committed by then: the row lock
  waited for it).
  SQLite (one writer at a time, no race): AFTER INSERT and AFTER UPDATE triggers do the same
  (SQLite's BEFORE triggers cannot set NEW). A later migration that rebuilds ``shift_assignments``
  on SQLite (a batch copy) must make these triggers again, as it must the roll-ups' (0010).

Time: one pass over shift_assignments joined to shifts, and two index builds (write-locked while
they run); about half a minute per 5 million places on a small server.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

ENDS_INDEX = 'ix_shift_assignments_volunteer_shift_ends_at'
STARTS_INDEX = 'ix_shift_assignments_volunteer_shift_starts_at'
# The place's copies as its shift has them (SQLite's triggers and the SQLite backfill).
FROM_SHIFT = (
    'shift_starts_at = (SELECT s.starts_at FROM shifts s WHERE s.id = shift_assignments.shift_id), '
    'shift_ends_at = (SELECT s.ends_at FROM shifts s WHERE s.id = shift_assignments.shift_id)'
)
MOVED = 'OLD.starts_at IS DISTINCT FROM NEW.starts_at OR OLD.ends_at IS DISTINCT FROM NEW.ends_at'
DIFFERS = (
    'NEW.shift_starts_at IS NOT (SELECT starts_at FROM shifts WHERE id = NEW.shift_id) '
    'OR NEW.shift_ends_at IS NOT (SELECT ends_at FROM shifts WHERE id = NEW.shift_id)'
)


def _create_triggers(postgres):
    if postgres:
        op.execute(
            "CREATE OR REPLACE FUNCTION shift_assignment_times() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "SELECT starts_at, ends_at INTO NEW.shift_starts_at, NEW.shift_ends_at FROM shifts "
            "WHERE id = NEW.shift_id FOR KEY SHARE; RETURN NEW; END $$"
        )
        op.execute(
            "CREATE TRIGGER shift_times BEFORE INSERT OR UPDATE OF shift_id, shift_starts_at, shift_ends_at "
            "ON shift_assignments FOR EACH ROW EXECUTE FUNCTION shift_assignment_times()"
        )
        op.execute(
            "CREATE OR REPLACE FUNCTION shift_times_lock() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM 1 FROM shifts WHERE id = OLD.id FOR UPDATE; RETURN NEW; END $$"
        )
        op.execute(
            f"CREATE TRIGGER shift_times_lock BEFORE UPDATE OF starts_at, ends_at ON shifts FOR EACH ROW "
            f"WHEN ({MOVED}) EXECUTE FUNCTION shift_times_lock()"
        )
        op.execute(
            "CREATE OR REPLACE FUNCTION shift_times_to_assignments() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "UPDATE shift_assignments SET shift_starts_at = NEW.starts_at, shift_ends_at = NEW.ends_at "
            "WHERE shift_id = NEW.id; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER shift_times AFTER UPDATE OF starts_at, ends_at ON shifts FOR EACH ROW "
            f"WHEN ({MOVED}) EXECUTE FUNCTION shift_times_to_assignments()"
        )
        return
    op.execute(
        "CREATE TRIGGER shift_times_insert AFTER INSERT ON shift_assignments "
        f"BEGIN UPDATE shift_assignments SET {FROM_SHIFT} WHERE id = NEW.id; END"
    )
    op.execute(
        "CREATE TRIGGER shift_times_update AFTER UPDATE OF shift_id, shift_starts_at, shift_ends_at "
        f"ON shift_assignments WHEN {DIFFERS} "
        f"BEGIN UPDATE shift_assignments SET {FROM_SHIFT} WHERE id = NEW.id; END"
    )
    op.execute(
        "CREATE TRIGGER shift_times_follow AFTER UPDATE OF starts_at, ends_at ON shifts "
        "WHEN OLD.starts_at IS NOT NEW.starts_at OR OLD.ends_at IS NOT NEW.ends_at "
        "BEGIN UPDATE shift_assignments SET shift_starts_at = NEW.starts_at, shift_ends_at = NEW.ends_at "
        "WHERE shift_id = NEW.id; END"
    )


def _drop_triggers(postgres):
    if postgres:
        op.execute("DROP TRIGGER IF EXISTS shift_times ON shift_assignments")
        op.execute("DROP TRIGGER IF EXISTS shift_times ON shifts")
        op.execute("DROP TRIGGER IF EXISTS shift_times_lock ON shifts")
        for function in ("shift_assignment_times", "shift_times_lock", "shift_times_to_assignments"):
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        return
    for name in ("shift_times_insert", "shift_times_update", "shift_times_follow"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}")


def upgrade():
    postgres = op.get_bind().dialect.name == 'postgresql'
    # Plain ALTER TABLE, no batch: a batch copy of the table on SQLite would drop its triggers (0010's).
    op.add_column('shift_assignments', sa.Column('shift_starts_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('shift_assignments', sa.Column('shift_ends_at', sa.DateTime(timezone=True), nullable=True))
    if postgres:
        op.execute(
            'UPDATE shift_assignments a SET shift_starts_at = s.starts_at, shift_ends_at = s.ends_at '
            'FROM shifts s WHERE s.id = a.shift_id'
        )
    else:
        op.execute(f'UPDATE shift_assignments SET {FROM_SHIFT}')
    op.create_index(ENDS_INDEX, 'shift_assignments', ['volunteer_id', 'shift_ends_at'], unique=False)
    op.create_index(STARTS_INDEX, 'shift_assignments', ['volunteer_id', 'shift_starts_at', 'id'], unique=False)
    _create_triggers(postgres)


def downgrade():
    postgres = op.get_bind().dialect.name == 'postgresql'
    _drop_triggers(postgres)
    op.drop_index(STARTS_INDEX, table_name='shift_assignments')
    op.drop_index(ENDS_INDEX, table_name='shift_assignments')
    op.drop_column('shift_assignments', 'shift_ends_at')
    op.drop_column('shift_assignments', 'shift_starts_at')
