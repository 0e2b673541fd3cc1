"""``flask reports rollups ...``: check the daily roll-ups against the rows, rebuild them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from core.extensions import db
from grids.models import Area
from patrols.reports.models import Report
from reports.rollups import repair
from rewards.awarding.models import ServiceRecord
from rewards.badges.models import VolunteerBadge
from rewards.ledger.models import LedgerEntry
from shifts.models import Shift
from volunteers.models import Volunteer

reports_cli = AppGroup("reports", help="Reports.")
rollups_cli = AppGroup("rollups", help="The daily roll-ups the participation reports read.")
reports_cli.add_command(rollups_cli)


def data_span() -> tuple[date, date] | None:
    """The first and last dates any counted row falls on, a day of slack each way (any zone)."""
    bounds = [
        db.session.execute(sa.select(sa.func.min(column), sa.func.max(column))).one()
        for column in (Shift.starts_at, Report.received_at, LedgerEntry.created_at, VolunteerBadge.earned_at)
    ]
    dates = [moment.date() for pair in bounds for moment in pair if moment is not None]
    dates += [d for d in db.session.execute(
        sa.select(sa.func.min(ServiceRecord.served_on), sa.func.max(ServiceRecord.served_on))
    ).one() if d is not None]
    if not dates:
        return None
    return min(dates) - timedelta(days=1), max(dates) + timedelta(days=1)


def _scope(area_id: int | None) -> tuple[list[Area], list[int]]:
    root = db.session.get(Area, area_id) if area_id is not None else None
    if area_id is not None and root is None:
        raise click.BadParameter(f"no area {area_id}", param_hint="--area")
    grids = repair.grids_under(root) if root is not None else repair.grids_under_all()
    homes = [grid.id for grid in grids]
    volunteers: list[int] = []
    for start in range(0, len(homes), 2000):
        volunteers += list(db.session.scalars(
            sa.select(Volunteer.id).where(Volunteer.home_grid_id.in_(homes[start:start + 2000])).order_by(Volunteer.id)
        ))
    return grids, volunteers


def rebuild(area_id: int | None = None, first: date | None = None, last: date | None = None,
            progress: Callable[[str], Any] | None = None) -> dict[str, int]:
    """Rebuild the roll-ups of the grids and home volunteers under ``area_id`` (all when None),
    committing batch by batch (:func:`repair.rebuild_batches`); the counts written."""
    span = data_span()
    if span is None:
        return {"grids": 0, "days": 0, "volunteer_months": 0}
    first, last = first or span[0], last or span[1]
    grids, volunteers = _scope(area_id)
    days = done = 0
    for batch in repair.rebuild_batches(grids, first, last):
        days += repair.rebuild_grids(batch, first, last)
        db.session.commit()
        done += len(batch)
        if progress is not None:
            progress(f"{done}/{len(grids)} grids")
    months = 0
    for start in range(0, len(volunteers), 500):
        months += repair.rebuild_volunteers(volunteers[start:start + 500])
        db.session.commit()
    return {"grids": len(grids), "days": days, "volunteer_months": months}


def check(area_id: int | None = None, first: date | None = None, last: date | None = None) -> list[dict[str, Any]]:
    """Mismatches between the stored roll-ups and a recomputation from the rows; [] when none."""
    span = data_span()
    if span is None:
        return []
    first, last = first or span[0], last or span[1]
    grids, volunteers = _scope(area_id)
    result: list[dict[str, Any]] = []
    for grid in grids:
        result += repair.grid_mismatches(grid, first, last)
    for start in range(0, len(volunteers), 500):
        result += repair.volunteer_mismatches(volunteers[start:start + 500])
    return result


_AREA = click.option("--area", "area_id", type=int, help="Only this area's grids and volunteers (default: all).")
_FROM = click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First day (default: the first with data).")
_TO = click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last day (default: the last with data).")


@rollups_cli.command("check")
@_AREA
@_FROM
@_TO
def check_command(area_id: int | None, first: Any, last: Any) -> None:
    """List roll-up rows that differ from the rows they sum; exit status 1 when any does."""
    mismatches = check(area_id, first and first.date(), last and last.date())
    for mismatch in mismatches[:50]:
        click.echo(mismatch)
    click.echo(f"{len(mismatches)} mismatches.")
    if mismatches:
        raise SystemExit(1)


@rollups_cli.command("rebuild")
@_AREA
@_FROM
@_TO
def rebuild_command(area_id: int | None, first: Any, last: Any) -> None:
    """Recompute the roll-ups from the rows (a repair; safe while the app runs)."""
    counts = rebuild(area_id, first and first.date(), last and last.date(), progress=click.echo)
    click.echo(f"{counts['days']} grid days of {counts['grids']} grids, {counts['volunteer_months']} volunteer months.")
