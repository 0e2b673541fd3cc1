"""Tasks that exist only for tests/test_tasks_celery.py: each writes one row the test can look for.

A real worker imports this module with ``celery -A worker worker -I tests.celery_probe_tasks``.
The rows are custom volunteer kinds (code = the argument), which the committing tests' clean-up
deletes.
"""

from __future__ import annotations

import gc

from core.extensions import db
from core.tasks import celery
from volunteers.models import VolunteerKind


class ProbeFailure(RuntimeError):
    """Raised on purpose after a write, to prove the task's transaction is rolled back."""


def _add_kind(code: str) -> None:
    db.session.add(VolunteerKind(code=code, name_zh=code, name_en=code))
    db.session.flush()  # the row reaches the database; only the task's end decides its fate


@celery.task(name="tests.record_kind")
def record_kind(code: str) -> str:
    _add_kind(code)
    return code


@celery.task(name="tests.record_kind_then_fail")
def record_kind_then_fail(code: str) -> None:
    _add_kind(code)
    raise ProbeFailure(f"failing after writing {code}")


@celery.task(name="tests.record_heap_state")
def record_heap_state(code: str) -> str:
    """Whether the worker froze its loaded heap (core.tasks.settle_heap) before running tasks."""
    state = "frozen" if gc.get_freeze_count() else "loose"
    _add_kind(f"{code}-{state}")
    return state
