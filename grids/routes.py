"""HTTP layer of grids: parse, authorise, call the service, serialise.

Reads are public: administrative divisions and grid boundaries are public information, and a
volunteer must find their home grid before they have an account. Writes are for staff and admins,
inside their own subtree.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_jwt_extended import get_jwt, verify_jwt_in_request
from flask_smorest import Blueprint

from core.auth import MANAGERS, Role, auth_required, current_caller
from core.dumping import compile_dumper, json_response
from core.errors import error_docs
from core.pagination import PageArgs, page_schema
from core.transactions import reads_only
from grids import quotas, service
from grids.models import Area
from grids.schemas import (
    AreaCreateInput,
    AreaCreateSchema,
    AreaListArgs,
    AreaMoveSchema,
    AreaSchema,
    AreaSearchArgs,
    AreaSummarySchema,
    AreaUpdateInput,
    AreaUpdateSchema,
    GridQuotaListSchema,
    GridQuotaSchema,
    GridQuotaSetInput,
    GridQuotaSetSchema,
    LocateArgs,
    LocateResultSchema,
)

blp = Blueprint(
    "grids",
    __name__,
    url_prefix="/api/v1",
    description="The area tree (city → district → sub-district → community → grid), boundaries, point lookup",
)

WRITERS = (Role.STAFF, Role.ADMIN)


_errors = error_docs(blp)

#: "Which grid contains this point", a hot read (issue 19): its arguments' schema built once (given
#: a class, webargs builds one per request), its answer dumped by a compiled plan.
LOCATE_ARGS = LocateArgs()
_dump_located = compile_dumper(LocateResultSchema())


@blp.route("/areas")
class Areas(MethodView):
    @blp.doc(security=[{}, {"bearerAuth": []}])
    @blp.arguments(AreaListArgs, location="query")
    @blp.response(200, page_schema(AreaSummarySchema))
    @_errors(401)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List areas (no boundaries), by id.

        Public. With a token and no `under`, only the caller's own area subtree is listed.
        """
        verify_jwt_in_request(optional=True)
        default_root = current_caller().area_path if get_jwt() else None
        return service.list_areas(
            under=args.get("under"),
            default_root_path=default_root,
            level=args.get("level"),
            parent_id=args.get("parent_id"),
            limit=args["limit"],
            cursor=args["cursor"],
        )

    @auth_required(*WRITERS)
    @blp.arguments(AreaCreateSchema)
    @blp.response(201, AreaSchema)
    @_errors(401, 403, 409)
    def post(self, data: AreaCreateInput) -> Area:
        """Create an area under a parent in your subtree (cities come from `flask grids import`)."""
        return service.create_area(current_caller(), data)


@blp.route("/areas/search")
class AreaSearch(MethodView):
    @blp.arguments(AreaSearchArgs, location="query")
    @blp.response(200, page_schema(AreaSummarySchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Find areas whose name contains `q` or whose code starts with it. Public."""
        return service.search_areas(
            args["q"],
            level=args.get("level"),
            under=args.get("under"),
            limit=args["limit"],
            cursor=args["cursor"],
        )


@blp.route("/areas/locate")
class AreaLocate(MethodView):
    @reads_only
    @blp.arguments(LOCATE_ARGS, location="query")
    @blp.response(200, LocateResultSchema)
    @_errors(404)
    def get(self, args: dict[str, Any]) -> Any:
        """The grid containing a WGS84 point (no boundary), with its ancestors from the city down.

        Public: a volunteer finds their home grid before they have an account. 404 with code
        `no_grid_here` when no grid covers the point.
        """
        return json_response(_dump_located, service.locate(args["lon"], args["lat"]))


@blp.route("/areas/<int:area_id>")
class AreaItem(MethodView):
    @blp.response(200, AreaSchema)
    @_errors(404)
    def get(self, area_id: int) -> Area:
        """One area, with its boundary if it is a grid. Public."""
        return service.get_area(area_id)

    @auth_required(*WRITERS)
    @blp.arguments(AreaUpdateSchema)
    @blp.response(200, AreaSchema)
    @_errors(401, 403, 404, 409)
    def patch(self, changes: AreaUpdateInput, area_id: int) -> Area:
        """Change an area in your subtree; a new boundary bumps `version`."""
        area = service.get_area(area_id)
        service.update_area(current_caller(), area, changes)
        return area


@blp.route("/areas/<int:area_id>/children")
class AreaChildren(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(AreaSummarySchema))
    @_errors(404)
    def get(self, args: dict[str, Any], area_id: int) -> dict[str, Any]:
        """The area's direct children (no boundaries), by id. Public."""
        return service.list_children(area_id, limit=args["limit"], cursor=args["cursor"])


@blp.route("/areas/<int:area_id>/move")
class AreaMove(MethodView):
    @auth_required(*WRITERS)
    @blp.arguments(AreaMoveSchema)
    @blp.response(200, AreaSchema)
    @_errors(401, 403, 404)
    def post(self, data: dict[str, Any], area_id: int) -> Area:
        """Move an area and its whole subtree under another parent; both in your subtree."""
        area = service.get_area(area_id)
        service.move_area(current_caller(), area, data["parent_id"])
        return area


@blp.route("/areas/<int:area_id>/quotas")
class AreaQuotas(MethodView):
    @auth_required(*MANAGERS)
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(GridQuotaSchema))
    @_errors(401, 403, 404)
    def get(self, args: dict[str, Any], area_id: int) -> dict[str, Any]:
        """Steward quotas and weekly patrol targets of every grid in an area's subtree, by grid id.

        Organisers, staff and admins, for areas in their subtree (403 out_of_scope elsewhere).
        """
        area = quotas.quota_area(current_caller(), area_id, write=False)
        return quotas.list_quotas(area, limit=args["limit"], cursor=args["cursor"])

    @auth_required(*MANAGERS)
    @blp.arguments(GridQuotaSetSchema)
    @blp.response(200, GridQuotaListSchema)
    @_errors(401, 403, 404, 422)
    def put(self, data: GridQuotaSetInput, area_id: int) -> dict[str, Any]:
        """Set the steward quota and weekly patrol target of a grid, or of each grid of a community.

        Replaces the whole quota: kinds not listed are removed, a null target removes the target.
        Organisers, staff and admins in their subtree (403 out_of_scope elsewhere); another level
        of area is 404 not_grid_or_community. Each grid that changes is in the audit log
        (`grid.quota_set`). Answers every grid set, by id.
        """
        caller = current_caller()
        area = quotas.quota_area(caller, area_id, write=True)
        return {"items": quotas.set_quotas(caller, area, data)}
