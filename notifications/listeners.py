"""Domain events become notifications: inbox rows that are also the push outbox.

Receivers run inside the sender's transaction. They queue what happened on the session, and the
rows are written when that transaction commits (``before_commit``, still inside it), all of them
in a few statements: an auto-fill that places 6,000 volunteers writes 6,000 notifications in a
handful of round trips instead of thousands. A transaction that rolls back, or a savepoint that
rolls back the change that queued one, takes its notifications with it. The push goes after the
commit (``notifications.delivery.tasks.wake_sender``).

Who is told:

- shifts: the volunteer of a place made, ended, offered (invitation), promoted (backup → primary,
  waitlist → place); the volunteers of a shift that changed (time, title, instructions or
  meeting point; capacity alone does not concern them) or was cancelled. Nobody is told what they
  did themselves: signing up, accepting, declining or withdrawing on one's own sends nothing.
- patrols: a no-show (``absent``) and a red or orange report go to the organisers whose area
  contains the grid (a grid's organisers are those of its community, sub-district or district
  within the city, "the organisers of that subtree"); when no organiser covers the grid, to the
  staff who do. A report's status change goes to its reporter.
- patrols' SOS: the people the SOS service chose, in ``sos_listeners.py`` (``user_ids``).
- volunteers: the volunteer's own account, when approved or rejected.
- accounts: when a user's last live login ends (logout, password change, deactivation), their
  devices stop receiving pushes; with other logins still live, the app unregisters its own
  token before logging out (``POST /me/devices/unregister``).

Urgent (pushed at once, even in quiet hours): red and orange reports, no-shows. Changes to a
place are not urgent, but quiet hours hold them back only while they would still arrive
:data:`BEFORE_START` before the shift (a cancellation at 23:00 for a shift at 06:00 goes at once,
one for tomorrow evening waits for the morning). Dedupe keys make each event that can be sent
twice (a task retried, a listener reached twice) one notification per user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Unpack

import sqlalchemy as sa
from sqlalchemy import orm

from accounts import signals as account_signals
from accounts.coverage import organisers_over
from accounts.models import AuthSession
from core.db import utcnow
from core.extensions import db
from grids.models import Area
from notifications import service
from notifications.devices.service import deactivate_user_devices
from patrols import signals as patrol_signals
from patrols.reports.models import URGENT_LEVELS, Report
from shifts import signals as shift_signals
from shifts.models import Shift
from volunteers import signals as volunteer_signals
from volunteers.models import Volunteer

#: A change to a place must reach the volunteer at least this long before the shift starts.
BEFORE_START = timedelta(hours=1)
#: Shift fields a volunteer on the shift cares about.
VOLUNTEER_FIELDS = ("starts_at", "ends_at", "title", "instructions", "meeting_point")
_QUEUE = "notifications.queued"


@dataclass
class QueuedEvent:
    """A notification to write at the commit; recipients and shift details are looked up then."""

    kind: str
    data: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    volunteer_ids: tuple[int, ...] = ()  # told through their own accounts
    user_ids: tuple[int, ...] = ()  # and/or these users, chosen by the sender (an SOS's recipients)
    grid_id: int | None = None  # and/or the organisers over this grid (its staff when none)
    organisers_of_shift: bool = False  # ... or over the shift's grid
    shift_id: int | None = None  # the shift's title, start and grid in the text; the deadline
    earlier_start: datetime | None = None  # a start the volunteers may still be heading for
    name_of: int | None = None  # the volunteer whose name goes in the text
    actor_id: int | None = None  # never told about their own action
    urgent: bool = False
    dedupe_key: str | None = None
    transaction: Any = None  # where it was queued: dropped if that rolls back


# --- the queue, written at the commit ----------------------------------------------------------------


def queue_event(event: QueuedEvent) -> None:
    session = db.session()
    if not session.in_transaction():
        session.begin()
    event.transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_QUEUE, []).append(event)


@sa.event.listens_for(orm.Session, "before_commit")
def _write_queued(session: orm.Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the outer transaction writes them when it commits
    events = session.info.pop(_QUEUE, None)
    if events:
        service.write(_items(events))


@sa.event.listens_for(orm.Session, "after_soft_rollback")
def _drop_queued(session: orm.Session, previous_transaction: orm.SessionTransaction) -> None:
    events = session.info.get(_QUEUE)
    if not events:
        return
    if previous_transaction.parent is None:
        session.info.pop(_QUEUE, None)
        return
    session.info[_QUEUE] = [e for e in events if not _within(e.transaction, previous_transaction)]


def _within(transaction: Any, ancestor: orm.SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


@dataclass(frozen=True)
class _Shift:
    params: dict[str, Any]
    starts_at: datetime
    grid_id: int


def _items(events: list[QueuedEvent]) -> list[service.Item]:
    shifts = _shifts({e.shift_id for e in events if e.shift_id is not None})
    people = _volunteers({v for e in events for v in e.volunteer_ids} | {e.name_of for e in events if e.name_of})
    grids = {e.grid_id for e in events if e.grid_id is not None}
    grids |= {shifts[e.shift_id].grid_id for e in events if e.organisers_of_shift and e.shift_id in shifts}
    organisers = organisers_over(grids)
    items: list[service.Item] = []
    for event in events:
        params, deadline, grid_id = event.params, None, event.grid_id
        if event.shift_id is not None:
            shift = shifts.get(event.shift_id)
            if shift is None:
                continue  # deleted in the same transaction
            params = {**shift.params, **params}
            deadline = min(filter(None, (shift.starts_at, event.earlier_start))) - BEFORE_START
            grid_id = shift.grid_id if event.organisers_of_shift else grid_id
        if event.name_of is not None:
            params["volunteer_name"] = people.get(event.name_of, (0, ""))[1]
        organisers_here = organisers.get(grid_id, []) if grid_id is not None else []
        users = [people[v][0] for v in event.volunteer_ids if v in people] + list(event.user_ids) + organisers_here
        items.extend(
            service.Item(user_id, event.kind, params, event.data, event.urgent, event.dedupe_key, deadline)
            for user_id in dict.fromkeys(users)
            if user_id != event.actor_id
        )
    return items


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ordered = sorted(ids)
    for first in range(0, len(ordered), service.CHUNK):
        yield ordered[first : first + service.CHUNK]


def _shifts(shift_ids: set[int]) -> dict[int, _Shift]:
    found = {}
    for chunk in _chunks(shift_ids):
        rows = db.session.execute(
            sa.select(Shift.id, Shift.title, Shift.starts_at, Shift.timezone, Shift.grid_id, Area.name)
            .join(Area, Area.id == Shift.grid_id)
            .where(Shift.id.in_(chunk))
        )
        for row in rows:
            params = {
                "shift_title": row.title, "starts_at": row.starts_at, "timezone": row.timezone, "grid_name": row.name,
            }
            found[row.id] = _Shift(params, row.starts_at, row.grid_id)
    return found


def _volunteers(volunteer_ids: set[int]) -> dict[int, tuple[int, str]]:
    """Volunteer id → (user id, real name)."""
    found = {}
    for chunk in _chunks(volunteer_ids):
        rows = db.session.execute(
            sa.select(Volunteer.id, Volunteer.user_id, Volunteer.real_name).where(Volunteer.id.in_(chunk))
        )
        found.update({row.id: (row.user_id, row.real_name) for row in rows})
    return found


# --- shifts ---------------------------------------------------------------------------------------


def _place_event(
    kind: str, assignment_id: int, shift_id: int, volunteer_id: int, actor_id: int | None, **params: Any
) -> None:
    queue_event(
        QueuedEvent(
            kind, {"assignment_id": assignment_id, "shift_id": shift_id}, params, volunteer_ids=(volunteer_id,),
            shift_id=shift_id, actor_id=actor_id, dedupe_key=f"{kind}:{assignment_id}",
        )
    )


def _on_assignment_created(_sender: Any, **event: Unpack[shift_signals.AssignmentCreated]) -> None:
    _place_event(
        "assignment_created", event["assignment_id"], event["shift_id"], event["volunteer_id"],
        event["actor_id"], role=event["role"],
    )


def _on_assignment_cancelled(_sender: Any, **event: Unpack[shift_signals.AssignmentCancelled]) -> None:
    _place_event(
        "assignment_cancelled", event["assignment_id"], event["shift_id"], event["volunteer_id"],
        event["actor_id"], status=str(event["status"]), reason=event["reason"],
    )


def _on_invitation_sent(_sender: Any, **event: Unpack[shift_signals.InvitationSent]) -> None:
    _place_event(
        "invitation_sent", event["assignment_id"], event["shift_id"], event["volunteer_id"],
        event["actor_id"], role=event["role"],
    )


def _on_backup_promoted(_sender: Any, **event: Unpack[shift_signals.BackupPromoted]) -> None:
    # The actor dropped out or removed someone else; the backup never promotes themselves.
    _place_event("backup_promoted", event["assignment_id"], event["shift_id"], event["volunteer_id"], None)


def _on_waitlist_promoted(_sender: Any, **event: Unpack[shift_signals.WaitlistPromoted]) -> None:
    _place_event("waitlist_promoted", event["assignment_id"], event["shift_id"], event["volunteer_id"], None)


def _on_shift_changed(_sender: Any, **event: Unpack[shift_signals.ShiftChanged]) -> None:
    shift_id, changes, volunteer_ids = event["shift_id"], event["changes"], event["volunteer_ids"]
    fields = [name for name in VOLUNTEER_FIELDS if name in changes]
    if not fields or not volunteer_ids:
        return
    earlier = None
    if "starts_at" in changes:  # they may be on their way to the old time: that is a deadline too
        with contextlib.suppress(ValueError, IndexError, TypeError):
            earlier = datetime.fromisoformat(str(changes["starts_at"][0]))
    # No dedupe key: a shift may change several times, and each change is news.
    queue_event(
        QueuedEvent(
            "assignment_changed", {"shift_id": shift_id}, {"fields": fields}, volunteer_ids=tuple(volunteer_ids),
            shift_id=shift_id, earlier_start=earlier, actor_id=event["actor_id"],
        )
    )


def _on_shift_cancelled(_sender: Any, **event: Unpack[shift_signals.ShiftCancelled]) -> None:
    shift_id, volunteer_ids, reason, actor_id = (
        event["shift_id"], event["volunteer_ids"], event["reason"], event["actor_id"]
    )
    queue_event(
        QueuedEvent(
            "shift_cancelled", {"shift_id": shift_id}, {"reason": reason}, volunteer_ids=tuple(volunteer_ids),
            shift_id=shift_id, actor_id=actor_id, dedupe_key=f"shift_cancelled:{shift_id}",
        )
    )


# --- patrols ---------------------------------------------------------------------------------------


def _on_absent(_sender: Any, **event: Unpack[patrol_signals.Absent]) -> None:
    assignment_id, shift_id, volunteer_id = event["assignment_id"], event["shift_id"], event["volunteer_id"]
    queue_event(
        QueuedEvent(
            "absence_alert", {"assignment_id": assignment_id, "shift_id": shift_id, "volunteer_id": volunteer_id},
            shift_id=shift_id, organisers_of_shift=True, name_of=volunteer_id, urgent=True,
            dedupe_key=f"absence_alert:{assignment_id}",
        )
    )


def _on_report_filed(_sender: Any, **event: Unpack[patrol_signals.ReportFiled]) -> None:
    report_id, grid_id = event["report_id"], event["grid_id"]
    level, category = event["level"], event["category"]
    if level not in URGENT_LEVELS:
        return  # yellow and green wait in the organisers' report list
    grid = db.session.get(Area, grid_id)
    queue_event(
        QueuedEvent(
            "report_alert", {"report_id": report_id, "grid_id": grid_id},
            {"level": level, "category": category, "grid_name": grid.name if grid else ""},
            grid_id=grid_id, urgent=True, dedupe_key=f"report_alert:{report_id}",
        )
    )


def _on_report_status_changed(_sender: Any, **event: Unpack[patrol_signals.ReportStatusChanged]) -> None:
    report_id = event["report_id"]
    report = db.session.get(Report, report_id)
    if report is not None:
        queue_event(
            QueuedEvent(
                "report_status_changed", {"report_id": report_id},
                {"category": report.category, "to_status": str(event["to_status"])},
                volunteer_ids=(report.volunteer_id,), actor_id=event["actor_id"],
            )
        )


# --- volunteers and accounts -------------------------------------------------------------------------


def _on_volunteer_approved(_sender: Any, **event: Unpack[volunteer_signals.VolunteerEvent]) -> None:
    _vetted("volunteer_approved", event["volunteer_id"], None)


def _on_volunteer_rejected(_sender: Any, **event: Unpack[volunteer_signals.VolunteerEvent]) -> None:
    _vetted("volunteer_rejected", event["volunteer_id"], event.get("reason"))


def _vetted(kind: str, volunteer_id: int, reason: str | None) -> None:
    queue_event(
        QueuedEvent(
            kind, {"volunteer_id": volunteer_id}, {"reason": reason}, volunteer_ids=(volunteer_id,),
            dedupe_key=f"{kind}:{volunteer_id}",
        )
    )


def _on_sessions_revoked(_sender: Any, **event: Unpack[account_signals.SessionsRevoked]) -> None:
    user_id = event["user_id"]
    # Sessions are not tied to devices: only when no login is left is every device surely gone.
    # (An ORM select, so the revocation the sender has not flushed yet is flushed first.)
    live = sa.select(AuthSession.id).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None), AuthSession.expires_at > utcnow()
    )
    if db.session.scalar(live.limit(1)) is None:
        deactivate_user_devices(user_id, "logout")


_RECEIVERS = (
    (shift_signals.assignment_created, _on_assignment_created),
    (shift_signals.assignment_cancelled, _on_assignment_cancelled),
    (shift_signals.invitation_sent, _on_invitation_sent),
    (shift_signals.backup_promoted, _on_backup_promoted),
    (shift_signals.waitlist_promoted, _on_waitlist_promoted),
    (shift_signals.shift_changed, _on_shift_changed),
    (shift_signals.shift_cancelled, _on_shift_cancelled),
    (patrol_signals.absent, _on_absent),
    (patrol_signals.report_filed, _on_report_filed),
    (patrol_signals.report_status_changed, _on_report_status_changed),
    (volunteer_signals.volunteer_approved, _on_volunteer_approved),
    (volunteer_signals.volunteer_rejected, _on_volunteer_rejected),
    (account_signals.sessions_revoked, _on_sessions_revoked),
)


def connect() -> None:
    """Subscribe once (blinker keeps the functions by weak reference; these are module-level)."""
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver)
