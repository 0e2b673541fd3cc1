"""grids' settings: area defaults and limits (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer, text

SETTINGS: tuple[Setting, ...] = (
    text("DEFAULT_TIMEZONE", "Asia/Shanghai", "time zone of new areas unless given"),
    integer("GRID_MAX_VERTICES", 2000, "largest grid boundary accepted, in vertices"),
)
