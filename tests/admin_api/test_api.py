"""The admin API frame over a real database: health, feedback intake, published answers, page."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api.models import Feedback
from common.config import get_settings
from common.db import get_engine
from tests.conftest import ALLOWED_ORIGIN


def _stored(client: TestClient) -> list[Feedback]:
    with Session(get_engine(get_settings().database_url)) as session:
        return list(session.exec(select(Feedback).order_by(Feedback.id)).all())


def test_health_reports_database(client: TestClient) -> None:
    reply = client.get("/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok", "database": "ok"}


def test_feedback_is_stored(client: TestClient) -> None:
    reply = client.post("/api/v1/feedback", json={
        "session_id": "s-1", "message_id": "m-1", "answer_id": 105, "rating": "down",
        "comment": "  <script>alert(1)</script> ünïcödé 💳  "})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["rating"] == "down" and body["status"] == "new" and body["answer_id"] == 105
    [row] = _stored(client)
    assert row.session_id == "s-1" and row.message_id == "m-1"
    assert row.comment == "<script>alert(1)</script> ünïcödé 💳"  # stored verbatim, trimmed
    assert row.text is None and row.intent is None  # never taken from the client


def test_rating_the_same_message_again_replaces_it(client: TestClient) -> None:
    first = {"session_id": "s-2", "message_id": "m-9", "rating": "up"}
    assert client.post("/api/v1/feedback", json=first).status_code == 201
    second = client.post("/api/v1/feedback", json={**first, "rating": "down", "comment": "wrong"})
    assert second.status_code == 200
    [row] = _stored(client)
    assert row.rating == "down" and row.comment == "wrong"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"session_id": "s", "message_id": "m", "rating": "sideways"}, "rating"),
        ({"session_id": "", "message_id": "m", "rating": "up"}, "session_id"),
        ({"session_id": "s" * 129, "message_id": "m", "rating": "up"}, "session_id"),
        ({"session_id": "s p a c e", "message_id": "m", "rating": "up"}, "session_id"),
        ({"session_id": "s", "rating": "up"}, "message_id"),
        ({"session_id": "s", "message_id": "m", "rating": "up", "comment": "x" * 2001},
         "comment"),
        ({"session_id": "s", "message_id": "m", "rating": "up", "comment": "a\x00b"}, "NUL"),
        ({"session_id": "s", "message_id": "m", "rating": "up", "answer_id": "abc"},
         "answer_id"),
        ({"session_id": "s", "message_id": "m", "rating": "up", "text": "forged"}, "text"),
        ({"session_id": ["s"], "message_id": "m", "rating": "up"}, "session_id"),
        ({"session_id": "s", "message_id": "m", "rating": "up", "answer_id": 999999},
         "unknown answer id 999999"),
    ],
)
def test_bad_feedback_is_refused_with_a_message(
    client: TestClient, payload: dict, fragment: str
) -> None:
    reply = client.post("/api/v1/feedback", json=payload)
    assert reply.status_code == 422, reply.text
    assert fragment in reply.text
    assert _stored(client) == []


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 422),
        (b"", 422),
        (b"\xff\xfe\x00\x01binary", 422),
        (b"[1, 2, 3]", 422),
        (b'{"session_id": "s", "message_id": "m", "rating": "up", "comment": "'
         + b"x" * 100_000 + b'"}', 413),
    ],
)
def test_malformed_bodies_get_4xx(client: TestClient, content: bytes, status: int) -> None:
    reply = client.post(
        "/api/v1/feedback", content=content, headers={"Content-Type": "application/json"}
    )
    assert reply.status_code == status, reply.text
    assert "detail" in reply.json()
    assert _stored(client) == []


def test_cors_allows_only_configured_origins(client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    allowed = client.options("/api/v1/feedback", headers={"Origin": ALLOWED_ORIGIN, **preflight})
    assert allowed.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN
    refused = client.options(
        "/api/v1/feedback", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers


def test_published_answers_by_intent(client: TestClient) -> None:
    reply = client.get("/api/v1/answers/published", params={"intent": "card_arrival"})
    assert reply.status_code == 200, reply.text
    [answer] = reply.json()
    assert answer["id"] == 101 and answer["status"] == "published"
    assert "5 to 7 working days" in answer["body"]
    all_answers = client.get("/api/v1/answers/published", params={"limit": 500}).json()
    assert len(all_answers) == 80
    bad = client.get("/api/v1/answers/published", params={"intent": "Bad-Name!"})
    assert bad.status_code == 422
    assert client.get("/api/v1/answers/published", params={"limit": 0}).status_code == 422


def test_demo_page_embeds_the_widget_with_escaped_urls(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELPDESK_PUBLIC_RASA_URL", 'http://x/"><script>alert(1)//')
    get_settings.cache_clear()
    page = client.get("/")
    assert page.status_code == 200
    expected = 'data-socket-url="http://x/&quot;&gt;&lt;script&gt;alert(1)//"'
    assert '<script src="/widget.js"' in page.text and expected in page.text
    assert "<script>alert(1)" not in page.text


def test_widget_script_is_served_or_its_absence_explained(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HELPDESK_WIDGET_DIR", str(tmp_path))
    get_settings.cache_clear()
    missing = client.get("/widget.js")
    assert missing.status_code == 404 and "make setup" in missing.json()["detail"]
    (tmp_path / "widget.js").write_text("console.log('lepton');")
    served = client.get("/widget.js")
    assert served.status_code == 200 and "javascript" in served.headers["content-type"]
    assert served.text == "console.log('lepton');"



@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        ("/api/v1/feedback",
         b'{"session_id": "s", "message_id": "m", "rating": "up", "comment": "a\\ud800b"}',
         ["body", "comment"]),
        ("/api/v1/feedback",
         b'{"session_id": "s", "message_id": "m", "rating": "up", "\\udfff": 1}',
         ["body", "\udfff"]),
        ("/api/v1/answers", b'{"title": "t", "body": "b", "questions": ["ok", "\\udc00"]}',
         ["body", "questions", 1]),
    ],
)
def test_a_lone_surrogate_in_a_json_body_is_a_422_naming_the_field(
        client: TestClient, auth: dict, path: str, body: bytes, location: list) -> None:
    reply = client.post(path, content=body, headers={**auth["staff"],
                                                     "Content-Type": "application/json"})
    assert reply.status_code == 422, reply.text
    [error] = reply.json()["detail"]
    assert error["loc"] == location and "Unicode" in error["msg"]
    assert _stored(client) == []
    # A surrogate pair (an emoji) is ordinary text and goes through.
    fine = client.post("/api/v1/feedback", content=b'{"session_id": "s", "message_id": "m", '
                       b'"rating": "up", "comment": "\\ud83d\\ude00"}',
                       headers={"Content-Type": "application/json"})
    assert fine.status_code == 201 and fine.json()["comment"] == "\U0001F600"


def test_the_openapi_document_marks_nullable_fields_and_every_error(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    feedback = spec["components"]["schemas"]["FeedbackRead"]["properties"]
    assert {"type": "null"} in feedback["answer_id"]["anyOf"]
    assert {"type": "null"} in feedback["comment"]["anyOf"]
    assert "anyOf" not in feedback["session_id"]  # required text stays plain
    # A partial update's fields may be left out but not nulled: documented without null.
    assert "anyOf" not in spec["components"]["schemas"]["UserUpdate"]["properties"]["active"]
    patch_user = spec["paths"]["/api/v1/users/{user_id}"]["patch"]["responses"]
    assert set(patch_user) == {"200", "400", "401", "403", "404", "409", "413", "422"}
    error = {"$ref": "#/components/schemas/Error"}
    assert all(patch_user[code]["content"]["application/json"]["schema"] == error
               for code in patch_user if code != "200")
    assert set(spec["paths"]["/api/v1/feedback"]["post"]["responses"]) >= {"413", "422", "429"}


def test_datetimes_are_rfc3339_with_an_offset(client: TestClient) -> None:
    from datetime import datetime

    reply = client.post("/api/v1/feedback", json={"session_id": "s", "message_id": "m",
                                                  "rating": "up"})
    created = reply.json()["created_at"]
    assert created.endswith("+00:00"), created
    assert datetime.fromisoformat(created).utcoffset().total_seconds() == 0
