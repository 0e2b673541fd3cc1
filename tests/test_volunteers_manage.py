"""Managing volunteers: scope, masking, vetting transitions, edits, lists, history, audit."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from accounts.models import User
from core.audit import AuditEntry
from core.extensions import db
from tests import factories
from volunteers import signals
from volunteers.models import StatusChange, Volunteer, VolunteerSkill

API = "/api/v1/volunteers"
EN = {"Accept-Language": "en"}
ID_A = factories.national_id(123, region="150202", birth="19850615")
ID_B = factories.national_id(456, region="150203", birth="19920101")


class People:
    def __init__(self, tree: Any) -> None:
        self.volunteer_a = factories.make_volunteer(
            tree.grid_a, status="pending", real_name="刘一", id_number=ID_A
        )
        self.volunteer_b = factories.make_volunteer(
            tree.grid_b, status="pending", real_name="陈二", id_number=ID_B
        )
        self.organiser_a = factories.make_user("organiser", tree.community_a)
        self.organiser_b = factories.make_user("organiser", tree.community_b)
        self.staff_a = factories.make_user("staff", tree.district_a)
        self.admin = factories.make_user("admin", tree.city)


@pytest.fixture
def people(tree) -> People:
    return People(tree)


def as_(user: User, **extra: str) -> dict[str, str]:
    return factories.headers_for(user, **extra)


def user_of(volunteer: Volunteer) -> User:
    return db.session.get(User, volunteer.user_id)


def state(volunteer_id: int) -> dict[str, Any]:
    volunteer = db.session.get(Volunteer, volunteer_id)
    return {
        "status": volunteer.status,
        "reason": volunteer.status_reason,
        "kind": volunteer.kind_id,
        "grid": volunteer.home_grid_id,
        "user_area": volunteer.user.area_id,
        "certificate": volunteer.certificate_no,
        "armband": volunteer.armband_no,
        "changes": count(StatusChange, StatusChange.volunteer_id == volunteer_id),
        "audits": count(AuditEntry, AuditEntry.target_id == str(volunteer_id)),
    }


def count(model: type, *where: Any) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


# --- scope -------------------------------------------------------------------------------------


def test_organiser_of_a_cannot_see_list_approve_or_edit_b(client, people) -> None:
    b = people.volunteer_b
    before = state(b.id)
    headers = as_(people.organiser_a, **EN)

    # Out of reach is answered exactly as an id that does not exist.
    missing = client.get(f"{API}/999999999", headers=headers)
    response = client.get(f"{API}/{b.id}", headers=headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "volunteer_not_found"
    assert response.get_json()["title"] == "Volunteer not found"
    assert response.get_data() == missing.get_data()

    listed = client.get(API, headers=headers).get_json()["items"]
    assert [item["id"] for item in listed] == [people.volunteer_a.id]

    for action, payload in (
        ("approve", {"certificate_no": "BT-9"}),
        ("reject", {"reason": "不在辖区"}),
        ("retire", {"reason": "不在辖区"}),
    ):
        response = client.post(f"{API}/{b.id}/{action}", json=payload, headers=headers)
        assert response.status_code == 404
        assert response.get_json()["code"] == "volunteer_not_found"
    response = client.patch(f"{API}/{b.id}", json={"certificate_no": "BT-9"}, headers=headers)
    assert response.status_code == 404
    assert client.get(f"{API}/{b.id}/history", headers=headers).status_code == 404
    assert state(b.id) == before


def test_organiser_cannot_move_a_volunteer_out_of_their_area(client, tree, people) -> None:
    a = people.volunteer_a
    before = state(a.id)
    response = client.patch(
        f"{API}/{a.id}", json={"home_grid_id": tree.grid_b.id}, headers=as_(people.organiser_a)
    )
    assert response.status_code == 403
    assert response.get_json()["code"] == "out_of_scope"
    assert state(a.id) == before


def test_volunteer_cannot_manage_anyone_even_themself(client, people) -> None:
    a = people.volunteer_a
    before = state(a.id)
    headers = as_(user_of(a))
    for method, path, payload in (
        ("post", f"{API}/{a.id}/approve", {"certificate_no": "BT-1"}),
        ("post", f"{API}/{people.volunteer_b.id}/reject", {"reason": "x"}),
        ("patch", f"{API}/{a.id}", {"certificate_no": "BT-1"}),
        ("get", f"{API}/{a.id}", None),
        ("get", API, None),
        ("get", f"{API}/{a.id}/history", None),
    ):
        response = getattr(client, method)(path, json=payload, headers=headers)
        assert response.status_code == 403, (method, path)
        assert response.get_json()["code"] == "forbidden"
        assert response.get_json()["title"] == "无权执行此操作"
    assert state(a.id) == before


def test_anonymous_callers_are_401(client, people) -> None:
    a = people.volunteer_a
    assert client.get(API).status_code == 401
    assert client.get(f"{API}/{a.id}").status_code == 401
    assert client.post(f"{API}/{a.id}/approve", json={"certificate_no": "x"}).status_code == 401


def test_staff_of_district_a_see_a_unmasked_but_not_b(client, people) -> None:
    headers = as_(people.staff_a)
    response = client.get(f"{API}/{people.volunteer_a.id}", headers=headers)
    assert response.status_code == 200
    assert response.get_json()["national_id"] == ID_A
    listed = client.get(API, headers=headers).get_json()["items"]
    assert [(v["id"], v["national_id"]) for v in listed] == [(people.volunteer_a.id, ID_A)]
    response = client.get(f"{API}/{people.volunteer_b.id}", headers=headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "volunteer_not_found"


def test_organisers_see_masked_id_and_full_phone(client, people) -> None:
    response = client.get(f"{API}/{people.volunteer_a.id}", headers=as_(people.organiser_a))
    data = response.get_json()
    assert data["national_id"] == ID_A[:4] + "*" * 10 + ID_A[-4:]
    assert data["national_id"].startswith("1502**********")
    assert ID_A not in response.get_data(as_text=True)
    assert data["phone"] == user_of(people.volunteer_a).phone
    listed = client.get(API, headers=as_(people.organiser_a)).get_json()["items"]
    assert listed[0]["national_id"] == data["national_id"]


def test_admin_sees_every_district_unmasked(client, people) -> None:
    listed = client.get(API, headers=as_(people.admin)).get_json()["items"]
    assert {(v["id"], v["national_id"]) for v in listed} == {
        (people.volunteer_a.id, ID_A),
        (people.volunteer_b.id, ID_B),
    }


def test_unknown_volunteer_is_404(client, people) -> None:
    response = client.get(f"{API}/999999", headers=as_(people.admin, **EN))
    assert response.status_code == 404
    assert response.get_json()["code"] == "volunteer_not_found"
    assert client.get(f"{API}/{2**40}", headers=as_(people.admin)).status_code == 404
    response = client.post(f"{API}/999999/approve", json={"certificate_no": "x"}, headers=as_(people.admin))
    assert response.status_code == 404
    assert response.get_json()["title"] == "志愿者不存在"


def test_output_never_contains_secrets(client, people) -> None:
    response = client.get(f"{API}/{people.volunteer_a.id}", headers=as_(people.admin))
    text = response.get_data(as_text=True)
    volunteer = db.session.get(Volunteer, people.volunteer_a.id)
    assert volunteer.national_id_hash not in text
    assert volunteer.national_id_encrypted not in text
    assert user_of(volunteer).password_hash not in text
    assert set(response.get_json()) == {
        "id", "user_id", "real_name", "phone", "national_id", "kind", "home_grid", "status",
        "status_reason", "skills", "emergency_contact", "certificate_no", "armband_no",
        "consent_version", "consented_at", "closure_requested_at", "created_at", "updated_at",
    }


# --- transitions -------------------------------------------------------------------------------

VALID = [
    ("pending", "approve", {"certificate_no": "BT-2026-0007", "armband_no": "YJ-0007"}, "active"),
    ("pending", "reject", {"reason": "资料不全"}, "rejected"),
    ("active", "suspend", {"reason": "多次缺勤"}, "suspended"),
    ("suspended", "reinstate", {"reason": "已整改"}, "active"),
    ("suspended", "reinstate", {}, "active"),
    ("active", "retire", {"reason": "年龄原因"}, "retired"),
    ("suspended", "retire", {"reason": "长期停用"}, "retired"),
    ("pending", "retire", {"reason": "本人撤回"}, "retired"),
]
SIGNAL_OF = {
    "approve": signals.volunteer_approved,
    "reject": signals.volunteer_rejected,
    "suspend": signals.volunteer_suspended,
    "reinstate": signals.volunteer_reinstated,
    "retire": signals.volunteer_retired,
}


@pytest.mark.parametrize(("start", "action", "payload", "target"), VALID)
def test_valid_transitions(client, tree, people, start, action, payload, target) -> None:
    volunteer = factories.make_volunteer(tree.grid_a_east, status=start)
    received: list[dict[str, Any]] = []

    def listener(sender: Any, **kwargs: Any) -> None:
        received.append({"sender": sender, **kwargs})

    with SIGNAL_OF[action].connected_to(listener):
        response = client.post(
            f"{API}/{volunteer.id}/{action}", json=payload, headers=as_(people.organiser_a)
        )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["status"] == target
    reason = payload.get("reason")
    assert data["status_reason"] == reason
    if action == "approve":
        assert data["certificate_no"] == "BT-2026-0007" and data["armband_no"] == "YJ-0007"

    change = db.session.scalars(
        sa.select(StatusChange).where(StatusChange.volunteer_id == volunteer.id)
    ).one()
    assert (change.from_status, change.to_status, change.reason, change.actor_id) == (
        start, target, reason, people.organiser_a.id,
    )
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.target_id == str(volunteer.id))
    ).one()
    assert entry.action == f"volunteer.{action}"
    assert entry.actor_id == people.organiser_a.id and entry.actor_role == "organiser"
    assert entry.target_type == "volunteer" and entry.area_path == tree.grid_a_east.path
    assert entry.before["status"] == start and entry.after["status"] == target
    assert received == [
        {
            "sender": signals.SENDER,
            "volunteer_id": volunteer.id,
            "actor_id": people.organiser_a.id,
            "reason": reason,
        }
    ]


INVALID = [
    ("active", "approve", {"certificate_no": "BT-1"}),
    ("rejected", "approve", {"certificate_no": "BT-1"}),
    ("retired", "approve", {"certificate_no": "BT-1"}),
    ("suspended", "approve", {"certificate_no": "BT-1"}),
    ("active", "reject", {"reason": "x"}),
    ("rejected", "reject", {"reason": "x"}),
    ("pending", "suspend", {"reason": "x"}),
    ("suspended", "suspend", {"reason": "x"}),
    ("retired", "suspend", {"reason": "x"}),
    ("active", "reinstate", {}),
    ("pending", "reinstate", {}),
    ("rejected", "reinstate", {}),
    ("retired", "retire", {"reason": "x"}),
    ("rejected", "retire", {"reason": "x"}),
]


@pytest.mark.parametrize(("start", "action", "payload"), INVALID)
def test_invalid_transitions_are_409_and_change_nothing(
    client, tree, people, start, action, payload
) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, status=start)
    before = state(volunteer.id)
    response = client.post(
        f"{API}/{volunteer.id}/{action}", json=payload, headers=as_(people.staff_a, **EN)
    )
    assert response.status_code == 409
    problem = response.get_json()
    assert problem["code"] == "invalid_status_transition"
    assert problem["title"] == "Status change not allowed"
    assert state(volunteer.id) == before


def test_invalid_transition_in_chinese(client, people) -> None:
    volunteer = people.volunteer_a
    client.post(f"{API}/{volunteer.id}/reject", json={"reason": "x"}, headers=as_(people.organiser_a))
    response = client.post(
        f"{API}/{volunteer.id}/approve", json={"certificate_no": "BT-1"}, headers=as_(people.organiser_a)
    )
    assert response.status_code == 409
    assert response.get_json()["title"] == "不允许的状态变更"
    assert response.get_json()["detail"] == "志愿者当前状态不允许此状态变更。"


@pytest.mark.parametrize(
    ("action", "payload", "field"),
    [
        ("approve", {}, "certificate_no"),
        ("approve", {"certificate_no": ""}, "certificate_no"),
        ("approve", {"certificate_no": "x" * 51}, "certificate_no"),
        ("approve", {"certificate_no": "BT-1", "armband_no": "x" * 51}, "armband_no"),
        ("approve", {"certificate_no": "BT-1", "status": "active"}, "status"),
        ("reject", {}, "reason"),
        ("reject", {"reason": "   "}, "reason"),
        ("reject", {"reason": "x" * 501}, "reason"),
        ("retire", {}, "reason"),
    ],
)
def test_transition_input_is_validated(client, people, action, payload, field) -> None:
    before = state(people.volunteer_a.id)
    response = client.post(
        f"{API}/{people.volunteer_a.id}/{action}", json=payload, headers=as_(people.organiser_a)
    )
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [field]
    assert state(people.volunteer_a.id) == before


def test_suspend_needs_a_reason(client, tree, people) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, status="active")
    response = client.post(f"{API}/{volunteer.id}/suspend", json={}, headers=as_(people.organiser_a))
    assert response.status_code == 422
    assert state(volunteer.id)["status"] == "active"


def test_full_lifecycle_and_history_newest_first(client, people) -> None:
    volunteer_id = people.volunteer_a.id
    headers = as_(people.organiser_a)
    steps = [
        ("approve", {"certificate_no": "BT-1"}),
        ("suspend", {"reason": "缺勤"}),
        ("reinstate", {}),
        ("retire", {"reason": "退休"}),
    ]
    for action, payload in steps:
        assert client.post(f"{API}/{volunteer_id}/{action}", json=payload, headers=headers).status_code == 200
    response = client.get(f"{API}/{volunteer_id}/history", headers=headers)
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [(i["from_status"], i["to_status"], i["reason"]) for i in items] == [
        ("active", "retired", "退休"),
        ("suspended", "active", None),
        ("active", "suspended", "缺勤"),
        ("pending", "active", None),
    ]
    assert all(i["actor_id"] == people.organiser_a.id for i in items)
    assert items[0]["at"].endswith("+00:00")

    page = client.get(f"{API}/{volunteer_id}/history?limit=3", headers=headers).get_json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = client.get(
        f"{API}/{volunteer_id}/history?limit=3&cursor={page['next_cursor']}", headers=headers
    ).get_json()
    assert [i["to_status"] for i in rest["items"]] == ["active"]
    assert rest["next_cursor"] is None


# --- edits by managers -------------------------------------------------------------------------


def test_manager_edits_kind_grid_certificate_and_armband_audited(client, tree, people) -> None:
    volunteer = people.volunteer_a
    response = client.patch(
        f"{API}/{volunteer.id}",
        json={
            "kind": "alley_steward",
            "home_grid_id": tree.grid_a2.id,
            "certificate_no": "BT-2026-0100",
            "armband_no": "XG-0100",
        },
        headers=as_(people.staff_a),
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["kind"]["code"] == "alley_steward"
    assert data["home_grid"]["id"] == tree.grid_a2.id
    assert data["certificate_no"] == "BT-2026-0100" and data["armband_no"] == "XG-0100"
    assert state(volunteer.id)["user_area"] == tree.grid_a2.id

    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "volunteer.update")
    ).one()
    assert entry.actor_id == people.staff_a.id and entry.area_path == tree.grid_a.path
    assert entry.before == {
        "kind": "volunteer_police",
        "home_grid_id": tree.grid_a.id,
        "certificate_no": None,
        "armband_no": None,
    }
    assert entry.after == {
        "kind": "alley_steward",
        "home_grid_id": tree.grid_a2.id,
        "certificate_no": "BT-2026-0100",
        "armband_no": "XG-0100",
    }
    # The organiser of community A no longer sees the volunteer who moved to A2.
    response = client.get(f"{API}/{volunteer.id}", headers=as_(people.organiser_a))
    assert response.status_code == 404 and response.get_json()["code"] == "volunteer_not_found"


def test_manager_clears_armband(client, people) -> None:
    path = f"{API}/{people.volunteer_a.id}"
    client.patch(path, json={"armband_no": "A-1"}, headers=as_(people.organiser_a))
    response = client.patch(path, json={"armband_no": None}, headers=as_(people.organiser_a))
    assert response.status_code == 200
    assert response.get_json()["armband_no"] is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"status": "active"}, "status"),
        ({"real_name": "改名"}, "real_name"),
        ({"national_id": ID_B}, "national_id"),
        ({"kind": "space_ranger"}, "kind"),
        ({"home_grid_id": "grid"}, "home_grid_id"),
        ({"certificate_no": None}, "certificate_no"),
        ({"certificate_no": ""}, "certificate_no"),
        ({}, "_schema"),
    ],
)
def test_manager_edit_validation_changes_nothing(client, people, payload, field) -> None:
    before = state(people.volunteer_a.id)
    response = client.patch(
        f"{API}/{people.volunteer_a.id}", json=payload, headers=as_(people.organiser_a)
    )
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [field]
    assert state(people.volunteer_a.id) == before


def test_home_grid_must_be_a_grid(client, tree, people) -> None:
    before = state(people.volunteer_a.id)
    response = client.patch(
        f"{API}/{people.volunteer_a.id}",
        json={"home_grid_id": tree.community_a.id},
        headers=as_(people.organiser_a, **EN),
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"home_grid_id": ["Not a grid."]}
    assert state(people.volunteer_a.id) == before


def test_no_op_edit_writes_no_audit(client, people) -> None:
    response = client.patch(
        f"{API}/{people.volunteer_a.id}", json={"kind": "volunteer_police"}, headers=as_(people.organiser_a)
    )
    assert response.status_code == 200
    assert count(AuditEntry, AuditEntry.action == "volunteer.update") == 0


# --- lists -------------------------------------------------------------------------------------


@pytest.fixture
def crowd(tree, people) -> dict[str, Volunteer]:
    made = {
        "east_active": factories.make_volunteer(tree.grid_a_east, status="active", real_name="周八"),
        "a2_steward": factories.make_volunteer(
            tree.grid_a2, status="active", real_name="吴九", kind_code="alley_steward", phone="+8613977778888"
        ),
        "a_suspended": factories.make_volunteer(tree.grid_a, status="suspended", real_name="郑十"),
    }
    made["east_active"].skills = [VolunteerSkill(skill="急救"), VolunteerSkill(skill="驾驶")]
    made["a2_steward"].skills = [VolunteerSkill(skill="急救")]
    db.session.flush()
    return made


def ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


def test_filters(client, tree, people, crowd) -> None:
    headers = as_(people.staff_a)
    a, east, a2, susp = people.volunteer_a, crowd["east_active"], crowd["a2_steward"], crowd["a_suspended"]
    assert ids(client.get(API, headers=headers)) == sorted([a.id, east.id, a2.id, susp.id])
    assert ids(client.get(f"{API}?status=active", headers=headers)) == sorted([east.id, a2.id])
    assert ids(client.get(f"{API}?kind=alley_steward", headers=headers)) == [a2.id]
    assert ids(client.get(f"{API}?grid_id={tree.grid_a.id}", headers=headers)) == sorted([a.id, susp.id])
    assert ids(client.get(f"{API}?under={tree.community_a.id}", headers=headers)) == sorted(
        [a.id, east.id, susp.id]
    )
    assert ids(client.get(f"{API}?under={tree.community_a2.id}", headers=headers)) == [a2.id]
    assert ids(client.get(f"{API}?skill=急救", headers=headers)) == sorted([east.id, a2.id])
    assert ids(client.get(f"{API}?skill=驾驶&status=active", headers=headers)) == [east.id]
    assert ids(client.get(f"{API}?q=吴", headers=headers)) == [a2.id]
    assert ids(client.get(f"{API}?q=7777", headers=headers)) == [a2.id]
    assert ids(client.get(f"{API}?q=139-7777", headers=headers)) == [a2.id]
    assert ids(client.get(f"{API}?q=%25", headers=headers)) == []  # LIKE wildcards are literal
    assert ids(client.get(f"{API}?status=rejected", headers=headers)) == []


def test_filters_outside_scope_are_403(client, tree, people, crowd) -> None:
    headers = as_(people.organiser_a)
    for query in (f"grid_id={tree.grid_b.id}", f"grid_id={tree.grid_a2.id}", f"under={tree.district_b.id}",
                  f"under={tree.city.id}", f"under={tree.community_a2.id}"):
        response = client.get(f"{API}?{query}", headers=headers)
        assert response.status_code == 403, query
        assert response.get_json()["code"] == "out_of_scope"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=sleeping", "status"),
        ("kind=space_ranger", "kind"),
        ("grid_id=COMMUNITY", "grid_id"),
        ("grid_id=abc", "grid_id"),
        ("under=987654", "under"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("q=a%00b", "q"),
        ("skill=%00", "skill"),
        ("kind=ab%00", "kind"),
    ],
)
def test_bad_filters_are_422(client, tree, people, query, field) -> None:
    query = query.replace("COMMUNITY", str(tree.community_a.id))
    response = client.get(f"{API}?{query}", headers=as_(people.organiser_a))
    assert response.status_code == 422
    assert list(response.get_json()["errors"]) == [field]


def test_cursor_pagination_across_pages(client, tree, people) -> None:
    extra = [factories.make_volunteer(tree.grid_a_east, status="active") for _ in range(6)]
    expected = sorted([people.volunteer_a.id] + [v.id for v in extra])
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        url = f"{API}?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=as_(people.organiser_a)).get_json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    assert pages == 3


def test_filters_combine_with_pagination(client, tree, people) -> None:
    active = [factories.make_volunteer(tree.grid_a_east, status="active") for _ in range(3)]
    factories.make_volunteer(tree.grid_a_east, status="pending")
    first = client.get(f"{API}?status=active&limit=2", headers=as_(people.organiser_a)).get_json()
    second = client.get(
        f"{API}?status=active&limit=2&cursor={first['next_cursor']}", headers=as_(people.organiser_a)
    ).get_json()
    assert [i["id"] for i in first["items"] + second["items"]] == [v.id for v in active]
    assert second["next_cursor"] is None
