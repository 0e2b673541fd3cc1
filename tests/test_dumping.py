"""``core.dumping``: a dumper compiled from a schema gives what ``schema.dump`` gives, field kind by
field kind, for present, missing and odd values; and its answer is the bytes ``jsonify`` makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

import marshmallow as ma
import pytest
from flask import Flask, jsonify

from core.dumping import compile_dumper, json_response
from core.fields import Instant, LocalDateTimeText, StrictBoolean
from grids.schemas import LocateResultSchema
from shifts.schemas import AssignmentSchema

EAST_8 = timezone(timedelta(hours=8))


class Colour(StrEnum):
    RED = "red"


class Inner(ma.Schema):
    n = ma.fields.Integer()
    at = Instant(allow_none=True)


class Everything(ma.Schema):
    count = ma.fields.Integer(allow_none=True)
    count_text = ma.fields.Integer(as_string=True)
    text = ma.fields.String(allow_none=True)
    flag = ma.fields.Boolean(allow_none=True)
    strict = StrictBoolean()
    at = Instant(allow_none=True)
    local = LocalDateTimeText(allow_none=True)
    ratio = ma.fields.Float()
    inner = ma.fields.Nested(Inner, allow_none=True)
    inners = ma.fields.Nested(Inner, many=True)
    listed = ma.fields.List(ma.fields.Nested(Inner))
    words = ma.fields.List(ma.fields.String())
    flags = ma.fields.List(ma.fields.Boolean(), allow_none=True)
    numbers = ma.fields.List(ma.fields.Integer())
    renamed = ma.fields.String(data_key="outside")
    taken = ma.fields.String(attribute="source")
    defaulted = ma.fields.String(dump_default="none given")
    dotted = ma.fields.Integer(attribute="deep.value")
    method = ma.fields.Method("twice")
    function = ma.fields.Function(lambda obj: "f")
    mapping = ma.fields.Dict()
    items = ma.fields.String()  # a dict's own method's name: marshmallow then reads the attribute
    secret = ma.fields.String(load_only=True)

    def twice(self, obj: Any) -> Any:
        return 2 * (obj.get("count") or 0)


class WithHook(ma.Schema):
    n = ma.fields.Integer()

    @ma.post_dump
    def wrap(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {"wrapped": data}


FULL = {
    "count": True, "count_text": 7, "text": b"\xe5\xae\x88", "flag": 1, "strict": False,
    "at": datetime(2026, 12, 7, 19, 0, tzinfo=EAST_8), "local": datetime(2026, 12, 7, 19, 0), "ratio": 2,
    "inner": {"n": "3", "at": datetime(2026, 1, 1, tzinfo=UTC)}, "inners": [{"n": 1}, {"n": 2, "at": None}],
    "listed": [{"n": 4}], "words": [Colour.RED, 5], "flags": [True, 0], "numbers": ["6", 7.9],
    "renamed": "r", "source": "s", "defaulted": "d", "deep": {"value": "8"}, "mapping": {"a": 1},
    "items": "listed", "secret": "never shown",
}
NONE = {key: None for key in FULL} | {"inners": [], "listed": [], "words": [], "numbers": []}
SPARSE = {"count": 1, "words": ["a"]}  # every other field missing: left out, or its default


@pytest.mark.parametrize("obj", [FULL, NONE, SPARSE, {}], ids=["full", "none", "sparse", "empty"])
def test_a_compiled_dumper_gives_what_the_schema_gives(obj: dict[str, Any]) -> None:
    schema = Everything()
    assert compile_dumper(schema)(obj) == schema.dump(obj)
    assert list(compile_dumper(schema)(obj)) == list(schema.dump(obj))  # in the same order too


def test_instants_come_out_in_utc_and_a_missing_key_stays_out() -> None:
    dumped = compile_dumper(Everything())(FULL)
    assert dumped["at"] == "2026-12-07T11:00:00+00:00" and dumped["local"] == "2026-12-07T19:00:00"
    assert "secret" not in dumped and dumped["outside"] == "r" and dumped["taken"] == "s"
    sparse = compile_dumper(Everything())(SPARSE)
    assert "text" not in sparse and sparse["defaulted"] == "none given"


def test_objects_and_schemas_with_hooks_go_through_marshmallow() -> None:
    obj = SimpleNamespace(n=5)
    assert compile_dumper(Inner())(obj) == {"n": 5}
    assert compile_dumper(WithHook())({"n": 1}) == {"wrapped": {"n": 1}}


def test_the_hot_reads_schemas_dump_alike() -> None:
    now = datetime(2026, 12, 7, 11, 0, tzinfo=EAST_8)
    place = {
        "id": 1, "shift_id": 2, "volunteer_id": 3, "volunteer_name": None, "volunteer_kind": "volunteer_police",
        "status": "waitlisted", "role": "primary", "source": "signup", "waitlist_position": 2,
        "late_withdrawal": False, "created_at": now, "ended_at": None, "end_reason": None,
    }
    page_schema = ma.Schema.from_dict({"items": ma.fields.List(ma.fields.Nested(AssignmentSchema))})()
    page = {"items": [place, {**place, "ended_at": now, "end_reason": "no"}]}
    assert compile_dumper(page_schema)(page) == page_schema.dump(page)
    located = {
        "id": 9, "parent_id": 8, "level": "grid", "code": "g", "name": "网格", "timezone": "Asia/Shanghai",
        "path": "/1/8/9/", "depth": 4, "grid_kind": None, "households": None, "version": 2,
        "created_at": now, "updated_at": now, "bbox": [109.8, 40.6, 109.9, 40.7],
        "ancestors": [{"id": 1, "level": "city", "code": "c", "name": "市"}],
    }
    assert compile_dumper(LocateResultSchema())(located) == LocateResultSchema().dump(located)


def test_the_answer_is_what_jsonify_makes(app: Flask) -> None:
    schema = Everything()
    with app.test_request_context():
        ours, theirs = json_response(compile_dumper(schema), FULL), jsonify(schema.dump(FULL))
        assert ours.status_code == theirs.status_code == 200
        assert ours.mimetype == theirs.mimetype and ours.get_data() == theirs.get_data()
