"""Unit tests of the tricky core rules: national IDs, phone numbers, cursors, polygons, time zones."""

from __future__ import annotations

from datetime import UTC, datetime

import marshmallow as ma
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import crypto
from core.errors import ValidationFailed
from core.geo import contains, validate_boundary
from core.pagination import decode_cursor, encode_cursor
from core.timeutil import is_valid_timezone
from core.validators import national_id_is_valid, normalise_cn_mobile
from tests.factories import national_id, square


def test_national_id_checksum() -> None:
    assert national_id_is_valid("11010519491231002X")  # the standard's published example
    assert not national_id_is_valid("110105194912310021")  # wrong check character
    assert not national_id_is_valid("11010519491331002X")  # month 13
    assert not national_id_is_valid("1101051949123100")  # too short
    assert not national_id_is_valid("11010519490230002X")  # 30 February


@given(st.integers(min_value=0, max_value=999))
def test_generated_ids_are_valid_and_one_digit_off_is_not(sequence: int) -> None:
    number = national_id(sequence)
    assert national_id_is_valid(number)
    digit = int(number[14])
    tampered = number[:14] + str((digit + 1) % 10) + number[15:]
    assert not national_id_is_valid(tampered)


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "138-0013-8000", "+8613800138000"])
def test_mobile_numbers_normalise_to_e164(raw: str) -> None:
    assert normalise_cn_mobile(raw) == "+8613800138000"


@pytest.mark.parametrize("raw", ["010-12345678", "12345", "+12025550123", "not a number", "1380013800"])
def test_non_mainland_mobiles_are_refused(raw: str) -> None:
    with pytest.raises(ma.ValidationError):
        normalise_cn_mobile(raw)


# What cursors carry: 64-bit ids and timestamps (core/pagination.py bounds their length).
CURSOR_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
)


@given(st.lists(CURSOR_VALUES, min_size=2, max_size=2))
def test_cursor_round_trip(values: list) -> None:
    assert decode_cursor(encode_cursor(values), 2) == values


@pytest.mark.parametrize("cursor", ["***", "e30", encode_cursor([1]), "W10"])
def test_bad_cursors_are_validation_errors(cursor: str) -> None:
    with pytest.raises(ValidationFailed):
        decode_cursor(cursor, 2)


def test_polygon_validation_rules() -> None:
    good = square(109.84, 40.65)
    assert validate_boundary(good, 100)["type"] == "Polygon"
    open_ring = {"type": "Polygon", "coordinates": [good["coordinates"][0][:-1]]}
    bow_tie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    out_of_range = square(190, 40)
    for bad in (open_ring, bow_tie, out_of_range, {"type": "Point", "coordinates": [1, 2]}, "x"):
        with pytest.raises(ValidationFailed) as raised:
            validate_boundary(bad, 100)
        assert "boundary" in raised.value.errors
    with pytest.raises(ValidationFailed):
        validate_boundary(good, 4)  # 5 vertices over a limit of 4


def test_point_in_polygon_includes_the_border() -> None:
    polygon = square(109.84, 40.65, 0.01)
    assert contains((1, 1), polygon, 109.845, 40.655)
    assert contains((1, 1), polygon, 109.84, 40.655)  # on the edge
    assert not contains((1, 1), polygon, 109.86, 40.655)


def test_time_zones() -> None:
    assert is_valid_timezone("Asia/Shanghai")
    assert is_valid_timezone("Asia/Urumqi")
    assert not is_valid_timezone("Mars/Olympus")
    assert not is_valid_timezone("")


def test_masking_and_keyed_hash(app) -> None:
    assert crypto.mask("150202199001010011") == "1502**********0011"
    assert crypto.keyed_hash("x") == crypto.keyed_hash("x") != crypto.keyed_hash("y")
    assert crypto.decrypt(crypto.encrypt("150202199001010011")) == "150202199001010011"
