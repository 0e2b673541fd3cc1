"""Redemption lists and how a redemption is shown (``rewards/redemptions/service.py`` holds the rules)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from core.auth import Caller, Role
from core.errors import Forbidden, NotFound
from core.extensions import db
from core.pagination import paginate
from grids.models import Area
from grids.queries import in_subtree, scope_root
from rewards.catalogue.models import CatalogueItem
from rewards.catalogue.service import MANAGERS_OF_CATALOGUE
from rewards.redemptions.models import Redemption
from rewards.redemptions.service import own_volunteer_id
from volunteers.models import Volunteer


def _filtered(stmt: sa.Select, args: dict[str, Any]) -> sa.Select:
    if args.get("status"):
        stmt = stmt.where(Redemption.status.in_(args["status"]))
    if args.get("item_id") is not None:
        stmt = stmt.where(Redemption.item_id == args["item_id"])
    return stmt


def list_mine(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    volunteer_id = own_volunteer_id(caller)
    if volunteer_id is None:
        raise NotFound("You have no volunteer profile.", code="volunteer_not_found")
    stmt = _filtered(sa.select(Redemption).where(Redemption.volunteer_id == volunteer_id), args)
    return paginate(stmt, [Redemption.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)


def list_managed(caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    """Redemptions of items in ``area_id``'s subtree (default: the caller's area), newest first."""
    if caller.role not in MANAGERS_OF_CATALOGUE:
        raise Forbidden("Only district staff and admins manage the catalogue.")
    root_path = scope_root(caller, args.get("area_id"))
    stmt = (
        sa.select(Redemption)
        .join(CatalogueItem, CatalogueItem.id == Redemption.item_id)
        .join(Area, Area.id == CatalogueItem.area_id)
        .where(in_subtree(Area.path, root_path))
    )
    if args.get("volunteer_id") is not None:
        stmt = stmt.where(Redemption.volunteer_id == args["volunteer_id"])
    if args.get("pickup_code"):
        stmt = stmt.where(Redemption.pickup_code == args["pickup_code"].upper())
    stmt = _filtered(stmt, args)
    return paginate(stmt, [Redemption.id], limit=args["limit"], cursor=args.get("cursor"), descending=True)


def views(caller: Caller, redemptions: list[Redemption]) -> list[dict[str, Any]]:
    """As shown: the pickup code only to the volunteer (staff must be shown it at pickup)."""
    item_ids = {r.item_id for r in redemptions}
    volunteer_ids = {r.volunteer_id for r in redemptions}
    names: dict[int, str] = {}
    people: dict[int, str] = {}
    if redemptions:
        names = dict(
            db.session.execute(
                sa.select(CatalogueItem.id, CatalogueItem.name).where(CatalogueItem.id.in_(item_ids))
            ).tuples().all()
        )
        people = dict(
            db.session.execute(
                sa.select(Volunteer.id, Volunteer.real_name).where(Volunteer.id.in_(volunteer_ids))
            ).tuples().all()
        )
    own = caller.role == Role.VOLUNTEER
    return [
        {
            "id": r.id,
            "client_id": r.client_id,
            "item_id": r.item_id,
            "item_name": names.get(r.item_id, ""),
            "volunteer_id": r.volunteer_id,
            "volunteer_name": people.get(r.volunteer_id, ""),
            "points": r.points,
            "status": r.status,
            "pickup_code": r.pickup_code if own else None,
            "reason": r.reason,
            "decided_by": r.decided_by,
            "decided_at": r.decided_at,
            "fulfilled_at": r.fulfilled_at,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }
        for r in redemptions
    ]
