"""The seal of an area, uploaded by its staff and printed on the certificates it issues afterwards
(frozen on each by its storage key). Stored as photos are (``core/photos.py``).
"""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import FileStorage

from core import audit, photos
from core.auth import Caller
from core.db import utcnow
from core.errors import NotFound, ValidationFailed
from core.extensions import db
from grids.models import Area
from grids.queries import get_area
from records.certificates.models import AreaSeal
from records.certificates.service import NOT_A_FILE

# --- seals ---------------------------------------------------------------------------------------


def _official_area(caller: Caller, area_id: int) -> Area:
    area = get_area(area_id)
    caller.ensure_scope(area.path)
    return area


def set_seal(caller: Caller, area_id: int, upload: Any) -> AreaSeal:
    """Store a new seal for an area in the caller's subtree (checked and re-encoded by core.photos:
    a PNG keeps its transparency). Certificates already issued keep the seal they were issued with."""
    if not isinstance(upload, FileStorage):
        raise ValidationFailed(errors={"file": [NOT_A_FILE]})
    area = _official_area(caller, area_id)
    clean = photos.clean_photo(photos.read_upload(upload.stream))
    key = photos.new_storage_key("seals", area.id, clean.extension)
    photos.store_photo(db.session(), key, clean)
    seal = db.session.get(AreaSeal, area.id)
    before = {"photo_key": seal.photo_key} if seal is not None else None
    if seal is None:
        seal = AreaSeal(area_id=area.id)
        db.session.add(seal)
    seal.photo_key, seal.content_type = key, clean.content_type
    seal.uploaded_by, seal.uploaded_at = caller.user_id, utcnow()
    db.session.flush()
    audit.record(
        caller, "area.seal", target_type="area", target_id=area.id, area_path=area.path,
        before=before, after={"photo_key": key},
    )
    return seal


def get_seal(caller: Caller, area_id: int) -> tuple[AreaSeal, bytes]:
    area = _official_area(caller, area_id)
    seal = db.session.get(AreaSeal, area.id)
    if seal is None:
        raise NotFound("This area has no seal.", code="seal_not_found")
    return seal, photos.photo_store().get(seal.photo_key)


def seal_view(seal: AreaSeal) -> dict[str, Any]:
    return {"area_id": seal.area_id, "content_type": seal.content_type, "uploaded_at": seal.uploaded_at}
