"""The model registry API and the model server Rasa pulls from (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from admin_api.models import AuditEntry
from common.config import get_settings
from common.db import get_engine
from learning import registry


def archive(folder: Path, model_id: str) -> Path:
    """A gzipped tar laid out like a Rasa model archive (metadata.json carries the id)."""
    path = folder / f"{model_id}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, content in (("metadata.json", json.dumps({"model_id": model_id}).encode()),
                              ("components/x.bin", model_id.encode() * 100)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture
def models(client: TestClient, tmp_path: Path) -> list[int]:
    with Session(get_engine()) as session:
        ids = []
        for model_id in ("m1", "m2", "m3"):
            entry = registry.register(session, archive(tmp_path, model_id), data_hash="h")
            ids.append(entry.id)
        session.commit()
    return ids


def test_promote_and_rollback_move_production(client: TestClient, auth: dict,
                                              models: list[int]) -> None:
    first, second, third = models
    assert client.post(f"/api/v1/models/{first}/promote",
                       headers=auth["staff"]).status_code == 403
    assert client.post("/api/v1/models/rollback", headers=auth["admin"]).status_code == 409
    for key in (first, second, third):
        promoted = client.post(f"/api/v1/models/{key}/promote", headers=auth["admin"])
        assert promoted.json()["status"] == "production" and promoted.json()["promoted_by"] == "ada"
    statuses = {m["id"]: m["status"] for m in
                client.get("/api/v1/models", headers=auth["staff"]).json()["items"]}
    assert statuses == {first: "archived", second: "archived", third: "production"}
    back = client.post("/api/v1/models/rollback", headers=auth["admin"]).json()
    assert back["id"] == second and back["status"] == "production"
    back = client.post("/api/v1/models/rollback", headers=auth["admin"]).json()
    assert back["id"] == first
    assert client.post("/api/v1/models/rollback", headers=auth["admin"]).status_code == 409
    statuses = {m["id"]: m["status"] for m in
                client.get("/api/v1/models", headers=auth["staff"]).json()["items"]}
    assert statuses == {first: "production", second: "rejected", third: "rejected"}
    only = client.get("/api/v1/models", params={"status": "production"},
                      headers=auth["staff"]).json()
    assert [m["id"] for m in only["items"]] == [first]
    actions = client.get("/api/v1/audit", params={"action": "model.promote"},
                         headers=auth["admin"]).json()
    assert actions["total"] == 5
    assert client.get("/api/v1/models/424242", headers=auth["staff"]).status_code == 404
    detail = client.get(f"/api/v1/models/{first}", headers=auth["staff"]).json()
    assert detail["model_id"] == "m1" and "report" in detail


def test_the_model_server_speaks_rasas_etag_protocol(client: TestClient, auth: dict,
                                                     models: list[int],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_RASA_TOKEN", "rasa-secret")
    get_settings.cache_clear()
    url = "/api/v1/models/production/file"
    assert client.get(url, headers={"X-Rasa-Token": "rasa-secret"}).status_code == 404  # none yet
    client.post(f"/api/v1/models/{models[0]}/promote", headers=auth["admin"])
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-Rasa-Token": "wrong"}).status_code == 401
    assert client.get(url, headers={"X-Rasa-Token": "wrong", **auth["staff"]}).status_code == 401
    pulled = client.get(url, headers={"X-Rasa-Token": "rasa-secret"})
    assert pulled.status_code == 200
    etag = pulled.headers["etag"]
    assert pulled.headers["filename"] == "m1.tar.gz" and pulled.headers["x-model-id"] == "m1"
    with tarfile.open(fileobj=io.BytesIO(pulled.content)) as tar:
        assert json.load(tar.extractfile("metadata.json"))["model_id"] == "m1"
    unchanged = client.get(url, headers={"X-Rasa-Token": "rasa-secret", "If-None-Match": etag})
    assert unchanged.status_code == 304 and not unchanged.content
    client.post(f"/api/v1/models/{models[1]}/promote", headers=auth["admin"])
    changed = client.get(url, headers={"X-Rasa-Token": "rasa-secret", "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert client.get(url, headers=auth["staff"]).status_code == 200  # people may download
    get_settings.cache_clear()


def test_a_model_whose_archive_is_gone_cannot_be_promoted(client: TestClient, auth: dict,
                                                          models: list[int],
                                                          tmp_path: Path) -> None:
    (tmp_path / "m2.tar.gz").unlink()
    reply = client.post(f"/api/v1/models/{models[1]}/promote", headers=auth["admin"])
    assert reply.status_code == 409 and "is gone" in reply.json()["detail"]


def test_registering_reads_rasas_model_id_and_refuses_other_files(tmp_path: Path,
                                                                 client: TestClient) -> None:
    with Session(get_engine()) as session:
        entry = registry.register(session, archive(tmp_path, "abc"), data_hash="d")
        assert entry.model_id == "abc" and entry.size_bytes > 0 and len(entry.sha256) == 64
        assert registry.register(session, tmp_path / "abc.tar.gz").id == entry.id
        junk = tmp_path / "junk.tar.gz"
        junk.write_bytes(b"not a tar")
        with pytest.raises(registry.RegistryError, match="not a readable Rasa model"):
            registry.register(session, junk)


def test_unchanged_model_polls_stay_out_of_the_access_log() -> None:
    import logging

    from admin_api.main import QuietModelPolls

    def record(path: str, status: int) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                                 '%s - "%s %s HTTP/%s" %d',
                                 ("127.0.0.1:1", "GET", path, "1.1", status), None)

    quiet = QuietModelPolls()
    assert not quiet.filter(record("/api/v1/models/production/file", 304))
    assert quiet.filter(record("/api/v1/models/production/file", 200))  # a download is news
    assert quiet.filter(record("/api/v1/answers", 304))


def test_rasa_is_told_to_pull_from_the_model_server_with_a_private_header(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    from bot.runtime import rasa_config as runtime

    monkeypatch.setenv("HELPDESK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_MODEL_PULL_SECONDS", "3")
    endpoints, credentials = runtime.write_run_config(
        tmp_path / "run", "http://127.0.0.1:5055", "http://127.0.0.1:8000/m", "s3cret")
    rendered = yaml.safe_load(endpoints.read_text())
    # The domain goes only to the actions that need it (the flows' tests run those).
    assert rendered["action_endpoint"] == {"url": "http://127.0.0.1:5055/webhook",
                                           "enable_selective_domain": True}
    models = rendered["models"]
    assert models == {"url": "http://127.0.0.1:8000/m", "headers": {"X-Rasa-Token": "s3cret"},
                      "wait_time_between_pulls": 3}
    assert endpoints.stat().st_mode & 0o777 == 0o600
    assert credentials.stat().st_mode & 0o777 == 0o600


def test_old_archives_are_pruned_but_their_records_and_rollback_stay(
        client: TestClient, auth: dict, tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "registry", tmp_path / "brought"
    root.mkdir()
    elsewhere.mkdir()
    with Session(get_engine()) as session:
        brought = registry.register(session, archive(elsewhere, "m0"))
        registry.promote(session, brought, "ada")
        entries = {}
        for n in range(1, 7):
            entries[n] = registry.register(session, archive(root, f"m{n}"))
            if n <= 4:  # m1..m4 served in turn; m5 was rejected; m6 waits as a candidate
                registry.promote(session, entries[n], "ada")
        entries[5].status = "rejected"
        session.commit()
        pruned = registry.prune(session, root, keep=2, actor="worker")
        session.commit()
        # Kept: production m4, the two it replaced last (m3, m2), the two newest others (m6, m5).
        # m0 is older still, but it was brought from outside the registry: never deleted.
        assert [p.model_id for p in pruned] == ["m1"]
        assert not (root / "m1.tar.gz").exists() and (elsewhere / "m0.tar.gz").exists()
        assert {p.name for p in root.iterdir()} == {f"m{n}.tar.gz" for n in (2, 3, 4, 5, 6)}
        [audited] = session.exec(select(AuditEntry).where(AuditEntry.action == "model.prune")).all()
        assert (audited.actor, audited.details["model_id"]) == ("worker", "m1")
        with pytest.raises(registry.RegistryError, match="keep at least one"):
            registry.prune(session, root, keep=0, actor="worker")
    # The record stays, with a clear refusal to promote a model whose file is gone.
    listed = {m["model_id"]: m for m in client.get(
        "/api/v1/models", headers=auth["staff"], params={"limit": 100}).json()["items"]}
    assert set(listed) == {f"m{n}" for n in range(7)}
    refused = client.post(f"/api/v1/models/{listed['m1']['id']}/promote", headers=auth["admin"])
    assert refused.status_code == 409 and "is gone" in refused.json()["detail"]
    # Rollback goes to the model m4 replaced, whose archive was kept.
    back = client.post("/api/v1/models/rollback", headers=auth["admin"])
    assert back.status_code == 200, back.text
    assert back.json()["model_id"] == "m3"
    with Session(get_engine()) as session:
        pruned_ids = sorted(p.model_id for p in registry.prune(session, root, keep=1,
                                                               actor="worker"))
        session.commit()
    # m4, rolled back from (now rejected), and m5 go; m2 stays: a second rollback goes there.
    assert pruned_ids == ["m4", "m5"]
    assert {p.name for p in root.iterdir()} == {"m2.tar.gz", "m3.tar.gz", "m6.tar.gz"}
