"""A retriever kept live from a real admin API process over HTTP, as the action server does."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from admin_api import crud, migrate
from admin_api.models import Answer
from bot.actions.retriever import AdminApiFeed
from common.db import get_engine
from retrieval import snapshot
from retrieval.answers import AnswerStatus
from retrieval.decision import Calibration, Thresholds
from retrieval.retriever import Retriever
from retrieval.sync import AnswerSync
from tests.conftest import PROJECT_ROOT, free_port, helpdesk_env, make_answer

LIVE_WITHIN = 2.0
CALIBRATION = Calibration(0.3, Thresholds(0.5, 0.02), Thresholds(0.5, 0.02), "tests")


@pytest.fixture
def admin_api(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    migrate.upgrade(database_url)
    migrate.seed_answers(database_url, PROJECT_ROOT / "data" / "answers")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "admin_api.main:app", "--ws", "none",
         "--port", str(port)],
        env=helpdesk_env(tmp_path, HELPDESK_DATABASE_URL=database_url), cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "admin API down"
            time.sleep(0.2)
        yield url, database_url
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait_until(condition, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition never became true"
        time.sleep(0.05)
    return time.monotonic() - started


def test_edits_in_the_database_are_searchable_within_two_seconds(
    admin_api: tuple[str, str], encoder, tmp_path: Path
) -> None:
    url, database_url = admin_api
    retriever = Retriever(encoder, CALIBRATION, device="cpu")
    sync = AnswerSync(retriever, AdminApiFeed(url, 5), interval=0.2,
                      snapshot_root=tmp_path / "index", snapshot_every=0)
    sync.start()
    try:
        assert sync.synced.wait(60) and len(retriever) == 80
        query = "Do you have a branch I can visit in Paris?"

        def top() -> int | None:
            hit = retriever.search(query, k=1).top
            return hit.answer_id if hit and hit.score > 0.6 else None

        with Session(get_engine(database_url)) as session:
            crud.create_answers(session, [make_answer(
                7001, "Visiting us in Paris", "Our Paris branch is at 1 Rue de la Banque.",
                ["Do you have a branch in Paris?"])])
            session.commit()
        assert _wait_until(lambda: top() == 7001) < LIVE_WITHIN

        with Session(get_engine(database_url)) as session:
            crud.set_status(session, session.get(Answer, 7001), AnswerStatus.draft)
            session.commit()
        assert _wait_until(lambda: top() is None) < LIVE_WITHIN

        with Session(get_engine(database_url)) as session:
            answer = session.get(Answer, 101)
            crud.update_answer(session, answer,
                               {"body": "Cards now arrive by drone within the hour."})
            crud.delete_answer(session, session.get(Answer, 102))
            session.commit()
        assert _wait_until(lambda: retriever.answer(101).body.startswith("Cards now arrive")
                           and retriever.answer(102) is None) < LIVE_WITHIN
    finally:
        sync.stop()
    # The snapshot written on stop resumes at the same version with nothing to re-encode.
    restored = Retriever(encoder, CALIBRATION, device="cpu")
    manifest = snapshot.load(restored, tmp_path / "index")
    assert manifest.answers_version == retriever.version and len(restored) == 79
    assert restored.answer(101).body.startswith("Cards now arrive")


def test_a_reset_database_is_reindexed_from_scratch(
    admin_api: tuple[str, str], encoder
) -> None:
    url, _ = admin_api
    retriever = Retriever(encoder, CALIBRATION, device="cpu")
    retriever.replace_all([make_answer(1, "Stale", "From an older database.")], version=10**6)
    sync = AnswerSync(retriever, AdminApiFeed(url, 5))
    assert sync.sync_once()  # the feed's version is behind ours: rebuild from the feed
    assert len(retriever) == 80 and retriever.answer(1) is None
    assert retriever.version < 10**6


def test_an_unreachable_api_keeps_the_index_serving(encoder) -> None:
    retriever = Retriever(encoder, CALIBRATION, device="cpu")
    retriever.replace_all([make_answer(1, "Card delivery", "A week.", ["Where is my card?"])], 3)
    sync = AnswerSync(retriever, AdminApiFeed(f"http://127.0.0.1:{free_port()}", 0.5),
                      interval=0.05)
    sync.start()
    time.sleep(0.5)
    sync.stop()
    assert not sync.synced.is_set() and retriever.search("where is my card").top.answer_id == 1


def test_thresholds_saved_by_an_admin_reach_the_retriever_within_two_seconds(
    admin_api: tuple[str, str], encoder
) -> None:
    """The feed carries the setting in force: first the one seeded from the thresholds file,
    then each revision an admin saves, applied without a restart or a re-encode."""
    from admin_api.core import security
    from admin_api.models import Role
    from common.config import get_settings

    url, database_url = admin_api
    with Session(get_engine(database_url)) as session:
        user = security.create_user(session, "ada", Role.admin)
        _, token = security.issue_token(session, user, "test")
        session.commit()
    retriever = Retriever(encoder, CALIBRATION, device="cpu")
    sync = AnswerSync(retriever, AdminApiFeed(url, 5), interval=0.2)
    sync.start()
    try:
        assert sync.synced.wait(60)
        seeded = Calibration.load(get_settings().retriever_thresholds)
        assert retriever.calibration == seeded and sync.calibration_revision == 1
        # A question the seeded setting answers, but with a best score under 1.3.
        questions = ["how long until my card arrives", "what exchange rate do you use",
                     "how can I close my account", "my card got stolen", "where is my card"]
        answered = [q for q in questions if retriever.search(q, k=3).decision == "answer"
                    and retriever.search(q, k=3).top.score < 1.3]
        assert answered, "no question of the test sits between the two settings"
        encoded = encoder.encoded
        body = {"without_ranking": {"fallback": 1.3, "answer": 1.35, "margin": 0.1},
                "with_ranking": {"fallback": 2.0, "answer": 2.1, "margin": 0.05},
                "note": "stricter for the test"}
        saved = httpx.put(f"{url}/api/v1/thresholds", json=body,
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert saved.status_code == 200, saved.text
        assert saved.json()["revision"] == 2
        _wait_until(lambda: retriever.calibration.without_ranking.fallback == 1.3, LIVE_WITHIN)
        assert retriever.calibration.with_ranking == Thresholds(2.0, 0.05, 2.1)
        # The weights stay those of the calibration; nothing was encoded again.
        assert (retriever.calibration.boost, retriever.calibration.support) == \
            (seeded.boost, seeded.support)
        assert encoder.encoded == encoded and sync.calibration_revision == 2
        assert retriever.search(answered[0], k=3).decision == "fallback"
    finally:
        sync.stop()
