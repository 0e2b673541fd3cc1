"""Location under PIPL: the rules every package that shows or keeps positions calls. No HTTP.

:func:`record_location_read` is the one way a read of someone else's positions is logged: the
track and SOS reads call it, the staff's access log and the personal-data export read what it wrote.
"""

from __future__ import annotations

from core import audit
from core.auth import Caller

#: Audit actions of reads of another person's positions (``location.`` prefix: the access log).
TRACK_READ = "location.track_read"
SOS_READ = "location.sos_read"
ACCESS_ACTION_PREFIX = "location."


def record_location_read(
    caller: Caller, volunteer_id: int, action: str, area_path: str, **what: int | str | None
) -> None:
    """Log that ``caller`` read ``volunteer_id``'s positions (who, whose, when). Callers call it for
    reads of someone else's positions only (a volunteer reading their own is not logged).

    ``area_path`` is the path that gave the caller reach (the shift's grid, the SOS's grid), so the
    staff of that area read the entry; ``what`` names the record read (``assignment_id=…``, ``sos_id=…``).
    Written in the reading request's transaction, which commits at its end like any other.
    """
    audit.record(
        caller,
        action,
        target_type="volunteer",
        target_id=volunteer_id,
        area_path=area_path,
        after=dict(what),
    )
