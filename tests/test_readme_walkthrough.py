"""README's "First requests" block, run as written (bash, curl, jq) against the development server on
the demo data `make run` seeds, so the README and the API cannot drift apart."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from accounts.models import User
from core.extensions import db
from tests.conftest import run_cli
from tests.live_server import dev_server
from volunteers.models import Volunteer

README = Path(__file__).resolve().parent.parent / "README.md"
README_BASE_URL = "http://127.0.0.1:5000"
# Every curl of the block fails the script on an answer of 400 or more, and reports what it did.
PRELUDE = r"""set -euo pipefail
curl() { command curl --fail-with-body -w '%{stderr}%{response_code} %{method} %{url_effective}\n' "$@"; }
"""


def first_requests_block() -> str:
    section = README.read_text(encoding="utf-8").split("## First requests", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README.md has no ```sh block under ## First requests"
    return match.group(1)


def json_documents(text: str) -> list[Any]:
    decoder, documents, position = json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) != -1:
        document, position = decoder.raw_decode(text, start)
        documents.append(document)
    return documents


def test_first_requests_work_on_the_demo_data(app: Flask, tmp_path: Path) -> None:
    app.instance_path, original = str(tmp_path / "instance"), app.instance_path
    try:
        seeded = run_cli(app, ["seed-demo"])
        assert seeded.exit_code == 0, seeded.output
        with dev_server(app) as base_url:
            script = PRELUDE + first_requests_block().replace(README_BASE_URL, base_url)
            run = subprocess.run(
                ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
            )
    finally:
        app.instance_path = original
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"

    calls = [line.split(" ", 2) for line in run.stderr.splitlines() if re.match(r"^\d{3} [A-Z]+ ", line)]
    assert [(status, method, re.sub(r"^https?://[^/]+/api/v1", "", url)) for status, method, url in calls] == [
        ("200", "POST", "/auth/login"),
        ("200", "GET", "/me"),
        ("200", "GET", "/me/shifts?when=upcoming"),
        ("200", "POST", f"/assignments/{calls[3][2].split('/')[-2]}/check-in"),
        ("200", "POST", f"/assignments/{calls[3][2].split('/')[-2]}/check-out"),
        ("200", "GET", "/areas/locate?lat=40.63142&lon=109.82242"),
        ("201", "POST", "/volunteers/register"),
    ]
    me, checked_in, checked_out, registered = json_documents(run.stdout)
    assert me["role"] == "volunteer" and me["volunteer_id"] is not None
    assert checked_in["volunteer_id"] == me["volunteer_id"]
    assert checked_in["presence_status"] == "verified" and checked_in["check_in"]["flags"] == []
    assert checked_out["check_out"]["flags"] == [] and checked_out["assignment_id"] == checked_in["assignment_id"]
    assert registered["status"] == "pending"
    assert registered["home_grid"]["id"] == checked_in_grid_id(checked_in["assignment_id"])
    db.session.expire_all()
    newcomer = db.session.scalar(
        sa.select(Volunteer).join(User, User.id == Volunteer.user_id).where(User.phone == "+8613912345678")
    )
    assert newcomer is not None and newcomer.real_name == "赵敏"


def checked_in_grid_id(assignment_id: int) -> int:
    from shifts.models import Assignment, Shift

    return db.session.scalar(
        sa.select(Shift.grid_id).join(Assignment, Assignment.shift_id == Shift.id).where(Assignment.id == assignment_id)
    )
