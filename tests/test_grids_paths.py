"""Materialised area paths taken apart in one place (grids/paths.py)."""

from __future__ import annotations

from grids import paths


def test_ids_along_a_path() -> None:
    assert paths.path_ids("/1/4/17/") == [1, 4, 17]
    assert paths.ancestor_ids("/1/4/17/") == [1, 4]
    assert paths.ancestor_ids("/1/") == []
    assert paths.own_id("/1/4/17/") == 17
    assert paths.city_id("/1/4/17/") == 1
    assert paths.city_id("/12/") == 12


def test_paths_made_from_ids() -> None:
    assert paths.path_of([1, 4]) == "/1/4/"
    assert paths.path_of([]) == "/"
    assert paths.city_path("/1/4/17/") == "/1/"
    assert paths.city_path("/12/345/") == "/12/"
    assert paths.ancestor_paths("/1/4/17/") == ["/1/", "/1/4/", "/1/4/17/"]


def test_whole_segments_only() -> None:
    # Ids are whole segments: 23 is not 2 followed by 3.
    assert paths.path_ids("/1/23/") == [1, 23]
    assert paths.city_path("/23/2/") == "/23/"
    assert paths.id_at_depth("/1/23/456/", 1) == 23
    assert paths.id_at_depth("/1/23/", 2) is None
