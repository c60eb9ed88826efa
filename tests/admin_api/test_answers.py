"""Answer curation through the admin API: CRUD, publish, revisions and restore, stale edits,
bulk import and export, and the audit trail (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io

import pytest
import yaml
from fastapi.testclient import TestClient

NEW = {"title": "Weekend card freeze", "body": "Freeze your card in the app, any day.",
       "questions": ["can I freeze my card on sunday"], "tags": ["Cards"],
       "intent": "lost_or_stolen_card"}


def _published_ids(client: TestClient) -> set[int]:
    changes = client.get("/api/v1/answers/changes", params={"since": 0, "limit": 5000}).json()
    return {a["id"] for a in changes["upserts"]}


def test_create_edit_publish_unpublish_delete(client: TestClient, auth: dict) -> None:
    staff = auth["staff"]
    created = client.post("/api/v1/answers", headers=staff, json=NEW)
    assert created.status_code == 201, created.text
    answer = created.json()
    assert answer["status"] == "draft" and answer["revision"] == 1 and answer["tags"] == ["cards"]
    answer_id = answer["id"]
    assert answer_id not in _published_ids(client)  # drafts never reach the bot

    published = client.post(f"/api/v1/answers/{answer_id}/publish", headers=staff).json()
    assert published["status"] == "published" and published["revision"] == 2
    assert answer_id in _published_ids(client)

    edited = client.patch(f"/api/v1/answers/{answer_id}", headers=staff,
                          json={"base_revision": 2, "body": "Freeze it in the app, 24/7."})
    assert edited.status_code == 200, edited.text
    assert edited.json()["body"] == "Freeze it in the app, 24/7." and edited.json()["revision"] == 3
    changes = client.get("/api/v1/answers/changes",
                         params={"since": published["version"]}).json()
    assert [a["body"] for a in changes["upserts"]] == ["Freeze it in the app, 24/7."]

    assert client.post(f"/api/v1/answers/{answer_id}/unpublish",
                       headers=staff).json()["status"] == "draft"
    assert answer_id not in _published_ids(client)
    assert client.delete(f"/api/v1/answers/{answer_id}", headers=staff).status_code == 204
    assert client.get(f"/api/v1/answers/{answer_id}", headers=staff).status_code == 404

    listed = client.get("/api/v1/answers", headers=staff, params={"q": "freeze"}).json()
    assert answer_id not in {a["id"] for a in listed["items"]}


def test_a_stale_edit_is_refused_and_loses_nothing(client: TestClient, auth: dict) -> None:
    staff = auth["staff"]
    answer = client.get("/api/v1/answers/101", headers=staff).json()
    first = client.patch("/api/v1/answers/101", headers=staff,
                         json={"base_revision": answer["revision"], "title": "Card delivery"})
    assert first.status_code == 200
    second = client.patch("/api/v1/answers/101", headers=auth["admin"],
                          json={"base_revision": answer["revision"], "title": "Overwrite"})
    assert second.status_code == 409 and "revision" in second.json()["detail"]
    assert client.get("/api/v1/answers/101", headers=staff).json()["title"] == "Card delivery"


def test_bad_edits_are_422_with_the_field(client: TestClient, auth: dict) -> None:
    staff = auth["staff"]
    revision = client.get("/api/v1/answers/101", headers=staff).json()["revision"]
    for patch, field in (({"title": "   "}, "title"), ({"questions": ["a", "A"]}, "questions"),
                         ({"intent": "Bad Intent"}, "intent"), ({"body": 5}, "body"),
                         ({"status": "published"}, "status"), ({}, "base_revision")):
        body = {"base_revision": revision, **patch} if field != "base_revision" else patch
        reply = client.patch("/api/v1/answers/101", headers=staff, json=body)
        assert reply.status_code == 422, (patch, reply.text)
        assert field in reply.text
    assert client.post("/api/v1/answers", headers=staff,
                       json={**NEW, "id": 101}).status_code == 409
    assert client.patch("/api/v1/answers/99999", headers=staff,
                        json={"base_revision": 1, "title": "x"}).status_code == 404


def test_revisions_and_restore_even_after_delete(client: TestClient, auth: dict) -> None:
    staff = auth["staff"]
    original = client.get("/api/v1/answers/102", headers=staff).json()
    client.patch("/api/v1/answers/102", headers=staff,
                 json={"base_revision": original["revision"], "body": "Changed body."})
    history = client.get("/api/v1/answers/102/revisions", headers=staff).json()
    assert [r["action"] for r in history["items"]] == ["update", "create"]
    assert history["items"][0]["changed"] == ["body"] and history["items"][0]["author"] == "sam"
    assert history["items"][1]["author"] is None  # the seed import

    restored = client.post("/api/v1/answers/102/revisions/1/restore", headers=staff).json()
    assert restored["body"] == original["body"] and restored["status"] == original["status"]
    assert restored["revision"] == 3

    assert client.delete("/api/v1/answers/102", headers=staff).status_code == 204
    back = client.post("/api/v1/answers/102/revisions/2/restore", headers=staff)
    assert back.status_code == 200, back.text
    assert back.json()["body"] == "Changed body." and back.json()["status"] == "draft"
    actions = [r["action"] for r in
               client.get("/api/v1/answers/102/revisions", headers=staff).json()["items"]]
    assert actions == ["restore", "delete", "restore", "update", "create"]
    assert client.post("/api/v1/answers/102/revisions/99/restore",
                       headers=staff).status_code == 404


def test_list_filters_sorts_and_pages(client: TestClient, auth: dict) -> None:
    staff = auth["staff"]
    page = client.get("/api/v1/answers", headers=staff,
                      params={"limit": 5, "offset": 5, "sort": "-id"}).json()
    assert page["total"] == 80 and len(page["items"]) == 5
    ids = [a["id"] for a in page["items"]]
    assert ids == sorted(ids, reverse=True)
    by_intent = client.get("/api/v1/answers", headers=staff,
                           params={"intent": "lost_or_stolen_card"}).json()
    assert [a["id"] for a in by_intent["items"]] == [105]
    assert client.get("/api/v1/answers", headers=staff,
                      params={"sort": "password"}).status_code == 422


def test_export_then_import_round_trips_yaml_and_csv(client: TestClient, auth: dict) -> None:
    staff = auth["staff"]
    exported = client.get("/api/v1/answers/export", headers=staff, params={"format": "yaml"})
    assert exported.status_code == 200
    entries = yaml.safe_load(exported.text)
    assert len(entries) == 80
    same = client.post("/api/v1/answers/import", headers=staff, params={"format": "yaml"},
                       content=exported.content)
    assert same.status_code == 200, same.text
    assert same.json()["updated"] == [] and len(same.json()["unchanged"]) == 80

    as_csv = client.get("/api/v1/answers/export", headers=staff, params={"format": "csv"}).text
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    rows[0]["title"] = "Edited in a spreadsheet"
    rows.append({"id": "", "intent": "", "title": "New from CSV", "status": "published",
                 "tags": "a\nb", "questions": "first question\nsecond question",
                 "body": "Line one,\n\"quoted\" line two."})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    imported = client.post("/api/v1/answers/import", headers=staff, params={"format": "csv"},
                           content=out.getvalue().encode())
    assert imported.status_code == 200, imported.text
    report = imported.json()
    assert report["updated"] == [int(rows[0]["id"])] and len(report["created"]) == 1
    new = client.get(f"/api/v1/answers/{report['created'][0]}", headers=staff).json()
    assert new["questions"] == ["first question", "second question"]
    assert new["body"] == "Line one,\n\"quoted\" line two." and new["tags"] == ["a", "b"]


def test_csv_export_neutralises_formulas_and_the_import_restores_them(
        client: TestClient, auth: dict) -> None:
    staff = auth["staff"]
    created = client.post("/api/v1/answers", headers=staff, json={
        "title": "=HYPERLINK(\"https://evil.example\",\"click\")", "body": "- in shops\n- online",
        "questions": ["+1 charge on my card?", "@home top-up", "plain question"],
        "tags": ["-x"]})
    assert created.status_code == 201, created.text
    answer = created.json()
    exported = client.get("/api/v1/answers/export", headers=staff, params={"format": "csv"})
    [row] = [r for r in csv.DictReader(io.StringIO(exported.text)) if r["id"] == str(answer["id"])]
    assert row["title"].startswith("'=") and row["body"].startswith("'- in shops")
    assert row["questions"].splitlines() == ["'+1 charge on my card?", "'@home top-up",
                                             "plain question"]
    # Nothing a spreadsheet would evaluate: no cell of the file starts with a formula sign.
    for cells in csv.reader(io.StringIO(exported.text)):
        assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in cells), cells
    again = client.post("/api/v1/answers/import", headers=staff, params={"format": "csv"},
                        content=exported.content)
    assert again.status_code == 200, again.text
    assert answer["id"] in again.json()["unchanged"]  # the round trip changed nothing
    stored = client.get(f"/api/v1/answers/{answer['id']}", headers=staff).json()
    assert stored["title"] == answer["title"] and stored["questions"] == answer["questions"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"- &a {title: t, body: b}\n" + b"- *a\n" * 2000, "anchors and aliases"),
        (b"- {title: t, body: b}\n- *a\n", "anchors and aliases"),
        ("".join(f"- {{title: t{i}, body: b}}\n" for i in range(5001)).encode(), "at most 5000"),
    ],
)
def test_an_import_with_aliases_or_too_many_answers_is_refused_and_writes_nothing(
        client: TestClient, auth: dict, content: bytes, fragment: str) -> None:
    before = client.get("/api/v1/answers", headers=auth["staff"]).json()["total"]
    reply = client.post("/api/v1/answers/import", headers=auth["staff"],
                        params={"format": "yaml"}, content=content)
    assert reply.status_code == 422, reply.text
    assert fragment in reply.json()["detail"]
    assert client.get("/api/v1/answers", headers=auth["staff"]).json()["total"] == before


def test_a_bad_import_names_the_row_and_changes_nothing(client: TestClient, auth: dict) -> None:
    staff = auth["staff"]
    bad = "- {id: 101, title: Fine, body: Fine}\n- {title: '', body: x}\n"
    reply = client.post("/api/v1/answers/import", headers=staff, content=bad.encode())
    assert reply.status_code == 422 and "entry 2" in reply.json()["detail"]
    assert client.get("/api/v1/answers/101", headers=staff).json()["title"] != "Fine"
    for content, fmt in ((b"\xff\xfe\x00binary", "yaml"), (b"[unclosed", "yaml"),
                         (b"title,body,colour\nx,y,z\n", "csv"), (b"{a: 1}", "yaml"),
                         (b"- {id: 1, id2: 3, title: a, body: b}", "yaml")):
        reply = client.post("/api/v1/answers/import", headers=staff, params={"format": fmt},
                            content=content)
        assert reply.status_code == 422, (content, reply.text)


def test_every_write_is_audited(client: TestClient, auth: dict) -> None:
    staff, admin = auth["staff"], auth["admin"]
    client.post("/api/v1/answers", headers=staff, json=NEW)
    client.post("/api/v1/answers/103/unpublish", headers=staff)
    entries = client.get("/api/v1/audit", headers=admin).json()["items"]
    assert [(e["actor"], e["action"]) for e in entries[:2]] == [
        ("sam", "answer.unpublish"), ("sam", "answer.create")]
    assert client.get("/api/v1/audit", headers=staff).status_code == 403
