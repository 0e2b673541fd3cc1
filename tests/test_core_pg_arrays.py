"""Arrays packed whole (``core/pg_arrays.py``) are byte for byte what psycopg sends for the same
list, and PostgreSQL reads them back as the values sent."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from psycopg.adapt import PyFormat, Transformer

from core.extensions import db
from core.pg_arrays import Float8Array, TimestamptzArray, float8_array, register_packed_arrays, timestamptz_array


def _sent(value: Any) -> bytes:
    """The bytes psycopg sends for ``value`` as a binary parameter, with the packed arrays known."""
    transformer = Transformer()
    register_packed_arrays(transformer)
    sent = transformer.get_dumper(value, PyFormat.BINARY).dump(value)
    assert sent is not None
    return bytes(sent)


def _times(rng: random.Random, count: int) -> list[datetime]:
    zones = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]
    start = datetime(1999, 12, 31, 23, 59, tzinfo=UTC)  # across PostgreSQL's epoch, 2000-01-01
    return [
        (start + timedelta(seconds=rng.randrange(10**9), microseconds=rng.randrange(10**6))).astimezone(
            rng.choice(zones)
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("count", [1, 2, 1000])
def test_packed_arrays_are_the_bytes_psycopg_sends(count: int) -> None:
    rng = random.Random(count)
    floats = [rng.uniform(-180, 180) for _ in range(count - 1)] + [-0.0]
    times = _times(rng, count)
    assert _sent(float8_array(floats)) == _sent(floats)
    assert _sent(float8_array([int(x) for x in floats])) == _sent([float(int(x)) for x in floats])
    assert _sent(timestamptz_array(times)) == _sent(times)


def test_a_null_is_not_packed() -> None:
    assert float8_array([1.0, None, 2.0]) is None


@pytest.mark.postgresql
def test_postgresql_reads_the_packed_arrays_back(app: Any) -> None:
    rng = random.Random(7)
    floats, times = [rng.uniform(-90, 90) for _ in range(1000)], _times(rng, 1000)
    raw = db.session.connection().connection.dbapi_connection
    assert isinstance(raw, psycopg.Connection)
    packed_floats, packed_times = float8_array(floats), timestamptz_array(times)
    assert isinstance(packed_floats, Float8Array) and isinstance(packed_times, TimestamptzArray)
    with raw.cursor() as cursor:
        got_floats, got_times = cursor.execute("SELECT %b, %b", (packed_floats, packed_times)).fetchone() or (
            None,
            None,
        )
    assert got_floats == floats
    assert got_times == times  # aware datetimes compare as instants
