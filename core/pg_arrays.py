"""One-dimensional PostgreSQL arrays of float8 and timestamptz, packed whole in psycopg's binary
format, for statements that take a batch as arrays (``unnest``).

psycopg dumps a list element by element in Python (a dumper call, a length and a join per item):
about a millisecond for each 1,000-item array. Here the values go into an :mod:`array` in one
call and made big-endian in one (times: psycopg's own C dumper mapped over them), and the 4-byte
length before each 8-byte value is laid in by twelve strided slice copies, so the work per item
stays in C. The bytes are what psycopg sends for the same list (a test compares them): the same
header (one dimension, lower bound 1, no NULL, the element's type), each value as its binary
dumper writes it (IEEE 754 big-endian; microseconds since 2000-01-01 UTC). A list holding
``None`` is not packed (:func:`float8_array` says so): its caller sends it as psycopg would.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import adapt, postgres, pq
from psycopg.abc import AdaptContext
from psycopg.adapt import PyFormat

_HEAD = struct.Struct(">iiIii")  # ndim, has-null flag, element oid; then the one dimension: size, lower bound
_ITEM = 8  # float8 and timestamptz are 8 bytes each
_LENGTH = struct.pack(">i", _ITEM)
_FLOAT8, _TIMESTAMPTZ = postgres.types["float8"], postgres.types["timestamptz"]
# psycopg's binary dumper of an aware datetime (the one it picks for such a value).
_TIMESTAMPTZ_DUMPER: Any = psycopg.adapters.get_dumper(datetime, PyFormat.BINARY)(datetime).upgrade(
    datetime(2000, 1, 1, tzinfo=UTC), PyFormat.BINARY
)
_BIG_ENDIAN = sys.byteorder == "big"


def _packed(items: bytes, count: int, element_oid: int) -> bytes:
    """The array of ``count`` values whose binary forms, 8 bytes each, follow each other in ``items``."""
    stride = 4 + _ITEM
    body = bytearray(stride * count)
    for offset in range(4):
        body[offset::stride] = _LENGTH[offset : offset + 1] * count
    for offset in range(_ITEM):
        body[4 + offset :: stride] = items[offset::_ITEM]
    return _HEAD.pack(1, 0, element_oid, count, 1) + body


class Float8Array(bytes):
    """A float8[] packed for psycopg (:func:`float8_array`)."""


class TimestamptzArray(bytes):
    """A timestamptz[] packed for psycopg (:func:`timestamptz_array`)."""


def float8_array(values: Iterable[float | None]) -> Float8Array | None:
    """``values`` as a float8[] parameter, or None when one of them is None (NULL)."""
    listed: list[Any] = list(values)
    if None in listed:
        return None
    doubles = array("d", listed)
    if not _BIG_ENDIAN:
        doubles.byteswap()
    return Float8Array(_packed(doubles.tobytes(), len(doubles), _FLOAT8.oid))


def timestamptz_array(values: Iterable[datetime]) -> TimestamptzArray:
    """Aware ``values`` as a timestamptz[] parameter (a naive one is not told apart: never pass
    one), each by psycopg's own binary dumper: in C, mapped over the values, no Python step each."""
    listed = list(values)
    items = b"".join(map(_TIMESTAMPTZ_DUMPER.dump, listed))
    return TimestamptzArray(_packed(items, len(listed), _TIMESTAMPTZ.oid))


class _PackedArrayDumper(adapt.Dumper):
    format = pq.Format.BINARY

    def dump(self, obj: Any) -> Any:
        return obj  # already the bytes to send


class _Float8ArrayDumper(_PackedArrayDumper):
    oid = _FLOAT8.array_oid


class _TimestamptzArrayDumper(_PackedArrayDumper):
    oid = _TIMESTAMPTZ.array_oid


def register_packed_arrays(context: AdaptContext) -> None:
    """Let ``context`` (a connection's adapters) send :class:`Float8Array` and :class:`TimestamptzArray`."""
    context.adapters.register_dumper(Float8Array, _Float8ArrayDumper)
    context.adapters.register_dumper(TimestamptzArray, _TimestamptzArrayDumper)
