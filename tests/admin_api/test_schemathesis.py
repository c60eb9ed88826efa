"""schemathesis over the admin API's whole OpenAPI document: its coverage, fuzzing and stateful
phases, as an anonymous, a staff and an admin caller, on SQLite and PostgreSQL, against a real
uvicorn process (no retraining worker: a fuzzed ``POST /retrain`` queues a job and trains
nothing). No response may be a 5xx, break its own documented schema, or carry a status code
the document does not list: a client generated from the document must not break.

schemathesis does not resolve beside Rasa's pins, so it runs from the tools environment that
``make test`` builds (``scripts/setup_tools.sh``). The fuzzer gets its own people: decoy users
take the small ids that fuzzed paths hit first, so it cannot revoke its own token or deactivate
its own account by guessing, and a spare admin keeps the last-admin rule from blocking it."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BIN_DIR, PROJECT_ROOT, free_port, helpdesk_env

pytestmark = pytest.mark.slow
TOOLS_VENV = Path(os.environ.get("HELPDESK_TOOLS_VENV") or PROJECT_ROOT / ".venv-tools")
ST = TOOLS_VENV / "bin" / "st"
CONFIG = Path(__file__).with_name("schemathesis.toml")
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
EXAMPLES_PER_OPERATION = 12


def _people(database_url: str) -> dict[str, str]:
    """Decoys with the small ids, then the fuzzer's own admin, staff member and a spare admin;
    returns the fuzzer's tokens by role."""
    from sqlmodel import Session

    from admin_api.core import security
    from admin_api.models import Role
    from common.db import get_engine

    tokens = {}
    with Session(get_engine(database_url)) as session:
        for number in range(1, 21):
            decoy = security.create_user(session, f"decoy-{number}", Role.staff)
            for _ in range(3):
                security.issue_token(session, decoy, "decoy")
        security.create_user(session, "spare-admin", Role.admin)
        for name, role in (("fuzz-staff", Role.staff), ("fuzz-admin", Role.admin)):
            user = security.create_user(session, name, role)
            _, secret = security.issue_token(session, user, "schemathesis")
            tokens[role.value] = secret
        session.commit()
    return tokens


@pytest.fixture
def api(database_url: str, tracker_url: str, tmp_path: Path) -> Iterator[tuple[str, dict]]:
    """A migrated, seeded admin API in its own uvicorn process, with conversations to read."""
    if not ST.is_file():
        pytest.skip(f"schemathesis is not installed ({ST} is missing): `make test` builds the "
                    "tools environment with scripts/setup_tools.sh")
    from admin_api import migrate
    from common.db import clear_engines
    from tests import tracker_seed

    migrate.upgrade(database_url)
    migrate.seed_answers(database_url, PROJECT_ROOT / "data" / "answers")
    tracker_seed.seed(tracker_url, *tracker_seed.banking_conversations())
    tokens = _people(database_url)
    clear_engines()
    port = free_port()
    env = helpdesk_env(tmp_path / "var", HELPDESK_DATABASE_URL=database_url,
                       HELPDESK_TRACKER_STORE_URL=tracker_url,
                       HELPDESK_RASA_URL=f"http://127.0.0.1:{free_port()}",  # no Rasa there
                       HELPDESK_RASA_TOKEN="fuzz-rasa-token")
    log = (tmp_path / "api.log").open("w")
    process = subprocess.Popen(
        [str(BIN_DIR / "python"), "-m", "uvicorn", "admin_api.main:app", "--ws", "none",
         "--port", str(port)],
        env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "api.log").read_text()
            import time

            time.sleep(0.5)
        yield url, tokens
    finally:
        process.terminate()
        process.wait(30)


def _fuzz(url: str, token: str | None, report: Path) -> tuple[int, str]:
    command = [str(ST), "--config-file", str(CONFIG), "run", f"{url}/openapi.json",
               "--checks", CHECKS,
               "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", "20261204",
               "--workers", "1", "--no-shrink", "--suppress-health-check", "all",
               "--phases", "coverage,fuzzing,stateful", "--request-timeout", "30",
               "--report", "junit", "--report-junit-path", str(report)]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=report.parent,
                          env={**os.environ, "NO_COLOR": "1"})
    return done.returncode, done.stdout + done.stderr


def _summary(output: str) -> str:
    """schemathesis's own figures: operations tested and test cases generated and passed."""
    tested = re.search(r"Tested: (\d+)", output)
    cases = re.search(r"Test cases:\s*\n\s*(.+)", output)
    return (f"{tested.group(1) if tested else '?'} operations tested, "
            f"{cases.group(1).strip() if cases else '(no test cases line)'}")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
        api: tuple[str, dict], tmp_path: Path) -> None:
    url, tokens = api
    summaries, failures = [], []
    for caller in ("anonymous", "staff", "admin"):
        code, output = _fuzz(url, tokens.get(caller), tmp_path / f"{caller}.xml")
        (tmp_path / f"{caller}.txt").write_text(output)
        summaries.append(f"{caller}: {_summary(output)}")
        if code != 0:
            failures.append(f"--- {caller} (exit {code}):\n{output[-12000:]}")
        # schemathesis really called the operations (a run that tested nothing is no pass).
        assert re.search(r"\b\d+ passed\b", output), output[-3000:]
    print("\n".join(summaries))
    assert not failures, "\n".join(failures)
