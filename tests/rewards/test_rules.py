"""Point rules through the API: versions, who sets and reads them, absurd values, and effective dates."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.db import utcnow
from core.extensions import db
from grids.models import AreaLevel
from rewards.ledger.models import LedgerEntry
from rewards.rules.models import PointRule
from tests import factories, races
from tests.problems import assert_problem
from tests.rewards.support import API, as_, ledger_invariant, rule_body, serve, set_rule  # noqa: F401


def rules_url(city: Any) -> str:
    return f"{API}/areas/{city.id}/point-rules"


def rule_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(PointRule))


def test_an_admin_sets_versions_and_everyone_in_the_city_reads_them(client, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    first = set_rule(client, admin, tree.city, daily_cap=40, streak_days=3, streak_bonus=15, expiry_years=1)
    assert first["version"] == 1 and first["city_id"] == tree.city.id
    assert first["rounding_minutes"] == 15 and first["daily_cap"] == 40 and first["expiry_years"] == 1
    assert first["report_bonus"] == {"red": 20, "orange": 10, "yellow": 5, "green": 2}
    assert first["manual_hours_earn_points"] is False and first["created_by"] == admin.id

    later = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    second = set_rule(client, admin, tree.city, points_per_hour=12, effective_from=later.isoformat())
    assert second["version"] == 2

    volunteer = factories.make_volunteer(tree.grid_a)
    organiser = factories.make_user("organiser", tree.community_a)
    for reader in (volunteer, organiser, admin):
        current = client.get(f"{rules_url(tree.city)}/current", headers=as_(reader))
        assert current.status_code == 200, current.get_json()
        assert current.get_json()["version"] == 1  # version 2 starts in two days
    page = client.get(f"{rules_url(tree.city)}?limit=1", headers=as_(volunteer)).get_json()
    rest = client.get(f"{rules_url(tree.city)}?cursor={page['next_cursor']}", headers=as_(volunteer)).get_json()
    assert [r["version"] for r in page["items"] + rest["items"]] == [2, 1]
    assert rest["next_cursor"] is None


def test_no_rule_yet_is_404_and_only_cities_have_rules(client, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    assert_problem(client.get(f"{rules_url(tree.city)}/current", headers=as_(admin)), 404, "no_point_rule")
    assert_problem(client.get(f"{rules_url(tree.district_a)}/current", headers=as_(admin)), 404, "not_a_city")
    assert_problem(client.post(rules_url(tree.district_a), json=rule_body(), headers=as_(admin)), 404, "not_a_city")
    assert_problem(client.get(f"{API}/areas/999999/point-rules", headers=as_(admin)), 404, "area_not_found")
    assert_problem(client.get(rules_url(tree.city)), 401, "unauthorized")


def test_only_an_admin_covering_the_city_sets_rules(client, tree) -> None:
    other_city = factories.make_area(AreaLevel.CITY, name="乌海市")
    outsider = factories.make_user("admin", other_city)
    staff = factories.make_user("staff", tree.district_a)
    city_staff = factories.make_user("staff", tree.city)
    organiser = factories.make_user("organiser", tree.community_a)
    volunteer = factories.make_volunteer(tree.grid_a)

    assert_problem(client.post(rules_url(tree.city), json=rule_body(), headers=as_(outsider)), 403, "out_of_scope")
    for caller in (staff, city_staff, organiser, volunteer):
        assert_problem(client.post(rules_url(tree.city), json=rule_body(), headers=as_(caller)), 403, "forbidden")
    # Reading is for those inside the city (or above it): not another city's people.
    assert_problem(client.get(rules_url(tree.city), headers=as_(outsider)), 403, "out_of_scope")
    stranger = factories.make_volunteer(factories.make_area(AreaLevel.GRID, other_city))
    assert_problem(client.get(f"{rules_url(tree.city)}/current", headers=as_(stranger)), 403, "out_of_scope")
    assert rule_count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("points_per_hour", -1),
        ("points_per_hour", 1001),
        ("points_per_hour", 2.5),
        ("points_per_hour", "10"),
        ("points_per_hour", True),
        ("rounding_minutes", 0),
        ("rounding_minutes", 241),
        ("daily_cap", 0),
        ("daily_cap", -5),
        ("daily_cap", 100_001),
        ("streak_days", 1),
        ("streak_days", 367),
        ("streak_bonus", -1),
        ("expiry_years", -1),
        ("expiry_years", 11),
        ("report_bonus", {"red": -1}),
        ("report_bonus", {"purple": 5}),
        ("report_bonus", {"red": 10_001}),
        ("report_bonus", [1, 2]),
        ("effective_from", "2026-01-01T00:00:00"),  # no offset
        ("effective_from", "not a date"),
        ("manual_hours_earn_points", "perhaps"),
        ("surprise", 1),  # unknown fields are refused, not ignored
    ],
)
def test_negative_or_absurd_values_are_422_and_write_nothing(client, tree, field, value) -> None:
    admin = factories.make_user("admin", tree.city)
    body = assert_problem(
        client.post(rules_url(tree.city), json=rule_body(**{field: value}), headers=as_(admin)),
        422, "validation_failed",
    )
    assert field in body["errors"]
    assert rule_count() == 0


def test_missing_fields_and_a_bonus_without_days_or_a_date_years_ahead_are_422(client, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    for body, field in (
        ({"points_per_hour": 10}, "effective_from"),
        ({"effective_from": utcnow().isoformat()}, "points_per_hour"),
        (rule_body(streak_bonus=10), "streak_days"),
        (rule_body(effective_from=(utcnow() + timedelta(days=4 * 366)).isoformat()), "effective_from"),
    ):
        problem = assert_problem(client.post(rules_url(tree.city), json=body, headers=as_(admin)), 422,
                                 "validation_failed")
        assert field in problem["errors"]
    assert_problem(client.post(rules_url(tree.city), data="{", headers=as_(admin, **{"Content-Type": "application/json"})),
                   400, "malformed_json")
    assert rule_count() == 0


def test_a_version_never_starts_before_the_latest_one(client, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    set_rule(client, admin, tree.city, effective_from=(utcnow() + timedelta(days=10)).isoformat())
    early = rule_body(effective_from=(utcnow() + timedelta(days=5)).isoformat())
    problem = assert_problem(client.post(rules_url(tree.city), json=early, headers=as_(admin)), 422, "validation_failed")
    assert "effective_from" in problem["errors"]
    assert rule_count() == 1


def test_a_change_applies_from_its_date_and_never_rewrites_points_given(client, tree) -> None:
    """Awards use the version in force when the service happened; a backdated change is refused."""
    admin = factories.make_user("admin", tree.city)
    set_rule(client, admin, tree.city)  # v1: 10 points an hour, from a month ago
    set_rule(client, admin, tree.city, points_per_hour=30,
             effective_from=(utcnow() - timedelta(hours=4)).isoformat())  # v2, before any award
    volunteer = factories.make_volunteer(tree.grid_a)

    # Served before v2 started (synced late): paid by v1. Served after: v2.
    before = serve(client, tree.grid_a, volunteer, started_ago=timedelta(hours=7))
    after = serve(client, tree.grid_a, volunteer, started_ago=timedelta(hours=3))
    entries = {e.source_id: e for e in db.session.scalars(sa.select(LedgerEntry))}
    assert (entries[str(before["patrol"]["id"])].amount, entries[str(before["patrol"]["id"])].rule_version) == (20, 1)
    assert (entries[str(after["patrol"]["id"])].amount, entries[str(after["patrol"]["id"])].rule_version) == (60, 2)

    # Points were given just now: a version starting an hour ago would contradict them.
    backdated = rule_body(points_per_hour=50, effective_from=(utcnow() - timedelta(hours=1)).isoformat())
    problem = assert_problem(client.post(rules_url(tree.city), json=backdated, headers=as_(admin)), 422,
                             "validation_failed")
    assert "effective_from" in problem["errors"]
    assert rule_count() == 2

    third = set_rule(client, admin, tree.city, points_per_hour=50,
                     effective_from=(utcnow() + timedelta(minutes=1)).isoformat())
    assert third["version"] == 3
    again = {e.source_id: (e.amount, e.rule_version) for e in db.session.scalars(sa.select(LedgerEntry))}
    assert again == {key: (e.amount, e.rule_version) for key, e in entries.items()}


def test_another_citys_awards_do_not_hold_back_this_citys_rules(client, tree) -> None:
    admin = factories.make_user("admin", tree.city)
    set_rule(client, admin, tree.city)
    serve(client, tree.grid_a, factories.make_volunteer(tree.grid_a))
    other_city = factories.make_area(AreaLevel.CITY)
    other_admin = factories.make_user("admin", other_city)
    backdated = set_rule(client, other_admin, other_city, effective_from=(utcnow() - timedelta(days=3)).isoformat())
    assert backdated["version"] == 1


@pytest.mark.committing
def test_two_admins_saving_at_once_get_distinct_versions_or_a_409(app: Flask) -> None:
    with app.app_context():
        city = factories.make_area(AreaLevel.CITY)
        headers = [factories.headers_for(factories.make_user("admin", city)) for _ in range(4)]
        city_id = city.id
        db.session.commit()
        db.session.remove()
    barrier = races.barrier(len(headers))
    results: list[Any] = [None] * len(headers)
    body = rule_body()  # the same effective_from: a tie is allowed, the higher version wins

    def post(index: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(f"{API}/areas/{city_id}/point-rules", json=body, headers=headers[index])
        results[index] = (response.status_code, response.get_json())

    races.run_threads([lambda i=i: post(i) for i in range(len(headers))])

    assert {status for status, _ in results} <= {201, 409}
    assert all(body["code"] == "rule_version_taken" for status, body in results if status == 409)
    created = sorted(body["version"] for status, body in results if status == 201)
    with app.app_context():
        stored = sorted(db.session.scalars(sa.select(PointRule.version).where(PointRule.city_id == city_id)))
    assert created == stored == list(range(1, len(created) + 1))
