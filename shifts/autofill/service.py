"""Auto-fill against the database: load an area's open shifts and the nearby volunteers for a date
range, plan with ``solver``, and on apply write the plan in the request's transaction.
No HTTP here.

Reading the problem lives in ``load``, the rules in ``model``, the optimisation in ``solver`` (and
``exact``), all in this subpackage.

Apply takes the planned volunteers' schedule locks (ascending ids), then the planned shifts' rows
(ascending ids, FOR UPDATE), and re-checks every planned place against what is committed now. A
place that no longer holds (the volunteer took another shift or was suspended, the shift filled up,
moved or was cancelled meanwhile) is skipped and reported in ``skipped``; the rest are written, each
counter by a conditional UPDATE. With ``plan_token`` the caller asks for exactly the plan they
reviewed: if the fresh plan differs, 409 ``autofill_plan_changed`` and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from core import audit, i18n
from core.auth import Caller
from core.db import utcnow
from core.errors import Conflict
from core.extensions import db
from grids.models import Area
from grids.service import referenced_area
from shifts import rules, signals
from shifts.autofill.checks import recheck
from shifts.autofill.load import Loaded, load, volunteers_of
from shifts.autofill.model import RANK_NAMES, Problem, ShiftInput, epoch_minutes, epoch_minutes_ceil
from shifts.autofill.schemas import AutofillRequestInput
from shifts.autofill.solver import Plan, solve
from shifts.models import Assignment, AssignmentRole, AssignmentSource, AssignmentStatus, Shift, ShiftStatus

i18n.register_titles(i18n.title("autofill_plan_changed", "The plan has changed"))
i18n.register_messages(
    i18n.N_("The plan differs from the one reviewed; run the dry run again."),
    i18n.N_("A shift changed while the plan was being applied."),
)


def autofill(caller: Caller, data: AutofillRequestInput) -> dict[str, Any]:
    """Plan (and with ``apply`` write) the filling of the area's open places in the date range."""
    area = referenced_area(data["area_id"], "area_id")
    caller.ensure_scope(area.path)
    cap_hours = data.get("weekly_cap_hours") or current_app.config["AUTOFILL_WEEKLY_CAP_HOURS"]
    now = utcnow()
    loaded = load(caller, area, data["day_from"], data["day_to"], cap_hours, now)
    plan = solve(
        loaded.problem,
        exact_max_pairs=current_app.config["AUTOFILL_EXACT_MAX_PAIRS"],
    )
    token = plan_token(area.id, data["day_from"], data["day_to"], cap_hours, plan)
    written: dict[tuple[int, int], int] = {}
    skipped: list[tuple[int, int, str]] = []
    if data["apply"]:
        if data.get("plan_token") and data["plan_token"] != token:
            raise Conflict(
                "The plan differs from the one reviewed; run the dry run again.",
                code="autofill_plan_changed",
            )
        written, skipped = apply(caller, loaded, plan, now)
        audit.record(
            caller,
            "shifts.autofill",
            target_type="area",
            target_id=area.id,
            area_path=area.path,
            after={
                "from": data["day_from"], "to": data["day_to"], "weekly_cap_hours": cap_hours,
                "assigned": len(written), "skipped": len(skipped), "plan_token": token,
            },
        )
    return _view(area, data, cap_hours, loaded, plan, token, written, skipped, applied=data["apply"])


def plan_token(area_id: int, first: date, last: date, cap_hours: int, plan: Plan) -> str:
    """A digest of the request and the planned places: equal plans have equal tokens."""
    places = [[place.shift_id, place.volunteer_id] for place in plan.places]
    text = json.dumps([area_id, first.isoformat(), last.isoformat(), cap_hours, places], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --- apply -------------------------------------------------------------------------------------


def apply(
    caller: Caller, loaded: Loaded, plan: Plan, now: datetime
) -> tuple[dict[tuple[int, int], int], list[tuple[int, int, str]]]:
    """Write the plan's places that still hold; returns {(shift, volunteer): assignment id} and the
    skipped places with their reasons."""
    planned = [(place.shift_id, place.volunteer_id) for place in plan.places]
    if not planned:
        return {}, []
    rules.lock_schedules({volunteer_id for _, volunteer_id in planned})
    locked = _lock_shifts(sorted({shift_id for shift_id, _ in planned}))
    skipped: list[tuple[int, int, str]] = []
    fresh_shifts = []
    for shift in loaded.problem.shifts:
        row = locked.get(shift.id)
        if row is None:
            continue
        if row.status != ShiftStatus.SCHEDULED.value or row.starts_at <= now:
            gone = "shift_cancelled" if row.status != ShiftStatus.SCHEDULED.value else "shift_started"
            skipped += [(s, v, gone) for s, v in planned if s == shift.id]
            continue
        fresh_shifts.append(
            ShiftInput(
                id=shift.id, starts=epoch_minutes(row.starts_at), ends=epoch_minutes_ceil(row.ends_at),
                open_places=max(row.max_headcount - row.primary_count, 0), grid=shift.grid,
                community=shift.community, subdistrict=shift.subdistrict,
            )
        )
    open_ids = {shift.id for shift in fresh_shifts}
    volunteers, _ = volunteers_of(loaded.home, loaded.pool, open_ids, loaded.window)
    fresh = Problem(fresh_shifts, volunteers, loaded.problem.min_rest, loaded.problem.weekly_cap)
    kept, refused = recheck(fresh, [(s, v) for s, v in planned if s in open_ids])
    skipped += refused
    by_shift: dict[int, list[int]] = defaultdict(list)
    for shift_id, volunteer_id in kept:
        by_shift[shift_id].append(volunteer_id)
    _claim_places([{"shift_id": s, "n": len(taking)} for s, taking in sorted(by_shift.items())], now)
    rows = [
        {
            "shift_id": shift_id, "volunteer_id": volunteer_id, "status": AssignmentStatus.ASSIGNED.value,
            "role": AssignmentRole.PRIMARY.value, "source": AssignmentSource.AUTOFILL.value,
            "queue_seq": locked[shift_id].queue_seq + 1 + offset, "created_by": caller.user_id,
            "created_at": now, "updated_at": now,
        }
        for shift_id, taking in sorted(by_shift.items())
        for offset, volunteer_id in enumerate(taking)
    ]
    written = _insert(rows)
    for (shift_id, volunteer_id), assignment_id in written.items():
        signals.assignment_created.send(
            signals.SENDER,
            **signals.AssignmentCreated(
                assignment_id=assignment_id, shift_id=shift_id, volunteer_id=volunteer_id,
                role=AssignmentRole.PRIMARY.value, source=AssignmentSource.AUTOFILL.value,
                actor_id=caller.user_id,
            ),
        )
    return written, sorted(skipped)


def _lock_shifts(shift_ids: list[int]) -> dict[int, Any]:
    """The planned shifts' rows, locked in ascending id order (after the schedule locks)."""
    locked = {}
    for start in range(0, len(shift_ids), 1000):
        for row in db.session.execute(
            sa.select(
                Shift.id, Shift.status, Shift.starts_at, Shift.ends_at, Shift.primary_count,
                Shift.max_headcount, Shift.queue_seq,
            )
            .where(Shift.id.in_(shift_ids[start : start + 1000]))
            .order_by(Shift.id)
            .with_for_update()
        ):
            locked[row.id] = row
    return locked


def _claim_places(claims: list[dict[str, Any]], now: datetime) -> None:
    """Take each shift's ``n`` primary places by conditional UPDATE, in one executemany; the rows
    are locked, so every one must match."""
    if not claims:
        return
    table = Shift.__table__
    moment = sa.bindparam("now", type_=table.c.starts_at.type)
    count = sa.bindparam("n", type_=sa.Integer())
    claimed = db.session.connection().execute(
        sa.update(table)
        .where(
            table.c.id == sa.bindparam("shift_id"),
            table.c.status == ShiftStatus.SCHEDULED.value,
            table.c.starts_at > moment,
            table.c.primary_count + count <= table.c.max_headcount,
        )
        .values(primary_count=table.c.primary_count + count, queue_seq=table.c.queue_seq + count, updated_at=moment),
        [claim | {"now": now} for claim in claims],
    )
    if claimed.rowcount != len(claims):
        raise Conflict("A shift changed while the plan was being applied.", code="autofill_plan_changed")


def _insert(rows: list[dict[str, Any]]) -> dict[tuple[int, int], int]:
    if not rows:
        return {}
    result = db.session.execute(
        sa.insert(Assignment).returning(
            Assignment.id, Assignment.shift_id, Assignment.volunteer_id, sort_by_parameter_order=True
        ),
        rows,
    )
    return {(row.shift_id, row.volunteer_id): row.id for row in result}


# --- the response ------------------------------------------------------------------------------


def _view(
    area: Area, data: AutofillRequestInput, cap_hours: int, loaded: Loaded, plan: Plan, token: str,
    written: dict[tuple[int, int], int], skipped: list[tuple[int, int, str]], *, applied: bool,
) -> dict[str, Any]:
    shifts, volunteers = loaded.shift_rows, loaded.volunteer_rows

    places = [
        {
            "shift_id": place.shift_id, "shift_starts_at": shifts[place.shift_id].starts_at,
            "volunteer_id": place.volunteer_id, "volunteer_name": volunteers[place.volunteer_id].real_name,
            "volunteer_kind": volunteers[place.volunteer_id].kind, "role": AssignmentRole.PRIMARY.value,
            "rank": RANK_NAMES[place.rank], "assignment_id": written.get((place.shift_id, place.volunteer_id)),
        }
        for place in plan.places
    ]
    open_shifts = [
        {
            "shift_id": item.shift_id, "shift_starts_at": shifts[item.shift_id].starts_at, "open_places": item.open_places,
            "reason": item.reason.value, "unmet_kinds": list(item.unmet_kinds),
            "candidates": {
                "nearby": item.funnel.nearby, "available": item.funnel.available,
                "clear": item.funnel.clear, "eligible": item.funnel.eligible,
            },
        }
        for item in plan.open_shifts
    ]
    report = plan.report
    return {
        "area_id": area.id, "day_from": data["day_from"], "day_to": data["day_to"],
        "timezone": area.timezone, "weekly_cap_hours": cap_hours, "applied": applied,
        "plan_token": token, "places": places, "open_shifts": open_shifts,
        "skipped": [{"shift_id": s, "volunteer_id": v, "reason": reason} for s, v, reason in skipped],
        "summary": {
            "shifts": len(loaded.problem.shifts),
            "open_places": sum(shift.open_places for shift in loaded.problem.shifts),
            "planned": len(plan.places),
            "left_open": sum(item.open_places for item in plan.open_shifts),
            "assigned": len(written),
            "volunteers_considered": len(loaded.problem.volunteers),
            "volunteers_planned": len({place.volunteer_id for place in plan.places}),
        },
        "solver": {
            "method": report.method, "status": report.status, "upper_bound": report.upper_bound,
            "seconds": report.seconds, "rounds": report.rounds, "pairs": report.pairs,
        },
    }
