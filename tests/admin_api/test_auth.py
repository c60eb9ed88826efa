"""The auth matrix: every route of the app against anonymous, expired, revoked, deactivated,
staff and admin callers. The routes are walked from the app itself, so a new route that
forgets its auth dependency fails here."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api.core import security
from admin_api.models import ApiToken, Role, User, utcnow
from common.db import get_engine

PUBLIC = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/"),
          ("GET", "/widget.js"), ("GET", "/markdown.js"), ("GET", "/demo.css"),
          ("GET", "/api/v1/answers/published"), ("GET", "/api/v1/answers/changes"),
          ("POST", "/api/v1/feedback"), ("GET", "/api/v1/handoff/availability"),
          ("GET", "/console"), ("GET", "/console/sign-in"), ("POST", "/console/sign-in"),
          ("GET", "/console/assets/{name}")}
ADMIN_ONLY = {("GET", "/api/v1/users"), ("POST", "/api/v1/users"),
              ("PATCH", "/api/v1/users/{user_id}"), ("GET", "/api/v1/users/{user_id}/tokens"),
              ("POST", "/api/v1/users/{user_id}/tokens"), ("GET", "/api/v1/audit"),
              ("PUT", "/api/v1/conversations/retention"), ("POST", "/api/v1/conversations/purge"),
              ("DELETE", "/api/v1/conversations/{session_id}"), ("POST", "/api/v1/retrain"),
              ("POST", "/api/v1/jobs/{job_id}/cancel"), ("POST", "/api/v1/models/rollback"),
              ("POST", "/api/v1/models/{model_key}/promote"),
              ("GET", "/api/v1/conversations/{session_id}/export"),
              ("POST", "/console/conversations/{session_id}/erase"),
              ("GET", "/console/people"), ("POST", "/console/people"),
              ("GET", "/console/people/{user_id}"), ("POST", "/console/people/{user_id}"),
              ("GET", "/console/people/{user_id}/tokens"),
              ("POST", "/console/people/{user_id}/tokens"),
              ("POST", "/console/people/tokens/{token_id}/revoke"), ("GET", "/console/audit"),
              ("POST", "/console/models/{model_key}/promote"), ("POST", "/console/models/rollback"),
              ("POST", "/console/retraining"), ("POST", "/console/retraining/{job_id}/cancel"),
              ("PUT", "/api/v1/thresholds"), ("POST", "/api/v1/simulator/replays"),
              ("POST", "/api/v1/simulator/outcomes"), ("GET", "/api/v1/simulator/replays/latest"),
              ("GET", "/console/simulator"), ("POST", "/console/simulator/replays"),
              ("POST", "/console/simulator/outcomes"), ("POST", "/console/simulator/save"),
              ("PUT", "/api/v1/models/watch"), ("POST", "/console/models/watch")}
# Path parameters that name nothing, so that an allowed call ends in 404 or 422, not a change.
ABSENT = {"answer_id": "424242", "item_id": "424242", "example_id": "424242",
          "user_id": "424242", "token_id": "424242", "revision": "7",
          "session_id": "no-such-conversation", "job_id": "424242", "model_key": "424242",
          "reply_id": "424242", "name": "nothing.js", "proposal_id": "424242",
          "table": "nothing"}


def _routes(client: TestClient) -> list[tuple[str, str]]:
    found = []
    for route in client.app.routes:
        if isinstance(route, APIRoute):
            found.extend((method, route.path) for method in route.methods)
    return sorted(found)


def _call(client: TestClient, method: str, path: str, headers: dict) -> int:
    """The status a caller gets; the console refuses an unknown caller with a redirect to its
    sign-in page rather than a bare 401, which counts as the same refusal here."""
    url = path.format(**ABSENT)
    reply = client.request(method, url, headers=headers, json={}, follow_redirects=False)
    if reply.status_code == 303 and reply.headers["location"].endswith("/console/sign-in"):
        return 401
    return reply.status_code


def _token(role: Role, name: str, **state: object) -> dict[str, str]:
    with Session(get_engine()) as session:
        user = security.create_user(session, name, role)
        row, secret = security.issue_token(session, user, "matrix")
        for key, value in state.items():
            target = user if key == "active" else row
            setattr(target, key, value)
            session.add(target)
        session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_every_route_checks_who_is_calling(client: TestClient, auth: dict) -> None:
    routes = _routes(client)
    assert PUBLIC | ADMIN_ONLY <= set(routes)
    spec = client.get("/openapi.json").json()["paths"]
    for method, path in routes:
        documented = set(spec.get(path, {}).get(method.lower(), {}).get("responses", {}))
        if path in spec and (method, path) not in PUBLIC:
            assert {"401", "403"} <= documented, (method, path)
    callers = {
        "anonymous": {},
        "malformed": {"Authorization": "Basic dXNlcjpwYXNz"},
        "unknown": {"Authorization": "Bearer lh_not-a-real-token"},
        "expired": _token(Role.admin, "old", expires_at=utcnow() - timedelta(seconds=1)),
        "revoked": _token(Role.admin, "gone", revoked_at=utcnow()),
        "deactivated": _token(Role.admin, "left", active=False),
    }
    for method, path in routes:
        if (method, path) in PUBLIC:
            assert _call(client, method, path, {}) not in (401, 403), (method, path)
            continue
        for name, headers in callers.items():
            status = _call(client, method, path, headers)
            assert status == 401, (name, method, path, status)
        staff = _call(client, method, path, auth["staff"])
        admin = _call(client, method, path, auth["admin"])
        assert admin not in (401, 403), (method, path, admin)
        if (method, path) in ADMIN_ONLY:
            assert staff == 403, (method, path, staff)
        else:
            assert staff not in (401, 403), (method, path, staff)


def test_a_revoked_token_stops_working_at_once(client: TestClient, auth: dict) -> None:
    issued = client.post("/api/v1/users", headers=auth["admin"],
                         json={"name": "kim", "role": "staff"})
    assert issued.status_code == 201
    token = client.post(f"/api/v1/users/{issued.json()['id']}/tokens", headers=auth["admin"],
                        json={"name": "laptop", "expires_in_days": 1}).json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    assert client.get("/api/v1/users/me", headers=headers).json()["name"] == "kim"
    assert client.delete(f"/api/v1/tokens/{token['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/users/me", headers=headers).status_code == 401
    with Session(get_engine()) as session:
        stored = session.get(ApiToken, token["id"])
        assert stored is not None and stored.token_hash != token["token"]  # only the hash
        assert token["token"] not in stored.token_hash


def test_roles_change_and_the_last_admin_stays(client: TestClient, auth: dict) -> None:
    admin = auth["admin"]
    me = client.get("/api/v1/users/me", headers=admin).json()
    with Session(get_engine()) as session:
        others = session.exec(select(User).where(User.role == "admin", User.id != me["id"])).all()
        for other in others:
            other.role = "staff"
            session.add(other)
        session.commit()
    refused = client.patch(f"/api/v1/users/{me['id']}", headers=admin, json={"active": False})
    assert refused.status_code == 409
    staff_id = client.get("/api/v1/users/me", headers=auth["staff"]).json()["id"]
    promoted = client.patch(f"/api/v1/users/{staff_id}", headers=admin, json={"role": "admin"})
    assert promoted.json()["role"] == "admin"
    assert client.get("/api/v1/audit", headers=auth["staff"]).status_code == 200
    assert client.post("/api/v1/users", headers=admin,
                       json={"name": "sam", "role": "staff"}).status_code == 409
    assert client.post("/api/v1/users", headers=admin,
                       json={"name": "x y", "role": "root"}).status_code == 422


@pytest.mark.parametrize("body", [{"role": None}, {"active": None}, {"role": None, "active": True}])
def test_a_null_role_or_active_flag_is_refused_and_changes_nothing(
        client: TestClient, auth: dict, body: dict) -> None:
    staff = client.get("/api/v1/users/me", headers=auth["staff"]).json()
    reply = client.patch(f"/api/v1/users/{staff['id']}", headers=auth["admin"], json=body)
    assert reply.status_code == 422, reply.text
    assert "not null" in reply.text
    assert client.get("/api/v1/users/me", headers=auth["staff"]).json() == staff


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "https://evil.example"])
def test_cors_admits_only_configured_origins(client: TestClient, origin: str) -> None:
    reply = client.options("/api/v1/feedback", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"})
    allowed = reply.headers.get("access-control-allow-origin")
    assert (allowed == origin) == (origin == "http://127.0.0.1:8000")


def test_public_intake_is_rate_limited(client: TestClient, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    from common.config import get_settings

    monkeypatch.setattr(get_settings(), "public_rate_per_minute", 8)
    codes = [client.post("/api/v1/feedback", json={
        "session_id": "rl", "message_id": f"m{i}", "rating": "up"}).status_code
        for i in range(4)]
    assert codes[:2] == [201, 201] and codes[-1] == 429
    reply = client.post("/api/v1/feedback", json={"session_id": "rl", "message_id": "z",
                                                  "rating": "up"})
    assert reply.status_code == 429 and int(reply.headers["retry-after"]) >= 1
