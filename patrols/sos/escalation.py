"""Escalation: an SOS nobody acknowledged in SOS_ACK_MINUTES moves up one level, community →
district → city, each step alerting that level's staff (and the city's admins at the top). A level
with nobody new to alert (a district without staff) is passed at the next run instead of waiting.

Driven by the periodic task (``patrols.sos.tasks``), never by a timer in a request, so a restart
drops nothing: whatever is due when a worker next runs is escalated then. Each step is one
conditional UPDATE (``status = 'open' AND level = <the level read> AND escalate_at <= now``), so
two runs at once, or a run racing an acknowledgement, make each step at most once; recipients are
inserted with ON CONFLICT DO NOTHING on their key, so nobody is alerted twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from accounts.models import User
from core.auth import Role
from core.db import insert_on_conflict, rowcount, utcnow
from core.extensions import db
from core.transactions import commit_batch
from grids.models import Area
from grids.paths import ancestor_paths
from patrols.sos import signals
from patrols.sos.models import SosAlert, SosEventKind, SosLevel, SosPosition, SosRecipient, SosStatus
from patrols.sos.service import add_event, record_step

#: SOS escalated per batch; each batch commits before the next is read.
BATCH = 100
#: The level above each level, and who is alerted there.
NEXT_LEVEL = {SosLevel.COMMUNITY: SosLevel.DISTRICT, SosLevel.DISTRICT: SosLevel.CITY}
_ROLES_AT = {SosLevel.DISTRICT: (Role.STAFF,), SosLevel.CITY: (Role.STAFF, Role.ADMIN)}
#: Depth of the area each level alerts, on the SOS's path (0: the city, 1: its district).
_DEPTH_AT = {SosLevel.DISTRICT: 1, SosLevel.CITY: 0}

_INSERT_RECIPIENT = insert_on_conflict(
    SosRecipient.__table__,
    ["sos_id", "user_id", "reason", "level", "alerted_at"],
    ["sos_id", "user_id"],
    returning=["user_id"],
)


def _staff_at(area_path: str, level: SosLevel) -> list[int]:
    """Active staff (and admins at the city) whose area is the SOS's district, or its city."""
    paths = ancestor_paths(area_path)
    depth = _DEPTH_AT[level]
    if depth >= len(paths):
        return []
    return list(
        db.session.scalars(
            sa.select(User.id)
            .join(Area, Area.id == User.area_id)
            .where(
                Area.path == paths[depth],
                User.role.in_([role.value for role in _ROLES_AT[level]]),
                User.is_active.is_(True),
            )
            .order_by(User.id)
        )
    )


def _latest_position(sos: SosAlert) -> tuple[float, float, float | None]:
    """Where the volunteer was last seen: the latest position sent, else the alert's."""
    latest = db.session.execute(
        sa.select(SosPosition.lat, SosPosition.lon, SosPosition.accuracy_m)
        .where(SosPosition.sos_id == sos.id)
        .order_by(SosPosition.device_at.desc())
        .limit(1)
    ).first()
    if latest is not None:
        return latest.lat, latest.lon, latest.accuracy_m
    return sos.lat or 0.0, sos.lon or 0.0, sos.accuracy_m


def escalate_one(sos_id: int, level: str, now: datetime) -> bool:
    """Move one SOS up from ``level`` if it is still open, at that level and due; False when an
    acknowledgement, an end or another run came first."""
    above = NEXT_LEVEL.get(SosLevel(level))
    if above is None:
        return False
    due_next = None if above == SosLevel.CITY else now + timedelta(minutes=current_app.config["SOS_ACK_MINUTES"])
    moved = db.session.execute(
        sa.update(SosAlert)
        .where(
            SosAlert.id == sos_id,
            SosAlert.status == SosStatus.OPEN,
            SosAlert.level == level,
            SosAlert.escalate_at <= now,
        )
        .values(level=above, escalate_at=due_next, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(moved) != 1:
        return False
    sos = db.session.get_one(SosAlert, sos_id, populate_existing=True)
    new = [
        user_id
        for user_id in _staff_at(sos.area_path, above)
        if db.session.execute(
            _INSERT_RECIPIENT,
            {"sos_id": sos.id, "user_id": user_id, "reason": "staff", "level": above, "alerted_at": now},
        ).first()
    ]
    if not new and due_next is not None:
        # Nobody new to alert at this level (a district without staff): waiting SOS_ACK_MINUTES
        # for an answer from nobody would only delay the city; go on at the next run.
        sos.escalate_at = now
    add_event(sos, SosEventKind.ESCALATED, None, now, level=above, data={"user_ids": new})
    db.session.flush()
    record_step(None, "escalated", sos, recipients=len(new))
    lat, lon, accuracy = _latest_position(sos)
    signals.sos_alerted.send(
        signals.SENDER,
        **signals.SosAlerted(
            sos_id=sos.id, volunteer_id=sos.volunteer_id, grid_id=sos.grid_id, level=above, user_ids=new,
            lat=lat, lon=lon, accuracy_m=accuracy, note=sos.note,
        ),
    )
    return True


def escalate_due(now: datetime | None = None, *, batch_size: int = BATCH) -> int:
    """Escalate every open SOS whose ``escalate_at`` has come, one level each; returns how many
    steps were made. An SOS due again at once (SOS_ACK_MINUTES 0) waits for the next run."""
    now = now or utcnow()
    steps, after_id = 0, 0
    while True:
        due = db.session.execute(
            sa.select(SosAlert.id, SosAlert.level)
            .where(
                SosAlert.escalate_at.is_not(None),
                SosAlert.escalate_at <= now,
                SosAlert.status == SosStatus.OPEN,
                SosAlert.id > after_id,
            )
            .order_by(SosAlert.id)
            .limit(batch_size)
        ).tuples().all()
        for sos_id, level in due:
            steps += escalate_one(sos_id, level, now)
        commit_batch()
        if len(due) < batch_size:
            return steps
        after_id = due[-1][0]
