"""Star levels with publicity (公示): proposal, the boards, objections, certification. No HTTP here.

- **Proposal.** ``rewards`` grants the badges ``star_1`` … ``star_5`` (100/300/600/1000/1500 counted
  hours) and signals each once; :func:`propose` (our listener) proposes the highest level the
  volunteer's counted hours (``records.hours``) reach, so one who jumps two levels at once is
  proposed the higher one only. A level is proposed once per volunteer (unique constraint, insert
  on conflict do nothing), never below a level already proposed. It is publicised to the
  volunteer's home community for ``RECORDS_STAR_PUBLICITY_DAYS`` days (at least 7, the issue's
  minimum): ``[proposed_at, publicity_ends_at)``.
- **Objections.** An organiser in scope lodges one (one per organiser and level) while the
  publicity runs; from its end instant on it is 409 ``publicity_ended``. District staff or admins
  in scope decide it: *upheld* rejects the level, *dismissed* leaves it; an open objection holds
  certification until decided.
- **Certification.** A level whose publicity has ended with no open objection and not rejected is
  certified by the periodic task (:func:`certify`) or at once by the decision that dismisses its
  last open objection after the end.
- **A rejected level** stays rejected: it is not proposed again. The volunteer is proposed at the
  next star level their hours reach (which then publicises and certifies as usual).

Races. Every step is a conditional UPDATE of the level's row (``open_objections`` is a counter
changed only so; the status moves only from ``pending``): lodging adds to the counter only while
the level is pending and its publicity runs; certifying needs the counter at 0 and the end
passed; deciding takes the objection from ``open`` once. PostgreSQL re-evaluates each condition
on the committed row after waiting for its lock, so a lodging and the task, two deciders, or the
task and a decision, give one outcome. Locks are taken objection first, then level.
Every status change is audited (``core.audit``) and certified/rejected levels are signalled.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from core import audit, i18n
from core.auth import Caller
from core.db import insert_on_conflict, rowcount, utcnow
from core.errors import Conflict, NotFound
from core.extensions import db
from records.hours import counted_minutes
from records.settings import STAR_PUBLICITY_DAYS
from records.stars import signals
from records.stars.models import ObjectionStatus, StarLevel, StarLevelStatus, StarObjection
from rewards.badges.models import VolunteerBadge
from rewards.badges.service import BADGES, STAR_HOURS
from volunteers.models import Volunteer

#: Badge code → star level (1 … 5), and each level's hours.
BADGE_LEVELS = {badge: int(badge.removeprefix("star_")) for badge in STAR_HOURS}
LEVEL_HOURS = {BADGE_LEVELS[badge]: hours for badge, hours in STAR_HOURS.items()}
#: The issue's floor: publicity lasts at least a week whatever the setting says.
MIN_PUBLICITY_DAYS = 7

STAR_LEVEL_NOT_FOUND = i18n.N_("Star level not found.")
OBJECTION_NOT_FOUND = i18n.N_("Objection not found.")
PUBLICITY_ENDED = i18n.N_("The publicity of this star level has ended; objections are no longer taken.")
NOT_PENDING = i18n.N_("The star level is no longer pending.")
ALREADY_OBJECTED = i18n.N_("You have already lodged an objection to this star level.")
ALREADY_DECIDED = i18n.N_("The objection has already been decided.")
ACTIVE_ONLY = i18n.N_("Only active volunteers read their community's publicity board.")

i18n.register_titles(
    i18n.title("star_level_not_found", "Star level not found"),
    i18n.title("star_objection_not_found", "Objection not found"),
    i18n.title("publicity_ended", "Publicity has ended"),
    i18n.title("star_level_not_pending", "Star level not pending"),
    i18n.title("objection_exists", "Objection already lodged"),
    i18n.title("objection_decided", "Objection already decided"),
)
i18n.register_messages(
    STAR_LEVEL_NOT_FOUND, OBJECTION_NOT_FOUND, PUBLICITY_ENDED, NOT_PENDING, ALREADY_OBJECTED, ALREADY_DECIDED,
    ACTIVE_ONLY,
)

_PENDING, _OPEN = StarLevelStatus.PENDING.value, ObjectionStatus.OPEN.value

_PROPOSE = insert_on_conflict(
    StarLevel.__table__,
    [
        "volunteer_id", "level", "status", "minutes_at_proposal", "area_id", "area_path", "proposed_at",
        "publicity_ends_at", "open_objections",
    ],
    ["volunteer_id", "level"],
)


# --- proposal ------------------------------------------------------------------------------------


def level_for_minutes(minutes: int) -> int:
    """The highest star level ``minutes`` of counted service reach (0: none)."""
    return max((level for level, hours in LEVEL_HOURS.items() if minutes >= hours * 60), default=0)


def publicity_days() -> int:
    return max(int(current_app.config[STAR_PUBLICITY_DAYS]), MIN_PUBLICITY_DAYS)


def propose(volunteer_id: int, badge: str, earned_at: datetime) -> StarLevel | None:
    """Propose the star level a star badge earned now stands for (see the module docstring);
    None when it or a higher level was proposed before."""
    if badge not in BADGE_LEVELS:
        return None
    minutes = counted_minutes(volunteer_id)
    level = max(BADGE_LEVELS[badge], level_for_minutes(minutes))
    higher_or_same = sa.select(StarLevel.id).where(StarLevel.volunteer_id == volunteer_id, StarLevel.level >= level)
    if db.session.scalar(higher_or_same.limit(1)) is not None:
        return None
    volunteer = db.session.get(Volunteer, volunteer_id)
    if volunteer is None:
        return None
    community = volunteer.home_grid.parent or volunteer.home_grid
    level_id = db.session.scalar(
        _PROPOSE,
        {
            "volunteer_id": volunteer_id, "level": level, "status": _PENDING, "minutes_at_proposal": minutes,
            "area_id": community.id, "area_path": community.path, "proposed_at": earned_at,
            "publicity_ends_at": earned_at + timedelta(days=publicity_days()), "open_objections": 0,
        },
    )
    if level_id is None:
        return None  # proposed meanwhile by a concurrent grant
    row = db.session.get(StarLevel, level_id)
    assert row is not None
    audit.record(
        None, "star_level.proposed", target_type="star_level", target_id=row.id, area_path=row.area_path,
        after=_audit_view(row),
    )
    return row


def unproposed(*, after_volunteer_id: int, limit: int) -> list[tuple[int, str]]:
    """Volunteers whose highest star badge has no star level at or above it, by volunteer id from
    ``after_volunteer_id``, with that badge: badges granted before star levels existed (a deploy
    over a running city) or whose proposal was lost. The periodic task proposes them, as the
    badge's listener would have; a rejected level counts as proposed, so it is not proposed again."""
    badge_level = sa.case(BADGE_LEVELS, value=VolunteerBadge.badge)
    badges = (
        sa.select(VolunteerBadge.volunteer_id, sa.func.max(badge_level).label("level"))
        .where(VolunteerBadge.badge.in_(list(BADGE_LEVELS)), VolunteerBadge.volunteer_id > after_volunteer_id)
        .group_by(VolunteerBadge.volunteer_id)
        .subquery()
    )
    levels = (
        sa.select(StarLevel.volunteer_id, sa.func.max(StarLevel.level).label("level"))
        .group_by(StarLevel.volunteer_id)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(badges.c.volunteer_id, badges.c.level)
        .outerjoin(levels, levels.c.volunteer_id == badges.c.volunteer_id)
        .where(sa.or_(levels.c.level.is_(None), levels.c.level < badges.c.level))
        .order_by(badges.c.volunteer_id)
        .limit(limit)
    )
    return [(int(volunteer_id), f"star_{level}") for volunteer_id, level in rows]


# --- certification -------------------------------------------------------------------------------


def due_ids(now: datetime, *, after_id: int, limit: int) -> list[int]:
    """Pending levels whose publicity ended by ``now`` with no open objection, by id from ``after_id``."""
    return list(
        db.session.scalars(
            sa.select(StarLevel.id)
            .where(
                StarLevel.status == _PENDING,
                StarLevel.publicity_ends_at <= now,
                StarLevel.open_objections == 0,
                StarLevel.id > after_id,
            )
            .order_by(StarLevel.id)
            .limit(limit)
        )
    )


def certify(level_id: int, now: datetime, actor: Caller | None = None) -> bool:
    """Certify the level if it is due at ``now`` (one conditional UPDATE); whether this call did."""
    result = db.session.execute(
        sa.update(StarLevel)
        .where(
            StarLevel.id == level_id,
            StarLevel.status == _PENDING,
            StarLevel.open_objections == 0,
            StarLevel.publicity_ends_at <= now,
        )
        .values(status=StarLevelStatus.CERTIFIED.value, certified_at=now)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return False
    _decided(actor, level_id, StarLevelStatus.CERTIFIED)
    return True


def _decided(actor: Caller | None, level_id: int, status: StarLevelStatus) -> None:
    row = db.session.get(StarLevel, level_id, populate_existing=True)
    assert row is not None
    audit.record(
        actor, f"star_level.{status.value}", target_type="star_level", target_id=row.id, area_path=row.area_path,
        before={"status": _PENDING}, after=_audit_view(row),
    )
    signals.star_level_decided.send(
        signals.SENDER,
        **signals.StarLevelDecided(
            star_level_id=row.id, volunteer_id=row.volunteer_id, level=row.level, status=status.value
        ),
    )


# --- objections ----------------------------------------------------------------------------------


def star_level_not_found() -> NotFound:
    """The answer for a level id that does not exist, and for one the caller may not reach."""
    return NotFound(STAR_LEVEL_NOT_FOUND, code="star_level_not_found")


def objection_not_found() -> NotFound:
    """The answer for an objection id that does not exist, and for one the caller may not reach."""
    return NotFound(OBJECTION_NOT_FOUND, code="star_objection_not_found")


def reachable_level(caller: Caller, level_id: int) -> StarLevel:
    """A level publicised inside the manager's subtree; any other is not found."""
    row = db.session.get(StarLevel, level_id, populate_existing=True)
    if row is None:
        raise star_level_not_found()
    caller.ensure_reach(row.area_path, star_level_not_found)
    return row


def _publicity_refusal(row: StarLevel) -> Conflict:
    if row.status != _PENDING:
        return Conflict(NOT_PENDING, code="star_level_not_pending")
    return Conflict(PUBLICITY_ENDED, code="publicity_ended")


def lodge(caller: Caller, level_id: int, reason: str) -> StarObjection:
    """An organiser's objection to a level during its publicity (409 after, or when not pending)."""
    row = reachable_level(caller, level_id)
    now = utcnow()
    if row.status != _PENDING or now >= row.publicity_ends_at:
        raise _publicity_refusal(row)
    taken = sa.select(StarObjection.id).where(
        StarObjection.star_level_id == row.id, StarObjection.lodged_by == caller.user_id
    )
    if db.session.scalar(taken) is not None:
        raise Conflict(ALREADY_OBJECTED, code="objection_exists")
    try:
        with db.session.begin_nested():
            result = db.session.execute(
                sa.update(StarLevel)
                .where(StarLevel.id == row.id, StarLevel.status == _PENDING, StarLevel.publicity_ends_at > now)
                .values(open_objections=StarLevel.open_objections + 1)
                .execution_options(synchronize_session=False)
            )
            if rowcount(result) != 1:
                # Certified, rejected or ended while we waited for the row.
                raise _publicity_refusal(db.session.get(StarLevel, row.id, populate_existing=True) or row)
            objection = StarObjection(
                star_level_id=row.id, lodged_by=caller.user_id, reason=reason, lodged_at=now, status=_OPEN
            )
            db.session.add(objection)
            db.session.flush()
    except IntegrityError:
        raise Conflict(ALREADY_OBJECTED, code="objection_exists") from None
    audit.record(
        caller, "star_objection.lodged", target_type="star_objection", target_id=objection.id,
        area_path=row.area_path, after={"star_level_id": row.id, "status": _OPEN, "reason": reason},
    )
    return objection


def decide(caller: Caller, objection_id: int, outcome: ObjectionStatus, note: str) -> StarLevel:
    """An official's decision on an open objection: upheld rejects the level; dismissed certifies
    it at once if that was its last open objection and its publicity has ended. The level after."""
    objection = db.session.get(StarObjection, objection_id, populate_existing=True)
    if objection is None:
        raise objection_not_found()
    row = db.session.get(StarLevel, objection.star_level_id)
    caller.ensure_reach(row.area_path if row else None, objection_not_found)
    assert row is not None
    if objection.status != _OPEN:
        raise Conflict(ALREADY_DECIDED, code="objection_decided")
    now = utcnow()
    result = db.session.execute(
        sa.update(StarObjection)
        .where(StarObjection.id == objection.id, StarObjection.status == _OPEN)
        .values(status=outcome.value, decided_by=caller.user_id, decided_at=now, decision_note=note)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise Conflict(ALREADY_DECIDED, code="objection_decided")  # decided by someone else meanwhile
    db.session.execute(
        sa.update(StarLevel)
        .where(StarLevel.id == row.id)
        .values(open_objections=StarLevel.open_objections - 1)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        caller, "star_objection.decided", target_type="star_objection", target_id=objection.id,
        area_path=row.area_path, before={"status": _OPEN},
        after={"star_level_id": row.id, "status": outcome.value, "note": note},
    )
    if outcome == ObjectionStatus.UPHELD:
        rejected = db.session.execute(
            sa.update(StarLevel)
            .where(StarLevel.id == row.id, StarLevel.status == _PENDING)
            .values(status=StarLevelStatus.REJECTED.value, rejected_at=now)
            .execution_options(synchronize_session=False)
        )
        if rowcount(rejected) == 1:
            _decided(caller, row.id, StarLevelStatus.REJECTED)
    else:
        certify(row.id, now, caller)
    return reachable_level(caller, row.id)


def _audit_view(row: StarLevel) -> dict[str, Any]:
    return {
        "volunteer_id": row.volunteer_id, "level": row.level, "status": row.status,
        "minutes_at_proposal": row.minutes_at_proposal, "publicity_ends_at": row.publicity_ends_at,
        "certified_at": row.certified_at, "rejected_at": row.rejected_at,
    }


# --- for the record and the certificate ------------------------------------------------------------


def level_name(level: int) -> str:
    """The level's Chinese name as printed (一星志愿者 … 五星志愿者)."""
    return BADGES[f"star_{level}"][0]


def certified_level(volunteer_id: int) -> int | None:
    """The highest certified star level (what a certificate may print), or None."""
    return db.session.scalar(
        sa.select(sa.func.max(StarLevel.level)).where(
            StarLevel.volunteer_id == volunteer_id, StarLevel.status == StarLevelStatus.CERTIFIED.value
        )
    )


def level_status(volunteer_id: int) -> dict[str, Any] | None:
    """For the service record: the volunteer's highest level that is pending or certified —
    ``level``, ``status``, ``proposed_at``, ``publicity_ends_at``, ``certified_at`` — and
    ``certified_level`` (the highest certified, which a pending higher level does not replace
    until it is certified); None without either."""
    row = db.session.scalar(
        sa.select(StarLevel)
        .where(
            StarLevel.volunteer_id == volunteer_id,
            StarLevel.status.in_([_PENDING, StarLevelStatus.CERTIFIED.value]),
        )
        .order_by(StarLevel.level.desc())
        .limit(1)
    )
    if row is None:
        return None
    return {
        "level": row.level, "status": row.status, "proposed_at": row.proposed_at,
        "publicity_ends_at": row.publicity_ends_at, "certified_at": row.certified_at,
        "certified_level": certified_level(volunteer_id),
    }
