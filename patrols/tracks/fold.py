"""The distance walked and the GPS jumps of a track, as a fold over its points in time order.

Pure arithmetic, no database: ``service.py`` keeps where the fold stands on the patrol row and
carries it on over each batch, or recounts the stored points when a batch reaches back in time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.geo import haversine_m

#: A position in time: (device time, lat, lon).
Fix = tuple[datetime, float, float]


@dataclass(frozen=True, slots=True)
class TrackFold:
    """Where the fold over a track's points (in time order) stands after its last point.

    ``distance_m`` is unrounded (the patrol shows it to 0.1 m), ``anchor`` is the last plausible
    point, ``last_at`` the latest device time. Continuing from here with later points gives
    exactly what folding every point from the start gives: the same additions in the same order.
    """

    point_count: int = 0
    distance_m: float = 0.0
    implausible_count: int = 0
    anchor: Fix | None = None
    last_at: datetime | None = None


EMPTY_TRACK = TrackFold()


def extend_track(fold: TrackFold, points: Iterable[Fix], max_speed_kmh: float) -> tuple[TrackFold, list[bool]]:
    """``fold`` carried on over ``points`` (time, lat, lon; sorted by time, all later than
    ``fold.last_at``), and a jump flag per point.

    Each point is compared with the last plausible one, not simply the previous point, so one
    stray fix costs one point rather than two bogus legs. Points one second apart or less are
    compared as one second apart (device clocks tick coarsely). Known limit: when the very first
    fix is the stray one, the points after it are flagged until one is plausible from it.
    """
    max_speed = max_speed_kmh / 3.6
    distance, anchor, last_at = fold.distance_m, fold.anchor, fold.last_at
    flags: list[bool] = []
    jump = flags.append
    for point in points:
        last_at = point[0]
        if anchor is None:
            anchor = point
            jump(False)
            continue
        leg = haversine_m(anchor[1], anchor[2], point[1], point[2])
        seconds = max((point[0] - anchor[0]).total_seconds(), 1.0)
        if leg / seconds > max_speed:
            jump(True)
            continue
        distance += leg
        anchor = point
        jump(False)
    jumps = sum(flags)
    return (
        TrackFold(fold.point_count + len(flags), distance, fold.implausible_count + jumps, anchor, last_at),
        flags,
    )


def analyse_track(points: Sequence[Fix], max_speed_kmh: float) -> tuple[float, list[bool]]:
    """Distance in metres over ``points`` (time, lat, lon; sorted by time) and a jump flag per point
    (:func:`extend_track` from the start)."""
    fold, flags = extend_track(EMPTY_TRACK, points, max_speed_kmh)
    return fold.distance_m, flags
