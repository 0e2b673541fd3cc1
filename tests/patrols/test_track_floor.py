"""The track upload's benchmark floor (``bench/track_batch_floor.py``) answers what the endpoint answers,
batch for batch, and leaves the same summary and fold on its patrol: a new track, points after it,
late and repeated points, all repeats.

PostgreSQL only (``postgresql``: the floor is PostgreSQL's SQL); it writes over a psycopg connection
of its own, so the test commits (``committing``: the shared clean-up empties the tables after).
"""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

from bench.track_batch_floor import floor_connection, floor_upload
from core.extensions import db
from patrols.models import Patrol
from tests.patrols.test_upload_races import read, setup, track_url, walk

pytestmark = [pytest.mark.postgresql, pytest.mark.committing]

COMPARED = ("received", "stored", "duplicates", "track_point_count", "distance_m", "implausible_count")
FOLD = ("track_point_count", "distance_m", "track_distance_sum_m", "track_implausible_count", "track_anchor_at",
        "track_anchor_lat", "track_anchor_lon", "track_last_at")


def fold_of(app: Flask, assignment_id: int) -> tuple[Any, ...]:
    patrol = read(app, lambda: db.session.scalars(sa.select(Patrol).where(Patrol.assignment_id == assignment_id)).one())
    return tuple(getattr(patrol, name) for name in FOLD)


def test_the_floor_answers_and_folds_as_the_endpoint_does(app: Flask) -> None:
    made = setup(app)
    points = walk(made)  # 1,000 fixes with three GPS jumps
    token = made.reference_headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"]).set(drivername="postgresql")
    batches = [
        points[200:600],  # into an empty track
        points[600:],  # after it
        points[:200] + points[300:320],  # before it, and repeats
        points[:200],  # all repeats
    ]
    with floor_connection(url.render_as_string(hide_password=False)) as connection:
        for batch in batches:
            ours = app.test_client().post(track_url(made.assignment_id), json={"points": batch}, headers=made.headers)
            assert ours.status_code == 200, ours.get_json()
            floor = floor_upload(connection, claims, made.reference_assignment_id, json.dumps({"points": batch}).encode())
            assert {key: floor[key] for key in COMPARED} == {key: ours.get_json()[key] for key in COMPARED}
            assert fold_of(app, made.assignment_id) == fold_of(app, made.reference_assignment_id)
    assert ours.get_json()["track_point_count"] == 1000 and ours.get_json()["implausible_count"] == 3
