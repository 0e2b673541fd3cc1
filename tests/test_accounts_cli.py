"""`flask accounts create-admin`: a new city's first admin, made at the console with a prompted password."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient

from accounts.cli import ADMIN_PASSWORD_ENV
from accounts.models import User
from core.audit import AuditEntry
from core.extensions import db
from tests import factories
from tests.conftest import Tree, run_cli

PASSWORD = "City-Keeper-2026"


def create_admin(app: Flask, *args: str, password_input: str | None = None, **env: str) -> Result:
    typed = password_input if password_input is not None else f"{PASSWORD}\n{PASSWORD}\n"
    return run_cli(app, ["accounts", "create-admin", *args], input=typed, env=env or None)


def user_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(User)) or 0


def login(client: FlaskClient, phone: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"phone": phone, "password": password})


def test_first_admin_of_a_new_city_by_code_with_a_prompted_password(
    app: Flask, client: FlaskClient
) -> None:
    city = factories.make_area("city", name="乌海市", code="150300")

    result = create_admin(app, "--phone", "139 1234 5678", "--area-code", "150300")

    assert result.exit_code == 0, result.output
    assert "Repeat for confirmation" in result.output and PASSWORD not in result.output
    user = db.session.scalars(sa.select(User).where(User.phone == "+8613912345678")).one()
    assert (user.role, user.area_id, user.display_name, user.created_by_id) == (
        "admin", city.id, "乌海市管理员", None
    )
    entry = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "user.create", AuditEntry.target_id == str(user.id))
    ).one()
    assert (entry.actor_id, entry.area_path, entry.after["role"]) == (None, city.path, "admin")
    assert "password" not in entry.after and "password_hash" not in entry.after

    answer = login(client, "+8613912345678")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["user"]["role"] == "admin"
    assert answer.get_json()["user"]["area"]["id"] == city.id


def test_by_id_with_a_name_and_the_password_from_the_environment(app: Flask, client: FlaskClient) -> None:
    city = factories.make_area("city")

    result = create_admin(
        app, "--phone", "+8613912345670", "--area-id", str(city.id), "--name", "市平安办",
        password_input="", **{ADMIN_PASSWORD_ENV: PASSWORD},
    )

    assert result.exit_code == 0, result.output
    assert "Password" not in result.output  # nothing was asked
    assert login(client, "+8613912345670").status_code == 200
    assert db.session.scalar(sa.select(User.display_name).where(User.phone == "+8613912345670")) == "市平安办"


@pytest.mark.parametrize(
    ("args", "env", "typed", "message"),
    [
        # the two typed passwords differ, and input ends before a matching pair
        (["--phone", "13912345671"], {}, f"{PASSWORD}\nother-password\n", "do not match"),
        (["--phone", "13912345671"], {ADMIN_PASSWORD_ENV: "7-chars"}, "", "password: Length must be between 8 and 128."),
        (["--phone", "1391234"], {}, None, "phone: Not a valid mainland China mobile number."),
    ],
)
def test_refused_input_writes_nothing(
    app: Flask, tree: Tree, args: list[str], env: dict[str, str], typed: str | None, message: str
) -> None:
    before = user_count()

    result = create_admin(app, *args, "--area-code", tree.city.code, "--lang", "en", password_input=typed, **env)

    assert result.exit_code == 1, result.output
    assert message in result.output
    assert user_count() == before


def test_area_must_be_an_existing_city(app: Flask, tree: Tree) -> None:
    before = user_count()

    district = create_admin(app, "--phone", "13912345672", "--area-code", tree.district_a.code)
    unknown = create_admin(app, "--phone", "13912345672", "--area-id", "2147483000", "--lang", "en")

    assert district.exit_code == 1 and "area_id: 必须是市级区域。" in district.output
    assert unknown.exit_code == 1 and "--area-id: Area not found." in unknown.output
    assert user_count() == before


def test_a_phone_already_registered_is_refused_clearly(app: Flask, tree: Tree) -> None:
    volunteer = factories.make_user("volunteer", tree.grid_a)
    before = user_count()

    result = create_admin(app, "--phone", volunteer.phone, "--area-code", tree.city.code, "--lang", "en")

    assert result.exit_code == 1
    assert "This phone number is already registered." in result.output
    assert user_count() == before
    assert db.session.get(User, volunteer.id).role == "volunteer"


def test_exactly_one_way_to_name_the_city(app: Flask, tree: Tree) -> None:
    neither = create_admin(app, "--phone", "13912345673")
    both = create_admin(app, "--phone", "13912345673", "--area-code", tree.city.code, "--area-id", str(tree.city.id))

    assert neither.exit_code == both.exit_code == 2  # a usage error
    assert "exactly one of --area-code and --area-id" in both.output
