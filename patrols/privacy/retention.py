"""Retention per kind of positional data (PIPL art. 19: kept no longer than needed). No HTTP.

| kind | kept until | what goes | what stays |
|---|---|---|---|
| track points | TRACK_RETENTION_DAYS after the shift ends | the rows (PostgreSQL: whole months' partitions where every point is due) | distance, point count |
| check-in/out and scan positions | PRESENCE_POSITION_RETENTION_DAYS after the shift ends, once presence is no longer ``needs_review`` | lat/lon/accuracy set NULL, ``positions_purged_at`` set | flags, status, minutes, distances |
| SOS positions | SOS_POSITION_RETENTION_DAYS after the SOS ended (a live SOS never) | ``SosPosition`` rows, the alert's lat/lon/accuracy, the position in the alerts' deep links (``sos_positions_purged``) | the alert, its history, the notifications |

Each kind works in batches, each committed (``commit_batch``) and idempotent on its own: a batch
reads again what is still due and its writes are conditional, so a crash, a redelivery or two
workers at once delete nothing twice and leave nothing half done. A cutoff is strict: data whose
time is exactly the cutoff is kept one more run.

On PostgreSQL track points are partitioned by the month of their device time (``core/partitions.py``).
A month's partition whose every point is due is dropped whole (:func:`drop_expired_track_partitions`)
before the row-wise purge deletes the due points of the months that are only partly due (and of the
default partition).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from core import partitions
from core.db import rowcount, utcnow
from core.extensions import db
from core.transactions import commit_batch
from patrols.checkpoints.models import CheckpointScan
from patrols.models import Patrol, PresenceStatus
from patrols.sos import signals as sos_signals
from patrols.sos.models import LIVE_SOS, SosAlert, SosPosition, SosRecipient
from patrols.tracks.models import TrackPoint, forget_track_folds
from shifts.models import Shift
from shifts.planning.service import max_duration

#: Patrols (tracks: up to TRACK_MAX_POINTS_PER_PATROL points each) or SOS handled per batch.
TRACK_BATCH = 50
BATCH = 500


def cutoff(days_setting: str, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(days=current_app.config[days_setting])


def enforce_retention(now: datetime | None = None) -> dict[str, int]:
    """Every kind's purge, once; how many rows each cleared. The periodic task's body."""
    now = now or utcnow()
    return {
        "track_partitions_dropped": len(drop_expired_track_partitions(now)),
        "track_points": purge_track_points(now),
        "presence_positions": purge_presence_positions(now),
        "sos_positions": purge_sos_positions(now),
    }


def track_partition_horizon(now: datetime | None = None) -> datetime:
    """A month of track points wholly before this instant is due as a whole.

    A fix is accepted only within its shift's window, from PATROL_EVENT_SLACK_MINUTES before the
    start (``patrols/tracks/service.py``), and a shift lasts at most SHIFT_MAX_HOURS, so its shift
    ends before the fix's device time plus both. Before the horizon (the track cutoff less both),
    every fix's shift ended before the cutoff: a month that ends at the horizon or earlier is due.
    """
    slack = timedelta(minutes=current_app.config["PATROL_EVENT_SLACK_MINUTES"])
    return cutoff("TRACK_RETENTION_DAYS", now) - max_duration() - slack


def drop_expired_track_partitions(now: datetime | None = None) -> list[str]:
    """PostgreSQL: drop the months of track points whose every point is due; their names.

    A month is dropped when it ends at or before :func:`track_partition_horizon` and, checked under
    a lock that keeps writers out, none of its points belongs to a shift still within retention (a
    shift whose end moved later after its points came, or a fix stored some other way, keeps its
    month until its own time: those points are then deleted row by row). One transaction per month.
    """
    now = now or utcnow()
    before, horizon = cutoff("TRACK_RETENTION_DAYS", now), track_partition_horizon(now)
    return partitions.drop_months_before(
        TrackPoint.__tablename__, horizon, keeps=lambda partition: _holds_points_kept(partition.name, before)
    )


def _holds_points_kept(partition_name: str, before: datetime) -> bool:
    """Whether the partition holds a point of a shift ending at or after ``before`` (kept still).

    From the shifts still within retention (``shifts.ends_at``'s index), a probe of the partition's
    (patrol_id, device_at) index per patrol: no pass over the month's points."""
    points = sa.table(partition_name, sa.column("patrol_id"))
    found = db.session.scalar(
        sa.select(sa.literal(1))
        .select_from(Patrol)
        .join(Shift, Shift.id == Patrol.shift_id)
        .where(Shift.ends_at >= before, sa.exists().where(points.c.patrol_id == Patrol.id))
        .limit(1)
    )
    return found is not None


def purge_track_points(now: datetime | None = None, *, batch_size: int = TRACK_BATCH) -> int:
    """Delete the track points of shifts that ended before TRACK_RETENTION_DAYS ago; returns how
    many. The patrols' summaries (``distance_m``, ``track_point_count``) stay."""
    before = cutoff("TRACK_RETENTION_DAYS", now)
    deleted = 0
    while True:
        due = db.session.scalars(
            sa.select(Patrol.id)
            .join(Shift, Shift.id == Patrol.shift_id)
            .where(Shift.ends_at < before, sa.exists().where(TrackPoint.patrol_id == Patrol.id))
            .order_by(Patrol.id)
            .limit(batch_size)
        ).all()
        if due:
            db.session.execute(forget_track_folds(due))
            result = db.session.execute(
                sa.delete(TrackPoint)
                .where(TrackPoint.patrol_id.in_(due))
                .execution_options(synchronize_session=False)
            )
            deleted += rowcount(result)
            commit_batch()
        if len(due) < batch_size:
            return deleted


def purge_presence_positions(now: datetime | None = None, *, batch_size: int = BATCH) -> int:
    """Clear the precise check-in, check-out and scan positions of shifts that ended before
    PRESENCE_POSITION_RETENTION_DAYS ago, once presence is decided (a patrol still ``needs_review``
    keeps them for its reviewer). Returns how many patrols were cleared."""
    now = now or utcnow()
    before = cutoff("PRESENCE_POSITION_RETENTION_DAYS", now)
    decided = sa.or_(Patrol.presence_status.is_(None), Patrol.presence_status != PresenceStatus.NEEDS_REVIEW.value)
    due_now = (Patrol.positions_purged_at.is_(None), decided)
    cleared = 0
    while True:
        due = db.session.scalars(
            sa.select(Patrol.id)
            .join(Shift, Shift.id == Patrol.shift_id)
            .where(Shift.ends_at < before, *due_now)
            .order_by(Patrol.id)
            .limit(batch_size)
        ).all()
        if due:
            # Conditional: a patrol put back under review meanwhile, or cleared by another run, is left.
            done = db.session.scalars(
                sa.update(Patrol)
                .where(Patrol.id.in_(due), *due_now)
                .values(
                    check_in_lat=None, check_in_lon=None, check_in_accuracy_m=None,
                    check_out_lat=None, check_out_lon=None, check_out_accuracy_m=None,
                    positions_purged_at=now, updated_at=now,
                )
                .returning(Patrol.id)
                .execution_options(synchronize_session=False)
            ).all()
            if done:
                db.session.execute(
                    sa.update(CheckpointScan)
                    .where(CheckpointScan.patrol_id.in_(done))
                    .values(lat=None, lon=None, accuracy_m=None)
                    .execution_options(synchronize_session=False)
                )
            cleared += len(done)
            commit_batch()
        if len(due) < batch_size:
            return cleared


def purge_sos_positions(now: datetime | None = None, *, batch_size: int = BATCH) -> int:
    """Delete the positions of SOS that ended before SOS_POSITION_RETENTION_DAYS ago and clear the
    alert's own; never a live SOS. Returns how many SOS were cleared."""
    now = now or utcnow()
    before = cutoff("SOS_POSITION_RETENTION_DAYS", now)
    due_now = (
        SosAlert.positions_purged_at.is_(None),
        SosAlert.ended_at < before,
        SosAlert.status.not_in([status.value for status in LIVE_SOS]),
    )
    cleared = 0
    while True:
        due = db.session.scalars(sa.select(SosAlert.id).where(*due_now).order_by(SosAlert.id).limit(batch_size)).all()
        if due:
            done = db.session.scalars(
                sa.update(SosAlert)
                .where(SosAlert.id.in_(due), *due_now)
                .values(lat=None, lon=None, accuracy_m=None, positions_purged_at=now, updated_at=now)
                .returning(SosAlert.id)
                .execution_options(synchronize_session=False)
            ).all()
            if done:
                db.session.execute(
                    sa.delete(SosPosition)
                    .where(SosPosition.sos_id.in_(done))
                    .execution_options(synchronize_session=False)
                )
                _announce_sos_purged(done)
            cleared += len(done)
            commit_batch()
        if len(due) < batch_size:
            return cleared


def _announce_sos_purged(sos_ids: Sequence[int]) -> None:
    """Tell listeners which SOS lost their positions, with who was alerted (their inbox rows hold the
    position in the alert's deep link); in the batch's transaction, so both commit together."""
    alerted: dict[int, list[int]] = {sos_id: [] for sos_id in sos_ids}
    for sos_id, user_id in db.session.execute(
        sa.select(SosRecipient.sos_id, SosRecipient.user_id)
        .where(SosRecipient.sos_id.in_(sos_ids))
        .order_by(SosRecipient.sos_id, SosRecipient.user_id)
    ).tuples():
        alerted[sos_id].append(user_id)
    for sos_id, user_ids in alerted.items():
        sos_signals.sos_positions_purged.send(
            sos_signals.SENDER, **sos_signals.SosPositionsPurged(sos_id=sos_id, user_ids=user_ids)
        )
