"""The OpenAPI document, made truthful about errors: every operation lists each 4xx it can
answer, and every error has the one shape the API sends, ``{"detail": ...}``, where ``detail``
is a message or, for a request that fails validation, the list of field errors.

FastAPI documents only the 422 of its own validation (with a list ``detail``), while our
routes also answer 422 with a message, 404 for unknown ids, 400 for a body that is not JSON,
413 for an oversize body, and 401/403 wherever a token is needed. A client generated from a
document that hides them breaks on the first real error (schemathesis checks this).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from admin_api.api.deps import current_caller

ERROR = "Error"
ERROR_SCHEMA = {
    "title": ERROR,
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "title": "Detail",
            "description": "What was wrong: a message, or the list of invalid fields.",
            "anyOf": [{"type": "string"},
                      {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}],
        },
    },
}
DESCRIPTIONS = {
    "400": "The body is not valid JSON",
    "401": "Missing, invalid, expired or revoked bearer token",
    "403": "The caller's role may not do this",
    "404": "No such resource",
    "409": "Conflicts with the current state (a stale revision, a duplicate, a job running)",
    "413": "The request body is larger than the limit",
    "422": "A parameter or the body is invalid",
    "429": "Too many requests from this client; see Retry-After",
}


def _needs(dependant: Dependant, call: Callable[..., object]) -> bool:
    return any(d.call is call or _needs(d, call) for d in dependant.dependencies)


def _errors(route: APIRoute, operation: dict[str, Any]) -> set[str]:
    """The 4xx an operation can answer, beyond those its route declares."""
    codes = set()
    parameters = operation.get("parameters", [])
    if operation.get("requestBody"):
        codes |= {"400", "413", "422"}
    if parameters:
        codes.add("422")
    if any(p.get("in") == "path" for p in parameters):
        codes.add("404")
    if _needs(route.dependant, current_caller):
        codes |= {"401", "403"}
    return codes


def _document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is not None:
        return app.openapi_schema
    spec = get_openapi(title=app.title, version=app.version, description=app.description,
                       routes=app.routes)
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR] = ERROR_SCHEMA
    error_ref = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR}"}}}
    routes = {(route.path, method.lower()): route for route in app.routes
              if isinstance(route, APIRoute) and route.include_in_schema
              for method in route.methods}
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes.get((path, method))
            responses = operation.setdefault("responses", {})
            codes = {c for c in responses if c.startswith("4")}
            if route is not None:
                codes |= _errors(route, operation)
            for code in sorted(codes):
                entry = responses.setdefault(code, {})
                if entry.get("description") in (None, "", "Validation Error"):
                    entry["description"] = DESCRIPTIONS.get(code, "Client error")
                entry["content"] = error_ref
    schemas.pop("HTTPValidationError", None)
    app.openapi_schema = spec
    return spec


def install(app: FastAPI) -> None:
    """Serve the truthful document at ``/openapi.json`` (and in ``/docs``)."""
    app.openapi = lambda: _document(app)  # type: ignore[method-assign]
