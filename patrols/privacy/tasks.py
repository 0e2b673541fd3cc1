"""Background work of location privacy: retention per kind of positional data (``retention.py``).

``patrols.enforce_retention`` runs under beat every TRACK_PURGE_MINUTES and from ``flask tasks
run-periodic``. ``patrols.purge_track_points``, the name the track purge had before, is kept as an
alias of the same work: messages already queued under it still run (beat no longer sends it).
"""

from __future__ import annotations

from core.tasks import celery, periodic
from patrols.privacy.retention import enforce_retention


@periodic("TRACK_PURGE_MINUTES")
@celery.task(name="patrols.enforce_retention")
def enforce_retention_task() -> dict[str, int]:
    """Purge track points, precise presence positions and SOS positions past their retention."""
    return enforce_retention()


@celery.task(name="patrols.purge_track_points")
def purge_track_points_task() -> dict[str, int]:
    """The former name of :func:`enforce_retention_task` (queued messages refer to it)."""
    return enforce_retention()
