"""Erasing conversations: on a customer's request, and after the retention period.

A conversation lives in Rasa's tracker store, and its words travel from there: into feedback
and review items, into training examples (a correction, a confirmed thumbs-up), into answers
as question variants (and so into the retriever's index, snapshots and embedding cache), into
answer revisions, and into retraining jobs' data (``var/retrain/job-N/``). Erasing removes all
of it, in one place: the examples go; the variants are taken out of their answers (the
retriever drops them at its next poll, its next snapshot no longer holds them) and their
cached vectors are deleted; revisions keep their entry (who, when, which fields) with the
words replaced by a marker; job files are rewritten with the marker. Models already trained
on the words keep them in their example memory until the next retraining: the erasure names
them.

"The same words" means the same text up to case and spacing, so an example a staff member
typed with identical words is erased too: for an erasure, the safe side.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, or_
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from admin_api import crud, proposals, simulator, turn_facts
from admin_api.models import (
    Answer,
    AnswerRevision,
    Feedback,
    Meta,
    ModelVersion,
    ReviewItem,
    ReviewRepeat,
    TrainingExample,
    utcnow,
)
from admin_api.tracker import TrackerStore
from common.config import get_settings
from common.db import get_engine
from common.files import write_atomic

logger = logging.getLogger(__name__)
RETENTION_KEY = "retention_days"
ERASED = "[erased at the customer's request]"
JOB_TEXT_FILES = (".json", ".yml", ".yaml", ".md", ".csv", ".log", ".txt")


def same_text(text: str) -> str:
    """The form two texts are compared in: case and runs of spaces do not count."""
    return " ".join(text.split()).casefold()


def customer_texts(session: Session, store: TrackerStore, session_id: str) -> list[str]:
    """Everything the customer wrote in a conversation, as the tracker and the copies hold it."""
    texts = [e.get("text") for e in store.events(session_id) if e.get("type") == "user"]
    texts += [f.text for f in session.exec(select(Feedback)
                                           .where(Feedback.session_id == session_id)).all()]
    texts += [i.text for i in session.exec(select(ReviewItem)
                                           .where(ReviewItem.session_id == session_id)).all()]
    return [t for t in texts if isinstance(t, str) and t.strip()]


def customer_words(session: Session, store: TrackerStore, session_id: str) -> set[str]:
    """The customer's texts in the form they are compared in (``same_text``)."""
    return {same_text(t) for t in customer_texts(session, store, session_id)}


def _forget_vectors(texts: list[str]) -> int:
    """The retriever's cached vectors of the texts (its embedding cache, next to its index),
    for every encoder it is configured with."""
    from common.config import get_settings
    from retrieval.cache import forget_texts
    from retrieval.encoder import clean_text

    cache = get_settings().index_dir / "embeddings.sqlite"
    if not cache.is_file() or not texts:
        return 0
    models = [_fingerprint(m) for m in get_settings().encoder_models]
    return forget_texts(cache, models, [clean_text(t) for t in texts])


@functools.lru_cache(maxsize=8)
def _fingerprint(model: str) -> str:
    """A model's id hashes its weight files: once per process, not once per erased
    conversation (a retention purge erases many)."""
    from common.files import weights_fingerprint

    return weights_fingerprint(model)


def derived_examples(session: Session, session_id: str,
                     words: set[str]) -> list[TrainingExample]:
    """The training examples made from a conversation: linked to its feedback or review
    items, or holding the same words; in id order."""
    feedback_ids = session.exec(select(Feedback.id).where(Feedback.session_id == session_id)).all()
    item_ids = session.exec(select(ReviewItem.id).where(ReviewItem.session_id == session_id)).all()
    linked = or_(TrainingExample.feedback_id.in_(feedback_ids),  # type: ignore[union-attr]
                 TrainingExample.review_item_id.in_(item_ids))  # type: ignore[union-attr]
    found = {e.id: e for e in session.exec(select(TrainingExample).where(linked)).all()}
    found.update({e.id: e for e in session.exec(select(TrainingExample)).all()
                  if same_text(e.text) in words})
    return [found[k] for k in sorted(k for k in found if k is not None)]


def _erase_examples(session: Session, session_id: str, words: set[str]) -> list[int]:
    ids = [e.id for e in derived_examples(session, session_id, words) if e.id is not None]
    if ids:
        session.execute(delete(TrainingExample).where(
            TrainingExample.id.in_(ids)))  # type: ignore[union-attr]
    return ids


def _erase_variants(session: Session, words: set[str], author: str) -> tuple[list[str], int]:
    """Take the words out of answers' question variants, and out of every revision; returns
    the variants taken out and the number of revisions scrubbed."""
    variants: list[str] = []
    for answer in session.exec(select(Answer)).all():
        kept = [q for q in answer.questions if same_text(q) not in words]
        if len(kept) != len(answer.questions):
            variants += [q for q in answer.questions if same_text(q) in words]
            crud.update_answer(session, answer, {"questions": kept}, author, action="erase")
    revisions = 0
    for revision in session.exec(select(AnswerRevision)).all():
        questions = list((revision.data or {}).get("questions") or [])
        scrubbed = [ERASED if isinstance(q, str) and same_text(q) in words else q
                    for q in questions]
        if scrubbed != questions:
            revision.data = {**revision.data, "questions": scrubbed}
            session.add(revision)
            revisions += 1
    return variants, revisions


def _scrub_jobs(retrain_dir: Path, words: set[str],
                example_ids: list[int]) -> tuple[list[int], int]:
    """Rewrite each job's text files with the marker (temporary file, then rename); returns
    the jobs whose training data held the words and the number of files rewritten."""
    jobs: list[int] = []
    files = 0
    if not retrain_dir.is_dir() or not words:
        return jobs, files
    for job_dir in sorted(retrain_dir.glob("job-*")):
        touched = False
        snapshot = job_dir / "snapshot.json"
        try:
            approved = json.loads(snapshot.read_text(encoding="utf-8")).get(
                "approved_example_ids", []) if snapshot.is_file() else []
        except (OSError, ValueError):
            approved = []
        touched = bool(set(approved) & set(example_ids))
        for path in job_dir.rglob("*"):
            if not path.is_file() or path.suffix not in JOB_TEXT_FILES:
                continue
            try:
                content = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            scrubbed = _replace_words(content, words)
            if scrubbed != content:
                write_atomic(path, scrubbed)
                files += 1
                touched = True
        if touched and job_dir.name[4:].isdigit():
            jobs.append(int(job_dir.name[4:]))
    return jobs, files


def _replace_words(content: str, words: set[str]) -> str:
    """Each line that holds one of the words (up to case and spacing) has it replaced."""
    lines = content.splitlines(keepends=True)
    out = []
    for line in lines:
        folded = same_text(line)
        if any(word in folded for word in words):
            for word in words:
                line = _replace_casefolded(line, word)
        out.append(line)
    return "".join(out)


def _replace_casefolded(line: str, word: str) -> str:
    """Replace ``word`` in ``line`` ignoring case and runs of spaces."""
    pattern = r"\s+".join(re.escape(part) for part in word.split())
    return re.sub(pattern, ERASED, line, flags=re.IGNORECASE)


def _deleted(session: Session, statement: Any) -> int:
    """Rows a bulk DELETE removed."""
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def _erase_repeats(session: Session, session_id: str) -> int:
    """The conversation's turns merged into other items (whose counts drop), and the merged
    turns of its own items (which go with them)."""
    own = list(session.exec(select(ReviewItem.id).where(ReviewItem.session_id == session_id)))
    mine = session.exec(select(ReviewRepeat).where(ReviewRepeat.session_id == session_id)).all()
    for repeat in mine:
        item = session.get(ReviewItem, repeat.item_id)
        if item is not None and item.session_id != session_id:
            item.repeats = max(1, item.repeats - 1)
            session.add(item)
    return _deleted(session, delete(ReviewRepeat).where(or_(
        ReviewRepeat.session_id == session_id,
        ReviewRepeat.item_id.in_(own))))  # type: ignore[attr-defined]


def erase(session: Session, store: TrackerStore, session_id: str,
          author: str = "retention") -> dict:
    """Remove one conversation and everything derived from its words; the caller commits."""
    texts = customer_texts(session, store, session_id)
    words = {same_text(t) for t in texts}
    example_ids = _erase_examples(session, session_id, words)
    variants, revisions = _erase_variants(session, words, author)
    vectors = _forget_vectors(texts + variants)
    jobs, files = _scrub_jobs(get_settings().var_dir / "retrain", words, example_ids)
    models = sorted(session.exec(select(ModelVersion.model_id).where(
        ModelVersion.job_id.in_(jobs))).all()) if jobs else []  # type: ignore[union-attr]
    counts: dict = {
        "feedback": _deleted(session, delete(Feedback).where(
            Feedback.session_id == session_id)),
        "review_repeats": _erase_repeats(session, session_id),
        "proposals": proposals.erase_conversation(session, session_id),
        "review_items": _deleted(session, delete(ReviewItem).where(
            ReviewItem.session_id == session_id)),
        "training_examples": len(example_ids),
        "question_variants": len(variants),
        "cached_vectors": vectors,
        "revisions_scrubbed": revisions,
        "job_files_scrubbed": files,
    }
    counts["events"] = store.erase(session_id)
    # After the events: a catch-up running meanwhile finds nothing left to re-derive them from.
    counts["turn_facts"] = turn_facts.forget(session, session_id)
    counts["replayed_turns"] = simulator.forget(session, session_id)
    counts["models_trained_on_it"] = models
    return counts


def retention_days(session: Session) -> int | None:
    row = session.get(Meta, RETENTION_KEY)
    return int(row.value) if row and row.value else None


def set_retention_days(session: Session, days: int | None) -> None:
    row = session.get(Meta, RETENTION_KEY)
    if days is None:
        if row is not None:
            session.delete(row)
        return
    session.merge(Meta(key=RETENTION_KEY, value=str(days)))


def purge(session: Session, store: TrackerStore) -> list[str]:
    """Erase every conversation older than the retention period; returns their ids."""
    days = retention_days(session)
    if days is None:
        return []
    stale = store.stale_conversations(utcnow() - timedelta(days=days))
    for session_id in stale:
        erase(session, store, session_id)
        session.commit()
    return stale


def start_purger(stop: threading.Event) -> threading.Thread:
    """Purge now and then every ``purge_interval_seconds`` until ``stop`` is set."""
    settings = get_settings()

    def loop() -> None:
        while not stop.is_set():
            try:
                with Session(get_engine()) as session:
                    erased = purge(session, TrackerStore(settings.tracker_store_url))
                if erased:
                    logger.info("retention: erased %d conversations", len(erased))
            except SQLAlchemyError as error:
                logger.warning("retention purge failed, will retry: %s", error)
            stop.wait(settings.purge_interval_seconds)

    thread = threading.Thread(target=loop, name="retention-purge", daemon=True)
    thread.start()
    return thread
