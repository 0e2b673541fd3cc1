"""Phone writes of a patrol raced with real threads and commits (SQLite and PostgreSQL).

Issue 4: every write here must survive being queued on the phone, retried and delivered out of
order, and concurrent requests must never double-count. Each test releases its requests together
from separate threads and clients, then checks every answer and the exact end state in the database
(and, for photos, on disk).
"""

from __future__ import annotations

import hashlib
import io
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from core.db import utcnow
from core.errors import PROBLEM_MIMETYPE
from core.extensions import db
from core.idempotency import REPLAYED_HEADER
from patrols import signals
from patrols.checkpoints import service as checkpoints
from patrols.checkpoints.models import Checkpoint, CheckpointScan
from patrols.models import Patrol
from patrols.reports.models import MAX_PHOTOS, Report, ReportEvent, ReportPhoto
from patrols.tracks.fold import analyse_track
from patrols.tracks.models import TrackPoint
from patrols.tracks.service import recount
from tests import factories, races

pytestmark = pytest.mark.committing

API = "/api/v1"
LAT0, LON0 = 40.655, 109.845  # inside the grid made by setup()
STEP_LAT = 0.0001  # about 11 m north per fix
JUMPS = {250: 0.05, 251: 0.05, 700: -0.04}  # index → degrees of latitude off the walk (GPS jumps)


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    mimetype: str
    replayed: bool


Send = Callable[[FlaskClient], Any]


def run_at_once(app: Flask, sends: list[Send]) -> list[Answer]:
    """Run each send from its own thread and test client, all released by one barrier."""
    barrier = races.barrier(len(sends))
    answers: list[Answer | None] = [None] * len(sends)
    failures: list[BaseException] = []

    def run(index: int, send: Send) -> None:
        client = app.test_client()
        try:
            barrier.wait()
            response = send(client)
            answers[index] = Answer(
                response.status_code,
                response.get_json(silent=True),
                response.mimetype,
                response.headers.get(REPLAYED_HEADER) == "true",
            )
        except BaseException as error:  # surfaced in the test's thread below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(i, send), daemon=True) for i, send in enumerate(sends)]
    for thread in threads:
        thread.start()
    races.join_all(threads)
    if failures:
        raise failures[0]
    return answers  # type: ignore[return-value]


def post_json(path: str, body: dict[str, Any], headers: dict[str, str]) -> Send:
    return lambda client: client.post(path, json=body, headers=headers)


@dataclass(frozen=True)
class Setup:
    assignment_id: int
    headers: dict[str, str]
    # A second volunteer on the same shift: the single-upload reference for tracks.
    reference_assignment_id: int
    reference_headers: dict[str, str]
    organiser_headers: dict[str, str]
    grid_id: int
    shift_starts_at: datetime
    checkpoint_id: int
    qr_payload: str


def setup(app: Flask) -> Setup:
    """A running shift in a grid with one checkpoint and two volunteers' places, committed."""
    with app.app_context():
        _city, _district, _subdistrict, community, grid = factories.make_branch()
        shift = factories.make_shift(grid, starts_in=timedelta(minutes=-5))
        volunteer, other = factories.make_volunteer(grid), factories.make_volunteer(grid)
        assignment = factories.make_assignment(shift, volunteer)
        reference = factories.make_assignment(shift, other)
        checkpoint = Checkpoint(grid_id=grid.id, name="东门", lat=LAT0, lon=LON0, active=True, qr_version=1)
        db.session.add(checkpoint)
        db.session.flush()
        made = Setup(
            assignment_id=assignment.id,
            headers=factories.headers_for(volunteer.user),
            reference_assignment_id=reference.id,
            reference_headers=factories.headers_for(other.user),
            organiser_headers=factories.headers_for(factories.make_user("organiser", community)),
            grid_id=grid.id,
            shift_starts_at=shift.starts_at,
            checkpoint_id=checkpoint.id,
            qr_payload=checkpoints.qr_payload(checkpoint),
        )
        db.session.commit()
        db.session.remove()
    return made


def read(app: Flask, query: Callable[[], Any]) -> Any:
    """Run ``query`` in a fresh session, after every request above has committed."""
    with app.app_context():
        try:
            result = query()
            db.session.expunge_all()
            return result
        finally:
            db.session.remove()


def count(model: Any, *where: Any) -> Callable[[], int]:
    return lambda: db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    assert answer.mimetype == PROBLEM_MIMETYPE and answer.body["code"] == code, answer


# --- tracks ------------------------------------------------------------------------------------


def walk(made: Setup, number: int = 1000) -> list[dict[str, Any]]:
    """``number`` fixes 2 s apart walking north before the shift's start (inside its slack), with
    a few GPS jumps, so the distance depends on every point being in its place."""
    start = made.shift_starts_at - timedelta(minutes=40)
    return [
        {
            "lat": round(LAT0 + i * STEP_LAT / 5 + JUMPS.get(i, 0.0), 7),
            "lon": LON0,
            "accuracy_m": 8.0,
            "time": (start + timedelta(seconds=2 * i)).isoformat(),
        }
        for i in range(number)
    ]


def shuffled(points: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The order a phone's queue may deliver them in."""
    copy = list(points)
    random.Random(seed).shuffle(copy)
    return copy


def track_url(assignment_id: int) -> str:
    return f"{API}/assignments/{assignment_id}/track"


def reference_upload(app: Flask, made: Setup, points: list[dict[str, Any]]) -> dict[str, Any]:
    """What one upload of all ``points`` gives, on the other volunteer's patrol."""
    response = app.test_client().post(
        track_url(made.reference_assignment_id), json={"points": points}, headers=made.reference_headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def assert_track_is(app: Flask, made: Setup, points: list[dict[str, Any]], reference: dict[str, Any]) -> None:
    """Each point stored once, and the patrol's summary and GeoJSON equal the single upload's."""
    assert reference["track_point_count"] == len(points) and reference["implausible_count"] == len(JUMPS)
    assert reference["distance_m"] > 2000  # about 2 m a fix, jumps left out
    patrol = read(app, lambda: db.session.scalars(
        sa.select(Patrol).where(Patrol.assignment_id == made.assignment_id)
    ).one())
    stored = read(app, lambda: db.session.execute(
        sa.select(TrackPoint.device_at, TrackPoint.lat).where(TrackPoint.patrol_id == patrol.id)
    ).all())
    assert len(stored) == len(points)
    assert sorted(stored) == sorted(
        (datetime.fromisoformat(point["time"]), point["lat"]) for point in points
    )
    assert patrol.track_point_count == len(points)
    assert patrol.distance_m == reference["distance_m"]
    geojson = app.test_client().get(track_url(made.assignment_id), headers=made.headers).get_json()
    line = geojson["features"][0]
    assert line["geometry"]["type"] == "LineString"
    assert line["properties"]["distance_m"] == geojson["distance_m"] == reference["distance_m"]
    assert geojson["track_point_count"] == len(points)
    assert geojson["implausible_count"] == reference["implausible_count"]
    assert len(geojson["features"]) == 1 + len(points)


@pytest.mark.parametrize("keys", ["none", "same", "different"])
def test_the_same_batch_sent_10_times_at_once_is_stored_once(app: Flask, keys: str) -> None:
    made = setup(app)
    points = walk(made)
    reference = reference_upload(app, made, points)
    sends = []
    for index in range(10):
        headers = dict(made.headers)
        if keys == "same":
            headers["Idempotency-Key"] = "track-batch-1"
        elif keys == "different":
            headers["Idempotency-Key"] = f"track-batch-{index}"
        # One key is one request, so it comes with the same body; otherwise each retry arrives in
        # the order of its own queue.
        batch = points if keys == "same" else shuffled(points, seed=index)
        sends.append(post_json(track_url(made.assignment_id), {"points": batch}, headers))

    answers = run_at_once(app, sends)

    assert [answer.status for answer in answers] == [200] * 10, answers
    # Exactly one request stored the batch; every other one found all of it already there.
    stored = sorted(answer.body["stored"] for answer in answers)
    assert stored == ([1000] * 10 if keys == "same" else [0] * 9 + [1000])
    for answer in answers:
        assert answer.body["received"] == 1000
        assert answer.body["stored"] + answer.body["duplicates"] == 1000
        assert answer.body["track_point_count"] == 1000
        assert answer.body["distance_m"] == reference["distance_m"]
    if keys == "same":
        # One ran, nine are replays of its answer.
        assert sum(not answer.replayed for answer in answers) == 1
        assert len({repr(answer.body) for answer in answers}) == 1
    else:
        assert not any(answer.replayed for answer in answers)
    assert_track_is(app, made, points, reference)


def start_patrol(app: Flask, made: Setup, point: dict[str, Any]) -> None:
    """The patrol row exists before the race (a batch came earlier), so nothing serialises the
    racing uploads but the upload itself."""
    response = app.test_client().post(track_url(made.assignment_id), json={"points": [point]}, headers=made.headers)
    assert response.status_code == 200 and response.get_json()["stored"] == 1, response.get_json()


@pytest.mark.parametrize("attempt", range(3))
def test_overlapping_batches_at_once_store_1000_distinct_points(app: Flask, attempt: int) -> None:
    made = setup(app)
    points = walk(made)
    reference = reference_upload(app, made, points)
    start_patrol(app, made, points[0])
    first, second = points[:600], points[300:]
    # Each batch three times, in a different order each time (a phone's retries after timeouts).
    batches = [shuffled(batch, seed=10 * attempt + i) for i in range(3) for batch in (first, second)]

    answers = run_at_once(
        app, [post_json(track_url(made.assignment_id), {"points": batch}, made.headers) for batch in batches]
    )

    assert [answer.status for answer in answers] == [200] * len(batches), answers
    # Between them the six requests stored every point exactly once (point 0 was there before).
    assert sum(answer.body["stored"] for answer in answers) == 999
    for batch, answer in zip(batches, answers, strict=True):
        assert answer.body["received"] == len(batch)
        assert answer.body["stored"] + answer.body["duplicates"] == len(batch)
        assert len(batch) <= answer.body["track_point_count"] <= 1000
    # Whichever ran last saw the whole track, and said so.
    assert max(answer.body["track_point_count"] for answer in answers) == 1000
    assert reference["distance_m"] in {answer.body["distance_m"] for answer in answers}
    assert_track_is(app, made, points, reference)


def test_ten_disjoint_batches_at_once_each_count_the_others(app: Flask) -> None:
    """A phone flushing its queue in parallel: no point in common, so only the per-patrol lock makes
    each recount see the batches that committed before it."""
    made = setup(app)
    points = walk(made)
    reference = reference_upload(app, made, points)
    start_patrol(app, made, points[0])
    batches = [shuffled(points[index::10], seed=index) for index in range(10)]

    answers = run_at_once(
        app, [post_json(track_url(made.assignment_id), {"points": batch}, made.headers) for batch in batches]
    )

    assert [answer.status for answer in answers] == [200] * 10, answers
    assert sum(answer.body["stored"] for answer in answers) == 999
    # Each request counted the points of every batch that ran before it, so the k-th holds k
    # batches of 100 (plus point 0 until its own batch, which holds it, has run).
    counts = sorted(answer.body["track_point_count"] for answer in answers)
    assert [n // 100 for n in counts] == list(range(1, 11)) and counts[-1] == 1000
    assert_track_is(app, made, points, reference)


def assert_fold_is_a_recount(app: Flask, made: Setup) -> None:
    """The fold kept on the patrol row is, bit for bit, a recount of the points stored (or unknown)."""
    def check() -> None:
        patrol = db.session.scalars(sa.select(Patrol).where(Patrol.assignment_id == made.assignment_id)).one()
        if patrol.track_implausible_count is None:
            return
        fold = recount(patrol.id, app.config["TRACK_MAX_SPEED_KMH"])
        anchor = fold.anchor or (None, None, None)
        assert (
            patrol.track_point_count, patrol.track_distance_sum_m, patrol.track_implausible_count,
            patrol.track_anchor_at, patrol.track_anchor_lat, patrol.track_anchor_lon, patrol.track_last_at,
        ) == (fold.point_count, fold.distance_m, fold.implausible_count, *anchor, fold.last_at)
        assert patrol.distance_m == round(fold.distance_m, 1)

    read(app, check)


@pytest.mark.parametrize("attempt", range(3))
def test_consecutive_batches_at_once_fold_into_the_summary_of_one_upload(app: Flask, attempt: int) -> None:
    """A phone flushing its queue in time order over parallel connections: a batch landing after
    the later ones extends nothing it should not, whichever order the locks give them."""
    made = setup(app)
    points = walk(made)
    reference = reference_upload(app, made, points)
    start_patrol(app, made, points[0])
    batches = [points[1 + 111 * index:1 + 111 * (index + 1)] for index in range(9)]

    answers = run_at_once(
        app, [post_json(track_url(made.assignment_id), {"points": batch}, made.headers) for batch in batches]
    )

    assert [answer.status for answer in answers] == [200] * 9, answers
    assert [answer.body["stored"] for answer in answers] == [len(batch) for batch in batches]
    # Each counted the batches before it (equal in size, whichever they were) and itself.
    assert sorted(answer.body["track_point_count"] for answer in answers) == [1 + 111 * k for k in range(1, 10)]
    assert_track_is(app, made, points, reference)
    assert_fold_is_a_recount(app, made)


def test_a_deletion_racing_uploads_leaves_the_fold_a_recount_or_unknown(app: Flask) -> None:
    made = setup(app)
    points = walk(made)
    start_patrol(app, made, points[0])
    first = app.test_client().post(track_url(made.assignment_id), json={"points": points[1:300]}, headers=made.headers)
    assert first.status_code == 200
    later = [points[300 + 100 * index:400 + 100 * index] for index in range(5)]
    sends = [post_json(track_url(made.assignment_id), {"points": batch}, made.headers) for batch in later]
    sends.append(lambda client: client.delete(f"{API}/me/track-points", headers=made.headers))

    answers = run_at_once(app, sends)

    assert [answer.status for answer in answers] == [200] * 6, answers
    assert_fold_is_a_recount(app, made)
    # Whatever survived the deletion, the next upload answers for exactly what is stored.
    last = app.test_client().post(track_url(made.assignment_id), json={"points": points[800:]}, headers=made.headers)
    assert last.status_code == 200
    stored = read(app, lambda: db.session.execute(
        sa.select(TrackPoint.device_at, TrackPoint.lat, TrackPoint.lon)
        .join(Patrol, Patrol.id == TrackPoint.patrol_id)
        .where(Patrol.assignment_id == made.assignment_id)
        .order_by(TrackPoint.device_at)
    ).tuples().all())
    distance, flags = analyse_track(stored, app.config["TRACK_MAX_SPEED_KMH"])
    body = last.get_json()
    assert (body["track_point_count"], body["distance_m"], body["implausible_count"]) == (
        len(stored), round(distance, 1), sum(flags)
    )
    assert len(stored) >= 200  # the last batch at least
    assert_fold_is_a_recount(app, made)


# --- checkpoint scans --------------------------------------------------------------------------


def scan_body(made: Setup, client_id: str) -> dict[str, Any]:
    return {
        "client_id": client_id,
        "payload": made.qr_payload,
        "lat": LAT0,
        "lon": LON0,
        "accuracy_m": 10.0,
        "device_time": (utcnow() - timedelta(minutes=2)).isoformat(),
    }


def scans_url(assignment_id: int) -> str:
    return f"{API}/assignments/{assignment_id}/checkpoint-scans"


def stored_scans(app: Flask, made: Setup) -> list[CheckpointScan]:
    return read(app, lambda: list(db.session.scalars(
        sa.select(CheckpointScan)
        .join(Patrol, Patrol.id == CheckpointScan.patrol_id)
        .where(Patrol.assignment_id == made.assignment_id)
        .order_by(CheckpointScan.id)
    )))


def summary(app: Flask, made: Setup) -> dict[str, Any]:
    response = app.test_client().get(f"{API}/assignments/{made.assignment_id}/patrol/summary", headers=made.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("same_key", [False, True], ids=["client_id_only", "same_idempotency_key"])
def test_the_same_scan_sent_10_times_at_once_is_recorded_once(app: Flask, same_key: bool) -> None:
    made = setup(app)
    body = scan_body(made, str(uuid.uuid4()))
    headers = {**made.headers, "Idempotency-Key": "scan-" + body["client_id"]} if same_key else made.headers

    answers = run_at_once(app, [post_json(scans_url(made.assignment_id), body, headers)] * 10)

    assert [answer.status for answer in answers] == [201] * 10, answers
    assert {answer.body["id"] for answer in answers} == {stored.id for stored in stored_scans(app, made)}
    [scan] = stored_scans(app, made)
    assert scan.client_id == body["client_id"] and scan.checkpoint_id == made.checkpoint_id
    assert {answer.body["client_id"] for answer in answers} == {body["client_id"]}
    assert read(app, count(Patrol, Patrol.assignment_id == made.assignment_id)) == 1
    [visited] = summary(app, made)["visited"]
    assert visited["checkpoint_id"] == made.checkpoint_id and visited["scans"] == 1


def test_two_scans_of_one_checkpoint_each_sent_5_times_at_once_are_two_scans(app: Flask) -> None:
    """Scans are kept per client_id, not per checkpoint: passing a gate twice is two visits."""
    made = setup(app)
    bodies = [scan_body(made, str(uuid.uuid4())) for _ in range(2)]

    answers = run_at_once(
        app, [post_json(scans_url(made.assignment_id), body, made.headers) for body in bodies * 5]
    )

    assert [answer.status for answer in answers] == [201] * 10, answers
    scans = stored_scans(app, made)
    assert sorted(scan.client_id for scan in scans) == sorted(body["client_id"] for body in bodies)
    assert len({scan.patrol_id for scan in scans}) == 1
    by_client_id = {scan.client_id: scan.id for scan in scans}
    for answer in answers:
        assert answer.body["id"] == by_client_id[answer.body["client_id"]]
    result = summary(app, made)
    assert [(entry["checkpoint_id"], entry["scans"]) for entry in result["visited"]] == [(made.checkpoint_id, 2)]
    assert result["missed"] == []


# --- reports -----------------------------------------------------------------------------------


def report_body(client_id: str | None = None) -> dict[str, Any]:
    return {
        "client_id": client_id or str(uuid.uuid4()),
        "category": "safety_hazard",
        "level": "orange",
        "description": "井盖缺失",
        "lat": LAT0,
        "lon": LON0,
        "accuracy_m": 8.0,
        "device_time": (utcnow() - timedelta(minutes=3)).isoformat(),
    }


@pytest.fixture
def filed() -> Iterator[list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def receiver(sender: str, **kwargs: Any) -> None:
        sent.append(kwargs)

    signals.report_filed.connect(receiver)
    yield sent
    signals.report_filed.disconnect(receiver)


@pytest.mark.parametrize("same_key", [False, True], ids=["client_id_only", "same_idempotency_key"])
def test_the_same_report_filed_10_times_at_once_is_one_report(app: Flask, filed, same_key: bool) -> None:
    made = setup(app)
    body = report_body()
    headers = {**made.headers, "Idempotency-Key": "report-" + body["client_id"]} if same_key else made.headers

    answers = run_at_once(app, [post_json(f"{API}/reports", body, headers)] * 10)

    assert [answer.status for answer in answers] == [201] * 10, answers
    reports = read(app, lambda: list(db.session.scalars(sa.select(Report))))
    [report] = reports
    assert report.client_id == body["client_id"] and report.grid_id == made.grid_id
    assert {answer.body["id"] for answer in answers} == {report.id}
    assert all([event["action"] for event in answer.body["history"]] == ["filed"] for answer in answers)
    assert read(app, count(ReportEvent, ReportEvent.report_id == report.id)) == 1
    assert filed == [
        {
            "report_id": report.id,
            "grid_id": made.grid_id,
            "level": "orange",
            "category": "safety_hazard",
            "volunteer_id": report.volunteer_id,
        }
    ]


def files_in(folder: Path) -> list[Path]:
    """Every file left under ``folder``, temporary upload files included."""
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 40, 200 - shade)).save(out, format="JPEG")
    return out.getvalue()


def post_photo(report_id: int, client_id: str, data: bytes, headers: dict[str, str]) -> Send:
    """The upload encoded once, so every send of it is byte for byte the same request, as when an
    HTTP library resends a request it built once (an Idempotency-Key replay matches the body)."""
    boundary, body = encode_multipart(
        {"client_id": client_id, "file": FileStorage(io.BytesIO(data), "photo.jpg", content_type="image/jpeg")},
        boundary="shouwang-" + client_id,
    )
    return lambda client: client.post(
        f"{API}/reports/{report_id}/photos",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=headers,
    )


def file_one_report(app: Flask, made: Setup) -> int:
    response = app.test_client().post(f"{API}/reports", json=report_body(), headers=made.headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def assert_photos_match_files(app: Flask, report_id: int, folder: Path) -> list[ReportPhoto]:
    """One file per photo row, holding that row's bytes, and the report's count equal to both."""
    photos = read(app, lambda: list(db.session.scalars(
        sa.select(ReportPhoto).where(ReportPhoto.report_id == report_id).order_by(ReportPhoto.position)
    )))
    files = files_in(folder)
    assert sorted(str(path.relative_to(folder)) for path in files) == sorted(p.storage_key for p in photos)
    for photo in photos:
        assert hashlib.sha256((folder / photo.storage_key).read_bytes()).hexdigest() == photo.sha256
    assert [photo.position for photo in photos] == list(range(1, len(photos) + 1))
    assert read(app, lambda: db.session.get(Report, report_id).photo_count) == len(photos)
    return photos


@pytest.mark.parametrize("same_key", [False, True], ids=["client_id_only", "same_idempotency_key"])
def test_the_same_photo_sent_8_times_at_once_is_stored_once(
    app: Flask, photo_dir: Path, same_key: bool
) -> None:
    made = setup(app)
    report_id = file_one_report(app, made)
    client_id = str(uuid.uuid4())
    headers = {**made.headers, "Idempotency-Key": "photo-" + client_id} if same_key else made.headers

    answers = run_at_once(app, [post_photo(report_id, client_id, jpeg(90), headers)] * 8)

    assert [answer.status for answer in answers] == [201] * 8, answers
    [photo] = assert_photos_match_files(app, report_id, photo_dir)
    assert photo.client_id == client_id
    assert {answer.body["id"] for answer in answers} == {photo.id}
    assert {answer.body["position"] for answer in answers} == {1}


def test_ten_different_photos_at_once_accept_exactly_six(app: Flask, photo_dir: Path) -> None:
    made = setup(app)
    report_id = file_one_report(app, made)
    client_ids = [str(uuid.uuid4()) for _ in range(10)]

    answers = run_at_once(
        app,
        [post_photo(report_id, client_id, jpeg(20 * i), made.headers) for i, client_id in enumerate(client_ids)],
    )

    accepted = [(client_id, answer) for client_id, answer in zip(client_ids, answers, strict=True) if answer.status == 201]
    refused = [answer for answer in answers if answer.status != 201]
    assert len(accepted) == MAX_PHOTOS, answers
    for answer in refused:
        assert_problem(answer, 409, "too_many_photos")
    photos = assert_photos_match_files(app, report_id, photo_dir)
    assert {photo.client_id: photo.id for photo in photos} == {
        client_id: answer.body["id"] for client_id, answer in accepted
    }
    assert len(photos) == len(files_in(photo_dir)) == MAX_PHOTOS


def test_a_text_field_in_place_of_the_photo_file_is_422_not_500(app: Flask, photo_dir: Path) -> None:
    """Found while writing these races: a ``file`` form field that is text, not a file part."""
    made = setup(app)
    report_id = file_one_report(app, made)
    response = app.test_client().post(
        f"{API}/reports/{report_id}/photos",
        data={"client_id": str(uuid.uuid4()), "file": "IMG_0001.jpg"},
        content_type="multipart/form-data",
        headers=made.headers,
    )
    assert response.status_code == 422 and response.mimetype == PROBLEM_MIMETYPE, response.get_json()
    assert response.get_json()["code"] == "validation_failed" and "file" in response.get_json()["errors"]
    assert read(app, count(ReportPhoto)) == 0 and files_in(photo_dir) == []
