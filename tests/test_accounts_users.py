"""Account management by staff and admins, and reading the audit log: scope and rank refusals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from flask_jwt_extended import decode_token

from accounts.models import AuthSession, User
from accounts.passwords import verify_password
from core import audit
from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from tests import factories
from tests.conftest import Tree
from tests.problems import EN, assert_problem
from tests.test_accounts_auth import bearer, login

NEW_PASSWORD = "Grid-Keeper-2026"


@dataclass
class People:
    admin: User
    staff_a: User
    staff_b: User
    organiser_a: User
    organiser_a2: User
    organiser_b: User
    volunteer: User
    headers: dict[str, dict[str, str]]

    def as_(self, name: str, **extra: str) -> dict[str, str]:
        return {**self.headers[name], **extra}


@pytest.fixture
def people(tree: Tree) -> People:
    users = {
        "admin": factories.make_user("admin", tree.city, display_name="市管理员"),
        "staff_a": factories.make_user("staff", tree.district_a, display_name="东河区平安办"),
        "staff_b": factories.make_user("staff", tree.district_b, display_name="昆区平安办"),
        "organiser_a": factories.make_user("organiser", tree.community_a, display_name="东站社区组织者"),
        "organiser_a2": factories.make_user("organiser", tree.community_a2, display_name="北梁组织者"),
        "organiser_b": factories.make_user("organiser", tree.community_b, display_name="友谊社区组织者"),
        "volunteer": factories.make_volunteer(tree.grid_a).user,
    }
    headers = {name: factories.headers_for(user) for name, user in users.items()}
    return People(**users, headers=headers)


def count(model: type, *where: Any) -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def new_user(area_id: int, role: str = "organiser", **extra: Any) -> dict[str, Any]:
    return {
        "phone": factories.unique_phone(),
        "password": NEW_PASSWORD,
        "display_name": "新账户",
        "role": role,
        "area_id": area_id,
        **extra,
    }


def create(client: FlaskClient, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return client.post("/api/v1/users", json=payload, headers=headers or {})


def live_sessions(user: User) -> int:
    return count(AuthSession, AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))


# --- creating accounts ------------------------------------------------------------------------


def test_staff_creates_an_organiser_in_their_district(client: FlaskClient, tree: Tree, people: People) -> None:
    payload = new_user(tree.community_a.id, display_name=" 张社区 ")
    response = create(client, payload, people.as_("staff_a"))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert "password" not in body and "password_hash" not in body
    assert body["phone"] == payload["phone"]
    assert body["role"] == "organiser"
    assert body["display_name"] == "张社区"
    assert body["locale"] == "zh"
    assert body["is_active"] is True
    assert body["created_by_id"] == people.staff_a.id
    assert body["area"]["id"] == tree.community_a.id and body["area"]["path"] == tree.community_a.path

    db.session.expire_all()
    created = db.session.get(User, body["id"])
    assert verify_password(created.password_hash, NEW_PASSWORD)

    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.create")).one()
    assert (entry.actor_id, entry.actor_role) == (people.staff_a.id, "staff")
    assert (entry.target_type, entry.target_id) == ("user", str(created.id))
    assert entry.area_path == tree.community_a.path
    assert entry.before is None
    assert entry.after == {
        "phone": payload["phone"],
        "role": "organiser",
        "display_name": "张社区",
        "area_id": tree.community_a.id,
        "locale": "zh",
        "is_active": True,
    }
    # The new account can log in.
    assert login(client, payload["phone"], NEW_PASSWORD).status_code == 200


def test_who_may_grant_which_role(client: FlaskClient, tree: Tree, people: People) -> None:
    created = create(client, new_user(tree.subdistrict_a.id, "staff"), people.as_("staff_a"))
    assert created.status_code == 201
    before = count(User)

    body = assert_problem(
        create(client, new_user(tree.district_a.id, "admin"), people.as_("staff_a")),
        403,
        "role_not_allowed",
    )
    assert body["title"] == "无权授予该角色"
    body = assert_problem(
        create(client, new_user(tree.district_a.id, "volunteer"), people.as_("admin", **EN)),
        422,
        "validation_failed",
    )
    assert body["errors"] == {"role": ["Must be one of: organiser, staff, admin."]}
    for caller in ("organiser_a", "volunteer"):
        assert_problem(
            create(client, new_user(tree.community_a.id), people.as_(caller)), 403, "forbidden"
        )
    assert_problem(create(client, new_user(tree.community_a.id)), 401, "unauthorized")
    assert count(User) == before
    assert count(AuditEntry) == 1

    created = create(client, new_user(tree.district_a.id, "admin"), people.as_("admin"))
    assert created.status_code == 201


def test_creating_outside_the_callers_area_is_refused(client: FlaskClient, tree: Tree, people: People) -> None:
    before = count(User)
    body = assert_problem(
        create(client, new_user(tree.community_b.id), people.as_("staff_a")), 403, "out_of_scope"
    )
    assert body["title"] == "超出您的管辖区域"
    body = assert_problem(
        create(client, new_user(tree.city.id, "staff"), people.as_("staff_a", **EN)),
        403,
        "out_of_scope",
    )
    assert body["title"] == "Outside your area"
    assert count(User) == before
    assert count(AuditEntry) == 0


def test_create_validation(client: FlaskClient, tree: Tree, people: People) -> None:
    headers = people.as_("admin")
    body = assert_problem(
        create(client, new_user(987654), headers=headers), 422, "validation_failed"
    )
    assert body["errors"] == {"area_id": ["区域不存在。"]}
    body = assert_problem(
        create(client, new_user(2**40), headers=headers), 422, "validation_failed"
    )
    assert list(body["errors"]) == ["area_id"]
    body = assert_problem(
        client.post(
            "/api/v1/users",
            json={
                **new_user(tree.city.id),
                "password": "short",
                "phone": "110",
                "is_active": True,
                "display_name": "",
            },
            headers=people.as_("admin", **EN),
        ),
        422,
        "validation_failed",
    )
    assert body["errors"] == {
        "password": ["Length must be between 8 and 128."],
        "phone": ["Not a valid mainland China mobile number."],
        "is_active": ["Unknown field."],
        "display_name": ["Field may not be blank."],
    }
    body = assert_problem(
        create(client, {**new_user(tree.city.id), "display_name": "a\x00b"}, headers=headers),
        422,
        "validation_failed",
    )
    assert body["errors"] == {"display_name": ["不能包含 NUL 字符。"]}
    assert count(AuditEntry) == 0


def test_duplicate_phone_is_a_conflict(client: FlaskClient, tree: Tree, people: People) -> None:
    digits = people.organiser_a.phone.removeprefix("+86")
    spaced = f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    before = count(User)
    body = assert_problem(
        create(client, {**new_user(tree.community_a.id), "phone": spaced}, people.as_("staff_a")),
        409,
        "phone_taken",
    )
    assert body["title"] == "该手机号已注册"
    assert body["detail"] == "该手机号已注册。"
    # Volunteers' phones are taken too.
    assert_problem(
        client.post(
            "/api/v1/users",
            json={**new_user(tree.community_a.id), "phone": people.volunteer.phone},
            headers=people.as_("staff_a", **EN),
        ),
        409,
        "phone_taken",
    )
    assert count(User) == before
    assert count(AuditEntry) == 0


# --- listing and reading ----------------------------------------------------------------------


def list_ids(client: FlaskClient, headers: dict[str, str], **query: Any) -> list[int]:
    response = client.get("/api/v1/users", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


def test_listing_is_limited_to_the_callers_subtree(client: FlaskClient, tree: Tree, people: People) -> None:
    a_side = sorted([people.staff_a.id, people.organiser_a.id, people.organiser_a2.id])
    assert list_ids(client, people.as_("staff_a")) == a_side
    assert list_ids(client, people.as_("staff_b")) == sorted([people.staff_b.id, people.organiser_b.id])
    everyone = sorted(
        user.id
        for user in (people.admin, people.staff_a, people.staff_b, people.organiser_a, people.organiser_a2, people.organiser_b)
    )
    assert list_ids(client, people.as_("admin")) == everyone  # volunteers are not listed

    first = client.get("/api/v1/users", query_string={"limit": 2}, headers=people.as_("staff_a")).get_json()
    assert [item["id"] for item in first["items"]] == a_side[:2]
    assert first["items"][0]["area"]["path"].startswith(tree.district_a.path)
    second = client.get(
        "/api/v1/users", query_string={"limit": 2, "cursor": first["next_cursor"]}, headers=people.as_("staff_a")
    ).get_json()
    assert [item["id"] for item in second["items"]] == a_side[2:]
    assert second["next_cursor"] is None


def test_listing_filters(client: FlaskClient, tree: Tree, people: People) -> None:
    headers = people.as_("staff_a")
    assert list_ids(client, headers, role="organiser") == sorted([people.organiser_a.id, people.organiser_a2.id])
    assert list_ids(client, headers, area_id=tree.community_a.id) == [people.organiser_a.id]
    assert list_ids(client, headers, area_id=tree.subdistrict_a.id) == sorted(
        [people.organiser_a.id, people.organiser_a2.id]
    )
    assert list_ids(client, headers, q="北梁") == [people.organiser_a2.id]
    assert list_ids(client, headers, q=people.organiser_a.phone[-6:]) == [people.organiser_a.id]
    assert list_ids(client, headers, q="%") == []
    assert list_ids(client, headers, is_active="false") == []
    people.organiser_a2.is_active = False
    db.session.flush()
    assert list_ids(client, headers, is_active="false") == [people.organiser_a2.id]
    assert people.organiser_a2.id not in list_ids(client, headers, is_active="true")

    assert_problem(
        client.get("/api/v1/users", query_string={"area_id": tree.district_b.id}, headers=headers),
        403,
        "out_of_scope",
    )
    body = assert_problem(
        client.get(
            "/api/v1/users", query_string={"role": "volunteer", "limit": 0}, headers=people.as_("staff_a", **EN)
        ),
        422,
        "validation_failed",
    )
    assert set(body["errors"]) == {"role", "limit"}
    assert_problem(
        client.get("/api/v1/users", query_string={"cursor": "not-a-cursor"}, headers=headers),
        422,
        "validation_failed",
    )


@pytest.mark.parametrize("caller", ["organiser_a", "volunteer"])
def test_organisers_and_volunteers_may_not_manage_accounts(
    client: FlaskClient, people: People, caller: str
) -> None:
    headers = people.as_(caller)
    assert_problem(client.get("/api/v1/users", headers=headers), 403, "forbidden")
    assert_problem(client.get(f"/api/v1/users/{people.organiser_a.id}", headers=headers), 403, "forbidden")
    assert_problem(
        client.patch(f"/api/v1/users/{people.organiser_a.id}", json={"display_name": "x"}, headers=headers),
        403,
        "forbidden",
    )
    assert_problem(client.get("/api/v1/audit", headers=headers), 403, "forbidden")
    db.session.expire_all()
    assert db.session.get(User, people.organiser_a.id).display_name == "东站社区组织者"


def test_reading_one_account(client: FlaskClient, people: People) -> None:
    response = client.get(f"/api/v1/users/{people.organiser_a.id}", headers=people.as_("staff_a"))
    assert response.status_code == 200
    assert response.get_json()["display_name"] == "东站社区组织者"
    # Accounts outside one's area answer exactly as ids that do not exist.
    missing = client.get("/api/v1/users/999999999", headers=people.as_("staff_a"))
    assert_problem(missing, 404, "user_not_found")
    for user in (people.organiser_b, people.admin):
        out_of_reach = client.get(f"/api/v1/users/{user.id}", headers=people.as_("staff_a"))
        assert out_of_reach.get_data() == missing.get_data()
    body = assert_problem(
        client.get(f"/api/v1/users/{people.volunteer.id}", headers=people.as_("admin")), 404, "user_not_found"
    )
    assert body["title"] == "用户不存在"
    assert_problem(client.get("/api/v1/users/999999", headers=people.as_("admin", **EN)), 404, "user_not_found")
    assert_problem(client.get("/api/v1/users/99999999999999", headers=people.as_("admin")), 404, "not_found")


# --- changing accounts ------------------------------------------------------------------------


def patch_user(client: FlaskClient, user: User, changes: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.patch(f"/api/v1/users/{user.id}", json=changes, headers=headers)


def test_rename_and_move_within_scope(client: FlaskClient, tree: Tree, people: People) -> None:
    organiser_tokens = login(client, people.organiser_a.phone).get_json()
    response = patch_user(client, people.organiser_a, {"display_name": "东站社区王组织"}, people.as_("staff_a"))
    assert response.status_code == 200
    assert response.get_json()["display_name"] == "东站社区王组织"
    assert live_sessions(people.organiser_a) == 2  # a rename leaves the logins alone

    response = patch_user(client, people.organiser_a, {"area_id": tree.community_a2.id}, people.as_("staff_a"))
    assert response.status_code == 200
    assert response.get_json()["area"]["id"] == tree.community_a2.id
    # Its tokens carried the old scope: every login of the account ended.
    assert live_sessions(people.organiser_a) == 0
    assert_problem(client.get("/api/v1/me", headers=bearer(organiser_tokens["access_token"])), 401, "token_revoked")

    entries = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "user.update").order_by(AuditEntry.id)
    ).all()
    assert [(e.before, e.after) for e in entries] == [
        ({"display_name": "东站社区组织者"}, {"display_name": "东站社区王组织"}),
        ({"area_id": tree.community_a.id}, {"area_id": tree.community_a2.id}),
    ]
    assert entries[1].area_path == tree.community_a2.path
    assert all(e.target_id == str(people.organiser_a.id) for e in entries)

    # Nothing that differs: no audit entry. Nothing at all: 422.
    same = {"display_name": "东站社区王组织"}
    assert patch_user(client, people.organiser_a, same, people.as_("staff_a")).status_code == 200
    assert patch_user(client, people.organiser_a, {}, people.as_("staff_a")).status_code == 422
    assert count(AuditEntry) == 2


def test_moving_outside_scope_and_rank_refusals_change_nothing(
    client: FlaskClient, tree: Tree, people: People
) -> None:
    district_admin = factories.make_user("admin", tree.district_a, display_name="区管理员")
    headers = people.as_("staff_a")

    moved_out = patch_user(client, people.organiser_a, {"area_id": tree.community_b.id}, headers)
    assert_problem(moved_out, 403, "out_of_scope")
    assert_problem(patch_user(client, people.organiser_b, {"display_name": "x"}, headers), 404, "user_not_found")
    body = assert_problem(patch_user(client, district_admin, {"display_name": "x"}, headers), 403, "higher_role")
    assert body["title"] == "无权管理更高级别的账户"
    assert_problem(patch_user(client, district_admin, {"is_active": False}, headers), 403, "higher_role")
    body = assert_problem(
        patch_user(client, people.organiser_a, {"role": "admin"}, people.as_("staff_a", **EN)),
        403,
        "role_not_allowed",
    )
    assert body["title"] == "You may not grant this role"
    assert_problem(patch_user(client, people.organiser_a, {"role": "volunteer"}, headers), 422, "validation_failed")
    new_phone = patch_user(client, people.organiser_a, {"phone": "13800138000"}, headers)
    assert_problem(new_phone, 422, "validation_failed")
    assert_problem(patch_user(client, people.organiser_a, {"area_id": 987654}, headers), 422, "validation_failed")

    db.session.expire_all()
    assert db.session.get(User, people.organiser_a.id).area_id == tree.community_a.id
    assert db.session.get(User, people.organiser_a.id).role == "organiser"
    assert db.session.get(User, district_admin.id).display_name == "区管理员"
    assert db.session.get(User, people.organiser_b.id).display_name == "友谊社区组织者"
    assert count(AuditEntry) == 0


def test_promotion_up_to_the_callers_own_role(client: FlaskClient, people: People) -> None:
    tokens = login(client, people.organiser_a.phone).get_json()
    response = patch_user(client, people.organiser_a, {"role": "staff"}, people.as_("staff_a"))
    assert response.status_code == 200
    assert response.get_json()["role"] == "staff"
    assert_problem(client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])), 401, "token_revoked")
    assert live_sessions(people.organiser_a) == 0
    # The new role is in the next login's token.
    fresh = login(client, people.organiser_a.phone).get_json()
    assert decode_token(fresh["access_token"])["role"] == "staff"
    # Staff may manage their equals, e.g. demote them again.
    assert patch_user(client, people.organiser_a, {"role": "organiser"}, people.as_("staff_a")).status_code == 200


def test_deactivation_ends_every_login_and_blocks_login(client: FlaskClient, people: People) -> None:
    tokens = login(client, people.organiser_a.phone).get_json()
    response = patch_user(client, people.organiser_a, {"is_active": False}, people.as_("staff_a"))
    assert response.status_code == 200
    assert response.get_json()["is_active"] is False
    assert live_sessions(people.organiser_a) == 0
    assert db.session.scalars(
        sa.select(AuthSession.revoked_reason).where(AuthSession.user_id == people.organiser_a.id)
    ).all() == ["deactivated", "deactivated"]
    assert_problem(client.get("/api/v1/me", headers=bearer(tokens["access_token"])), 401, "token_revoked")
    assert_problem(client.get("/api/v1/me", headers=people.as_("organiser_a")), 401, "token_revoked")
    assert_problem(login(client, people.organiser_a.phone), 401, "invalid_credentials")

    entry = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.update")).one()
    assert (entry.before, entry.after) == ({"is_active": True}, {"is_active": False})

    assert patch_user(client, people.organiser_a, {"is_active": True}, people.as_("staff_a")).status_code == 200
    assert login(client, people.organiser_a.phone).status_code == 200


def test_callers_cannot_deactivate_themselves_or_change_their_own_role(client: FlaskClient, people: People) -> None:
    headers = people.as_("staff_a")
    body = assert_problem(patch_user(client, people.staff_a, {"is_active": False}, headers), 403, "own_account")
    assert body["detail"] == "不能停用自己的账户。"
    body = assert_problem(
        patch_user(client, people.staff_a, {"role": "organiser"}, people.as_("staff_a", **EN)), 403, "own_account"
    )
    assert body["detail"] == "You cannot change your own role."
    db.session.expire_all()
    assert db.session.get(User, people.staff_a.id).is_active is True
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    # Renaming oneself is fine.
    assert patch_user(client, people.staff_a, {"display_name": "平安办"}, headers).status_code == 200


def test_audit_never_holds_password_hashes(client: FlaskClient, tree: Tree, people: People) -> None:
    created = create(client, new_user(tree.community_a.id), people.as_("admin")).get_json()
    changes = {"is_active": False, "display_name": "y"}
    client.patch(f"/api/v1/users/{created['id']}", json=changes, headers=people.as_("admin"))
    entries = client.get("/api/v1/audit", headers=people.as_("admin")).get_json()["items"]
    assert len(entries) == 2
    text = str(entries)
    assert "argon2" not in text and "password" not in text and NEW_PASSWORD not in text


# --- audit log --------------------------------------------------------------------------------


def audit_ids(client: FlaskClient, headers: dict[str, str], **query: Any) -> list[int]:
    response = client.get("/api/v1/audit", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


@pytest.fixture
def entries(client: FlaskClient, tree: Tree, people: People) -> dict[str, int]:
    """One account created in each district through the API, plus a grid change recorded in B."""
    a = create(client, new_user(tree.community_a.id), people.as_("staff_a")).get_json()
    b = create(client, new_user(tree.community_b.id), people.as_("staff_b")).get_json()
    grid_entry = audit.record(
        None, "area.update", target_type="area", target_id=tree.grid_b.id, area_path=tree.grid_b.path,
        before={"name": "旧"}, after={"name": "新"},
    )
    db.session.flush()
    ids = {row.target_id: row.id for row in db.session.scalars(sa.select(AuditEntry))}
    return {"a": ids[str(a["id"])], "b": ids[str(b["id"])], "grid_b": grid_entry.id, "user_a": a["id"]}


def test_staff_see_only_their_districts_audit_entries(
    client: FlaskClient, people: People, entries: dict[str, int]
) -> None:
    assert audit_ids(client, people.as_("staff_a")) == [entries["a"]]
    assert audit_ids(client, people.as_("staff_b")) == [entries["grid_b"], entries["b"]]
    assert audit_ids(client, people.as_("admin")) == sorted(entries[k] for k in ("a", "b", "grid_b"))[::-1]

    item = client.get("/api/v1/audit", headers=people.as_("staff_a")).get_json()["items"][0]
    assert item["action"] == "user.create"
    assert item["actor_id"] == people.staff_a.id and item["actor_role"] == "staff"
    assert item["target_type"] == "user" and item["target_id"] == str(entries["user_a"])
    assert item["before"] is None and item["after"]["role"] == "organiser"
    assert item["at"].endswith("+00:00")


def test_audit_filters_and_pagination(client: FlaskClient, people: People, entries: dict[str, int]) -> None:
    admin = people.as_("admin")
    newest_first = sorted(entries[k] for k in ("a", "b", "grid_b"))[::-1]
    page = client.get("/api/v1/audit", query_string={"limit": 2}, headers=admin).get_json()
    assert [item["id"] for item in page["items"]] == newest_first[:2]
    rest = client.get(
        "/api/v1/audit", query_string={"limit": 2, "cursor": page["next_cursor"]}, headers=admin
    ).get_json()
    assert [item["id"] for item in rest["items"]] == newest_first[2:]
    assert rest["next_cursor"] is None

    assert audit_ids(client, admin, target_type="area") == [entries["grid_b"]]
    assert audit_ids(client, admin, action="user.create") == sorted([entries["a"], entries["b"]])[::-1]
    assert audit_ids(client, admin, target_type="user", target_id=str(entries["user_a"])) == [entries["a"]]
    assert audit_ids(client, admin, actor_id=people.staff_b.id) == [entries["b"]]
    now = utcnow()
    assert audit_ids(client, admin, since=(now - timedelta(hours=1)).isoformat()) == newest_first
    assert audit_ids(client, admin, since=(now + timedelta(hours=1)).isoformat()) == []
    assert audit_ids(client, admin, until=(now - timedelta(hours=1)).isoformat()) == []
    assert audit_ids(client, admin, until="2099-01-01T08:00:00+08:00") == newest_first

    body = assert_problem(
        client.get("/api/v1/audit", query_string={"since": "2026-01-01T00:00:00"}, headers=admin),
        422,
        "validation_failed",
    )
    assert body["errors"] == {"since": ["日期时间必须带时区偏移。"]}
    body = assert_problem(
        client.get(
            "/api/v1/audit", query_string={"actor_id": "abc", "limit": 101}, headers=people.as_("admin", **EN)
        ),
        422,
        "validation_failed",
    )
    assert body["errors"] == {
        "actor_id": ["Not a valid integer."],
        "limit": ["Must be greater than or equal to 1 and less than or equal to 100."],
    }
