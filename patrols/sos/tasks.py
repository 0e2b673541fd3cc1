"""Background work of the SOS: the escalation, under beat every SOS_ESCALATION_SECONDS (core.tasks).

Idempotent and in committed batches (``patrols.sos.escalation``): a run redelivered after its
worker died, or two runs at once, make each step once.
"""

from __future__ import annotations

from core.tasks import celery, periodic
from patrols.sos.escalation import escalate_due


@periodic("SOS_ESCALATION_SECONDS")
@celery.task(name="patrols.escalate_sos")
def escalate_sos_task() -> int:
    """Escalate every open SOS nobody acknowledged in SOS_ACK_MINUTES by one level; returns how many."""
    return escalate_due()
