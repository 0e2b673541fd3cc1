"""Answers volunteers gives to other packages' questions (blinker signals), connected by ``init_app``."""

from __future__ import annotations

from typing import Any, Unpack

import sqlalchemy as sa

from accounts import signals as account_signals
from core.extensions import db
from volunteers.models import Volunteer


def _volunteer_of(_sender: Any, **asked: Unpack[account_signals.AccountLinksAsked]) -> dict[str, int | None]:
    volunteer_id = db.session.scalar(sa.select(Volunteer.id).where(Volunteer.user_id == asked["user_id"]))
    return {"volunteer_id": volunteer_id}


def connect() -> None:
    account_signals.account_links.connect(_volunteer_of)
