"""The demo city seeded by `make run`: valid, non-overlapping grids, working logins, seeded once.

Its tests share one seed (``demo_city``, tests/conftest.py: each test in a savepoint after it,
rolled back), as seeding is most of their time; the commands, which seed an empty database, are
tested in tests/test_demo_commands.py."""

from __future__ import annotations

import contextvars
import uuid
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from shapely.geometry import shape

from accounts.models import User
from core.db import utcnow
from core.extensions import db
from core.geo import validate_boundary
from demo_data import DEMO_SHIFT_LENGTH, DEMO_SHIFT_STARTS_IN, DEMO_VOLUNTEER_PHONE, seed_demo, top_up_demo_shift
from grids.models import Area, AreaLevel
from reports.rollups.cli import check as rollups_check
from rewards.rules.models import PointRule
from shifts.models import Assignment, Shift, ShiftSeries
from tests.conftest import DemoCity
from tests.factories import fold_into_rollups
from volunteers.models import Volunteer, VolunteerStatus

ROOT = Path(__file__).resolve().parent.parent
# README's walk-through checks in here: a point inside 东站社区第1网格 (the demo polygons are fixed).
DEMO_LAT, DEMO_LON = 40.63142, 109.82242


def test_demo_city_shape_and_logins(client, app, demo_city: DemoCity) -> None:
    logins = demo_city.logins  # what the module's seed_demo() returned on the empty database
    assert set(logins) == {"admin", "staff", "organiser", "volunteer"}
    assert seed_demo() is None  # a second run changes nothing

    grids = db.session.scalars(sa.select(Area).where(Area.level == AreaLevel.GRID)).all()
    assert len(grids) == 20
    shapes = []
    for grid in grids:
        validate_boundary(grid.boundary, app.config["GRID_MAX_VERTICES"])
        shapes.append(shape(grid.boundary))
        assert 40.6 < grid.min_lat < grid.max_lat < 40.7 and 109.8 < grid.min_lon < grid.max_lon < 109.9
    for i, first in enumerate(shapes):
        for second in shapes[i + 1 :]:
            assert first.intersection(second).area < 1e-12  # neighbours share edges, never overlap
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Volunteer)) == 200
    series = db.session.scalars(sa.select(ShiftSeries)).all()
    assert len(series) == 6 and {s.rrule.split(";")[0] for s in series} == {"FREQ=WEEKLY"}
    shifts = db.session.scalars(sa.select(Shift).where(Shift.series_id.is_not(None))).all()
    # Mon/Wed/Fri for the 8-week horizon: 23 to 24 occurrences per series, 19:00–21:00 local.
    assert 6 * 23 <= len(shifts) <= 6 * 25
    assert {(s.ends_at - s.starts_at).seconds for s in shifts} == {7200}
    assert [r.version for r in db.session.scalars(sa.select(PointRule))] == [1]

    for grid, polygon in zip(grids, shapes, strict=True):
        point = polygon.representative_point()
        found = client.get(f"/api/v1/areas/locate?lat={point.y}&lon={point.x}")
        assert found.status_code == 200, found.get_json()
        assert found.get_json()["id"] == grid.id

    for role, login in logins.items():
        response = client.post("/api/v1/auth/login", json={"phone": login["phone"], "password": login["password"]})
        assert response.status_code == 200, (role, response.get_json())
        assert response.get_json()["user"]["role"] == role

    # The demo volunteer lives in the first district, whose catalogue they may redeem from.
    items = client.get("/api/v1/catalogue-items", headers=bearer(client, logins, "volunteer"))
    assert items.status_code == 200, items.get_json()
    assert len(items.get_json()["items"]) == 3
    city_id = grids[0].path.split("/")[1]
    rule = client.get(f"/api/v1/areas/{city_id}/point-rules/current", headers=bearer(client, logins, "admin"))
    assert rule.status_code == 200, rule.get_json()
    assert rule.get_json()["points_per_hour"] == 10


def bearer(client, logins: dict[str, dict[str, str]], role: str) -> dict[str, str]:
    login = {"phone": logins[role]["phone"], "password": logins[role]["password"]}
    return {"Authorization": "Bearer " + client.post("/api/v1/auth/login", json=login).get_json()["access_token"]}


def login_demo_volunteer(client, logins: dict[str, dict[str, str]]) -> dict[str, str]:
    body = {"phone": DEMO_VOLUNTEER_PHONE, "password": logins["volunteer"]["password"]}
    return {"Authorization": "Bearer " + client.post("/api/v1/auth/login", json=body).get_json()["access_token"]}


def test_no_demo_shift_for_a_volunteer_no_longer_active(app, demo_city: DemoCity) -> None:
    volunteer = db.session.scalar(
        sa.select(Volunteer).join(User, User.id == Volunteer.user_id).where(User.phone == DEMO_VOLUNTEER_PHONE)
    )
    volunteer.status = VolunteerStatus.SUSPENDED.value
    db.session.flush()
    shifts_before = db.session.scalar(sa.select(sa.func.count()).select_from(Shift))

    assert top_up_demo_shift() is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Shift)) == shifts_before


def test_what_a_test_commits_is_gone_in_the_next_one(app, demo_city: DemoCity) -> None:
    """The shared seed's isolation: the demo volunteer suspended and committed, as a request
    commits (a session of its own), before this test's session began. The next test (the
    check-in) finds them active again, or gets no demo shift."""

    def suspend() -> None:
        with app.app_context():
            volunteer = db.session.scalar(
                sa.select(Volunteer).join(User, User.id == Volunteer.user_id).where(User.phone == DEMO_VOLUNTEER_PHONE)
            )
            volunteer.status = VolunteerStatus.SUSPENDED.value
            db.session.commit()

    contextvars.Context().run(suspend)
    assert top_up_demo_shift() is None


def test_the_demo_volunteer_can_check_in_right_after_seeding(client, app, demo_city: DemoCity) -> None:
    logins = demo_city.logins
    before = utcnow()
    demo = top_up_demo_shift()
    assert demo is not None and demo.created
    # Starts DEMO_SHIFT_STARTS_IN from now, with the check-in window already open.
    assert before + DEMO_SHIFT_STARTS_IN - timedelta(minutes=1) <= demo.starts_at <= utcnow() + DEMO_SHIFT_STARTS_IN
    assert demo.check_in_opens <= utcnow() < demo.starts_at
    assert demo.ends_at - demo.starts_at == DEMO_SHIFT_LENGTH
    assert (demo.lat, demo.lon) == (DEMO_LAT, DEMO_LON)
    grid = db.session.scalar(sa.select(Area).where(Area.name == demo.grid_name))
    assert shape(grid.boundary).contains(shape({"type": "Point", "coordinates": [demo.lon, demo.lat]}))

    headers = login_demo_volunteer(client, logins)
    upcoming = client.get("/api/v1/me/shifts?when=upcoming", headers=headers).get_json()["items"]
    assert upcoming[0]["id"] == demo.assignment_id and upcoming[0]["shift"]["grid_id"] == grid.id
    check_in = client.post(
        f"/api/v1/assignments/{demo.assignment_id}/check-in", headers=headers,
        json={"client_id": str(uuid.uuid4()), "lat": demo.lat, "lon": demo.lon, "accuracy_m": 15,
              "device_time": utcnow().isoformat()},
    )
    assert check_in.status_code == 200, check_in.get_json()
    assert check_in.get_json()["presence_status"] == "verified"

    # A later make run finds the shift still ahead and adds nothing.
    assignments = db.session.scalar(sa.select(sa.func.count()).select_from(Assignment))
    again = top_up_demo_shift()
    assert again is not None and not again.created and again.assignment_id == demo.assignment_id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Assignment)) == assignments


def test_a_later_run_tops_up_after_the_last_demo_shift_respecting_rest(app, demo_city: DemoCity) -> None:
    first = top_up_demo_shift()
    assert first is not None
    rest = timedelta(minutes=app.config["SHIFT_MIN_REST_MINUTES"])

    # Ten minutes after it ended: the next may start only after the rest the rules require.
    soon_after = top_up_demo_shift(now=first.ends_at + timedelta(minutes=10))
    assert soon_after is not None and soon_after.created
    assert soon_after.starts_at == (first.ends_at + rest).replace(second=0, microsecond=0)

    # Days later: DEMO_SHIFT_STARTS_IN from then.
    later = soon_after.ends_at + timedelta(days=2)
    much_later = top_up_demo_shift(now=later)
    assert much_later is not None and much_later.created
    assert much_later.starts_at == (later + DEMO_SHIFT_STARTS_IN).replace(second=0, microsecond=0)


def test_the_demo_city_has_a_past_for_every_console_page(client, app, demo_city: DemoCity) -> None:
    """Five weeks of history: served hours, good and bad coverage, reports of every colour (some
    red and orange waiting), presence to review, volunteers to vet, short shifts ahead; the roll-ups
    agree with the rows."""
    logins = demo_city.logins
    staff, organiser, admin = (bearer(client, logins, role) for role in ("staff", "organiser", "admin"))
    zone = ZoneInfo("Asia/Shanghai")
    district, community = (db.session.scalar(sa.select(Area.id).where(Area.name == name)) for name in ("东河区", "东站社区"))
    yesterday = utcnow().astimezone(zone).date() - timedelta(days=1)

    # Participation of the month up to yesterday (this month, except on the 1st).
    def participation(headers: dict[str, str], area_id: int) -> dict:
        answer = client.get(f"/api/v1/reports/participation?area_id={area_id}&period=month&value={yesterday:%Y-%m}",
                            headers=headers)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["figures"]

    month = participation(staff, district)
    assert month["volunteers"]["active"] > 0 and month["presence"]["served_hours"] > 0
    assert month["presence"]["no_shows"] > 0 and 0 < month["presence"]["attendance_rate"] < 1
    assert month["points"]["awarded"] > 0
    assert participation(organiser, community)["presence"]["served_minutes"] > 0

    # Coverage of the last four weeks: grids patrolled nearly every evening, and some hardly ever.
    coverage = client.get(f"/api/v1/reports/coverage?area_id={district}&from={yesterday - timedelta(days=27)}"
                          f"&to={yesterday}", headers=staff)
    assert coverage.status_code == 200, coverage.get_json()
    percents = [grid["coverage_pct"] or 0 for grid in coverage.get_json()["grids"]]
    assert len(percents) == 13 and max(percents) >= 60 and min(percents) <= 20, percents
    assert len({round(p, -1) for p in percents}) >= 4  # spread out, not two groups
    assert coverage.get_json()["below_quota"]

    # Reports of every colour in the city; red and orange not yet taken up in the staff's district
    # and in the organiser's community; some resolved with their history.
    def reports(headers: dict[str, str], query: str) -> list[dict]:
        answer = client.get(f"/api/v1/reports?limit=100&{query}", headers=headers)
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()["items"]

    everything = reports(admin, "")
    assert {r["level"] for r in everything} == {"red", "orange", "yellow", "green"}
    assert {"open", "acknowledged", "resolved"} <= {r["status"] for r in everything}
    waiting = reports(staff, "status=open&level=red&level=orange")
    assert {r["level"] for r in waiting} == {"red", "orange"}
    assert reports(organiser, "status=open&level=red&level=orange")
    resolved = reports(staff, "status=resolved")[0]
    history = client.get(f"/api/v1/reports/{resolved['id']}", headers=staff).get_json()
    actions = [event["action"] for event in history["history"]]
    assert actions[0] == "filed" and actions[-1] == "resolved"
    assert any(r["photos"] for r in everything)

    # Presence waiting for review in the staff's district; pending volunteers; short shifts ahead.
    review = client.get("/api/v1/patrols/review", headers=staff)
    assert review.status_code == 200 and review.get_json()["items"], review.get_json()
    for headers in (organiser, staff):
        pending = client.get("/api/v1/volunteers?status=pending&limit=100", headers=headers).get_json()["items"]
        assert len(pending) >= 3
    gaps = client.get("/api/v1/coverage-gaps?within_hours=48", headers=organiser).get_json()["items"]
    assert any(gap["missing_headcount"] > 0 for gap in gaps), gaps

    fold_into_rollups()
    assert rollups_check() == []


def test_every_demo_place_carries_its_shifts_times(app, demo_city: DemoCity) -> None:
    """The demo history's bulk places and the demo shift's places, as migration 0022's triggers keep them."""
    from tests.shifts.test_shift_times import copies_off

    total, wrong = copies_off()
    assert wrong == [] and total > 100
