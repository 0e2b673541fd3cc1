"""The demo city's patrol reports and the shifts of the next two days (``flask seed-demo``, after
``demo_history``).

Reports: about one served patrol in ten filed one during the shift, plus a few filed off duty in
the last day and a half that nobody has taken up yet, so the triage page has red and orange reports
waiting in the organiser's community, elsewhere in the staff's district and in the other district.
Older reports were mostly acknowledged and resolved, some assigned or escalated to the district;
each step is a :class:`ReportEvent` dated after the one before, and each report taken up earned its
bonus through rewards' own ``award_report`` (dated now: the bonus is paid under the rule in force
when it is confirmed). Two reports carry a photo, drawn here and stored as uploads are.

Shifts: the next two days' mornings and evenings in a few grids, made and filled through the shifts
services as the grid's organiser: some short of their minimum headcount, one full.

Roll-ups: :func:`fold_rollups` folds what the seed wrote before the history, :func:`rebuild_rollups`
rebuilds the history's days at the end.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import sqlalchemy as sa
from PIL import Image, ImageDraw

from core import photos
from core.extensions import db
from demo_history import HISTORY_DAYS, DemoCity
from patrols.reports.models import Report, ReportAction, ReportEvent, ReportPhoto, ReportStatus
from shifts.models import AssignmentRole
from volunteers.models import Volunteer, VolunteerStatus

#: Per level: (weight among reports filed on patrol, category, descriptions).
LEVELS = {
    "red": (1, "safety_hazard", ["小区配电箱冒烟，已疏散围观群众并拨打 119", "河堤护栏断裂约五米，夜间有坠河危险",
                                 "居民楼内闻到浓烈煤气味，已通知燃气公司"]),
    "orange": (2, "dispute", ["两户居民因停车位争吵，有推搡，已劝开", "商铺与顾客发生冲突，围观人员较多",
                              "楼道堆放大量纸箱等易燃物，住户拒不清理"]),
    "yellow": (4, "suspicious_activity", ["陌生人多次在单元门口徘徊，询问后离开", "夜间有人翻看停放电动车",
                                          "小区后门门禁损坏，外来人员随意进出"]),
    "green": (4, "other", ["路灯不亮两盏，已拍照记录", "井盖松动，已放置警示桶", "独居老人家中无人应门，联系家属后确认外出"]),
}
RESOLUTIONS = ["已联系物业处理完毕", "社区民警到场调解，双方达成和解", "已通知相关部门修复", "复查后隐患已消除"]
#: Reports nobody has taken up yet: (grid index, level, hours ago). Grids 0–3 are the organiser's
#: community, 0–12 the staff's district, 13–19 the other district.
FRESH = [(1, "red", 3), (0, "orange", 7), (8, "orange", 15), (11, "red", 26), (4, "yellow", 20),
         (14, "orange", 10), (17, "red", 30), (9, "green", 5)]
#: Shifts of the next two days: (grid index, slot 0–2 of the next 08:00 and 19:00 starts, min, max,
#: volunteers placed).
UPCOMING = [(1, 0, 3, 4, 1), (2, 1, 2, 3, 1), (3, 1, 2, 3, 3), (7, 0, 2, 3, 0), (10, 2, 2, 3, 1),
            (14, 1, 2, 3, 1), (18, 2, 2, 2, 0)]


def seed_incidents(demo: DemoCity) -> None:
    on_patrol, fresh = _reports_on_patrol(demo), _fresh_reports(demo)
    db.session.flush()
    _handle(demo, on_patrol + fresh)
    _photos(demo, fresh[:1] + [report for report in on_patrol if report.status == ReportStatus.RESOLVED][:1])
    _upcoming_shifts(demo)


def _report(demo: DemoCity, grid_id: int, volunteer_id: int, level: str, received: datetime,
            lat: float, lon: float, assignment_id: int | None) -> Report:
    _, category, texts = LEVELS[level]
    report = Report(
        client_id=demo.client_id(), volunteer_id=volunteer_id, grid_id=grid_id, assignment_id=assignment_id,
        category=category, level=level, status=ReportStatus.OPEN, description=demo.rng.choice(texts),
        lat=lat, lon=lon, accuracy_m=float(demo.rng.randint(5, 25)),
        device_at=received - timedelta(seconds=demo.rng.randint(2, 90)), received_at=received, flags=[],
        photo_count=0, updated_at=received,
    )
    db.session.add(report)
    return report


def _reports_on_patrol(demo: DemoCity) -> list[Report]:
    rng, levels = demo.rng, list(LEVELS)
    weights = [LEVELS[level][0] for level in levels]
    reports = []
    for patrol, shift in demo.served:
        if rng.random() >= 0.1 or patrol.check_in_lat is None or patrol.check_in_lon is None:
            continue
        received = shift.starts_at + timedelta(minutes=rng.randint(10, 110))
        reports.append(_report(
            demo, shift.grid_id, patrol.volunteer_id, rng.choices(levels, weights)[0], received,
            patrol.check_in_lat, patrol.check_in_lon, patrol.assignment_id,
        ))
    return reports


def _fresh_reports(demo: DemoCity) -> list[Report]:
    reports = []
    for index, level, hours in FRESH:
        grid = demo.grids[index]
        volunteer_id = db.session.scalar(
            sa.select(Volunteer.id).where(Volunteer.home_grid_id == grid.id, Volunteer.status == VolunteerStatus.ACTIVE)
            .order_by(Volunteer.id.desc()).limit(1)
        )
        if volunteer_id is None:
            continue
        lat, lon = demo.position(grid)
        received = demo.now - timedelta(hours=hours, minutes=demo.rng.randint(0, 50))
        reports.append(_report(demo, grid.id, volunteer_id, level, received, lat, lon, None))
    return reports


def _handle(demo: DemoCity, reports: list[Report]) -> None:
    """Each report's history: filed, then (by age) acknowledged, assigned, escalated, resolved."""
    from rewards.awarding.service import award_report

    rng, fresh = demo.rng, demo.now - timedelta(hours=36)
    for report in sorted(reports, key=lambda r: r.received_at):
        grid = next(g for g in demo.grids if g.id == report.grid_id)
        handler = demo.manager_of(grid)
        filer = db.session.scalar(sa.select(Volunteer.user_id).where(Volunteer.id == report.volunteer_id))
        events: list[tuple[ReportAction, ReportStatus | None, ReportStatus, int | None, datetime, str | None]] = [
            (ReportAction.FILED, None, ReportStatus.OPEN, filer, report.received_at, None)
        ]
        if report.received_at >= fresh:
            steps = rng.choice(([], [], [ReportAction.ACKNOWLEDGED]))
        elif report.level in ("red", "orange") and rng.random() < 0.2:
            steps = [ReportAction.ACKNOWLEDGED, ReportAction.ESCALATED]
        else:
            steps = rng.choice(([ReportAction.ACKNOWLEDGED], [ReportAction.ACKNOWLEDGED, ReportAction.ASSIGNED])
                               + ([ReportAction.ACKNOWLEDGED, ReportAction.RESOLVED],) * 5)
        if report.assignment_id is None:
            steps = []  # FRESH: waiting to be taken up
        at, status = report.received_at, ReportStatus.OPEN
        for action in steps:
            at += timedelta(minutes=rng.randint(5, 240) if report.level in ("red", "orange") else rng.randint(60, 1800))
            at = min(at, demo.now - timedelta(minutes=5))
            target, note = ReportStatus(action.value), None
            if action == ReportAction.ASSIGNED:
                report.assignee_id = handler.id
            elif action == ReportAction.ESCALATED:
                report.escalated_to_id = next(d.id for d in demo.districts if grid.path.startswith(d.path))
                note = "情况紧急，需区里协调多部门处置"
            elif action == ReportAction.RESOLVED:
                note = rng.choice(RESOLUTIONS)
                report.resolution_note, report.resolved_at = note, at
            events.append((action, status, target, handler.id, at, note))
            status = target
        report.status, report.updated_at = status, at
        for action, before, after, actor, when, note in events:
            assignee = report.assignee_id if action == ReportAction.ASSIGNED else None
            db.session.add(ReportEvent(report_id=report.id, action=action, from_status=before, to_status=after,
                                       actor_id=actor, assignee_id=assignee, note=note, created_at=when))
    db.session.flush()
    for report in reports:
        if report.status != ReportStatus.OPEN:
            award_report(report.id, demo.manager_of(next(g for g in demo.grids if g.id == report.grid_id)).id)


def _photos(demo: DemoCity, reports: list[Report]) -> None:
    """A drawn picture (a street at night, roughly) on each report, stored as an upload is."""
    for report in reports:
        image = Image.new("RGB", (640, 480), (24, 28, 48))
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x, y = demo.rng.randint(0, 600), demo.rng.randint(120, 420)
            draw.rectangle((x, y, x + demo.rng.randint(30, 120), 480), fill=tuple(demo.rng.randint(40, 110) for _ in range(3)))
        draw.ellipse((500, 40, 560, 100), fill=(240, 220, 140))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        clean = photos.clean_photo(buffer.getvalue())
        key = photos.new_storage_key("reports", report.id, clean.extension)
        report.photo_count += 1
        db.session.add(ReportPhoto(
            report_id=report.id, client_id=demo.client_id(), position=report.photo_count, storage_key=key,
            content_type=clean.content_type, width=clean.width, height=clean.height, size_bytes=len(clean.data),
            sha256=clean.sha256, created_at=report.received_at + timedelta(seconds=30),
        ))
        db.session.flush()
        photos.store_photo(db.session(), key, clean)


def _upcoming_shifts(demo: DemoCity) -> None:
    """Shifts in the next 48 hours, planned and filled as the grid's organiser would."""
    from shifts.filling.assigning import assign
    from shifts.planning.service import create_shift

    slots: list[datetime] = []
    day = demo.today
    while len(slots) < 3:  # all within 38 hours
        for hour in (8, 19):
            start = demo.at(day, hour)
            if start > demo.now + timedelta(hours=1) and len(slots) < 3:
                slots.append(start)
        day += timedelta(days=1)
    for index, slot, minimum, maximum, placed in UPCOMING:
        grid = demo.grids[index]
        caller = demo.caller(demo.manager_of(grid))
        shift = create_shift(caller, {
            "grid_id": grid.id, "starts_at": slots[slot], "ends_at": slots[slot] + timedelta(hours=2),
            "title": "早间巡逻" if slots[slot].hour < 12 else "夜间巡逻", "instructions": "沿主街和背街小巷巡查。",
            "meeting_point": f"{grid.name}党群服务站", "min_headcount": minimum, "max_headcount": maximum,
            "backup_slots": 0, "required_kinds": [],
        })
        volunteers = db.session.scalars(
            sa.select(Volunteer.id).where(Volunteer.home_grid_id == grid.id, Volunteer.status == VolunteerStatus.ACTIVE)
            .order_by(Volunteer.id.desc()).limit(placed)
        ).all()
        for volunteer_id in volunteers:
            assign(caller, shift, volunteer_id, AssignmentRole.PRIMARY.value)


def fold_rollups() -> None:
    """Fold in what the seed wrote so far (the series' shifts, eight weeks ahead), as a commit would."""
    from reports.rollups import service as rollups

    db.session.flush()
    rollups.recompute(rollups.affected(rollups.take_changes()))


def rebuild_rollups(demo: DemoCity) -> None:
    """The roll-ups of the history's days, built from its rows by the roll-ups' own rebuild (one
    batch per grid), instead of folding the recorded changes day by day at the commit, which took
    several times longer. Every change since :func:`fold_rollups` lies in these days (the history,
    the reports, points dated now, the shifts of the next two days), and the rebuild recomputes
    all of them."""
    from reports.rollups import repair
    from reports.rollups import service as rollups

    db.session.flush()
    rollups.take_changes()
    first, last = demo.today - timedelta(days=HISTORY_DAYS + 1), demo.today + timedelta(days=3)
    for grid in demo.grids:
        repair.rebuild_grid(grid, first, last)
    repair.rebuild_volunteers(list(db.session.scalars(sa.select(Volunteer.id).order_by(Volunteer.id))))
