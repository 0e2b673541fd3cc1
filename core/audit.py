"""Audit log of administrative changes: who, what, when, before and after.

Kept in core because every package records into it; the read endpoint lives in ``accounts``.
Entries are written in the same transaction as the change they describe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.auth import Caller
from core.db import UTCDateTime, utcnow
from core.extensions import Model, db
from core.fields import instant_text

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class AuditEntry(Model):
    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    actor_role: Mapped[str | None] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    target_type: Mapped[str] = mapped_column(sa.String(32))
    target_id: Mapped[str] = mapped_column(sa.String(64))
    area_path: Mapped[str] = mapped_column(sa.String(255), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    __table_args__ = (sa.Index("ix_audit_entries_target", "target_type", "target_id"),)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime) and value.tzinfo is not None:
        return instant_text(value)  # the API's rule: instants in UTC
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def record(
    actor: Caller | None,
    action: str,
    *,
    target_type: str,
    target_id: Any,
    area_path: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction. ``actor`` is None for CLI and system changes."""
    entry = AuditEntry(
        actor_id=actor.user_id if actor else None,
        actor_role=actor.role.value if actor else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        area_path=area_path,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
    )
    db.session.add(entry)
    return entry
