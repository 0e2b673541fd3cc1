"""marshmallow fields every patrol feature takes from a phone: a position, its accuracy, the phone's
clock. Coordinates are WGS84 degrees; times come in as ISO 8601 instants with an offset (the
device's clock) and go out in UTC (``core.fields.Instant``).
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from core import i18n
from core.fields import Instant

i18n.register_messages(i18n.N_("Must be a time between 2000 and 2099."))

#: Accuracy the phone may report at all; beyond CHECK_IN_MAX_ACCURACY_M it only needs review.
MAX_REPORTED_ACCURACY_M = 100_000
#: The years a phone's clock can plausibly show.
DEVICE_YEARS = (2000, 2099)


class DeviceTime(Instant):
    """An instant with an offset, in the years a phone's clock can plausibly show."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(years=DEVICE_YEARS, years_message="Must be a time between {low} and {high}.", **kwargs)


def latitude(**kwargs: Any) -> fields.Float:
    return fields.Float(allow_nan=False, validate=validate.Range(min=-90, max=90), **kwargs)


def longitude(**kwargs: Any) -> fields.Float:
    return fields.Float(allow_nan=False, validate=validate.Range(min=-180, max=180), **kwargs)


def accuracy(**kwargs: Any) -> fields.Float:
    return fields.Float(
        allow_nan=False, validate=validate.Range(min=0, max=MAX_REPORTED_ACCURACY_M),
        metadata={"description": "Reported horizontal accuracy in metres"}, **kwargs,
    )
