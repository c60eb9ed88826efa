"""Schema-driven fuzzing: every operation of the OpenAPI document, called with values made
from its own schema (valid, boundary and hostile), by anonymous, staff and admin callers, on
SQLite and PostgreSQL. No call may answer 5xx. Seeded, so a failure reproduces."""

from __future__ import annotations

import json
import random
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient

CASES_PER_OPERATION = 25
HOSTILE_STRINGS = ["", " ", "\x00", "a" * 5000, "<script>alert(1)</script>", "'; DROP TABLE x;--",
                   "%", "_", "../../etc/passwd", "💳🏦", "Ünïcödé", "\ud800".encode(
                       "utf-8", "surrogatepass").decode("utf-8", "replace"), "null", "-1",
                   "1e309", "NaN", "lh_fake"]
HOSTILE_NUMBERS = [0, -1, 1, 2**31 - 1, 2**31, 2**63, -(2**63), 10**30, 1.5]
HOSTILE_VALUES: list[Any] = [None, True, [], {}, [1, "a"], {"$ref": "x"}, "x" * 70000]


class Maker:
    def __init__(self, spec: dict, rng: random.Random) -> None:
        self.spec, self.rng = spec, rng

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.spec["components"]["schemas"][name]
        return schema

    def value(self, schema: dict, depth: int = 0) -> Any:
        schema = self.resolve(schema)
        roll = self.rng.random()
        if roll < 0.15 or depth > 3:
            return self.rng.choice(HOSTILE_VALUES + HOSTILE_NUMBERS + HOSTILE_STRINGS)
        for key in ("anyOf", "oneOf", "allOf"):
            if key in schema:
                return self.value(self.rng.choice(schema[key]), depth + 1)
        if "enum" in schema:
            return self.rng.choice([*schema["enum"], "not-a-choice"])
        kind = schema.get("type")
        if kind == "integer" or kind == "number":
            bounds = [schema.get(k) for k in ("minimum", "maximum") if k in schema]
            edges = [b + d for b in bounds for d in (-1, 0, 1)]
            return self.rng.choice(edges + HOSTILE_NUMBERS + [self.rng.randint(1, 200)])
        if kind == "boolean":
            return self.rng.choice([True, False, "yes", 2])
        if kind == "array":
            return [self.value(schema.get("items", {}), depth + 1)
                    for _ in range(self.rng.choice([0, 1, 2, 60]))]
        if kind == "object" or "properties" in schema:
            props = schema.get("properties", {})
            body = {name: self.value(sub, depth + 1) for name, sub in props.items()
                    if self.rng.random() < 0.8}
            if self.rng.random() < 0.1:
                body["unexpected"] = "field"
            return body
        if kind == "string":
            fmt = schema.get("format")
            if fmt == "date-time":
                return self.rng.choice(["2026-11-30T10:00:00Z", "2026-13-45T99:00:00",
                                        "yesterday", "1970-01-01T00:00:00+14:00"])
            return self.rng.choice(HOSTILE_STRINGS + ["card", "published", "101", "c-answer"])
        return self.rng.choice(HOSTILE_VALUES)


def _operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, ops in spec["paths"].items()
            for method, op in ops.items()]


def _request(maker: Maker, path: str, op: dict) -> tuple[str, dict, Any, bytes | None]:
    url, params = path, {}
    for parameter in op.get("parameters", []):
        value = maker.value(parameter.get("schema", {}))
        if isinstance(value, str):
            value = value[:1500]  # an HTTP client will not send a longer URL anyway
        if parameter["in"] == "path":
            text = value if isinstance(value, str) else json.dumps(value)
            url = url.replace("{" + parameter["name"] + "}", quote(text, safe="") or "x")
        elif maker.rng.random() < 0.7 and not isinstance(value, (dict, list)):
            params[parameter["name"]] = value
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        roll = maker.rng.random()
        if roll < 0.1:
            return url, params, None, maker.rng.choice([b"{bad json", b"\xff\xfe", b"[" * 500])
        return url, params, maker.value(content["application/json"]["schema"]), None
    if content:  # raw files (answer import)
        return url, params, None, maker.rng.choice(
            [b"- {title: a, body: b}", b"title,body\na,b\n", b"\x00\x01", b"- [", b"{}"])
    return url, params, None, None


def test_no_request_made_from_the_schema_gets_a_5xx(client: TestClient, auth: dict) -> None:
    spec = client.get("/openapi.json").json()
    rng = random.Random(20261130)
    maker = Maker(spec, rng)
    callers = [{}, auth["staff"], auth["admin"]]
    failures, calls, seen = [], 0, {}  # type: ignore[var-annotated]
    for method, path, op in _operations(spec):
        for _ in range(CASES_PER_OPERATION):
            url, params, body, raw = _request(maker, path, op)
            headers = dict(rng.choice(callers))
            if raw is not None:
                headers["Content-Type"] = "application/octet-stream"
            reply = client.request(method, url, params=params, headers=headers,
                                   content=raw if raw is not None else None,
                                   json=body if raw is None and body is not None else None)
            calls += 1
            seen[reply.status_code] = seen.get(reply.status_code, 0) + 1
            if reply.status_code >= 500:
                failures.append((method, url, params, body, raw, reply.status_code,
                                 reply.text[:200]))
    assert calls >= 25 * 35
    # The fuzzing reached the handlers, not only the auth and validation layers.
    assert seen.get(200, 0) > calls // 10 and seen.get(422, 0) > calls // 10, seen
    assert failures == [], failures[:5]
