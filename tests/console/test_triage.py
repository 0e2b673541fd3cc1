"""Report triage (/console/triage/) through the test client: the queue a caller gets (the API's
reports, red and orange first), one report with its history and photos, and each handling step
changing exactly what the API's endpoint changes; every refusal changes nothing."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from PIL import Image

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from patrols import signals
from patrols.reports.models import Report, ReportEvent
from tests import factories
from tests.conftest import Tree
from tests.console.support import signed_in
from tests.factories import headers_for

PAGE = "/console/triage/"
INSIDE_A = {"lat": 40.655, "lon": 109.845}  # inside tree.grid_a


# Photos in the test's own folder, local storage (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("photo_dir")


@pytest.fixture
def people(tree: Tree) -> dict[str, Any]:
    return {
        "volunteer": factories.make_volunteer(tree.grid_a),
        "organiser": factories.make_user("organiser", tree.community_a, display_name="东站组织者"),
        "organiser_a2": factories.make_user("organiser", tree.community_a2),
        "organiser_b": factories.make_user("organiser", tree.community_b),
        "staff_a": factories.make_user("staff", tree.district_a, display_name="东河区干部"),
        "staff_b": factories.make_user("staff", tree.district_b),
    }


def file_report(client: FlaskClient, user: User, level: str, grid_id: int | None = None, **extra: Any) -> int:
    """A report filed as the phone files it (the API), so the console meets a real one."""
    body = {
        "client_id": str(uuid.uuid4()), "category": "safety_hazard", "level": level,
        "description": f"{level} 井盖缺失", **INSIDE_A, "accuracy_m": 8.0,
        "device_time": (utcnow() - timedelta(minutes=3)).isoformat(), **extra,
    }
    if grid_id is not None:
        body["grid_id"] = grid_id
    response = client.post("/api/v1/reports", json=body, headers=headers_for(user))
    assert response.status_code == 201, response.get_json()
    report_id: int = response.get_json()["id"]
    return report_id


def state(report_id: int) -> dict[str, Any]:
    report = db.session.get(Report, report_id)
    assert report is not None
    events = db.session.scalars(sa.select(ReportEvent).where(ReportEvent.report_id == report_id).order_by(ReportEvent.id)).all()
    return {
        "status": report.status, "assignee": report.assignee_id, "escalated_to": report.escalated_to_id,
        "note": report.resolution_note, "resolved": report.resolved_at is not None,
        "events": [(e.action, e.from_status, e.to_status, e.actor_id, e.assignee_id, e.note) for e in events],
    }


def listed(page: Any) -> list[int]:
    assert page.status_code == 200, page.get_data(as_text=True)[:2000]
    return [int(found) for found in re.findall(r'data-test="report-row" data-report-id="(\d+)"', page.get_data(as_text=True))]


def api_listed(client: FlaskClient, user: User, **query: Any) -> list[int]:
    response = client.get("/api/v1/reports", query_string={"limit": 100, **query}, headers=headers_for(user))
    assert response.status_code == 200
    return [item["id"] for item in response.get_json()["items"]]


def problem_section(page: Any) -> str:
    match = re.search(r'<section class="card problem">.*?</section>', page.get_data(as_text=True), re.S)
    assert match, page.get_data(as_text=True)[:2000]
    return match.group(0)


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
def reports(client: FlaskClient, tree: Tree, people: dict[str, Any]) -> dict[str, int]:
    user = people["volunteer"].user
    filed = {}
    for name, level, grid in (("green_a", "green", tree.grid_a), ("red_a", "red", tree.grid_a),
                              ("yellow_a", "yellow", tree.grid_a_east), ("orange_a", "orange", tree.grid_a),
                              ("red_a2", "red", tree.grid_a2), ("red_b", "red", tree.grid_b)):
        filed[name] = file_report(client, user, level, grid.id)
    return filed


# --- the queue -------------------------------------------------------------------------------------


def test_organiser_gets_red_and_orange_first_in_their_community(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    page = signed_in(client, people["organiser"]).get(PAGE)
    r = reports
    assert listed(page) == [r["orange_a"], r["red_a"], r["yellow_a"], r["green_a"]]
    assert set(listed(page)) == set(api_listed(client, people["organiser"]))
    levels = re.findall(r'data-report-id="\d+" data-level="(\w+)"', page.get_data(as_text=True))
    assert levels == ["orange", "red", "yellow", "green"]


def test_staff_gets_the_district(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    page = signed_in(client, people["staff_a"]).get(PAGE)
    r = reports
    assert listed(page) == [r["red_a2"], r["orange_a"], r["red_a"], r["yellow_a"], r["green_a"]]
    assert set(listed(page)) == set(api_listed(client, people["staff_a"]))


def test_filters_by_colour_and_status_are_the_apis(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    console = signed_in(client, people["staff_a"])
    assert listed(console.get(PAGE + "?level=red")) == [reports["red_a2"], reports["red_a"]]
    assert listed(console.get(PAGE + "?level=yellow")) == [reports["yellow_a"]]
    assert listed(console.get(PAGE + "?level=green&level=orange")) == [reports["orange_a"], reports["green_a"]]
    assert listed(console.get(PAGE + "?status=acknowledged")) == []
    assert console.post(f"{PAGE}{reports['yellow_a']}/acknowledge").status_code == 303
    assert listed(console.get(PAGE + "?status=acknowledged")) == [reports["yellow_a"]]
    assert listed(console.get(PAGE + "?status=open&level=")) == [
        reports["red_a2"], reports["orange_a"], reports["red_a"], reports["green_a"]]
    assert listed(console.get(PAGE + "?status=open&level=yellow")) == []


def test_pages_run_from_the_urgent_part_into_the_rest(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    console = signed_in(client, people["staff_a"])
    seen: list[int] = []
    url: str | None = PAGE + "?limit=2"
    while url:
        page = console.get(url)
        seen += listed(page)
        found = re.search(r'href="([^"]+)" data-test="next-page"', page.get_data(as_text=True))
        url = found.group(1).replace("&amp;", "&") if found else None
    r = reports
    assert seen == [r["red_a2"], r["orange_a"], r["red_a"], r["yellow_a"], r["green_a"]]


@pytest.mark.parametrize(
    "query",
    ["?level=purple", "?status=closed", "?cursor=%%%", "?cursor=bm90IGEgY3Vyc29y", "?limit=0", "?limit=101",
     "?group=everything", "?area_id=abc", "?area_id=99999999", "?level=%ED%A0%80", "?assigned_to_me=maybe",
     "?received_from=yesterday", "?colour=red"],
)
def test_junk_filters_are_refused(client: FlaskClient, people: dict[str, Any], query: str) -> None:
    response = signed_in(client, people["staff_a"]).get(PAGE + query)
    assert 400 <= response.status_code < 500


def test_an_area_outside_is_out_of_scope(client: FlaskClient, tree: Tree, people: dict[str, Any]) -> None:
    response = signed_in(client, people["staff_a"]).get(f"{PAGE}?area_id={tree.community_b.id}")
    assert response.status_code == 403


# --- one report --------------------------------------------------------------------------------------


def test_a_report_shows_its_details_history_and_photos(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    report_id = reports["red_a"]
    uploaded = client.post(
        f"/api/v1/reports/{report_id}/photos",
        data={"client_id": str(uuid.uuid4()), "file": (io.BytesIO(jpeg()), "p.jpg")},
        content_type="multipart/form-data", headers=headers_for(people["volunteer"].user),
    )
    assert uploaded.status_code == 201
    photo_id = uploaded.get_json()["id"]
    console = signed_in(client, people["organiser"])
    page = console.get(f"{PAGE}{report_id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "red 井盖缺失" in text and 'data-action="filed"' in text
    assert people["volunteer"].real_name in text
    photo_url = f"{PAGE}{report_id}/photos/{photo_id}"
    assert f'src="{photo_url}"' in text
    served = console.get(photo_url)
    api = client.get(f"/api/v1/reports/{report_id}/photos/{photo_id}", headers=headers_for(people["organiser"]))
    assert served.status_code == 200 and served.mimetype == "image/jpeg" and served.data == api.data
    # Out of reach: the very 404 of a missing id, for the photo as for the report.
    other = signed_in(client.application.test_client(), people["organiser_b"])
    assert other.get(photo_url).status_code == 404
    assert problem_section(other.get(photo_url)) == problem_section(other.get(f"{PAGE}99999/photos/{photo_id}"))
    assert other.get(f"{PAGE}{report_id}/photos/{photo_id + 100}").status_code == 404


def test_a_report_out_of_reach_is_a_missing_id(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    console = signed_in(client, people["organiser"])
    missing = console.get(f"{PAGE}99999")
    assert missing.status_code == 404
    for report_id in (reports["red_a2"], reports["red_b"]):  # a sibling community; another district
        refused = console.get(f"{PAGE}{report_id}")
        assert refused.status_code == 404 and problem_section(refused) == problem_section(missing)
        before = state(report_id)
        for step, form in (("acknowledge", {}), ("assign", {"assignee_id": str(people["organiser"].id)}),
                           ("escalate", {}), ("resolve", {"note": "x"})):
            posted = console.post(f"{PAGE}{report_id}/{step}", form)
            assert posted.status_code == 404 and problem_section(posted) == problem_section(missing)
        assert state(report_id) == before


# --- handling --------------------------------------------------------------------------------------


def test_acknowledge_assign_resolve_change_what_the_api_changes(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    organiser, report_id = people["organiser"], reports["red_a"]
    console = signed_in(client, organiser)
    changes: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        changes.append(kwargs)

    with signals.report_status_changed.connected_to(receiver):
        acknowledged = console.post(f"{PAGE}{report_id}/acknowledge", {"note": ""})
        assert acknowledged.status_code == 303 and acknowledged.headers["Location"].endswith(f"{PAGE}{report_id}")
        page = console.get(f"{PAGE}{report_id}").get_data(as_text=True)
        assert 'data-status="acknowledged"' in page and 'data-test="flash"' in page
        assert 'data-test="acknowledge-form"' not in page  # no longer a step from here
        assert console.post(f"{PAGE}{report_id}/assign", {"assignee_id": str(organiser.id), "note": "我去看看"}).status_code == 303
        assert console.post(f"{PAGE}{report_id}/resolve", {"note": "已补上井盖"}).status_code == 303
    after = state(report_id)
    assert after["status"] == "resolved" and after["assignee"] == organiser.id and after["note"] == "已补上井盖"
    assert after["events"] == [
        ("filed", None, "open", people["volunteer"].user_id, None, None),
        ("acknowledged", "open", "acknowledged", organiser.id, None, None),
        ("assigned", "acknowledged", "assigned", organiser.id, organiser.id, "我去看看"),
        ("resolved", "assigned", "resolved", organiser.id, None, "已补上井盖"),
    ]
    assert [(c["from_status"], c["to_status"], c["actor_id"]) for c in changes] == [
        ("open", "acknowledged", organiser.id), ("acknowledged", "assigned", organiser.id),
        ("assigned", "resolved", organiser.id),
    ]
    api = client.get(f"/api/v1/reports/{report_id}", headers=headers_for(organiser)).get_json()
    assert [(e["action"], e["note"]) for e in api["history"]] == [(e[0], e[5]) for e in after["events"]]
    page = console.get(f"{PAGE}{report_id}").get_data(as_text=True)
    assert "已补上井盖" in page and 'data-test="actions"' in page and 'data-test="resolve-form"' not in page


def test_the_assignees_offered_are_those_the_service_accepts(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    report_id = reports["red_a"]
    offered = re.compile(r'<select name="assignee_id".*?</select>', re.S)

    def options(user: User) -> set[int]:
        text = signed_in(client.application.test_client(), user).get(f"{PAGE}{report_id}").get_data(as_text=True)
        match = offered.search(text)
        assert match
        return {int(found) for found in re.findall(r'value="(\d+)"', match.group(0))}

    assert options(people["organiser"]) == {people["organiser"].id}
    assert options(people["staff_a"]) == {people["organiser"].id, people["staff_a"].id}
    console = signed_in(client.application.test_client(), people["staff_a"])
    before = state(report_id)
    for refused in (people["organiser_b"], people["organiser_a2"], people["volunteer"].user):
        response = console.post(f"{PAGE}{report_id}/assign", {"assignee_id": str(refused.id)})
        assert response.status_code == 422 and 'data-test="refusal"' in response.get_data(as_text=True)
    for junk in ("", "abc", "0", "99999999999", "1.5"):
        assert console.post(f"{PAGE}{report_id}/assign", {"assignee_id": junk}).status_code == 422
    assert state(report_id) == before


def test_escalation_hands_the_report_to_the_district(client: FlaskClient, tree: Tree, people: dict[str, Any], reports: dict[str, int]) -> None:
    report_id = reports["orange_a"]
    organiser = signed_in(client, people["organiser"])
    assert organiser.post(f"{PAGE}{report_id}/escalate", {"note": "涉及多个社区"}).status_code == 303
    escalated = state(report_id)
    assert escalated["status"] == "escalated" and escalated["escalated_to"] == tree.district_a.id
    assert escalated["events"][-1] == ("escalated", "open", "escalated", people["organiser"].id, None, "涉及多个社区")
    # The organiser may no longer act on it: the refusal shows on the page, nothing changed.
    refused = organiser.post(f"{PAGE}{report_id}/resolve", {"note": "x"})
    assert refused.status_code == 403 and 'data-test="refusal"' in refused.get_data(as_text=True)
    assert state(report_id) == escalated


@pytest.mark.parametrize(
    ("done", "step", "form", "status"),
    [
        (["acknowledge"], "acknowledge", {}, 409),
        (["resolve"], "escalate", {}, 409),
        (["resolve"], "resolve", {"note": "again"}, 409),
        ([], "resolve", {}, 422),
        ([], "resolve", {"note": "   "}, 422),
        ([], "resolve", {"note": "x" * 2001}, 422),
        ([], "acknowledge", {"note": "x" * 2001}, 422),
    ],
)
def test_what_the_service_refuses_shows_and_changes_nothing(
    client: FlaskClient, people: dict[str, Any], reports: dict[str, int], done: list[str], step: str,
    form: dict[str, str], status: int,
) -> None:
    report_id = reports["red_a"]
    console = signed_in(client, people["staff_a"])
    for previous in done:
        assert console.post(f"{PAGE}{report_id}/{previous}", {"note": "x"}).status_code == 303
    before = state(report_id)
    response = console.post(f"{PAGE}{report_id}/{step}", form)
    assert response.status_code == status
    assert 'data-test="refusal"' in response.get_data(as_text=True)
    assert state(report_id) == before


def test_without_the_csrf_token_nothing_changes(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    console = signed_in(client, people["organiser"])
    report_id = reports["red_a"]
    before = state(report_id)
    for step, form in (("acknowledge", {}), ("escalate", {}), ("resolve", {"note": "x"}),
                       ("assign", {"assignee_id": str(people["organiser"].id)})):
        assert console.post(f"{PAGE}{report_id}/{step}", form, with_csrf=False).status_code == 400
    assert state(report_id) == before


def test_junk_ids_and_steps_are_not_found(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    console = signed_in(client, people["staff_a"])
    report_id = reports["red_a"]
    before = state(report_id)
    for path in ("abc", "99999999999", "-1", f"{report_id}/photos/abc"):
        assert console.get(PAGE + path).status_code == 404
    for path in (f"{report_id}/reopen", "abc/acknowledge", "99999999999/acknowledge"):
        assert console.post(PAGE + path, {"note": "x"}).status_code == 404
    assert state(report_id) == before


def test_volunteers_do_not_get_triage(client: FlaskClient, people: dict[str, Any], reports: dict[str, int]) -> None:
    assert client.get(PAGE).status_code == 302
    from tests.console.support import Console

    volunteer = Console(client)
    volunteer.sign_in(people["volunteer"].user)
    assert client.get(f"{PAGE}{reports['red_a']}").status_code in (302, 403)
