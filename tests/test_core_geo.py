"""Distances (core/geo.py): the one model every package measures with."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.geo import EARTH_RADIUS_M, box_around, distance_to_boundary_m, haversine_m


def destination(lat: float, lon: float, bearing_deg: float, metres: float) -> tuple[float, float]:
    """Where a great circle from (lat, lon) in ``bearing_deg`` ends after ``metres`` (the sphere's
    direct problem, written out independently of the code under test)."""
    phi1, lambda1, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    delta = metres / EARTH_RADIUS_M
    phi2 = math.asin(math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta))
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1), math.cos(delta) - math.sin(phi1) * math.sin(phi2)
    )
    return math.degrees(phi2), math.degrees(lambda2)


def test_haversine_matches_known_distances() -> None:
    assert haversine_m(40.0, 109.0, 41.0, 109.0) == pytest.approx(111_195, rel=1e-3)
    assert haversine_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(111_195, rel=1e-3)
    assert haversine_m(40.65, 109.84, 40.65, 109.84) == 0.0


@given(
    lat=st.floats(min_value=-75, max_value=75),
    lon=st.floats(min_value=-170, max_value=170),
    bearing=st.floats(min_value=0, max_value=360),
    fraction=st.floats(min_value=0, max_value=1),
)
def test_the_box_around_a_point_holds_every_position_within_the_distance(
    lat: float, lon: float, bearing: float, fraction: float
) -> None:
    radius = 20_000.0
    there = destination(lat, lon, bearing, radius * fraction)
    min_lon, min_lat, max_lon, max_lat = box_around(lon, lat, radius)
    assert min_lat <= there[0] <= max_lat
    assert min_lon <= there[1] <= max_lon


@pytest.mark.parametrize("lat", [0.0, 40.65, 60.0, -53.0])
def test_the_box_around_a_point_is_as_wide_as_the_circle_reaches(lat: float) -> None:
    radius = 20_000.0
    min_lon, min_lat, max_lon, max_lat = box_around(10.0, lat, radius)
    reach = [destination(lat, 10.0, bearing / 10, radius) for bearing in range(3600)]
    assert max(there[0] for there in reach) == pytest.approx(max_lat, abs=1e-8)
    assert min(there[0] for there in reach) == pytest.approx(min_lat, abs=1e-8)
    assert max(there[1] for there in reach) == pytest.approx(max_lon, abs=1e-6)
    assert min(there[1] for there in reach) == pytest.approx(min_lon, abs=1e-6)


# A long thin triangle, its slanted edge running north-east: nearest in raw degrees (where a degree
# of longitude counts as much as one of latitude) is not nearest on the ground.
TRIANGLE = {"type": "Polygon", "coordinates": [[[10.0, 60.0], [10.2, 60.0], [10.2, 60.05], [10.0, 60.0]]]}


def nearest_on_edges(lat: float, lon: float, steps: int = 4000) -> float:
    ring = TRIANGLE["coordinates"][0]
    best = math.inf
    for (lon1, lat1), (lon2, lat2) in itertools.pairwise(ring):
        for i in range(steps + 1):
            t = i / steps
            best = min(best, haversine_m(lat, lon, lat1 + t * (lat2 - lat1), lon1 + t * (lon2 - lon1)))
    return best


@pytest.mark.parametrize(("lat", "lon"), [(60.04, 10.05), (60.06, 10.1), (60.02, 9.99), (59.99, 10.21)])
def test_distance_to_boundary_is_to_the_nearest_point_on_the_ground(lat: float, lon: float) -> None:
    assert distance_to_boundary_m(TRIANGLE, lon, lat) == pytest.approx(nearest_on_edges(lat, lon), abs=1.0)


def test_distance_to_boundary_is_zero_inside_and_on_the_edge() -> None:
    assert distance_to_boundary_m(TRIANGLE, 10.15, 60.01) == 0.0
    assert distance_to_boundary_m(TRIANGLE, 10.1, 60.0) == 0.0


def test_a_boundary_given_as_json_text_is_parsed_only_while_its_key_is_not_cached() -> None:
    import json

    from core.geo import contains

    square = {"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]}
    key = ("test-text", 1)
    assert contains(key, json.dumps(square), 0.5, 0.5) and not contains(key, json.dumps(square), 1.5, 0.5)
    assert contains(key, "not JSON: read from the cache", 0.25, 0.75)  # cached: the text is not read
    assert contains(("test-dict", 1), square, 1.0, 1.0)  # a dict as before, the border included
    with pytest.raises(json.JSONDecodeError):
        contains(("test-text", 2), "not JSON", 0.5, 0.5)  # a new key: parsed
