"""``flask seed-demo``: a Baotou-like city for the embedded default, seeded once.

Two districts, three sub-districts, six communities and twenty grids with real-looking polygons around
40.65N 109.84E; one login per role; about 200 volunteers in every status. Passwords are generated on
the first run and kept in ``instance/demo_logins.json`` so later runs can print them again.
Every run also gives the demo volunteer a shift that opens for check-in at once (unless they hold one
already), so README's first requests work on the demo data without acting as an organiser.
"""

from __future__ import annotations

import json
import math
import random
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click
import sqlalchemy as sa
from flask import current_app
from shapely.geometry import shape

from accounts.models import User
from accounts.passwords import hash_password
from core import crypto
from core.db import utcnow
from core.errors import ApiError
from core.extensions import db
from core.geo import bounds
from demo_history import HISTORY_DAYS, DemoCity, seed_history
from demo_incidents import fold_rollups, rebuild_rollups, seed_incidents
from grids.models import Area, AreaLevel
from patrols.privacy.models import LocationConsent
from volunteers.models import (
    AvailabilitySlot,
    StatusChange,
    Volunteer,
    VolunteerKind,
    VolunteerSkill,
    VolunteerStatus,
)

CITY_CODE = "150200"
ORIGIN_LON, ORIGIN_LAT = 109.820, 40.630
GRID_WIDTH, GRID_HEIGHT = 0.0045, 0.0032  # about 380 m × 355 m: an urban grid of ~350 households
DEMO_VOLUNTEER_PHONE = "+8613800000000"  # the first of the 200, home grid 东站社区第1网格
DEMO_ORGANISER_PHONE = "+8613900000003"  # 东站社区's organiser, who plans and assigns the demo shift
#: The demo shift starts this long after `make run`: check-in (CHECK_IN_OPENS_MINUTES, 30, before
#: the start) is open at once, and the shift has not begun, so checking in is neither early nor late.
DEMO_SHIFT_STARTS_IN = timedelta(minutes=25)
DEMO_SHIFT_LENGTH = timedelta(hours=2)

#: district → sub-districts → communities → number of grids (20 in all)
LAYOUT: list[tuple[str, str, list[tuple[str, list[tuple[str, int]]]]]] = [
    ("150202", "东河区", [
        ("和平路街道", [("东站社区", 4), ("北梁新区南社区", 3)]),
        ("西脑包街道", [("财神庙社区", 3), ("西河楞社区", 3)]),
    ]),
    ("150203", "昆都仑区", [
        ("少先路街道", [("友谊社区", 4), ("团结社区", 3)]),
    ]),
]

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰海燕波斌辉鹏飞宇浩然晨阳巴特尔乌兰其木格"
SKILLS = ["急救", "驾驶", "蒙古语", "调解", "消防", "摄影", "无人机", "心理疏导"]
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def _national_id(rng: random.Random, region: str) -> str:
    body = f"{region}{rng.randint(1960, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    total = sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True))
    return body + "10X98765432"[total % 11]


def _grid_polygon(column: int, row: int) -> dict[str, Any]:
    """A lattice cell with its inner corners nudged, so neighbours still share their edges."""

    def corner(c: int, r: int) -> list[float]:
        jitter = random.Random(c * 1000 + r)  # same corner → same nudge for every grid touching it
        dx = jitter.uniform(-0.0006, 0.0006) if c > 0 else 0.0
        dy = jitter.uniform(-0.0004, 0.0004) if r > 0 else 0.0
        return [round(ORIGIN_LON + c * GRID_WIDTH + dx, 6), round(ORIGIN_LAT + r * GRID_HEIGHT + dy, 6)]

    ring = [corner(column, row), corner(column + 1, row), corner(column + 1, row + 1), corner(column, row + 1)]
    if row == 0:
        # The river bank along the southern edge is not straight; no neighbour lies beyond it.
        (x0, y0), (x1, y1) = ring[0], ring[1]
        bulge = [round((x0 + x1) / 2, 6), round((y0 + y1) / 2 - 0.0002 - 0.0001 * math.sin(column), 6)]
        ring = [ring[0], bulge, ring[1], ring[2], ring[3]]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def _add_area(level: AreaLevel, parent: Area | None, code: str, name: str, **grid: Any) -> Area:
    area = Area(
        level=level.value,
        parent_id=parent.id if parent else None,
        code=code,
        name=name,
        timezone="Asia/Shanghai",
        path="/pending/" + code,
        depth=parent.depth + 1 if parent else 0,
        **grid,
    )
    if area.boundary:
        area.min_lon, area.min_lat, area.max_lon, area.max_lat = bounds(area.boundary)
    db.session.add(area)
    db.session.flush()
    area.path = (parent.path if parent else "/") + f"{area.id}/"
    return area


def _logins_file() -> Path:
    return Path(current_app.instance_path) / "demo_logins.json"


def seed_demo(rng: random.Random | None = None) -> dict[str, dict[str, str]] | None:
    """Create the demo city unless it exists. Returns the logins created, or None if already seeded."""
    if db.session.scalar(sa.select(Area.id).where(Area.code == CITY_CODE)) is not None:
        return None
    rng = rng or random.Random(2026)
    city = _add_area(AreaLevel.CITY, None, CITY_CODE, "包头市")
    grids: list[Area] = []
    communities: list[Area] = []
    districts: list[Area] = []
    column = 0
    for district_code, district_name, subdistricts in LAYOUT:
        district = _add_area(AreaLevel.DISTRICT, city, district_code, district_name)
        districts.append(district)
        for s_index, (sub_name, community_list) in enumerate(subdistricts, start=1):
            sub = _add_area(AreaLevel.SUBDISTRICT, district, f"{district_code}{s_index:03d}", sub_name)
            for c_index, (community_name, grid_count) in enumerate(community_list, start=1):
                community = _add_area(
                    AreaLevel.COMMUNITY, sub, f"{sub.code}{c_index:03d}", community_name
                )
                communities.append(community)
                for g_index in range(1, grid_count + 1):
                    row = (g_index - 1) % 2
                    grid = _add_area(
                        AreaLevel.GRID, community, f"{community.code}{g_index:02d}",
                        f"{community_name}第{g_index}网格",
                        grid_kind="urban", households=rng.randint(280, 420),
                        boundary=_grid_polygon(column + (g_index - 1) // 2, row),
                    )
                    grids.append(grid)
                column += (grid_count + 1) // 2

    logins: dict[str, dict[str, str]] = {}

    def add_login(role: str, area: Area, phone: str, name: str) -> User:
        password = secrets.token_urlsafe(9)
        user = User(phone=phone, password_hash=hash_password(password), role=role,
                    display_name=name, area_id=area.id)
        db.session.add(user)
        logins[role] = {"phone": phone, "password": password, "area": area.name}
        return user

    admin = add_login("admin", city, "+8613900000001", "市平安办管理员")
    staff = add_login("staff", districts[0], "+8613900000002", "东河区政法委干部")
    organiser = add_login("organiser", communities[0], DEMO_ORGANISER_PHONE, "东站社区组织者")

    kinds = {k.code: k for k in db.session.scalars(sa.select(VolunteerKind))}
    shared_hash = hash_password(secrets.token_urlsafe(12))  # demo volunteers other than the first cannot log in
    statuses = [VolunteerStatus.ACTIVE] * 16 + [VolunteerStatus.PENDING] * 3 + [VolunteerStatus.SUSPENDED]
    now = utcnow()
    for index in range(200):
        grid = grids[index % len(grids)]
        region = "150202" if grid.path.startswith(districts[0].path) else "150203"
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
        phone = f"+86138{index:08d}"  # index 0 is DEMO_VOLUNTEER_PHONE
        status = VolunteerStatus.ACTIVE if index == 0 else rng.choice(statuses)
        if index == 0:
            user = add_login("volunteer", grid, phone, name)
        else:
            user = User(phone=phone, password_hash=shared_hash, role="volunteer", display_name=name,
                        area_id=grid.id)
            db.session.add(user)
        db.session.flush()
        number = _national_id(rng, region)
        kind = kinds["alley_steward"] if index % 5 == 0 else kinds["volunteer_police"]
        volunteer = Volunteer(
            user_id=user.id, kind_id=kind.id, home_grid_id=grid.id, status=status.value,
            real_name=name, national_id_encrypted=crypto.encrypt(number),
            national_id_hash=crypto.keyed_hash(number),
            consent_version=current_app.config["PRIVACY_TERMS_VERSION"], consented_at=now,
            certificate_no=f"BTYJ{2026}{index:05d}" if status != VolunteerStatus.PENDING else None,
            armband_no=f"{index:04d}" if status != VolunteerStatus.PENDING else None,
            skills=[VolunteerSkill(skill=s) for s in sorted(set(rng.sample(SKILLS, rng.randint(0, 2))))],
            availability=[
                AvailabilitySlot(weekday=day, start_time=time(19), end_time=time(21))
                for day in sorted(rng.sample(range(7), rng.randint(1, 3)))
            ],
        )
        db.session.add(volunteer)
        db.session.flush()
        if index == 0:  # the demo volunteer's phone may upload its track (patrols/privacy)
            db.session.add(LocationConsent(volunteer_id=volunteer.id,
                                           version=current_app.config["LOCATION_TERMS_VERSION"], granted_at=now))
        db.session.add(StatusChange(volunteer_id=volunteer.id, from_status=None,
                                    to_status=VolunteerStatus.PENDING.value, reason="demo"))
        if status != VolunteerStatus.PENDING:
            db.session.add(StatusChange(volunteer_id=volunteer.id, from_status="pending",
                                        to_status=status.value, reason="demo"))
    db.session.flush()
    _seed_patrol_series(admin, city, communities)
    _seed_rewards(admin, city, districts[0])
    db.session.flush()
    demo = DemoCity(city, districts, communities, grids, admin, staff, organiser, rng, now)
    fold_rollups()
    seed_history(demo)
    seed_incidents(demo)
    rebuild_rollups(demo)
    return logins


def _seed_patrol_series(admin: User, city: Area, communities: list[Area]) -> None:
    """Evening patrols Mon/Wed/Fri 19:00–21:00 in each community's first grid, made 8 weeks ahead."""
    from core.auth import Caller, Role
    from shifts.series.service import create_series

    caller = Caller(user_id=admin.id, role=Role.ADMIN, area_path=city.path, session_id="seed-demo")
    today = datetime.now(ZoneInfo(city.timezone)).date()
    for community in communities:
        first_grid = db.session.scalars(
            sa.select(Area).where(Area.parent_id == community.id).order_by(Area.code).limit(1)
        ).one()
        create_series(caller, {
            "grid_id": first_grid.id, "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR",
            "starts_on": today + timedelta(days=1), "start_time": time(19), "end_time": time(21),
            "title": "夜间巡逻", "instructions": "两人一组，沿主街和背街小巷巡查，发现隐患及时上报。",
            "meeting_point": f"{community.name}警务室门口", "min_headcount": 2, "max_headcount": 4,
            "backup_slots": 1, "required_kinds": [{"kind": "volunteer_police", "minimum": 1}],
        })


def _seed_rewards(admin: User, city: Area, district: Area) -> None:
    """The city's point rule (version 1, in force since before the demo's history, so its patrols
    earn points) and a small catalogue for the first district."""
    from core.auth import Caller, Role
    from rewards.catalogue.service import create_item
    from rewards.rules.service import create_version

    caller = Caller(user_id=admin.id, role=Role.ADMIN, area_path=city.path, session_id="seed-demo")
    create_version(caller, city, {
        "effective_from": utcnow() - timedelta(days=HISTORY_DAYS + 1), "points_per_hour": 10, "rounding_minutes": 15,
        "report_bonus": {"red": 20, "orange": 10, "yellow": 5, "green": 2}, "daily_cap": 80,
        "streak_days": 5, "streak_bonus": 30, "expiry_years": 1, "manual_hours_earn_points": False,
    })
    for name, description, cost, stock, limit in (
        ("公交卡充值 20 元", "凭领取码到社区警务室领取", 200, 50, 2),
        ("守望志愿者马甲", "反光马甲一件，夜间巡逻用", 120, 30, 1),
        ("电影票一张", "本市影院通用", 300, 20, 1),
    ):
        create_item(caller, {"area_id": district.id, "name": name, "description": description,
                             "points_cost": cost, "stock": stock, "per_volunteer_limit": limit,
                             "valid_from": None, "valid_until": None})


@dataclass(frozen=True)
class DemoShift:
    """The demo volunteer's next shift, and a position inside its grid to check in from."""

    shift_id: int
    assignment_id: int
    grid_name: str
    starts_at: datetime
    ends_at: datetime
    check_in_opens: datetime
    timezone: str
    lat: float
    lon: float
    created: bool

    def describe(self) -> str:
        zone = ZoneInfo(self.timezone)
        start, end, opens = (moment.astimezone(zone) for moment in (self.starts_at, self.ends_at, self.check_in_opens))
        return (
            f"Demo shift for the volunteer: {self.grid_name}, {start:%Y-%m-%d %H:%M}–{end:%H:%M}, check-in "
            f"from {opens:%H:%M} (shift {self.shift_id}, assignment {self.assignment_id}"
            f"{', new' if self.created else ''})\n"
            f"  check in from inside the grid: lat {self.lat}, lon {self.lon}"
        )


def demo_position(grid: Area) -> tuple[float, float]:
    """A point well inside the grid (lat, lon), rounded to about a metre."""
    if grid.boundary is None:
        raise ValueError(f"grid {grid.code} has no boundary")  # every seeded grid has one
    point = shape(grid.boundary).representative_point()
    return round(point.y, 5), round(point.x, 5)


def top_up_demo_shift(now: datetime | None = None) -> DemoShift | None:
    """Give the demo volunteer a shift in their home grid starting DEMO_SHIFT_STARTS_IN from now,
    unless they already hold a place on one that starts within the hour and has not ended.

    Planned and assigned through the shifts services as the demo organiser (audited, notified), so
    it obeys every rule. Returns None, changing nothing, when the demo volunteer or organiser is gone
    or inactive, or the rules refuse (the demo data was changed through the API).
    """
    from core.auth import Caller, Role
    from patrols.presence.rules import check_in_opens
    from shifts.filling.assigning import assign
    from shifts.models import Assignment, AssignmentRole, AssignmentStatus, Shift, ShiftStatus
    from shifts.planning.service import create_shift
    from shifts.rules import min_rest

    now = now or utcnow()
    volunteer = db.session.scalar(
        sa.select(Volunteer).join(User, User.id == Volunteer.user_id).where(User.phone == DEMO_VOLUNTEER_PHONE)
    )
    organiser = db.session.scalar(sa.select(User).where(User.phone == DEMO_ORGANISER_PHONE))
    if volunteer is None or organiser is None or not organiser.is_active:
        return None
    held = sa.select(Shift, Assignment).join(Assignment, Assignment.shift_id == Shift.id).where(
        Assignment.volunteer_id == volunteer.id,
        Assignment.status == AssignmentStatus.ASSIGNED.value,
        Shift.status == ShiftStatus.SCHEDULED.value,
    )
    current = db.session.execute(
        held.where(Shift.ends_at > now, Shift.starts_at < now + timedelta(hours=1)).order_by(Shift.starts_at)
    ).first()
    grid = volunteer.home_grid
    lat, lon = demo_position(grid)
    if current is not None:
        shift, assignment = current
        return DemoShift(shift.id, assignment.id, grid.name, shift.starts_at, shift.ends_at,
                         check_in_opens(shift), shift.timezone, lat, lon, created=False)

    # After a demo shift that ended a moment ago, the rest rule decides the earliest start.
    last_end = db.session.scalar(
        held.with_only_columns(sa.func.max(Shift.ends_at)).where(Shift.ends_at <= now)
    )
    starts_at = now + DEMO_SHIFT_STARTS_IN
    if last_end is not None:
        starts_at = max(starts_at, last_end + min_rest())
    starts_at = starts_at.replace(second=0, microsecond=0)
    caller = Caller(user_id=organiser.id, role=Role(organiser.role), area_path=organiser.area.path,
                    session_id="seed-demo")
    try:
        with db.session.begin_nested():
            shift = create_shift(caller, {
                "grid_id": grid.id, "starts_at": starts_at, "ends_at": starts_at + DEMO_SHIFT_LENGTH,
                "title": "演示巡逻", "instructions": "make run 生成的演示班次：签到、巡查、签退。",
                "meeting_point": f"{grid.name}入口", "min_headcount": 1, "max_headcount": 2,
                "backup_slots": 0, "required_kinds": [],
            })
            assignment = assign(caller, shift, volunteer.id, AssignmentRole.PRIMARY.value)
    except ApiError as refused:
        click.echo(f"No demo shift added: {refused.detail or refused.code}", err=True)
        return None
    return DemoShift(shift.id, assignment.id, grid.name, shift.starts_at, shift.ends_at,
                     check_in_opens(shift), shift.timezone, lat, lon, created=True)


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Seed the demo city once, give the demo volunteer a shift opening now, print the demo logins."""
    logins = seed_demo()
    path = _logins_file()
    if logins is None:
        click.echo("Demo data already present.")
        logins = json.loads(path.read_text()) if path.exists() else {}
    else:
        db.session.commit()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(logins, ensure_ascii=False, indent=2))
        path.chmod(0o600)
        click.echo("Seeded the demo city 包头市: 20 grids, 200 volunteers, evening patrols in 6 communities, point rules, a catalogue.")
    demo_shift = top_up_demo_shift()
    db.session.commit()  # the demo city above, the demo shift here: each its own unit of work
    if logins:
        click.echo("Demo logins (POST /api/v1/auth/login with phone and password):")
        for role, login in logins.items():
            click.echo(f"  {role:<10} {login['phone']}  {login['password']}  ({login['area']})")
    if demo_shift is not None:
        click.echo(demo_shift.describe())


@click.command("prepare-demo")
@click.pass_context
def prepare_demo_command(ctx: click.Context) -> None:
    """What make run does before serving, in one process (each `flask` process spends about two
    seconds starting the app): flask db upgrade, flask tasks run-periodic, flask seed-demo (last, so
    the logins and the demo shift are what is left on the screen above the server's banner)."""
    from flask_migrate import upgrade

    from core.tasks import run_periodic_command

    upgrade()
    ctx.invoke(run_periodic_command)
    ctx.invoke(seed_demo_command)
