"""QR checkpoints of a grid, their signed payloads, scans during a shift, the patrol summary. No HTTP.

A payload reads ``SW1.<checkpoint id>.<version>.<mac>``: the MAC is a truncated HMAC-SHA256 over
the checkpoint id, its grid id and the version, under CHECKPOINT_QR_KEY (or a key derived from
SECRET_KEY). Bumping the version (``rotate_qr``) revokes every poster printed before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from core import crypto, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import MAX_DB_INT, Conflict, NotFound, ValidationFailed
from core.extensions import db
from core.geo import distance_to_boundary_m, haversine_m
from core.pagination import paginate
from grids.models import AreaLevel
from grids.queries import get_area
from patrols.checkpoints.models import Checkpoint, CheckpointScan
from patrols.checkpoints.schemas import CheckpointCreateInput
from patrols.models import Patrol
from patrols.service import patrol_for
from patrols.tracks.service import event_window, patrollable_assignment
from shifts.service import get_assignment_for

PAYLOAD_PREFIX = "SW1"
_MAC_BYTES = 16  # 128 bits: 22 base64url characters keep the QR code small
_PAYLOAD = re.compile(r"^SW1\.(\d{1,10})\.(\d{1,10})\.([A-Za-z0-9_-]{22})$")
_ACCURACY_ALLOWANCE_MAX_M = 100.0

QR_INVALID = i18n.N_("The QR payload is not valid.")
OUTSIDE_SHIFT = i18n.N_("The scan time is too far outside the shift.")

i18n.register_titles(
    i18n.title("qr_invalid", "Invalid QR code"),
    i18n.title("checkpoint_not_found", "Checkpoint not found"),
    i18n.title("checkpoint_inactive", "The checkpoint is deactivated"),
    i18n.title("checkpoint_other_grid", "The checkpoint is in another grid"),
    i18n.title("checkpoint_outside_grid", "The checkpoint is too far outside the grid"),
    i18n.title("scan_outside_shift", "The scan is outside the shift"),
    i18n.title("not_a_grid", "Not a grid"),
)
i18n.register_messages(
    QR_INVALID,
    OUTSIDE_SHIFT,
    i18n.N_("Checkpoint not found."),
    i18n.N_("The checkpoint is deactivated."),
    i18n.N_("The checkpoint belongs to another grid than the shift."),
    i18n.N_("Checkpoints belong to grids."),
    i18n.N_("The checkpoint is too far outside the grid."),
    i18n.N_("This client_id belongs to another scan."),
)


# --- signed payloads ---------------------------------------------------------------------------


def _qr_key() -> bytes:
    dedicated = current_app.config.get("CHECKPOINT_QR_KEY")
    if dedicated:
        return dedicated.encode()
    # Derived rather than SECRET_KEY itself, so a leaked QR MAC says nothing about session signing.
    return hmac.new(current_app.config["SECRET_KEY"].encode(), b"shouwang/checkpoint-qr", hashlib.sha256).digest()


def _mac(checkpoint_id: int, grid_id: int, version: int) -> str:
    message = f"{PAYLOAD_PREFIX}.{checkpoint_id}.{grid_id}.{version}".encode()
    digest = hmac.new(_qr_key(), message, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def qr_payload(checkpoint: Checkpoint) -> str:
    version = checkpoint.qr_version
    return f"{PAYLOAD_PREFIX}.{checkpoint.id}.{version}.{_mac(checkpoint.id, checkpoint.grid_id, version)}"


def verify_payload(payload: str, field: str = "payload") -> Checkpoint:
    """The checkpoint a scanned payload stands for; forged, altered or revoked is 422 qr_invalid.

    Also for the check-in's optional scan. A deactivated checkpoint is 422 checkpoint_inactive.
    """
    invalid = ValidationFailed(QR_INVALID, code="qr_invalid", errors={field: [QR_INVALID]})
    match = _PAYLOAD.fullmatch(payload.strip())
    if not match:
        raise invalid
    checkpoint_id, version = int(match[1]), int(match[2])
    checkpoint = db.session.get(Checkpoint, checkpoint_id) if checkpoint_id <= MAX_DB_INT else None
    if checkpoint is None or version != checkpoint.qr_version:
        raise invalid
    if not crypto.same_secret(match[3], _mac(checkpoint.id, checkpoint.grid_id, version)):
        raise invalid
    if not checkpoint.active:
        raise ValidationFailed("The checkpoint is deactivated.", code="checkpoint_inactive")
    return checkpoint


# --- organisers --------------------------------------------------------------------------------


def create_checkpoint(caller: Caller, grid_id: int, data: CheckpointCreateInput) -> Checkpoint:
    """A checkpoint in a grid of the caller's subtree, inside it or at most CHECKPOINT_MAX_OUTSIDE_M out."""
    grid = get_area(grid_id)
    caller.ensure_scope(grid.path)
    if grid.level != AreaLevel.GRID:
        raise ValidationFailed("Checkpoints belong to grids.", code="not_a_grid")
    if grid.boundary and distance_to_boundary_m(grid.boundary, data["lon"], data["lat"]) > current_app.config[
        "CHECKPOINT_MAX_OUTSIDE_M"
    ]:
        message = "The checkpoint is too far outside the grid."
        raise ValidationFailed(
            message, code="checkpoint_outside_grid", errors={"lat": [message], "lon": [message]}
        )
    checkpoint = Checkpoint(
        grid_id=grid.id, name=data["name"], lat=data["lat"], lon=data["lon"], active=True,
        qr_version=1, created_by=caller.user_id,
    )
    db.session.add(checkpoint)
    db.session.flush()
    return checkpoint


def list_checkpoints(caller: Caller, grid_id: int, args: dict[str, Any]) -> dict[str, Any]:
    grid = get_area(grid_id)
    caller.ensure_scope(grid.path)
    stmt = sa.select(Checkpoint).where(Checkpoint.grid_id == grid.id)
    if not args.get("include_inactive"):
        stmt = stmt.where(Checkpoint.active.is_(True))
    return paginate(stmt, [Checkpoint.id], limit=args["limit"], cursor=args.get("cursor"))


def checkpoint_not_found() -> NotFound:
    """The answer for a checkpoint id that does not exist, and for one the caller may not reach."""
    return NotFound("Checkpoint not found.", code="checkpoint_not_found")


def get_managed_checkpoint(caller: Caller, checkpoint_id: int) -> Checkpoint:
    """A checkpoint in a grid of the caller's subtree; any other is not found."""
    checkpoint = db.session.get(Checkpoint, checkpoint_id)
    if checkpoint is None:
        raise checkpoint_not_found()
    caller.ensure_reach(checkpoint.grid.path, checkpoint_not_found)
    return checkpoint


def deactivate(checkpoint: Checkpoint) -> Checkpoint:
    """Retire a checkpoint: its posters stop working; past scans stay. Repeating changes nothing."""
    if checkpoint.active:
        checkpoint.active = False
        checkpoint.deactivated_at = utcnow()
        db.session.flush()
    return checkpoint


def rotate_qr(checkpoint: Checkpoint) -> Checkpoint:
    """A new payload for the checkpoint; every earlier one is refused from now on."""
    db.session.execute(
        sa.update(Checkpoint)
        .where(Checkpoint.id == checkpoint.id)
        .values(qr_version=Checkpoint.qr_version + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(checkpoint)
    return checkpoint


def checkpoint_view(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "id": checkpoint.id,
        "grid_id": checkpoint.grid_id,
        "name": checkpoint.name,
        "lat": checkpoint.lat,
        "lon": checkpoint.lon,
        "active": checkpoint.active,
        "qr_version": checkpoint.qr_version,
        "qr_payload": qr_payload(checkpoint) if checkpoint.active else None,
        "created_at": checkpoint.created_at,
        "deactivated_at": checkpoint.deactivated_at,
    }


# --- scans -------------------------------------------------------------------------------------


def _scan_by_client_id(client_id: str) -> CheckpointScan | None:
    return db.session.scalar(
        sa.select(CheckpointScan)
        .where(CheckpointScan.client_id == client_id)
        .execution_options(populate_existing=True)
    )


def _same_assignment(scan: CheckpointScan, assignment_id: int) -> CheckpointScan:
    patrol = db.session.get(Patrol, scan.patrol_id)
    if patrol is None or patrol.assignment_id != assignment_id:
        raise Conflict("This client_id belongs to another scan.", code="client_id_reused")
    return scan


def record_scan(
    caller: Caller, assignment_id: int, data: dict[str, Any], payload_field: str = "payload"
) -> CheckpointScan:
    """Record a scan once per client_id: a replay returns the first scan, whatever it carries now.

    ``payload_field`` names the field a bad QR payload is reported under (the check-in sends its
    scan as ``checkpoint_payload``).
    """
    assignment = patrollable_assignment(caller, assignment_id)
    client_id = str(data["client_id"])
    existing = _scan_by_client_id(client_id)
    if existing is not None:
        return _same_assignment(existing, assignment.id)
    checkpoint = verify_payload(data["payload"], payload_field)
    shift = assignment.shift
    if checkpoint.grid_id != shift.grid_id:
        raise ValidationFailed(
            "The checkpoint belongs to another grid than the shift.", code="checkpoint_other_grid"
        )
    opens, closes = event_window(shift)
    if not opens <= data["device_time"] <= closes:
        raise ValidationFailed(
            OUTSIDE_SHIFT, code="scan_outside_shift", errors={"device_time": [OUTSIDE_SHIFT]}
        )
    patrol = patrol_for(assignment)
    distance = haversine_m(data["lat"], data["lon"], checkpoint.lat, checkpoint.lon)
    accuracy = min(data.get("accuracy_m") or 0.0, _ACCURACY_ALLOWANCE_MAX_M)
    flags = ["far_from_checkpoint"] if distance > current_app.config["CHECKPOINT_SCAN_RADIUS_M"] + accuracy else []
    dialect = postgresql if db.session.get_bind().dialect.name == "postgresql" else sqlite
    db.session.execute(
        dialect.insert(CheckpointScan.__table__)
        .values(
            patrol_id=patrol.id, checkpoint_id=checkpoint.id, client_id=client_id,
            device_at=data["device_time"], received_at=utcnow(), lat=data["lat"], lon=data["lon"],
            accuracy_m=data.get("accuracy_m"), distance_m=round(distance, 1), flags=flags,
        )
        .on_conflict_do_nothing(index_elements=["client_id"])
    )
    # A concurrent retry may have won the insert; either way the stored row is the answer.
    stored = _scan_by_client_id(client_id)
    assert stored is not None, "ON CONFLICT DO NOTHING: this insert's row or the one it met"
    return _same_assignment(stored, assignment.id)


def scan_view(scan: CheckpointScan, assignment_id: int) -> dict[str, Any]:
    return {
        "id": scan.id,
        "client_id": scan.client_id,
        "assignment_id": assignment_id,
        "patrol_id": scan.patrol_id,
        "checkpoint_id": scan.checkpoint_id,
        "checkpoint_name": scan.checkpoint.name,
        "device_time": scan.device_at,
        "received_at": scan.received_at,
        "lat": scan.lat,
        "lon": scan.lon,
        "accuracy_m": scan.accuracy_m,
        "distance_m": scan.distance_m,
        "flags": list(scan.flags or []),
    }


# --- the patrol summary ------------------------------------------------------------------------


def patrol_summary(caller: Caller, assignment_id: int) -> dict[str, Any]:
    """Distance, points, served minutes, and the grid's checkpoints visited and missed."""
    assignment = get_assignment_for(caller, assignment_id)
    shift = assignment.shift
    patrol = db.session.scalar(sa.select(Patrol).where(Patrol.assignment_id == assignment.id))
    scans = (
        db.session.scalars(
            sa.select(CheckpointScan)
            .where(CheckpointScan.patrol_id == patrol.id)
            .order_by(CheckpointScan.device_at, CheckpointScan.id)
        ).all()
        if patrol
        else []
    )
    visited: dict[int, dict[str, Any]] = {}
    for scan in scans:
        entry = visited.setdefault(
            scan.checkpoint_id,
            {
                "checkpoint_id": scan.checkpoint_id,
                "name": scan.checkpoint.name,
                "first_scanned_at": scan.device_at,
                "scans": 0,
                "flagged": False,
            },
        )
        entry["scans"] += 1
        entry["flagged"] = entry["flagged"] or bool(scan.flags)
    active = db.session.scalars(
        sa.select(Checkpoint)
        .where(Checkpoint.grid_id == shift.grid_id, Checkpoint.active.is_(True))
        .order_by(Checkpoint.id)
    ).all()
    missed = [{"checkpoint_id": c.id, "name": c.name} for c in active if c.id not in visited]
    return {
        "assignment_id": assignment.id,
        "patrol_id": patrol.id if patrol else None,
        "shift_id": shift.id,
        "grid_id": shift.grid_id,
        "presence_status": patrol.presence_status if patrol else None,
        "served_minutes": patrol.served_minutes if patrol else None,
        "distance_m": patrol.distance_m if patrol else 0.0,
        "track_point_count": patrol.track_point_count if patrol else 0,
        "visited": list(visited.values()),
        "missed": missed,
    }


def own_scans_view(caller: Caller, assignment_id: int, args: dict[str, Any]) -> dict[str, Any]:
    """The scans of an assignment's patrol, oldest first (paginated)."""
    assignment = get_assignment_for(caller, assignment_id)
    patrol_id = db.session.scalar(sa.select(Patrol.id).where(Patrol.assignment_id == assignment.id))
    stmt = sa.select(CheckpointScan).where(CheckpointScan.patrol_id == (patrol_id or 0))
    page = paginate(stmt, [CheckpointScan.id], limit=args["limit"], cursor=args.get("cursor"))
    page["items"] = [scan_view(scan, assignment.id) for scan in page["items"]]
    return page
