"""The hand-over export: an area's volunteers and their service records that count in a period,
as one XLSX workbook, written as the rows stream from the database.

Rules:

- **Who**: staff and admins (the officials, who may see full ID numbers, as ``volunteers`` shows
  them), for an area in their subtree (an area is public: outside it, 403 ``out_of_scope``).
- **What**: the service records that count (``records.hours``: not voided, served on a local day
  in ``first``..``last``, on a grid in the area's subtree), whoever the volunteer and wherever
  their home grid: the area that recorded the hours hands them over ("谁记录谁证明"). A voided
  record is absent, its correction (a new record) present. Sheet 1 lists each volunteer with such
  a record once, with their hours in the period; sheet 2 every record. Both are ordered by
  volunteer, then day.
- **Full ID numbers** are printed (the national system needs them), so every export leaves an
  audit entry naming the caller, the area, the period and the volunteers whose data left.
- **Memory and queries**: two queries, each read in batches (``yield_per``; a server-side cursor
  on PostgreSQL) into openpyxl's write-only workbook, plus the area and, once per sheet, the cities
  (the volunteer number prints the city's code): no query per volunteer or record, and a
  district's 100,000 records are never all in memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO

import sqlalchemy as sa
from sqlalchemy import orm

from accounts.models import User
from core import audit
from core.auth import Caller
from core.extensions import db
from core.timeutil import zone
from grids.models import Area, AreaLevel
from grids.queries import referenced_area
from patrols.models import Patrol
from records import identity
from records.handover import columns
from records.handover.columns import SERVICE_COLUMNS, VOLUNTEER_COLUMNS, ServiceRow, VolunteerRow
from records.handover.schemas import HandoverInput
from records.hours import counted_of_anyone
from reports.exports.base import safe_file_name
from reports.exports.writers import Sheet, write_xlsx
from rewards.awarding.models import ServiceRecord
from rewards.awarding.service import SOURCE_MANUAL
from shifts.models import Shift
from volunteers.models import Volunteer

#: Rows fetched per round trip while streaming.
BATCH_ROWS = 1000
AUDIT_ACTION = "records.handover_export"
CHINA_PREFIX = "+86"

#: What a volunteer row needs loaded with it: the user's phone, the kind, the home grid's path and
#: zone; never the polygons, skills or availability (one row each, for thousands of volunteers).
_VOLUNTEER_LOADS = (
    orm.joinedload(Volunteer.user).options(orm.load_only(User.id, User.phone), orm.lazyload(User.area)),
    orm.joinedload(Volunteer.home_grid).options(
        orm.load_only(Area.id, Area.path, Area.timezone), orm.lazyload(Area.parent)
    ),
    orm.lazyload(Volunteer.skills),
    orm.lazyload(Volunteer.availability),
)


@dataclass
class Handover:
    """One export: what it covers, and (once written) whose data it held."""

    area: Area
    first: date
    last: date
    volunteer_ids: list[int] = field(default_factory=list)
    record_count: int = 0

    @property
    def condition(self) -> sa.ColumnElement[bool]:
        return counted_of_anyone(area_path=self.area.path, first=self.first, last=self.last)

    def file_names(self, language: str) -> tuple[str, str]:
        """An ASCII name (the area's id) and one with the area's name, for Content-Disposition."""
        period = f"{self.first.isoformat()}_{self.last.isoformat()}"
        return (
            safe_file_name(f"handover-{self.area.id}-{period}.xlsx"),
            safe_file_name(f"{columns.file_prefix(language)}-{self.area.name}-{period}.xlsx"),
        )


def prepare(caller: Caller, args: HandoverInput) -> Handover:
    """The export ``args`` ask for: 422 for an unknown area, 403 ``out_of_scope`` outside the
    caller's subtree (before anything is read)."""
    area = referenced_area(args["area_id"], "area_id")
    caller.ensure_scope(area.path)
    return Handover(area=area, first=args["first"], last=args["last"])


def xlsx_file(caller: Caller, handover: Handover, language: str) -> IO[bytes]:
    """The workbook in an anonymous temporary file, rewound for sending, and the audit entry of the
    export (in the request's transaction: no export without its trace)."""
    spool = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - closed by the response that sends it
    try:
        write_xlsx(sheets(handover, language), spool)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    record_export(caller, handover)
    return spool


def record_export(caller: Caller, handover: Handover) -> None:
    audit.record(
        caller,
        AUDIT_ACTION,
        target_type="area",
        target_id=handover.area.id,
        area_path=handover.area.path,
        after={
            "first": handover.first,
            "last": handover.last,
            "full_id_numbers": True,
            "volunteer_count": len(handover.volunteer_ids),
            "service_record_count": handover.record_count,
            "volunteer_ids": handover.volunteer_ids,
        },
    )


def sheets(handover: Handover, language: str) -> list[Sheet]:
    """The two sheets; their rows are read (and counted into ``handover``) as they are written."""
    return [
        Sheet(
            columns.sheet_name("volunteers", language),
            columns.columns_in(VOLUNTEER_COLUMNS, language),
            (columns.cells(VOLUNTEER_COLUMNS, row, language) for row in volunteer_rows(handover)),
        ),
        Sheet(
            columns.sheet_name("service", language),
            columns.columns_in(SERVICE_COLUMNS, language),
            (columns.cells(SERVICE_COLUMNS, row, language) for row in service_rows(handover)),
        ),
    ]


# --- rows ------------------------------------------------------------------------------------------


def _cities() -> list[Area]:
    """Every city, held while rows stream so that ``identity.volunteer_number`` finds its city in
    the session (no query per volunteer). Cities are few (a province has about a dozen)."""
    return list(
        db.session.scalars(
            sa.select(Area)
            .where(Area.level == AreaLevel.CITY.value)
            .options(orm.load_only(Area.id, Area.code, Area.path), orm.lazyload(Area.parent))
        )
    )


def _phone(e164: str) -> str:
    """A mainland mobile as the national system takes it: the 11 digits, without +86 (which a
    spreadsheet would also read as the start of a formula)."""
    return e164.removeprefix(CHINA_PREFIX)


def volunteer_rows(handover: Handover) -> Iterator[VolunteerRow]:
    """Each volunteer with a counted record in the area and period, by id, with their totals."""
    totals = (
        sa.select(
            ServiceRecord.volunteer_id,
            sa.func.sum(ServiceRecord.minutes).label("minutes"),
            sa.func.count(ServiceRecord.id).label("records"),
        )
        .select_from(ServiceRecord)
        .join(Area, Area.id == ServiceRecord.grid_id)
        .where(handover.condition)
        .group_by(ServiceRecord.volunteer_id)
        .subquery("totals")
    )
    query = (
        sa.select(Volunteer, totals.c.minutes, totals.c.records)
        .join(totals, totals.c.volunteer_id == Volunteer.id)
        .options(*_VOLUNTEER_LOADS)
        .order_by(Volunteer.id)
        .execution_options(yield_per=BATCH_ROWS)
    )
    cities = _cities()
    for volunteer, minutes, records in db.session.execute(query):
        handover.volunteer_ids.append(volunteer.id)
        yield VolunteerRow(
            volunteer_number=identity.volunteer_number(volunteer),
            name=volunteer.real_name,
            id_type=(identity.ID_TYPE, identity.ID_TYPE_EN),
            id_number=identity.id_number(volunteer, full=True),
            phone=_phone(volunteer.user.phone),
            kind=(volunteer.kind.name_zh, volunteer.kind.name_en),
            registered_on=volunteer.created_at.astimezone(zone(volunteer.home_grid.timezone)).date(),
            minutes=int(minutes),
            records=int(records),
        )
    del cities  # held until here (see _cities)


@dataclass(frozen=True)
class _Identity:
    volunteer_id: int
    number: str
    name: str
    id_number: str


def _local(instant: datetime | None, zone_name: str | None) -> datetime | None:
    """A shift's instant as the wall-clock time of its grid (naive: a spreadsheet has no zones)."""
    if instant is None or zone_name is None:
        return None
    return instant.astimezone(zone(zone_name)).replace(tzinfo=None)


def service_rows(handover: Handover) -> Iterator[ServiceRow]:
    """Each counted record in the area and period, by volunteer, day and id, with its shift (a
    served patrol) or its note (entered by hand), its grid and the grid's community."""
    community = orm.aliased(Area, name="community")
    query = (
        sa.select(
            ServiceRecord.id,
            ServiceRecord.source_type,
            ServiceRecord.minutes,
            ServiceRecord.served_on,
            ServiceRecord.note,
            Volunteer,
            Area.name,
            community.name,
            community.code,
            Shift.title,
            Shift.starts_at,
            Shift.ends_at,
            Shift.timezone,
        )
        .select_from(ServiceRecord)
        .join(Area, Area.id == ServiceRecord.grid_id)
        .join(Volunteer, Volunteer.id == ServiceRecord.volunteer_id)
        .outerjoin(community, community.id == Area.parent_id)
        .outerjoin(
            Patrol,
            sa.and_(
                ServiceRecord.source_type != SOURCE_MANUAL,
                ServiceRecord.source_id == sa.cast(Patrol.id, sa.String),
            ),
        )
        .outerjoin(Shift, Shift.id == Patrol.shift_id)
        .where(handover.condition)
        .options(*_VOLUNTEER_LOADS)
        .order_by(ServiceRecord.volunteer_id, ServiceRecord.served_on, ServiceRecord.id)
        .execution_options(yield_per=BATCH_ROWS)
    )
    cities = _cities()
    who: _Identity | None = None
    for row in db.session.execute(query):
        (record_id, source, minutes, served_on, note, volunteer, grid_name, community_name, community_code,
         title, starts_at, ends_at, zone_name) = row
        if who is None or who.volunteer_id != volunteer.id:  # rows come volunteer by volunteer
            who = _Identity(
                volunteer.id, identity.volunteer_number(volunteer), volunteer.real_name,
                identity.id_number(volunteer, full=True),
            )
        handover.record_count += 1
        by_hand = source == SOURCE_MANUAL
        yield ServiceRow(
            record_id=record_id,
            volunteer_number=who.number,
            name=who.name,
            id_number=who.id_number,
            served_on=served_on,
            starts_at=None if by_hand else _local(starts_at, zone_name),
            ends_at=None if by_hand else _local(ends_at, zone_name),
            minutes=minutes,
            by_hand=by_hand,
            content=_content(by_hand, note, title),
            grid=grid_name,
            community=community_name or "",
            community_code=community_code or "",
        )
    del cities  # held until here (see _cities)


def _content(by_hand: bool, note: str | None, shift_title: str | None) -> str:
    """What the service was: the shift's title for a served patrol, the organiser's note for hours
    entered by hand."""
    return (note if by_hand else shift_title) or ""

