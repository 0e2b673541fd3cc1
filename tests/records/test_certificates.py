"""Certificates of service through the HTTP API: request, issue, the PDF, the public check, revoke,
seals, who may do what, bad input, and the gap-free numbers under concurrent issuing."""

from __future__ import annotations

import io
import json
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from accounts.models import User
from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from core.timeutil import zone
from grids.models import Area, AreaLevel
from patrols.service import patrol_for
from records.certificates.models import Certificate, CertificateCounter
from records.settings import CJK_FONT, PUBLIC_BASE_URL, VERIFY_LIMIT
from records.stars import service as stars
from rewards.awarding import service as awarding
from tests import factories, races
from tests.conftest import Tree
from tests.problems import assert_problem
from volunteers.models import Volunteer

API = "/api/v1"
NO_SUCH_ID = 2_000_000_000
ID_NUMBER = factories.national_id(123)
# One folder per database pass: `make test` runs the SQLite and PostgreSQL passes at once.
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "records" / (
    "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
)


def today() -> date:
    return utcnow().astimezone(zone("Asia/Shanghai")).date()


def serve_shift(volunteer: Volunteer, grid: Area, *, days_ago: int, hours: float, title: str = "夜间巡逻") -> None:
    """A patrol served ``days_ago`` local days back, recorded as rewards records it."""
    start_in = timedelta(days=-days_ago)
    shift = factories.make_shift(grid, starts_in=start_in, hours=hours, title=title)
    patrol = patrol_for(factories.make_assignment(shift, volunteer))
    awarding.award_served_shift(patrol.id, volunteer.id, shift.id, int(hours * 60))


def enter_hours(volunteer: Volunteer, grid: Area, organiser: User, *, days_ago: int, minutes: int, note: str) -> None:
    awarding.award_manual_hours(
        volunteer.id, grid, today() - timedelta(days=days_ago), minutes, note=note, actor_id=organiser.id
    )


def period(days: int = 60) -> dict[str, str]:
    return {"first_day": (today() - timedelta(days=days)).isoformat(), "last_day": today().isoformat()}


class World:
    """A volunteer of grid A (community A) with 3.5 hours there this month: a served night patrol
    (2 h) and 90 minutes entered by hand; their community's organiser and the district's staff."""

    def __init__(self, client: FlaskClient, tree: Tree) -> None:
        self.client, self.tree = client, tree
        self.volunteer = factories.make_volunteer(tree.grid_a, real_name="张三丰", id_number=ID_NUMBER)
        self.organiser = factories.make_user("organiser", tree.community_a)
        self.staff = factories.make_user("staff", tree.district_a)
        serve_shift(self.volunteer, tree.grid_a, days_ago=3, hours=2)
        enter_hours(self.volunteer, tree.grid_a_east, self.organiser, days_ago=2, minutes=90, note="交通疏导")

    def ask(self, issuer: Area | None = None, who: User | None = None, **body: Any) -> Any:
        payload = {"issuer_area_id": (issuer or self.tree.community_a).id, **period(), **body}
        # As JSON text: a lone surrogate goes as its escape, as a client would send it.
        return self.client.post(
            f"{API}/me/certificates", data=json.dumps(payload), content_type="application/json",
            headers=factories.headers_for(who or self.volunteer.user),
        )

    def requested(self, issuer: Area | None = None) -> int:
        response = self.ask(issuer)
        assert response.status_code == 201, response.get_json()
        return int(response.get_json()["id"])

    def issue(self, certificate_id: int, who: User | None = None, **body: Any) -> Any:
        return self.client.post(
            f"{API}/certificates/{certificate_id}/issue", json=body, headers=factories.headers_for(who or self.organiser)
        )

    def issued(self, issuer: Area | None = None, **body: Any) -> dict[str, Any]:
        response = self.issue(self.requested(issuer), **body)
        assert response.status_code == 200, response.get_json()
        return dict(response.get_json())

    def pdf(self, certificate_id: int, who: User | None = None) -> Any:
        return self.client.get(f"{API}/certificates/{certificate_id}/pdf", headers=factories.headers_for(who or self.volunteer.user))


@pytest.fixture
def world(client: FlaskClient, tree: Tree) -> World:
    return World(client, tree)


def pdf_text(data: bytes, tmp_path: Path) -> str:
    source = tmp_path / "certificate.pdf"
    source.write_bytes(data)
    return subprocess.run(["pdftotext", "-layout", str(source), "-"], check=True, capture_output=True, text=True).stdout


def pdf_page(data: bytes, name: str) -> Image.Image:
    """Page 1 at 60 dpi, kept under test-artifacts/records/ to be looked at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    source = ARTIFACTS / f"{name}.pdf"
    source.write_bytes(data)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(source), str(ARTIFACTS / name)], check=True)
    return Image.open(ARTIFACTS / f"{name}.png").convert("RGB")


def qr_codes(data: bytes) -> list[str]:
    """What the QR codes on page 1 say, read by zbarimg from a 150 dpi rendering."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "qr.pdf").write_bytes(data)
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", "-singlefile", str(ARTIFACTS / "qr.pdf"), str(ARTIFACTS / "qr")], check=True)
    # zbarimg exits 0 when it found codes; it may complain about D-Bus on stderr, which says nothing here.
    found = subprocess.run(["zbarimg", "-q", "--raw", str(ARTIFACTS / "qr.png")], capture_output=True, text=True)
    return found.stdout.split()


def share(image: Image.Image, test: Any) -> float:
    """The share of the page's pixels for which ``test(r, g, b)`` holds."""
    raw = image.convert("RGB").tobytes()
    pixels = [raw[index : index + 3] for index in range(0, len(raw), 3)]
    return sum(1 for r, g, b in pixels if test(r, g, b)) / len(pixels)


def dark(r: int, g: int, b: int) -> bool:
    return r < 100 and g < 100 and b < 100


def red(r: int, g: int, b: int) -> bool:
    return r > 150 and g < 90 and b < 90


# --- request -------------------------------------------------------------------------------------


def test_a_request_names_the_issuer_and_period_and_asking_again_returns_the_same(world: World) -> None:
    first = world.ask()
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["status"] == "requested" and body["number"] is None and body["minutes"] is None
    assert body["issuer_name"] == world.tree.community_a.name
    again = world.ask()
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]
    # A district above is another issuer: its own request.
    other = world.ask(world.tree.district_a)
    assert other.status_code == 201 and other.get_json()["id"] != body["id"]
    mine = world.client.get(f"{API}/me/certificates", headers=factories.headers_for(world.volunteer.user)).get_json()
    assert [item["id"] for item in mine["items"]] == [other.get_json()["id"], body["id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"first_day": (date.today() - timedelta(days=400)).isoformat(), "last_day": (date.today() - timedelta(days=300)).isoformat()}, "last_day"),
        ({"issuer": "community_b"}, "last_day"),  # hours served elsewhere count nowhere else
    ],
)
def test_a_period_without_hours_under_the_issuer_is_422_and_writes_nothing(world: World, change: dict[str, str], field: str) -> None:
    issuer = getattr(world.tree, change.pop("issuer", "community_a"))
    response = world.ask(issuer, **change)
    body = assert_problem(response, 422, "no_hours_in_period")
    assert field in body["errors"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"issuer_area_id": "grid"}, "issuer_area_id"),  # a grid issues nothing
        ({"issuer_area_id": NO_SUCH_ID}, "issuer_area_id"),
        ({"issuer_area_id": 2**31}, "issuer_area_id"),
        ({"issuer_area_id": "1"}, "issuer_area_id"),
        ({"last_day": (date.today() + timedelta(days=3)).isoformat()}, "last_day"),
        ({"first_day": date.today().isoformat(), "last_day": (date.today() - timedelta(days=1)).isoformat()}, "last_day"),
        ({"first_day": "1999-12-31"}, "first_day"),
        ({"first_day": "2026-02-30"}, "first_day"),
        ({"first_day": "\ud800"}, "first_day"),
        ({"last_day": "9" * 100_000}, "last_day"),
        ({"first_day": None}, "first_day"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_requests_are_422_and_write_nothing(world: World, body: dict[str, Any], field: str) -> None:
    if body.get("issuer_area_id") == "grid":
        body = {**body, "issuer_area_id": world.tree.grid_a.id}
    response = world.ask(**body)
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    problem = response.get_json()
    assert problem["status"] == response.status_code
    if response.status_code == 422:
        assert field in problem["errors"], problem
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 0


def test_only_volunteers_ask_for_themselves(world: World) -> None:
    assert_problem(world.ask(who=world.organiser), 403, "forbidden")


# --- issue, the PDF, the public check, revoke ---------------------------------------------------


def test_issuing_freezes_hours_content_and_places_and_numbers_per_issuer_and_year(world: World, tmp_path: Path) -> None:
    certificate_id = world.requested()
    # Hours that do not count: another community's grid, and a day outside the period.
    serve_shift(world.volunteer, world.tree.grid_b, days_ago=1, hours=5)
    enter_hours(world.volunteer, world.tree.grid_a, world.organiser, days_ago=200, minutes=600, note="旧账")
    response = world.issue(certificate_id)
    assert response.status_code == 200, response.get_json()
    issued = response.get_json()
    year = today().year
    assert issued["status"] == "issued"
    assert issued["number"] == f"{world.tree.community_a.code}-{year}-000001"
    assert issued["issued_on"] == today().isoformat()
    assert (issued["minutes"], issued["hours"]) == (210, 3.5)
    assert issued["content"] == "交通疏导 1 次；夜间巡逻 1 次"
    grid_names = {world.tree.grid_a.name, world.tree.grid_a_east.name}
    assert {place.split(" ")[-1] for place in issued["places"].split("；")} == grid_names
    assert issued["full_id_number"] is False

    # Frozen: hours served later in the period change nothing already issued.
    enter_hours(world.volunteer, world.tree.grid_a, world.organiser, days_ago=0, minutes=60, note="补录")
    again = world.client.get(f"{API}/certificates/{certificate_id}", headers=factories.headers_for(world.volunteer.user))
    assert again.get_json()["minutes"] == 210
    assert_problem(world.issue(certificate_id), 409, "certificate_not_requested")

    # The next one of the same issuer and year is 2; another issuer starts at 1.
    second = world.issue(world.requested(world.tree.subdistrict_a), who=world.staff).get_json()
    assert second["number"] == f"{world.tree.subdistrict_a.code}-{year}-000001"
    third = world.client.post(
        f"{API}/me/certificates",
        json={"issuer_area_id": world.tree.community_a.id, "first_day": period(5)["first_day"], "last_day": today().isoformat()},
        headers=factories.headers_for(world.volunteer.user),
    ).get_json()
    assert world.issue(third["id"]).get_json()["number"] == f"{world.tree.community_a.code}-{year}-000002"
    audits = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.target_type == "certificate")).all()
    assert audits.count("certificate.issue") == 3


def test_the_pdf_prints_every_field_in_chinese_with_the_id_masked(world: World, tmp_path: Path) -> None:
    issued = world.issued()
    response = world.pdf(issued["id"])
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "private, no-store"
    text = pdf_text(response.data, tmp_path)
    for expected in (
        "志愿服务记录证明", "张三丰", "居民身份证", ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[-4:],
        f"{world.tree.city.code}-{world.volunteer.id:08d}", "3.5", issued["number"], "夜间巡逻 1 次",
        world.tree.grid_a.name, world.tree.community_a.name, f"{today().year}年{today().month}月{today().day}日",
        f"http://localhost/verify/{issued['number']}",
    ):
        assert expected in text, (expected, text)
    assert ID_NUMBER not in text
    page = pdf_page(response.data, "certificate")
    assert share(page, dark) > 0.005  # the text is there, not a blank page
    assert share(page, red) > 0.002  # the frame and the placeholder seal
    assert qr_codes(response.data) == [f"http://localhost/verify/{issued['number']}"]
    # Managers in scope get it too; a client that only takes bytes asks for octet-stream.
    as_bytes = world.client.get(
        f"{API}/certificates/{issued['id']}/pdf", headers=factories.headers_for(world.staff, Accept="application/octet-stream")
    )
    assert as_bytes.status_code == 200 and as_bytes.mimetype == "application/octet-stream"


def test_the_issuer_may_print_the_full_id_number_and_the_qr_points_at_the_public_base_url(
    world: World, tmp_path: Path, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, PUBLIC_BASE_URL, "https://check.example.org/")
    issued = world.issued(full_id_number=True)
    assert issued["full_id_number"] is True
    text = pdf_text(world.pdf(issued["id"]).data, tmp_path)
    assert ID_NUMBER in text
    assert f"https://check.example.org/verify/{issued['number']}" in text


def test_no_pdf_before_issue_and_503_without_a_chinese_font(world: World, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    certificate_id = world.requested()
    assert_problem(world.pdf(certificate_id), 409, "certificate_not_issued")
    assert world.issue(certificate_id).status_code == 200
    monkeypatch.setitem(app.config, CJK_FONT, "/nonexistent/font.ttc")
    assert_problem(world.pdf(certificate_id), 503, "cjk_font_missing")


def test_the_public_check_shows_only_what_a_verifier_needs_and_follows_revocation(world: World, tmp_path: Path) -> None:
    issued = world.issued()
    number = issued["number"]
    check = world.client.get(f"{API}/certificates/verify/{number}")
    assert check.status_code == 200
    assert check.get_json() == {
        "number": number, "masked_name": "张*丰", "hours": 3.5, "first_day": period()["first_day"],
        "last_day": today().isoformat(), "issuer_name": world.tree.community_a.name,
        "issued_on": today().isoformat(), "status": "valid", "revoked_on": None,
    }
    page = world.client.get(f"/verify/{number}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "有效" in html and "张*丰" in html and "3.5 小时" in html and world.tree.community_a.name in html
    for secret in ("张三丰", ID_NUMBER, ID_NUMBER[-4:], f"{world.volunteer.id:08d}"):
        assert secret not in html and secret not in check.get_data(as_text=True)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]

    # Revoke: by the issuer, with a reason; audited; the check says so; the PDF is marked.
    revoked = world.client.post(
        f"{API}/certificates/{issued['id']}/revoke", json={"reason": "时长录入有误"}, headers=factories.headers_for(world.organiser)
    )
    assert revoked.status_code == 200, revoked.get_json()
    assert revoked.get_json()["status"] == "revoked" and revoked.get_json()["revoke_reason"] == "时长录入有误"
    check = world.client.get(f"{API}/certificates/verify/{number}").get_json()
    assert (check["status"], check["revoked_on"]) == ("revoked", today().isoformat())
    assert "已撤销" in world.client.get(f"/verify/{number}").get_data(as_text=True)
    text = pdf_text(world.pdf(issued["id"]).data, tmp_path)
    assert "已撤销" in text and number in text
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "certificate.revoke"))
    assert audit is not None and audit.after == {"status": "revoked", "reason": "时长录入有误"}
    assert audit.actor_id == world.organiser.id
    assert_problem(
        world.client.post(f"{API}/certificates/{issued['id']}/revoke", json={"reason": "again"}, headers=factories.headers_for(world.organiser)),
        409, "certificate_not_issued",
    )
    # A revoked certificate no longer holds the period: asking again makes a new request.
    again = world.ask()
    assert again.status_code == 201 and again.get_json()["id"] != issued["id"]


@pytest.mark.parametrize("number", ["150200-2026-999999", "not-a-number", "x" * 300, "a/b", "%00", "１５０２００-2026-000001"])
def test_unknown_and_malformed_numbers_answer_alike(world: World, number: str) -> None:
    issued = world.issued()
    world.requested(world.tree.district_a)  # asked for, not issued: nothing more to find
    reference = world.client.get(f"{API}/certificates/verify/{issued['number'][:-1]}9")
    body = assert_problem(reference, 404, "certificate_not_found")
    response = world.client.get(f"{API}/certificates/verify/{number}")
    assert (response.status_code, response.get_json()) == (404, body)
    page = world.client.get(f"/verify/{number}")
    assert page.status_code == 404 and "未找到" in page.get_data(as_text=True)


def test_the_public_check_is_rate_limited_per_address(world: World, app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, VERIFY_LIMIT, "3 per minute")
    number = world.issued()["number"]
    answers = [world.client.get(f"{API}/certificates/verify/{number}").status_code for _ in range(2)]
    answers.append(world.client.get(f"/verify/{number}").status_code)  # one budget for the page and the JSON
    assert answers == [200, 200, 200]
    assert_problem(world.client.get(f"{API}/certificates/verify/{number}"), 429, "too_many_requests")
    assert world.client.get(f"/verify/{number}").status_code == 429
    other = world.client.get(f"{API}/certificates/verify/{number}", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 200


# --- who may do what -----------------------------------------------------------------------------


def test_issuing_outside_ones_subtree_is_403_and_ids_out_of_reach_are_404(world: World) -> None:
    tree = world.tree
    district_request = world.requested(tree.district_a)  # hours in community A, issued by district A
    own_request = world.requested()
    # The organiser of community A sees the district's request (the volunteer is theirs) but may not issue it.
    seen = world.client.get(f"{API}/certificates/{district_request}", headers=factories.headers_for(world.organiser))
    assert seen.status_code == 200
    assert_problem(world.issue(district_request), 403, "out_of_scope")
    assert_problem(
        world.client.post(f"{API}/certificates/{district_request}/revoke", json={"reason": "x"}, headers=factories.headers_for(world.organiser)),
        403, "out_of_scope",
    )
    # Siblings and strangers: exactly as an id that does not exist.
    sibling = factories.make_user("organiser", tree.community_a2)
    other_district = factories.make_user("staff", tree.district_b)
    stranger = factories.make_volunteer(tree.grid_a, real_name="李四")
    for who in (sibling, other_district, stranger.user):
        headers = factories.headers_for(who)
        for method, suffix, body in (("get", "", None), ("get", "/pdf", None), ("post", "/issue", {}), ("post", "/revoke", {"reason": "x"})):
            if who is stranger.user and method == "post":
                continue  # volunteers may not issue at all (403 forbidden, whatever the id)
            missing = world.client.open(f"{API}/certificates/{NO_SUCH_ID}{suffix}", method=method.upper(), json=body, headers=headers)
            hidden = world.client.open(f"{API}/certificates/{own_request}{suffix}", method=method.upper(), json=body, headers=headers)
            assert_problem(missing, 404, "certificate_not_found")
            assert (hidden.status_code, hidden.get_json()) == (missing.status_code, missing.get_json()), (who.role, suffix)
    assert_problem(world.issue(own_request, who=stranger.user), 403, "forbidden")
    # The district's staff issue both.
    assert world.issue(district_request, who=world.staff).status_code == 200


def test_a_sibling_whose_path_is_a_string_prefix_is_out_of_reach(client: FlaskClient) -> None:
    city = factories.make_area(AreaLevel.CITY, area_id=6_100_001)
    district = factories.make_area(AreaLevel.DISTRICT, city, area_id=6_100_002)
    subdistrict = factories.make_area(AreaLevel.SUBDISTRICT, district, area_id=6_100_003)
    community = factories.make_area(AreaLevel.COMMUNITY, subdistrict, area_id=6_100_004)
    sibling = factories.make_area(AreaLevel.COMMUNITY, subdistrict, area_id=61_000_043)
    assert sibling.path.startswith(community.path.rstrip("/"))
    grid = factories.make_area(AreaLevel.GRID, sibling, area_id=61_000_053, boundary=factories.square(109.9, 40.7))
    volunteer = factories.make_volunteer(grid)
    organiser = factories.make_user("organiser", community)
    serve_shift(volunteer, grid, days_ago=1, hours=1)
    asked = client.post(
        f"{API}/me/certificates", json={"issuer_area_id": sibling.id, **period()}, headers=factories.headers_for(volunteer.user)
    ).get_json()
    hidden = client.get(f"{API}/certificates/{asked['id']}", headers=factories.headers_for(organiser))
    missing = client.get(f"{API}/certificates/{NO_SUCH_ID}", headers=factories.headers_for(organiser))
    assert (hidden.status_code, hidden.get_json()) == (404, missing.get_json())
    listed = client.get(f"{API}/certificates", headers=factories.headers_for(organiser)).get_json()
    assert listed["items"] == []
    assert_problem(
        client.get(f"{API}/certificates", query_string={"area_id": sibling.id}, headers=factories.headers_for(organiser)),
        403, "out_of_scope",
    )


def test_the_managers_list_filters_by_status_and_pages(world: World) -> None:
    issued = world.issued()
    requested = world.requested(world.tree.subdistrict_a)
    headers = factories.headers_for(world.staff)
    everything = world.client.get(f"{API}/certificates", headers=headers).get_json()
    assert [item["id"] for item in everything["items"]] == [requested, issued["id"]]
    waiting = world.client.get(f"{API}/certificates", query_string={"status": "requested"}, headers=headers).get_json()
    assert [item["id"] for item in waiting["items"]] == [requested]
    first = world.client.get(f"{API}/certificates", query_string={"limit": 1}, headers=headers).get_json()
    rest = world.client.get(f"{API}/certificates", query_string={"limit": 1, "cursor": first["next_cursor"]}, headers=headers).get_json()
    assert [first["items"][0]["id"], rest["items"][0]["id"]] == [requested, issued["id"]] and rest["next_cursor"] is None
    # The organiser of community A lists only what community A issues.
    own = world.client.get(f"{API}/certificates", headers=factories.headers_for(world.organiser)).get_json()
    assert [item["id"] for item in own["items"]] == [issued["id"]]
    assert_problem(world.client.get(f"{API}/certificates", query_string={"status": "lost"}, headers=headers), 422, "validation_failed")
    assert_problem(world.client.get(f"{API}/certificates", headers=factories.headers_for(world.volunteer.user)), 403, "forbidden")


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501, "\ud800", 5, None])
def test_a_revocation_needs_a_reason(world: World, reason: Any) -> None:
    issued = world.issued()
    response = world.client.post(
        f"{API}/certificates/{issued['id']}/revoke", data=json.dumps({"reason": reason}), content_type="application/json",
        headers=factories.headers_for(world.organiser),
    )
    assert response.status_code in (400, 422)
    assert db.session.get(Certificate, issued["id"]).status == "issued"


def test_issue_refuses_odd_bodies(world: World) -> None:
    certificate_id = world.requested()
    for body in ({"full_id_number": "yes"}, {"full_id_number": 1}, {"other": True}, [], "x"):
        response = world.client.post(
            f"{API}/certificates/{certificate_id}/issue", json=body, headers=factories.headers_for(world.organiser)
        )
        assert response.status_code == 422, (body, response.get_json())
    assert db.session.get(Certificate, certificate_id).status == "requested"


# --- numbers -------------------------------------------------------------------------------------


def test_an_issue_that_fails_after_taking_its_number_gives_the_number_back(world: World) -> None:
    """A number already held (here a certificate entered by hand) makes the issue fail after the
    counter moved: 409, and the counter is as it was, so the next issue takes that number."""
    issuer = world.tree.community_a
    year = today().year
    blocker = Certificate(
        volunteer_id=world.volunteer.id, issuer_area_id=world.tree.city.id, first_day=today(), last_day=today(),
        status="issued", number=f"{issuer.code}-{year}-000001", minutes=1, issued_at=utcnow(),
    )
    db.session.add(blocker)
    db.session.flush()
    certificate_id = world.requested()
    assert_problem(world.issue(certificate_id), 409, "certificate_number_taken")
    assert db.session.get(CertificateCounter, (issuer.id, year)) is None
    assert db.session.get(Certificate, certificate_id).status == "requested"
    db.session.delete(blocker)
    db.session.flush()
    assert world.issue(certificate_id).get_json()["number"] == f"{issuer.code}-{year}-000001"
    assert db.session.get(CertificateCounter, (issuer.id, year)).last_sequence == 1


# --- seals ---------------------------------------------------------------------------------------


def seal_png() -> bytes:
    """A blue ring on a transparent ground."""
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    for x in range(200):
        for y in range(200):
            if 70**2 <= (x - 100) ** 2 + (y - 100) ** 2 <= 95**2:
                image.putpixel((x, y), (20, 40, 220, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def put_seal(client: FlaskClient, area: Area, who: User, data: bytes) -> Any:
    return client.put(
        f"{API}/areas/{area.id}/seal", data={"file": (io.BytesIO(data), "seal.png")},
        content_type="multipart/form-data", headers=factories.headers_for(who),
    )


def test_staff_upload_the_seal_it_keeps_its_transparency_and_prints_on_later_certificates(
    world: World, photo_dir: Path
) -> None:
    before = world.issued()  # issued without a seal: keeps the placeholder
    response = put_seal(world.client, world.tree.community_a, world.staff, seal_png())
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["content_type"] == "image/png"
    stored = world.client.get(f"{API}/areas/{world.tree.community_a.id}/seal", headers=factories.headers_for(world.staff))
    assert stored.status_code == 200 and stored.mimetype == "image/png"
    image = Image.open(io.BytesIO(stored.data))
    assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0
    third = world.client.post(
        f"{API}/me/certificates",
        json={"issuer_area_id": world.tree.community_a.id, "first_day": period(7)["first_day"], "last_day": today().isoformat()},
        headers=factories.headers_for(world.volunteer.user),
    ).get_json()
    assert world.issue(third["id"]).status_code == 200

    def blue(r: int, g: int, b: int) -> bool:
        return b > 180 and r < 90 and g < 110

    sealed = pdf_page(world.pdf(third["id"]).data, "certificate-with-seal")
    unsealed = pdf_page(world.pdf(before["id"]).data, "certificate-without-seal")
    assert share(sealed, blue) > 0.001 and share(unsealed, blue) == 0
    assert world.client.get(f"{API}/areas/{world.tree.community_a.id}/seal", headers=factories.headers_for(world.organiser)).status_code == 403


def test_seal_uploads_are_for_officials_in_scope_and_images_only(world: World, photo_dir: Path) -> None:
    tree = world.tree
    assert_problem(put_seal(world.client, tree.community_a, world.organiser, seal_png()), 403, "forbidden")
    outsider = factories.make_user("staff", tree.district_b)
    assert_problem(put_seal(world.client, tree.community_a, outsider, seal_png()), 403, "out_of_scope")
    assert_problem(put_seal(world.client, tree.community_a, world.staff, b"%PDF-1.4 not an image"), 415, "unsupported_photo_type")
    assert_problem(
        world.client.get(f"{API}/areas/{tree.community_a.id}/seal", headers=factories.headers_for(world.staff)), 404, "seal_not_found"
    )
    assert not photo_dir.exists() or not any(photo_dir.rglob("*.png"))


# --- concurrency (real commits, several connections) ----------------------------------------------


@pytest.mark.committing
def test_concurrent_issues_of_one_issuer_take_numbers_one_to_n_without_gap(app: Flask) -> None:
    threads = 8
    with app.app_context():
        _city, _district, _subdistrict, community, grid = factories.make_branch()
        organisers = [factories.make_user("organiser", community) for _ in range(threads)]
        volunteers = [factories.make_volunteer(grid, real_name=f"并发{i}") for i in range(threads)]
        for volunteer in volunteers:
            serve_shift(volunteer, grid, days_ago=1, hours=1)
        first, last = today() - timedelta(days=5), today()
        certificates = [
            Certificate(volunteer_id=v.id, issuer_area_id=community.id, first_day=first, last_day=last, issuer_name=community.name)
            for v in volunteers
        ]
        db.session.add_all(certificates)
        db.session.flush()
        calls = [
            ("post", f"{API}/certificates/{certificate.id}/issue", {}, factories.headers_for(organiser))
            for certificate, organiser in zip(certificates, organisers, strict=True)
        ]
        # And two managers issuing one of them at once: one wins, the other takes no number.
        calls.append(("post", f"{API}/certificates/{certificates[0].id}/issue", {}, factories.headers_for(organisers[1])))
        code, year = community.code, today().year
        community_id = community.id
        db.session.commit()

    responses = races.at_once(app, calls)
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] * threads + [409], [r.get_json() for r in responses]
    numbers = sorted(r.get_json()["number"] for r in responses if r.status_code == 200)
    assert numbers == [f"{code}-{year}-{n:06d}" for n in range(1, threads + 1)]
    with app.app_context():
        assert db.session.get(CertificateCounter, (community_id, year)).last_sequence == threads
        db.session.remove()


@pytest.mark.committing
def test_concurrent_requests_for_the_same_period_make_one_certificate(app: Flask) -> None:
    with app.app_context():
        _city, _district, _subdistrict, community, grid = factories.make_branch()
        volunteer = factories.make_volunteer(grid)
        serve_shift(volunteer, grid, days_ago=1, hours=1)
        headers = factories.headers_for(volunteer.user)
        body = {"issuer_area_id": community.id, **period()}
        db.session.commit()

    responses = races.at_once(app, [("post", f"{API}/me/certificates", body, headers)] * 4)
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201], [r.get_json() for r in responses]
    assert len({r.get_json()["id"] for r in responses}) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Certificate)) == 1
        db.session.remove()


def test_the_star_level_is_printed_once_certified_after_its_publicity_and_frozen_at_issue(
    world: World, tmp_path: Path
) -> None:
    """A pending level (during its publicity) is not printed; a certified one is, as it was at issue."""
    level = stars.propose(world.volunteer.id, "star_1", utcnow() - timedelta(days=8))
    assert level is not None and level.status == "pending"
    during = world.issued()
    assert during["star_level"] is None
    assert "星级" not in pdf_text(world.pdf(during["id"]).data, tmp_path)

    assert stars.certify(level.id, level.publicity_ends_at)
    response = world.ask(first_day=(today() - timedelta(days=30)).isoformat())
    assert response.status_code == 201, response.get_json()
    after = world.issue(response.get_json()["id"]).get_json()
    assert after["star_level"] == 1
    text = pdf_text(world.pdf(after["id"]).data, tmp_path)
    assert "一星志愿者" in text and "星级" in text
    # The earlier certificate stays as issued.
    assert "星级" not in pdf_text(world.pdf(during["id"]).data, tmp_path)
