"""Background work of the roll-ups: under beat every REPORTS_ROLLUP_SWEEP_MINUTES, fold in the
changes that no session's commit took (written over a raw connection, outside the app)."""

from __future__ import annotations

from core.extensions import db
from core.tasks import celery, periodic
from reports.rollups import service


@periodic("REPORTS_ROLLUP_SWEEP_MINUTES")
@celery.task(name="reports.sweep_rollup_changes")
def sweep_changes_task() -> int:
    """Fold every committed change left in ``report_rollup_changes`` in; how many there were."""
    return sweep_changes()


def sweep_changes() -> int:
    changes = service.take_changes(own_only=False)
    service.recompute(service.affected(changes))
    db.session.commit()
    return len(changes)
