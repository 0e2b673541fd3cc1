"""leaderboards: each total carries its volunteer's home grid and whether they are active; per grid
and period the sums and ranked counts of its active volunteers, kept by triggers

A district's board counted its 100,000 volunteers' totals, joined to volunteers and areas, on every
request (bench/README.md, issue 19). Now the total row says where its volunteer lives and whether
they are ranked (a trigger on ``volunteers`` keeps that when they move or change status), and
``leaderboard_grid_totals`` holds what the boards count and sum per grid, plus the changes since
it was last folded (``leaderboard_grid_changes``, inserted by a trigger on ``leaderboard_totals``).
Existing rows are filled here from the volunteers and the totals.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 09:20:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

_ACTIVE = "volunteer_active"
_FIGURES = "minutes, points, ranked_by_minutes, ranked_by_points"
_GRID_COLUMNS = f"period, grid_id, {_FIGURES}"
# A total's share of its grid's figures, as SQL of the row ``{r}`` (OLD or NEW), with sign ``{s}``
# ('' or '-'); ``{int}`` turns a condition into 0 or 1 (PostgreSQL casts; SQLite's already are).
_SHARE = ("{r}.period, {r}.home_grid_id, {s}{r}.minutes, {s}{r}.points, "
          "{s}({r}.minutes > 0){int}, {s}({r}.points > 0){int}")
_INSERT = f"INSERT INTO leaderboard_grid_changes ({_GRID_COLUMNS})"


def _create_triggers():
    if op.get_bind().dialect.name == "postgresql":
        pg = {"int": "::int"}
        # One change row per changed total (two when it moves between grids or in or out of the
        # ranked): inserts only, so concurrent writers never share a row here.
        op.execute(
            "CREATE OR REPLACE FUNCTION leaderboard_grid_changes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP = 'UPDATE' AND OLD.{_ACTIVE} AND NEW.{_ACTIVE} AND OLD.home_grid_id = NEW.home_grid_id "
            "AND OLD.period = NEW.period THEN "
            "IF OLD.minutes <> NEW.minutes OR OLD.points <> NEW.points THEN "
            f"{_INSERT} VALUES (NEW.period, NEW.home_grid_id, NEW.minutes - OLD.minutes, NEW.points - OLD.points, "
            "(NEW.minutes > 0)::int - (OLD.minutes > 0)::int, (NEW.points > 0)::int - (OLD.points > 0)::int); "
            "END IF; RETURN NULL; END IF; "
            f"IF TG_OP <> 'INSERT' AND OLD.{_ACTIVE} THEN {_INSERT} VALUES ({_SHARE.format(r='OLD', s='-', **pg)}); END IF; "
            f"IF TG_OP <> 'DELETE' AND NEW.{_ACTIVE} THEN {_INSERT} VALUES ({_SHARE.format(r='NEW', s='', **pg)}); END IF; "
            "RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER leaderboard_grid_changes AFTER INSERT OR UPDATE OR DELETE ON leaderboard_totals "
            "FOR EACH ROW EXECUTE FUNCTION leaderboard_grid_changes()"
        )
        op.execute(
            "CREATE OR REPLACE FUNCTION leaderboard_home() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"UPDATE leaderboard_totals SET home_grid_id = NEW.home_grid_id, {_ACTIVE} = (NEW.status = 'active') "
            f"WHERE volunteer_id = NEW.id AND (home_grid_id <> NEW.home_grid_id OR {_ACTIVE} <> (NEW.status = 'active')); "
            "RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER leaderboard_home AFTER UPDATE OF status, home_grid_id ON volunteers FOR EACH ROW "
            "WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.home_grid_id IS DISTINCT FROM NEW.home_grid_id) "
            "EXECUTE FUNCTION leaderboard_home()"
        )
        return
    lite = {"int": ""}
    add_new = f"{_INSERT} SELECT {_SHARE.format(r='NEW', s='', **lite)} WHERE NEW.{_ACTIVE};"
    take_old = f"{_INSERT} SELECT {_SHARE.format(r='OLD', s='-', **lite)} WHERE OLD.{_ACTIVE};"
    op.execute(f"CREATE TRIGGER leaderboard_grid_changes_insert AFTER INSERT ON leaderboard_totals BEGIN {add_new} END")
    op.execute(f"CREATE TRIGGER leaderboard_grid_changes_delete AFTER DELETE ON leaderboard_totals BEGIN {take_old} END")
    op.execute(
        f"CREATE TRIGGER leaderboard_grid_changes_update AFTER UPDATE ON leaderboard_totals BEGIN {take_old} {add_new} END"
    )
    op.execute(
        "CREATE TRIGGER leaderboard_home AFTER UPDATE OF status, home_grid_id ON volunteers "
        "WHEN OLD.status IS NOT NEW.status OR OLD.home_grid_id IS NOT NEW.home_grid_id BEGIN "
        f"UPDATE leaderboard_totals SET home_grid_id = NEW.home_grid_id, {_ACTIVE} = (NEW.status = 'active') "
        f"WHERE volunteer_id = NEW.id AND (home_grid_id <> NEW.home_grid_id OR {_ACTIVE} <> (NEW.status = 'active')); "
        "END"
    )


def _drop_triggers():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS leaderboard_home ON volunteers")
        op.execute("DROP FUNCTION IF EXISTS leaderboard_home()")
        op.execute("DROP TRIGGER IF EXISTS leaderboard_grid_changes ON leaderboard_totals")
        op.execute("DROP FUNCTION IF EXISTS leaderboard_grid_changes()")
        return
    op.execute("DROP TRIGGER IF EXISTS leaderboard_home")
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS leaderboard_grid_changes_{event}")


def upgrade():
    op.create_table('leaderboard_grid_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('minutes', sa.BigInteger(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('ranked_by_minutes', sa.Integer(), nullable=False),
    sa.Column('ranked_by_points', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grid_id'], ['areas.id'], name=op.f('fk_leaderboard_grid_changes_grid_id_areas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leaderboard_grid_changes'))
    )
    with op.batch_alter_table('leaderboard_grid_changes', schema=None) as batch_op:
        batch_op.create_index('ix_leaderboard_grid_changes_period_grid_id', ['period', 'grid_id'], unique=False)

    op.create_table('leaderboard_grid_totals',
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('grid_id', sa.Integer(), nullable=False),
    sa.Column('minutes', sa.BigInteger(), nullable=False),
    sa.Column('points', sa.BigInteger(), nullable=False),
    sa.Column('ranked_by_minutes', sa.Integer(), nullable=False),
    sa.Column('ranked_by_points', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['grid_id'], ['areas.id'], name=op.f('fk_leaderboard_grid_totals_grid_id_areas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('period', 'grid_id', name=op.f('pk_leaderboard_grid_totals'))
    )
    with op.batch_alter_table('leaderboard_totals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('home_grid_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('volunteer_active', sa.Boolean(), nullable=True))
        batch_op.drop_index('ix_leaderboard_totals_period_minutes')
        batch_op.drop_index('ix_leaderboard_totals_period_points')
    op.execute(
        "UPDATE leaderboard_totals SET "
        "home_grid_id = (SELECT v.home_grid_id FROM volunteers v WHERE v.id = leaderboard_totals.volunteer_id), "
        f"{_ACTIVE} = (SELECT v.status = 'active' FROM volunteers v WHERE v.id = leaderboard_totals.volunteer_id)"
    )
    with op.batch_alter_table('leaderboard_totals', schema=None) as batch_op:
        batch_op.alter_column('home_grid_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('volunteer_active', existing_type=sa.Boolean(), nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_leaderboard_totals_home_grid_id_areas'), 'areas', ['home_grid_id'], ['id'])
        batch_op.create_index('ix_leaderboard_totals_period_home_grid_id', ['period', 'home_grid_id'], unique=False, postgresql_where=sa.text('volunteer_active'), sqlite_where=sa.text('volunteer_active'))
        batch_op.create_index('ix_leaderboard_totals_period_minutes', ['period', 'minutes'], unique=False, postgresql_include=['home_grid_id'], postgresql_where=sa.text('volunteer_active'), sqlite_where=sa.text('volunteer_active'))
        batch_op.create_index('ix_leaderboard_totals_period_points', ['period', 'points'], unique=False, postgresql_include=['home_grid_id'], postgresql_where=sa.text('volunteer_active'), sqlite_where=sa.text('volunteer_active'))
        batch_op.create_index('ix_leaderboard_totals_volunteer_id', ['volunteer_id'], unique=False)
    op.execute(
        f"INSERT INTO leaderboard_grid_totals ({_GRID_COLUMNS}) SELECT period, home_grid_id, sum(minutes), "
        "sum(points), sum(CASE WHEN minutes > 0 THEN 1 ELSE 0 END), sum(CASE WHEN points > 0 THEN 1 ELSE 0 END) "
        f"FROM leaderboard_totals WHERE {_ACTIVE} GROUP BY period, home_grid_id"
    )
    _create_triggers()


def downgrade():
    _drop_triggers()
    with op.batch_alter_table('leaderboard_totals', schema=None) as batch_op:
        batch_op.drop_index('ix_leaderboard_totals_volunteer_id')
        batch_op.drop_index('ix_leaderboard_totals_period_points', postgresql_include=['home_grid_id'], postgresql_where=sa.text('volunteer_active'), sqlite_where=sa.text('volunteer_active'))
        batch_op.drop_index('ix_leaderboard_totals_period_minutes', postgresql_include=['home_grid_id'], postgresql_where=sa.text('volunteer_active'), sqlite_where=sa.text('volunteer_active'))
        batch_op.drop_index('ix_leaderboard_totals_period_home_grid_id', postgresql_where=sa.text('volunteer_active'), sqlite_where=sa.text('volunteer_active'))
        batch_op.drop_constraint(batch_op.f('fk_leaderboard_totals_home_grid_id_areas'), type_='foreignkey')
        batch_op.drop_column('volunteer_active')
        batch_op.drop_column('home_grid_id')
        batch_op.create_index('ix_leaderboard_totals_period_points', ['period', 'points'], unique=False)
        batch_op.create_index('ix_leaderboard_totals_period_minutes', ['period', 'minutes'], unique=False)
    op.drop_table('leaderboard_grid_totals')
    op.drop_table('leaderboard_grid_changes')
