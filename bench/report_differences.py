"""Where a report's answer through HTTP and its hand-written floor differ (``bench/reports.py``
checks each before timing it and fails the run on any difference): the first differing figure of
each area, child or grid, with its path in the answer."""

from __future__ import annotations

from typing import Any


def differences(api: dict[str, Any], floor: dict[str, Any]) -> list[str]:
    """Where the endpoint's answer and the floor's differ (the area and every child)."""
    found = []
    if api["figures"] != floor["figures"]:
        found.append(f"area: {_first_difference(api['figures'], floor['figures'])}")
    api_children = {child["id"]: child["figures"] for child in api["children"]}
    floor_children = {child["id"]: child["figures"] for child in floor["children"]}
    if api_children.keys() != floor_children.keys():
        found.append(f"children: {sorted(api_children)[:5]} vs {sorted(floor_children)[:5]}")
    for key in api_children.keys() & floor_children.keys():
        if api_children[key] != floor_children[key]:
            found.append(f"child {key}: {_first_difference(api_children[key], floor_children[key])}")
    return found


def coverage_differences(api: dict[str, Any], floor: dict[str, Any]) -> list[str]:
    """Where the coverage report and its floor differ: every section but ``as_of``, and every grid
    (rank included) by id."""
    found = [
        f"{key}: {_first_difference(api.get(key), floor.get(key))}"
        for key in sorted((api.keys() | floor.keys()) - {"as_of", "grids"})
        if api.get(key) != floor.get(key)
    ]
    api_grids = {grid["grid_id"]: grid for grid in api["grids"]}
    floor_grids = {grid["grid_id"]: grid for grid in floor["grids"]}
    if api_grids.keys() != floor_grids.keys():
        found.append(f"grids: {sorted(api_grids.keys() - floor_grids.keys())[:5]} only in the API, "
                     f"{sorted(floor_grids.keys() - api_grids.keys())[:5]} only in the floor")
    for key in sorted(api_grids.keys() & floor_grids.keys()):
        if api_grids[key] != floor_grids[key]:
            found.append(f"grid {key}: {_first_difference(api_grids[key], floor_grids[key])}")
    if not found and list(api_grids) != list(floor_grids):
        found.append("grids: listed in another order")
    return found


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{where}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{index}]")
    return f"{where}: api {a!r} floor {b!r}"
