"""Background work of leaderboards: folding the grids' changes into their rows (beat runs it every
LEADERBOARD_FOLD_MINUTES).

Boards read a grid's folded row plus its changes not folded yet (``totals.grid_figures``), so they
are exact whether or not this has run; folding only keeps the changes they read few.
"""

from __future__ import annotations

from core.extensions import db
from core.tasks import celery, periodic
from rewards.leaderboards import totals
from rewards.settings import FOLD_INTERVAL


@periodic(FOLD_INTERVAL)
@celery.task(name="rewards.fold_leaderboard_changes")
def fold_leaderboard_changes() -> int:
    """Fold the grids' changes into their rows; returns how many were folded."""
    folded = totals.fold_grid_changes()
    db.session.commit()
    return folded
