"""Test data built directly on the models (fast, and independent of the endpoints under test)."""

from __future__ import annotations

import itertools
import uuid
from datetime import date, timedelta
from typing import Any

from flask import current_app
from flask_jwt_extended import create_access_token

from accounts.models import AuthSession, User
from accounts.passwords import hash_password
from core import crypto
from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel
from volunteers.models import Volunteer, VolunteerKind, VolunteerStatus

DEFAULT_PASSWORD = "Patrol-2026"
_counter = itertools.count(1)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def unique_phone() -> str:
    """A valid, unused mainland mobile number in E.164."""
    return f"+86139{next(_counter) + 10_000_000 * 0:08d}"


def national_id(sequence: int | None = None, region: str | None = None, birth: str | None = None) -> str:
    """A checksum-valid GB 11643 number (not a real person's).

    A test's own numbers name a ``sequence`` (region 150202, born 1990-01-01 unless given). Numbers
    made without one come from the session's counter in region 150204, the birth date moving on a
    day every thousand, so they never equal a test's own (``national_id(7)``) nor one another.
    """
    if sequence is None:
        count = next(_counter)
        sequence = count % 1000
        region = region or "150204"
        birth = birth or (date(1990, 1, 1) + timedelta(days=count // 1000)).strftime("%Y%m%d")
    body = f"{region or '150202'}{birth or '19900101'}{sequence:03d}"
    total = sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def square(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def make_area(
    level: AreaLevel | str,
    parent: Area | None = None,
    *,
    name: str | None = None,
    code: str | None = None,
    boundary: dict[str, Any] | None = None,
    timezone: str = "Asia/Shanghai",
    area_id: int | None = None,
) -> Area:
    """An area under ``parent``; ``area_id`` fixes its id (and so its path), e.g. to make sibling
    paths that are string prefixes of each other (``/…/7/`` and ``/…/73/``) on any database."""
    n = next(_counter)
    area = Area(
        id=area_id,
        level=str(level),
        parent_id=parent.id if parent else None,
        name=name or f"{level}-{n}",
        code=code or f"T{n:06d}",
        timezone=timezone,
        path=f"/tmp-{uuid.uuid4().hex}/",
        depth=(parent.depth + 1) if parent else 0,
    )
    if boundary is not None:
        from core.geo import bounds

        area.boundary = boundary
        area.min_lon, area.min_lat, area.max_lon, area.max_lat = bounds(boundary)
        area.households = 350
        area.grid_kind = "urban"
    db.session.add(area)
    db.session.flush()
    area.path = (parent.path if parent else "/") + f"{area.id}/"
    db.session.flush()
    return area


def make_branch(lon: float = 109.84, lat: float = 40.65) -> tuple[Area, Area, Area, Area, Area]:
    """A new city with one line down to a grid at (lon, lat): city, district, sub-district,
    community, grid."""
    city = make_area(AreaLevel.CITY)
    district = make_area(AreaLevel.DISTRICT, city)
    subdistrict = make_area(AreaLevel.SUBDISTRICT, district)
    community = make_area(AreaLevel.COMMUNITY, subdistrict)
    grid = make_area(AreaLevel.GRID, community, boundary=square(lon, lat))
    return city, district, subdistrict, community, grid


def make_user(
    role: str,
    area: Area,
    *,
    phone: str | None = None,
    password: str = DEFAULT_PASSWORD,
    display_name: str | None = None,
) -> User:
    user = User(
        phone=phone or unique_phone(),
        password_hash=hash_password(password),
        role=role,
        display_name=display_name or f"{role}-{next(_counter)}",
        area_id=area.id,
    )
    db.session.add(user)
    db.session.flush()
    return user


def kind(code: str = "volunteer_police") -> VolunteerKind:
    existing = db.session.query(VolunteerKind).filter_by(code=code).one_or_none()
    if existing:
        return existing
    created = VolunteerKind(code=code, name_zh=code, name_en=code, builtin=False)
    db.session.add(created)
    db.session.flush()
    return created


def make_volunteer(
    grid: Area,
    *,
    status: VolunteerStatus | str = VolunteerStatus.ACTIVE,
    kind_code: str = "volunteer_police",
    real_name: str = "张三",
    phone: str | None = None,
    id_number: str | None = None,
    location_consent: bool = True,
) -> Volunteer:
    """A volunteer (active by default); ``location_consent`` (default) gives them a consent to tracking in
    force, so track uploads are accepted (``patrols/privacy``)."""
    user = make_user("volunteer", grid, phone=phone, display_name=real_name)
    number = id_number or national_id()
    volunteer = Volunteer(
        user_id=user.id,
        kind_id=kind(kind_code).id,
        home_grid_id=grid.id,
        status=str(status),
        real_name=real_name,
        national_id_encrypted=crypto.encrypt(number),
        national_id_hash=crypto.keyed_hash(number),
        consent_version=current_app.config["PRIVACY_TERMS_VERSION"],
        consented_at=utcnow(),
    )
    db.session.add(volunteer)
    db.session.flush()
    if location_consent:
        from patrols.privacy.models import LocationConsent

        db.session.add(
            LocationConsent(volunteer_id=volunteer.id, version=current_app.config["LOCATION_TERMS_VERSION"])
        )
        db.session.flush()
    return volunteer


def token_for(user: User) -> str:
    """An access token for ``user`` in a fresh session, as login would issue."""
    session = AuthSession(
        id=str(uuid.uuid4()), user_id=user.id, expires_at=utcnow() + timedelta(days=1)
    )
    db.session.add(session)
    db.session.flush()
    area = db.session.get(Area, user.area_id)
    return create_access_token(
        identity=str(user.id),
        additional_claims={"role": user.role, "area_path": area.path, "sid": session.id},
    )


def headers_for(user: User, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user)}", **extra}


def make_shift(
    grid: Area,
    *,
    starts_in: timedelta = timedelta(days=1),
    hours: float = 2,
    min_headcount: int = 1,
    max_headcount: int = 3,
    backup_slots: int = 0,
    required_kinds: list[dict[str, Any]] | None = None,
    title: str = "夜间巡逻",
    series_id: int | None = None,
) -> Any:
    """A scheduled shift starting ``starts_in`` from now (whole minutes), ``hours`` long."""
    from shifts.models import Shift

    start = (utcnow() + starts_in).replace(second=0, microsecond=0)
    shift = Shift(
        grid_id=grid.id,
        series_id=series_id,
        timezone=grid.timezone,
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        title=title,
        min_headcount=min_headcount,
        max_headcount=max_headcount,
        backup_slots=backup_slots,
        required_kinds=required_kinds or [],
        status="scheduled",
        primary_count=0,
        backup_count=0,
        queue_seq=0,
    )
    db.session.add(shift)
    db.session.flush()
    return shift


def make_assignment(
    shift: Any, volunteer: Volunteer, *, role: str = "primary", status: str = "assigned"
) -> Any:
    """A place on ``shift``, keeping the shift's counters as the service would."""
    from shifts.models import Assignment

    shift.queue_seq += 1
    if status == "assigned":
        if role == "primary":
            shift.primary_count += 1
        else:
            shift.backup_count += 1
    assignment = Assignment(
        shift_id=shift.id,
        volunteer_id=volunteer.id,
        status=status,
        role=role,
        source="organiser",
        queue_seq=shift.queue_seq,
    )
    db.session.add(assignment)
    db.session.flush()
    return assignment


def fold_into_rollups() -> None:
    """Fold what the test's own session wrote into the report roll-ups, as its commit would.

    A test's setup is flushed, not committed (the whole test is one transaction rolled back at
    the end), and the roll-ups fold a transaction's changes in at its commit
    (reports/rollups/listeners.py); a request then reads them as it would after a real commit."""
    from reports.rollups import service as rollups

    session = db.session()
    if session.in_transaction():
        session.flush()
        rollups.recompute(rollups.affected(rollups.take_changes()))
