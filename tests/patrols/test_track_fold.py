"""The track summary kept as a fold (issue 19): an upload after the stored points folds in only its
own points and gives, to the last bit, what a recount of every stored point gives; a late point,
deleted or purged points make the next upload recount. Random tracks with jumps, late and repeated
points, uploaded batch by batch through the API, are checked against a recount after every batch."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st

from core.db import utcnow
from core.extensions import db
from core.fields import written_instant
from patrols.models import Patrol
from patrols.privacy.retention import purge_track_points
from patrols.tracks.fold import EMPTY_TRACK, TrackFold, analyse_track, extend_track
from patrols.tracks.models import TrackPoint
from patrols.tracks.schemas import device_instant
from patrols.tracks.service import recount
from tests import factories
from tests.patrols.test_tracks import LAT0, LON0, STEP_LAT, track_url, walk

MAX_SPEED = 150.0


# --- unit: folding in parts is folding at once ---------------------------------------------------

T0 = datetime(2026, 12, 1, 11, tzinfo=UTC)

fixes = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=7200),  # seconds after T0 (repeats: one second apart or less)
        st.floats(min_value=40.0, max_value=40.2),
        st.floats(min_value=109.0, max_value=109.2),
    ),
    max_size=60,
    unique_by=lambda fix: fix[0],
)


@given(fixes, st.lists(st.integers(min_value=0, max_value=60), max_size=5))
def test_folding_a_track_in_parts_gives_exactly_what_folding_it_at_once_gives(raw: list[Any], cuts: list[int]) -> None:
    points = sorted((T0 + timedelta(seconds=second), lat, lon) for second, lat, lon in raw)
    whole, whole_flags = extend_track(EMPTY_TRACK, points, MAX_SPEED)
    fold, flags = EMPTY_TRACK, []
    edges = sorted({0, len(points), *(cut for cut in cuts if cut <= len(points))})
    for start, end in pairwise(edges):
        fold, part_flags = extend_track(fold, points[start:end], MAX_SPEED)
        flags += part_flags
    assert fold == whole  # distance to the last bit, jumps, anchor, latest time, count
    assert flags == whole_flags
    assert (whole.distance_m, whole_flags) == analyse_track(points, MAX_SPEED)
    assert whole.point_count == len(points) and whole.implausible_count == sum(whole_flags)
    assert whole.last_at == (points[-1][0] if points else None)


# --- through the API: random tracks, batch by batch --------------------------------------------


@pytest.fixture
def on_shift(tree) -> tuple[Any, Any, dict[str, str]]:
    shift = factories.make_shift(tree.grid_a, starts_in=timedelta(minutes=-30), hours=2)
    volunteer = factories.make_volunteer(tree.grid_a)
    return shift, factories.make_assignment(shift, volunteer), factories.headers_for(volunteer.user)


def random_track(rng: random.Random, start: datetime) -> list[dict[str, Any]]:
    """A walk with GPS jumps, fixes a second apart or less, and accuracy sometimes missing."""
    points, moment, lat = [], start, LAT0
    for _ in range(rng.randint(20, 160)):
        moment += timedelta(seconds=rng.choice((0.4, 1, 1, 5, 10, 30)), microseconds=rng.choice((0, 0, 250_000)))
        lat += STEP_LAT * rng.uniform(-0.5, 1.5)
        jump = rng.random() < 0.08
        points.append({
            "lat": round(lat + (0.05 if jump else 0.0), 7),
            "lon": round(LON0 + rng.uniform(-1e-4, 1e-4), 7),
            "accuracy_m": rng.choice((5.0, 12.5, None)),
            # Some in another offset: the same instant is the same fix.
            "time": moment.astimezone(timezone(timedelta(hours=8)) if rng.random() < 0.3 else UTC).isoformat(),
        })
    return points


def batches(rng: random.Random, points: list[dict[str, Any]], in_order: bool) -> Iterator[list[dict[str, Any]]]:
    """Consecutive batches (a phone with a signal), or any points in any order with repeats and
    copies of fixes already sent, moved elsewhere (a phone's queue after timeouts and retries)."""
    index = 0
    while index < len(points):
        size = rng.randint(1, 40)
        batch = points[index:index + size]
        index += size
        if not in_order:
            batch += rng.sample(points, min(len(points), rng.randint(0, 8)))  # late fixes and repeats
            batch += [dict(rng.choice(points), lat=LAT0 - 0.01)]  # a repeated time with other coordinates
            rng.shuffle(batch)
        yield batch


def kept(points: list[dict[str, Any]]) -> dict[datetime, tuple[datetime, float, float]]:
    """What the server keeps of ``points`` sent in this order: the first fix of each instant."""
    first: dict[datetime, tuple[datetime, float, float]] = {}
    for point in points:
        moment = datetime.fromisoformat(point["time"])
        first.setdefault(moment, (moment, point["lat"], point["lon"]))
    return first


def stored_fold(assignment_id: int) -> tuple[int, TrackFold]:
    patrol = db.session.scalars(
        sa.select(Patrol).where(Patrol.assignment_id == assignment_id).execution_options(populate_existing=True)
    ).one()
    anchor = None if patrol.track_anchor_at is None else (patrol.track_anchor_at, patrol.track_anchor_lat, patrol.track_anchor_lon)
    return patrol.id, TrackFold(
        patrol.track_point_count, patrol.track_distance_sum_m, patrol.track_implausible_count, anchor, patrol.track_last_at
    )


@pytest.mark.parametrize("in_order", [True, False], ids=["in_order", "late_and_repeated"])
@pytest.mark.parametrize("seed", range(6))
def test_every_upload_leaves_the_summary_a_recount_gives(client, on_shift, seed: int, in_order: bool) -> None:
    shift, assignment, headers = on_shift
    rng = random.Random(seed)
    points = random_track(rng, shift.starts_at - timedelta(minutes=50))
    sent: list[dict[str, Any]] = []
    for batch in batches(rng, points, in_order):
        response = client.post(track_url(assignment.id), json={"points": batch}, headers=headers)
        assert response.status_code == 200, response.get_json()
        answer = response.get_json()
        before = len(kept(sent))
        sent += batch
        expected = sorted(kept(sent).values())
        distance, flags = analyse_track(expected, MAX_SPEED)
        assert answer["stored"] == len(expected) - before
        assert (answer["track_point_count"], answer["distance_m"], answer["implausible_count"]) == (
            len(expected), round(distance, 1), sum(flags)
        )
        patrol_id, fold = stored_fold(assignment.id)
        assert fold == recount(patrol_id, MAX_SPEED)  # bit for bit, the anchor and latest time too
    assert len(expected) == len(points)
    track = client.get(track_url(assignment.id), headers=headers).get_json()
    assert (track["distance_m"], track["implausible_count"]) == (round(distance, 1), sum(flags))


class Statements:
    """SQL sent to the database while it listens (to see which uploads read the stored points back)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(statement)

    def reading_points(self) -> int:
        return sum(1 for s in self.seen if s.lstrip().upper().startswith("SELECT") and "FROM track_points" in s)


@pytest.fixture
def statements(app: Flask) -> Iterator[Statements]:
    listener = Statements()
    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    yield listener
    sa.event.remove(engine, "before_cursor_execute", listener)


def test_a_batch_after_the_stored_points_reads_none_back_and_a_late_one_recounts(client, on_shift, statements) -> None:
    shift, assignment, headers = on_shift
    points = walk(shift.starts_at - timedelta(minutes=50), 30)
    for batch in (points[10:20], points[20:], points[20:25]):  # after the stored, again after, repeats
        statements.seen.clear()
        assert client.post(track_url(assignment.id), json={"points": batch}, headers=headers).status_code == 200
        assert statements.reading_points() == 0
    statements.seen.clear()
    late = client.post(track_url(assignment.id), json={"points": points[:10]}, headers=headers).get_json()
    assert statements.reading_points() == 1
    distance, _ = analyse_track([(datetime.fromisoformat(p["time"]), p["lat"], p["lon"]) for p in points], MAX_SPEED)
    assert (late["track_point_count"], late["distance_m"]) == (30, round(distance, 1))
    # A batch straddling the latest stored point holds a late one too: recounted.
    more = walk(shift.starts_at - timedelta(minutes=50), 40)
    statements.seen.clear()
    client.post(track_url(assignment.id), json={"points": [more[15], more[35]]}, headers=headers)
    assert statements.reading_points() == 0  # more[15] is a stored time: only more[35] is new
    client.post(track_url(assignment.id), json={"points": [more[39], more[33]]}, headers=headers)
    assert statements.reading_points() == 1  # more[33] comes before more[35]
    patrol_id, fold = stored_fold(assignment.id)
    assert fold == recount(patrol_id, MAX_SPEED) and fold.point_count == 33


def test_after_deleting_ones_points_the_next_upload_counts_what_is_left(client, on_shift, statements) -> None:
    shift, assignment, headers = on_shift
    points = walk(shift.starts_at - timedelta(minutes=50), 12)
    client.post(track_url(assignment.id), json={"points": points[:8]}, headers=headers)
    assert client.delete("/api/v1/me/track-points", headers=headers).get_json()["deleted"] == 8
    patrol_id, fold = stored_fold(assignment.id)
    assert fold.point_count == 8 and fold.implausible_count is None  # the summary stays, the fold is forgotten

    statements.seen.clear()
    answer = client.post(track_url(assignment.id), json={"points": points[8:]}, headers=headers).get_json()
    assert statements.reading_points() == 1
    distance, _ = analyse_track([(datetime.fromisoformat(p["time"]), p["lat"], p["lon"]) for p in points[8:]], MAX_SPEED)
    assert (answer["stored"], answer["track_point_count"], answer["distance_m"]) == (4, 4, round(distance, 1))
    assert stored_fold(assignment.id)[1] == recount(patrol_id, MAX_SPEED)


def test_purged_points_leave_the_summary_and_forget_the_fold(client, tree, on_shift, monkeypatch, app) -> None:
    shift, assignment, headers = on_shift
    client.post(track_url(assignment.id), json={"points": walk(shift.starts_at, 5)}, headers=headers)
    summary = client.get(track_url(assignment.id), headers=headers).get_json()
    assert purge_track_points(now=utcnow() + timedelta(days=91)) == 5
    db.session.expire_all()
    patrol_id, fold = stored_fold(assignment.id)
    assert fold.implausible_count is None and fold.last_at is None and fold.anchor is None
    assert (fold.point_count, round(fold.distance_m or 0, 1)) == (5, 0.0)  # the unrounded sum goes too
    patrol = db.session.get(Patrol, patrol_id)
    assert (patrol.distance_m, patrol.track_point_count) == (summary["distance_m"], 5)
    # Were the retention lengthened, an upload would count what is stored now.
    monkeypatch.setitem(app.config, "TRACK_RETENTION_DAYS", 365)
    again = client.post(track_url(assignment.id), json={"points": walk(shift.starts_at, 2)}, headers=headers).get_json()
    assert (again["stored"], again["track_point_count"]) == (2, 2)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(TrackPoint).where(TrackPoint.patrol_id == patrol_id)) == 2


def test_a_patrol_made_by_check_in_folds_its_first_batch_without_a_recount(client, on_shift, statements) -> None:
    shift, assignment, headers = on_shift
    check_in = client.post(
        f"/api/v1/assignments/{assignment.id}/check-in",
        json={"client_id": "0b7c6c1e-8f57-4c3e-9a53-2f1d4c2b9a10", "lat": LAT0, "lon": LON0, "accuracy_m": 10.0,
              "device_time": utcnow().isoformat()},
        headers=headers,
    )
    assert check_in.status_code in (200, 201), check_in.get_json()
    statements.seen.clear()
    answer = client.post(track_url(assignment.id), json={"points": walk(shift.starts_at, 6)}, headers=headers).get_json()
    assert statements.reading_points() == 0 and answer["track_point_count"] == 6
    patrol_id, fold = stored_fold(assignment.id)
    assert fold == recount(patrol_id, MAX_SPEED)


# --- unit: the fast path for device times ------------------------------------------------------

PHONE_TIMES = st.builds(
    lambda moment, offset, digits, zulu: (
        moment.strftime("%Y-%m-%dT%H:%M:%S")
        + ("." + f"{moment.microsecond:06d}"[:digits] if digits else "")
        + ("Z" if zulu else f"{'+' if offset >= 0 else '-'}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}")
    ),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1)),
    st.integers(min_value=-1500, max_value=1500),
    st.integers(min_value=0, max_value=9),
    st.booleans(),
)


@given(PHONE_TIMES, st.integers(min_value=0, max_value=40), st.sampled_from("0912:-+.TtZz ٣x\x00"))
def test_device_times_parse_as_the_schema_parses_them(text: str, where: int, char: str) -> None:
    assert device_instant(text) == written_instant(text)
    mangled = text[:where] + char + text[where + 1:]  # a character replaced or appended
    assert device_instant(mangled) == written_instant(mangled)
    moment = device_instant(mangled)
    assert moment is None or moment.utcoffset() == written_instant(mangled).utcoffset()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-07T09:00:00+08:00", "2026-12-07T09:00:00Z", "2026-12-07T09:00:00z", "2026-12-07t09:00:00+08:00",
        "2026-12-07T09:00:00.5-03:30", "2026-12-07T09:00:00.1234567+08:00", "2026-12-07T09:00:00.+08:00",
        "2026-12-07T09:00:00+24:00", "2026-02-30T09:00:00+08:00", "2026-12-07T24:00:00+08:00",
        "2026-12-07T09:00:00+0800", "2026-12-07 09:00:00+08:00", "2026-12-07T09:00+08:00", "2026-12-07T09:00:00",
        "２０２６-12-07T09:00:00+08:00", "2026-12-07T09:00:00+08:00\n", "20261207T090000+08:00",
    ],
)
def test_device_time_edges_parse_as_the_schema_parses_them(text: str) -> None:
    assert device_instant(text) == written_instant(text)
    if written_instant(text) is not None:
        assert device_instant(text).utcoffset() == written_instant(text).utcoffset()  # type: ignore[union-attr]
