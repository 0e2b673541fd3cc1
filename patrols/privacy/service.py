"""Location under PIPL: the rules every package that shows or keeps positions calls. No HTTP.

- The separate consent to tracking (art. 28/29): granted, withdrawn, its history; track uploads
  need a live one (:func:`live_consent_id`, :func:`refuse_without_consent`), check-in and the SOS
  do not (README).
- Deleting the track points kept of one's own patrols (the summaries stay).
- :func:`record_location_read` is the one way a read of someone else's positions is logged: the
  track and SOS reads call it, the staff's access log (:func:`list_location_access`) and the
  personal-data export read what it wrote.

Retention per kind lives in ``retention.py``, the export's sections in ``export.py``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from accounts.models import User
from core import audit, i18n
from core.audit import AuditEntry
from core.auth import Caller
from core.db import rowcount, utcnow
from core.errors import Forbidden, ValidationFailed
from core.extensions import db
from core.pagination import paginate
from grids.service import in_subtree
from patrols.models import Patrol
from patrols.privacy.models import LocationConsent
from patrols.tracks.models import TrackPoint, forget_track_folds
from volunteers.models import Volunteer

#: Audit actions of reads of another person's positions (``location.`` prefix: the access log).
TRACK_READ = "location.track_read"
SOS_READ = "location.sos_read"
ACCESS_ACTION_PREFIX = "location."
#: Every read action (listed, so the access log's query uses the index on ``action``).
ACCESS_ACTIONS = (TRACK_READ, SOS_READ)
#: Audit actions of the volunteer's own choices (deliberately not ``location.``: they are no reads).
CONSENT_GRANTED = "location_consent.grant"
CONSENT_WITHDRAWN = "location_consent.withdraw"
TRACK_POINTS_DELETED = "track_points.delete"

WRONG_VERSION = i18n.N_("The location terms agreed to are not the current ones.")
CONSENT_REQUIRED = i18n.N_("Location tracking needs your separate consent; grant it in the app first.")

i18n.register_titles(
    i18n.title("location_terms_outdated", "The location terms are not the current ones"),
    i18n.title("location_consent_required", "Location tracking needs your consent"),
)
i18n.register_messages(WRONG_VERSION, CONSENT_REQUIRED)


# --- consent -----------------------------------------------------------------------------------


def live_consent(volunteer_id: int, *, lock: bool = False) -> LocationConsent | None:
    """The volunteer's consent in force, if any, optionally locked for update (PostgreSQL; SQLite
    serialises every writer anyway), as a withdrawal does; uploads lock it for share
    (:func:`live_consent_id`). So a withdrawal waits for the uploads that saw the consent to
    commit, and an upload that comes after it waits for it and then finds no consent: no point is
    stored once a withdrawal has answered."""
    stmt = sa.select(LocationConsent).where(
        LocationConsent.volunteer_id == volunteer_id, LocationConsent.withdrawn_at.is_(None)
    )
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return db.session.scalar(stmt)


def live_consent_id(volunteer_id: Any) -> sa.ScalarSelect[int]:
    """The id of the volunteer's consent in force (NULL without one), its row locked for share, so
    a withdrawal (locking it for update, :func:`live_consent`) waits for the upload to commit: a
    column for the statement that reads the upload's assignment (``volunteer_id``: a value or that
    column), checked by :func:`refuse_without_consent`."""
    return (
        sa.select(LocationConsent.__table__.c.id)
        .where(LocationConsent.volunteer_id == volunteer_id, LocationConsent.withdrawn_at.is_(None))
        .with_for_update(read=True)
        .scalar_subquery()
    )


def refuse_without_consent(consent_id: int | None) -> None:
    """Refuse (403 ``location_consent_required``) unless a consent was in force when
    :func:`live_consent_id` was read.

    Checked at receipt, whatever the points' device times: a batch recorded offline before a
    withdrawal is refused too, since withdrawing stops collection at once (art. 15).
    """
    if consent_id is None:
        raise Forbidden(CONSENT_REQUIRED, code="location_consent_required")


def consent_view(volunteer: Volunteer) -> dict[str, Any]:
    """``LocationConsentStateSchema``: the consent in force, the current terms and the history."""
    history = db.session.scalars(
        sa.select(LocationConsent)
        .where(LocationConsent.volunteer_id == volunteer.id)
        .order_by(LocationConsent.granted_at.desc(), LocationConsent.id.desc())
    ).all()
    live = next((row for row in history if row.withdrawn_at is None), None)
    current = current_app.config["LOCATION_TERMS_VERSION"]
    return {
        "granted": live is not None,
        "version": live.version if live else None,
        "granted_at": live.granted_at if live else None,
        "current_version": current,
        "up_to_date": live is not None and live.version == current,
        "history": [_consent_row(row) for row in history],
    }


def _consent_row(row: LocationConsent) -> dict[str, Any]:
    return {"version": row.version, "granted_at": row.granted_at, "withdrawn_at": row.withdrawn_at}


def grant_consent(caller: Caller, volunteer: Volunteer, version: str) -> bool:
    """Record consent to ``version`` (it must be LOCATION_TERMS_VERSION, else 422). Returns whether
    anything changed: granting the version already in force is a no-op. A consent to older terms
    is closed and the new one opened, in one transaction (the history shows both)."""
    current = current_app.config["LOCATION_TERMS_VERSION"]
    if version != current:
        raise ValidationFailed(WRONG_VERSION, code="location_terms_outdated", errors={"version": [WRONG_VERSION]})
    live = live_consent(volunteer.id)
    if live is not None and live.version == current:
        return False
    if live is not None:
        live = live_consent(volunteer.id, lock=True)
        if live is not None:
            _close(live)
    consent = LocationConsent(volunteer_id=volunteer.id, version=version, granted_at=utcnow())
    try:
        # Two grants at once meet at the partial unique index (one live consent per volunteer):
        # the second finds the first one's row and changes nothing.
        with db.session.begin_nested():
            db.session.add(consent)
            db.session.flush()
    except IntegrityError:
        if live_consent(volunteer.id) is None:  # withdrawn in between: let the client try again
            raise
        return False
    audit.record(
        caller, CONSENT_GRANTED, target_type="volunteer", target_id=volunteer.id,
        area_path=volunteer.home_grid.path,
        before=_consent_row(live) if live else None, after=_consent_row(consent),
    )
    return True


def withdraw_consent(caller: Caller, volunteer: Volunteer) -> bool:
    """Withdraw the consent in force, at once; without one it is a no-op (returns False): a retried
    or repeated withdrawal leaves the volunteer where they wanted to be."""
    live = live_consent(volunteer.id, lock=True)
    if live is None or not _close(live):
        return False
    audit.record(
        caller, CONSENT_WITHDRAWN, target_type="volunteer", target_id=volunteer.id,
        area_path=volunteer.home_grid.path, after=_consent_row(live),
    )
    return True


def _close(consent: LocationConsent) -> bool:
    """Set ``withdrawn_at`` while it is unset (a conditional UPDATE: two withdrawals close it once).
    The time is taken once the row is locked, so it follows every upload that saw the consent."""
    result = db.session.execute(
        sa.update(LocationConsent)
        .where(LocationConsent.id == consent.id, LocationConsent.withdrawn_at.is_(None))
        .values(withdrawn_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(consent)
    return rowcount(result) == 1


# --- deleting one's own track ------------------------------------------------------------------


def delete_own_track_points(caller: Caller, volunteer: Volunteer) -> dict[str, Any]:
    """Delete every track point still kept of the volunteer's patrols; the summaries (distance,
    point count, checkpoint scans) stay. Idempotent: a second call deletes nothing."""
    patrols = sa.select(Patrol.id).where(Patrol.volunteer_id == volunteer.id).scalar_subquery()
    db.session.execute(forget_track_folds(patrols))
    result = db.session.execute(
        sa.delete(TrackPoint)
        .where(TrackPoint.patrol_id.in_(patrols))
        .execution_options(synchronize_session=False)
    )
    deleted = rowcount(result)
    audit.record(
        caller, TRACK_POINTS_DELETED, target_type="volunteer", target_id=volunteer.id,
        area_path=volunteer.home_grid.path, after={"deleted": deleted},
    )
    return {"deleted": deleted, "deleted_at": utcnow()}


# --- the access log ----------------------------------------------------------------------------


def record_location_read(
    caller: Caller, volunteer_id: int, action: str, area_path: str, **what: int | str | None
) -> None:
    """Log that ``caller`` read ``volunteer_id``'s positions (who, whose, when). Callers call it for
    reads of someone else's positions only (a volunteer reading their own is not logged).

    ``area_path`` is the path that gave the caller reach (the shift's grid, the SOS's grid), so the
    staff of that area read the entry; ``what`` names the record read (``assignment_id=…``, ``sos_id=…``).
    Written in the reading request's transaction, which commits at its end like any other.
    """
    if action not in ACCESS_ACTIONS:
        raise ValueError(f"{action!r} is not a read of positions: one of {ACCESS_ACTIONS}")
    audit.record(
        caller,
        action,
        target_type="volunteer",
        target_id=volunteer_id,
        area_path=area_path,
        after=dict(what),
    )


def access_entries() -> sa.Select[tuple[AuditEntry]]:
    """Audit entries of reads of someone's positions (the ``location.`` actions)."""
    return sa.select(AuditEntry).where(AuditEntry.action.in_(ACCESS_ACTIONS), AuditEntry.target_type == "volunteer")


def list_location_access(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Reads of positions logged in the caller's subtree, newest first (``LocationAccessSchema``)."""
    stmt = access_entries().where(in_subtree(AuditEntry.area_path, caller.area_path))
    if args.get("volunteer_id") is not None:
        stmt = stmt.where(AuditEntry.target_id == str(args["volunteer_id"]))
    if args.get("actor_id") is not None:
        stmt = stmt.where(AuditEntry.actor_id == args["actor_id"])
    if args.get("since") is not None:
        stmt = stmt.where(AuditEntry.at >= args["since"])
    if args.get("until") is not None:
        stmt = stmt.where(AuditEntry.at < args["until"])
    page = paginate(stmt, [AuditEntry.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)
    page["items"] = access_views(page["items"], with_volunteer=True)
    return page


def access_views(entries: list[AuditEntry], *, with_volunteer: bool) -> list[dict[str, Any]]:
    """Who read (id, role, name), whose positions, what and when, for each entry (two lookups)."""
    readers = _names(User, User.display_name, {e.actor_id for e in entries if e.actor_id is not None})
    volunteers = (
        _names(Volunteer, Volunteer.real_name, {int(e.target_id) for e in entries}) if with_volunteer else {}
    )
    views = []
    for entry in entries:
        view: dict[str, Any] = {
            "id": entry.id,
            "at": entry.at,
            "action": entry.action.removeprefix(ACCESS_ACTION_PREFIX),
            "reader": {
                "user_id": entry.actor_id,
                "role": entry.actor_role,
                "name": readers.get(entry.actor_id) if entry.actor_id is not None else None,
            },
            "what": dict(entry.after or {}),
            "area_path": entry.area_path,
        }
        if with_volunteer:
            volunteer_id = int(entry.target_id)
            view["volunteer"] = {"volunteer_id": volunteer_id, "name": volunteers.get(volunteer_id)}
        views.append(view)
    return views


def _names(model: Any, column: Any, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(model.id, column).where(model.id.in_(ids))).tuples().all())
