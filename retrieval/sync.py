"""Keeps a retriever in step with the answers' source of truth (the admin database).

The source is polled for changes since the last answers version it reported: a cheap call
when nothing changed, so it can run every half second and an edit is live within about one
interval plus the time to encode the edited answer. Snapshots are written in the background
(at most every ``snapshot_every`` seconds), so a restart resumes from the snapshot's version.

The same feed carries the decision thresholds saved in the admin database (an admin moves
them in the console's threshold simulator): each poll says which revision is current, and a
new one replaces the retriever's calibration at once, with no restart and no re-encoding.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrieval import snapshot
from retrieval.answers import AnswerData
from retrieval.decision import Calibration
from retrieval.retriever import Retriever

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Changes:
    """What changed after ``since``, in version order: answers to index, ids to drop."""

    version: int
    upserts: list[AnswerData] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    more: bool = False  # another page follows from ``version``
    # The decision thresholds in force, and their revision (None: the source has none, and
    # the retriever keeps what it loaded from the thresholds file).
    calibration: Calibration | None = None
    calibration_revision: int = 0


Fetch = Callable[[int], Changes]


def feed_calibration(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Changes`` fields for the thresholds in a feed's body (none in an older feed)."""
    raw = body.get("calibration")
    if raw is None:
        return {}
    return {"calibration": Calibration.from_dict(raw, "from the answers feed"),
            "calibration_revision": int(body.get("calibration_revision") or 0)}


class AnswerSync:
    def __init__(
        self, retriever: Retriever, fetch: Fetch, interval: float = 0.5,
        snapshot_root: Path | None = None, snapshot_every: float = 30.0,
    ) -> None:
        self.retriever = retriever
        self.fetch = fetch
        self.interval = interval
        self.snapshot_root = snapshot_root
        self.snapshot_every = snapshot_every
        self.synced = threading.Event()  # set after the first successful sync
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._dirty = False
        self._last_save = time.monotonic()
        self._last_error = ""
        self.calibration_revision = 0  # the saved thresholds' revision in force (0: the file's)

    def _take_calibration(self, changes: Changes) -> None:
        if changes.calibration is not None and \
                changes.calibration_revision != self.calibration_revision:
            self.retriever.calibration = changes.calibration
            self.calibration_revision = changes.calibration_revision
            logger.info("decision thresholds revision %d in force", changes.calibration_revision)

    def restore(self) -> bool:
        """Load the snapshot if there is a usable one; False (and a log line) otherwise."""
        if self.snapshot_root is None:
            return False
        try:
            manifest = snapshot.load(self.retriever, self.snapshot_root)
        except snapshot.SnapshotError as error:
            logger.info("starting without a snapshot: %s", error)
            return False
        logger.info("restored %d answers at version %d from the snapshot",
                    manifest.answers, manifest.answers_version)
        return True

    def _full_reload(self) -> None:
        answers: dict[int, AnswerData] = {}
        version, more = 0, True
        while more:
            changes = self.fetch(version)
            self._take_calibration(changes)
            for answer_id in changes.removed:
                answers.pop(answer_id, None)
            answers.update({a.id: a for a in changes.upserts if a.id is not None})
            version, more = changes.version, changes.more
        self.retriever.replace_all(list(answers.values()), version)

    def sync_once(self) -> bool:
        """Apply what changed since the retriever's version; True when something did."""
        since = self.retriever.version
        changes = self.fetch(since)
        self._take_calibration(changes)
        if changes.version < since:
            logger.warning("answers version went back from %d to %d: re-indexing everything",
                           since, changes.version)
            self._full_reload()
            self._dirty = True
            return True
        changed = False
        while True:
            if changes.removed:
                self.retriever.remove(changes.removed)
            if changes.upserts:
                self.retriever.upsert(changes.upserts)
            changed |= bool(changes.removed or changes.upserts) or changes.version != since
            self.retriever.version = changes.version
            if not changes.more:
                break
            since = changes.version
            changes = self.fetch(since)
        self._dirty |= changed
        return changed

    def save_if_due(self, force: bool = False) -> None:
        if self.snapshot_root is None or not self._dirty:
            return
        if force or time.monotonic() - self._last_save >= self.snapshot_every:
            self._dirty = False
            self._last_save = time.monotonic()
            snapshot.save(self.retriever, self.snapshot_root)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.retriever.version == 0 and not len(self.retriever):
                    self._full_reload()
                    self._dirty = True
                else:
                    self.sync_once()
                self.synced.set()
                self._last_error = ""
                self.save_if_due()
            except Exception as error:  # keep serving the index we have
                message = f"{type(error).__name__}: {error}"
                if message != self._last_error:
                    logger.warning("answer sync failed (will retry): %s", message)
                    self._last_error = message
            self._stop.wait(self.interval)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="answer-sync", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.save_if_due(force=True)
