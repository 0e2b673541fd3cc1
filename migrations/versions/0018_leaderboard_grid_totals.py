"""leaderboards: each total carries its volunteer's home grid and whether they are active; per grid
and period the sums and ranked counts of its active volunteers, kept by triggers

A district's board counted its 100,000 volunteers' totals, joined to volunteers and areas, on every
request (bench/README.md, issue 19). Now the total row says where its volunteer lives and whether
they are ranked (a trigger on ``volunteers`` keeps that when they move or change status), and
``leaderboard_grid_totals`` holds what the boards count and sum per grid (triggers on
``leaderboard_totals`` keep it; on PostgreSQL deferred to the commit). Existing rows are filled
here from the volunteers and the totals.

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
_GRID_COLUMNS = "period, grid_id, minutes, points, ranked_by_minutes, ranked_by_points"
# A total's share of its grid's row, as SQL of the row ``{r}`` (OLD or NEW); ``{int}`` turns a
# condition into 0 or 1 (PostgreSQL casts; SQLite's comparisons already are).
_SHARE = "{r}.period, {r}.home_grid_id, {r}.minutes, {r}.points, ({r}.minutes > 0){int}, ({r}.points > 0){int}"
_ADD = (
    "ON CONFLICT (period, grid_id) DO UPDATE SET "
    "minutes = leaderboard_grid_totals.minutes + excluded.minutes, "
    "points = leaderboard_grid_totals.points + excluded.points, "
    "ranked_by_minutes = leaderboard_grid_totals.ranked_by_minutes + excluded.ranked_by_minutes, "
    "ranked_by_points = leaderboard_grid_totals.ranked_by_points + excluded.ranked_by_points"
)
_TAKE = (
    "UPDATE leaderboard_grid_totals SET minutes = minutes - OLD.minutes, points = points - OLD.points, "
    "ranked_by_minutes = ranked_by_minutes - (OLD.minutes > 0){int}, "
    "ranked_by_points = ranked_by_points - (OLD.points > 0){int} "
    "WHERE period = OLD.period AND grid_id = OLD.home_grid_id"
)


def _create_triggers():
    if op.get_bind().dialect.name == "postgresql":
        pg = {"int": "::int"}
        op.execute(
            "CREATE OR REPLACE FUNCTION leaderboard_grid_totals() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF TG_OP <> 'INSERT' AND OLD.{_ACTIVE} THEN {_TAKE.format(**pg)}; END IF; "
            f"IF TG_OP <> 'DELETE' AND NEW.{_ACTIVE} THEN "
            f"INSERT INTO leaderboard_grid_totals ({_GRID_COLUMNS}) VALUES ({_SHARE.format(r='NEW', **pg)}) {_ADD}; "
            "END IF; RETURN NULL; END $$"
        )
        # Deferred: the grid's row is shared by all its volunteers, so it is locked at the commit
        # only (in the order the transaction wrote its totals), not while the transaction works.
        op.execute(
            "CREATE CONSTRAINT TRIGGER leaderboard_grid_totals AFTER INSERT OR UPDATE OR DELETE "
            "ON leaderboard_totals DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            "EXECUTE FUNCTION leaderboard_grid_totals()"
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
    add_new = (
        f"INSERT INTO leaderboard_grid_totals ({_GRID_COLUMNS}) SELECT {_SHARE.format(r='NEW', **lite)} "
        f"WHERE NEW.{_ACTIVE} {_ADD};"
    )
    take_old = f"{_TAKE.format(**lite)} AND OLD.{_ACTIVE};"
    op.execute(f"CREATE TRIGGER leaderboard_grid_totals_insert AFTER INSERT ON leaderboard_totals BEGIN {add_new} END")
    op.execute(f"CREATE TRIGGER leaderboard_grid_totals_delete AFTER DELETE ON leaderboard_totals BEGIN {take_old} END")
    op.execute(
        f"CREATE TRIGGER leaderboard_grid_totals_update AFTER UPDATE ON leaderboard_totals BEGIN {take_old} {add_new} END"
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
        op.execute("DROP TRIGGER IF EXISTS leaderboard_grid_totals ON leaderboard_totals")
        op.execute("DROP FUNCTION IF EXISTS leaderboard_grid_totals()")
        return
    op.execute("DROP TRIGGER IF EXISTS leaderboard_home")
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS leaderboard_grid_totals_{event}")


def upgrade():
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
