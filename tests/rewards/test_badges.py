"""Badges: first patrol, star levels by service hours, ten confirmed reports, a month without absence."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from core.db import utcnow
from core.extensions import db
from patrols.models import Patrol
from rewards import signals
from rewards.awarding.models import ServiceRecord
from rewards.badges import service as badges
from rewards.badges.models import VolunteerBadge
from rewards.badges.tasks import grant_months_without_absence, month_to_settle
from tests import factories
from tests.problems import assert_problem
from tests.rewards.support import API, INSIDE, as_, ledger_invariant, serve  # noqa: F401


@pytest.fixture
def earned() -> Iterator[list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []

    def receiver(sender: str, **kwargs: Any) -> None:
        assert sender == signals.SENDER
        sent.append(kwargs)

    signals.badge_earned.connect(receiver)
    yield sent
    signals.badge_earned.disconnect(receiver)


def badge_codes(client: Any, volunteer: Any) -> list[str]:
    response = client.get(f"{API}/me/badges", headers=as_(volunteer))
    assert response.status_code == 200, response.get_json()
    return [item["badge"] for item in response.get_json()["items"]]


def add_service(volunteer: Any, minutes: int, *, served_on: date | None = None, source: str = "manual",
                voided: bool = False) -> None:
    """Service records adding up to ``minutes``, at most a day's worth each, on days from ``served_on``."""
    day = served_on or date(2025, 1, 5)
    while minutes > 0:
        chunk = min(minutes, 1440)
        db.session.add(ServiceRecord(
            volunteer_id=volunteer.id, source_type=source, source_id=uuid.uuid4().hex, minutes=chunk,
            served_on=day, grid_id=volunteer.home_grid_id, voided_at=utcnow() if voided else None,
        ))
        minutes -= chunk
        day += timedelta(days=1)
    db.session.flush()


def post_hours(client: Any, organiser: Any, volunteer: Any, minutes: int, days_ago: int = 1) -> Any:
    day = (utcnow() + timedelta(hours=8)).date() - timedelta(days=days_ago)
    return client.post(
        f"{API}/service-hours",
        json={"volunteer_id": volunteer.id, "served_on": day.isoformat(), "minutes": minutes, "note": "值守"},
        headers=as_(organiser),
    )


def test_the_first_served_patrol_earns_a_badge_once(client, tree, earned) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    serve(client, tree.grid_a, volunteer, started_ago=timedelta(hours=7))
    serve(client, tree.grid_a, volunteer)

    assert badge_codes(client, volunteer) == ["first_patrol"]
    assert [(e["volunteer_id"], e["badge"]) for e in earned] == [(volunteer.id, "first_patrol")]
    assert isinstance(earned[0]["earned_at"], datetime)
    [item] = client.get(f"{API}/me/badges", headers=as_(volunteer)).get_json()["items"]
    assert (item["name_zh"], item["name_en"]) == ("首次巡逻", "First patrol")


def test_hand_entered_hours_are_no_patrol_but_count_for_stars(client, tree, earned) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    for days_ago in range(1, 5):
        assert post_hours(client, organiser, volunteer, 1440, days_ago).status_code == 201
    assert badge_codes(client, volunteer) == []  # 96 hours
    assert post_hours(client, organiser, volunteer, 239, 5).status_code == 201
    assert badge_codes(client, volunteer) == []  # 99 h 59 min
    assert post_hours(client, organiser, volunteer, 1, 6).status_code == 201
    assert badge_codes(client, volunteer) == ["star_1"]
    assert [e["badge"] for e in earned] == ["star_1"]


def test_star_levels_follow_the_national_hours_and_are_granted_once(client, tree, earned) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    add_service(volunteer, 300 * 60 - 61)
    add_service(volunteer, 50_000, voided=True)  # voided service does not count
    post_hours(client, organiser, volunteer, 60)
    assert badge_codes(client, volunteer) == ["star_1"]
    post_hours(client, organiser, volunteer, 1, days_ago=2)
    assert badge_codes(client, volunteer) == ["star_1", "star_2"]

    add_service(volunteer, 1200 * 60)  # 1500 hours in all
    post_hours(client, organiser, volunteer, 1, days_ago=3)
    assert badge_codes(client, volunteer) == ["star_1", "star_2", "star_3", "star_4", "star_5"]
    post_hours(client, organiser, volunteer, 600, days_ago=4)
    assert [e["badge"] for e in earned] == ["star_1", "star_2", "star_3", "star_4", "star_5"]
    assert db.session.scalar(sa.select(sa.func.count()).where(VolunteerBadge.volunteer_id == volunteer.id)) == 5
    assert badges.STAR_HOURS == {"star_1": 100, "star_2": 300, "star_3": 600, "star_4": 1000, "star_5": 1500}


def test_ten_confirmed_reports_earn_a_badge(client, tree, earned) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    report_ids = []
    for _ in range(11):
        body = {
            "client_id": str(uuid.uuid4()), "category": "other", "level": "green", "description": "路灯不亮",
            "lat": INSIDE[0], "lon": INSIDE[1], "device_time": (utcnow() - timedelta(minutes=5)).isoformat(),
        }
        response = client.post(f"{API}/reports", json=body, headers=as_(volunteer))
        assert response.status_code == 201, response.get_json()
        report_ids.append(response.get_json()["id"])
    for report_id in report_ids[:9]:
        client.post(f"{API}/reports/{report_id}/acknowledge", json={}, headers=as_(organiser))
    assert badge_codes(client, volunteer) == []  # nine confirmed, two still open

    client.post(f"{API}/reports/{report_ids[9]}/resolve", json={"note": "已修"}, headers=as_(organiser))
    client.post(f"{API}/reports/{report_ids[10]}/acknowledge", json={}, headers=as_(organiser))

    assert badge_codes(client, volunteer) == ["reports_10"]
    assert [e["badge"] for e in earned] == ["reports_10"]


def test_badges_of_a_volunteer_for_managers_in_scope(client, tree) -> None:
    volunteer = factories.make_volunteer(tree.grid_a)
    badges.grant(volunteer.id, "first_patrol")
    url = f"{API}/volunteers/{volunteer.id}/badges"
    body = client.get(url, headers=as_(factories.make_user("organiser", tree.community_a))).get_json()
    assert [item["badge"] for item in body["items"]] == ["first_patrol"]
    assert_problem(client.get(url, headers=as_(factories.make_user("organiser", tree.community_b))), 404,
                   "volunteer_not_found")
    assert badges.grant(volunteer.id, "first_patrol") is None
    with pytest.raises(ValueError):
        badges.grant(volunteer.id, "best_volunteer_ever")


# --- a month without absence -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "month"),
    [(date(2026, 12, 1), date(2026, 10, 1)), (date(2026, 12, 2), date(2026, 11, 1)),
     (date(2026, 12, 31), date(2026, 11, 1)), (date(2027, 1, 2), date(2026, 12, 1))],
)
def test_the_month_settled_is_the_last_one_once_it_ended_everywhere(today, month) -> None:
    assert month_to_settle(today) == month


def absent_on(grid: Any, volunteer: Any, starts_at: datetime) -> Any:
    shift = factories.make_shift(grid, starts_in=starts_at - utcnow())
    return factories.make_assignment(shift, volunteer, status="absent")


def test_a_month_with_service_and_no_absence_earns_the_badge_once(tree, earned) -> None:
    november = date(2026, 11, 1)
    regular, absentee, reconciled, idle, late_in_month = (factories.make_volunteer(tree.grid_a) for _ in range(5))
    for volunteer in (regular, absentee, reconciled, late_in_month):
        add_service(volunteer, 120, served_on=date(2026, 11, 12), source="patrol")
    absent_on(tree.grid_a, absentee, datetime(2026, 11, 20, 11, tzinfo=UTC))
    # A no-show whose late check-in an organiser approved: served after all, not an absence.
    place = absent_on(tree.grid_a, reconciled, datetime(2026, 11, 21, 11, tzinfo=UTC))
    patrol = Patrol(assignment_id=place.id, volunteer_id=reconciled.id, shift_id=place.shift_id,
                    presence_status="approved", served_minutes=60)
    db.session.add(patrol)
    db.session.flush()
    db.session.add(ServiceRecord(volunteer_id=reconciled.id, source_type="patrol", source_id=str(patrol.id),
                                 minutes=60, served_on=date(2026, 11, 21), grid_id=tree.grid_a.id))
    # 17:00 UTC on 31 October is 01:00 on 1 November in the grid's zone: a November absence.
    absent_on(tree.grid_a, regular, datetime(2026, 10, 31, 15, tzinfo=UTC))
    absent_on(tree.grid_a, late_in_month, datetime(2026, 10, 31, 17, tzinfo=UTC))
    add_service(idle, 60, served_on=date(2026, 11, 3), source="manual")  # hand-entered is no patrol
    add_service(absentee, 60, served_on=date(2026, 12, 1), source="patrol")

    assert grant_months_without_absence(november, batch_size=2) == 2
    assert grant_months_without_absence(november) == 0

    holders = dict(db.session.execute(
        sa.select(VolunteerBadge.volunteer_id, VolunteerBadge.details).where(
            VolunteerBadge.badge == "month_without_absence")
    ).all())
    assert holders == {regular.id: {"month": "2026-11"}, reconciled.id: {"month": "2026-11"}}
    assert sorted(e["volunteer_id"] for e in earned) == sorted([regular.id, reconciled.id])
