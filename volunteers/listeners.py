"""Answers volunteers gives to other packages' questions (blinker signals), connected by ``init_app``."""

from __future__ import annotations

from typing import Any, Unpack

import sqlalchemy as sa

from accounts import signals as account_signals
from accounts.service import register_account_link
from core.extensions import db
from volunteers.models import Volunteer


def _volunteer_of(_sender: Any, **asked: Unpack[account_signals.AccountLinksAsked]) -> dict[str, int | None]:
    volunteer_id = db.session.scalar(sa.select(Volunteer.id).where(Volunteer.user_id == asked["user_id"]))
    return {"volunteer_id": volunteer_id}


def _volunteer_id_of(user_id: sa.ColumnElement[int]) -> sa.ColumnElement[int | None]:
    """The same answer as a column of the session check (accounts.tokens.register_account_link),
    of table columns: the check runs as plain Core."""
    volunteers = Volunteer.__table__
    return sa.select(volunteers.c.id).where(volunteers.c.user_id == user_id).scalar_subquery()


def connect() -> None:
    account_signals.account_links.connect(_volunteer_of)
    register_account_link("volunteer_id", _volunteer_id_of)
