"""Certify the star levels whose publicity has ended (beat runs it every RECORDS_STAR_CERTIFY_MINUTES,
and ``flask tasks run-periodic``). Commits per batch: each certification is one conditional UPDATE,
so a batch run twice, or beside a decision certifying the same level, certifies it once."""

from __future__ import annotations

from datetime import datetime

from core.db import utcnow
from core.tasks import celery, periodic
from core.transactions import commit_batch
from records.settings import STAR_CERTIFY_MINUTES
from records.stars import service


def certify_due(now: datetime | None = None, *, batch_size: int = 500) -> int:
    """Certify every level due at ``now`` (default: now); returns how many this run certified."""
    moment = now or utcnow()
    certified = 0
    after_id = 0
    while True:
        due = service.due_ids(moment, after_id=after_id, limit=batch_size)
        certified += sum(service.certify(level_id, moment) for level_id in due)
        commit_batch()
        if len(due) < batch_size:
            return certified
        after_id = due[-1]


@periodic(STAR_CERTIFY_MINUTES)
@celery.task(name="records.certify_star_levels")
def certify_star_levels_task() -> int:
    """Certify the star levels whose publicity ended with no upheld or open objection; returns how many."""
    return certify_due()
