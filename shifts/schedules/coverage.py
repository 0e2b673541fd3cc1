"""Coverage gaps: shifts under way or starting soon that are short of people or of a required kind.

Must stay fast for a district with thousands of shifts, so never one query per shift: candidates are
read in chunks in start order, and ``shifts.service.shift_views`` counts each chunk's kind coverage
and waitlists in two grouped queries, so a gap is decided by the very rule the shift view shows
(``below_minimum``, ``unmet_kinds``). Scanning stops as soon as the page is full.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from core.auth import Caller
from core.db import UTCDateTime, utcnow
from core.extensions import db
from core.pagination import decode_cursor, encode_cursor
from grids.models import Area
from grids.service import in_subtree, scope_root
from shifts.models import Shift, ShiftStatus
from shifts.schedules.service import cursor_value
from shifts.service import select_shifts, shift_views

#: Shifts read per round while looking for gaps; a page needs few rounds.
GAP_SCAN_CHUNK = 500


def coverage_gaps(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Scheduled shifts in the caller's subtree (or ``area_id``'s, inside it) under way or starting
    within ``within_hours`` that are below their minimum headcount or miss a required kind."""
    root_path = scope_root(caller, args.get("area_id"))
    now = utcnow()
    candidates = (
        select_shifts()
        .join(Area, Area.id == Shift.grid_id)
        .where(
            in_subtree(Area.path, root_path),
            Shift.status == ShiftStatus.SCHEDULED,
            Shift.ends_at > now,
            Shift.starts_at < now + timedelta(hours=args["within_hours"]),
            # Only shifts short of people or with a kind requirement can be gaps.
            sa.or_(
                Shift.primary_count < Shift.min_headcount,
                sa.cast(Shift.required_kinds, sa.String) != "[]",
            ),
        )
        .order_by(Shift.starts_at, Shift.id)
        .limit(GAP_SCAN_CHUNK)
    )
    limit = args["limit"]
    after = _decode_cursor(args.get("cursor"))
    gaps: list[dict[str, Any]] = []
    while len(gaps) <= limit:
        stmt = candidates
        if after is not None:
            bound = sa.tuple_(sa.literal(after[0], UTCDateTime()), sa.literal(after[1], sa.BigInteger()))
            stmt = stmt.where(sa.tuple_(Shift.starts_at, Shift.id) > bound)
        shifts = db.session.scalars(stmt).unique().all()
        gaps.extend(_gaps_among(shifts, now))
        if len(shifts) < GAP_SCAN_CHUNK:
            break
        after = (shifts[-1].starts_at, shifts[-1].id)
    next_cursor = None
    if len(gaps) > limit:
        last = gaps[limit - 1]
        next_cursor = encode_cursor([last["starts_at"].isoformat(), last["id"]])
    return {"items": gaps[:limit], "next_cursor": next_cursor}


def _decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor:
        return None
    starts_at, shift_id = decode_cursor(cursor, 2)
    return cursor_value(starts_at, datetime), cursor_value(shift_id, int)


def _gaps_among(shifts: Sequence[Shift], now: datetime) -> list[dict[str, Any]]:
    gaps = []
    for shift, view in zip(shifts, shift_views(shifts), strict=True):
        if view["below_minimum"] or view["unmet_kinds"]:
            view["missing_headcount"] = max(shift.min_headcount - shift.primary_count, 0)
            view["in_progress"] = shift.starts_at <= now
            gaps.append(view)
    return gaps
