"""``helpdesk backup`` and ``helpdesk restore``: a running product's state, backed up while it
serves, comes back in a new place serving the same answers with the same production model;
damaged backups and occupied targets are refused."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session

from admin_api.rasa_client import auth_header
from common.db import clear_engines, get_engine
from learning import registry
from tests.conftest import (
    BIN_DIR,
    PROJECT_ROOT,
    Served,
    helpdesk_env,
    postgres_databases,
    sid,
)
from tests.tracker_seed import Say, seed

FAQ = "I am still waiting on my card?"
EDITED = "Your card is on its way: tracked delivery takes 2 working days."


def _helpdesk(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN_DIR / "helpdesk"), *args], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=600)


def _texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


@pytest.mark.slow
def test_a_backup_of_a_running_product_restores_into_a_new_place_that_serves_the_same(
        serve: Callable[..., Served], tmp_path: Path) -> None:
    served = serve()
    admin = {"Authorization": f"Bearer {served.admin_token()}"}
    current = httpx.get(served.api + "/api/v1/answers/101", headers=admin).json()
    assert httpx.patch(served.api + "/api/v1/answers/101", headers=admin, json={
        "base_revision": current["revision"], "body": EDITED}).status_code == 200
    assert _helpdesk(["index", "build"], served.env).returncode == 0
    with Session(get_engine(served.database_url)) as session:
        production = registry.production(session)
        assert production is not None
        model_id = production.model_id
    # A conversation, so the tracker store has something to carry.
    served.say("backup-1", FAQ)

    folder = tmp_path / "backup"
    done = _helpdesk(["backup", str(folder)], served.env)  # online: the product keeps running
    assert done.returncode == 0, done.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [m["model_id"] for m in manifest["models"]] == [model_id]
    assert manifest["index"]["answers_version"] <= manifest["answers_version"]
    again = _helpdesk(["backup", str(folder)], served.env)
    assert again.returncode == 2 and "already exists" in again.stderr

    # The next stack `serve` starts lives in var1: restore there, then start it.
    restored_env = helpdesk_env(served.var_dir.with_name("var1"))
    done = _helpdesk(["restore", str(folder)], restored_env)
    assert done.returncode == 0, done.stderr
    twice = _helpdesk(["restore", str(folder)], restored_env)
    assert twice.returncode == 2 and "already exists" in twice.stderr
    assert list((served.var_dir.with_name("var1") / "registry").glob("*.tar.gz"))

    served.process.terminate()
    served.process.wait(60)
    restored = serve()
    assert restored.var_dir == served.var_dir.with_name("var1")
    assert "Its API token is shown only now" not in restored.text()  # the people came along
    assert EDITED in _texts(restored.say("backup-2", FAQ))
    secret = (restored.var_dir / "secrets" / "rasa_token").read_text().strip()
    rasa_status = httpx.get(restored.rasa + "/status", headers=auth_header(secret)).json()
    assert rasa_status["model_id"] == model_id
    transcript = httpx.get(f"{restored.api}/api/v1/conversations/{sid('backup-1')}",
                           headers=admin).json()
    assert any(FAQ in (e.get("text") or "") for e in transcript["entries"])
    # The action server started from the restored snapshot instead of re-encoding.
    log = (restored.var_dir / "logs" / "actions.log").read_text()
    assert f"at version {manifest['index']['answers_version']} from the snapshot" in log


@pytest.mark.postgres
def test_postgresql_databases_round_trip_and_damage_is_refused(tmp_path: Path,
                                                              tiny_model: Path) -> None:
    from admin_api import migrate

    with postgres_databases() as create:
        admin_url, tracker_url = create(), create()
        env = helpdesk_env(tmp_path / "var", HELPDESK_DATABASE_URL=admin_url,
                           HELPDESK_TRACKER_STORE_URL=tracker_url)
        migrate.upgrade(admin_url)
        migrate.seed_answers(admin_url, PROJECT_ROOT / "data" / "answers")
        with Session(get_engine(admin_url)) as session:
            entry = registry.register(session, tiny_model)
            registry.promote(session, entry, "test")
            session.commit()
            model_id = entry.model_id
        seed(tracker_url, {"pg-1": [Say("hello", "greet", 0.99, model_id, "m1")]}, {"pg-1": 60})

        folder = tmp_path / "backup"
        done = _helpdesk(["backup", str(folder)], env)
        assert done.returncode == 0, done.stderr
        assert json.loads((folder / "manifest.json").read_text())["index"] is None

        # Into SQLite: the kinds must match.
        wrong = _helpdesk(["restore", str(folder)], helpdesk_env(tmp_path / "other"))
        assert wrong.returncode == 2 and "same kind of database" in wrong.stderr
        # Into occupied databases: refused.
        occupied = _helpdesk(["restore", str(folder)], env)
        assert occupied.returncode == 2 and "already has tables" in occupied.stderr

        new_admin, new_tracker = create(), create()
        new_env = helpdesk_env(tmp_path / "new", HELPDESK_DATABASE_URL=new_admin,
                               HELPDESK_TRACKER_STORE_URL=new_tracker)
        archive = next((folder / "models").glob("*.tar.gz"))
        original = archive.read_bytes()
        archive.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        damaged = _helpdesk(["restore", str(folder)], new_env)
        assert damaged.returncode == 2 and archive.name in damaged.stderr
        assert "damaged" in damaged.stderr
        archive.write_bytes(original)

        done = _helpdesk(["restore", str(folder)], new_env)
        assert done.returncode == 0, done.stderr
        clear_engines()
        with Session(get_engine(new_admin)) as session:
            production = registry.production(session)
            assert production is not None and production.model_id == model_id
            assert Path(production.path).parent == tmp_path / "new" / "registry"
            assert Path(production.path).read_bytes() == tiny_model.read_bytes()
        with get_engine(new_admin).connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM answer")).scalar() == 80
        with get_engine(new_tracker).connect() as connection:
            events = connection.execute(
                text("SELECT count(*) FROM events WHERE sender_id = 'pg-1'")).scalar()
        assert events and events > 0
        clear_engines()
