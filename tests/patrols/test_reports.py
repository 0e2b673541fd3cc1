"""Reports (事件上报): filing, photos (checked, stripped, stored locally or in S3), workflow, lists."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from flask import Flask
from moto.server import ThreadedMotoServer
from PIL import Image

from accounts.models import User
from core import photos
from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from patrols import signals
from patrols.reports.models import Report, ReportPhoto
from tests import factories
from tests.conftest import Tree
from tests.factories import headers_for
from tests.problems import assert_problem

INSIDE_A = {"lat": 40.655, "lon": 109.845}  # inside tree.grid_a
GPS_IFD = 0x8825
MAKE_TAG = 0x010F


# Photos in the test's own folder, local storage (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("photo_dir")


def stored_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


@pytest.fixture
def people(tree: Tree) -> dict[str, Any]:
    return {
        "volunteer": factories.make_volunteer(tree.grid_a),
        "other_volunteer": factories.make_volunteer(tree.grid_a_east),
        "organiser": factories.make_user("organiser", tree.community_a),
        "organiser_a2": factories.make_user("organiser", tree.community_a2),
        "organiser_b": factories.make_user("organiser", tree.community_b),
        "staff_a": factories.make_user("staff", tree.district_a),
        "staff_b": factories.make_user("staff", tree.district_b),
    }


def report_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "client_id": str(uuid.uuid4()),
        "category": "safety_hazard",
        "level": "yellow",
        "description": "井盖缺失",
        **INSIDE_A,
        "accuracy_m": 8.0,
        "device_time": (utcnow() - timedelta(minutes=3)).isoformat(),
    }
    body.update(overrides)
    return body


def post_report(client: Any, user: User, **overrides: Any) -> Any:
    return client.post("/api/v1/reports", json=report_body(**overrides), headers=headers_for(user))


@contextmanager
def captured(signal: Any) -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    with signal.connected_to(receiver):
        yield received


def jpeg_with_gps(size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[MAKE_TAG] = "SpyPhone"
    exif[0x0112] = 6  # rotated: the stored photo must come out upright
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (40.0, 39.0, 18.0), 3: "E", 4: (109.0, 50.0, 42.0)})
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)  # the fixture really has GPS
    return data


def png_bytes(mode: str = "RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (20, 10)).save(out, format="PNG")
    return out.getvalue()


def gif_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="GIF")
    return out.getvalue()


def upload(client: Any, user: User, report_id: int, data: bytes, *, name: str = "p.jpg", client_id: str | None = None, **headers: str) -> Any:
    return client.post(
        f"/api/v1/reports/{report_id}/photos",
        data={"client_id": client_id or str(uuid.uuid4()), "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        headers=headers_for(user, **headers),
    )


def report_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Report))


# --- filing --------------------------------------------------------------------------------------


def test_volunteer_files_a_report_located_in_its_grid(client: Any, tree: Tree, people: dict[str, Any]) -> None:
    with captured(signals.report_filed) as filed:
        response = post_report(client, people["volunteer"].user, level="red", category="dispute")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["grid_id"] == tree.grid_a.id and body["status"] == "open"
    assert body["level"] == "red" and body["category"] == "dispute"
    assert body["flags"] == [] and body["photos"] == [] and body["received_at"].endswith("+00:00")
    assert [event["action"] for event in body["history"]] == ["filed"]
    assert filed == [
        {
            "report_id": body["id"],
            "grid_id": tree.grid_a.id,
            "level": "red",
            "category": "dispute",
            "volunteer_id": people["volunteer"].id,
        }
    ]


def test_every_level_signals_with_its_level(client: Any, people: dict[str, Any]) -> None:
    with captured(signals.report_filed) as filed:
        for level in ("red", "orange", "yellow", "green"):
            assert post_report(client, people["volunteer"].user, level=level).status_code == 201
    assert [entry["level"] for entry in filed] == ["red", "orange", "yellow", "green"]


def test_same_client_id_returns_the_first_report_once(client: Any, people: dict[str, Any]) -> None:
    body = report_body(level="orange")
    user = people["volunteer"].user
    with captured(signals.report_filed) as filed:
        first = client.post("/api/v1/reports", json=body, headers=headers_for(user, **{"Idempotency-Key": "a"}))
        again = client.post("/api/v1/reports", json=body, headers=headers_for(user, **{"Idempotency-Key": "b"}))
        bare = client.post("/api/v1/reports", json={**body, "description": "changed"}, headers=headers_for(user))
    assert first.status_code == again.status_code == bare.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"] == bare.get_json()["id"]
    assert bare.get_json()["description"] == "井盖缺失"
    assert len(filed) == 1 and report_count() == 1


def test_client_id_of_another_volunteer_is_409(client: Any, people: dict[str, Any]) -> None:
    body = report_body()
    assert client.post("/api/v1/reports", json=body, headers=headers_for(people["volunteer"].user)).status_code == 201
    response = client.post("/api/v1/reports", json=body, headers=headers_for(people["other_volunteer"].user))
    assert_problem(response, 409, "client_id_taken")
    assert report_count() == 1


def test_grid_id_of_my_city_is_taken_and_another_city_refused(client: Any, tree: Tree, people: dict[str, Any]) -> None:
    user = people["volunteer"].user
    response = post_report(client, user, grid_id=tree.grid_b.id)
    assert response.status_code == 201 and response.get_json()["grid_id"] == tree.grid_b.id
    other_city = factories.make_area(AreaLevel.CITY, name="乌海市")
    district = factories.make_area(AreaLevel.DISTRICT, other_city)
    sub = factories.make_area(AreaLevel.SUBDISTRICT, district)
    community = factories.make_area(AreaLevel.COMMUNITY, sub)
    far_grid = factories.make_area(AreaLevel.GRID, community, boundary=factories.square(106.8, 39.6))
    body = assert_problem(post_report(client, user, grid_id=far_grid.id), 422, "validation_failed")
    assert "grid_id" in body["errors"]
    body = assert_problem(post_report(client, user, grid_id=tree.community_a.id), 422, "validation_failed")
    assert "grid_id" in body["errors"]
    assert report_count() == 1


def test_position_in_no_grid_uses_my_assignment_or_is_refused(client: Any, tree: Tree, people: dict[str, Any]) -> None:
    volunteer = people["volunteer"]
    nowhere = {"lat": 10.0, "lon": 10.0}
    body = assert_problem(post_report(client, volunteer.user, **nowhere), 422, "validation_failed")
    assert set(body["errors"]) == {"lat", "lon"}
    shift = factories.make_shift(tree.grid_a_east, starts_in=timedelta(minutes=-30))
    assignment = factories.make_assignment(shift, volunteer)
    response = post_report(client, volunteer.user, assignment_id=assignment.id, **nowhere)
    assert response.status_code == 201
    assert response.get_json()["grid_id"] == tree.grid_a_east.id
    assert response.get_json()["assignment_id"] == assignment.id


def test_another_volunteers_assignment_is_404(client: Any, tree: Tree, people: dict[str, Any]) -> None:
    shift = factories.make_shift(tree.grid_a)
    theirs = factories.make_assignment(shift, people["other_volunteer"])
    response = post_report(client, people["volunteer"].user, assignment_id=theirs.id)
    assert_problem(response, 404, "assignment_not_found")
    assert report_count() == 0


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"lat": 91}, "lat"),
        ({"lon": -180.5}, "lon"),
        ({"level": "purple"}, "level"),
        ({"category": "gossip"}, "category"),
        ({"description": "  "}, "description"),
        ({"client_id": "not-a-uuid"}, "client_id"),
        ({"device_time": "2026-01-01T10:00:00"}, "device_time"),
        ({"accuracy_m": -1}, "accuracy_m"),
        ({"reporter_id": 5}, "reporter_id"),
    ],
)
def test_bad_input_is_422_and_writes_nothing(client: Any, people: dict[str, Any], overrides: dict[str, Any], field: str) -> None:
    body = assert_problem(post_report(client, people["volunteer"].user, **overrides), 422, "validation_failed")
    assert field in body["errors"]
    assert report_count() == 0


def test_future_device_time_is_flagged_not_refused(client: Any, people: dict[str, Any]) -> None:
    response = post_report(client, people["volunteer"].user, device_time=(utcnow() + timedelta(hours=2)).isoformat())
    assert response.status_code == 201 and response.get_json()["flags"] == ["device_time_future"]


def test_only_active_volunteers_file_reports(client: Any, tree: Tree, people: dict[str, Any]) -> None:
    suspended = factories.make_volunteer(tree.grid_a, status="suspended")
    assert_problem(post_report(client, suspended.user), 403, "volunteer_not_active")
    assert_problem(post_report(client, people["organiser"]), 403, "forbidden")
    assert report_count() == 0


# --- photos --------------------------------------------------------------------------------------


@pytest.fixture
def report_id(client: Any, people: dict[str, Any]) -> int:
    return post_report(client, people["volunteer"].user, level="orange").get_json()["id"]


def test_photo_is_stored_without_exif_and_served_to_those_allowed(
    client: Any, people: dict[str, Any], report_id: int, photo_dir: Path
) -> None:
    response = upload(client, people["volunteer"].user, report_id, jpeg_with_gps(), name="evidence.png")
    assert response.status_code == 201, response.get_json()
    photo = response.get_json()
    assert photo["content_type"] == "image/jpeg" and photo["position"] == 1
    assert (photo["width"], photo["height"]) == (48, 64)  # EXIF orientation applied before dropping it
    [stored] = stored_files(photo_dir)
    data = stored.read_bytes()
    assert b"SpyPhone" not in data and b"Exif" not in data
    reopened = Image.open(io.BytesIO(data))
    assert reopened.format == "JPEG" and dict(reopened.getexif()) == {}
    assert reopened.getexif().get_ifd(GPS_IFD) == {}

    for user in (people["volunteer"].user, people["organiser"], people["staff_a"]):
        served = client.get(photo["url"], headers=headers_for(user))
        assert served.status_code == 200 and served.mimetype == "image/jpeg"
        assert served.data == data
    assert_problem(client.get(photo["url"], headers=headers_for(people["organiser_b"])), 404, "report_not_found")
    assert_problem(client.get(photo["url"], headers=headers_for(people["other_volunteer"].user)), 404, "report_not_found")
    missing = f"/api/v1/reports/{report_id}/photos/{photo['id'] + 100}"
    assert_problem(client.get(missing, headers=headers_for(people["organiser"])), 404, "photo_not_found")

    detail = client.get(f"/api/v1/reports/{report_id}", headers=headers_for(people["volunteer"].user)).get_json()
    assert detail["photo_count"] == 1 and detail["photos"][0]["id"] == photo["id"]


def test_png_keeps_png_and_transparency(client: Any, people: dict[str, Any], report_id: int, photo_dir: Path) -> None:
    response = upload(client, people["volunteer"].user, report_id, png_bytes(), name="x.jpg")
    assert response.status_code == 201 and response.get_json()["content_type"] == "image/png"
    [stored] = stored_files(photo_dir)
    with Image.open(stored) as image:
        assert image.mode == "RGBA"


def test_photo_retry_with_same_client_id_stores_once(client: Any, people: dict[str, Any], report_id: int, photo_dir: Path) -> None:
    client_id = str(uuid.uuid4())
    user = people["volunteer"].user
    first = upload(client, user, report_id, jpeg_with_gps(), client_id=client_id, **{"Idempotency-Key": "p1"})
    again = upload(client, user, report_id, jpeg_with_gps(), client_id=client_id, **{"Idempotency-Key": "p2"})
    assert first.status_code == again.status_code == 201
    assert first.get_json()["id"] == again.get_json()["id"]
    assert len(stored_files(photo_dir)) == 1
    assert db.session.get(Report, report_id).photo_count == 1


def test_upload_retried_with_its_key_and_a_new_boundary_is_a_replay(
    client: Any, people: dict[str, Any], report_id: int, photo_dir: Path
) -> None:
    """A phone rebuilding the upload from its queue picks a new multipart boundary: still a replay."""
    client_id = str(uuid.uuid4())
    user = people["volunteer"].user
    photo = jpeg_with_gps()
    first = upload(client, user, report_id, photo, client_id=client_id, **{"Idempotency-Key": "k1"})
    again = upload(client, user, report_id, photo, client_id=client_id, **{"Idempotency-Key": "k1"})
    other_photo = upload(client, user, report_id, png_bytes(), client_id=client_id, **{"Idempotency-Key": "k1"})
    other_field = upload(client, user, report_id, photo, client_id=str(uuid.uuid4()), **{"Idempotency-Key": "k1"})

    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert_problem(other_photo, 409, "idempotency_key_reused")
    assert_problem(other_field, 409, "idempotency_key_reused")
    assert len(stored_files(photo_dir)) == 1
    assert db.session.get(Report, report_id).photo_count == 1


@pytest.mark.parametrize(
    "data, name, status, code",
    [
        (gif_bytes(), "photo.jpg", 415, "unsupported_photo_type"),
        (b"%PDF-1.4 not an image at all", "photo.jpg", 415, "unsupported_photo_type"),
        (b"", "photo.png", 415, "unsupported_photo_type"),
    ],
)
def test_wrong_type_is_415_and_leaves_nothing(
    client: Any, people: dict[str, Any], report_id: int, photo_dir: Path, data: bytes, name: str, status: int, code: str
) -> None:
    assert_problem(upload(client, people["volunteer"].user, report_id, data, name=name), status, code)
    assert stored_files(photo_dir) == []
    assert db.session.get(Report, report_id).photo_count == 0


def test_broken_or_huge_image_is_422(client: Any, app: Flask, people: dict[str, Any], report_id: int, photo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    truncated = jpeg_with_gps((400, 300))[:400]
    body = assert_problem(upload(client, people["volunteer"].user, report_id, truncated), 422, "photo_unreadable")
    assert "file" in body["errors"]
    monkeypatch.setitem(app.config, "REPORT_PHOTO_MAX_PIXELS", 1000)
    assert_problem(upload(client, people["volunteer"].user, report_id, jpeg_with_gps()), 422, "photo_unreadable")
    assert stored_files(photo_dir) == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReportPhoto)) == 0


def test_too_large_photo_is_413(client: Any, app: Flask, people: dict[str, Any], report_id: int, photo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = jpeg_with_gps()
    monkeypatch.setitem(app.config, "REPORT_PHOTO_MAX_BYTES", len(data) - 1)
    assert_problem(upload(client, people["volunteer"].user, report_id, data), 413, "photo_too_large")
    monkeypatch.setitem(app.config, "REPORT_PHOTO_MAX_BYTES", len(data))
    assert upload(client, people["volunteer"].user, report_id, data).status_code == 201


def test_missing_file_or_client_id_is_422(client: Any, people: dict[str, Any], report_id: int) -> None:
    response = client.post(
        f"/api/v1/reports/{report_id}/photos",
        data={"client_id": "nope"},
        content_type="multipart/form-data",
        headers=headers_for(people["volunteer"].user),
    )
    body = assert_problem(response, 422, "validation_failed")
    assert {"file", "client_id"} <= set(body["errors"])


def test_seventh_photo_is_409(client: Any, people: dict[str, Any], report_id: int, photo_dir: Path) -> None:
    user = people["volunteer"].user
    for position in range(1, 7):
        response = upload(client, user, report_id, png_bytes("RGB"))
        assert response.get_json()["position"] == position
    assert_problem(upload(client, user, report_id, png_bytes("RGB")), 409, "too_many_photos")
    assert len(stored_files(photo_dir)) == 6


def test_only_the_reporter_adds_photos(client: Any, people: dict[str, Any], report_id: int, photo_dir: Path) -> None:
    assert_problem(upload(client, people["other_volunteer"].user, report_id, png_bytes()), 404, "report_not_found")
    assert_problem(upload(client, people["organiser"], report_id, png_bytes()), 403, "forbidden")
    assert stored_files(photo_dir) == []


def test_a_file_written_by_an_uncommitted_transaction_is_deleted(app: Flask, photo_dir: Path) -> None:
    store = photos.LocalPhotoStore(str(photo_dir))
    with app.app_context():
        session = db.session()
        store.put("reports/1/kept.png", b"kept", "image/png")
        photos.track_written(session, store, "reports/1/kept.png")
        session.commit()
        session.execute(sa.select(1))  # a transaction under way, as in a request that flushed
        store.put("reports/1/dropped.png", b"dropped", "image/png")
        photos.track_written(session, store, "reports/1/dropped.png")
        session.rollback()
    assert [path.name for path in stored_files(photo_dir)] == ["kept.png"]


def test_photo_over_one_mebibyte_is_accepted_up_to_the_photo_limit(client: Any, people: dict[str, Any], report_id: int) -> None:
    noisy = Image.frombytes("RGB", (700, 700), bytes(range(256)) * (700 * 700 * 3 // 256) + b"\0" * (700 * 700 * 3 % 256))
    out = io.BytesIO()
    noisy.save(out, format="PNG", compress_level=0)
    assert 1024 * 1024 < len(out.getvalue()) < 5 * 1024 * 1024
    client_id = str(uuid.uuid4())

    def send(boundary: str) -> Any:
        # A body built by hand: the test client spools large form files to a temporary file it
        # never closes when the app refuses the body unread.
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="client_id"\r\n\r\n{client_id}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode() + out.getvalue() + f"\r\n--{boundary}--\r\n".encode()
        return client.post(
            f"/api/v1/reports/{report_id}/photos",
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
            headers=headers_for(people["volunteer"].user, **{"Idempotency-Key": "big-photo"}),
        )

    first, retry = send("photo-boundary"), send("another-boundary")
    assert first.status_code == retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true" and retry.get_json() == first.get_json()


# --- S3-compatible storage (moto's server on localhost) ------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_photos_go_to_an_s3_compatible_store_when_configured(
    client: Any, app: Flask, people: dict[str, Any], report_id: int, photo_dir: Path,
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    bucket = f"photos-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    settings = {
        "REPORT_PHOTO_STORAGE": "s3",
        "REPORT_PHOTO_S3_BUCKET": bucket,
        "REPORT_PHOTO_S3_ENDPOINT_URL": s3_endpoint,
        "REPORT_PHOTO_S3_REGION": "us-east-1",
    }
    for key, value in settings.items():
        monkeypatch.setitem(app.config, key, value)

    response = upload(client, people["volunteer"].user, report_id, jpeg_with_gps())
    assert response.status_code == 201
    [stored] = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert stored["Key"].startswith("report-photos/reports/")
    data = s3.get_object(Bucket=bucket, Key=stored["Key"])["Body"].read()
    assert dict(Image.open(io.BytesIO(data)).getexif()) == {}
    served = client.get(response.get_json()["url"], headers=headers_for(people["organiser"]))
    assert served.status_code == 200 and served.data == data
    assert stored_files(photo_dir) == []

    # An unreachable bucket: 503, and no photo row is kept.
    monkeypatch.setitem(app.config, "REPORT_PHOTO_S3_BUCKET", "no-such-bucket")
    assert_problem(upload(client, people["volunteer"].user, report_id, png_bytes()), 503, "photo_storage_unavailable")
    assert db.session.get(Report, report_id).photo_count == 1


# --- workflow ------------------------------------------------------------------------------------


def step(client: Any, user: User, report_id: int, action: str, **body: Any) -> Any:
    return client.post(f"/api/v1/reports/{report_id}/{action}", json=body, headers=headers_for(user))


def test_organiser_acknowledges_assigns_and_resolves_with_history(client: Any, people: dict[str, Any], report_id: int) -> None:
    organiser = people["organiser"]
    with captured(signals.report_status_changed) as changes:
        assert step(client, organiser, report_id, "acknowledge").get_json()["status"] == "acknowledged"
        assigned = step(client, organiser, report_id, "assign", assignee_id=organiser.id, note="我去看看")
        assert assigned.status_code == 200 and assigned.get_json()["assignee_id"] == organiser.id
        resolved = step(client, organiser, report_id, "resolve", note="已补上井盖")
    assert resolved.status_code == 200
    body = resolved.get_json()
    assert body["status"] == "resolved" and body["resolution_note"] == "已补上井盖" and body["resolved_at"]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in body["history"]] == [
        ("filed", None, "open"),
        ("acknowledged", "open", "acknowledged"),
        ("assigned", "acknowledged", "assigned"),
        ("resolved", "assigned", "resolved"),
    ]
    assert [(c["from_status"], c["to_status"], c["actor_id"]) for c in changes] == [
        ("open", "acknowledged", organiser.id),
        ("acknowledged", "assigned", organiser.id),
        ("assigned", "resolved", organiser.id),
    ]
    assert changes[-1]["note"] == "已补上井盖"
    # The reporter sees the status and the whole history.
    mine = client.get(f"/api/v1/reports/{report_id}", headers=headers_for(people["volunteer"].user)).get_json()
    assert mine["status"] == "resolved" and len(mine["history"]) == 4


@pytest.mark.parametrize(
    "done, action, body",
    [
        (["acknowledge"], "acknowledge", {}),
        (["resolve"], "acknowledge", {}),
        (["resolve"], "assign", {"assignee_id": 0}),
        (["resolve"], "escalate", {}),
        (["resolve"], "resolve", {"note": "again"}),
        (["escalate"], "escalate", {}),
    ],
)
def test_invalid_transitions_are_409_and_change_nothing(
    client: Any, people: dict[str, Any], report_id: int, done: list[str], action: str, body: dict[str, Any]
) -> None:
    staff = people["staff_a"]
    for previous in done:
        assert step(client, staff, report_id, previous, note="x").status_code == 200
    if "assignee_id" in body:
        body = {"assignee_id": staff.id}
    before = client.get(f"/api/v1/reports/{report_id}", headers=headers_for(staff)).get_json()
    assert_problem(step(client, staff, report_id, action, **body), 409, "invalid_report_transition")
    after = client.get(f"/api/v1/reports/{report_id}", headers=headers_for(staff)).get_json()
    assert after == before


def test_resolve_needs_a_note(client: Any, people: dict[str, Any], report_id: int) -> None:
    body = assert_problem(step(client, people["organiser"], report_id, "resolve"), 422, "validation_failed")
    assert "note" in body["errors"]


def test_other_subtree_and_volunteers_are_refused(client: Any, people: dict[str, Any], report_id: int) -> None:
    for action, body in (("acknowledge", {}), ("escalate", {}), ("resolve", {"note": "x"})):
        assert_problem(step(client, people["organiser_b"], report_id, action, **body), 404, "report_not_found")
        assert_problem(step(client, people["organiser_a2"], report_id, action, **body), 404, "report_not_found")
        assert_problem(step(client, people["volunteer"].user, report_id, action, **body), 403, "forbidden")
    assert_problem(client.get(f"/api/v1/reports/{report_id}", headers=headers_for(people["staff_b"])), 404, "report_not_found")
    assert_problem(
        client.get(f"/api/v1/reports/{report_id}", headers=headers_for(people["other_volunteer"].user)), 404, "report_not_found"
    )
    assert db.session.get(Report, report_id).status == "open"


def test_assignee_must_be_a_manager_who_covers_the_grid(client: Any, tree: Tree, people: dict[str, Any], report_id: int) -> None:
    staff = people["staff_a"]
    for assignee in (people["organiser_b"], people["organiser_a2"], people["volunteer"].user):
        body = assert_problem(step(client, staff, report_id, "assign", assignee_id=assignee.id), 422, "validation_failed")
        assert "assignee_id" in body["errors"]
    # An organiser cannot hand it to someone above their own area.
    assert_problem(step(client, people["organiser"], report_id, "assign", assignee_id=staff.id), 422, "validation_failed")
    assert db.session.get(Report, report_id).status == "open"


def test_escalated_report_is_handled_by_the_district_or_its_assignee(client: Any, tree: Tree, people: dict[str, Any], report_id: int) -> None:
    organiser, staff = people["organiser"], people["staff_a"]
    escalated = step(client, organiser, report_id, "escalate", note="涉及多个社区")
    assert escalated.status_code == 200
    assert escalated.get_json()["escalated_to_id"] == tree.district_a.id
    assert_problem(step(client, organiser, report_id, "resolve", note="x"), 403, "report_escalated")
    assert step(client, staff, report_id, "assign", assignee_id=organiser.id).status_code == 200
    resolved = step(client, organiser, report_id, "resolve", note="调解完毕")
    assert resolved.status_code == 200 and resolved.get_json()["status"] == "resolved"


# --- lists ---------------------------------------------------------------------------------------


def test_managers_list_by_area_level_status_and_date_with_cursor(client: Any, tree: Tree, people: dict[str, Any]) -> None:
    user = people["volunteer"].user
    ids = {}
    for level, grid in (("red", tree.grid_a), ("green", tree.grid_a2), ("orange", tree.grid_b), ("red", tree.grid_a_east)):
        ids[(level, grid.id)] = post_report(client, user, level=level, grid_id=grid.id).get_json()["id"]
    staff = people["staff_a"]

    def listed(headers_user: User, **query: Any) -> list[int]:
        response = client.get("/api/v1/reports", query_string=query, headers=headers_for(headers_user))
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()["items"]]

    in_a = [ids[("red", tree.grid_a_east.id)], ids[("green", tree.grid_a2.id)], ids[("red", tree.grid_a.id)]]
    assert listed(staff) == in_a
    assert listed(people["organiser"]) == [ids[("red", tree.grid_a_east.id)], ids[("red", tree.grid_a.id)]]
    assert listed(staff, area_id=tree.community_a2.id) == [ids[("green", tree.grid_a2.id)]]
    assert listed(staff, level=["red", "orange"]) == [in_a[0], in_a[2]]
    assert listed(staff, status="resolved") == []
    assert listed(staff, received_from=(utcnow() + timedelta(minutes=1)).isoformat()) == []
    assert listed(staff, received_to=(utcnow() + timedelta(minutes=1)).isoformat()) == in_a
    first = client.get("/api/v1/reports", query_string={"limit": 2}, headers=headers_for(staff)).get_json()
    second = client.get("/api/v1/reports", query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=headers_for(staff)).get_json()
    assert [item["id"] for item in first["items"] + second["items"]] == in_a and second["next_cursor"] is None
    assert_problem(client.get("/api/v1/reports", query_string={"area_id": tree.community_b.id}, headers=headers_for(staff)), 403, "out_of_scope")
    assert_problem(client.get("/api/v1/reports", query_string={"area_id": 999_999}, headers=headers_for(staff)), 422, "validation_failed")
    assert_problem(client.get("/api/v1/reports", headers=headers_for(user)), 403, "forbidden")


def test_volunteer_lists_only_own_reports(client: Any, people: dict[str, Any]) -> None:
    mine = post_report(client, people["volunteer"].user, level="red").get_json()["id"]
    post_report(client, people["other_volunteer"].user)
    response = client.get("/api/v1/reports/mine", headers=headers_for(people["volunteer"].user))
    assert [item["id"] for item in response.get_json()["items"]] == [mine]
    response = client.get("/api/v1/reports/mine", query_string={"level": "green"}, headers=headers_for(people["volunteer"].user))
    assert response.get_json()["items"] == []
    assert_problem(client.get("/api/v1/reports/mine", headers=headers_for(people["organiser"])), 403, "forbidden")
