"""What a volunteer does with their own data: profile edits, weekly availability, the personal data
export and account closure (PIPL). No HTTP here; other code imports these through
``volunteers.service``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time
from typing import Any

import sqlalchemy as sa

from accounts.service import revoke_all_sessions
from core import audit, crypto, i18n
from core.auth import Caller
from core.db import rowcount, utcnow
from core.errors import Conflict
from core.extensions import db
from core.fields import instant_text
from volunteers import signals
from volunteers.models import (
    AvailabilitySlot,
    StatusChange,
    Volunteer,
    VolunteerSkill,
    VolunteerStatus,
)
from volunteers.schemas import OwnProfileUpdateInput
from volunteers.vetting import record_status_change

i18n.register_titles(i18n.title("closure_already_requested", "Account closure already requested"))
i18n.register_messages(
    i18n.N_("You have already requested to close your account."),
    i18n.N_("The volunteer changed meanwhile; try again."),
)


def emergency_contact(volunteer: Volunteer) -> dict[str, str | None] | None:
    if volunteer.emergency_contact_name is None:
        return None
    return {"name": volunteer.emergency_contact_name, "phone": volunteer.emergency_contact_phone}


# --- profile and availability ------------------------------------------------------------------


def update_own_profile(volunteer: Volunteer, data: OwnProfileUpdateInput) -> Volunteer:
    """Apply what ``OwnProfileUpdateSchema`` lets a volunteer change: skills, contact, locale."""
    if "skills" in data:
        _replace_skills(volunteer, data["skills"])
    if "emergency_contact" in data:
        contact = data["emergency_contact"]  # both fields or none
        volunteer.emergency_contact_name = contact["name"] if contact else None
        volunteer.emergency_contact_phone = contact["phone"] if contact else None
    if "locale" in data:
        volunteer.user.locale = data["locale"]
    volunteer.updated_at = utcnow()
    db.session.flush()
    return volunteer


def _replace_skills(volunteer: Volunteer, skills: list[str]) -> None:
    # Diff instead of replacing the collection: the primary key is (volunteer_id, skill), so deleting
    # and re-inserting an unchanged skill in one flush is wasted work.
    wanted = set(skills)
    for existing in list(volunteer.skills):
        if existing.skill not in wanted:
            volunteer.skills.remove(existing)
    present = {existing.skill for existing in volunteer.skills}
    volunteer.skills.extend(VolunteerSkill(skill=skill) for skill in skills if skill not in present)


def availability_view(volunteer: Volunteer) -> dict[str, Any]:
    return {
        "timezone": volunteer.home_grid.timezone,
        "slots": [
            {"weekday": slot.weekday, "start": slot.start_time, "end": slot.end_time}
            for slot in volunteer.availability
        ],
    }


def replace_availability(volunteer: Volunteer, slots: list[dict[str, Any]]) -> Volunteer:
    """Replace every weekly slot (validated by the schema: HH:MM, start < end, no overlap)."""
    ordered = sorted(slots, key=lambda slot: (slot["weekday"], slot["start"]))
    volunteer.availability = [
        AvailabilitySlot(weekday=slot["weekday"], start_time=slot["start"], end_time=slot["end"])
        for slot in ordered
    ]
    volunteer.updated_at = utcnow()
    db.session.flush()
    return volunteer


# --- personal data export (PIPL right of access and portability) -------------------------------

#: An exporter returns one section of a volunteer's personal data: ``(section_name, json_data)``.
Exporter = Callable[[Volunteer], tuple[str, Any]]
EXPORTERS: list[Exporter] = []
EXPORT_FORMAT = "shouwang.personal-data.v1"


def register_exporter(exporter: Exporter) -> Exporter:
    """Add a section to the personal data export; later packages (shifts, patrols, rewards) call
    this at import time for the data they hold. Usable as a decorator."""
    if exporter not in EXPORTERS:
        EXPORTERS.append(exporter)
    return exporter


def export_personal_data(volunteer: Volunteer) -> dict[str, Any]:
    sections: dict[str, Any] = {}
    for exporter in EXPORTERS:
        name, data = exporter(volunteer)
        sections[name] = _jsonable(data)
    return {"format": EXPORT_FORMAT, "exported_at": utcnow(), "sections": sections}


def export_filename(volunteer: Volunteer) -> str:
    return f"shouwang-personal-data-{volunteer.id}-{utcnow():%Y%m%d}.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, datetime) and value.tzinfo is not None:
        return instant_text(value)  # the API's rule: instants in UTC
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@register_exporter
def _export_account(volunteer: Volunteer) -> tuple[str, Any]:
    user = volunteer.user
    return "account", {
        "user_id": user.id,
        "phone": user.phone,
        "role": user.role,
        "display_name": user.display_name,
        "locale": user.locale,
        "is_active": user.is_active,
        "created_at": user.created_at,
    }


@register_exporter
def _export_profile(volunteer: Volunteer) -> tuple[str, Any]:
    return "profile", {
        "volunteer_id": volunteer.id,
        "real_name": volunteer.real_name,
        "national_id": crypto.decrypt(volunteer.national_id_encrypted),
        "kind": {
            "code": volunteer.kind.code,
            "name_zh": volunteer.kind.name_zh,
            "name_en": volunteer.kind.name_en,
        },
        "home_grid": {
            "id": volunteer.home_grid.id,
            "code": volunteer.home_grid.code,
            "name": volunteer.home_grid.name,
        },
        "status": volunteer.status,
        "status_reason": volunteer.status_reason,
        "certificate_no": volunteer.certificate_no,
        "armband_no": volunteer.armband_no,
        "closure_requested_at": volunteer.closure_requested_at,
        "created_at": volunteer.created_at,
        "updated_at": volunteer.updated_at,
    }


@register_exporter
def _export_skills(volunteer: Volunteer) -> tuple[str, Any]:
    return "skills", sorted(skill.skill for skill in volunteer.skills)


@register_exporter
def _export_emergency_contact(volunteer: Volunteer) -> tuple[str, Any]:
    return "emergency_contact", emergency_contact(volunteer)


@register_exporter
def _export_availability(volunteer: Volunteer) -> tuple[str, Any]:
    return "availability", availability_view(volunteer)


@register_exporter
def _export_status_history(volunteer: Volunteer) -> tuple[str, Any]:
    changes = db.session.scalars(
        sa.select(StatusChange)
        .where(StatusChange.volunteer_id == volunteer.id)
        .order_by(StatusChange.id)
    )
    return "status_history", [
        {"from_status": c.from_status, "to_status": c.to_status, "reason": c.reason, "at": c.at}
        for c in changes
    ]


@register_exporter
def _export_consent(volunteer: Volunteer) -> tuple[str, Any]:
    return "consent", {"version": volunteer.consent_version, "consented_at": volunteer.consented_at}


# --- account closure (PIPL) --------------------------------------------------------------------


def request_closure(caller: Caller, volunteer: Volunteer, reason: str | None) -> Volunteer:
    """Close the volunteer's own account: retired, user deactivated, every session revoked."""
    if volunteer.closure_requested_at is not None:
        raise _closure_already_requested()
    previous = volunteer.status
    retiring = previous != VolunteerStatus.RETIRED
    now = utcnow()
    values: dict[str, Any] = {
        "closure_requested_at": now,
        "status": VolunteerStatus.RETIRED.value,
        "updated_at": now,
    }
    if retiring:
        values["status_reason"] = reason
    # Conditional like a vetting transition, so a closure and an organiser's action cannot both win.
    claimed = db.session.execute(
        sa.update(Volunteer)
        .where(
            Volunteer.id == volunteer.id,
            Volunteer.closure_requested_at.is_(None),
            Volunteer.status == previous,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(claimed) != 1:
        db.session.refresh(volunteer)
        if volunteer.closure_requested_at is not None:
            raise _closure_already_requested()
        raise Conflict("The volunteer changed meanwhile; try again.")

    user = volunteer.user
    user.is_active = False
    if retiring:
        record_status_change(
            volunteer.id,
            previous,
            VolunteerStatus.RETIRED.value,
            actor_id=caller.user_id,
            at=now,
            reason=reason,
        )
    revoke_all_sessions(user.id, "account_closed")
    audit.record(
        caller,
        "volunteer.close_account",
        target_type="volunteer",
        target_id=volunteer.id,
        area_path=volunteer.home_grid.path,
        before={"status": previous, "is_active": True, "closure_requested_at": None},
        after={
            "status": VolunteerStatus.RETIRED.value,
            "is_active": False,
            "closure_requested_at": now,
            "reason": reason,
        },
    )
    db.session.flush()
    db.session.refresh(volunteer)
    if retiring:
        signals.volunteer_retired.send(
            signals.SENDER, **signals.VolunteerEvent(
                volunteer_id=volunteer.id, actor_id=caller.user_id, reason=reason
            )
        )
    signals.volunteer_closure_requested.send(
        signals.SENDER, **signals.VolunteerEvent(
            volunteer_id=volunteer.id, actor_id=caller.user_id, reason=reason
        )
    )
    return volunteer


def _closure_already_requested() -> Conflict:
    return Conflict(
        "You have already requested to close your account.", code="closure_already_requested"
    )
