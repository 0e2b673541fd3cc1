"""The service hours that count on a record, a certificate and a star level: one owner, one query.

Service is what ``rewards`` keeps as service records (served patrols and hours an organiser entered,
a correction being a new record that replaces a voided one); a voided record never counts. Each
record's organisation is the area of its grid: the area that recorded the hours is the one whose
subtree holds that grid ("谁记录谁证明"), so an issuer's hours are those inside its subtree.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from core.extensions import db
from grids.models import Area
from grids.queries import in_subtree
from rewards.awarding.models import ServiceRecord


def counted(
    volunteer_id: int,
    *,
    area_path: str | None = None,
    first: date | None = None,
    last: date | None = None,
) -> sa.ColumnElement[bool]:
    """The condition selecting a volunteer's service records that count: not voided, served on a
    local day in ``first``..``last`` (both inclusive, either open), and, with ``area_path``, on a
    grid inside that subtree. Select from ``ServiceRecord`` joined to the grid's ``Area``."""
    return sa.and_(
        ServiceRecord.volunteer_id == volunteer_id,
        counted_of_anyone(area_path=area_path, first=first, last=last),
    )


def counted_of_anyone(
    *,
    area_path: str | None = None,
    first: date | None = None,
    last: date | None = None,
) -> sa.ColumnElement[bool]:
    """:func:`counted` for every volunteer at once (an area's batch, e.g. the hand-over export)."""
    conditions: list[sa.ColumnElement[bool]] = [ServiceRecord.voided_at.is_(None)]
    if first is not None:
        conditions.append(ServiceRecord.served_on >= first)
    if last is not None:
        conditions.append(ServiceRecord.served_on <= last)
    if area_path is not None:
        conditions.append(in_subtree(Area.path, area_path))
    return sa.and_(*conditions)


def counted_minutes(
    volunteer_id: int,
    *,
    area_path: str | None = None,
    first: date | None = None,
    last: date | None = None,
) -> int:
    """Minutes of service that count (see :func:`counted`)."""
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(ServiceRecord.minutes), 0))
        .select_from(ServiceRecord)
        .outerjoin(Area, Area.id == ServiceRecord.grid_id)
        .where(counted(volunteer_id, area_path=area_path, first=first, last=last))
    )
    return int(db.session.scalar(query) or 0)


def minutes_by_year(volunteer_id: int, *, area_path: str | None = None) -> dict[int, int]:
    """Minutes that count per calendar year of the local service day, oldest first."""
    year = sa.extract("year", ServiceRecord.served_on)
    query = (
        sa.select(year, sa.func.sum(ServiceRecord.minutes))
        .select_from(ServiceRecord)
        .outerjoin(Area, Area.id == ServiceRecord.grid_id)
        .where(counted(volunteer_id, area_path=area_path))
        .group_by(year)
        .order_by(year)
    )
    return {int(y): int(minutes) for y, minutes in db.session.execute(query)}
