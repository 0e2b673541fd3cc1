"""The demo city's recent past, so every console page has something on it (``flask seed-demo``).

Five weeks of evening patrols up to yesterday in every grid, each grid patrolled on its own share of
the evenings (``PATROL_RATES``: some nearly every day, some rarely, a few never), against a weekly
target of two volunteers two hours a day, so the coverage report ranks good and bad grids. Each
place ends as a served patrol (check-in and check-out inside the grid, presence verified), a no-show
(``absent``) or, in the last days of the staff's district, a presence flagged for review; a few
older flagged ones were approved or rejected. Registration and vetting dates move into the past
too, so volunteers served after their approval and the pending ones have waited a few days.

Past rows are inserted directly (the services take phone events at "now" only), keeping every
invariant the models declare: ``primary_count`` is the primaries still assigned, a no-show's place
is released, served minutes are the presence rules' own (``served_minutes``). Points: what rewards'
``award_served_shift`` writes for each patrol, written in bulk (calling it 700 times took half a
minute), then streaks, badges and leaderboard totals through rewards' own functions. Reports, the
next two days' shifts and the roll-ups: ``demo_incidents``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from shapely.geometry import shape

from accounts.models import User
from core.auth import Caller, Role
from core.extensions import db
from grids.models import Area
from patrols.models import Patrol, PresenceStatus
from patrols.presence.rules import OUTSIDE_GRID, POOR_ACCURACY, late_minutes, served_minutes, served_until
from shifts.models import Assignment, AssignmentRole, AssignmentSource, AssignmentStatus, Shift, ShiftStatus
from volunteers.models import AvailabilitySlot, StatusChange, Volunteer, VolunteerStatus

#: Days of history before today.
HISTORY_DAYS = 35
#: The share of past evenings each grid was patrolled, in the order the grids are seeded
#: (东站 ×4, 北梁新区南 ×3, 财神庙 ×3, 西河楞 ×3 in 东河区; 友谊 ×4, 团结 ×3 in 昆都仑区).
PATROL_RATES = (
    0.95, 0.85, 0.5, 0.15,
    0.8, 0.4, 0.0,
    0.7, 0.25, 0.1,
    0.9, 0.0, 0.3,
    0.85, 0.5, 0.2, 0.0,
    0.6, 0.3, 0.1,
)
#: Two volunteers two hours every day: what a grid's organiser wants patrolled a week.
WEEKLY_TARGET_MINUTES = 7 * 2 * 120
NO_SHOW_RATE = 0.07
#: Presence flagged in the staff's district in these last days still waits for review.
REVIEW_DAYS = 4
PATROL_TEXT = {
    "title": "夜间巡逻",
    "instructions": "两人一组，沿主街和背街小巷巡查，发现隐患及时上报。",
    "min_headcount": 2,
    "max_headcount": 3,
    "backup_slots": 0,
    "required_kinds": [],
}


@dataclass
class DemoCity:
    """What the seed made, as the history needs it."""

    city: Area
    districts: list[Area]
    communities: list[Area]
    grids: list[Area]
    admin: User
    staff: User
    organiser: User
    rng: random.Random
    now: datetime
    #: Filled by :func:`seed_history`: each served patrol with its shift, oldest first.
    served: list[tuple[Patrol, Shift]] = field(default_factory=list)
    centres: dict[int, tuple[float, float]] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.city.timezone)

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        """A local wall-clock time of the city, as an aware datetime."""
        return datetime.combine(day, time(hour, minute), tzinfo=self.zone)

    def caller(self, user: User) -> Caller:
        area = db.session.get_one(Area, user.area_id)
        return Caller(user_id=user.id, role=Role(user.role), area_path=area.path, session_id="seed-demo")

    def manager_of(self, grid: Area) -> User:
        """Who plans and handles things in a grid: its community's organiser, else the staff of
        the first district, else the admin."""
        if grid.path.startswith(self.communities[0].path):
            return self.organiser
        return self.staff if grid.path.startswith(self.districts[0].path) else self.admin

    def client_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def position(self, grid: Area) -> tuple[float, float]:
        """A point inside the grid, a few metres from its centre (lat, lon)."""
        if grid.id not in self.centres:
            point = shape(grid.boundary or {}).representative_point()
            self.centres[grid.id] = (point.y, point.x)
        lat, lon = self.centres[grid.id]
        return round(lat + self.rng.uniform(-0.0004, 0.0004), 6), round(lon + self.rng.uniform(-0.0006, 0.0006), 6)


@dataclass
class Member:
    """A volunteer as the history places them: who may serve when."""

    id: int
    grid_id: int
    weekdays: set[int]
    serves_from: datetime | None  # approved; None: never active


def seed_history(demo: DemoCity) -> None:
    """Everything in the module docstring, in one pass (the caller commits, after
    ``demo_incidents.rebuild_rollups``)."""
    _set_targets(demo)
    members = _backdate_volunteers(demo)
    _past_patrols(demo, members)


def _set_targets(demo: DemoCity) -> None:
    """Every community's grids: the weekly target, and six active volunteer police each."""
    from grids.quotas import set_quotas

    caller = demo.caller(demo.admin)
    for community in demo.communities:
        set_quotas(caller, community, {"weekly_target_minutes": WEEKLY_TARGET_MINUTES,
                                       "quotas": [{"kind": "volunteer_police", "min_active": 6}]})


def _backdate_volunteers(demo: DemoCity) -> dict[int, list[Member]]:
    """Registration and vetting in the past; returns the volunteers by home grid."""
    rng, now = demo.rng, demo.now
    weekdays: dict[int, set[int]] = {}
    for volunteer_id, weekday in db.session.execute(sa.select(AvailabilitySlot.volunteer_id, AvailabilitySlot.weekday)):
        weekdays.setdefault(volunteer_id, set()).add(weekday)
    rows = db.session.execute(
        sa.select(Volunteer.id, Volunteer.user_id, Volunteer.home_grid_id, Volunteer.status).order_by(Volunteer.id)
    ).all()
    volunteers, users = [], []
    changes: dict[bool, list[dict[str, object]]] = {True: [], False: []}  # registration, decision
    members: dict[int, list[Member]] = {}
    for index, (volunteer_id, user_id, grid_id, status) in enumerate(rows):
        decided: datetime | None = None
        if status == VolunteerStatus.PENDING:
            registered = now - timedelta(days=rng.uniform(0.5, 20))  # waiting for vetting
        elif status == VolunteerStatus.ACTIVE and index and rng.random() < 0.08:
            registered = now - timedelta(days=rng.uniform(20, 30))  # approved this month or last
            decided = registered + timedelta(days=rng.uniform(3, 9))
        else:
            registered = now - timedelta(days=rng.uniform(60, 400))
            decided = registered + timedelta(days=rng.uniform(1, 10))
        volunteers.append({"b_id": volunteer_id, "b_at": registered, "b_updated": decided or registered})
        users.append({"b_id": user_id, "b_at": registered})
        changes[True].append({"b_id": volunteer_id, "b_at": registered})
        if decided is not None:
            changes[False].append({"b_id": volunteer_id, "b_at": decided})
        serves = decided if status == VolunteerStatus.ACTIVE else None
        members.setdefault(grid_id, []).append(Member(volunteer_id, grid_id, weekdays.get(volunteer_id, set()), serves))
    v, u, c = Volunteer.__table__.c, User.__table__.c, StatusChange.__table__.c
    bind = sa.bindparam
    db.session.execute(
        sa.update(Volunteer.__table__).where(v.id == bind("b_id"))
        .values(created_at=bind("b_at"), consented_at=bind("b_at"), updated_at=bind("b_updated")),
        volunteers,
    )
    db.session.execute(sa.update(User.__table__).where(u.id == bind("b_id")).values(created_at=bind("b_at")), users)
    for first in (True, False):
        db.session.execute(
            sa.update(StatusChange.__table__)
            .where(c.volunteer_id == bind("b_id"), c.from_status.is_(None) if first else c.from_status.is_not(None))
            .values(at=bind("b_at")),
            changes[first],
        )
    db.session.expire_all()
    return members


def _past_patrols(demo: DemoCity, members: dict[int, list[Member]]) -> None:
    rng, today = demo.rng, demo.today
    planned: list[tuple[Shift, list[Assignment], list[Patrol]]] = []
    for offset in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=offset)
        for grid, rate in zip(demo.grids, PATROL_RATES, strict=True):
            if rng.random() >= rate:
                continue
            starts_at = demo.at(day, 19)
            pool = [m for m in members.get(grid.id, []) if m.serves_from is not None and m.serves_from < starts_at]
            # Those free that weekday first, as an organiser would ask them.
            pool.sort(key=lambda m: (day.weekday() not in m.weekdays, rng.random()))
            wanted = rng.choice((2, 3, 3)) if rate >= 0.3 else rng.choice((1, 2, 2))
            people = pool[:wanted]
            if people:
                planned.append(_patrol_evening(demo, grid, starts_at, people, offset))
    # Built as transient objects (the rules read them), inserted in bulk: a flush of the unit of
    # work took seconds for these few thousand rows.
    shifts = [shift for shift, _, _ in planned]
    _insert(Shift, shifts)
    for shift, assignments, _ in planned:
        for assignment in assignments:
            assignment.shift_id = shift.id
    _insert(Assignment, [assignment for _, assignments, _ in planned for assignment in assignments])
    patrols = [(patrol, shift) for shift, _, shift_patrols in planned for patrol in shift_patrols]
    for patrol, shift in patrols:
        patrol.shift_id, patrol.assignment_id = shift.id, patrol.assignment.id
    _insert(Patrol, [patrol for patrol, _ in patrols])
    demo.served += [(patrol, shift) for patrol, shift in patrols if patrol.served_minutes is not None]
    _award_points(demo)


def _insert(model: type[Any], objects: list[Any]) -> None:
    """INSERT the transient objects' columns in one statement each batch, and give them their ids."""
    if not objects:
        return
    columns = [attr.key for attr in sa.inspect(model).column_attrs if attr.key != "id"]
    rows = [{key: getattr(obj, key) for key in columns} for obj in objects]
    ids = db.session.scalars(sa.insert(model).returning(model.id, sort_by_parameter_order=True), rows).all()
    for obj, new_id in zip(objects, ids, strict=True):
        obj.id = new_id


def _patrol_evening(
    demo: DemoCity, grid: Area, starts_at: datetime, people: list[Member], days_ago: int
) -> tuple[Shift, list[Assignment], list[Patrol]]:
    """One evening's shift in a grid, its places and the patrols of those who came (not yet flushed)."""
    rng = demo.rng
    manager = demo.manager_of(grid)
    ends_at = starts_at + timedelta(hours=2)
    planned_at = starts_at - timedelta(days=rng.randint(2, 6), hours=rng.randint(1, 9))
    shift = Shift(
        grid_id=grid.id, timezone=grid.timezone, starts_at=starts_at, ends_at=ends_at,
        status=ShiftStatus.SCHEDULED, detached=False, meeting_point=f"{grid.name}党群服务站",
        primary_count=0, backup_count=0, queue_seq=len(people), created_by=manager.id,
        created_at=planned_at, updated_at=planned_at, **PATROL_TEXT,
    )
    assignments, patrols = [], []
    in_district = grid.path.startswith(demo.districts[0].path)
    for seq, member in enumerate(people, start=1):
        placed_at = planned_at + timedelta(minutes=10 * seq)
        assignment = Assignment(
            volunteer_id=member.id, status=AssignmentStatus.ASSIGNED, role=AssignmentRole.PRIMARY,
            source=AssignmentSource.ORGANISER, queue_seq=seq, late_withdrawal=False, created_by=manager.id,
            created_at=placed_at, updated_at=placed_at,
        )
        assignments.append(assignment)
        if rng.random() < NO_SHOW_RATE:
            # What patrols' no-show task leaves: the place ended as absent and given back.
            marked = starts_at + timedelta(minutes=15)
            assignment.status, assignment.ended_at, assignment.end_reason = AssignmentStatus.ABSENT, marked, "No check-in."
            assignment.updated_at = marked
            continue
        shift.primary_count += 1
        review = None
        if in_district and days_ago <= REVIEW_DAYS and rng.random() < 0.2:
            review = PresenceStatus.NEEDS_REVIEW
        elif in_district and rng.random() < 0.04:
            review = rng.choice((PresenceStatus.APPROVED, PresenceStatus.REJECTED))
        patrols.append(_patrol(demo, grid, shift, assignment, review))
    return shift, assignments, patrols


def _patrol(
    demo: DemoCity, grid: Area, shift: Shift, assignment: Assignment, review: PresenceStatus | None
) -> Patrol:
    """A check-in and a check-out as a phone sends them; minutes are settled after the flush."""
    rng = demo.rng
    late = rng.random() < 0.1
    arrived = shift.starts_at + timedelta(minutes=rng.randint(5, 35) if late else rng.randint(-25, 2))
    left = min(shift.ends_at + timedelta(minutes=rng.randint(-15, 20)), served_until(shift))
    lat, lon = demo.position(grid)
    accuracy = float(rng.randint(6, 30))
    flags: list[str] = []
    if review is not None:
        # Far outside the grid (a stale fix), or a fix too vague to place it.
        if rng.random() < 0.5:
            flags, lat = [OUTSIDE_GRID], round(lat - 0.004, 6)
        else:
            flags, accuracy = [POOR_ACCURACY], float(rng.randint(150, 400))
    auto_closed = review is None and rng.random() < 0.05  # forgot to check out: closed at the end
    patrol = Patrol(
        assignment=assignment, volunteer_id=assignment.volunteer_id,
        check_in_client_id=demo.client_id(), check_in_device_at=arrived,
        check_in_received_at=arrived + timedelta(seconds=rng.randint(1, 90)),
        check_in_lat=lat, check_in_lon=lon, check_in_accuracy_m=accuracy, check_in_flags=flags,
        presence_status=(review or PresenceStatus.VERIFIED).value, late_minutes=late_minutes(shift, arrived),
        check_out_flags=[], auto_closed=auto_closed, distance_m=0.0, track_point_count=0,
        created_at=arrived, updated_at=left,
    )
    if auto_closed:
        patrol.check_out_received_at = served_until(shift)
    else:
        out_lat, out_lon = demo.position(grid)
        patrol.check_out_client_id = demo.client_id()
        patrol.check_out_device_at, patrol.check_out_received_at = left, left + timedelta(seconds=rng.randint(1, 60))
        patrol.check_out_lat, patrol.check_out_lon, patrol.check_out_accuracy_m = out_lat, out_lon, float(rng.randint(6, 30))
    if review in (None, PresenceStatus.APPROVED):
        patrol.served_minutes = served_minutes(patrol, shift)  # settled as presence.settle would
    if review in (PresenceStatus.APPROVED, PresenceStatus.REJECTED):
        patrol.reviewed_by = demo.manager_of(grid).id
        patrol.reviewed_at = shift.ends_at + timedelta(hours=rng.randint(12, 30))
        patrol.review_reason = "电话核实，确在岗" if review == PresenceStatus.APPROVED else "当晚未在网格内巡逻"
    return patrol


def _award_points(demo: DemoCity) -> None:
    """What rewards' ``award_served_shift`` writes for each served patrol, as rows in bulk (one
    call per patrol took half a minute): a service record and the hour points under the rule in
    force at the shift's start, within the daily cap, dated when the patrol was settled; the
    balances beside them. Then through rewards' own functions: the streak bonuses of the days that
    complete one, the badges, and the leaderboard totals recounted from the rows."""
    from rewards.awarding import service as awarding
    from rewards.awarding.models import ServiceRecord
    from rewards.badges.service import check_service_badges
    from rewards.leaderboards import totals
    from rewards.ledger.models import LedgerEntry, LedgerReason, PointBalance
    from rewards.rules import service as rules

    rule = rules.rule_at(demo.city.id, demo.now - timedelta(days=HISTORY_DAYS))
    if rule is None:
        return
    records: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    balances: dict[int, int] = {}
    earned: dict[tuple[int, date], int] = {}
    days: dict[int, list[tuple[date, datetime]]] = {}
    for patrol, shift in demo.served:
        minutes, volunteer_id = patrol.served_minutes or 0, patrol.volunteer_id
        if minutes <= 0:
            continue
        served_on = shift.starts_at.astimezone(demo.zone).date()
        settled = patrol.reviewed_at or patrol.check_out_received_at or shift.ends_at
        records.append({"volunteer_id": volunteer_id, "source_type": awarding.SOURCE_PATROL, "source_id": str(patrol.id),
                        "minutes": minutes, "served_on": served_on, "grid_id": shift.grid_id, "created_at": settled})
        days.setdefault(volunteer_id, []).append((served_on, shift.starts_at))
        cap = rule.daily_cap if rule.daily_cap is not None else 10**9
        points = max(0, min(rules.points_for_minutes(rule, minutes), cap - earned.get((volunteer_id, served_on), 0)))
        if points:
            earned[(volunteer_id, served_on)] = earned.get((volunteer_id, served_on), 0) + points
            balances[volunteer_id] = balances.get(volunteer_id, 0) + points
            entries.append({
                "volunteer_id": volunteer_id, "amount": points, "reason": LedgerReason.SERVED_SHIFT.value,
                "source_type": awarding.SOURCE_PATROL, "source_id": str(patrol.id), "rule_version": rule.version,
                "expires_at": rules.expires_at(rule, shift.starts_at, demo.city.timezone),
                "note": f"{minutes} min served", "created_at": settled,
            })
    if records:
        db.session.execute(sa.insert(ServiceRecord), records)
    if entries:
        db.session.execute(sa.insert(LedgerEntry), entries)
        db.session.execute(sa.insert(PointBalance), [
            {"volunteer_id": v, "balance": b, "updated_at": demo.now} for v, b in sorted(balances.items())
        ])
    streak = rule.streak_days or 0
    for volunteer_id, served in sorted(days.items()):
        dates = {day for day, _ in served}
        for day, starts_at in served:
            if streak and all(day - timedelta(days=n) in dates for n in range(streak)):
                awarding.pay_streak(rule, volunteer_id, day, starts_at, demo.city.timezone)
        check_service_badges(volunteer_id, patrol=True)
    totals.rebuild(days)

