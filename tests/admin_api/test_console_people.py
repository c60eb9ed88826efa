"""The admins' people and audit screens over real HTTP (SQLite and PostgreSQL): tokens shown
once and revoked at once, the last admin kept, staff refused, the audit log filtered."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api.models import User
from common.db import get_engine
from tests.admin_api.test_console import signed_in


def test_an_admin_adds_a_person_issues_a_token_once_and_revoking_it_locks_it_out(
        client: TestClient, auth: dict) -> None:
    admin, csrf = signed_in(client, auth["admin"])
    write = {"X-CSRF-Token": csrf}
    added = admin.post("/console/people", headers=write, data={"name": "rosa", "role": "staff"})
    assert added.status_code == 200 and "Added rosa (staff)" in added.text
    assert admin.post("/console/people", headers=write,
                      data={"name": "rosa", "role": "staff"}).status_code == 409
    bad = admin.post("/console/people", headers=write, data={"name": "no spaces", "role": "staff"})
    assert bad.status_code == 422 and "name" in bad.text
    with Session(get_engine()) as session:
        rosa = session.exec(select(User).where(User.name == "rosa")).one()
    issued = admin.post(f"/console/people/{rosa.id}/tokens", headers=write,
                        data={"name": "laptop", "expires_in_days": "30"})
    assert issued.status_code == 200 and "shown only this once" in issued.text
    token = re.search(r'value="(lh_[^"]+)"', issued.text).group(1)
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/users/me", headers=bearer).json()["name"] == "rosa"
    page = admin.get(f"/console/people/{rosa.id}").text
    assert token not in page and token[:10] in page  # only the prefix, ever again
    token_id = re.search(r'/console/people/tokens/(\d+)/revoke', page).group(1)
    revoked = admin.post(f"/console/people/tokens/{token_id}/revoke", headers=write)
    assert revoked.status_code == 200 and "revoked" in revoked.text
    assert client.get("/api/v1/users/me", headers=bearer).status_code == 401
    assert "revoked" in admin.get(f"/console/people/{rosa.id}/tokens").text
    # Deactivating a person (the box unticked) locks out their console session too.
    second = admin.post(f"/console/people/{rosa.id}/tokens", headers=write,
                        data={"name": "phone", "expires_in_days": ""})
    rosa_console, _ = signed_in(client, {"Authorization": "Bearer " + re.search(
        r'value="(lh_[^"]+)"', second.text).group(1)})
    changed = admin.post(f"/console/people/{rosa.id}", headers=write, data={"role": "staff"})
    assert changed.status_code == 200 and "deactivated" in changed.text
    assert rosa_console.get("/console/answers", follow_redirects=False).status_code == 303


def test_the_last_active_admin_cannot_be_demoted_and_staff_are_refused(
        client: TestClient, auth: dict) -> None:
    admin, csrf = signed_in(client, auth["admin"])
    with Session(get_engine()) as session:
        admins = session.exec(select(User).where(User.role == "admin")).all()
        me = next(u.id for u in admins if u.name == "ada")
        for other in admins:
            if other.id != me:
                other.role = "staff"
                session.add(other)
        session.commit()
    refused = admin.post(f"/console/people/{me}", headers={"X-CSRF-Token": csrf},
                         data={"role": "staff", "active": "true"})
    assert refused.status_code == 409 and "last active admin" in refused.text
    staff, staff_csrf = signed_in(client, auth["staff"])
    page = staff.get("/console/people")
    assert page.status_code == 403 and "admin" in page.text
    assert "/console/people" not in staff.get("/console/answers").text  # not in the menu
    posted = staff.post("/console/people", headers={"X-CSRF-Token": staff_csrf},
                        data={"name": "sneaky", "role": "admin"})
    assert posted.status_code == 403
    with Session(get_engine()) as session:
        assert session.exec(select(User).where(User.name == "sneaky")).first() is None
    assert staff.get("/console/audit").status_code == 403


def test_the_audit_log_filters_by_who_and_what_and_shows_details_as_text(
        client: TestClient, auth: dict) -> None:
    admin, csrf = signed_in(client, auth["admin"])
    hostile = "<script>alert(1)</script>"
    made = admin.post("/console/people", headers={"X-CSRF-Token": csrf},
                      data={"name": "tom", "role": "staff"})
    assert made.status_code == 200
    client.post("/api/v1/answers", headers=auth["staff"], json={
        "title": hostile, "body": "b", "questions": [], "tags": []})
    page = admin.get("/console/audit", params={"actor": "ada"})
    assert page.status_code == 200 and "user.create" in page.text
    assert "answer.create" not in page.text  # sam's write is not ada's
    by_action = admin.get("/console/audit", params={"action": "answer.create"}).text
    assert "answer.create" in by_action and "user.create" not in by_action
    assert "<script>alert" not in by_action
    bad = admin.get("/console/audit", params={"since": "yesterday"})
    assert bad.status_code == 422 and "since" in bad.text
