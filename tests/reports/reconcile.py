"""What a participation report must agree with, computed from the rows in plain Python (not with the
report's SQL), for the hand-built month and the property test alike.

- **served hours = service records**: the live (not voided) ``service_records`` of source
  ``patrol`` whose patrol is on a planned shift of the area that started in the period (read in the
  area's zone) and has ended, less those whose presence went back to review after it had counted
  (a flagged check-out after an automatic close): their record stands until the organiser decides,
  the report shows them under ``in_review`` and not in ``served_minutes``.
- **hours by hand = manual records**: live records of source ``manual`` of the area's grids whose
  ``served_on`` lies in the period's dates.
- **points = the ledger**: the entries created in the period by volunteers at home in the area sum
  to awarded − reversed − redeemed − expired + adjusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from core.extensions import db
from grids.models import Area
from patrols.models import Patrol, PresenceStatus
from rewards.awarding.models import ServiceRecord
from rewards.ledger.models import LedgerEntry
from shifts.models import Shift
from volunteers.models import Volunteer

#: Every figure that adds up from children to parent and from series points to the period.
ADDITIVE = {
    "volunteers": ("registered", "approved", "newly_approved", "suspended_closed", "active"),
    "shifts": ("planned", "cancelled", "places_planned", "places_filled"),
    "presence": (
        "assignments",
        "served",
        "no_shows",
        "late_withdrawals",
        "in_review",
        "served_minutes",
        "manual_minutes",
    ),
    "reports": ("filed", "taken_up", "resolved"),
    "points": ("awarded", "reversed", "redeemed", "expired", "adjusted"),
}
FLOWS = ("shifts", "presence", "reports", "points")


@dataclass(frozen=True)
class Rows:
    """Sums of the rows behind one report: an area (by path) and a period of UTC instants."""

    patrol_record_minutes: int
    held_in_review_minutes: int
    manual_record_minutes: int
    ledger_sum: int


def _area_paths() -> dict[int, str]:
    return dict(db.session.execute(sa.select(Area.id, Area.path)).tuples().all())


def rows_of(area: Area, starts_at: datetime, ends_at: datetime, first: Any, last: Any, as_of: datetime) -> Rows:
    paths = _area_paths()
    inside = area.path

    def in_area(grid_id: int | None) -> bool:
        return grid_id is not None and paths[grid_id].startswith(inside)

    patrol_minutes = held = manual = 0
    for record in db.session.scalars(sa.select(ServiceRecord).where(ServiceRecord.voided_at.is_(None))):
        if record.source_type == "manual":
            if in_area(record.grid_id) and first <= record.served_on <= last:
                manual += record.minutes
            continue
        patrol = db.session.get_one(Patrol, int(record.source_id))
        shift = db.session.get_one(Shift, patrol.shift_id)
        if not (in_area(shift.grid_id) and starts_at <= shift.starts_at < ends_at):
            continue
        if shift.status == "cancelled" or shift.ends_at > as_of:
            continue
        patrol_minutes += record.minutes
        if patrol.presence_status == PresenceStatus.NEEDS_REVIEW:
            held += record.minutes
    ledger = 0
    for entry in db.session.scalars(sa.select(LedgerEntry)):
        volunteer = db.session.get_one(Volunteer, entry.volunteer_id)
        if in_area(volunteer.home_grid_id) and starts_at <= entry.created_at < ends_at:
            ledger += entry.amount
    return Rows(patrol_minutes, held, manual, ledger)


def assert_reconciles(body: dict[str, Any], area: Area) -> Rows:
    """The report ``body`` of ``area`` agrees with its rows (see the module docstring)."""
    period = body["period"]
    rows = rows_of(
        area,
        datetime.fromisoformat(period["starts_at"]),
        datetime.fromisoformat(period["ends_at"]),
        datetime.fromisoformat(period["from"]).date(),
        datetime.fromisoformat(period["to"]).date(),
        datetime.fromisoformat(body["as_of"]),
    )
    presence, points = body["figures"]["presence"], body["figures"]["points"]
    assert presence["served_minutes"] == rows.patrol_record_minutes - rows.held_in_review_minutes, (area.name, rows)
    assert presence["served_hours"] == round(presence["served_minutes"] / 60, 2)
    assert presence["manual_minutes"] == rows.manual_record_minutes, (area.name, rows)
    net = points["awarded"] - points["reversed"] - points["redeemed"] - points["expired"] + points["adjusted"]
    assert net == rows.ledger_sum, (area.name, points, rows)
    return rows


def assert_children_sum(body: dict[str, Any], sections: tuple[str, ...] = tuple(ADDITIVE)) -> None:
    """Every additive figure of the children sums to the parent's; star levels too."""
    children = [child["figures"] for child in body["children"]]
    for section in sections:
        for name in ADDITIVE[section]:
            assert sum(child[section][name] for child in children) == body["figures"][section][name], (section, name)
    if "points" in sections:
        for star, reached in body["figures"]["points"]["star_levels"].items():
            assert sum(child["points"]["star_levels"][star] for child in children) == reached, star


def assert_series_sums(body: dict[str, Any]) -> None:
    """Series points of every flow sum to the period's figure."""
    for section in FLOWS:
        for name in ADDITIVE[section]:
            total = sum(point[section][name] for point in body["series"])
            assert total == body["figures"][section][name], (section, name)
