"""The rules of presence, without the database: geofence, plausibility flags, windows and minutes.

``presence.py`` records the phone's events with them; tasks and review settle served minutes with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask import current_app

from core.geo import contains, distance_to_boundary_m
from patrols.models import Patrol

#: Flags that send presence to review.
OUTSIDE_GRID = "outside_grid"
POOR_ACCURACY = "poor_accuracy"
CLOCK_SKEW = "clock_skew"
DEVICE_TIME_FUTURE = "device_time_future"
MOCK_LOCATION = "mock_location"
MARKED_ABSENT = "marked_absent"
NO_BOUNDARY = "no_boundary"



@dataclass(frozen=True)
class PhoneEvent:
    """What the phone sends for a check-in or a check-out."""

    client_id: str
    lat: float
    lon: float
    accuracy_m: float
    device_time: datetime
    mock_location: bool = False
    #: A checkpoint's QR payload scanned with the check-in (``patrols.checkpoints``).
    checkpoint_payload: str | None = None


class GridShape(Protocol):
    """What the geofence reads of a grid: an ``Area`` entity, or its columns read as values."""

    @property
    def id(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def boundary(self) -> dict[str, Any] | None: ...


class ShiftTimes(Protocol):
    """What the rules read of a shift: a ``Shift`` entity, or its columns read as values
    (the check-in's, ``presence.service``)."""

    @property
    def starts_at(self) -> datetime: ...
    @property
    def ends_at(self) -> datetime: ...
    @property
    def grid(self) -> GridShape: ...


# --- the rules ---------------------------------------------------------------------------------


def _minutes(key: str) -> timedelta:
    return timedelta(minutes=current_app.config[key])


def event_time(device_at: datetime, received_at: datetime) -> datetime:
    """When it happened: the device's clock, unless it runs ahead of our receipt."""
    return min(device_at, received_at)


def position_flags(shift: ShiftTimes, event: PhoneEvent) -> list[str]:
    """Why this position cannot be trusted on its own: empty when inside the grid and plausible."""
    flags: list[str] = []
    max_accuracy = float(current_app.config["CHECK_IN_MAX_ACCURACY_M"])
    if event.accuracy_m > max_accuracy:
        flags.append(POOR_ACCURACY)
    grid = shift.grid
    if not grid.boundary:
        flags.append(NO_BOUNDARY)
    elif not contains((grid.id, grid.version, grid.updated_at), grid.boundary, event.lon, event.lat):
        # The fix may be off by its accuracy, but we allow no more than the accuracy we trust.
        allowance = min(event.accuracy_m, max_accuracy)
        if distance_to_boundary_m(grid.boundary, event.lon, event.lat) > allowance:
            flags.append(OUTSIDE_GRID)
    if event.mock_location:
        flags.append(MOCK_LOCATION)
    return flags


def clock_flags(device_at: datetime, received_at: datetime) -> list[str]:
    if device_at - received_at > _minutes("CHECK_IN_CLOCK_SKEW_MINUTES"):
        return [DEVICE_TIME_FUTURE]
    if received_at - device_at > timedelta(hours=current_app.config["CHECK_IN_MAX_OFFLINE_HOURS"]):
        return [CLOCK_SKEW]
    return []


def check_in_opens(shift: ShiftTimes) -> datetime:
    return shift.starts_at - _minutes("CHECK_IN_OPENS_MINUTES")


def served_until(shift: ShiftTimes) -> datetime:
    """The latest instant that counts as served: the end plus the check-out grace."""
    return shift.ends_at + _minutes("CHECK_OUT_GRACE_MINUTES")


def checked_in_at(patrol: Patrol) -> datetime | None:
    if patrol.check_in_device_at is None or patrol.check_in_received_at is None:
        return None
    return event_time(patrol.check_in_device_at, patrol.check_in_received_at)


def checked_out_at(patrol: Patrol, shift: ShiftTimes) -> datetime | None:
    """A forgotten check-out closed automatically counts up to the scheduled end, not the grace."""
    if patrol.check_out_device_at is not None and patrol.check_out_received_at is not None:
        return event_time(patrol.check_out_device_at, patrol.check_out_received_at)
    if patrol.auto_closed:
        return shift.ends_at
    return None


def served_minutes(patrol: Patrol, shift: ShiftTimes) -> int | None:
    """Whole minutes between check-in and check-out, clipped to [start, end + grace]."""
    started, ended = checked_in_at(patrol), checked_out_at(patrol, shift)
    if started is None or ended is None:
        return None
    begin = max(started, shift.starts_at)
    finish = min(ended, served_until(shift))
    return max(0, int((finish - begin).total_seconds() // 60))


def late_minutes(shift: ShiftTimes, arrived: datetime) -> int:
    return max(0, int((arrived - shift.starts_at).total_seconds() // 60))
