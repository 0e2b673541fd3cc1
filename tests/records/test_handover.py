"""The hand-over export (records/handover): the workbook read back with openpyxl holds exactly the
service that counts in the area and period (voided records out, corrections in, the sibling area
whose path is a string prefix out, both edge days in), identities in full, formula-safe text; the
refusals; the audit entry; and a number of queries that does not grow with the volunteers."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask, request_finished, request_started
from flask.testing import FlaskClient
from openpyxl import load_workbook

from accounts.models import User
from core.audit import AuditEntry
from core.db import utcnow
from core.extensions import db
from grids.models import Area, AreaLevel
from patrols.models import Patrol
from records.handover.columns import hours
from reports.exports.base import XLSX_MIMETYPE
from rewards.awarding.models import ServiceRecord
from tests import factories
from tests.problems import EN, assert_problem
from volunteers.models import Volunteer

URL = "/api/v1/records/handover"
SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST, LAST = date(2026, 9, 1), date(2026, 9, 30)
SEPTEMBER = {"first": FIRST.isoformat(), "last": LAST.isoformat()}
EVIL_NAME = '=HYPERLINK("http://evil.example","点我")'
EVIL_NOTE = "+1 加班|' /C calc'!A0"

VOLUNTEER_HEADERS = ["志愿者编号", "姓名", "证件类型", "证件号码", "手机号码", "志愿者类型", "注册日期",
                     "服务时长（小时）", "服务记录数"]
SERVICE_HEADERS = ["志愿者编号", "姓名", "证件号码", "服务日期", "开始时间", "结束时间", "服务时长（小时）",
                   "服务内容", "服务地点", "记录方式", "记录组织", "记录组织代码", "服务记录编号"]


@dataclass
class World:
    """City 150200 → district D → sub-district S → community K (grid G) and its sibling K2, whose
    id is K's with a digit appended (paths ``/…/9100004/`` and ``/…/91000043/``), with grid G2."""

    city: Area
    district: Area
    community: Area
    grid: Area
    sibling: Area
    sibling_grid: Area
    ann: Volunteer
    bob: Volunteer
    sid: Volunteer
    staff: User
    sibling_staff: User
    organiser: User


def _area(level: AreaLevel, parent: Area | None, area_id: int, name: str, code: str) -> Area:
    boundary = factories.square(109.84, 40.65) if level == AreaLevel.GRID else None
    return factories.make_area(level, parent, area_id=area_id, name=name, code=code, boundary=boundary)


def _volunteer(grid: Area, name: str, kind_code: str = "volunteer_police") -> Volunteer:
    volunteer = factories.make_volunteer(grid, real_name=name, kind_code=kind_code)
    volunteer.created_at = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)  # 2026-03-02 00:30 in Shanghai
    return volunteer


@pytest.fixture
def world() -> World:
    city = _area(AreaLevel.CITY, None, 9_100_001, "包头市", "150200")
    district = _area(AreaLevel.DISTRICT, city, 9_100_002, "东河区", "150202")
    subdistrict = _area(AreaLevel.SUBDISTRICT, district, 9_100_003, "和平路街道", "150202001")
    community = _area(AreaLevel.COMMUNITY, subdistrict, 9_100_004, "东站社区", "150202001001")
    sibling = _area(AreaLevel.COMMUNITY, subdistrict, 91_000_043, "北梁社区", "150202001002")
    grid = _area(AreaLevel.GRID, community, 9_100_005, "东站一网格", "150202001001-01")
    sibling_grid = _area(AreaLevel.GRID, sibling, 91_000_053, "北梁一网格", "150202001002-01")
    assert sibling.path.startswith(community.path.rstrip("/"))
    return World(
        city=city, district=district, community=community, grid=grid, sibling=sibling, sibling_grid=sibling_grid,
        ann=_volunteer(grid, "张三"),
        bob=_volunteer(grid, EVIL_NAME, kind_code="alley_steward"),
        sid=_volunteer(sibling_grid, "李四"),
        staff=factories.make_user("staff", district),
        sibling_staff=factories.make_user("staff", sibling),
        organiser=factories.make_user("organiser", community),
    )


def _local(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI).astimezone(UTC)


def served(volunteer: Volunteer, grid: Area, day: date, minutes: int, *, title: str = "夜间巡逻",
           voided: bool = False) -> ServiceRecord:
    """A patrol served 19:00–21:00 local on ``day`` and its service record, as rewards keeps it."""
    shift = factories.make_shift(grid, title=title)
    shift.starts_at, shift.ends_at = _local(day, 19), _local(day, 21)
    assignment = factories.make_assignment(shift, volunteer)
    patrol = Patrol(assignment_id=assignment.id, volunteer_id=volunteer.id, shift_id=shift.id,
                    presence_status="rejected" if voided else "verified", served_minutes=minutes)
    db.session.add(patrol)
    db.session.flush()
    record = ServiceRecord(volunteer_id=volunteer.id, source_type="patrol", source_id=str(patrol.id),
                           minutes=minutes, served_on=day, grid_id=grid.id,
                           voided_at=utcnow() if voided else None)
    db.session.add(record)
    db.session.flush()
    return record


_manual_ids = iter(range(1, 10**9))


def by_hand(volunteer: Volunteer, grid: Area, day: date, minutes: int, note: str) -> ServiceRecord:
    """Hours an organiser entered (or a correction: a new record replacing a voided one)."""
    record = ServiceRecord(volunteer_id=volunteer.id, source_type="manual", source_id=f"m-{next(_manual_ids)}",
                           minutes=minutes, served_on=day, grid_id=grid.id, note=note)
    db.session.add(record)
    db.session.flush()
    return record


def export(client: FlaskClient, who: User, area: Area, headers: dict[str, str] | None = None, **query: str) -> Any:
    headers = {**factories.headers_for(who), **(headers or {})}
    # buffered: the body is read and the response closed, as a server does (it closes the temporary file)
    return client.get(URL, query_string={"area_id": area.id, **SEPTEMBER, **query}, headers=headers, buffered=True)


def sheets_of(response: Any) -> dict[str, list[list[Any]]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    workbook = load_workbook(io.BytesIO(response.data))
    return {sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)] for sheet in workbook.worksheets}


def number(volunteer: Volunteer) -> str:
    return f"150200-{volunteer.id:08d}"


def id_number(volunteer: Volunteer) -> str:
    from core import crypto

    return crypto.decrypt(volunteer.national_id_encrypted)


# --- what the workbook holds ------------------------------------------------------------------------


def test_the_workbook_holds_the_counted_service_of_the_area_and_period(client: FlaskClient, world: World) -> None:
    ann, bob, sid = world.ann, world.bob, world.sid
    first_day = served(ann, world.grid, FIRST, 90)
    served(ann, world.grid, FIRST - timedelta(days=1), 60)  # the day before: out
    served(ann, world.grid, LAST + timedelta(days=1), 60)  # the day after: out
    voided = served(ann, world.grid, date(2026, 9, 10), 120, voided=True)  # rejected: out
    correction = by_hand(ann, world.grid, date(2026, 9, 10), 45, f"更正：记录{voided.id}，实际45分钟")
    last_day = by_hand(bob, world.grid, LAST, 20, EVIL_NOTE)
    served(sid, world.sibling_grid, date(2026, 9, 5), 120)  # the sibling community /…/91000043/: out

    response = export(client, world.staff, world.community)
    assert response.mimetype == XLSX_MIMETYPE
    assert response.headers["Cache-Control"] == "private, no-store"
    book = sheets_of(response)
    assert list(book) == ["志愿者", "服务记录"]

    volunteers = book["志愿者"]
    assert volunteers[0] == VOLUNTEER_HEADERS
    phone = {v.id: v.user.phone.removeprefix("+86") for v in (ann, bob)}
    assert volunteers[1:] == [
        [number(ann), "张三", "居民身份证", id_number(ann), phone[ann.id], "义警",
         datetime(2026, 3, 2), 2.25, 2],
        [number(bob), "'" + EVIL_NAME, "居民身份证", id_number(bob), phone[bob.id], "小巷管家",
         datetime(2026, 3, 2), 0.33, 1],
    ]
    assert len(id_number(ann)) == 18 and "*" not in volunteers[1][3]  # in full

    records = book["服务记录"]
    assert records[0] == SERVICE_HEADERS
    place = "东站社区 东站一网格"
    assert records[1:] == [
        [number(ann), "张三", id_number(ann), datetime(2026, 9, 1), datetime(2026, 9, 1, 19), datetime(2026, 9, 1, 21),
         1.5, "夜间巡逻", place, "签到签退", "东站社区", "150202001001", first_day.id],
        [number(ann), "张三", id_number(ann), datetime(2026, 9, 10), None, None,
         0.75, correction.note, place, "手工录入", "东站社区", "150202001001", correction.id],
        [number(bob), "'" + EVIL_NAME, id_number(bob), datetime(2026, 9, 30), None, None,
         0.33, "'" + EVIL_NOTE, place, "手工录入", "东站社区", "150202001001", last_day.id],
    ]


def test_the_sibling_whose_path_extends_the_areas_gets_only_its_own(client: FlaskClient, world: World) -> None:
    served(world.ann, world.grid, FIRST, 90)
    served(world.sid, world.sibling_grid, FIRST, 120)
    book = sheets_of(export(client, world.staff, world.sibling))
    assert [row[0] for row in book["志愿者"][1:]] == [number(world.sid)]
    assert [row[1] for row in book["服务记录"][1:]] == ["李四"]
    # The district holds both; its export lists both communities' service.
    book = sheets_of(export(client, world.staff, world.district))
    assert [row[0] for row in book["志愿者"][1:]] == [number(world.ann), number(world.sid)]


def test_a_volunteer_from_elsewhere_is_handed_over_by_the_area_that_recorded_the_hours(
    client: FlaskClient, world: World
) -> None:
    served(world.sid, world.grid, FIRST, 60)  # Sid lives in the sibling community, served in K
    book = sheets_of(export(client, world.staff, world.community))
    assert [row[1] for row in book["志愿者"][1:]] == ["李四"]
    assert sheets_of(export(client, world.staff, world.sibling))["志愿者"][1:] == []


def test_no_service_in_the_period_is_a_workbook_of_headers(client: FlaskClient, world: World) -> None:
    served(world.ann, world.grid, date(2026, 8, 31), 60)
    book = sheets_of(export(client, world.staff, world.community))
    assert book == {"志愿者": [VOLUNTEER_HEADERS], "服务记录": [SERVICE_HEADERS]}


def test_english_headers_names_and_the_download(client: FlaskClient, world: World) -> None:
    served(world.ann, world.grid, FIRST, 60)
    response = export(client, world.staff, world.community, headers=EN)
    book = sheets_of(response)
    assert list(book) == ["Volunteers", "Service records"]
    assert book["Volunteers"][0][:4] == ["Volunteer number", "Name", "ID type", "ID number"]
    assert book["Volunteers"][1][2] == "Resident identity card" and book["Volunteers"][1][5] == "Volunteer police"
    assert book["Service records"][1][9] == "Checked in and out"
    disposition = response.headers["Content-Disposition"]
    assert f'filename="handover-{world.community.id}-2026-09-01_2026-09-30.xlsx"' in disposition
    zh = export(client, world.staff, world.community).headers["Content-Disposition"]
    assert unquote(zh.split("filename*=UTF-8''")[1]) == "志愿服务交接-东站社区-2026-09-01_2026-09-30.xlsx"
    # Read without closing the response (as a careless client does): the temporary file is closed
    # once read all the same (a ResourceWarning would fail the test).
    binary = client.get(URL, query_string={"area_id": world.community.id, **SEPTEMBER},
                        headers=factories.headers_for(world.staff, Accept="application/octet-stream"))
    assert binary.status_code == 200 and binary.mimetype == "application/octet-stream"
    assert int(binary.headers["Content-Length"]) == len(binary.data)
    assert sheets_of(binary)["志愿者"][1][1] == "张三"
    del binary
    gc.collect()


def test_the_layout_two_decimal_hours_and_a_frozen_header(client: FlaskClient, world: World) -> None:
    served(world.ann, world.grid, FIRST, 100)
    workbook = load_workbook(io.BytesIO(export(client, world.staff, world.community).data))
    records = workbook["服务记录"]
    assert records.freeze_panes == "A2"
    assert records["G2"].value == pytest.approx(1.67) and records["G2"].number_format == "0.00"
    assert records["D2"].number_format == "yyyy-mm-dd"


@pytest.mark.parametrize(("minutes", "expected"), [(60, "1.00"), (90, "1.50"), (20, "0.33"), (1, "0.02"), (1440, "24.00")])
def test_hours_have_two_decimals_rounded_half_up(minutes: int, expected: str) -> None:
    assert hours(minutes) == Decimal(expected)


# --- the audit entry --------------------------------------------------------------------------------


def test_every_export_is_in_the_audit_log(client: FlaskClient, world: World) -> None:
    served(world.ann, world.grid, FIRST, 90)
    by_hand(world.bob, world.grid, LAST, 30, "宣传")
    assert export(client, world.staff, world.community).status_code == 200
    audit = client.get("/api/v1/audit", query_string={"action": "records.handover_export"},
                       headers=factories.headers_for(world.staff))
    assert audit.status_code == 200
    (entry,) = audit.get_json()["items"]
    assert entry["actor_id"] == world.staff.id and entry["actor_role"] == "staff"
    assert entry["target_type"] == "area" and entry["target_id"] == str(world.community.id)
    assert entry["area_path"] == world.community.path
    assert entry["after"] == {
        "first": "2026-09-01", "last": "2026-09-30", "full_id_numbers": True,
        "volunteer_count": 2, "service_record_count": 2, "volunteer_ids": [world.ann.id, world.bob.id],
    }


# --- refusals ----------------------------------------------------------------------------------------


def _no_audit() -> None:
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                             .where(AuditEntry.action == "records.handover_export")) == 0


def test_only_officials_export_full_id_numbers(client: FlaskClient, world: World) -> None:
    served(world.ann, world.grid, FIRST, 90)
    assert_problem(export(client, world.ann.user, world.community), 403, "forbidden")
    assert_problem(export(client, world.organiser, world.community), 403, "forbidden")
    assert_problem(client.get(URL, query_string={"area_id": world.community.id, **SEPTEMBER}), 401, "unauthorized")
    _no_audit()


def test_an_area_outside_my_subtree_is_out_of_scope(client: FlaskClient, world: World) -> None:
    """Staff of the sibling community /…/91000043/ and of community /…/9100004/ each reach only
    their own, whatever the string prefix; areas are public, so the answer is 403 out_of_scope."""
    served(world.ann, world.grid, FIRST, 90)
    assert_problem(export(client, world.sibling_staff, world.community), 403, "out_of_scope")
    own_staff = factories.make_user("staff", world.community)
    assert_problem(export(client, own_staff, world.sibling), 403, "out_of_scope")
    assert_problem(export(client, own_staff, world.district), 403, "out_of_scope")
    other_city = factories.make_area(AreaLevel.CITY)
    assert_problem(export(client, factories.make_user("admin", other_city), world.community), 403, "out_of_scope")
    assert export(client, own_staff, world.community).status_code == 200
    assert export(client, factories.make_user("admin", world.city), world.community).status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"first": "2026-13-01"}, "first"),
        ({"last": "30.09.2026"}, "last"),
        ({"first": "2026-09-31"}, "first"),
        ({"last": "2026-08-31"}, "last"),  # before first
        ({"first": "2025-09-29"}, "last"),  # 367 days
        ({"first": "1999-12-31"}, "first"),
        ({"last": "2100-01-01"}, "last"),
        ({"first": "%ED%A0%80"}, "first"),  # a lone surrogate, percent-encoded
        ({"first": "9" * 10_000}, None),
        ({"area_id": "0"}, "area_id"),
        ({"area_id": "abc"}, "area_id"),
        ({"area_id": "99999999999"}, "area_id"),
        ({"area_id": "2000000000"}, "area_id"),  # no such area
    ],
)
def test_bad_arguments_are_422_and_export_nothing(
    client: FlaskClient, world: World, query: dict[str, str], field: str | None
) -> None:
    arguments = {"area_id": str(world.community.id), **SEPTEMBER, **query}
    raw = "&".join(f"{name}={value}" for name, value in arguments.items())  # values already URL-safe
    response = client.get(f"{URL}?{raw}", headers=factories.headers_for(world.staff))
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    body = assert_problem(response, response.status_code, "validation_failed" if response.status_code == 422
                          else body_code(response))
    if field is not None:
        assert field in body["errors"], body
    _no_audit()


def body_code(response: Any) -> str:
    return str(response.get_json(force=True)["code"])


@pytest.mark.parametrize("missing", ["area_id", "first", "last"])
def test_every_argument_is_required(client: FlaskClient, world: World, missing: str) -> None:
    arguments = {"area_id": str(world.community.id), **SEPTEMBER}
    del arguments[missing]
    response = client.get(URL, query_string=arguments, headers=factories.headers_for(world.staff))
    assert missing in assert_problem(response, 422, "validation_failed")["errors"]


def test_a_year_of_366_days_is_the_longest_period(client: FlaskClient, world: World) -> None:
    by_hand(world.ann, world.grid, date(2028, 12, 31), 60, "宣传")
    leap_year = {"first": "2028-01-01", "last": "2028-12-31"}
    assert sheets_of(export(client, world.staff, world.community, **leap_year))["志愿者"][1][7] == 1
    too_long = export(client, world.staff, world.community, first="2028-01-01", last="2029-01-01", headers=EN)
    assert assert_problem(too_long, 422, "validation_failed")["errors"] == {"last": ["A hand-over covers at most 366 days."]}


# --- queries -----------------------------------------------------------------------------------------


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the requests send (from request start to its end, the commit included),
    not the test's own setup."""
    seen: list[str] = []
    in_request = False

    def started(*_: Any, **__: Any) -> None:
        nonlocal in_request
        in_request = True

    def finished(*_: Any, **__: Any) -> None:
        nonlocal in_request
        in_request = False

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if in_request:
            seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    request_started.connect(started, app)
    request_finished.connect(finished, app)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
        request_started.disconnect(started, app)
        request_finished.disconnect(finished, app)


def test_the_number_of_queries_does_not_grow_with_volunteers_or_records(
    client: FlaskClient, world: World, statements: list[str]
) -> None:
    served(world.ann, world.grid, FIRST, 60)
    by_hand(world.ann, world.grid, LAST, 30, "宣传")
    statements.clear()
    assert export(client, world.staff, world.community).status_code == 200
    few = len(statements)
    for index in range(8):
        volunteer = _volunteer(world.grid, f"志愿者{index}")
        served(volunteer, world.grid, FIRST + timedelta(days=index), 60)
        by_hand(volunteer, world.grid, LAST, 30, "宣传")
    second_city = factories.make_branch()  # volunteers of another city (another city code) served here
    stranger = _volunteer(second_city[-1], "外地")
    served(stranger, world.grid, FIRST, 60)
    statements.clear()
    book = sheets_of(export(client, world.staff, world.community))
    assert len(book["志愿者"]) == 1 + 10 and len(book["服务记录"]) == 1 + 19
    assert book["志愿者"][-1][0] == f"{second_city[0].code}-{stranger.id:08d}"
    assert len(statements) == few, statements
    assert few <= 15, statements
