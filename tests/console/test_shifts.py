"""The console's Shifts page through the test client: a community's week, grid by grid, with gaps;
a shift's roster; the same refusals as the API (scope, missing ids, bad input)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from core.db import utcnow
from core.extensions import db
from patrols.models import Patrol
from tests import factories
from tests.conftest import Tree
from tests.console.support import Console, signed_in

ZONE = ZoneInfo("Asia/Shanghai")


@dataclass
class Chip:
    shift_id: int
    grid_id: int
    day: str
    classes: list[str]
    badges: list[str] = field(default_factory=list)
    headcount: str = ""


class WeekTable(HTMLParser):
    """The shift chips of the week table: which grid row, which day column, which markers."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.chips: list[Chip] = []
        self.week: str | None = None
        self._grid = 0
        self._day = ""
        self._chip: Chip | None = None
        self._in_headcount = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if a.get("data-test") == "week":
            self.week = a["data-week"]
        if tag == "tr" and "data-grid" in a:
            self._grid = int(a["data-grid"])
        if tag == "td" and "data-date" in a:
            self._day = a["data-date"]
        if a.get("data-test") == "shift":
            self._chip = Chip(int(a["data-shift"]), self._grid, self._day, a["class"].split())
            self.chips.append(self._chip)
        elif self._chip is not None and a.get("data-test") in ("gap", "cancelled", "unmet-kinds"):
            self._chip.badges.append(a["data-test"])
        self._in_headcount = self._chip is not None and a.get("data-test") == "headcount"

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._chip = None

    def handle_data(self, data: str) -> None:
        if self._in_headcount and self._chip is not None:
            self._chip.headcount += data
            self._in_headcount = False

    def by_id(self) -> dict[int, Chip]:
        return {chip.shift_id: chip for chip in self.chips}


def week_text(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def next_monday() -> date:
    today = utcnow().astimezone(ZONE).date()
    return today - timedelta(days=today.weekday()) + timedelta(days=7)


def at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE).astimezone(UTC)


def shift_at(grid: Any, start: datetime, *, hours: float = 2, **kwargs: Any) -> Any:
    shift = factories.make_shift(grid, **kwargs)
    shift.starts_at, shift.ends_at = start, start + timedelta(hours=hours)
    db.session.flush()
    return shift


def main_of(html: str) -> str:
    match = re.search(r"<main.*</main>", html, re.S)
    assert match
    return match.group(0)


@pytest.fixture
def organiser_console(client: FlaskClient, tree: Tree) -> Console:
    return signed_in(client, factories.make_user("organiser", tree.community_a))


def test_the_week_shows_exactly_the_communitys_shifts_at_their_local_day_with_gaps(
    client: FlaskClient, tree: Tree, organiser_console: Console
) -> None:
    monday = next_monday()
    volunteers = [factories.make_volunteer(tree.grid_a, real_name=f"队员{n}") for n in range(3)]
    # Monday 00:00 local (Sunday 16:00 UTC): the first instant of the week, in; short by one: a gap.
    first = shift_at(tree.grid_a, at(monday), min_headcount=2, title="凌晨巡逻")
    factories.make_assignment(first, volunteers[0])
    # Sunday 23:30 local: the last half hour of the week, in; assigned == minimum: not a gap.
    last = shift_at(tree.grid_a_east, at(monday + timedelta(days=6), 23, 30), min_headcount=1, backup_slots=1)
    factories.make_assignment(last, volunteers[1])
    factories.make_assignment(last, volunteers[2], role="backup")  # a backup is no primary
    # Wednesday 07:00 local is Tuesday 23:00 UTC: shown on Wednesday; nobody yet: a gap.
    wednesday = shift_at(tree.grid_a_east, at(monday + timedelta(days=2), 7), min_headcount=1, max_headcount=4)
    # Cancelled while short: shown, never a gap.
    cancelled = shift_at(tree.grid_a, at(monday + timedelta(days=3), 19), min_headcount=2)
    cancelled.status, cancelled.cancelled_at, cancelled.cancel_reason = "cancelled", utcnow(), "下雨"
    # Outside the week or the community: never shown.
    next_week = shift_at(tree.grid_a, at(monday + timedelta(days=7)))
    before = shift_at(tree.grid_a, at(monday) - timedelta(minutes=1))
    sibling = shift_at(tree.grid_a2, at(monday + timedelta(days=1), 19))
    db.session.flush()

    page = organiser_console.get(f"/console/shifts/?community={tree.community_a.id}&week={week_text(monday)}")
    assert page.status_code == 200
    table = WeekTable(page.get_data(as_text=True))
    chips = table.by_id()
    assert table.week == week_text(monday)
    assert set(chips) == {first.id, last.id, wednesday.id, cancelled.id}
    assert not {next_week.id, before.id, sibling.id} & set(chips)
    assert (chips[first.id].grid_id, chips[first.id].day) == (tree.grid_a.id, monday.isoformat())
    assert (chips[last.id].grid_id, chips[last.id].day) == (tree.grid_a_east.id, (monday + timedelta(days=6)).isoformat())
    assert chips[wednesday.id].day == (monday + timedelta(days=2)).isoformat()
    assert chips[first.id].headcount == "1/2/3" and chips[last.id].headcount == "1/1/3"
    gaps = {chip.shift_id for chip in table.chips if "gap" in chip.classes}
    assert gaps == {chip.shift_id for chip in table.chips if "gap" in chip.badges} == {first.id, wednesday.id}
    assert chips[cancelled.id].badges == ["cancelled"]
    assert 'data-test="gap-count"' in page.get_data(as_text=True)

    # The very shifts the API's schedule answers the same caller for those dates.
    api = client.get(
        f"/api/v1/areas/{tree.community_a.id}/shifts?from={monday}&to={monday + timedelta(days=6)}"
        "&include_cancelled=true&limit=100",
        headers=factories.headers_for(_organiser_of(tree)),
    ).get_json()
    assert {item["id"] for item in api["items"]} == set(chips)
    assert {item["id"] for item in api["items"] if item["below_minimum"] and item["status"] == "scheduled"} == gaps


def _organiser_of(tree: Tree) -> Any:
    return factories.make_user("organiser", tree.community_a)


def test_a_shift_already_over_is_no_gap_even_when_short(tree: Tree, organiser_console: Console) -> None:
    last_monday = next_monday() - timedelta(days=14)
    over = shift_at(tree.grid_a, at(last_monday + timedelta(days=2), 19), min_headcount=2)
    page = organiser_console.get(f"/console/shifts/?community={tree.community_a.id}&week={week_text(last_monday)}")
    chip = WeekTable(page.get_data(as_text=True)).by_id()[over.id]
    assert "gap" not in chip.classes and chip.badges == [] and chip.headcount == "0/2/3"


def test_a_week_longer_than_the_pages_read_says_it_is_cut_short(
    tree: Tree, organiser_console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.shifts import service

    monkeypatch.setattr(service, "MAX_LIMIT", 2)
    monkeypatch.setattr(service, "MAX_PAGES", 2)
    monday = next_monday()
    for hour in range(5):
        shift_at(tree.grid_a, at(monday, 8 + hour * 2))
    page = organiser_console.get(f"/console/shifts/?community={tree.community_a.id}&week={week_text(monday)}")
    html = page.get_data(as_text=True)
    assert len(WeekTable(html).chips) == 4 and 'data-test="truncated"' in html


def test_an_organiser_lands_on_this_week_of_their_community_with_links_to_the_next_and_previous(
    tree: Tree, organiser_console: Console
) -> None:
    page = organiser_console.get("/console/shifts/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    today = utcnow().astimezone(ZONE).date()
    monday = today - timedelta(days=today.weekday())
    assert WeekTable(html).week == week_text(monday)
    assert f'data-community="{tree.community_a.id}"' in html
    for link, day in (("previous-week", monday - timedelta(days=7)), ("next-week", monday + timedelta(days=7))):
        expected = f'data-test="{link}" href="/console/shifts/?community={tree.community_a.id}&amp;week={week_text(day)}"'
        assert expected in html
    # Every grid of the community has its row, even without a shift.
    assert html.count('data-test="grid-row"') == 2


def test_staff_choose_among_the_communities_of_their_district(client: FlaskClient, tree: Tree) -> None:
    user = factories.make_user("staff", tree.district_a)
    staff = signed_in(client, user)
    html = staff.get("/console/shifts/").get_data(as_text=True)
    offered = set(map(int, re.findall(r'data-test="community-choice" data-community="(\d+)"', html)))
    assert offered == {tree.community_a.id, tree.community_a2.id}
    api = client.get("/api/v1/areas?level=community&limit=100", headers=factories.headers_for(user)).get_json()
    assert offered == {item["id"] for item in api["items"]}
    found = staff.get("/console/shifts/?q=北梁").get_data(as_text=True)
    assert set(map(int, re.findall(r'data-test="community-choice" data-community="(\d+)"', found))) == {tree.community_a2.id}
    assert staff.get(f"/console/shifts/?community={tree.community_a2.id}").status_code == 200
    assert staff.get(f"/console/shifts/?community={tree.community_b.id}").status_code == 403


def test_a_sibling_community_is_refused_as_the_api_refuses_it(client: FlaskClient, tree: Tree) -> None:
    organiser = factories.make_user("organiser", tree.community_a)
    console = signed_in(client, organiser)
    page = console.get(f"/console/shifts/?community={tree.community_a2.id}")
    assert page.status_code == 403
    assert 'data-test="week"' not in page.get_data(as_text=True)
    api = client.get(f"/api/v1/areas/{tree.community_a2.id}/shifts", headers=factories.headers_for(organiser))
    assert api.status_code == 403 and api.get_json()["code"] == "out_of_scope"


@pytest.mark.parametrize("query, status", [
    ("community=99999", 404),  # no such area: as the API's area_not_found
    ("community=abc", 422),
    ("community=0", 422),
    ("community=99999999999999999999", 422),
    ("week=junk", 422),
    ("week=2026-W54", 422),
    ("week=2026-W00", 422),
    ("week=2025-W53", 422),  # 2025 has 52 ISO weeks
    ("week=1999-W10", 422),
    ("week=2026-W49%0A", 422),
    ("week=%ED%A0%80", 422),  # a lone surrogate, percent-encoded
    ("q=" + "社" * 51, 422),
])
def test_junk_arguments_are_a_4xx_page(tree: Tree, organiser_console: Console, query: str, status: int) -> None:
    page = organiser_console.get("/console/shifts/?" + query)
    assert page.status_code == status
    assert page.mimetype == "text/html"


def test_an_area_that_is_not_a_community_is_refused(tree: Tree, organiser_console: Console) -> None:
    assert organiser_console.get(f"/console/shifts/?community={tree.grid_a.id}").status_code == 422
    assert organiser_console.get(f"/console/shifts/?community={tree.subdistrict_a.id}").status_code == 403


def test_a_shift_shows_its_roster_as_the_api_answers_a_manager(
    client: FlaskClient, tree: Tree, organiser_console: Console
) -> None:
    shift = shift_at(tree.grid_a, at(next_monday(), 19), min_headcount=2, backup_slots=1, title="夜巡")
    on_patrol = factories.make_volunteer(tree.grid_a, real_name="王五")
    backup = factories.make_volunteer(tree.grid_a, real_name="赵六", kind_code="alley_steward")
    gone = factories.make_volunteer(tree.grid_a, real_name="钱七")
    primary = factories.make_assignment(shift, on_patrol)
    factories.make_assignment(shift, backup, role="backup")
    factories.make_assignment(shift, gone, status="withdrawn")
    db.session.add(Patrol(assignment_id=primary.id, volunteer_id=on_patrol.id, shift_id=shift.id,
                          check_in_client_id=str(uuid.uuid4()), check_in_device_at=shift.starts_at,
                          check_in_received_at=shift.starts_at, presence_status="verified"))
    db.session.flush()

    page = organiser_console.get(f"/console/shifts/{shift.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    rows = re.findall(r'data-test="place" data-assignment="(\d+)" data-status="(\w+)" data-role="(\w+)"', html)
    api = client.get(f"/api/v1/shifts/{shift.id}/assignments",
                     headers=factories.headers_for(_organiser_of(tree))).get_json()["items"]
    assert [(int(i), s, r) for i, s, r in rows] == [(item["id"], item["status"], item["role"]) for item in api]
    for item in api:
        assert item["volunteer_name"] in html
    checked = re.findall(r'data-test="checked-in" data-checked-in="(\w+)"', html)
    assert checked == ["true", "false", "false"]
    assert 'data-test="gap"' in html  # one primary of two
    assert f'week={week_text(next_monday())}' in html  # back to the shift's week


def test_a_shift_out_of_reach_is_the_404_of_a_missing_id(tree: Tree, organiser_console: Console) -> None:
    sibling = shift_at(tree.grid_a2, at(next_monday(), 19))
    out_of_reach = organiser_console.get(f"/console/shifts/{sibling.id}")
    missing = organiser_console.get("/console/shifts/99999999")
    assert out_of_reach.status_code == missing.status_code == 404
    assert main_of(out_of_reach.get_data(as_text=True)) == main_of(missing.get_data(as_text=True))
    assert organiser_console.get("/console/shifts/99999999999999999999").status_code == 404


def test_volunteers_and_strangers_stay_out(client: FlaskClient, tree: Tree) -> None:
    signed_out = client.get(f"/console/shifts/?community={tree.community_a.id}")
    assert signed_out.status_code == 302
    assert "/console/login?next=" in signed_out.headers["Location"]
    volunteer = factories.make_volunteer(tree.grid_a)
    assert Console(client).sign_in(volunteer.user).status_code == 403  # no console session for them


def test_a_cancelled_shift_shows_why_and_is_no_gap(tree: Tree, organiser_console: Console) -> None:
    shift = shift_at(tree.grid_a, at(next_monday(), 19), min_headcount=2)
    shift.status, shift.cancelled_at, shift.cancel_reason = "cancelled", utcnow(), "暴雨预警"
    db.session.flush()
    html = organiser_console.get(f"/console/shifts/{shift.id}").get_data(as_text=True)
    assert 'data-test="cancelled"' in html and "暴雨预警" in html
    assert 'data-test="gap"' not in html and 'data-test="empty-roster"' in html
