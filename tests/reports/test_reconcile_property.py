"""Property test (hypothesis): on random small worlds the participation report reconciles.

A world is a district with two sub-districts, one or two communities each and one or two grids
each (some in Asia/Urumqi, two hours behind the district's Shanghai), volunteers, shifts at random
times with many on the month's edges and across midnight, places with every outcome (served,
approved, no-show, late withdrawal, in review, rejected, rejected after it counted, back in review
after it counted, a promoted backup), hours entered by hand, incident reports and ledger entries.
Service records are written by the awarding services, as the patrol events would. The month three
months back is then asked for through HTTP for the district and every area below it, and:

- children sum to their parent for every count and hour, star levels included; rates and medians
  are recomputed from the figures and the rows, not summed;
- a child's row in its parent's report equals the child's own report when both read the same zone;
- the day and week series sum to the month for every flow;
- served hours equal the service records, hand-entered hours the manual records, and points the
  ledger (``tests/reports/reconcile.py``).

Each example runs in a savepoint rolled back afterwards, so the next one meets an empty world.
"""

from __future__ import annotations

import statistics
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from core.db import utcnow
from core.extensions import db, limiter
from grids.models import Area, AreaLevel
from patrols.models import Patrol, PresenceStatus
from patrols.reports.models import Report, ReportEvent
from reports.participation.schemas import StarLevelsSchema
from reports.rollups import cli as rollups
from rewards.awarding import service as awarding
from rewards.badges.models import VolunteerBadge
from rewards.badges.service import STAR_HOURS
from rewards.ledger import service as ledger
from rewards.ledger.models import LedgerReason
from shifts.models import Shift
from tests import factories
from tests.reports.reconcile import ADDITIVE, assert_children_sum, assert_reconciles, assert_series_sums
from volunteers.models import StatusChange, Volunteer

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = 24 * 60
OUTCOMES = (
    "verified",
    "approved",
    "absent",
    "late_withdrawn",
    "needs_review",
    "rejected",
    "rejected_after_counting",
    "review_after_counting",
    "promoted_backup",
)
CREDITS = ("served_shift", "manual_hours", "report_bonus", "streak_bonus", "redemption_refund", "adjustment")
DEBITS = ("reversal", "redemption", "expiry", "adjustment")


def _month_start() -> datetime:
    """The first of the month three months back, in Shanghai (every shift of the world has ended)."""
    today = utcnow().astimezone(SHANGHAI).date()
    index = today.year * 12 + today.month - 1 - 3
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=SHANGHAI)


def _month_days(start: datetime) -> int:
    following = (start + timedelta(days=32)).replace(day=1)
    return (following - start).days


# --- the plan of a world ---------------------------------------------------------------------------

#: Minutes from the month's start: near its first or last midnight, or anywhere.
_EDGE_MINUTES = st.sampled_from([-150, -120, -60, -30, 0, 30, 60, 90, 120, 150])
_moment = st.one_of(
    _EDGE_MINUTES.map(lambda m: ("start", m)),
    _EDGE_MINUTES.map(lambda m: ("end", m)),
    st.integers(-2 * DAY // 15, 32 * DAY // 15).map(lambda q: ("start", q * 15)),
)


@dataclass
class Plan:
    grids_per_community: list[list[int]]  # per sub-district, per community: its grids' count
    urumqi: list[bool]  # per grid
    volunteers: list[tuple[int, str, int, str]]  # home grid, kind, created (days from start), status story
    shifts: list[tuple[int, tuple[str, int], int, int, bool]]  # grid, start, minutes, places, cancelled
    places: list[list[tuple[int, str, int]]]  # per shift: volunteer, outcome, served share (%)
    manual: list[tuple[int, int, int, int]]  # volunteer, grid, day from start, minutes
    reports: list[tuple[int, int, tuple[str, int], str, int | None, int | None]]
    entries: list[tuple[int, bool, int, int, tuple[str, int]]]  # volunteer, credit?, reason pick, amount, when
    stars: list[tuple[int, int, tuple[str, int]]]  # volunteer, level, when


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    layout = [draw(st.lists(st.integers(1, 2), min_size=1, max_size=2)) for _ in range(2)]
    grid_count = sum(sum(community) for community in layout)
    grid = st.integers(0, grid_count - 1)
    volunteers = draw(
        st.lists(
            st.tuples(
                grid,
                st.sampled_from(["volunteer_police", "alley_steward"]),
                st.integers(-40, 29),
                st.sampled_from(["pending", "active", "suspended", "approved_in_month"]),
            ),
            min_size=2,
            max_size=6,
        )
    )
    person = st.integers(0, len(volunteers) - 1)
    one_in_ten = st.integers(0, 9).map(lambda n: n == 0)
    shifts = draw(
        st.lists(
            st.tuples(grid, _moment, st.sampled_from([60, 120, 240, 360]), st.integers(1, 3), one_in_ten),
            min_size=1,
            max_size=8,
        )
    )
    places = [
        draw(st.lists(st.tuples(person, st.sampled_from(OUTCOMES), st.integers(1, 100)), max_size=3)) for _ in shifts
    ]
    return Plan(
        grids_per_community=layout,
        urumqi=[draw(st.integers(0, 2)) == 0 for _ in range(grid_count)],
        volunteers=volunteers,
        shifts=shifts,
        places=places,
        manual=draw(st.lists(st.tuples(person, grid, st.integers(-2, 31), st.integers(15, 240)), max_size=3)),
        reports=draw(
            st.lists(
                st.tuples(
                    person,
                    grid,
                    _moment,
                    st.sampled_from(["red", "orange", "yellow", "green"]),
                    st.one_of(st.none(), st.integers(1, 600)),
                    st.one_of(st.none(), st.integers(1, 2000)),
                ),
                max_size=4,
            )
        ),
        entries=draw(
            st.lists(st.tuples(person, st.booleans(), st.integers(0, 5), st.integers(1, 50), _moment), max_size=8)
        ),
        stars=draw(st.lists(st.tuples(person, st.integers(1, 5), _moment), max_size=3)),
    )


# --- building it through the factories and the services ---------------------------------------------


@dataclass
class World:
    district: Area
    areas: list[Area]  # every area below the district, parents before children
    staff: Any


def _at(start: datetime, moment: tuple[str, int]) -> datetime:
    anchor, minutes = moment
    base = start if anchor == "start" else start + timedelta(days=_month_days(start))
    return (base + timedelta(minutes=minutes)).astimezone(UTC)


def build(plan: Plan, start: datetime) -> World:
    district = factories.make_area(AreaLevel.DISTRICT, factories.make_area(AreaLevel.CITY))
    areas: list[Area] = []
    grids: list[Area] = []
    for sub_index, communities in enumerate(plan.grids_per_community):
        subdistrict = factories.make_area(AreaLevel.SUBDISTRICT, district)
        areas.append(subdistrict)
        for community_grids in communities:
            community = factories.make_area(AreaLevel.COMMUNITY, subdistrict)
            areas.append(community)
            for _ in range(community_grids):
                zone = "Asia/Urumqi" if plan.urumqi[len(grids)] else "Asia/Shanghai"
                square = factories.square(109.8 + 0.02 * len(grids), 40.6 + 0.02 * sub_index)
                grid = factories.make_area(AreaLevel.GRID, community, boundary=square, timezone=zone)
                grids.append(grid)
                areas.append(grid)
    staff = factories.make_user("staff", district)
    volunteers = [
        _volunteer(grids[g], kind, start + timedelta(days=days), story) for g, kind, days, story in plan.volunteers
    ]
    for (g, moment, minutes, places, cancelled), shift_places in zip(plan.shifts, plan.places, strict=True):
        shift = factories.make_shift(grids[g], max_headcount=places, backup_slots=1)
        shift.starts_at = _at(start, moment)
        shift.ends_at = shift.starts_at + timedelta(minutes=minutes)
        if cancelled:
            shift.status = "cancelled"
            continue
        taken: set[int] = set()
        for person, outcome, share in shift_places:
            if person in taken:
                continue
            taken.add(person)
            _take_place(shift, volunteers[person], outcome, max(1, minutes * share // 100))
    for person, g, day, minutes in plan.manual:
        awarding.award_manual_hours(
            volunteers[person].id,
            grids[g],
            (start + timedelta(days=day)).date(),
            minutes,
            note="by hand",
            actor_id=staff.id,
        )
    for person, g, moment, level, taken_up, resolved in plan.reports:
        _report(grids[g], volunteers[person], level, _at(start, moment), taken_up, resolved)
    _ledger(plan, volunteers, start)
    granted: set[tuple[int, int]] = set()
    for person, level, moment in plan.stars:
        if (person, level) not in granted:
            granted.add((person, level))
            db.session.add(
                VolunteerBadge(volunteer_id=volunteers[person].id, badge=f"star_{level}", earned_at=_at(start, moment))
            )
    db.session.flush()
    return World(district, areas, staff)


def _volunteer(grid: Area, kind: str, created: datetime, story: str) -> Volunteer:
    status = {"approved_in_month": "active"}.get(story, story)
    volunteer = factories.make_volunteer(grid, status=status, kind_code=kind, real_name=f"志愿者{uuid.uuid4().hex[:6]}")
    volunteer.created_at = created.astimezone(UTC)
    changes: list[tuple[str | None, str, datetime]] = [(None, "pending", created)]
    if story != "pending":
        changes.append(("pending", "active", created + timedelta(days=1 if story != "approved_in_month" else 3)))
    if story == "suspended":
        changes.append(("active", "suspended", created + timedelta(days=20)))
    for before, after, at in changes:
        db.session.add(
            StatusChange(volunteer_id=volunteer.id, from_status=before, to_status=after, at=at.astimezone(UTC))
        )
    db.session.flush()
    return volunteer


def _take_place(shift: Shift, volunteer: Volunteer, outcome: str, minutes: int) -> None:
    """A place with the given outcome, its patrol, and the service record the awarding services
    write for it (voided again for a presence rejected after it counted)."""
    holds = outcome not in ("absent", "late_withdrawn")
    if holds and shift.primary_count >= shift.max_headcount:
        return
    if outcome == "promoted_backup":
        assignment = factories.make_assignment(shift, volunteer, role="backup")
        assignment.role = "primary"  # as shifts.filling.promotion does for a no-show's place
        shift.backup_count, shift.primary_count = shift.backup_count - 1, shift.primary_count + 1
    else:
        status = {"absent": "absent", "late_withdrawn": "withdrawn"}.get(outcome, "assigned")
        assignment = factories.make_assignment(shift, volunteer, status=status)
        assignment.late_withdrawal = outcome == "late_withdrawn"
    db.session.flush()
    if outcome in ("absent", "late_withdrawn"):
        return
    counted_once = outcome in (
        "verified",
        "approved",
        "promoted_backup",
        "rejected_after_counting",
        "review_after_counting",
    )
    presence = {
        "promoted_backup": "verified",
        "rejected_after_counting": "needs_review",
        "review_after_counting": "needs_review",
    }.get(outcome, outcome)
    patrol = Patrol(
        assignment_id=assignment.id,
        volunteer_id=volunteer.id,
        shift_id=shift.id,
        presence_status=presence,
        served_minutes=minutes if counted_once else None,
    )
    db.session.add(patrol)
    db.session.flush()
    if counted_once:
        awarding.award_served_shift(patrol.id, volunteer.id, shift.id, minutes)
    if outcome == "rejected_after_counting":
        patrol.presence_status = PresenceStatus.REJECTED
        db.session.flush()
        awarding.revoke_patrol(patrol.id, volunteer.id, None, "outside the grid")


def _report(
    grid: Area, volunteer: Volunteer, level: str, received: datetime, taken_up: int | None, resolved: int | None
) -> None:
    report = Report(
        client_id=str(uuid.uuid4()),
        volunteer_id=volunteer.id,
        grid_id=grid.id,
        category="other",
        level=level,
        description="情况",
        lat=40.65,
        lon=109.84,
        device_at=received,
        received_at=received,
    )
    db.session.add(report)
    db.session.flush()
    db.session.add(ReportEvent(report_id=report.id, action="filed", to_status="open", created_at=received))
    if taken_up is not None:
        db.session.add(
            ReportEvent(
                report_id=report.id,
                action="acknowledged",
                to_status="acknowledged",
                created_at=received + timedelta(minutes=taken_up),
            )
        )
        if resolved is not None:
            at = received + timedelta(minutes=taken_up + resolved)
            db.session.add(ReportEvent(report_id=report.id, action="resolved", to_status="resolved", created_at=at))
            report.status, report.resolved_at = "resolved", at
    db.session.flush()


def _ledger(plan: Plan, volunteers: list[Volunteer], start: datetime) -> None:
    """Entries appended by the ledger service, then dated when they happened; a debit larger than
    the balance is left out (the service would refuse it)."""
    balances = [0] * len(volunteers)
    for person, credit, pick, amount, moment in plan.entries:
        reasons = CREDITS if credit else DEBITS
        if not credit and amount > balances[person]:
            continue
        signed = amount if credit else -amount
        entry = ledger.append(volunteers[person].id, signed, reasons[pick % len(reasons)], "test", uuid.uuid4().hex)
        assert entry is not None
        entry.created_at = _at(start, moment)
        balances[person] += signed
    db.session.flush()


# --- the checks -----------------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _assert_rates(figures: dict[str, Any]) -> None:
    shifts, presence = figures["shifts"], figures["presence"]
    if shifts is not None:
        assert shifts["fill_rate"] == _rate(shifts["places_filled"], shifts["places_planned"])
    assert presence["attendance_rate"] == _rate(presence["served"], presence["assignments"])
    assert figures["points"]["star_levels"] == {
        f"star_{n}": figures["points"]["badges"].get(f"star_{n}", 0) for n in range(1, 6)
    }


def _assert_medians(body: dict[str, Any], area: Area) -> None:
    """The medians of the area's reports, from the rows."""
    starts_at, ends_at = (datetime.fromisoformat(body["period"][key]) for key in ("starts_at", "ends_at"))
    to_take_up: list[float] = []
    to_resolve: list[float] = []
    for report in db.session.scalars(
        sa.select(Report).join(Area, Area.id == Report.grid_id).where(Area.path.startswith(area.path))
    ):
        if not starts_at <= report.received_at < ends_at:
            continue
        steps = [
            event.created_at
            for event in db.session.scalars(
                sa.select(ReportEvent).where(ReportEvent.report_id == report.id, ReportEvent.action != "filed")
            )
        ]
        if steps:
            to_take_up.append((min(steps) - report.received_at).total_seconds() / 60)
        if report.resolved_at is not None:
            to_resolve.append((report.resolved_at - report.received_at).total_seconds() / 60)
    reports = body["figures"]["reports"]
    assert reports["median_minutes_to_take_up"] == (round(statistics.median(to_take_up), 1) if to_take_up else None)
    assert reports["median_minutes_to_resolve"] == (round(statistics.median(to_resolve), 1) if to_resolve else None)


@contextmanager
def _undone() -> Iterator[None]:
    """A savepoint rolled back afterwards: the next example meets an empty world."""
    savepoint = db.session.begin_nested()
    db.session.connection()
    try:
        yield
    finally:
        savepoint.rollback()
        db.session.expire_all()
        limiter.reset()


#: A world with every case below, run first (``@example``), so that each check meets a non-zero
#: figure whatever the random worlds happen to hold: a served place and one back in review after it
#: counted, a presence rejected after it counted, hours by hand, a report taken up and resolved,
#: ledger entries, a star, and a shift of the Urumqi grid at 22:30 on the month's last day there
#: (00:30 on the 1st in Shanghai: the district's next month, the grid's own this month).
WITNESS = Plan(
    grids_per_community=[[1], [1]],
    urumqi=[False, True],
    volunteers=[(0, "volunteer_police", -10, "active"), (1, "alley_steward", -10, "approved_in_month")],
    shifts=[
        (0, ("start", 10 * 60), 120, 2, False),
        (1, ("end", 30), 120, 1, False),
        (0, ("start", 5 * DAY), 120, 1, False),
    ],
    places=[
        [(0, "verified", 100), (1, "review_after_counting", 50)],
        [(1, "verified", 100)],
        [(0, "rejected_after_counting", 100)],
    ],
    manual=[(0, 0, 3, 60)],
    reports=[(0, 0, ("start", 12 * 60), "red", 30, 60)],
    entries=[(0, True, 0, 20, ("start", 13 * 60)), (0, False, 1, 5, ("start", 14 * 60))],
    stars=[(1, 1, ("end", 60))],
)

#: Each must be met in some example, or the worlds are too tame to prove anything.
CASES = (
    "served hours",
    "held in review",
    "hours by hand",
    "ledger",
    "star level",
    "reports taken up",
    "a grid read in another zone differs",
)


def test_random_worlds_reconcile_at_every_level(client: FlaskClient) -> None:
    start = _month_start()
    value = f"{start.year:04d}-{start.month:02d}"
    seen: Counter[str] = Counter()

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(plan=plans())
    @example(plan=WITNESS)
    def reconciles(plan: Plan) -> None:
        with _undone():
            world = build(plan, start)
            headers = factories.headers_for(world.staff)

            def report(area: Area, **extra: str) -> dict[str, Any]:
                response = client.get(
                    "/api/v1/reports/participation",
                    query_string={"area_id": area.id, "period": "month", "value": value, **extra},
                    headers=headers,
                )
                assert response.status_code == 200, response.get_json()
                return response.get_json()

            bodies = {world.district.id: report(world.district, series="day")}
            for area in world.areas:
                bodies[area.id] = report(area)
            for area in [world.district, *world.areas]:
                body = bodies[area.id]
                grid = area.level == AreaLevel.GRID
                # A grid's children are volunteers, whose rows have no shifts.
                assert_children_sum(body, tuple(section for section in ADDITIVE if not (grid and section == "shifts")))
                rows = assert_reconciles(body, area)
                figures = body["figures"]
                seen["served hours"] += figures["presence"]["served_minutes"] > 0
                seen["held in review"] += rows.held_in_review_minutes > 0
                seen["hours by hand"] += rows.manual_record_minutes > 0
                seen["ledger"] += rows.ledger_sum != 0
                seen["star level"] += any(figures["points"]["star_levels"].values())
                seen["reports taken up"] += figures["reports"]["taken_up"] > 0
                _assert_medians(body, area)
                _assert_rates(body["figures"])
                for child in body["children"]:
                    _assert_rates(child["figures"])
                    own = None if child["level"] == "volunteer" else bodies[child["id"]]
                    if own is None:
                        continue
                    if own["period"]["time_zone"] == body["period"]["time_zone"]:
                        assert child["figures"] == own["figures"], (area.name, child["name"])
                    else:
                        seen["a grid read in another zone differs"] += child["figures"] != own["figures"]
            assert_series_sums(bodies[world.district.id])
            assert_series_sums(report(world.district, series="week"))
            # The roll-ups the area reports read hold exactly what the rows add up to.
            assert rollups.check(area_id=world.district.id) == []

    reconciles()
    assert all(seen[case] for case in CASES), seen


def test_the_worlds_use_every_ledger_reason_and_the_schema_every_star_level() -> None:
    """A new ledger reason must fall in one of the report's point figures (or the ledger would not
    reconcile) and be drawn here; a new star level must reach the report's schema."""
    assert set(CREDITS) | set(DEBITS) == set(LedgerReason)
    assert list(StarLevelsSchema().fields) == list(STAR_HOURS)
