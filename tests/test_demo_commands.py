"""The demo city's commands, `flask seed-demo` and `flask prepare-demo` (as make run starts it), on an
empty database each (the tests of the seeded city share one seed: tests/test_demo_data.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_demo_data import DEMO_LAT, DEMO_LON, ROOT


def test_seed_command_prints_logins_and_is_idempotent(app, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    app.instance_path, original = str(tmp_path), app.instance_path
    try:
        first = runner.invoke(args=["seed-demo"])
        second = runner.invoke(args=["seed-demo"])
    finally:
        app.instance_path = original
    assert first.exit_code == 0 and "Seeded the demo city" in first.output
    assert second.exit_code == 0 and "already present" in second.output
    stored = json.loads((tmp_path / "demo_logins.json").read_text())
    assert stored["organiser"]["password"] in first.output
    assert stored["organiser"]["password"] in second.output
    # Both runs tell where the walk-through checks in: the same shift, the same position.
    for output in (first.output, second.output):
        assert "Demo shift for the volunteer: 东站社区第1网格" in output
        assert f"check in from inside the grid: lat {DEMO_LAT}, lon {DEMO_LON}" in output
    assert ", new)" in first.output and ", new)" not in second.output


def test_make_runs_preparation_first_and_later(tmp_path: Path) -> None:
    """`flask prepare-demo`, as make run starts it: an empty instance migrated and seeded, then again."""

    def prepare() -> subprocess.CompletedProcess[str]:
        environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        return subprocess.run(
            [sys.executable, "-m", "flask", "prepare-demo"],
            cwd=ROOT, env={**environment, "FLASK_APP": "app:create_app", "INSTANCE_PATH": str(tmp_path)},
            capture_output=True, text=True, timeout=300,
        )

    first, later = prepare(), prepare()
    assert first.returncode == 0, first.stderr
    assert later.returncode == 0, later.stderr
    assert (tmp_path / "shouwang.db").exists() and (tmp_path / "demo_logins.json").exists()
    assert "Seeded the demo city" in first.stdout and "already present" in later.stdout
    for output in (first.stdout, later.stdout):
        assert "shifts.top_up_series:" in output  # the periodic tasks ran
        # The logins and the demo shift come last, just above the server's banner.
        assert output.rstrip().endswith(f"check in from inside the grid: lat {DEMO_LAT}, lon {DEMO_LON}")
    shift_line = next(line for line in first.stdout.splitlines() if line.startswith("Demo shift"))
    assert shift_line.replace(", new)", ")") in later.stdout  # the same shift, not another one
