"""Background work of tracks: purge track points past TRACK_RETENTION_DAYS (PIPL art. 28; the patrol
summaries stay). Runs under beat every TRACK_PURGE_MINUTES and from ``flask tasks run-periodic``.
"""

from __future__ import annotations

from core.tasks import celery, periodic
from patrols.tracks.service import purge_track_points


@periodic("TRACK_PURGE_MINUTES")
@celery.task(name="patrols.purge_track_points")
def purge_track_points_task() -> int:
    """Delete track points past TRACK_RETENTION_DAYS (PIPL art. 28); patrol summaries stay."""
    return purge_track_points()
