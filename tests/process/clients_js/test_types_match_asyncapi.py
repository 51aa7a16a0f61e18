"""The TypeScript declarations of every protocol message (clients/js/src/protocol.d.ts) against the
AsyncAPI document: each schema has a type of the same name, with the same fields, the same required
and optional ones, the same nullability, constants, enums, arrays and nesting. The types are read by
the TypeScript compiler itself (dts_shapes.mjs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import ROOT
from tests.process.clients_js.npm import PACKAGE, installed, run

ASYNCAPI = yaml.safe_load((ROOT / "portfolio_ws" / "apidocs" / "asyncapi.yaml").read_text())
SCHEMAS: dict[str, Any] = ASYNCAPI["components"]["schemas"]

pytestmark = pytest.mark.slow  # npm ci, node, tsc


def ts_shapes() -> dict[str, Any]:
    installed()
    done = run("node", str(Path(__file__).with_name("dts_shapes.mjs")), str(PACKAGE), "src/protocol.d.ts")
    return json.loads(done.stdout)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def split_null(schema: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The schema's non-null alternatives, and whether null is allowed."""
    schema = resolve(schema)
    if "oneOf" in schema:
        branches: list[dict[str, Any]] = []
        nullable = False
        for branch in schema["oneOf"]:
            inner, null = split_null(branch)
            branches += inner
            nullable = nullable or null
        return branches, nullable
    if schema.get("type") == "null":
        return [], True
    return [schema], False


def members(shape: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    items = shape["union"] if "union" in shape else [shape]
    return [m for m in items if not m.get("null")], any(m.get("null") for m in items)


def mismatch(schema: dict[str, Any], shape: dict[str, Any], where: str) -> list[str]:
    """What differs between a schema and a TypeScript shape (empty: they agree)."""
    branches, nullable = split_null(schema)
    ts_members, ts_nullable = members(shape)
    problems = [] if nullable == ts_nullable else [f"{where}: null {'allowed' if nullable else 'not allowed'} in AsyncAPI"]
    if len(branches) == 1:
        one = branches[0]
        if "const" in one or "enum" in one:
            wanted = {one["const"]} if "const" in one else {v for v in one["enum"] if v is not None}
            got = {m.get("const") for m in ts_members}
            return problems + ([] if got == wanted and all("const" in m for m in ts_members)
                               else [f"{where}: {sorted(map(str, wanted))} in AsyncAPI, {ts_members} in TypeScript"])
        if len(ts_members) != 1:
            return problems + [f"{where}: one type in AsyncAPI, a union in TypeScript: {ts_members}"]
        return problems + match_one(one, ts_members[0], where)
    # Several alternatives (the error payloads): each matches exactly one member of the TS union.
    if len(ts_members) != len(branches):
        return problems + [f"{where}: {len(branches)} alternatives in AsyncAPI, {len(ts_members)} in TypeScript"]
    for i, branch in enumerate(branches):
        if not any(not match_one(branch, m, f"{where}|{i}") for m in ts_members):
            problems.append(f"{where}: alternative {i} ({branch.get('properties', {}).get('code')}) has no TypeScript twin")
    return problems


def match_one(schema: dict[str, Any], shape: dict[str, Any], where: str) -> list[str]:
    kind = schema.get("type")
    if kind == "object":
        if "object" not in shape:
            return [f"{where}: an object in AsyncAPI, {shape} in TypeScript"]
        props = schema.get("properties", {})
        ts_props = shape["object"]
        if set(props) != set(ts_props):
            return [f"{where}: fields {sorted(props)} in AsyncAPI, {sorted(ts_props)} in TypeScript"]
        required = set(schema.get("required", []))
        problems = []
        for name, sub in props.items():
            if ts_props[name]["optional"] == (name in required):
                problems.append(f"{where}.{name}: {'required' if name in required else 'optional'} in AsyncAPI")
            problems += mismatch(sub, ts_props[name]["shape"], f"{where}.{name}")
        return problems
    if kind == "array":
        if "array" not in shape:
            return [f"{where}: an array in AsyncAPI, {shape} in TypeScript"]
        return mismatch(schema["items"], shape["array"], f"{where}[]")
    ts_kind = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}.get(kind or "")
    if ts_kind is None or shape.get("type") != ts_kind:
        return [f"{where}: {kind} in AsyncAPI, {shape} in TypeScript"]
    return []


def test_every_asyncapi_schema_has_a_typescript_twin_that_matches_it() -> None:
    shapes = ts_shapes()
    missing = [name for name in SCHEMAS if name not in shapes]
    assert not missing, f"no TypeScript type for {missing}"
    problems = [p for name, schema in SCHEMAS.items() for p in mismatch(schema, shapes[name], name)]
    assert not problems, "\n".join(problems)


def test_every_message_is_in_the_unions_a_client_switches_on() -> None:
    shapes = ts_shapes()
    sent_by_server = {resolve(m["payload"])["properties"]["type"].get("const")
                      for m in ASYNCAPI["components"]["messages"].values()}
    in_union = {m["object"]["type"]["shape"]["const"] for m in shapes["ServerMessage"]["union"]}
    client_types = {m["object"]["type"]["shape"]["const"] for m in shapes["ClientMessage"]["union"]}
    assert in_union | client_types == sent_by_server


def test_the_checker_notices_a_difference() -> None:
    """A field made optional, one dropped, one nullable: each is reported (the check is not vacuous)."""
    position = ts_shapes()["Position"]
    changed = json.loads(json.dumps(position))
    changed["object"]["symbol"]["optional"] = True
    del changed["object"]["side"]
    changed["object"]["cash"] = changed["object"].pop("quantity")
    assert mismatch(SCHEMAS["Position"], changed, "Position")
    nullable = json.loads(json.dumps(position))
    nullable["object"]["symbol"]["shape"] = {"union": [{"null": True}, {"type": "string"}]}
    assert mismatch(SCHEMAS["Position"], nullable, "Position") == ["Position.symbol: null not allowed in AsyncAPI"]
