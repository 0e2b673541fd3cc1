"""A volunteer's own data: profile, edits, availability, export and account closure."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from accounts.models import AuthSession, User
from core.audit import AuditEntry
from core.extensions import db
from tests import factories
from volunteers import service, signals
from volunteers.models import AvailabilitySlot, StatusChange, Volunteer, VolunteerSkill

ME = "/api/v1/volunteers/me"
AVAILABILITY = "/api/v1/volunteers/me/availability"
EN = {"Accept-Language": "en"}


@pytest.fixture
def volunteer(tree) -> Volunteer:
    made = factories.make_volunteer(
        tree.grid_a, status="pending", real_name="赵六", id_number=factories.national_id(77)
    )
    made.skills = [VolunteerSkill(skill="急救")]
    made.emergency_contact_name = "赵五"
    made.emergency_contact_phone = factories.unique_phone()
    db.session.flush()
    return made


def auth(volunteer: Volunteer, **extra: str) -> dict[str, str]:
    return factories.headers_for(db.session.get(User, volunteer.user_id), **extra)


def snapshot(volunteer_id: int) -> dict[str, Any]:
    volunteer = db.session.get(Volunteer, volunteer_id)
    return {
        "status": volunteer.status,
        "kind": volunteer.kind_id,
        "grid": volunteer.home_grid_id,
        "certificate": volunteer.certificate_no,
        "name": volunteer.real_name,
        "id_hash": volunteer.national_id_hash,
        "skills": [s.skill for s in volunteer.skills],
        "contact": (volunteer.emergency_contact_name, volunteer.emergency_contact_phone),
        "role": volunteer.user.role,
        "locale": volunteer.user.locale,
        "phone": volunteer.user.phone,
        "updated_at": volunteer.updated_at,
    }


# --- GET /volunteers/me ------------------------------------------------------------------------


def test_me_shows_own_profile_unmasked_even_when_pending(client, volunteer) -> None:
    response = client.get(ME, headers=auth(volunteer))
    assert response.status_code == 200
    data = response.get_json()
    assert data["id"] == volunteer.id
    assert data["status"] == "pending"
    assert data["national_id"] == factories.national_id(77)
    assert data["skills"] == ["急救"]
    assert data["emergency_contact"]["name"] == "赵五"
    assert "national_id_hash" not in data and "password_hash" not in data


def test_me_needs_a_volunteer_token(client, tree, volunteer) -> None:
    assert client.get(ME).status_code == 401
    organiser = factories.make_user("organiser", tree.community_a)
    response = client.get(ME, headers=factories.headers_for(organiser))
    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_volunteer_user_without_profile_is_404(client, tree) -> None:
    user = factories.make_user("volunteer", tree.grid_a)
    response = client.get(ME, headers=factories.headers_for(user, **EN))
    assert response.status_code == 404
    assert response.get_json()["code"] == "volunteer_not_found"


# --- PATCH /volunteers/me ----------------------------------------------------------------------


def test_volunteer_edits_skills_contact_and_locale(client, volunteer) -> None:
    contact_phone = factories.unique_phone()
    response = client.patch(
        ME,
        json={
            "skills": ["驾驶", "急救", "驾驶", "水上救援"],
            "emergency_contact": {"name": "赵七", "phone": contact_phone},
            "locale": "en",
        },
        headers=auth(volunteer),
    )
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["skills"] == sorted(["驾驶", "急救", "水上救援"])
    assert data["emergency_contact"] == {"name": "赵七", "phone": contact_phone}
    after = snapshot(volunteer.id)
    assert sorted(after["skills"]) == sorted(["驾驶", "急救", "水上救援"])
    assert after["locale"] == "en"


def test_volunteer_clears_contact_and_skills(client, volunteer) -> None:
    response = client.patch(ME, json={"skills": [], "emergency_contact": None}, headers=auth(volunteer))
    assert response.status_code == 200
    assert response.get_json()["skills"] == []
    assert response.get_json()["emergency_contact"] is None
    assert snapshot(volunteer.id)["contact"] == (None, None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "active"),
        ("kind", "alley_steward"),
        ("home_grid_id", 1),
        ("certificate_no", "BT-0001"),
        ("armband_no", "A-1"),
        ("real_name", "冒名"),
        ("national_id", "110101199003071234"),
        ("points", 10_000),
        ("role", "admin"),
        ("user_id", 1),
        ("phone", "+8613900009999"),
        ("consent_version", "0"),
        ("closure_requested_at", None),
        ("status_reason", "self-approved"),
    ],
)
def test_mass_assignment_is_refused_and_changes_nothing(
    client, volunteer, field: str, value: Any
) -> None:
    before = snapshot(volunteer.id)
    response = client.patch(
        ME, json={"skills": ["黑客"], field: value}, headers=auth(volunteer)
    )
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "validation_failed"
    assert problem["errors"] == {field: ["未知字段。"]}
    assert snapshot(volunteer.id) == before


def test_unknown_field_message_in_english(client, volunteer) -> None:
    response = client.patch(ME, json={"status": "active"}, headers=auth(volunteer, **EN))
    assert response.get_json()["errors"] == {"status": ["Unknown field."]}


def test_empty_edit_is_refused(client, volunteer) -> None:
    response = client.patch(ME, json={}, headers=auth(volunteer, **EN))
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"_schema": ["Provide at least one field to change."]}


def test_invalid_edits_change_nothing(client, volunteer) -> None:
    before = snapshot(volunteer.id)
    for payload in (
        {"skills": ["x" * 51]},
        {"skills": [f"s{n}" for n in range(21)]},
        {"emergency_contact": {"name": "赵七", "phone": "010-12345678"}},
        {"emergency_contact": {"phone": factories.unique_phone()}},
        {"locale": "de"},
    ):
        response = client.patch(ME, json=payload, headers=auth(volunteer))
        assert response.status_code == 422, payload
    assert snapshot(volunteer.id) == before


# --- availability ------------------------------------------------------------------------------


def slot(weekday: int, start: str, end: str) -> dict[str, Any]:
    return {"weekday": weekday, "start": start, "end": end}


WEEKDAY_RANGE = "Must be greater than or equal to 0 and less than or equal to 6."


def week_of(count: int) -> list[dict[str, Any]]:
    """``count`` half-hour slots spread over the week, none overlapping."""
    return [slot(n % 7, f"{n // 7:02d}:00", f"{n // 7:02d}:30") for n in range(count)]


def stored_slots(volunteer_id: int) -> list[tuple[int, str, str]]:
    rows = db.session.scalars(
        sa.select(AvailabilitySlot)
        .where(AvailabilitySlot.volunteer_id == volunteer_id)
        .order_by(AvailabilitySlot.weekday, AvailabilitySlot.start_time)
    )
    return [(r.weekday, f"{r.start_time:%H:%M}", f"{r.end_time:%H:%M}") for r in rows]


def test_availability_is_replaced_and_returned_in_local_time(client, volunteer) -> None:
    assert client.get(AVAILABILITY, headers=auth(volunteer)).get_json() == {
        "timezone": "Asia/Shanghai",
        "slots": [],
    }
    slots = [slot(4, "19:00", "21:00"), slot(0, "19:00", "21:00"), slot(0, "07:00", "09:00")]
    response = client.put(AVAILABILITY, json={"slots": slots}, headers=auth(volunteer))
    assert response.status_code == 200, response.get_json()
    expected = [slot(0, "07:00", "09:00"), slot(0, "19:00", "21:00"), slot(4, "19:00", "21:00")]
    assert response.get_json() == {"timezone": "Asia/Shanghai", "slots": expected}
    assert client.get(AVAILABILITY, headers=auth(volunteer)).get_json()["slots"] == expected

    # Touching slots do not overlap; a new PUT replaces every slot.
    replacement = [slot(2, "08:00", "12:00"), slot(2, "12:00", "23:59")]
    response = client.put(AVAILABILITY, json={"slots": replacement}, headers=auth(volunteer))
    assert response.status_code == 200
    assert stored_slots(volunteer.id) == [(2, "08:00", "12:00"), (2, "12:00", "23:59")]

    assert client.put(AVAILABILITY, json={"slots": []}, headers=auth(volunteer)).status_code == 200
    assert stored_slots(volunteer.id) == []


def test_availability_uses_the_home_grid_time_zone(client, tree) -> None:
    grid = factories.make_area(
        "grid", tree.community_a, boundary=factories.square(120.0, 49.2), timezone="Asia/Urumqi"
    )
    volunteer = factories.make_volunteer(grid)
    assert client.get(AVAILABILITY, headers=auth(volunteer)).get_json()["timezone"] == "Asia/Urumqi"


@pytest.mark.parametrize(
    ("slots", "errors"),
    [
        ([slot(1, "10:00", "10:00")], {"slots": {"0": {"end": ["The end must be after the start."]}}}),
        ([slot(1, "21:00", "19:00")], {"slots": {"0": {"end": ["The end must be after the start."]}}}),
        (
            [slot(3, "08:00", "10:00"), slot(1, "08:00", "12:00"), slot(3, "09:30", "11:00")],
            {"slots": {"2": {"start": ["Overlaps another slot on the same weekday."]}}},
        ),
        (
            [slot(5, "09:00", "11:00"), slot(5, "08:00", "12:00")],
            {"slots": {"0": {"start": ["Overlaps another slot on the same weekday."]}}},
        ),
        (
            [slot(6, "08:00", "09:00"), slot(6, "08:00", "09:00")],
            {"slots": {"1": {"start": ["Overlaps another slot on the same weekday."]}}},
        ),
        ([slot(7, "08:00", "09:00")], {"slots": {"0": {"weekday": [WEEKDAY_RANGE]}}}),
        ([slot(-1, "08:00", "09:00")], {"slots": {"0": {"weekday": [WEEKDAY_RANGE]}}}),
        ([slot(1, "8:00", "09:00")], {"slots": {"0": {"start": ["Use HH:MM (24-hour clock)."]}}}),
        ([slot(1, "08:00", "24:00")], {"slots": {"0": {"end": ["Use HH:MM (24-hour clock)."]}}}),
        ([slot(1, "08:00:00", "09:00")], {"slots": {"0": {"start": ["Use HH:MM (24-hour clock)."]}}}),
        ([{"weekday": 1, "start": "08:00"}], {"slots": {"0": {"end": ["Missing data for required field."]}}}),
        ([{**slot(1, "08:00", "09:00"), "note": "x"}], {"slots": {"0": {"note": ["Unknown field."]}}}),
        (week_of(43), {"slots": ["Longer than maximum length 42."]}),
    ],
)
def test_availability_rules(client, volunteer, slots: list[Any], errors: dict[str, Any]) -> None:
    kept = [slot(0, "07:00", "08:00")]
    assert client.put(AVAILABILITY, json={"slots": kept}, headers=auth(volunteer)).status_code == 200
    response = client.put(AVAILABILITY, json={"slots": slots}, headers=auth(volunteer, **EN))
    assert response.status_code == 422
    assert response.get_json()["errors"] == errors
    assert stored_slots(volunteer.id) == [(0, "07:00", "08:00")]


def test_availability_accepts_42_slots(client, volunteer) -> None:
    response = client.put(AVAILABILITY, json={"slots": week_of(42)}, headers=auth(volunteer))
    assert response.status_code == 200
    assert len(stored_slots(volunteer.id)) == 42


def test_overlap_message_in_chinese(client, volunteer) -> None:
    slots = [slot(3, "08:00", "10:00"), slot(3, "09:00", "11:00")]
    response = client.put(AVAILABILITY, json={"slots": slots}, headers=auth(volunteer))
    assert response.get_json()["errors"] == {"slots": {"1": {"start": ["与同一天的另一个时段重叠。"]}}}


def test_availability_is_for_volunteers_only(client, tree) -> None:
    staff = factories.make_user("staff", tree.district_a)
    assert client.get(AVAILABILITY, headers=factories.headers_for(staff)).status_code == 403
    assert client.put(AVAILABILITY, json={"slots": []}).status_code == 401


# --- export ------------------------------------------------------------------------------------


def test_export_is_a_download_of_all_own_personal_data(client, volunteer) -> None:
    client.put(AVAILABILITY, json={"slots": [slot(2, "19:00", "21:00")]}, headers=auth(volunteer))
    response = client.get("/api/v1/volunteers/me/export", headers=auth(volunteer))
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=\"shouwang-personal-data-")
    assert disposition.endswith('.json"')
    assert response.headers["Cache-Control"] == "no-store"
    data = response.get_json()
    assert data["format"] == "shouwang.personal-data.v1"
    sections = data["sections"]
    assert set(sections) >= {
        "account", "profile", "skills", "emergency_contact", "availability", "status_history", "consent",
    }
    user = db.session.get(User, volunteer.user_id)
    assert sections["account"]["phone"] == user.phone
    assert sections["account"]["role"] == "volunteer"
    assert sections["account"]["created_at"].endswith("+00:00")
    assert sections["profile"]["national_id"] == factories.national_id(77)  # unmasked: their own
    assert sections["profile"]["real_name"] == "赵六"
    assert sections["skills"] == ["急救"]
    assert sections["emergency_contact"]["name"] == "赵五"
    assert sections["availability"]["slots"] == [slot(2, "19:00", "21:00")]
    assert sections["consent"]["version"] == volunteer.consent_version
    text = response.get_data(as_text=True)
    assert "password" not in text and "national_id_hash" not in text and "gAAAA" not in text


def test_export_lists_status_history(client, tree, volunteer) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    approved = client.post(
        f"/api/v1/volunteers/{volunteer.id}/approve",
        json={"certificate_no": "BT-2026-0001"},
        headers=factories.headers_for(organiser),
    )
    assert approved.status_code == 200
    history = client.get("/api/v1/volunteers/me/export", headers=auth(volunteer)).get_json()[
        "sections"
    ]["status_history"]
    assert [(h["from_status"], h["to_status"]) for h in history] == [("pending", "active")]


def test_other_packages_can_add_export_sections(client, volunteer) -> None:
    def shifts_section(exported: Volunteer) -> tuple[str, Any]:
        return "shifts", {"volunteer_id": exported.id, "served_hours": 12}

    service.register_exporter(shifts_section)
    try:
        response = client.get("/api/v1/volunteers/me/export", headers=auth(volunteer))
    finally:
        service.EXPORTERS.remove(shifts_section)
    assert response.get_json()["sections"]["shifts"] == {"volunteer_id": volunteer.id, "served_hours": 12}


def test_export_is_for_volunteers_only(client, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    assert client.get("/api/v1/volunteers/me/export", headers=factories.headers_for(admin)).status_code == 403


# --- closure -----------------------------------------------------------------------------------


def test_closure_retires_deactivates_and_revokes_every_session(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, status="active")
    other_device = factories.token_for(db.session.get(User, volunteer.user_id))
    headers = auth(volunteer)
    events: list[tuple[str, dict[str, Any]]] = []

    def on_retired(sender: Any, **kwargs: Any) -> None:
        events.append(("retired", kwargs))

    def on_closure(sender: Any, **kwargs: Any) -> None:
        events.append(("closure", kwargs))

    with (
        signals.volunteer_retired.connected_to(on_retired),
        signals.volunteer_closure_requested.connected_to(on_closure),
    ):
        response = client.post(
            "/api/v1/volunteers/me/closure", json={"reason": "搬家了"}, headers=headers
        )
    assert response.status_code == 202, response.get_json()
    data = response.get_json()
    assert data["status"] == "retired"
    assert data["status_reason"] == "搬家了"
    assert data["closure_requested_at"] is not None

    user = db.session.get(User, volunteer.user_id)
    assert user.is_active is False
    sessions = db.session.scalars(sa.select(AuthSession).where(AuthSession.user_id == user.id)).all()
    assert len(sessions) == 2
    assert all(s.revoked_at is not None for s in sessions)
    change = db.session.scalars(
        sa.select(StatusChange).where(StatusChange.volunteer_id == volunteer.id)
    ).one()
    assert (change.from_status, change.to_status, change.reason, change.actor_id) == (
        "active", "retired", "搬家了", user.id,
    )
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "volunteer.close_account")
    ).one()
    assert entry.actor_id == user.id and entry.actor_role == "volunteer"
    assert entry.target_id == str(volunteer.id) and entry.area_path == tree.grid_a.path
    expected = {"volunteer_id": volunteer.id, "actor_id": user.id, "reason": "搬家了"}
    assert events == [("retired", expected), ("closure", expected)]

    # Both devices are signed out, and the account can no longer log in.
    for token in (headers["Authorization"], f"Bearer {other_device}"):
        after = client.get(ME, headers={"Authorization": token})
        assert after.status_code == 401
        assert after.get_json()["code"] == "token_revoked"
    login = client.post(
        "/api/v1/auth/login", json={"phone": user.phone, "password": factories.DEFAULT_PASSWORD}
    )
    assert login.status_code == 401


def test_a_closed_account_cannot_close_again_and_nothing_changes(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, status="pending")
    assert client.post("/api/v1/volunteers/me/closure", headers=auth(volunteer)).status_code == 202
    closed_at = db.session.get(Volunteer, volunteer.id).closure_requested_at
    changes = db.session.scalar(sa.select(sa.func.count()).select_from(StatusChange))
    # Even a token minted afterwards (e.g. by an admin tool) is refused: the account is inactive.
    response = client.post("/api/v1/volunteers/me/closure", json={}, headers=auth(volunteer, **EN))
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_revoked"
    assert db.session.get(Volunteer, volunteer.id).closure_requested_at == closed_at
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StatusChange)) == changes


def test_closure_of_a_retired_volunteer_keeps_history_clean(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a, status="retired")
    response = client.post("/api/v1/volunteers/me/closure", headers=auth(volunteer))
    assert response.status_code == 202
    assert response.get_json()["status"] == "retired"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StatusChange)) == 0
    assert db.session.get(User, volunteer.user_id).is_active is False


def test_closure_reason_is_validated(client, volunteer) -> None:
    response = client.post(
        "/api/v1/volunteers/me/closure", json={"reason": "x" * 501}, headers=auth(volunteer)
    )
    assert response.status_code == 422
    assert db.session.get(Volunteer, volunteer.id).closure_requested_at is None
    assert db.session.get(User, volunteer.user_id).is_active is True


def test_closure_is_for_volunteers_only(client, tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    response = client.post("/api/v1/volunteers/me/closure", headers=factories.headers_for(organiser))
    assert response.status_code == 403
    assert db.session.get(User, organiser.id).is_active is True
