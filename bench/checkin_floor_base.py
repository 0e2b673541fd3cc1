"""What every hand-written floor of ``bench/checkin_floor.py`` shares: its problem answers, the worker's
connection, the prepared polygons, the token and the session check. A yardstick, never served by the
product (see ``checkin_floor.py``)."""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import psycopg
import shapely
from shapely.geometry import shape


class Problem(Exception):
    def __init__(self, status: int, code: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(code)
        self.status, self.code, self.headers = status, code, list(headers)


# --- per process ---------------------------------------------------------------------------------

_connection: psycopg.Connection | None = None
_prepared: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def _secret() -> str:
    if os.environ.get("JWT_SECRET_KEY"):
        return os.environ["JWT_SECRET_KEY"]
    return json.loads((Path(os.environ["INSTANCE_PATH"]) / "secrets.json").read_text())["JWT_SECRET_KEY"]


_SECRET = _secret()


def connection() -> psycopg.Connection:
    """This worker's connection (opened after the fork), in autocommit: reads need no transaction."""
    global _connection
    if _connection is None or _connection.closed:
        url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        _connection = psycopg.connect(url, autocommit=True)
    return _connection


def covers(key: tuple[Any, ...], boundary_text: str, lon: float, lat: float) -> bool:
    prepared = _prepared.get(key)
    if prepared is None:
        prepared = shape(json.loads(boundary_text))
        shapely.prepare(prepared)
        _prepared[key] = prepared
        if len(_prepared) > 20_000:
            _prepared.popitem(last=False)
    return bool(prepared.covers(shapely.Point(lon, lat)))


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


# --- the token ---------------------------------------------------------------------------------


def caller(environ: dict[str, Any]) -> dict[str, Any]:
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer "):
        raise Problem(401, "unauthorized", [("WWW-Authenticate", "Bearer")])
    try:
        claims = jwt.decode(header[7:], _SECRET, algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        raise Problem(401, "token_expired", [("WWW-Authenticate", "Bearer")]) from None
    except jwt.InvalidTokenError:
        raise Problem(401, "invalid_token", [("WWW-Authenticate", "Bearer")]) from None
    subject, sid = claims.get("sub"), claims.get("sid")
    if claims.get("type") != "access" or not isinstance(subject, str) or not subject.isdigit() or not sid:
        raise Problem(401, "invalid_token", [("WWW-Authenticate", "Bearer")])
    return {"user_id": int(subject), "sid": sid, "role": claims.get("role")}


def ensure_live(row: Any) -> None:
    """(is_active, revoked_at, expires_at, …) of the session check."""
    if row is None or not row[0] or row[1] is not None or row[2] <= datetime.now(UTC):
        raise Problem(401, "token_revoked", [("WWW-Authenticate", "Bearer")])
