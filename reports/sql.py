"""SQL building blocks of the reports: grouped aggregates that run alike on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from core.extensions import db
from reports.periods import Period


class minutes_between(FunctionElement[float]):
    """Minutes from the first timestamp to the second (SQLite keeps no interval type)."""

    type = sa.Float()
    inherit_cache = True


@compiles(minutes_between)
def _minutes_between(element: minutes_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"(EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - {compiler.process(start, **kw)})) / 60.0)"


@compiles(minutes_between, "sqlite")
def _minutes_between_sqlite(element: minutes_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return f"((julianday({compiler.process(end, **kw)}) - julianday({compiler.process(start, **kw)})) * 1440.0)"


def grouped(stmt: sa.Select[Any], key: sa.ColumnElement[Any], *columns: Any) -> dict[Any, dict[str, Any]]:
    rows = db.session.execute(stmt.with_only_columns(key.label("key"), *columns).group_by(key)).mappings()
    return {row["key"]: dict(row) for row in rows}


def count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def sum_if(condition: sa.ColumnElement[bool], value: Any) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, value), else_=0)), 0)


def in_period(column: Any, period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.starts_at, column < period.ends_at)


def rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def hours(minutes: float | None) -> float:
    return round((minutes or 0) / 60, 2)
