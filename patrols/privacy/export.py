"""The location sections of the personal-data export (PIPL art. 45): the consents given and
withdrawn, the track points still kept, the volunteer's SOS and who read their positions.

Registered with ``volunteers.self_service.register_exporter`` when ``patrols`` starts
(``patrols.init_app``). Positions already purged are absent, as they are everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from core.audit import AuditEntry
from core.extensions import db
from patrols.models import Patrol
from patrols.privacy.models import LocationConsent
from patrols.privacy.service import access_entries, access_views
from patrols.sos.models import SosAlert, SosEvent, SosPosition
from patrols.tracks.models import TrackPoint
from volunteers.models import Volunteer
from volunteers.service import register_exporter

#: Track points read from the database per round trip (a person's whole track may be large).
POINTS_PER_FETCH = 2_000


@register_exporter
def _export_location_consents(volunteer: Volunteer) -> tuple[str, Any]:
    rows = db.session.scalars(
        sa.select(LocationConsent).where(LocationConsent.volunteer_id == volunteer.id).order_by(LocationConsent.id)
    )
    return "location_consents", [
        {"version": row.version, "granted_at": row.granted_at, "withdrawn_at": row.withdrawn_at} for row in rows
    ]


@register_exporter
def _export_track_points(volunteer: Volunteer) -> tuple[str, Any]:
    return "track_points", list(_tracks(volunteer.id))


def _tracks(volunteer_id: int) -> Iterator[dict[str, Any]]:
    """One entry per patrol with points kept, in patrol order, its points by device time; read in
    chunks (``yield_per``) rather than all rows at once."""
    rows = db.session.execute(
        sa.select(
            Patrol.id, Patrol.assignment_id, Patrol.shift_id,
            TrackPoint.device_at, TrackPoint.received_at, TrackPoint.lat, TrackPoint.lon, TrackPoint.accuracy_m,
        )
        .join(TrackPoint, TrackPoint.patrol_id == Patrol.id)
        .where(Patrol.volunteer_id == volunteer_id)
        .order_by(Patrol.id, TrackPoint.device_at)
        .execution_options(yield_per=POINTS_PER_FETCH)
    )
    current: dict[str, Any] | None = None
    for row in rows:
        if current is None or current["patrol_id"] != row[0]:
            if current is not None:
                yield current
            current = {"patrol_id": row[0], "assignment_id": row[1], "shift_id": row[2], "points": []}
        current["points"].append(
            {"time": row.device_at, "received_at": row.received_at, "lat": row.lat, "lon": row.lon, "accuracy_m": row.accuracy_m}
        )
    if current is not None:
        yield current


@register_exporter
def _export_sos(volunteer: Volunteer) -> tuple[str, Any]:
    alerts = db.session.scalars(
        sa.select(SosAlert).where(SosAlert.volunteer_id == volunteer.id).order_by(SosAlert.id)
    ).all()
    ids = [alert.id for alert in alerts]
    positions: dict[int, list[dict[str, Any]]] = {alert_id: [] for alert_id in ids}
    events: dict[int, list[dict[str, Any]]] = {alert_id: [] for alert_id in ids}
    if ids:
        for position in db.session.scalars(
            sa.select(SosPosition).where(SosPosition.sos_id.in_(ids)).order_by(SosPosition.device_at)
        ):
            positions[position.sos_id].append(
                {
                    "time": position.device_at, "received_at": position.received_at,
                    "lat": position.lat, "lon": position.lon, "accuracy_m": position.accuracy_m,
                }
            )
        for event in db.session.scalars(sa.select(SosEvent).where(SosEvent.sos_id.in_(ids)).order_by(SosEvent.id)):
            # Without ``data``: it names the people alerted, their data rather than the volunteer's.
            events[event.sos_id].append(
                {
                    "kind": event.kind, "at": event.at, "actor_id": event.actor_id, "level": event.level,
                    "response": event.response, "note": event.note,
                }
            )
    return "sos", [
        {
            "id": alert.id,
            "device_time": alert.device_at,
            "received_at": alert.received_at,
            "status": alert.status,
            "level": alert.level,
            "note": alert.note,
            "lat": alert.lat,
            "lon": alert.lon,
            "accuracy_m": alert.accuracy_m,
            "located_by": alert.located_by,
            "assignment_id": alert.assignment_id,
            "acknowledged_at": alert.acknowledged_at,
            "ended_at": alert.ended_at,
            "end_note": alert.end_note,
            "positions_purged_at": alert.positions_purged_at,
            "positions": positions[alert.id],
            "events": events[alert.id],
        }
        for alert in alerts
    ]


@register_exporter
def _export_location_access_log(volunteer: Volunteer) -> tuple[str, Any]:
    entries = db.session.scalars(
        access_entries().where(AuditEntry.target_id == str(volunteer.id)).order_by(AuditEntry.id)
    ).all()
    return "location_access_log", access_views(list(entries), with_volunteer=False)
