"""HTTP layer of volunteers: parse, authorise, call the service, serialise."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from core import i18n
from core.auth import MANAGERS, Role, auth_required, current_caller
from core.errors import error_docs
from core.extensions import client_address, limiter
from core.pagination import page_schema
from volunteers import service
from volunteers.schemas import (
    ApproveSchema,
    AvailabilityInputSchema,
    AvailabilitySchema,
    ClosureSchema,
    HistoryQueryArgs,
    OwnProfileUpdateInput,
    OwnProfileUpdateSchema,
    PersonalDataExportSchema,
    ReasonOptionalSchema,
    ReasonRequiredSchema,
    RegistrationInput,
    RegistrationSchema,
    StatusChangeSchema,
    VolunteerKindCreateInput,
    VolunteerKindCreateSchema,
    VolunteerKindSchema,
    VolunteerManageUpdateInput,
    VolunteerManageUpdateSchema,
    VolunteerQueryArgs,
    VolunteerSchema,
)

blp = Blueprint(
    "volunteers",
    __name__,
    url_prefix="/api/v1",
    description="Volunteer kinds, self-registration, vetting, own profile, availability, export, closure",
)
_errors = error_docs(blp)

DEFAULT_REGISTRATION_LIMIT = "20 per hour"


def _registration_limit() -> str:
    return current_app.config.get("REGISTRATION_LIMIT_PER_ADDRESS") or DEFAULT_REGISTRATION_LIMIT


# --- kinds -------------------------------------------------------------------------------------


@blp.route("/volunteer-kinds", methods=["GET"])
@blp.response(200, VolunteerKindSchema(many=True))
def list_volunteer_kinds() -> Any:
    """Volunteer kinds (义警, 小巷管家, …); public, for the registration form."""
    return service.list_kinds()


@blp.route("/volunteer-kinds", methods=["POST"])
@auth_required(Role.ADMIN)
@blp.arguments(VolunteerKindCreateSchema)
@blp.response(201, VolunteerKindSchema)
@blp.alt_response(409, response="CONFLICT")
def create_volunteer_kind(data: VolunteerKindCreateInput) -> Any:
    """Add a volunteer kind

    E.g. herder sentinel 牧民哨兵. A code already in use is 409 kind_code_taken.
    """
    return service.create_kind(current_caller(), data)


# --- registration ------------------------------------------------------------------------------


@blp.route("/volunteers/register", methods=["POST"])
# Above the argument parser so that refused attempts count too: the 409s of a registration would
# otherwise let anyone probe which phone and ID numbers are registered.
@limiter.limit(_registration_limit, key_func=client_address)
@blp.arguments(RegistrationSchema)
@blp.response(201, VolunteerSchema)
@blp.alt_response(409, response="CONFLICT")
@blp.alt_response(429, response="TOO_MANY_REQUESTS")
def register_volunteer(data: RegistrationInput) -> Any:
    """Register as a volunteer

    Public self-registration from the phone. Creates a volunteer account and a pending profile; the
    volunteer logs in through /auth/login and is vetted by an organiser. Rate-limited per client
    address (REGISTRATION_LIMIT_PER_ADDRESS), refused attempts included. A registered phone is
    409 phone_taken, a registered national ID number 409 national_id_taken.
    """
    data.setdefault("locale", i18n.current_language())
    volunteer = service.register(data)
    return service.view(volunteer, reveal_national_id=True)


# --- the volunteer's own data ------------------------------------------------------------------


@blp.route("/volunteers/me", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, VolunteerSchema)
def get_own_profile() -> Any:
    """My volunteer profile

    Any status, including pending; my national ID number is shown in full.
    """
    caller = current_caller()
    return service.view_for(caller, service.own_volunteer(caller))


@blp.route("/volunteers/me", methods=["PATCH"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(OwnProfileUpdateSchema)
@blp.response(200, VolunteerSchema)
def update_own_profile(data: OwnProfileUpdateInput) -> Any:
    """Edit my profile

    Only skills, emergency_contact and locale; any other field is refused (422), nothing changed.
    """
    caller = current_caller()
    volunteer = service.update_own_profile(service.own_volunteer(caller), data)
    return service.view_for(caller, volunteer)


@blp.route("/volunteers/me/availability", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, AvailabilitySchema)
def get_own_availability() -> Any:
    """My weekly availability

    Times are HH:MM wall-clock times in the home grid's time zone (returned as `timezone`);
    weekday 0 is Monday; the end is exclusive. A slot past midnight is sent as two slots.
    """
    return service.availability_view(service.own_volunteer(current_caller()))


@blp.route("/volunteers/me/availability", methods=["PUT"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(AvailabilityInputSchema)
@blp.response(200, AvailabilitySchema)
def replace_own_availability(data: dict[str, Any]) -> Any:
    """Replace my weekly availability

    Replaces every slot: at most 42, start before end, no two slots on the same weekday
    overlapping (the error names the slot's index). Times are HH:MM wall-clock times in the home
    grid's time zone (returned as `timezone`); weekday 0 is Monday; the end is exclusive.
    """
    volunteer = service.replace_availability(service.own_volunteer(current_caller()), data["slots"])
    return service.availability_view(volunteer)


@blp.route("/volunteers/me/export", methods=["GET"])
@auth_required(Role.VOLUNTEER)
@blp.response(200, PersonalDataExportSchema)
def export_own_data() -> Any:
    """Download my personal data

    Everything held about me as a JSON attachment (PIPL right of access), including my unmasked
    national ID number.
    """
    volunteer = service.own_volunteer(current_caller())
    headers = {
        "Content-Disposition": f'attachment; filename="{service.export_filename(volunteer)}"',
        "Cache-Control": "no-store",
    }
    return service.export_personal_data(volunteer), headers


@blp.route("/volunteers/me/closure", methods=["POST"])
@auth_required(Role.VOLUNTEER)
@blp.arguments(ClosureSchema)
@blp.response(202, VolunteerSchema)
@blp.alt_response(409, response="CONFLICT")
def close_own_account(data: dict[str, Any]) -> Any:
    """Close my account

    PIPL right to close the account: I am retired, my account is deactivated and every session is
    signed out. A second request is 409 closure_already_requested.
    """
    caller = current_caller()
    volunteer = service.request_closure(caller, service.own_volunteer(caller), data.get("reason"))
    return service.view_for(caller, volunteer)


# --- managing volunteers -----------------------------------------------------------------------


@blp.route("/volunteers", methods=["GET"])
@auth_required(*MANAGERS)
@blp.arguments(VolunteerQueryArgs, location="query")
@blp.response(200, page_schema(VolunteerSchema))
def list_volunteers(args: dict[str, Any]) -> Any:
    """List volunteers

    Volunteers whose home grid lies in your area, ordered by id. National ID numbers are masked
    for organisers; phones are shown in full. grid_id or under outside your area is 403.
    """
    return service.list_volunteers(current_caller(), args)


@blp.route("/volunteers/<int:volunteer_id>", methods=["GET"])
@auth_required(*MANAGERS)
@_errors(403, 404)
@blp.response(200, VolunteerSchema)
def get_volunteer(volunteer_id: int) -> Any:
    """One volunteer in your area

    A volunteer whose home grid is outside your area is 404 volunteer_not_found, the answer for an
    id that does not exist.
    """
    caller = current_caller()
    return service.view_for(caller, service.get_in_scope(caller, volunteer_id))


@blp.route("/volunteers/<int:volunteer_id>", methods=["PATCH"])
@auth_required(*MANAGERS)
@_errors(403, 404)
@blp.arguments(VolunteerManageUpdateSchema)
@blp.response(200, VolunteerSchema)
def update_volunteer(data: VolunteerManageUpdateInput, volunteer_id: int) -> Any:
    """Edit a volunteer

    Kind, home grid (inside your area), certificate or armband number; audited.
    """
    caller = current_caller()
    volunteer = service.get_in_scope(caller, volunteer_id)
    return service.view_for(caller, service.update_by_manager(caller, volunteer, data))


@blp.route("/volunteers/<int:volunteer_id>/history", methods=["GET"])
@auth_required(*MANAGERS)
@_errors(403, 404)
@blp.arguments(HistoryQueryArgs, location="query")
@blp.response(200, page_schema(StatusChangeSchema))
def volunteer_history(args: dict[str, Any], volunteer_id: int) -> Any:
    """Status changes of a volunteer, newest first."""
    volunteer = service.get_in_scope(current_caller(), volunteer_id)
    return service.status_history(volunteer, limit=args["limit"], cursor=args.get("cursor"))


def _transition(volunteer_id: int, action: str, **changes: Any) -> Any:
    caller = current_caller()
    volunteer = service.get_in_scope(caller, volunteer_id)
    return service.view_for(caller, service.change_status(caller, volunteer, action, **changes))


@blp.route("/volunteers/<int:volunteer_id>/approve", methods=["POST"])
@auth_required(*MANAGERS)
@_errors(403, 404)
@blp.arguments(ApproveSchema)
@blp.response(200, VolunteerSchema)
@blp.alt_response(409, response="CONFLICT")
def approve_volunteer(data: dict[str, Any], volunteer_id: int) -> Any:
    """Approve a volunteer

    pending → active, recording the appointment certificate (聘任证书) number. Any other transition is 409
    invalid_status_transition and changes nothing.
    """
    return _transition(
        volunteer_id,
        "approve",
        certificate_no=data["certificate_no"],
        armband_no=data.get("armband_no"),
    )


@blp.route("/volunteers/<int:volunteer_id>/reject", methods=["POST"])
@auth_required(*MANAGERS)
@_errors(403, 404)
@blp.arguments(ReasonRequiredSchema)
@blp.response(200, VolunteerSchema)
@blp.alt_response(409, response="CONFLICT")
def reject_volunteer(data: dict[str, Any], volunteer_id: int) -> Any:
    """Reject a registration

    pending → rejected. Any other transition is 409
    invalid_status_transition and changes nothing.
    """
    return _transition(volunteer_id, "reject", reason=data["reason"])


@blp.route("/volunteers/<int:volunteer_id>/suspend", methods=["POST"])
@auth_required(*MANAGERS)
@_errors(403, 404)
@blp.arguments(ReasonRequiredSchema)
@blp.response(200, VolunteerSchema)
@blp.alt_response(409, response="CONFLICT")
def suspend_volunteer(data: dict[str, Any], volunteer_id: int) -> Any:
    """Suspend a volunteer

    active → suspended. Any other transition is 409
    invalid_status_transition and changes nothing.
    """
    return _transition(volunteer_id, "suspend", reason=data["reason"])


@blp.route("/volunteers/<int:volunteer_id>/reinstate", methods=["POST"])
@auth_required(*MANAGERS)
@_errors(403, 404)
@blp.arguments(ReasonOptionalSchema)
@blp.response(200, VolunteerSchema)
@blp.alt_response(409, response="CONFLICT")
def reinstate_volunteer(data: dict[str, Any], volunteer_id: int) -> Any:
    """Reinstate a suspended volunteer

    suspended → active. Any other transition is 409
    invalid_status_transition and changes nothing.
    """
    return _transition(volunteer_id, "reinstate", reason=data.get("reason"))


@blp.route("/volunteers/<int:volunteer_id>/retire", methods=["POST"])
@auth_required(*MANAGERS)
@_errors(403, 404)
@blp.arguments(ReasonRequiredSchema)
@blp.response(200, VolunteerSchema)
@blp.alt_response(409, response="CONFLICT")
def retire_volunteer(data: dict[str, Any], volunteer_id: int) -> Any:
    """Retire a volunteer

    active, suspended or pending → retired. Any other transition is 409
    invalid_status_transition and changes nothing.
    """
    return _transition(volunteer_id, "retire", reason=data["reason"])
