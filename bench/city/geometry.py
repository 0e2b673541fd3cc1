"""包头's area tree: nine districts with their real names and codes, real street (街道/镇) names, and
communities and grids under them, each grid a jittered lattice cell (``bench/lattice.py``).

Each district is a lattice of its own, a rectangle placed near where the district lies (urban
districts around 40.6°N 109.8°E with cells of ~340 m, the banners and counties to the north and east
with cells of kilometres), so grids tile their district exactly (neighbours share their edges, the
district's outline is straight) and districts never overlap (checked in :func:`city_areas`).
``--scale`` shrinks each district's lattice (both sides by √scale), cell sizes unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.bulk import add_area
from bench.lattice import Lattice, lattice_polygons

CITY_CODE, CITY_NAME = "150200", "包头市"
#: (degrees of longitude, of latitude) of a cell: ~340 m urban … ~5 km pastoral, at 40–42°N
CELLS = {
    "urban": (0.004, 0.003),
    "suburban": (0.008, 0.006),
    "rural": (0.03, 0.0225),
    "pastoral": (0.06, 0.045),
}
#: cells a side of a community's block, by the district's kind
BLOCK = {"urban": 4, "suburban": 3, "rural": 2, "pastoral": 2}
GRID_KIND = {"urban": "urban", "suburban": "urban", "rural": "rural", "pastoral": "pastoral"}


@dataclass(frozen=True)
class District:
    code: str
    name: str
    kind: str  # a key of CELLS
    columns: int  # at scale 1
    rows: int
    origin_lon: float  # south-west corner
    origin_lat: float
    streets: tuple[str, ...]


DISTRICTS: tuple[District, ...] = (
    District("150203", "昆都仑区", "urban", 50, 30, 109.70, 40.60, (
        "林荫路街道", "昆北街道", "阿尔丁街道", "友谊大街街道", "少先路街道", "沼潭街道", "前进道街道",
        "鞍山道街道", "团结大街街道", "市府东路街道", "白云路街道", "昆河镇")),
    District("150204", "青山区", "urban", 50, 26, 109.91, 40.62, (
        "先锋道街道", "幸福路街道", "万青路街道", "青山路街道", "富强路街道", "自由路街道", "青福镇")),
    District("150202", "东河区", "urban", 56, 25, 110.00, 40.52, (
        "和平路街道", "西脑包街道", "东站街道", "南门外街道", "财神庙街道", "河东街道", "天骄街道",
        "铁西街道", "沙尔沁镇")),
    District("150207", "九原区", "suburban", 40, 25, 109.60, 40.40, (
        "沙河街道", "赛汗街道", "白音席勒街道", "萨如拉街道", "哈林格尔镇", "麻池镇")),
    District("150205", "石拐区", "rural", 20, 10, 110.15, 40.70, ("石拐街道", "大发街道", "五当召镇")),
    District("150206", "白云鄂博矿区", "suburban", 15, 10, 109.80, 41.70, ("通阳道街道", "矿山路街道")),
    District("150221", "土默特右旗", "rural", 35, 20, 110.30, 40.20, (
        "萨拉齐镇", "双龙镇", "美岱召镇", "沟门镇", "将军尧镇", "海子乡", "明沙淖乡")),
    District("150222", "固阳县", "rural", 25, 16, 109.70, 40.95, (
        "金山镇", "西斗铺镇", "下湿壕镇", "银号镇", "怀朔镇", "兴顺西镇")),
    District("150223", "达尔罕茂明安联合旗", "pastoral", 25, 14, 110.10, 41.40, (
        "百灵庙镇", "满都拉镇", "希拉穆仁镇", "石宝镇", "乌克忽洞镇", "明安镇", "巴音花镇", "达尔汗苏木")),
)


def scaled_lattice(district: District, scale: float, index: int) -> Lattice:
    side = math.sqrt(scale)
    cell_lon, cell_lat = CELLS[district.kind]
    return Lattice(
        columns=max(2, round(district.columns * side)), rows=max(2, round(district.rows * side)),
        cell_lon=cell_lon, cell_lat=cell_lat, origin_lon=district.origin_lon, origin_lat=district.origin_lat,
        seed=2026 + index,
    )


def _community_word(street: str) -> str:
    if street.endswith("街道"):
        return street[:-2] + "第{n}社区"
    if street.endswith("苏木"):
        return street[:-2] + "第{n}嘎查"
    return street[:-1] + "第{n}村"


def _disjoint(lattices: list[Lattice]) -> None:
    boxes = [(t.origin_lon, t.origin_lat, t.origin_lon + t.columns * t.cell_lon, t.origin_lat + t.rows * t.cell_lat)
             for t in lattices]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                raise AssertionError(f"district rectangles overlap: {a} {b}")


def city_areas(now: datetime, scale: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every ``areas`` row, parents first, ids and paths fixed (``bench.bulk.add_area``); and one
    entry per grid: its row id, district index, the lattice cell's centre (inside the grid: corners
    move by at most 0.12 of a cell, edges bulge by at most 0.08) and its area path."""
    from core.geo import bounds, validate_boundary

    rows: list[dict[str, Any]] = []
    grids: list[dict[str, Any]] = []
    city = add_area(rows, now, "city", None, CITY_CODE, CITY_NAME)
    lattices = [scaled_lattice(d, scale, i) for i, d in enumerate(DISTRICTS)]
    _disjoint(lattices)
    for index, (spec, lattice) in enumerate(zip(DISTRICTS, lattices, strict=True)):
        district = add_area(rows, now, "district", city, spec.code, spec.name)
        polygons = lattice_polygons(lattice)
        block = BLOCK[spec.kind]
        block_columns = math.ceil(lattice.columns / block)
        block_rows = math.ceil(lattice.rows / block)
        streets = min(len(spec.streets), block_rows)
        for s in range(streets):
            name = spec.streets[s]
            street = add_area(rows, now, "subdistrict", district, f"{spec.code}{s + 1:03d}", name)
            band = range(s * block_rows // streets, (s + 1) * block_rows // streets)
            n = 0
            for br in band:
                for bc in range(block_columns):
                    n += 1
                    community = add_area(rows, now, "community", street, f"{street['code']}{n:03d}",
                                         _community_word(name).format(n=n))
                    g = 0
                    for r in range(br * block, min((br + 1) * block, lattice.rows)):
                        for c in range(bc * block, min((bc + 1) * block, lattice.columns)):
                            g += 1
                            boundary = validate_boundary(polygons[c, r], max_vertices=2000)
                            min_lon, min_lat, max_lon, max_lat = bounds(boundary)
                            row = add_area(
                                rows, now, "grid", community, f"{community['code']}{g:03d}",
                                f"{community['name']}第{g}网格", grid_kind=GRID_KIND[spec.kind],
                                households=200 + (c * 7 + r * 13) % 250 if spec.kind != "pastoral" else 30 + (c + r) % 40,
                                boundary=boundary, min_lon=min_lon, min_lat=min_lat, max_lon=max_lon, max_lat=max_lat,
                            )
                            grids.append({
                                "id": row["id"], "district": index, "path": row["path"], "code": row["code"],
                                "lon": round(lattice.origin_lon + (c + 0.5) * lattice.cell_lon, 6),
                                "lat": round(lattice.origin_lat + (r + 0.5) * lattice.cell_lat, 6),
                                "cell_lon": lattice.cell_lon, "cell_lat": lattice.cell_lat,
                            })
    return rows, grids


def extents(scale: float) -> list[dict[str, Any]]:
    """Each district's rectangle (what its grids tile), for the manifest and the tiling check."""
    out = []
    for i, spec in enumerate(DISTRICTS):
        t = scaled_lattice(spec, scale, i)
        out.append({"code": spec.code, "name": spec.name, "min_lon": t.origin_lon, "min_lat": t.origin_lat,
                    "max_lon": round(t.origin_lon + t.columns * t.cell_lon, 6),
                    "max_lat": round(t.origin_lat + t.rows * t.cell_lat, 6),
                    "columns": t.columns, "rows": t.rows})
    return out
