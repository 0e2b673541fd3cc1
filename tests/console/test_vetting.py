"""The vetting queue (/console/vetting/) through the test client: what it lists and masks for an
organiser and for staff (as the API answers them), approve and reject changing exactly what the
API's endpoints change, and every refusal (CSRF, reach, state, bad input) changing nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from accounts.models import User
from core.audit import AuditEntry
from core.extensions import db
from tests import factories
from tests.conftest import Tree
from tests.console.support import Console, signed_in
from volunteers.models import StatusChange, Volunteer

PAGE = "/console/vetting/"
ID_A = factories.national_id(123, region="150202", birth="19880101")


class People:
    def __init__(self, tree: Tree) -> None:
        self.pending_a = factories.make_volunteer(tree.grid_a, status="pending", real_name="刘一", id_number=ID_A)
        self.pending_a_east = factories.make_volunteer(tree.grid_a_east, status="pending", real_name="王五")
        self.pending_a2 = factories.make_volunteer(tree.grid_a2, status="pending", real_name="赵六")
        self.pending_b = factories.make_volunteer(tree.grid_b, status="pending", real_name="陈二")
        self.active_a = factories.make_volunteer(tree.grid_a, status="active", real_name="孙七")
        self.organiser_a = factories.make_user("organiser", tree.community_a)
        self.staff_a = factories.make_user("staff", tree.district_a)


@pytest.fixture
def people(tree: Tree) -> People:
    return People(tree)


def state(volunteer_id: int) -> dict[str, Any]:
    volunteer = db.session.get(Volunteer, volunteer_id)
    assert volunteer is not None
    return {
        "status": volunteer.status, "reason": volunteer.status_reason,
        "certificate": volunteer.certificate_no, "armband": volunteer.armband_no,
        "changes": _count(StatusChange, StatusChange.volunteer_id == volunteer_id),
        "audits": _count(AuditEntry, AuditEntry.target_id == str(volunteer_id)),
    }


def _count(model: type, *where: Any) -> int:
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


def listed(page: Any, status: int = 200) -> list[int]:
    assert page.status_code == status, page.get_data(as_text=True)[:2000]
    return [int(found) for found in re.findall(r'data-volunteer-id="(\d+)"', page.get_data(as_text=True))]


def national_ids(page: Any) -> list[str]:
    return re.findall(r'data-test="national-id">([^<]*)<', page.get_data(as_text=True))


def api_pending(client: FlaskClient, user: User) -> list[dict[str, Any]]:
    response = client.get("/api/v1/volunteers", query_string={"status": "pending", "limit": 100},
                          headers=factories.headers_for(user))
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def problem_section(page: Any) -> str:
    """The error page's message, without what differs from one page to the next (CSRF tokens)."""
    match = re.search(r'<section class="card problem">.*?</section>', page.get_data(as_text=True), re.S)
    assert match, page.get_data(as_text=True)[:2000]
    return match.group(0)


# --- what is listed ------------------------------------------------------------------------------


def test_organiser_sees_the_pending_of_their_community_masked_as_the_api(client: FlaskClient, people: People) -> None:
    console = signed_in(client, people.organiser_a)
    page = console.get(PAGE)
    assert listed(page) == [people.pending_a.id, people.pending_a_east.id]  # oldest first, no other community
    api = api_pending(client, people.organiser_a)
    assert [item["id"] for item in api] == listed(page)
    assert national_ids(page) == [item["national_id"] for item in api]
    assert national_ids(page)[0] == ID_A[:4] + "*" * 10 + ID_A[-4:] != ID_A
    text = page.get_data(as_text=True)
    assert people.pending_a.user.phone in text and people.pending_a.home_grid.name in text
    assert ID_A not in text and "陈二" not in text and "孙七" not in text


def test_staff_sees_the_district_in_full(client: FlaskClient, people: People) -> None:
    page = signed_in(client, people.staff_a).get(PAGE)
    expected = [people.pending_a.id, people.pending_a_east.id, people.pending_a2.id]
    assert listed(page) == expected == [item["id"] for item in api_pending(client, people.staff_a)]
    assert national_ids(page)[0] == ID_A


def test_the_queue_pages_with_the_api_cursor(client: FlaskClient, people: People) -> None:
    console = signed_in(client, people.staff_a)
    first = console.get(PAGE + "?limit=2")
    assert listed(first) == [people.pending_a.id, people.pending_a_east.id]
    following = re.search(r'href="([^"]+)" data-test="next-page"', first.get_data(as_text=True))
    assert following
    second = console.get(following.group(1).replace("&amp;", "&"))
    assert listed(second) == [people.pending_a2.id]
    assert 'data-test="next-page"' not in second.get_data(as_text=True)


def test_volunteers_and_signed_out_browsers_do_not_get_the_queue(client: FlaskClient, people: People) -> None:
    assert client.get(PAGE).status_code == 302
    volunteer = Console(client)
    volunteer.sign_in(people.active_a.user)
    assert client.get(PAGE).status_code in (302, 403)


# --- approve and reject ----------------------------------------------------------------------------


def test_approve_changes_what_the_api_changes(client: FlaskClient, tree: Tree, people: People) -> None:
    console = signed_in(client, people.organiser_a)
    volunteer_id = people.pending_a.id
    response = console.post(f"{PAGE}{volunteer_id}/approve", {"certificate_no": "BT-2026-0007", "armband_no": "YJ-7"})
    assert response.status_code == 303 and response.headers["Location"].endswith(PAGE)
    assert state(volunteer_id) == {"status": "active", "reason": None, "certificate": "BT-2026-0007",
                                   "armband": "YJ-7", "changes": 1, "audits": 1}
    change = db.session.scalars(sa.select(StatusChange).where(StatusChange.volunteer_id == volunteer_id)).one()
    assert (change.from_status, change.to_status, change.actor_id) == ("pending", "active", people.organiser_a.id)
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.target_id == str(volunteer_id))).one()
    assert entry.action == "volunteer.approve" and entry.actor_role == "organiser"
    assert entry.area_path == tree.grid_a.path and (entry.after or {})["certificate_no"] == "BT-2026-0007"
    after = console.get(PAGE)
    assert listed(after) == [people.pending_a_east.id]
    assert 'data-test="flash"' in after.get_data(as_text=True) and "刘一" in after.get_data(as_text=True)


def test_reject_records_the_reason(client: FlaskClient, people: People) -> None:
    console = signed_in(client, people.staff_a)
    response = console.post(f"{PAGE}{people.pending_a2.id}/reject", {"reason": "资料不全"})
    assert response.status_code == 303
    assert state(people.pending_a2.id) == {"status": "rejected", "reason": "资料不全", "certificate": None,
                                           "armband": None, "changes": 1, "audits": 1}
    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.target_id == str(people.pending_a2.id))).one()
    assert entry.action == "volunteer.reject" and entry.actor_id == people.staff_a.id


@pytest.mark.parametrize(
    ("action", "form", "status"),
    [
        ("reject", {}, 422),
        ("reject", {"reason": ""}, 422),
        ("reject", {"reason": "   "}, 422),
        ("reject", {"reason": "x" * 501}, 422),
        ("approve", {}, 422),
        ("approve", {"certificate_no": "x" * 51}, 422),
        ("approve", {"certificate_no": "BT-1", "armband_no": "x" * 51}, 422),
    ],
)
def test_bad_forms_show_the_queue_again_and_change_nothing(
    client: FlaskClient, people: People, action: str, form: dict[str, str], status: int
) -> None:
    console = signed_in(client, people.organiser_a)
    before = state(people.pending_a.id)
    response = console.post(f"{PAGE}{people.pending_a.id}/{action}", form)
    assert response.status_code == status
    assert 'data-test="refusal"' in response.get_data(as_text=True)
    assert listed(response, status) == [people.pending_a.id, people.pending_a_east.id]
    assert state(people.pending_a.id) == before


def test_a_volunteer_no_longer_pending_is_refused_unchanged(client: FlaskClient, people: People) -> None:
    console = signed_in(client, people.organiser_a)
    before = state(people.active_a.id)
    response = console.post(f"{PAGE}{people.active_a.id}/approve", {"certificate_no": "BT-9"})
    assert response.status_code == 409 and 'data-test="refusal"' in response.get_data(as_text=True)
    assert console.post(f"{PAGE}{people.active_a.id}/reject", {"reason": "x"}).status_code == 409
    assert state(people.active_a.id) == before


def test_without_the_csrf_token_nothing_changes(client: FlaskClient, people: People) -> None:
    console = signed_in(client, people.organiser_a)
    before = state(people.pending_a.id)
    assert console.post(f"{PAGE}{people.pending_a.id}/approve", {"certificate_no": "BT-1"}, with_csrf=False).status_code == 400
    assert console.post(f"{PAGE}{people.pending_a.id}/reject", {"reason": "x", "csrf_token": "forged"}, with_csrf=False).status_code == 400
    assert state(people.pending_a.id) == before


def test_a_sibling_communitys_volunteer_is_a_missing_id(client: FlaskClient, people: People) -> None:
    console = signed_in(client, people.organiser_a)
    out_of_reach = [people.pending_b, people.pending_a2]  # another district; a sibling community
    befores = [state(volunteer.id) for volunteer in out_of_reach]
    missing = console.post(f"{PAGE}99999/approve", {"certificate_no": "BT-1"})
    assert missing.status_code == 404
    for volunteer in out_of_reach:
        for action, form in (("approve", {"certificate_no": "BT-1"}), ("reject", {"reason": "x"})):
            refused = console.post(f"{PAGE}{volunteer.id}/{action}", form)
            assert refused.status_code == 404
            assert problem_section(refused) == problem_section(missing)
    assert [state(volunteer.id) for volunteer in out_of_reach] == befores


@pytest.mark.parametrize(
    "query",
    ["?cursor=%%%", "?cursor=bm90IGEgY3Vyc29y", "?limit=0", "?limit=abc", "?limit=100000000000000000000",
     "?cursor=" + "a" * 200, "?cursor=%ED%A0%80", "?status=active", "?limit=%ED%A0%80"],
)
def test_junk_query_strings_are_refused(client: FlaskClient, people: People, query: str) -> None:
    response = signed_in(client, people.staff_a).get(PAGE + query)
    assert 400 <= response.status_code < 500


def test_junk_ids_are_not_found_and_change_nothing(client: FlaskClient, people: People) -> None:
    console = signed_in(client, people.staff_a)
    before = state(people.pending_a.id)
    for path in ("abc/approve", "99999999999999/approve", "-1/approve", f"{people.pending_a.id}/promote"):
        assert console.post(PAGE + path, {"certificate_no": "BT-1", "reason": "x"}).status_code == 404
    assert console.get(f"{PAGE}{people.pending_a.id}/approve").status_code in (404, 405)
    assert state(people.pending_a.id) == before


def test_undecodable_form_text_is_never_a_server_error(client: FlaskClient, people: People) -> None:
    """A form field whose bytes are no UTF-8 (a lone surrogate's encoding) never reaches the
    database as a surrogate: werkzeug keeps the invalid escape as the literal text it was sent as."""
    console = signed_in(client, people.organiser_a)
    response = client.post(
        f"{PAGE}{people.pending_a.id}/reject", data=f"csrf_token={console.csrf_token}&reason=%ED%A0%80".encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 303
    reason = state(people.pending_a.id)["reason"]
    assert reason == "%ED%A0%80" and reason.encode("utf-8")
