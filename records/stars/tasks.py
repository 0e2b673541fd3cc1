"""Propose the star levels of star badges that have none, and certify the levels whose publicity has
ended (beat runs it every RECORDS_STAR_CERTIFY_MINUTES, and ``flask tasks run-periodic``). Commits per
batch: a proposal is an insert on conflict do nothing and each certification one conditional UPDATE,
so a batch run twice, or beside a decision certifying the same level, proposes and certifies once."""

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


def propose_unproposed(now: datetime | None = None, *, batch_size: int = 500) -> int:
    """Propose, publicised from ``now``, the level of every star badge that has none (see
    ``service.unproposed``); returns how many this run proposed."""
    moment = now or utcnow()
    proposed = 0
    after_id = 0
    while True:
        batch = service.unproposed(after_volunteer_id=after_id, limit=batch_size)
        proposed += sum(service.propose(volunteer_id, badge, moment) is not None for volunteer_id, badge in batch)
        commit_batch()
        if len(batch) < batch_size:
            return proposed
        after_id = batch[-1][0]


@periodic(STAR_CERTIFY_MINUTES)
@celery.task(name="records.certify_star_levels")
def certify_star_levels_task() -> int:
    """Propose the levels of star badges that have none (earned before star levels existed), then
    certify the levels whose publicity ended with no upheld or open objection; returns how many
    were certified."""
    propose_unproposed()
    return certify_due()
