"""The one configuration: every variable in one typed object, its reference generated from it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from common.config import ENV_PREFIX, ROOT_PACKAGES, Settings, get_settings, reference_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_reference_is_the_generated_one() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), (
        "docs/configuration.md is stale: run `helpdesk config docs --out docs/configuration.md`")


def test_every_field_belongs_to_a_group_the_reference_shows() -> None:
    from common.config import GROUPS

    assert {name: field.field_info.extra.get("group") for name, field in Settings.__fields__.items()
            if field.field_info.extra.get("group") not in GROUPS} == {}
    assert all(f"`{ENV_PREFIX}{name.upper()}`" in reference_markdown()
               for name in Settings.__fields__)


def test_every_variable_the_product_reads_is_a_documented_field() -> None:
    fields = {ENV_PREFIX + name.upper() for name in Settings.__fields__}
    found: dict[str, str] = {}
    for package in ROOT_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "common" / "config.py":
                continue
            for name in re.findall(r"\bHELPDESK_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")):
                found.setdefault(name.rstrip("_"), str(path.relative_to(ROOT)))
    unknown = {name: where for name, where in found.items()
               if name not in fields and not any(f.startswith(name) for f in fields)}
    assert unknown == {}
    # and nothing outside common/config.py reads the environment for them
    readers = subprocess.run(["grep", "-rnE", r"(environ\.get|getenv|environ\[)\(?.HELPDESK_",
                              *ROOT_PACKAGES], cwd=ROOT, capture_output=True, text=True).stdout
    assert [line for line in readers.splitlines()
            if not line.startswith("common/config.py")] == []


def test_defaults_live_under_the_var_dir_and_follow_it(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("HELPDESK_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_API_PORT", "8123")
    settings = get_settings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'admin.db'}"
    assert settings.tracker_store_url == f"sqlite:///{tmp_path / 'tracker.db'}"
    assert settings.index_dir == tmp_path / "index"
    assert settings.registry_dir == tmp_path / "registry"
    assert settings.admin_api_url == "http://127.0.0.1:8123"
    # The admin API's default origin is every process's default (Rasa's channels included).
    assert settings.cors_origin_list == ["http://127.0.0.1:8123", "http://localhost:8123"]
    monkeypatch.setenv("HELPDESK_VAR_DIR", str(tmp_path / "other"))
    assert get_settings().index_dir == tmp_path / "other" / "index"  # a changed variable is seen


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("HELPDESK_API_PORT", "eighty", "HELPDESK_API_PORT='eighty' is not a port number"),
    ("HELPDESK_RASA_PORT", "70000", "HELPDESK_RASA_PORT=70000 is outside 1-65535"),
    ("HELPDESK_HELDOUT_SHARE", "lots", "HELPDESK_HELDOUT_SHARE='lots' is not a number"),
    ("HELPDESK_RETRIEVER_DEVICE", "tpu", "HELPDESK_RETRIEVER_DEVICE='tpu'"),
    ("HELPDESK_JOB_STALE_SECONDS", "5", "at least 3 heartbeats"),
])
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                    variable: str, value: str,
                                                    message: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=re.escape(message)):
        get_settings()
