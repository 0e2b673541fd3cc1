"""The small seed of the shift-change run (``--seed small``): one community of 25 grids and N volunteers.

Areas are ``bench/checkin_seed.py``'s (city → district → sub-district → community → 25 jittered
lattice grids with polygons); N users and active volunteers homed round-robin on the grids, with one
shared dummy password hash (nobody logs in: tokens are minted); one organiser over the community and
one staff member over the district. Nothing about tonight: ``prepare.py`` plans the shifts on any seed.

``--seed city`` uses ``bench/city_seed.py`` instead (a seeded 包头), once it is in the repository.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa


def seed(count: int) -> dict[str, Any]:
    """Write the areas and people into DATABASE_URL's database (migrated here); returns counts."""
    from bulk import commit_and_analyse  # bench/ is on sys.path
    from checkin_seed import _areas, _insert, volunteer_rows
    from seed import seeding

    from accounts.models import User
    from accounts.passwords import hash_password
    from core.db import utcnow
    from core.extensions import db
    from grids.models import Area
    from volunteers.models import Volunteer, VolunteerKind

    with seeding() as run:
        now = utcnow()
        connection = db.session.connection()
        area_rows, grids = _areas(now)
        _insert(connection, Area.__table__, area_rows)
        kind_id = db.session.scalar(sa.select(VolunteerKind.id).where(VolunteerKind.code == "volunteer_police"))
        users, volunteers = volunteer_rows(
            count, grids, now, kind_id=kind_id, consent=run.app.config["PRIVACY_TERMS_VERSION"],
            phone_prefix="+86135", tag="bench-shift-change",
        )
        district = next(row for row in area_rows if row["level"] == "district")
        community = next(row for row in area_rows if row["level"] == "community")
        manager_hash = hash_password(uuid.uuid4().hex)  # nobody logs in: tokens are minted
        for offset, (role, area) in enumerate((("organiser", community), ("staff", district)), start=1):
            users.append({
                "id": count + offset, "phone": f"+86134{offset:08d}", "password_hash": manager_hash, "role": role,
                "display_name": f"{'组织者' if role == 'organiser' else '街道干部'}{offset}", "area_id": area["id"],
                "locale": "zh", "is_active": True, "created_at": now, "updated_at": now, "password_changed_at": now,
            })
        _insert(connection, User.__table__, users)
        _insert(connection, Volunteer.__table__, volunteers)
        db.session.flush()
        commit_and_analyse()
    return {"seed": "small", "volunteers": count, "grids": len(grids), "managers": 2}
