"""Kinds and self-registration: the kinds volunteers come in, and how someone joins. No HTTP here.

Other code imports these through ``volunteers.service``. Services only flush; the request commits.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from accounts.models import User
from accounts.passwords import hash_password
from core import audit, crypto, i18n
from core.auth import Caller, Role
from core.db import utcnow
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from grids.service import get_grid
from volunteers import signals
from volunteers.models import Volunteer, VolunteerKind, VolunteerSkill, VolunteerStatus
from volunteers.schemas import RegistrationInput, VolunteerKindCreateInput
from volunteers.vetting import record_status_change

# phone_taken, raised by registration, is registered by accounts (its title and message).
i18n.register_titles(
    i18n.title("kind_code_taken", "Volunteer kind code already exists"),
    i18n.title("national_id_taken", "National ID number already registered"),
)
i18n.register_messages(
    i18n.N_("A volunteer kind with this code already exists."),
    i18n.N_("This national ID number is already registered."),
    i18n.N_("The registration conflicts with existing data."),
)


# --- kinds -------------------------------------------------------------------------------------


def list_kinds() -> list[VolunteerKind]:
    return list(db.session.scalars(sa.select(VolunteerKind).order_by(VolunteerKind.id)))


def kind_by_code(code: str) -> VolunteerKind | None:
    return db.session.scalar(sa.select(VolunteerKind).where(VolunteerKind.code == code))


def kind_or_invalid(code: str, field: str = "kind") -> VolunteerKind:
    kind = kind_by_code(code)
    if kind is None:
        raise ValidationFailed(errors={field: ["Unknown volunteer kind."]})
    return kind


def create_kind(caller: Caller, data: VolunteerKindCreateInput) -> VolunteerKind:
    taken = Conflict("A volunteer kind with this code already exists.", code="kind_code_taken")
    if kind_by_code(data["code"]) is not None:
        raise taken
    kind = VolunteerKind(code=data["code"], name_zh=data["name_zh"], name_en=data["name_en"])
    try:
        with db.session.begin_nested():
            db.session.add(kind)
            db.session.flush()
    except IntegrityError:
        raise taken from None
    audit.record(
        caller,
        "volunteer_kind.create",
        target_type="volunteer_kind",
        target_id=kind.id,
        area_path=caller.area_path,
        after={"code": kind.code, "name_zh": kind.name_zh, "name_en": kind.name_en},
    )
    return kind


# --- registration ------------------------------------------------------------------------------


def register(data: RegistrationInput) -> Volunteer:
    """Self-registration: a volunteer user and a pending profile, or nothing at all."""
    errors: dict[str, list[str]] = {}
    kind = kind_by_code(data["kind"])
    if kind is None:
        errors["kind"] = ["Unknown volunteer kind."]
    try:
        grid = get_grid(data["home_grid_id"], field="home_grid_id")
    except ValidationFailed as error:
        errors.update(error.errors or {})
    if errors or kind is None:  # an unknown kind is among the errors
        raise ValidationFailed(errors=errors)

    id_hash = crypto.keyed_hash(data["national_id"])
    _ensure_not_registered(data["phone"], id_hash)
    contact = data.get("emergency_contact")  # both fields or none
    now = utcnow()
    user = User(
        phone=data["phone"],
        password_hash=hash_password(data["password"]),
        role=Role.VOLUNTEER.value,
        display_name=data["real_name"],
        area_id=grid.id,
        locale=data.get("locale") or "zh",
        is_active=True,
    )
    try:
        # A concurrent registration with the same phone or ID passes the check above; the unique
        # constraints catch it here, inside a savepoint so the transaction stays usable.
        with db.session.begin_nested():
            db.session.add(user)
            db.session.flush()
            volunteer = Volunteer(
                user_id=user.id,
                kind_id=kind.id,
                home_grid_id=grid.id,
                status=VolunteerStatus.PENDING.value,
                real_name=data["real_name"],
                national_id_encrypted=crypto.encrypt(data["national_id"]),
                national_id_hash=id_hash,
                emergency_contact_name=contact["name"] if contact else None,
                emergency_contact_phone=contact["phone"] if contact else None,
                consent_version=current_app.config["PRIVACY_TERMS_VERSION"],
                consented_at=now,
                skills=[VolunteerSkill(skill=skill) for skill in data.get("skills", [])],
            )
            db.session.add(volunteer)
            db.session.flush()
    except IntegrityError:
        _ensure_not_registered(data["phone"], id_hash)  # now sees the winner: the precise code
        raise Conflict("The registration conflicts with existing data.") from None
    record_status_change(
        volunteer.id, None, VolunteerStatus.PENDING.value, actor_id=user.id, at=now
    )
    db.session.flush()
    signals.volunteer_registered.send(
        signals.SENDER, **signals.VolunteerEvent(volunteer_id=volunteer.id, actor_id=user.id)
    )
    return volunteer


def _ensure_not_registered(phone: str, national_id_hash: str) -> None:
    if db.session.scalar(sa.select(User.id).where(User.phone == phone)) is not None:
        raise Conflict("This phone number is already registered.", code="phone_taken")
    taken = sa.select(Volunteer.id).where(Volunteer.national_id_hash == national_id_hash)
    if db.session.scalar(taken) is not None:
        raise Conflict("This national ID number is already registered.", code="national_id_taken")
