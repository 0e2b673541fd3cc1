"""The location consent raced with real threads and commits (SQLite and PostgreSQL): grants at once
make one consent; a withdrawal racing uploads lets no point in after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from core.audit import AuditEntry
from core.extensions import db
from patrols.models import Patrol
from patrols.privacy.models import LocationConsent
from patrols.tracks.models import TrackPoint
from tests import factories, races

pytestmark = pytest.mark.committing

API = "/api/v1"
CONSENT = f"{API}/me/location-consent"
TERMS = "2026-12"
UPLOADS = 8


@dataclass(frozen=True)
class Setup:
    volunteer_id: int
    assignment_id: int
    headers: dict[str, str]
    starts_at: datetime


def setup(app: Flask, *, consent: bool) -> Setup:
    with app.app_context():
        *_, grid = factories.make_branch()
        shift = factories.make_shift(grid, starts_in=timedelta(minutes=-30), hours=2)
        volunteer = factories.make_volunteer(grid, location_consent=consent)
        made = Setup(
            volunteer_id=volunteer.id,
            assignment_id=factories.make_assignment(shift, volunteer).id,
            headers=factories.headers_for(volunteer.user),
            starts_at=shift.starts_at,
        )
        db.session.commit()
        db.session.remove()
    return made


def read(app: Flask, query: Any) -> Any:
    with app.app_context():
        try:
            return query()
        finally:
            db.session.remove()


def test_grants_at_once_make_one_consent(app: Flask) -> None:
    made = setup(app, consent=False)
    answers = races.at_once(app, [("post", CONSENT, {"version": TERMS}, made.headers)] * 6)
    assert [answer.status_code for answer in answers] == [200] * 6
    assert all(answer.get_json()["granted"] for answer in answers)

    def state() -> tuple[int, int]:
        rows = db.session.scalar(
            sa.select(sa.func.count()).select_from(LocationConsent).where(LocationConsent.volunteer_id == made.volunteer_id)
        )
        grants = db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == "location_consent.grant")
        )
        return rows, grants

    assert read(app, state) == (1, 1)


def test_no_point_is_stored_after_a_withdrawal_that_raced_uploads(app: Flask) -> None:
    made = setup(app, consent=True)
    track = f"{API}/assignments/{made.assignment_id}/track"
    batches = [
        {"points": [{
            "lat": 40.655 + 0.0001 * index, "lon": 109.845, "accuracy_m": 8.0,
            "time": (made.starts_at + timedelta(seconds=10 * index)).isoformat(),
        }]}
        for index in range(UPLOADS)
    ]
    calls: list[races.Call] = [("post", track, batch, made.headers) for batch in batches]
    calls.insert(UPLOADS // 2, ("delete", CONSENT, None, made.headers))
    answers = races.at_once(app, calls)

    withdrawal = answers.pop(UPLOADS // 2)
    assert withdrawal.status_code == 200 and withdrawal.get_json()["granted"] is False
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {200, 403}, [answer.get_json() for answer in answers]
    refused = [answer.get_json()["code"] for answer in answers if answer.status_code == 403]
    assert refused == ["location_consent_required"] * len(refused)

    def stored() -> tuple[list[datetime], datetime]:
        received = db.session.scalars(
            sa.select(TrackPoint.received_at)
            .join(Patrol, Patrol.id == TrackPoint.patrol_id)
            .where(Patrol.assignment_id == made.assignment_id)
        ).all()
        withdrawn_at = db.session.scalar(
            sa.select(LocationConsent.withdrawn_at).where(LocationConsent.volunteer_id == made.volunteer_id)
        )
        return list(received), withdrawn_at

    received, withdrawn_at = read(app, stored)
    # Exactly the accepted batches were stored, each before the withdrawal took effect.
    assert len(received) == statuses.count(200)
    assert all(moment < withdrawn_at for moment in received), (received, withdrawn_at)
    late = app.test_client().post(track, json=batches[0], headers=made.headers)
    assert late.status_code == 403
