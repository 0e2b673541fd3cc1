"""Public self-registration: POST /api/v1/volunteers/register and the volunteer-kind catalogue."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from accounts.models import User
from accounts.passwords import verify_password
from core import crypto
from core.audit import AuditEntry
from core.extensions import db
from tests import factories
from volunteers import signals
from volunteers.models import StatusChange, Volunteer, VolunteerKind

REGISTER = "/api/v1/volunteers/register"
EN = {"Accept-Language": "en"}


def body(grid_id: int, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "real_name": "王小明",
        "phone": factories.unique_phone(),
        "password": "Patrol-2026!",
        "national_id": factories.national_id(),
        "kind": "volunteer_police",
        "home_grid_id": grid_id,
        "skills": ["急救", "驾驶"],
        "emergency_contact": {"name": "王大明", "phone": factories.unique_phone()},
        "consent": True,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not ...}


def count(model: type, *where: Any) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def written() -> tuple[int, int, int]:
    return count(User), count(Volunteer), count(StatusChange)


# --- happy path --------------------------------------------------------------------------------


def test_registration_creates_user_pending_profile_and_history(client, app, tree) -> None:
    number = factories.national_id()
    received: list[dict[str, Any]] = []

    def on_registered(sender: Any, **kwargs: Any) -> None:
        received.append({"sender": sender, **kwargs})

    payload = body(
        tree.grid_a.id,
        phone="139 1234 5678",
        national_id=number,
        skills=["急救", " 驾驶 ", "急救"],
        locale="en",
    )
    with signals.volunteer_registered.connected_to(on_registered):
        response = client.post(REGISTER, json=payload)

    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data["status"] == "pending"
    assert data["real_name"] == "王小明"
    assert data["phone"] == "+8613912345678"
    assert data["national_id"] == number  # their own view: unmasked
    assert data["kind"] == {"code": "volunteer_police", "name_zh": "义警", "name_en": "Volunteer police"}
    assert data["home_grid"] == {
        "id": tree.grid_a.id,
        "code": tree.grid_a.code,
        "name": tree.grid_a.name,
        "path": tree.grid_a.path,
    }
    assert data["skills"] == sorted(["急救", "驾驶"])
    assert data["emergency_contact"]["name"] == "王大明"
    assert data["consent_version"] == app.config["PRIVACY_TERMS_VERSION"]
    assert data["consented_at"].endswith("+00:00")
    assert data["certificate_no"] is None and data["closure_requested_at"] is None
    text = response.get_data(as_text=True)
    for secret in ("password", "national_id_hash", "national_id_encrypted", "Patrol-2026!"):
        assert secret not in text

    volunteer = db.session.get(Volunteer, data["id"])
    user = db.session.get(User, data["user_id"])
    assert user.role == "volunteer" and user.area_id == tree.grid_a.id and user.is_active
    assert user.display_name == "王小明" and user.locale == "en"
    assert verify_password(user.password_hash, "Patrol-2026!")
    assert number not in volunteer.national_id_encrypted
    assert crypto.decrypt(volunteer.national_id_encrypted) == number
    assert volunteer.national_id_hash == crypto.keyed_hash(number)
    history = db.session.scalars(
        sa.select(StatusChange).where(StatusChange.volunteer_id == volunteer.id)
    ).all()
    assert [(h.from_status, h.to_status, h.actor_id) for h in history] == [(None, "pending", user.id)]
    assert received == [{"sender": signals.SENDER, "volunteer_id": volunteer.id, "actor_id": user.id}]


def test_minimal_registration_defaults_locale_and_skills(client, tree) -> None:
    payload = body(tree.grid_b.id, skills=..., emergency_contact=...)
    response = client.post(REGISTER, json=payload, headers=EN)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data["skills"] == [] and data["emergency_contact"] is None
    assert db.session.get(User, data["user_id"]).locale == "en"


def test_registered_volunteer_can_log_in(client, tree) -> None:
    payload = body(tree.grid_a.id)
    assert client.post(REGISTER, json=payload).status_code == 201
    response = client.post(
        "/api/v1/auth/login", json={"phone": payload["phone"], "password": payload["password"]}
    )
    assert response.status_code == 200, response.get_json()
    token = response.get_json()["access_token"]
    me = client.get("/api/v1/volunteers/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.get_json()["status"] == "pending"


# --- validation --------------------------------------------------------------------------------

INVALID = [
    pytest.param("national_id", "150202199001011235", id="id-bad-checksum"),
    pytest.param("national_id", factories.national_id(birth="19901301"), id="id-bad-birth-month"),
    pytest.param("national_id", factories.national_id(birth="19900230"), id="id-bad-birth-day"),
    pytest.param("national_id", "15020219900101123", id="id-too-short"),
    # The standard's example (check character X) in fullwidth digits: \d takes any script's digits.
    pytest.param("national_id", "11010519491231002X".translate({ord(d): 0xFF10 + int(d) for d in "0123456789"}),
                 id="id-fullwidth-digits"),
    pytest.param("national_id", 150202199001011234, id="id-not-a-string"),
    pytest.param("phone", "010-12345678", id="landline"),
    pytest.param("phone", "+861012345678", id="landline-e164"),
    pytest.param("phone", "+14155552671", id="foreign-mobile"),
    pytest.param("phone", "not a phone", id="phone-garbage"),
    pytest.param("consent", False, id="consent-false"),
    pytest.param("consent", "true", id="consent-string"),
    pytest.param("consent", 1, id="consent-one"),
    pytest.param("consent", None, id="consent-null"),
    pytest.param("consent", ..., id="consent-missing"),
    pytest.param("real_name", "", id="name-empty"),
    pytest.param("real_name", "   ", id="name-blank"),
    pytest.param("real_name", "名" * 51, id="name-too-long"),
    pytest.param("real_name", "王\x00明", id="name-nul"),
    pytest.param("password", "short", id="password-short"),
    pytest.param("password", "x" * 129, id="password-long"),
    pytest.param("skills", [f"skill-{n}" for n in range(21)], id="skills-too-many"),
    pytest.param("skills", [""], id="skill-empty"),
    pytest.param("skills", ["s" * 51], id="skill-too-long"),
    pytest.param("skills", "急救", id="skills-not-a-list"),
    pytest.param("emergency_contact", {"name": "王大明", "phone": "010-12345678"}, id="contact-landline"),
    pytest.param("emergency_contact", {"name": "王大明"}, id="contact-no-phone"),
    pytest.param("locale", "fr", id="locale-unknown"),
    pytest.param("home_grid_id", "abc", id="grid-not-int"),
    pytest.param("home_grid_id", 0, id="grid-zero"),
    pytest.param("home_grid_id", 10**12, id="grid-huge"),
    pytest.param("kind", ..., id="kind-missing"),
]


@pytest.mark.parametrize(("field", "value"), INVALID)
def test_invalid_registration_is_422_on_the_field_and_writes_nothing(
    client, tree, field: str, value: Any
) -> None:
    before = written()
    response = client.post(REGISTER, json=body(tree.grid_a.id, **{field: value}))
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    assert response.mimetype == "application/problem+json"
    assert list(problem["errors"]) == [field]
    assert written() == before


@pytest.mark.parametrize("field", ["status", "role", "certificate_no", "points", "user_id"])
def test_unknown_fields_are_refused(client, tree, field: str) -> None:
    before = written()
    response = client.post(REGISTER, json=body(tree.grid_a.id, **{field: "active"}))
    assert response.status_code == 422
    assert response.get_json()["errors"] == {field: ["未知字段。"]}
    assert written() == before


def test_home_grid_must_be_a_grid(client, tree) -> None:
    before = written()
    for area in (tree.community_a, tree.district_a, tree.city):
        response = client.post(REGISTER, json=body(area.id), headers=EN)
        assert response.status_code == 422
        assert response.get_json()["errors"] == {"home_grid_id": ["Not a grid."]}
    response = client.post(REGISTER, json=body(987_654))
    assert response.get_json()["errors"] == {"home_grid_id": ["不是网格。"]}
    assert written() == before


def test_unknown_kind_and_bad_grid_are_reported_together(client, tree) -> None:
    response = client.post(
        REGISTER, json=body(tree.community_a.id, kind="space_ranger"), headers=EN
    )
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "kind": ["Unknown volunteer kind."],
        "home_grid_id": ["Not a grid."],
    }


def test_several_errors_are_reported_per_field_in_chinese_by_default(client, tree) -> None:
    response = client.post(
        REGISTER,
        json=body(
            tree.grid_a.id,
            phone="010-12345678",
            national_id="150202199001011235",
            consent=False,
            real_name=...,
        ),
    )
    problem = response.get_json()
    assert response.status_code == 422
    assert response.headers["Content-Language"] == "zh"
    assert problem["title"] == "输入校验失败"
    assert problem["errors"] == {
        "phone": ["不是有效的中国大陆手机号码。"],
        "national_id": ["不是有效的居民身份证号码。"],
        "consent": ["必须同意隐私条款。"],
        "real_name": ["缺少必填字段。"],
    }


def test_errors_in_english_on_request(client, tree) -> None:
    response = client.post(REGISTER, json=body(tree.grid_a.id, consent=...), headers=EN)
    problem = response.get_json()
    assert problem["title"] == "Validation failed"
    assert problem["errors"] == {"consent": ["Consent to the privacy terms is required."]}


def test_body_must_be_a_json_object(client, tree) -> None:
    before = written()
    assert client.post(REGISTER, json=["not", "an", "object"]).status_code == 422
    assert client.post(REGISTER, data="{oops", content_type="application/json").status_code == 400
    assert written() == before


# --- duplicates --------------------------------------------------------------------------------


def test_duplicate_phone_is_409_phone_taken(client, tree) -> None:
    existing = factories.make_volunteer(tree.grid_b, phone="+8613911112222")
    before = written()
    response = client.post(REGISTER, json=body(tree.grid_a.id, phone="139-1111-2222"), headers=EN)
    assert response.status_code == 409
    problem = response.get_json()
    assert problem["code"] == "phone_taken"
    assert problem["title"] == "Phone number already registered"
    assert written() == before
    assert db.session.get(Volunteer, existing.id).real_name == "张三"


def test_phone_of_a_staff_account_is_taken_too(client, tree) -> None:
    staff = factories.make_user("staff", tree.district_a)
    response = client.post(REGISTER, json=body(tree.grid_a.id, phone=staff.phone))
    assert response.status_code == 409
    assert response.get_json()["code"] == "phone_taken"
    assert response.get_json()["title"] == "该手机号已注册"


def test_duplicate_national_id_is_409_national_id_taken(client, tree) -> None:
    number = factories.national_id()
    factories.make_volunteer(tree.grid_b, id_number=number)
    before = written()
    response = client.post(REGISTER, json=body(tree.grid_a.id, national_id=number))
    assert response.status_code == 409
    assert response.get_json()["code"] == "national_id_taken"
    assert written() == before


def test_national_id_check_letter_is_case_insensitive(client, tree) -> None:
    number = next(n for n in (factories.national_id(seq) for seq in range(1000)) if n.endswith("X"))
    first = client.post(REGISTER, json=body(tree.grid_a.id, national_id=number.lower()))
    assert first.status_code == 201
    assert first.get_json()["national_id"] == number
    again = client.post(REGISTER, json=body(tree.grid_a.id, national_id=number))
    assert again.status_code == 409
    assert again.get_json()["code"] == "national_id_taken"


# --- rate limit --------------------------------------------------------------------------------


def test_registrations_are_rate_limited_per_address(client, app, tree, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "REGISTRATION_LIMIT_PER_ADDRESS", "2 per hour")
    assert client.post(REGISTER, json=body(tree.grid_a.id)).status_code == 201
    # Failed attempts count too: otherwise the 409s could be used to probe ID numbers.
    assert client.post(REGISTER, json=body(tree.grid_a.id, consent=False)).status_code == 422
    before = written()
    response = client.post(REGISTER, json=body(tree.grid_a.id), headers=EN)
    assert response.status_code == 429
    assert response.get_json()["code"] == "too_many_requests"
    assert written() == before
    other = app.test_client()
    elsewhere = other.post(
        REGISTER, json=body(tree.grid_a.id), environ_base={"REMOTE_ADDR": "198.51.100.7"}
    )
    assert elsewhere.status_code == 201


def test_default_registration_limit_applies_without_config(client, app, tree, monkeypatch) -> None:
    monkeypatch.delitem(app.config, "REGISTRATION_LIMIT_PER_ADDRESS", raising=False)
    response = client.post(REGISTER, json=body(tree.grid_a.id))
    assert response.status_code == 201
    assert response.headers["X-RateLimit-Limit"] == "20"


# --- volunteer kinds ---------------------------------------------------------------------------


def test_kinds_are_public(client) -> None:
    response = client.get("/api/v1/volunteer-kinds")
    assert response.status_code == 200
    codes = {kind["code"]: kind for kind in response.get_json()}
    assert codes["volunteer_police"]["name_zh"] == "义警"
    assert codes["alley_steward"]["name_zh"] == "小巷管家"
    assert codes["alley_steward"]["builtin"] is True


def test_admin_adds_a_kind_audited_and_duplicates_conflict(client, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    payload = {"code": "herder_sentinel", "name_zh": "牧民哨兵", "name_en": "Herder sentinel"}
    response = client.post("/api/v1/volunteer-kinds", json=payload, headers=factories.headers_for(admin))
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert created["code"] == "herder_sentinel" and created["builtin"] is False
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "volunteer_kind.create"))
    assert entry.actor_id == admin.id and entry.target_id == str(created["id"])
    assert entry.after == payload

    again = client.post(
        "/api/v1/volunteer-kinds", json=payload, headers=factories.headers_for(admin, **EN)
    )
    assert again.status_code == 409
    assert again.get_json()["code"] == "kind_code_taken"
    assert count(VolunteerKind, VolunteerKind.code == "herder_sentinel") == 1

    # The new kind is usable at once.
    assert client.post(REGISTER, json=body(tree.grid_a.id, kind="herder_sentinel")).status_code == 201


@pytest.mark.parametrize("role", ["volunteer", "organiser", "staff"])
def test_only_admins_add_kinds(client, tree, role: str) -> None:
    user = factories.make_user(role, tree.grid_a if role == "volunteer" else tree.district_a)
    payload = {"code": "river_guard", "name_zh": "护河员", "name_en": "River guard"}
    response = client.post("/api/v1/volunteer-kinds", json=payload, headers=factories.headers_for(user))
    assert response.status_code == 403
    assert client.post("/api/v1/volunteer-kinds", json=payload).status_code == 401
    assert count(VolunteerKind, VolunteerKind.code == "river_guard") == 0


@pytest.mark.parametrize(
    "payload",
    [
        {"code": "Bad-Code", "name_zh": "坏", "name_en": "Bad"},
        {"code": "x", "name_zh": "短", "name_en": "Short"},
        {"code": "a" * 33, "name_zh": "长", "name_en": "Long"},
        {"code": "ok_code\n", "name_zh": "换行", "name_en": "Newline"},
        {"code": "ok_code", "name_zh": "", "name_en": "Empty"},
        {"code": "ok_code", "name_zh": "多", "name_en": "Extra", "builtin": True},
    ],
)
def test_kind_validation(client, tree, payload: dict[str, Any]) -> None:
    admin = factories.make_user("admin", tree.city)
    before = count(VolunteerKind)
    response = client.post("/api/v1/volunteer-kinds", json=payload, headers=factories.headers_for(admin))
    assert response.status_code == 422
    assert count(VolunteerKind) == before
