"""Rules of volunteers: registration, self-service, vetting, personal data. No HTTP here.

Services only flush; the request commits. Status transitions are conditional UPDATEs
(``... WHERE id = :id AND status = :expected``) so two organisers acting at once cannot both win.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from typing import Any

import sqlalchemy as sa
from blinker import NamedSignal
from flask import current_app
from sqlalchemy.exc import IntegrityError

from accounts.models import User
from accounts.passwords import hash_password
from accounts.service import revoke_all_sessions
from core import audit, crypto, i18n
from core.auth import Caller, Role
from core.db import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from grids.service import get_grid, in_subtree
from volunteers import signals
from volunteers.models import (
    AvailabilitySlot,
    StatusChange,
    Volunteer,
    VolunteerKind,
    VolunteerSkill,
    VolunteerStatus,
)
from volunteers.schemas import MAX_ID

i18n.register_titles(
    {
        "volunteer_not_found": ("志愿者不存在", "Volunteer not found"),
        "kind_code_taken": ("志愿者类型代码已存在", "Volunteer kind code already exists"),
        "phone_taken": ("该手机号已注册", "Phone number already registered"),
        "national_id_taken": ("该身份证号已注册", "National ID number already registered"),
        "closure_already_requested": ("已申请注销账号", "Account closure already requested"),
        "invalid_status_transition": ("不允许的状态变更", "Status change not allowed"),
    }
)
i18n.register_messages(
    {
        "Volunteer not found.": "志愿者不存在。",
        "You have no volunteer profile.": "您没有志愿者档案。",
        "A volunteer kind with this code already exists.": "已存在使用该代码的志愿者类型。",
        "This phone number is already registered.": "该手机号已注册。",
        "This national ID number is already registered.": "该身份证号已注册。",
        "The registration conflicts with existing data.": "注册信息与现有数据冲突。",
        "You have already requested to close your account.": "您已申请注销账号。",
        "The volunteer changed meanwhile; try again.": "志愿者信息已被他人修改，请重试。",
        "This status change is not allowed from the volunteer's current status.": (
            "志愿者当前状态不允许此状态变更。"
        ),
    }
)

# --- kinds -------------------------------------------------------------------------------------


def list_kinds() -> list[VolunteerKind]:
    return list(db.session.scalars(sa.select(VolunteerKind).order_by(VolunteerKind.id)))


def kind_by_code(code: str) -> VolunteerKind | None:
    return db.session.scalar(sa.select(VolunteerKind).where(VolunteerKind.code == code))


def _kind_or_invalid(code: str, field: str = "kind") -> VolunteerKind:
    kind = kind_by_code(code)
    if kind is None:
        raise ValidationFailed(errors={field: ["Unknown volunteer kind."]})
    return kind


def create_kind(caller: Caller, data: dict[str, Any]) -> VolunteerKind:
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


# --- presentation ------------------------------------------------------------------------------


def may_see_national_id(caller: Caller, volunteer: Volunteer) -> bool:
    """Staff, admins and the volunteer themself see the full number; organisers see it masked."""
    return caller.is_official or caller.user_id == volunteer.user_id


def view(volunteer: Volunteer, *, reveal_national_id: bool) -> dict[str, Any]:
    """The volunteer as ``VolunteerSchema`` shows it; never the hash or the ciphertext.

    The phone is shown in full: only the volunteer and managers whose area holds the volunteer's
    home grid get here at all, and organisers need the number to call volunteers.
    """
    national_id = crypto.decrypt(volunteer.national_id_encrypted)
    return {
        "id": volunteer.id,
        "user_id": volunteer.user_id,
        "real_name": volunteer.real_name,
        "phone": volunteer.user.phone,
        "national_id": national_id if reveal_national_id else crypto.mask(national_id, 4, 4),
        "kind": volunteer.kind,
        "home_grid": volunteer.home_grid,
        "status": volunteer.status,
        "status_reason": volunteer.status_reason,
        "skills": sorted(skill.skill for skill in volunteer.skills),
        "emergency_contact": _emergency_contact(volunteer),
        "certificate_no": volunteer.certificate_no,
        "armband_no": volunteer.armband_no,
        "consent_version": volunteer.consent_version,
        "consented_at": volunteer.consented_at,
        "closure_requested_at": volunteer.closure_requested_at,
        "created_at": volunteer.created_at,
        "updated_at": volunteer.updated_at,
    }


def view_for(caller: Caller, volunteer: Volunteer) -> dict[str, Any]:
    return view(volunteer, reveal_national_id=may_see_national_id(caller, volunteer))


def _emergency_contact(volunteer: Volunteer) -> dict[str, str] | None:
    if volunteer.emergency_contact_name is None:
        return None
    return {"name": volunteer.emergency_contact_name, "phone": volunteer.emergency_contact_phone}


# --- registration ------------------------------------------------------------------------------


def register(data: dict[str, Any]) -> Volunteer:
    """Self-registration: a volunteer user and a pending profile, or nothing at all."""
    errors: dict[str, list[str]] = {}
    kind = kind_by_code(data["kind"])
    if kind is None:
        errors["kind"] = ["Unknown volunteer kind."]
    try:
        grid = get_grid(data["home_grid_id"], field="home_grid_id")
    except ValidationFailed as error:
        errors.update(error.errors or {})
    if errors:
        raise ValidationFailed(errors=errors)

    id_hash = crypto.keyed_hash(data["national_id"])
    _ensure_not_registered(data["phone"], id_hash)
    contact = data.get("emergency_contact") or {}
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
                kind_id=kind.id,  # type: ignore[union-attr]
                home_grid_id=grid.id,
                status=VolunteerStatus.PENDING.value,
                real_name=data["real_name"],
                national_id_encrypted=crypto.encrypt(data["national_id"]),
                national_id_hash=id_hash,
                emergency_contact_name=contact.get("name"),
                emergency_contact_phone=contact.get("phone"),
                consent_version=current_app.config["PRIVACY_TERMS_VERSION"],
                consented_at=now,
                skills=[VolunteerSkill(skill=skill) for skill in data.get("skills", [])],
            )
            db.session.add(volunteer)
            db.session.flush()
    except IntegrityError:
        _ensure_not_registered(data["phone"], id_hash)  # now sees the winner: the precise code
        raise Conflict("The registration conflicts with existing data.") from None
    db.session.add(
        StatusChange(
            volunteer_id=volunteer.id,
            from_status=None,
            to_status=VolunteerStatus.PENDING.value,
            actor_id=user.id,
            at=now,
        )
    )
    db.session.flush()
    signals.volunteer_registered.send(signals.SENDER, volunteer_id=volunteer.id, actor_id=user.id)
    return volunteer


def _ensure_not_registered(phone: str, national_id_hash: str) -> None:
    if db.session.scalar(sa.select(User.id).where(User.phone == phone)) is not None:
        raise Conflict("This phone number is already registered.", code="phone_taken")
    taken = sa.select(Volunteer.id).where(Volunteer.national_id_hash == national_id_hash)
    if db.session.scalar(taken) is not None:
        raise Conflict("This national ID number is already registered.", code="national_id_taken")


# --- lookups -----------------------------------------------------------------------------------


def get_volunteer(volunteer_id: int) -> Volunteer:
    volunteer = db.session.get(Volunteer, volunteer_id) if 0 < volunteer_id <= MAX_ID else None
    if volunteer is None:
        raise NotFound("Volunteer not found.", code="volunteer_not_found")
    return volunteer


def get_in_scope(caller: Caller, volunteer_id: int) -> Volunteer:
    volunteer = get_volunteer(volunteer_id)
    caller.ensure_scope(volunteer.home_grid.path)
    return volunteer


def own_volunteer(caller: Caller) -> Volunteer:
    """The caller's own profile, found by the token's user id (never by anything the client sends)."""
    volunteer = db.session.scalar(sa.select(Volunteer).where(Volunteer.user_id == caller.user_id))
    if volunteer is None:
        raise NotFound("You have no volunteer profile.", code="volunteer_not_found")
    return volunteer


# --- self-service ------------------------------------------------------------------------------


def update_own_profile(volunteer: Volunteer, data: dict[str, Any]) -> Volunteer:
    if "skills" in data:
        _replace_skills(volunteer, data["skills"])
    if "emergency_contact" in data:
        contact = data["emergency_contact"] or {}
        volunteer.emergency_contact_name = contact.get("name")
        volunteer.emergency_contact_phone = contact.get("phone")
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
    return "emergency_contact", _emergency_contact(volunteer)


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
    now = utcnow()
    values: dict[str, Any] = {
        "closure_requested_at": now,
        "status": VolunteerStatus.RETIRED.value,
        "updated_at": now,
    }
    if previous != VolunteerStatus.RETIRED:
        values["status_reason"] = reason
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
    if claimed.rowcount != 1:
        db.session.refresh(volunteer)
        if volunteer.closure_requested_at is not None:
            raise _closure_already_requested()
        raise Conflict("The volunteer changed meanwhile; try again.")

    user = volunteer.user
    user.is_active = False
    if previous != VolunteerStatus.RETIRED:
        db.session.add(
            StatusChange(
                volunteer_id=volunteer.id,
                from_status=previous,
                to_status=VolunteerStatus.RETIRED.value,
                reason=reason,
                actor_id=caller.user_id,
                at=now,
            )
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
    if previous != VolunteerStatus.RETIRED:
        signals.volunteer_retired.send(
            signals.SENDER, volunteer_id=volunteer.id, actor_id=caller.user_id, reason=reason
        )
    signals.volunteer_closure_requested.send(
        signals.SENDER, volunteer_id=volunteer.id, actor_id=caller.user_id, reason=reason
    )
    return volunteer


def _closure_already_requested() -> Conflict:
    return Conflict(
        "You have already requested to close your account.", code="closure_already_requested"
    )


# --- management --------------------------------------------------------------------------------


def list_volunteers(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Volunteers whose home grid lies in the caller's subtree, filtered, ordered by id."""
    stmt = (
        sa.select(Volunteer)
        .join(Area, Area.id == Volunteer.home_grid_id)
        .where(in_subtree(Area.path, caller.area_path))
    )
    if args.get("status"):
        stmt = stmt.where(Volunteer.status == args["status"])
    if args.get("kind"):
        stmt = stmt.where(Volunteer.kind_id == _kind_or_invalid(args["kind"]).id)
    if args.get("grid_id"):
        grid = get_grid(args["grid_id"], field="grid_id")
        caller.ensure_scope(grid.path)
        stmt = stmt.where(Volunteer.home_grid_id == grid.id)
    if args.get("under"):
        root = db.session.get(Area, args["under"])
        if root is None:
            raise ValidationFailed(errors={"under": ["Unknown area."]})
        caller.ensure_scope(root.path)
        stmt = stmt.where(in_subtree(Area.path, root.path))
    if args.get("skill"):
        stmt = stmt.where(
            sa.exists().where(
                VolunteerSkill.volunteer_id == Volunteer.id, VolunteerSkill.skill == args["skill"]
            )
        )
    if args.get("q"):
        query = args["q"]
        matches = [Volunteer.real_name.contains(query, autoescape=True)]
        digits = re.sub(r"\D", "", query)
        if digits:
            stmt = stmt.join(User, User.id == Volunteer.user_id)
            matches.append(User.phone.contains(digits))
        stmt = stmt.where(sa.or_(*matches))
    page = paginate(stmt, [Volunteer.id], limit=args["limit"], cursor=args.get("cursor"))
    page["items"] = [view_for(caller, volunteer) for volunteer in page["items"]]
    return page


def update_by_manager(caller: Caller, volunteer: Volunteer, data: dict[str, Any]) -> Volunteer:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    audit_path = volunteer.home_grid.path
    if "kind" in data:
        kind = _kind_or_invalid(data["kind"])
        if kind.id != volunteer.kind_id:
            before["kind"], after["kind"] = volunteer.kind.code, kind.code
            volunteer.kind = kind
    if "home_grid_id" in data:
        grid = get_grid(data["home_grid_id"], field="home_grid_id")
        caller.ensure_scope(grid.path)
        if grid.id != volunteer.home_grid_id:
            before["home_grid_id"], after["home_grid_id"] = volunteer.home_grid_id, grid.id
            volunteer.home_grid = grid
            # The user's area is the volunteer's home grid; keep the two together.
            volunteer.user.area_id = grid.id
    for field in ("certificate_no", "armband_no"):
        if field in data and data[field] != getattr(volunteer, field):
            before[field], after[field] = getattr(volunteer, field), data[field]
            setattr(volunteer, field, data[field])
    if after:
        volunteer.updated_at = utcnow()
        audit.record(
            caller,
            "volunteer.update",
            target_type="volunteer",
            target_id=volunteer.id,
            area_path=audit_path,
            before=before,
            after=after,
        )
    db.session.flush()
    return volunteer


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    target: str
    signal: NamedSignal


_S = VolunteerStatus
TRANSITIONS: dict[str, Transition] = {
    "approve": Transition(frozenset({_S.PENDING}), _S.ACTIVE, signals.volunteer_approved),
    "reject": Transition(frozenset({_S.PENDING}), _S.REJECTED, signals.volunteer_rejected),
    "suspend": Transition(frozenset({_S.ACTIVE}), _S.SUSPENDED, signals.volunteer_suspended),
    "reinstate": Transition(frozenset({_S.SUSPENDED}), _S.ACTIVE, signals.volunteer_reinstated),
    "retire": Transition(
        frozenset({_S.ACTIVE, _S.SUSPENDED, _S.PENDING}), _S.RETIRED, signals.volunteer_retired
    ),
}


def change_status(
    caller: Caller,
    volunteer: Volunteer,
    action: str,
    *,
    reason: str | None = None,
    certificate_no: str | None = None,
    armband_no: str | None = None,
) -> Volunteer:
    """Apply a vetting transition; anything not in ``TRANSITIONS`` is 409 and changes nothing."""
    rule = TRANSITIONS[action]
    previous = volunteer.status
    if previous not in rule.sources:
        raise _invalid_transition()
    now = utcnow()
    values: dict[str, Any] = {"status": rule.target, "status_reason": reason, "updated_at": now}
    if action == "approve":
        values["certificate_no"] = certificate_no
        if armband_no is not None:
            values["armband_no"] = armband_no
    # Conditional on the status we read: of two organisers acting at once only one matches a row.
    claimed = db.session.execute(
        sa.update(Volunteer)
        .where(Volunteer.id == volunteer.id, Volunteer.status == previous)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        raise _invalid_transition()
    db.session.add(
        StatusChange(
            volunteer_id=volunteer.id,
            from_status=previous,
            to_status=rule.target,
            reason=reason,
            actor_id=caller.user_id,
            at=now,
        )
    )
    audit_before = {"status": previous, "status_reason": volunteer.status_reason}
    if action == "approve":
        audit_before.update(certificate_no=volunteer.certificate_no, armband_no=volunteer.armband_no)
    audit.record(
        caller,
        f"volunteer.{action}",
        target_type="volunteer",
        target_id=volunteer.id,
        area_path=volunteer.home_grid.path,
        before=audit_before,
        after={key: value for key, value in values.items() if key != "updated_at"},
    )
    db.session.flush()
    db.session.refresh(volunteer)
    rule.signal.send(
        signals.SENDER, volunteer_id=volunteer.id, actor_id=caller.user_id, reason=reason
    )
    return volunteer


def _invalid_transition() -> Conflict:
    return Conflict(
        "This status change is not allowed from the volunteer's current status.",
        code="invalid_status_transition",
    )


def status_history(volunteer: Volunteer, *, limit: int, cursor: str | None) -> dict[str, Any]:
    stmt = sa.select(StatusChange).where(StatusChange.volunteer_id == volunteer.id)
    return paginate(stmt, [StatusChange.id], limit=limit, cursor=cursor, descending=True)
