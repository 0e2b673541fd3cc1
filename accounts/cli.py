"""``flask accounts ...`` commands: what an operator does at the console, never through the API."""

from __future__ import annotations

import click
import marshmallow as ma
import sqlalchemy as sa
from flask.cli import AppGroup

from accounts import service
from accounts.schemas import UserCreateSchema
from core import i18n
from core.auth import Role
from core.cli import error_lines, language_option
from core.errors import ApiError
from core.extensions import db
from grids.models import Area

accounts_cli = AppGroup("accounts", help="Accounts of organisers, staff and admins.")

#: Where automation passes the new admin's password instead of typing it at the prompt.
ADMIN_PASSWORD_ENV = "SHOUWANG_ADMIN_PASSWORD"


def _fail(lines: list[str], summary: str) -> click.ClickException:
    db.session.rollback()
    for line in lines:
        click.echo(line, err=True)
    return click.ClickException(summary)


@accounts_cli.command("create-admin")
@click.option("--phone", required=True, help="Mainland mobile number; the admin logs in with it.")
@click.option("--area-code", help="Code of the city, e.g. 150200.")
@click.option("--area-id", type=click.IntRange(min=1), help="Id of the city.")
@click.option("--name", "display_name", help="Display name  [default: the city's name + 管理员]")
@click.password_option(
    envvar=ADMIN_PASSWORD_ENV, show_envvar=True,
    help=f"Asked twice, hidden, unless {ADMIN_PASSWORD_ENV} is set; 8 to 128 characters.",
)
@language_option
def create_admin_command(
    phone: str, area_code: str | None, area_id: int | None, display_name: str | None,
    password: str, lang: str,
) -> None:
    """Create an admin of a city: a new city's first admin, or another one.

    The city is given by its code or its id. The account is recorded in the audit log with no
    actor (a change made at the console). Exits non-zero, writing nothing, on any error.
    """
    if (area_code is None) == (area_id is None):
        raise click.UsageError("Give exactly one of --area-code and --area-id.")
    area = (
        db.session.scalar(sa.select(Area).where(Area.code == area_code))
        if area_code is not None
        else db.session.get(Area, area_id)
    )
    if area is None:
        option = "--area-code" if area_code is not None else "--area-id"
        raise _fail([], f"{option}: {i18n.translate('Area not found.', lang)}")
    try:
        data = UserCreateSchema().load({
            "phone": phone, "password": password, "role": Role.ADMIN.value, "area_id": area.id,
            "display_name": display_name if display_name is not None else f"{area.name}管理员",
        })
        user = service.create_city_admin(data)
    except ma.ValidationError as invalid:
        raise _fail(error_lines(invalid.messages, lang), "Nothing was written.") from None
    except ApiError as refused:
        summary = i18n.translate(refused.detail, lang) if refused.detail else "Nothing was written."
        raise _fail(error_lines(refused.errors or {}, lang), summary) from None
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()  # a CLI command is its own unit of work: this is its one commit
    click.echo(f"Created admin #{user.id} {user.phone} ({user.display_name}) of {area.name} ({area.code}).")
