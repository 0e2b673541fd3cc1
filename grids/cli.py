"""``flask grids ...`` commands."""

from __future__ import annotations

from flask.cli import AppGroup

grids_cli = AppGroup("grids", help="Area tree and grid boundaries.")
