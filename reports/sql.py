"""SQL building blocks of the reports: grouped aggregates that run alike on PostgreSQL and SQLite."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from core.extensions import db
from reports.periods import Period


class seconds_between(FunctionElement[int]):
    """Whole seconds from the first timestamp to the second, in SQL (SQLite keeps no interval type).

    Integers on both databases: SQLite's ``julianday()`` is floating point and would make 120
    minutes 119.99999."""

    type = sa.Integer()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between)
def _seconds_between(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(argument, **kw) for argument in element.clauses)
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({end} - {start}))) AS BIGINT)"


@compiles(seconds_between, "sqlite")
def _seconds_between_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(argument, **kw) for argument in element.clauses)
    return f"(CAST(strftime('%s', {end}) AS INTEGER) - CAST(strftime('%s', {start}) AS INTEGER))"


class child_in_path(FunctionElement[int]):
    """The id of the child of an area that a materialised path (``/1/4/17/…``) passes through: the
    segment right after the area's own path, given its length (``child_in_path(path, len("/1/4/"))``
    is 17). Read from the row's own path, it needs no join to the child areas, whose
    ``LIKE child.path || '%'`` join the planner cannot estimate (it guessed one grid in twenty)."""

    type = sa.Integer()
    inherit_cache = True
    name = "child_in_path"


@compiles(child_in_path)
def _child_in_path(element: child_in_path, compiler: Any, **kw: Any) -> str:
    path, length = (compiler.process(argument, **kw) for argument in element.clauses)
    return f"CAST(split_part(substr({path}, {length} + 1), '/', 1) AS INTEGER)"


@compiles(child_in_path, "sqlite")
def _child_in_path_sqlite(element: child_in_path, compiler: Any, **kw: Any) -> str:
    path, length = (compiler.process(argument, **kw) for argument in element.clauses)
    rest = f"substr({path}, {length} + 1)"
    return f"CAST(substr({rest}, 1, instr({rest}, '/') - 1) AS INTEGER)"


def minutes_between(start: Any, end: Any) -> sa.ColumnElement[Any]:
    """Minutes (with their fraction) from ``start`` to ``end``."""
    return seconds_between(start, end) / 60.0


def whole_minutes_between(start: Any, end: Any) -> sa.ColumnElement[int]:
    """Whole minutes from ``start`` to ``end``, rounded down (for a positive span)."""
    return seconds_between(start, end) // 60


def grouped(stmt: sa.Select[Any], key: sa.ColumnElement[Any], *columns: Any) -> dict[Any, dict[str, Any]]:
    rows = db.session.execute(stmt.with_only_columns(key.label("key"), *columns).group_by(key)).mappings()
    return {row["key"]: dict(row) for row in rows}


def grid_series_key(path: Any, index: Any) -> sa.ColumnElement[str]:
    """A ``grid_series`` row's key: the grid's path followed by its bucket index (``/1/2/7/3``),
    one text column on both dialects; :func:`split_grid_series_key` reads it back."""
    return sa.type_coerce(path, sa.String()) + sa.cast(index, sa.String())


def split_grid_series_key(key: str) -> tuple[str, int]:
    """``(grid path, bucket index)`` of a :func:`grid_series_key`."""
    path, _, index = key.rpartition("/")
    return path + "/", int(index)


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
