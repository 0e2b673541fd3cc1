"""reports: a notice to the writing connection when a statement records a roll-up change, so a
commit that recorded none skips the fold's DELETE … RETURNING (issue 19)

PostgreSQL only: an AFTER INSERT trigger on ``report_rollup_changes`` raises one NOTICE (SQLSTATE
``SWR01``) per client statement that records a change, whatever wrote it (another table's trigger,
a Core statement, text SQL). The notice reaches the client with the statement's own answer: no
round trip. ``reports/rollups/listeners.py`` counts these notices per connection and folds at a
commit only when the transaction saw one (every connection checks, when it opens, that this
trigger exists and that its ``client_min_messages`` lets notices through; else it always folds).

A transaction-local setting (``shouwang.rollup_noticed``, the statement's start time) keeps it to
one notice per statement: a bulk write recording thousands of changes sends one. A savepoint
rolled back resets it with the changes it recorded; the next change notices again.

SQLite: nothing (its fold is a local DELETE, no round trip).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION report_rollup_notice() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF current_setting('shouwang.rollup_noticed', true) IS DISTINCT FROM statement_timestamp()::text THEN "
        "PERFORM set_config('shouwang.rollup_noticed', statement_timestamp()::text, true); "
        "RAISE NOTICE USING MESSAGE = 'report roll-up change recorded', ERRCODE = 'SWR01'; "
        "END IF; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER report_rollup_notice AFTER INSERT ON report_rollup_changes "
        "FOR EACH ROW EXECUTE FUNCTION report_rollup_notice()"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS report_rollup_notice ON report_rollup_changes")
    op.execute("DROP FUNCTION IF EXISTS report_rollup_notice()")
