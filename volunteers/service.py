"""Rules of volunteers: lookups, who may see whom, and management by organisers. No HTTP here.

The entry point other code imports from: it re-exports kinds and self-registration
(``volunteers.registration``), the volunteer's self-service (``volunteers.self_service``: profile,
availability, personal data export, closure) and vetting (``volunteers.vetting``: status
transitions and history). Services only flush; the request commits.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from accounts.models import User
from accounts.service import authenticated_account
from core import audit, crypto, i18n
from core.auth import Caller, Role
from core.db import utcnow
from core.errors import MAX_DB_INT, NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from grids.paths import ancestor_ids
from grids.service import get_grid, in_subtree
from volunteers.models import Volunteer, VolunteerSkill, VolunteerStatus
from volunteers.registration import create_kind, kind_by_code, kind_or_invalid, list_kinds, register
from volunteers.schemas import VolunteerManageUpdateInput
from volunteers.self_service import (
    EXPORTERS,
    Exporter,
    availability_view,
    emergency_contact,
    export_filename,
    export_personal_data,
    register_exporter,
    replace_availability,
    request_closure,
    update_own_profile,
)
from volunteers.vetting import change_status, status_history

__all__ = [
    # re-exported from volunteers.self_service (routes and other packages use them from here)
    "EXPORTERS",
    "Exporter",
    "availability_view",
    # re-exported from volunteers.vetting
    "change_status",
    # re-exported from volunteers.registration
    "create_kind",
    "export_filename",
    "export_personal_data",
    # defined here
    "get_in_scope",
    "get_volunteer",
    "kind_by_code",
    "list_kinds",
    "list_volunteers",
    "may_see",
    "may_see_national_id",
    "own_volunteer",
    "referenced_volunteer",
    "register",
    "register_exporter",
    "replace_availability",
    "request_closure",
    "status_history",
    "update_by_manager",
    "update_own_profile",
    "view",
    "view_for",
]

#: The one answer for a volunteer id in a request body the caller may not reach, whether or not
#: it exists (``referenced_volunteer``).
UNKNOWN_VOLUNTEER = i18n.N_("Unknown volunteer.")

i18n.register_titles(i18n.title("volunteer_not_found", "Volunteer not found"))
i18n.register_messages(i18n.N_("Volunteer not found."), UNKNOWN_VOLUNTEER, i18n.N_("You have no volunteer profile."))

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
        "emergency_contact": emergency_contact(volunteer),
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


# --- lookups -----------------------------------------------------------------------------------


def volunteer_not_found() -> NotFound:
    """The answer for a volunteer id that does not exist, and for one the caller may not see."""
    return NotFound("Volunteer not found.", code="volunteer_not_found")


def get_volunteer(volunteer_id: int) -> Volunteer:
    """By id. No range guard: ids come from ``<int:...>`` URLs, bounded to the column's range."""
    volunteer = db.session.get(Volunteer, volunteer_id)
    if volunteer is None:
        raise volunteer_not_found()
    return volunteer


def get_in_scope(caller: Caller, volunteer_id: int) -> Volunteer:
    """A volunteer by the id in the URL, for managers: one out of sight (``may_see``) is not
    found, exactly as an id that does not exist."""
    volunteer = get_volunteer(volunteer_id)
    if not may_see(caller, volunteer):
        raise volunteer_not_found()
    return volunteer


# --- who may see whom ----------------------------------------------------------------------------


def _community_id(area_path: str) -> int | None:
    """The community of a volunteer's home grid (its parent), from the grid's path."""
    above = ancestor_ids(area_path)
    return above[-1] if above else None


def may_see(caller: Caller, volunteer: Volunteer, *, place_paths: Iterable[str] = ()) -> bool:
    """Whether the caller may know this volunteer: see their name, name them in a request.

    The one rule every path that shows another volunteer or resolves another volunteer's id
    follows:

    - everyone sees themself;
    - organisers, staff and admins see the volunteers whose home grid lies in their subtree, and
      those holding or asking for a place on a shift there (``place_paths``: the grids of the
      places the volunteer is shown with);
    - a volunteer sees the volunteers of their own community (their home grid's parent), the
      organiser's unit and the people they patrol with. Anyone else in the city is a stranger:
      shifts elsewhere are visible, the people on them are not.

    A volunteer's community comes from the token's area path (their home grid), as every scope
    check does; communities are compared by id, never by a path prefix.
    """
    if volunteer.user_id == caller.user_id:
        return True
    if caller.is_manager:
        return caller.in_scope(volunteer.home_grid.path) or any(
            caller.in_scope(path) for path in place_paths
        )
    community = _community_id(caller.area_path)
    return community is not None and volunteer.home_grid.parent_id == community


def referenced_volunteer(caller: Caller, volunteer_id: int, field: str = "volunteer_id") -> Volunteer:
    """A volunteer another person named in a request body, if the caller may reach them.

    Reach is :func:`may_see`; a volunteer moreover reaches only *active* volunteers (nobody else
    can take part, and a different answer for a pending or suspended neighbour would tell their
    status). Everything else — no such id, a volunteer out of sight, one out of reach — is one and
    the same 422 on ``field``, so the answer never tells which. Callers check this before any rule
    about the person (status, overlap, rest, kind), so no rule answers for someone out of reach.
    """
    volunteer = db.session.get(Volunteer, volunteer_id) if 1 <= volunteer_id <= MAX_DB_INT else None
    if volunteer is None or not _reaches(caller, volunteer):
        raise ValidationFailed(errors={field: [UNKNOWN_VOLUNTEER]})
    return volunteer


def _reaches(caller: Caller, volunteer: Volunteer) -> bool:
    if not may_see(caller, volunteer):
        return False
    if caller.role != Role.VOLUNTEER or volunteer.user_id == caller.user_id:
        return True
    return volunteer.status == VolunteerStatus.ACTIVE


def _no_volunteer_profile() -> NotFound:
    return NotFound("You have no volunteer profile.", code="volunteer_not_found")


def own_volunteer(caller: Caller) -> Volunteer:
    """The caller's own profile, found by the token's user id (never by anything the client sends)."""
    volunteer = db.session.scalar(sa.select(Volunteer).where(Volunteer.user_id == caller.user_id))
    if volunteer is None:
        raise _no_volunteer_profile()
    return volunteer


_OWN_VOLUNTEER_ID = sa.select(Volunteer.id).where(Volunteer.user_id == sa.bindparam("user_id"))


def own_volunteer_id(caller: Caller) -> int:
    """The id of the caller's own profile, for reads that need no more of it (one indexed lookup,
    where :func:`own_volunteer` loads the account, kind, home grid, skills and availability); none
    when the request's session check read it already (volunteers.listeners)."""
    account = authenticated_account(caller.user_id)
    if account is not None and "volunteer_id" in account.links:
        volunteer_id = account.links["volunteer_id"]
    else:
        volunteer_id = db.session.scalar(_OWN_VOLUNTEER_ID, {"user_id": caller.user_id})
    if volunteer_id is None:
        raise _no_volunteer_profile()
    return volunteer_id


# --- management (vetting itself lives in volunteers.vetting) ------------------------------------


def list_volunteers(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Volunteers whose home grid lies in the caller's subtree, filtered, ordered by id."""
    page = paginate(select_volunteers(caller, args), [Volunteer.id], limit=args["limit"], cursor=args.get("cursor"))
    page["items"] = [view_for(caller, volunteer) for volunteer in page["items"]]
    return page


def select_volunteers(caller: Caller, args: dict[str, Any]) -> sa.Select[tuple[Volunteer]]:
    """The query of :func:`list_volunteers` (its filters and scope checks), for a caller that needs
    the rows and not their views (the console's overview: names only, no ID number decrypted)."""
    stmt = (
        sa.select(Volunteer)
        .join(Area, Area.id == Volunteer.home_grid_id)
        .where(in_subtree(Area.path, caller.area_path))
    )
    if args.get("status"):
        stmt = stmt.where(Volunteer.status == args["status"])
    if args.get("kind"):
        stmt = stmt.where(Volunteer.kind_id == kind_or_invalid(args["kind"]).id)
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
    return stmt


def update_by_manager(caller: Caller, volunteer: Volunteer, data: VolunteerManageUpdateInput) -> Volunteer:
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    audit_path = volunteer.home_grid.path
    if "kind" in data:
        kind = kind_or_invalid(data["kind"])
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
