"""The benchmark city's grid lattice: cells of about 340 m × 330 m around 40.65N 109.84E, each
cell's inner corners and edges jittered, neighbours sharing their edges exactly, so every point
inside the lattice lies in exactly one grid (boundaries aside). Each grid has 8–12 distinct vertices.

Used by the /me-and-locate seed (``bench/seed.py``), the check-in seed and the city seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

#: Lattice geometry. 0.004° of longitude at 40.65N is ~338 m, 0.003° of latitude ~333 m.
COLUMNS = ROWS = 100
CELL_LON, CELL_LAT = 0.004, 0.003
ORIGIN_LON = round(109.84 - COLUMNS * CELL_LON / 2, 6)
ORIGIN_LAT = round(40.65 - ROWS * CELL_LAT / 2, 6)
#: Inner corners move by up to this fraction of a cell; edge vertices bulge by up to EDGE_BULGE.
CORNER_JITTER = 0.12
EDGE_BULGE = 0.08

SEED = 2026


@dataclass(frozen=True)
class Lattice:
    """A rectangle of ``columns`` × ``rows`` jittered cells from (origin_lon, origin_lat); the
    outline stays straight, so lattices side by side never overlap."""

    columns: int
    rows: int
    cell_lon: float
    cell_lat: float
    origin_lon: float
    origin_lat: float
    seed: int = SEED


def _corner(c: int, r: int, rng: random.Random, lattice: Lattice) -> tuple[float, float]:
    dx = rng.uniform(-CORNER_JITTER, CORNER_JITTER) if 0 < c < lattice.columns else 0.0
    dy = rng.uniform(-CORNER_JITTER, CORNER_JITTER) if 0 < r < lattice.rows else 0.0
    return (lattice.origin_lon + (c + dx) * lattice.cell_lon, lattice.origin_lat + (r + dy) * lattice.cell_lat)


def _edge_points(
    start: tuple[float, float], end: tuple[float, float], outer: bool, rng: random.Random, lattice: Lattice
) -> list[tuple[float, float]]:
    """One or two vertices between two corners, bulging sideways unless on the lattice's outline."""
    count = rng.choice((1, 2))
    fractions = sorted(rng.uniform(0.25, 0.75) for _ in range(count))
    if count == 2 and fractions[1] - fractions[0] < 0.1:
        fractions = [0.33, 0.67]
    (x0, y0), (x1, y1) = start, end
    # Perpendicular in cell units, so the bulge stays proportional on both axes.
    nx, ny = -(y1 - y0) / lattice.cell_lat, (x1 - x0) / lattice.cell_lon
    norm = (nx * nx + ny * ny) ** 0.5 or 1.0
    points = []
    for t in fractions:
        bulge = 0.0 if outer else rng.uniform(-EDGE_BULGE, EDGE_BULGE)
        points.append(
            (
                x0 + t * (x1 - x0) + bulge * nx / norm * lattice.cell_lon,
                y0 + t * (y1 - y0) + bulge * ny / norm * lattice.cell_lat,
            )
        )
    return points


def lattice_polygons(lattice: Lattice | None = None) -> dict[tuple[int, int], dict[str, Any]]:
    """GeoJSON polygon per cell (column, row), counter-clockwise, sharing edges with neighbours;
    by default the 100 × 100 lattice of this seed."""
    lattice = lattice or Lattice(COLUMNS, ROWS, CELL_LON, CELL_LAT, ORIGIN_LON, ORIGIN_LAT)
    columns, rows = lattice.columns, lattice.rows
    rng = random.Random(lattice.seed)
    corners = {(c, r): _corner(c, r, rng, lattice) for r in range(rows + 1) for c in range(columns + 1)}
    horizontal = {  # edge from corner (c, r) to (c + 1, r)
        (c, r): _edge_points(corners[c, r], corners[c + 1, r], r in (0, rows), rng, lattice)
        for r in range(rows + 1)
        for c in range(columns)
    }
    vertical = {  # edge from corner (c, r) to (c, r + 1)
        (c, r): _edge_points(corners[c, r], corners[c, r + 1], c in (0, columns), rng, lattice)
        for c in range(columns + 1)
        for r in range(rows)
    }

    def rounded(point: tuple[float, float]) -> list[float]:
        return [round(point[0], 6), round(point[1], 6)]

    polygons = {}
    for r in range(rows):
        for c in range(columns):
            ring = [
                corners[c, r],
                *horizontal[c, r],
                corners[c + 1, r],
                *vertical[c + 1, r],
                corners[c + 1, r + 1],
                *reversed(horizontal[c, r + 1]),
                corners[c, r + 1],
                *reversed(vertical[c, r]),
            ]
            coordinates = [rounded(p) for p in ring]
            coordinates.append(coordinates[0])
            polygons[c, r] = {"type": "Polygon", "coordinates": [coordinates]}
    return polygons
