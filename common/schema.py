"""JSON Schema that tells the truth about ``null``, for every pydantic model the admin API's
OpenAPI document shows (its own schemas, and the answer schema of ``retrieval``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

NON_SCHEMA_KEYS = ("title", "description", "default", "examples")


def document_nullable(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """pydantic 1 documents ``X | None`` as plain ``X``; make it ``anyOf: [X, null]``."""
    properties = schema.get("properties", {})
    never_null = getattr(model, "__not_null__", ())
    for field in model.__fields__.values():
        prop = properties.get(field.alias)
        if not field.allow_none or field.name in never_null or prop is None or _allows_null(prop):
            continue
        inner = {k: v for k, v in prop.items() if k not in NON_SCHEMA_KEYS}
        outer = {k: v for k, v in prop.items() if k in NON_SCHEMA_KEYS}
        properties[field.alias] = {**outer, "anyOf": [inner, {"type": "null"}]}


def _allows_null(prop: dict[str, Any]) -> bool:
    kinds = prop.get("type")
    return kinds == "null" or (isinstance(kinds, list) and "null" in kinds) or any(
        option.get("type") == "null" for option in prop.get("anyOf", []))
