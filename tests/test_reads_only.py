"""Views marked ``reads_only`` (core/transactions.py) run outside any transaction on PostgreSQL.

With real commits on the app's own engine (the other tests' sessions sit in a transaction that is
rolled back afterwards, which such a view then simply reads inside): every statement of the phone's
hottest reads runs on a connection that is in no transaction, and the commit hooks' statements
(the roll-ups' fold) never run. On SQLite nothing changes: the statements run in a transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.extensions import db
from tests import factories

pytestmark = pytest.mark.committing


@pytest.fixture
def volunteer_on_a_shift(app: Flask) -> dict[str, Any]:
    with app.app_context():
        *_, grid = factories.make_branch()
        volunteer = factories.make_volunteer(grid)
        factories.make_assignment(factories.make_shift(grid, starts_in=timedelta(hours=3)), volunteer)
        headers = factories.headers_for(volunteer.user)
        db.session.commit()
        db.session.remove()
    return {"headers": headers}


@pytest.fixture
def statements(app: Flask) -> Iterator[list[tuple[str, bool]]]:
    """(statement, whether its connection was inside a transaction) of everything the app runs."""
    seen: list[tuple[str, bool]] = []

    def before(connection: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
        raw = connection.connection.dbapi_connection
        if db.engine.dialect.name == "postgresql":
            import psycopg

            # psycopg opens its transaction with the first statement: idle only in autocommit.
            inside = not raw.autocommit or raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        else:
            inside = raw.in_transaction
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE (core/db.py) opens one
            seen.append((" ".join(statement.split())[:60], inside))

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before)
    yield seen
    sa.event.remove(engine, "before_cursor_execute", before)


@pytest.mark.parametrize(
    "path", ["/api/v1/me", "/api/v1/me/shifts", "/api/v1/areas/locate?lat=40.65&lon=109.84"]
)
def test_the_hot_reads_run_without_a_transaction_on_postgresql(
    app: Flask, volunteer_on_a_shift, statements, path
) -> None:
    response = app.test_client().get(path, headers=volunteer_on_a_shift["headers"])

    assert response.status_code == 200, response.get_data(as_text=True)
    assert statements, "the read ran no statement"
    committed = any("report_rollup_changes" in sql for sql, _ in statements)  # the commit hook's fold
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        assert not committed and {inside for _, inside in statements} == {False}, statements
    else:
        assert committed and {inside for _, inside in statements} == {True}, statements


def test_a_write_after_a_read_still_runs_in_a_transaction(app: Flask, volunteer_on_a_shift, statements) -> None:
    client = app.test_client()
    assert client.get("/api/v1/me", headers=volunteer_on_a_shift["headers"]).status_code == 200
    statements.clear()

    renamed = client.patch("/api/v1/me", json={"display_name": "新名字"}, headers=volunteer_on_a_shift["headers"])

    assert renamed.status_code == 200 and renamed.get_json()["display_name"] == "新名字"
    assert statements and all(inside for _, inside in statements), statements
    assert client.get("/api/v1/me", headers=volunteer_on_a_shift["headers"]).get_json()["display_name"] == "新名字"
