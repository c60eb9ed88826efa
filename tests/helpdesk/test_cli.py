"""The ``helpdesk`` CLI: fast help, usage on wrong arguments, clear configuration errors."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BIN_DIR, PROJECT_ROOT, free_port, helpdesk_env

HELPDESK = str(BIN_DIR / "helpdesk")


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([HELPDESK, *args], env=env, cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_commands_without_loading_heavy_libraries(tmp_path: Path) -> None:
    result = _run(["--help"], helpdesk_env(tmp_path))
    assert result.returncode == 0
    for command in ("serve", "train", "db", "data"):
        assert command in result.stdout
    probe = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from helpdesk.cli import app\n"
        "for args in (['--help'], ['db', '--help'], ['data', '--help'], ['serve', '--help'],\n"
        "             ['index', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0, args\n"
        "heavy = ('tensorflow', 'torch', 'rasa', 'transformers', 'sqlalchemy', 'faiss')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=PROJECT_ROOT, timeout=60)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "args",
    [["serve", "--bogus"], ["nonsense"], ["data", "build", "--limit-per-intent", "0"],
     ["train", "--limit-per-intent", "many"], ["db", "downgrade"]],
)
def test_wrong_arguments_print_usage(tmp_path: Path, args: list[str]) -> None:
    result = _run(args, helpdesk_env(tmp_path))
    assert result.returncode == 2
    assert "Usage:" in result.stderr + result.stdout


def test_port_in_use_is_named(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        env = helpdesk_env(tmp_path, HELPDESK_RASA_PORT=str(port),
                           HELPDESK_API_PORT=str(free_port()),
                           HELPDESK_ACTIONS_PORT=str(free_port()))
        result = _run(["serve"], env, timeout=60)
    assert result.returncode == 2
    assert f"port {port}" in result.stderr and "HELPDESK_RASA_PORT" in result.stderr
    assert "Rasa server" in result.stderr


def test_the_scaled_profile_names_what_it_still_needs(tmp_path: Path) -> None:
    env = helpdesk_env(tmp_path, HELPDESK_RASA_PORT=str(free_port()),
                       HELPDESK_API_PORT=str(free_port()), HELPDESK_ACTIONS_PORT=str(free_port()))
    result = _run(["serve", "--profile", "scaled"], env, timeout=60)
    assert result.returncode == 2
    for needed in ("HELPDESK_REDIS_URL", "HELPDESK_TRACKER_STORE_URL on PostgreSQL",
                   "HELPDESK_DATABASE_URL on PostgreSQL"):
        assert needed in result.stderr
    assert not (tmp_path / "admin.db").exists()  # refused before touching anything
    bad = _run(["serve", "--profile", "scaled", "--rasa-instances", "0"], env, timeout=60)
    assert bad.returncode == 2 and "--rasa-instances" in bad.stderr


def test_the_proxy_configuration_is_valid_for_haproxy(tmp_path: Path) -> None:
    from helpdesk import proxy

    if not proxy.binary():
        pytest.skip("HAProxy is not installed (scripts/install_test_packages.sh installs it)")
    layout = proxy.Layout("127.0.0.1", free_port(), free_port(), free_port(), free_port(),
                          free_port(), (free_port(), free_port(), free_port()), (free_port(),))
    certificate = proxy.self_signed(tmp_path / "secrets" / "proxy.pem", "127.0.0.1")
    assert oct(certificate.stat().st_mode & 0o777) == "0o600"
    config = tmp_path / "haproxy.cfg"
    config.write_text(proxy.render(layout, certificate))
    checked = subprocess.run([str(proxy.binary()), "-c", "-f", str(config)], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert text.count("cookie rasa") == 3 and text.count("server actions") == 1


def test_the_lock_store_url_is_checked() -> None:
    from bot.runtime.rasa_config import lock_store_config

    config = lock_store_config("redis://:s%40cret@10.0.0.5:6380/3", timeout=2.0)
    assert config == {"type": "bot.runtime.lock_store.SerialRedisLockStore",
                      "url": "10.0.0.5", "port": 6380, "db": 3, "key_prefix": "helpdesk",
                      "socket_timeout": 2.0, "use_ssl": False, "password": "s@cret"}
    for bad in ("http://10.0.0.5:6379/0", "redis://10.0.0.5/zero"):
        with pytest.raises(ValueError, match="HELPDESK_REDIS_URL"):
            lock_store_config(bad, timeout=2.0)


def test_bad_port_setting_is_refused(tmp_path: Path) -> None:
    result = _run(["serve"], helpdesk_env(tmp_path, HELPDESK_API_PORT="eighty"))
    assert result.returncode == 2
    assert "HELPDESK_API_PORT='eighty' is not a port number" in result.stderr


def test_missing_model_file_is_refused(tmp_path: Path) -> None:
    env = helpdesk_env(tmp_path, HELPDESK_MODEL=str(tmp_path / "nope.tar.gz"),
                       HELPDESK_RASA_PORT=str(free_port()), HELPDESK_API_PORT=str(free_port()),
                       HELPDESK_ACTIONS_PORT=str(free_port()))
    result = _run(["serve"], env)
    assert result.returncode == 2
    assert "nope.tar.gz: no such model file" in result.stderr


def test_db_upgrade_and_downgrade_commands(tmp_path: Path) -> None:
    env = helpdesk_env(tmp_path)
    first = _run(["db", "upgrade"], env)
    assert first.returncode == 0, first.stderr
    assert "imported 80 answers" in first.stdout
    again = _run(["db", "upgrade"], env)
    assert again.returncode == 0 and "imported" not in again.stdout
    down = _run(["db", "downgrade", "--revision", "base"], env)
    assert down.returncode == 0, down.stderr
    import sqlite3

    tables = {row[0] for row in sqlite3.connect(tmp_path / "admin.db").execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables <= {"alembic_version"}


def test_installed_packages_are_this_checkout() -> None:
    """The console script and ``python -m rasa`` import from the install, not the cwd."""
    probe = ("import helpdesk, nlu, bot\n"
             "print(*(list(m.__path__)[0] for m in (helpdesk, nlu, bot)))")
    result = subprocess.run([sys.executable, "-c", probe], cwd="/", capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for path in result.stdout.split():
        assert Path(path).is_relative_to(PROJECT_ROOT), (path, PROJECT_ROOT)


def test_index_build_stats_and_search(tmp_path: Path) -> None:
    env = helpdesk_env(tmp_path)
    missing = _run(["index", "search", "card"], env)
    assert missing.returncode == 1 and "helpdesk index build" in missing.stderr
    assert _run(["index", "build"], env).returncode == 1  # no database yet: says what to run
    assert _run(["db", "upgrade"], env).returncode == 0
    built = _run(["index", "build"], env, timeout=300)
    assert built.returncode == 0, built.stderr
    assert "Indexed 80 answers" in built.stdout
    stats = _run(["index", "stats"], env)
    assert stats.returncode == 0 and '"answers": 80' in stats.stdout
    found = _run(["index", "search", "I still have not received my new card", "--k", "2"], env)
    assert found.returncode == 0, found.stderr
    lines = found.stdout.splitlines()
    assert lines[0].startswith("Decision: ") and lines[1].startswith("1. [101] ")
    assert sum(line[:3] in {"1. ", "2. "} for line in lines) == 2
    for broken in ('{"boost": 0.3', '{"boost": 0.3, "with_ranking": {}}', '[1]'):
        thresholds = tmp_path / "thresholds.json"
        thresholds.write_text(broken)
        refused = _run(["index", "search", "card"],
                       {**env, "HELPDESK_RETRIEVER_THRESHOLDS": str(thresholds)})
        assert refused.returncode == 2, refused.stderr
        assert "HELPDESK_RETRIEVER_THRESHOLDS: bad retriever thresholds file" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_index_finetune_makes_an_encoder_an_ensemble_can_serve(tmp_path: Path) -> None:
    from common.config import shipped_model

    env = helpdesk_env(tmp_path)
    quick = ["--epochs", "1", "--limit-per-intent", "3"]
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "keep.txt").write_text("not a model")
    refused = _run(["index", "finetune", "--out", str(mine), *quick], env)
    assert refused.returncode == 2 and "not an encoder made by this command" in refused.stderr
    assert (mine / "keep.txt").read_text() == "not a model"  # never wiped

    tuned = tmp_path / "encoder"
    made = _run(["index", "finetune", "--out", str(tuned), *quick], env, timeout=600)
    assert made.returncode == 0, made.stderr
    assert (tuned / "FINETUNED.txt").is_file()
    assert f"HELPDESK_RETRIEVER_MODEL={tuned.resolve()}" in made.stdout
    again = _run(["index", "finetune", "--out", str(tuned), *quick], env, timeout=600)
    assert again.returncode == 0, again.stderr  # its own folder may be replaced

    ensemble = {**env, "HELPDESK_RETRIEVER_MODEL": f"{shipped_model()}{os.pathsep}{tuned}"}
    assert _run(["db", "upgrade"], ensemble).returncode == 0
    built = _run(["index", "build"], ensemble, timeout=300)
    assert built.returncode == 0, built.stderr
    assert "Indexed 80 answers" in built.stdout
    stats = json.loads(_run(["index", "stats"], ensemble).stdout)
    assert stats["dim"] == 2 * 384 and stats["model_id"].count("+") == 1
    found = _run(["index", "search", "I still have not received my new card", "--k", "2"],
                 ensemble)
    assert found.returncode == 0, found.stderr
    assert found.stdout.splitlines()[1].startswith("1. [101] ")
    single = _run(["index", "search", "card"], env)  # the snapshot is the ensemble's
    assert single.returncode == 1 and "made with model" in single.stderr
    missing = _run(["index", "search", "card"],
                   {**env, "HELPDESK_RETRIEVER_MODEL": f"{tuned}{os.pathsep}{tmp_path / 'gone'}"})
    assert missing.returncode == 2 and "cannot load the encoder model" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_users_create_prints_a_working_token_once(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    env = helpdesk_env(tmp_path)
    assert _run(["db", "upgrade"], env).returncode == 0
    created = _run(["users", "create", "sam", "--role", "staff"], env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("lh_")
    assert token not in (tmp_path / "admin.db").read_bytes().decode("latin-1")  # hashed
    assert _run(["users", "create", "sam"], env).returncode == 1
    bad = _run(["users", "create", "x", "--role", "root"], env)
    assert bad.returncode == 2 and "role" in bad.stderr
    listed = _run(["users", "list"], env)
    assert "sam" in listed.stdout and "staff" in listed.stdout

    from fastapi.testclient import TestClient

    from admin_api.main import create_app
    from common.config import get_settings

    monkeypatch.setenv("HELPDESK_DATABASE_URL", env["HELPDESK_DATABASE_URL"])
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["name"] == "sam" and me.json()["role"] == "staff"
    get_settings.cache_clear()


def test_a_rasa_token_starting_with_a_dash_reaches_rasa_intact_and_no_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import rasa.__main__

    from bot.runtime import rasa_server
    from common.config import get_settings
    from helpdesk.serve import build_services

    monkeypatch.setenv("HELPDESK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_RASA_TOKEN", "-Ab3_dash-first")
    services = build_services(get_settings(), tmp_path)
    [service] = [s for s in services if s.name == "Rasa server"]
    assert not any("Ab3_dash-first" in part for part in service.command)  # ps shows no secret
    # bot.runtime.rasa_server hands it to Rasa's own parser, which reads it whole.
    parsed = {}
    monkeypatch.setattr(rasa.__main__, "main", lambda: parsed.update(vars(
        rasa.__main__.create_argument_parser().parse_args(sys.argv[1:]))))
    monkeypatch.setattr(sys, "argv", ["bot.runtime.rasa_server", *service.command[3:]])
    rasa_server.main()
    assert parsed["auth_token"] == "-Ab3_dash-first" == parsed["jwt_secret"]
    assert parsed["enable_api"] is True


def test_index_calibrate_chooses_thresholds_that_answer_and_fall_back(tmp_path: Path) -> None:
    from retrieval.decision import Calibration

    env = helpdesk_env(tmp_path)
    assert _run(["db", "upgrade"], env).returncode == 0
    assert _run(["index", "build"], env, timeout=300).returncode == 0
    # Held-out questions (never trained on) of intents with answers, and out-of-scope ones.
    with (PROJECT_ROOT / "data" / "banking77" / "test.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    first = {row["category"]: row["text"] for row in reversed(rows)}  # one per intent
    data = tmp_path / "validation.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows((text, intent) for intent, text in first.items())
    oos = tmp_path / "oos.txt"
    oos.write_text("what is the weather in tokyo tomorrow\nwho won the football match\n"
                   "recommend a good pasta recipe\nhow tall is mount everest\n"
                   "play some jazz music please\ntranslate hello into french\n")
    out = tmp_path / "thresholds.json"
    previous = Calibration.load(PROJECT_ROOT / "retrieval" / "thresholds.json")
    made = _run(["index", "calibrate", "--data", str(data), "--oos", str(oos), "--out", str(out),
                 "--limit-per-intent", "3", "--put-in-force"], env, timeout=600)
    assert made.returncode == 0, made.stderr
    assert "support" in made.stdout and f"Wrote {out}" in made.stdout
    assert "In force as revision 1" in made.stdout
    chosen = Calibration.load(out)
    # The admin database's setting in force is the new calibration, as the running bot gets it.
    from sqlmodel import Session

    from admin_api import thresholds
    from common.db import get_engine

    with Session(get_engine(env["HELPDESK_DATABASE_URL"])) as session:
        row = thresholds.in_force(session)
        assert row.author == "helpdesk index calibrate" and row.id == 1
        assert thresholds.calibration_of(row) == chosen
    assert chosen.chosen_on.startswith("helpdesk index calibrate")
    assert chosen.boost == previous.boost and chosen.with_ranking == previous.with_ranking
    served = {**env, "HELPDESK_RETRIEVER_THRESHOLDS": str(out)}
    weather = _run(["index", "search", "what is the weather in tokyo tomorrow"], served)
    assert weather.stdout.splitlines()[0] == "Decision: fallback", weather.stdout
    card = _run(["index", "search", "I still have not received my new card"], served)
    assert card.stdout.splitlines()[0] == "Decision: answer", card.stdout
    bad = _run(["index", "calibrate", "--data", str(oos), "--out", str(out)], env)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
