"""Certificates: the rules and transactions (no HTTP here).

Who reaches a certificate by its id: the volunteer it is about; organisers, staff and admins whose
subtree holds its issuer or the volunteer's home grid. Anyone else gets 404
``certificate_not_found``, exactly as for an id that does not exist. Issuing and revoking belong to
the issuer: a manager who reaches a certificate only through the volunteer, with the issuer outside
their subtree, is 403 ``out_of_scope`` (areas are public, so that says nothing secret).

The number is ``<issuer area code>-<year>-<sequence, 6 digits>``: the year is the issuer's local
year of issue, the sequence comes from the (issuer, year) counter row advanced by
``INSERT … ON CONFLICT DO UPDATE … RETURNING`` in the issuing transaction. Concurrent issues of one
issuer queue on that row; a rolled-back issue rolls the counter back with it, so the numbers run
1, 2, 3 … with no gap and no repeat.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from core import audit, crypto, i18n
from core.auth import Caller
from core.db import rowcount, utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from core.timeutil import zone
from grids.models import Area, AreaLevel
from grids.queries import in_subtree, referenced_area, scope_root
from patrols.models import Patrol
from records import hours, identity
from records.certificates.models import AreaSeal, Certificate, CertificateStatus
from records.certificates.schemas import CertificateRequestInput
from records.stars import service as stars
from rewards.awarding.models import ServiceRecord
from shifts.models import Shift
from volunteers.models import Volunteer
from volunteers.service import may_see, own_volunteer

NO_HOURS = i18n.N_("No hours that count in this period under this issuer.")
NOT_AN_ISSUER = i18n.N_("A certificate is issued by a community or an area above it, not by a grid.")
PERIOD_NOT_OVER = i18n.N_("The period may not end after today.")
PERIOD_REVERSED = i18n.N_("The period ends before it begins.")
NOT_A_FILE = i18n.N_("Send the seal as a file part of the form.")
#: What a served shift is called on a certificate when its shift has no title left.
PATROL_CONTENT = "社区治安巡逻"
#: What hand-entered service without a note is called.
OTHER_CONTENT = "其他志愿服务"
#: Longest content or places text frozen on a certificate (the columns' size).
FROZEN_TEXT_MAX = 1000

i18n.register_titles(
    i18n.title("certificate_not_found", "Certificate not found"),
    i18n.title("no_hours_in_period", "No hours in this period"),
    i18n.title("certificate_not_requested", "Certificate already issued"),
    i18n.title("certificate_not_issued", "Certificate not issued"),
    i18n.title("certificate_number_taken", "Certificate number taken"),
    i18n.title("seal_not_found", "Seal not found"),
)
i18n.register_messages(
    NO_HOURS,
    NOT_AN_ISSUER,
    PERIOD_NOT_OVER,
    PERIOD_REVERSED,
    NOT_A_FILE,
    i18n.N_("Certificate not found."),
    i18n.N_("Only a requested certificate can be issued."),
    i18n.N_("Only an issued certificate can be revoked."),
    i18n.N_("The certificate has not been issued yet."),
    i18n.N_("The next certificate number is already in use; tell the operators."),
    i18n.N_("This area has no seal."),
)


def certificate_not_found() -> NotFound:
    """The answer for an id that does not exist, and for one the caller may not reach."""
    return NotFound("Certificate not found.", code="certificate_not_found")


# --- who reaches what ----------------------------------------------------------------------------


def issuer_of(certificate: Certificate) -> Area:
    return db.session.get_one(Area, certificate.issuer_area_id)


def reachable(caller: Caller, certificate_id: int) -> Certificate:
    """The certificate, if the caller may see it (see the module docstring); else not found."""
    certificate = db.session.get(Certificate, certificate_id)
    if certificate is None:
        raise certificate_not_found()
    volunteer = db.session.get_one(Volunteer, certificate.volunteer_id)
    if caller.is_manager:
        if not (caller.in_scope(issuer_of(certificate).path) or may_see(caller, volunteer)):
            raise certificate_not_found()
    elif volunteer.user_id != caller.user_id:
        raise certificate_not_found()
    return certificate


def _issued_by_caller(caller: Caller, certificate_id: int) -> tuple[Certificate, Area]:
    """A certificate the caller reaches whose issuer lies in their subtree (else 403 out_of_scope)."""
    certificate = reachable(caller, certificate_id)
    issuer = issuer_of(certificate)
    caller.ensure_scope(issuer.path)
    return certificate, issuer


# --- request -------------------------------------------------------------------------------------


def request_certificate(caller: Caller, data: CertificateRequestInput) -> tuple[Certificate, bool]:
    """The volunteer's certificate for this issuer and period: the live one if there is one
    (``False``: not new), else a new request (``True``). 422 when nothing counts in the period."""
    volunteer = own_volunteer(caller)
    issuer = referenced_area(data["issuer_area_id"], "issuer_area_id")
    if issuer.level == AreaLevel.GRID:
        raise ValidationFailed(errors={"issuer_area_id": [NOT_AN_ISSUER]})
    first, last = data["first_day"], data["last_day"]
    if last > _today(issuer):
        raise ValidationFailed(errors={"last_day": [PERIOD_NOT_OVER]})
    existing = _live(volunteer.id, issuer.id, first, last)
    if existing is not None:
        return existing, False
    if hours.counted_minutes(volunteer.id, area_path=issuer.path, first=first, last=last) == 0:
        raise ValidationFailed(NO_HOURS, code="no_hours_in_period", errors={"last_day": [NO_HOURS]})
    certificate = Certificate(
        volunteer_id=volunteer.id, issuer_area_id=issuer.id, first_day=first, last_day=last,
        status=CertificateStatus.REQUESTED, requested_at=utcnow(), issuer_name=issuer.name,
    )
    try:
        # Two requests at once for the same period meet at the unique index: the second one
        # answers with the first one's certificate.
        with db.session.begin_nested():
            db.session.add(certificate)
            db.session.flush()
    except IntegrityError:
        winner = _live(volunteer.id, issuer.id, first, last)
        if winner is None:  # the other request's certificate was revoked in between: try again
            raise
        return winner, False
    return certificate, True


def _live(volunteer_id: int, issuer_id: int, first: date, last: date) -> Certificate | None:
    return db.session.scalar(
        sa.select(Certificate).where(
            Certificate.volunteer_id == volunteer_id,
            Certificate.issuer_area_id == issuer_id,
            Certificate.first_day == first,
            Certificate.last_day == last,
            Certificate.status != CertificateStatus.REVOKED,
        )
    )


def _today(area: Area) -> date:
    return utcnow().astimezone(zone(area.timezone)).date()


# --- issue ---------------------------------------------------------------------------------------


def issue(caller: Caller, certificate_id: int, *, full_id_number: bool) -> Certificate:
    """Freeze the hours, content, places, identity and seal, and number the certificate."""
    certificate, issuer = _issued_by_caller(caller, certificate_id)
    if certificate.status != CertificateStatus.REQUESTED:
        raise Conflict("Only a requested certificate can be issued.", code="certificate_not_requested")
    volunteer = db.session.get_one(Volunteer, certificate.volunteer_id)
    first, last = certificate.first_day, certificate.last_day
    minutes = hours.counted_minutes(volunteer.id, area_path=issuer.path, first=first, last=last)
    if minutes == 0:  # voided since it was asked for
        raise ValidationFailed(NO_HOURS, code="no_hours_in_period")
    now = utcnow()
    issued_on = now.astimezone(zone(issuer.timezone)).date()
    # The counter row is the queue: concurrent issues of this issuer wait here for each other, so
    # the conditional UPDATE below sees a concurrent issue of the same certificate committed, and
    # matches nothing (409; the rollback gives the number back).
    sequence = next_sequence(issuer.id, issued_on.year)
    seal = db.session.get(AreaSeal, issuer.id)
    frozen = {
        "number": f"{issuer.code}-{issued_on.year}-{sequence:06d}",
        "year": issued_on.year,
        "sequence": sequence,
        "issued_at": now,
        "issued_on": issued_on,
        "issued_by": caller.user_id,
        "minutes": minutes,
        "content": service_content(volunteer.id, issuer.path, first, last),
        "places": service_places(volunteer.id, issuer.path, first, last),
        "volunteer_name": volunteer.real_name,
        "volunteer_number": identity.volunteer_number(volunteer),
        "id_number_encrypted": crypto.encrypt(identity.id_number(volunteer, full=full_id_number)),
        "full_id_number": full_id_number,
        "issuer_name": issuer.name,
        "seal_key": seal.photo_key if seal is not None else None,
        "star_level": stars.certified_level(volunteer.id),  # only after its publicity (公示)
    }
    try:
        with db.session.begin_nested():
            claimed = db.session.execute(
                sa.update(Certificate)
                .where(Certificate.id == certificate.id, Certificate.status == CertificateStatus.REQUESTED)
                .values(status=CertificateStatus.ISSUED, **frozen)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        # A number already held (a certificate entered by hand, a restored backup): refuse; the
        # rollback of this request gives the sequence back, so no gap is left either.
        raise Conflict(
            "The next certificate number is already in use; tell the operators.", code="certificate_number_taken"
        ) from None
    if rowcount(claimed) != 1:
        raise Conflict("Only a requested certificate can be issued.", code="certificate_not_requested")
    db.session.refresh(certificate)
    audit.record(
        caller, "certificate.issue", target_type="certificate", target_id=certificate.id, area_path=issuer.path,
        after={"number": certificate.number, "minutes": minutes, "full_id_number": full_id_number},
    )
    return certificate


_NEXT_SEQUENCE = sa.text(
    "INSERT INTO certificate_counters (issuer_area_id, year, last_sequence) VALUES (:issuer, :year, 1) "
    "ON CONFLICT (issuer_area_id, year) DO UPDATE SET last_sequence = certificate_counters.last_sequence + 1 "
    "RETURNING last_sequence"
)


def next_sequence(issuer_id: int, year: int) -> int:
    """The next sequence of the issuer's year, taken in the current transaction (see the module
    docstring: one statement, atomic on both databases, rolled back with the transaction)."""
    return int(db.session.execute(_NEXT_SEQUENCE, {"issuer": issuer_id, "year": year}).scalar_one())


def _served(volunteer_id: int, issuer_path: str, first: date, last: date) -> sa.Select[Any]:
    """The service records that count on this certificate, with their grid (``Area``)."""
    return (
        sa.select()
        .select_from(ServiceRecord)
        .outerjoin(Area, Area.id == ServiceRecord.grid_id)
        .where(hours.counted(volunteer_id, area_path=issuer_path, first=first, last=last))
    )


def service_content(volunteer_id: int, issuer_path: str, first: date, last: date) -> str:
    """``夜间巡逻 3 次；交通疏导 1 次``: served shifts by title and hand-entered service by its
    note, the most frequent first."""
    counted = _served(volunteer_id, issuer_path, first, last)
    patrols = (
        counted.add_columns(Shift.title, sa.func.count())
        .join(Patrol, sa.cast(Patrol.id, sa.String) == ServiceRecord.source_id)
        .join(Shift, Shift.id == Patrol.shift_id)
        .where(ServiceRecord.source_type == "patrol")
        .group_by(Shift.title)
    )
    others = (
        counted.add_columns(ServiceRecord.note, sa.func.count())
        .where(ServiceRecord.source_type != "patrol")
        .group_by(ServiceRecord.note)
    )
    tally: dict[str, int] = {}
    for title, count in [*db.session.execute(patrols), *db.session.execute(others)]:
        name = (title or "").strip() or OTHER_CONTENT
        tally[name] = tally.get(name, 0) + int(count)
    ranked = sorted(tally.items(), key=lambda pair: (-pair[1], pair[0]))
    return _joined([f"{name} {count} 次" for name, count in ranked]) or PATROL_CONTENT


def service_places(volunteer_id: int, issuer_path: str, first: date, last: date) -> str:
    """The grids served, named with their community (``东站社区 网格3``), most hours first."""
    community = sa.orm.aliased(Area)
    query = (
        _served(volunteer_id, issuer_path, first, last)
        .add_columns(community.name, Area.name, sa.func.sum(ServiceRecord.minutes))
        .outerjoin(community, community.id == Area.parent_id)
        .group_by(Area.id, Area.name, community.name)
        .order_by(sa.func.sum(ServiceRecord.minutes).desc(), Area.id)
    )
    names = []
    for community_name, grid_name, _minutes in db.session.execute(query):
        if grid_name is None:
            continue
        names.append(grid_name if not community_name or grid_name.startswith(community_name) else f"{community_name} {grid_name}")
    return _joined(names)


def _joined(parts: list[str]) -> str:
    """``；``-joined, cut to fit the column with ``等 N 项`` for what was left out."""
    text = ""
    for index, part in enumerate(parts):
        candidate = f"{text}；{part}" if text else part
        rest = f"；等 {len(parts) - index} 项"
        if len(candidate) + len(rest) > FROZEN_TEXT_MAX:
            return text + rest if text else rest.lstrip("；")
        text = candidate
    return text


# --- revoke --------------------------------------------------------------------------------------


def revoke(caller: Caller, certificate_id: int, reason: str) -> Certificate:
    """The issuer withdraws an issued certificate; verification then says revoked (audited)."""
    certificate, issuer = _issued_by_caller(caller, certificate_id)
    changed = db.session.execute(
        sa.update(Certificate)
        .where(Certificate.id == certificate.id, Certificate.status == CertificateStatus.ISSUED)
        .values(status=CertificateStatus.REVOKED, revoked_at=utcnow(), revoked_by=caller.user_id, revoke_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if rowcount(changed) != 1:
        raise Conflict("Only an issued certificate can be revoked.", code="certificate_not_issued")
    db.session.refresh(certificate)
    audit.record(
        caller, "certificate.revoke", target_type="certificate", target_id=certificate.id, area_path=issuer.path,
        before={"status": CertificateStatus.ISSUED.value}, after={"status": certificate.status, "reason": reason},
    )
    return certificate


# --- lists and views -----------------------------------------------------------------------------


def list_managed(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Certificates whose issuer lies in ``area_id``'s subtree (default the caller's), newest first."""
    root = scope_root(caller, args.get("area_id"))
    stmt = sa.select(Certificate).join(Area, Area.id == Certificate.issuer_area_id).where(in_subtree(Area.path, root))
    if args.get("status"):
        stmt = stmt.where(Certificate.status == args["status"])
    return paginate(stmt, [Certificate.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)


def list_own(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    volunteer = own_volunteer(caller)
    stmt = sa.select(Certificate).where(Certificate.volunteer_id == volunteer.id)
    if args.get("status"):
        stmt = stmt.where(Certificate.status == args["status"])
    return paginate(stmt, [Certificate.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)


def hours_of(minutes: int) -> float:
    """Hours as shown and printed: two decimals at most."""
    return round(minutes / 60, 2)


def hours_text(minutes: int) -> str:
    """``12.5``, ``3``, ``0.33``: the hours printed, without trailing zeros."""
    return f"{minutes / 60:.2f}".rstrip("0").rstrip(".")


def view(certificate: Certificate) -> dict[str, Any]:
    minutes = certificate.minutes
    return {
        "id": certificate.id,
        "volunteer_id": certificate.volunteer_id,
        "issuer_area_id": certificate.issuer_area_id,
        "issuer_name": certificate.issuer_name or "",
        "first_day": certificate.first_day,
        "last_day": certificate.last_day,
        "status": certificate.status,
        "requested_at": certificate.requested_at,
        "number": certificate.number,
        "issued_at": certificate.issued_at,
        "issued_on": certificate.issued_on,
        "minutes": minutes,
        "hours": hours_of(minutes) if minutes is not None else None,
        "content": certificate.content,
        "places": certificate.places,
        "full_id_number": certificate.full_id_number,
        "star_level": certificate.star_level,
        "revoked_at": certificate.revoked_at,
        "revoke_reason": certificate.revoke_reason,
    }

def local_day(moment: Any, area: Area) -> date:
    return moment.astimezone(zone(area.timezone)).date()
