"""The interactive API docs render in a real browser from our own assets (no CDN)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.live_server import dev_server

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",
]


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    with dev_server(app, threaded=True) as base_url:
        yield base_url


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is required for the browser tests: `make test` installs it (Debian package chromium)"
    return path


def test_swagger_ui_renders_every_tag_from_local_assets(live_server: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         f"{live_server}/api/docs"],
        capture_output=True, text=True, timeout=120,
    )
    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Failed to load API definition" not in dom
    assert 'class="swagger-ui' in dom
    # Rendered from /api/openapi.json: operation summaries of each package are in the page.
    for summary in ("Log in with phone and password", "Register as a volunteer", "The grid containing"):
        assert summary in dom, summary
