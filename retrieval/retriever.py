"""The answer retriever: finds published answers for a customer's question, live-updatable.

Each answer is indexed through several texts (title, the opening of its body, every question
variant); its similarity to a query is the best of them, and its score adds ``support`` times
the similarity of its second-best text (evidence from a second text). An intent ranking from the
classifier, when given, adds ``boost * P(answer's intent)``. ``support``, ``boost`` and the
decision thresholds are chosen on data (``retrieval/thresholds.json``, written by
``helpdesk index calibrate``); a running retriever takes the setting saved in the admin database
(the console's threshold simulator) from its answers feed (``retrieval.sync``).

Writes (``upsert``, ``remove``, ``replace_all``) encode outside the lock, then change the
index, the texts and the lexical index together under a write lock, so a search running in
another thread sees an answer either entirely before or entirely after an edit.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np

from common.config import get_settings
from common.text import same_text_key
from retrieval.answers import AnswerData, AnswerStatus
from retrieval.decision import ANSWER, FALLBACK, Calibration, Scored, decide
from retrieval.encoder import TextEncoder
from retrieval.index import (
    MAX_TEXTS_PER_ANSWER,
    RWLock,
    VectorIndex,
    answer_of,
    choose_device,
    vector_id,
)
from retrieval.lexical import BM25

logger = logging.getLogger(__name__)

BODY_OPENING_CHARS = 300
RRF_K = 60
RANKING_CANDIDATES = 3  # the classifier's top intents whose answers are always scored
# Cosine similarity at which a customer's question is taken as one of the answer's own variants.
EXACT_MATCH = 0.95
FILTER_KEYS = frozenset({"intent", "tags", "answer_ids"})
IGNORED_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})

Row = tuple[AnswerData, list[str], np.ndarray]  # an answer, its indexed texts, their vectors


@dataclass(frozen=True)
class Hit:
    answer_id: int
    score: float  # similarity + support + boost: what the decision reads
    similarity: float  # cosine similarity of the best-matching text
    boost: float
    matched_text: str
    title: str
    intent: str | None
    support: float = 0.0  # the support weight times the second-best text's similarity


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    decision: str
    exact: bool = False  # one answer has the question itself: answered whatever the thresholds
    has_ranking: bool = False  # the classifier's ranking took part (picks the thresholds)

    @property
    def top(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    def scored(self) -> Scored:
        """What deciding again under other thresholds needs (the threshold simulator)."""
        scores = [h.score for h in self.hits[:2]]
        return Scored(scores[0] if scores else None, scores[1] if len(scores) > 1 else None,
                      self.has_ranking, self.exact)


def body_opening(body: str) -> str:
    """The first paragraph of a body without markdown marks, cut at a word boundary."""
    first = next((p for p in re.split(r"\n\s*\n", body) if p.strip()), body)
    plain = " ".join(re.sub(r"[*_`#>\[\]]", " ", first).split())
    if len(plain) <= BODY_OPENING_CHARS:
        return plain
    return plain[:BODY_OPENING_CHARS].rsplit(" ", 1)[0]


def answer_texts(answer: AnswerData, extra: Sequence[str] = ()) -> list[str]:
    """The texts an answer is found through, deduplicated ignoring case, at most 1024."""
    texts, seen = [], set()
    for text in [answer.title, body_opening(answer.body), *answer.questions, *extra]:
        key = same_text_key(text)
        if key and key not in seen:
            seen.add(key)
            texts.append(text)
    return texts[:MAX_TEXTS_PER_ANSWER]


def _ranking_probabilities(ranking: Iterable[Mapping[str, Any]] | None) -> dict[str, float]:
    probabilities: dict[str, float] = {}
    for entry in ranking or ():
        name, confidence = entry.get("name"), entry.get("confidence")
        if isinstance(name, str) and name not in IGNORED_INTENTS and confidence is not None:
            probabilities[name] = max(probabilities.get(name, 0.0), float(confidence))
    return probabilities


class _State:
    """Everything a search reads; replaced as a whole by ``replace_all``."""

    def __init__(self, index: VectorIndex, lexical: BM25 | None) -> None:
        self.index = index
        self.lexical = lexical
        self.answers: dict[int, AnswerData] = {}
        self.texts: dict[int, list[str]] = {}
        self.vectors: dict[int, np.ndarray] = {}
        self.by_intent: dict[str, set[int]] = {}

    def put(self, answer: AnswerData, texts: list[str], vectors: np.ndarray) -> None:
        assert answer.id is not None
        self.answers[answer.id], self.texts[answer.id] = answer, texts
        self.vectors[answer.id] = vectors
        if answer.intent:
            self.by_intent.setdefault(answer.intent, set()).add(answer.id)
        if self.lexical is not None:
            for number, text in enumerate(texts):
                self.lexical.add(vector_id(answer.id, number), text)

    def drop(self, answer_id: int) -> np.ndarray:
        """Forget an answer; returns the FAISS ids to remove."""
        answer = self.answers.pop(answer_id, None)
        texts = self.texts.pop(answer_id, [])
        self.vectors.pop(answer_id, None)
        if answer is not None and answer.intent in self.by_intent:
            self.by_intent[answer.intent].discard(answer_id)
        ids = np.array([vector_id(answer_id, n) for n in range(len(texts))], dtype=np.int64)
        if self.lexical is not None:
            for vid in ids.tolist():
                self.lexical.remove(vid)
        return ids


class Retriever:
    """Published answers in a FAISS index, searched by meaning (and optionally by words)."""

    def __init__(
        self, encoder: TextEncoder, calibration: Calibration | None = None,
        device: str | None = None, exact_max: int | None = None, hybrid: bool | None = None,
        mirror: Callable[[faiss.Index], faiss.Index] | None = None, cache_queries: bool = False,
    ) -> None:
        self.encoder = encoder
        self.cache_queries = cache_queries  # benchmarks replay the same questions many times
        self.calibration = calibration or Calibration.load(get_settings().retriever_thresholds)
        self.device = choose_device(device or get_settings().retriever_device)
        self.exact_max = exact_max if exact_max is not None else get_settings().retriever_exact_max
        self.hybrid = get_settings().retriever_hybrid if hybrid is None else hybrid
        self._mirror = mirror
        self._lock = RWLock()
        self.version = 0
        self._state = _State(self._empty_index(), BM25() if self.hybrid else None)

    def _empty_index(self) -> VectorIndex:
        return VectorIndex.build(
            np.zeros(0, dtype=np.int64), np.zeros((0, self.encoder.dim), dtype=np.float32),
            self.encoder.dim, self.exact_max, self.device, mirror=self._mirror,
        )

    # -- writes ---------------------------------------------------------------------------
    def _encode_answers(
        self, answers: Sequence[AnswerData], extra: Mapping[int, Sequence[str]] | None,
        progress: bool = False,
    ) -> list[tuple[AnswerData, list[str], np.ndarray]]:
        published = [a for a in answers if a.status == AnswerStatus.published and a.id]
        texts = [answer_texts(a, (extra or {}).get(a.id or 0, ())) for a in published]
        flat = [t for group in texts for t in group]
        vectors = self.encoder.encode(flat, progress=progress) if flat else np.zeros((0, 1))
        out, start = [], 0
        for answer, group in zip(published, texts, strict=True):
            out.append((answer, group, vectors[start:start + len(group)]))
            start += len(group)
        return out

    def replace_all(
        self, answers: Sequence[AnswerData], version: int = 0,
        extra_texts: Mapping[int, Sequence[str]] | None = None, progress: bool = False,
    ) -> None:
        """Index exactly these answers (the published ones), building a fresh index aside."""
        encoded = self._encode_answers(answers, extra_texts, progress)
        ids = [vector_id(a.id or 0, n) for a, texts, _ in encoded for n in range(len(texts))]
        matrix = (np.vstack([v for _, _, v in encoded]) if encoded
                  else np.zeros((0, self.encoder.dim), dtype=np.float32))
        index = VectorIndex.build(
            np.array(ids, dtype=np.int64), matrix, self.encoder.dim, self.exact_max,
            self.device, mirror=self._mirror,
        )
        state = _State(index, BM25() if self.hybrid else None)
        for answer, texts, vectors in encoded:
            state.put(answer, texts, vectors)
        with self._lock.write():
            self._state, self.version = state, version
        logger.info("indexed %d answers through %d texts (%s, %s)",
                    len(state.answers), index.ntotal, index.kind, self.device)

    def upsert(
        self, answers: Sequence[AnswerData], version: int | None = None,
        extra_texts: Mapping[int, Sequence[str]] | None = None,
    ) -> None:
        """Add or replace answers by id; an answer that is not published is removed."""
        encoded = self._encode_answers(answers, extra_texts)
        gone = [a.id for a in answers if a.status != AnswerStatus.published and a.id]
        with self._lock.write():
            state = self._state
            stale = [state.drop(a.id or 0) for a, _, _ in encoded]
            stale += [state.drop(answer_id) for answer_id in gone]
            if stale:
                state.index.remove(np.concatenate(stale))
            for answer, texts, vectors in encoded:
                state.put(answer, texts, vectors)
            if encoded:
                ids = [vector_id(a.id or 0, n) for a, t, _ in encoded for n in range(len(t))]
                state.index.add(np.array(ids, dtype=np.int64),
                                np.vstack([v for _, _, v in encoded]))
            if version is not None:
                self.version = version

    def remove(self, answer_ids: Iterable[int], version: int | None = None) -> None:
        with self._lock.write():
            state = self._state
            stale = [state.drop(answer_id) for answer_id in answer_ids]
            if stale:
                state.index.remove(np.concatenate(stale))
            if version is not None:
                self.version = version

    # -- reads ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._state.answers)

    def answer(self, answer_id: int) -> AnswerData | None:
        return self._state.answers.get(answer_id)

    def stats(self) -> dict[str, Any]:
        with self._lock.read():
            state = self._state
            return {
                "answers": len(state.answers), "vectors": state.index.ntotal,
                "index": state.index.kind, "device": self.device,
                "serving_from": state.index.serving_from, "answers_version": self.version,
                "model": self.encoder.model_name, "model_id": self.encoder.model_id,
                "dim": self.encoder.dim, "hybrid": self.hybrid,
            }

    def search(
        self, query: str, k: int = 5,
        intent_ranking: Iterable[Mapping[str, Any]] | None = None,
        filters: Mapping[str, Any] | None = None, vector: np.ndarray | None = None,
    ) -> SearchResult:
        """The best ``k`` answers for ``query`` and what to do with them.

        ``intent_ranking`` is Rasa's list of ``{"name", "confidence"}``; ``filters`` may hold
        ``intent`` (a name or list), ``tags`` (any of) and ``answer_ids``. ``vector`` is the
        query's unit vector from this encoder's weights when the caller has it already (the
        classifier's, ``nlu/handover.py``): the query is then not encoded again.
        """
        if not 1 <= k <= 100:
            raise ValueError("k must be between 1 and 100")
        allowed = self._filter(filters)
        if vector is not None and vector.shape == (self.encoder.dim,):
            query_vector = vector.astype(np.float32, copy=False)
        else:
            query_vector = self.encoder.encode([query], cache=self.cache_queries,
                                               urgent=True)[0]
        return self._search_vector(query, query_vector, k, intent_ranking, allowed)

    def search_many(
        self, queries: Sequence[str], k: int = 5,
        intent_rankings: Sequence[Iterable[Mapping[str, Any]] | None] | None = None,
    ) -> list[SearchResult]:
        """``search`` for many queries, encoded in one batch (a replay of logged turns:
        encoding one by one would take most of its time)."""
        if not 1 <= k <= 100:
            raise ValueError("k must be between 1 and 100")
        rankings = list(intent_rankings) if intent_rankings is not None else [None] * len(queries)
        if len(rankings) != len(queries):
            raise ValueError("one intent ranking (or None) per query")
        vectors = self.encoder.encode(list(queries), cache=self.cache_queries)
        allowed = self._filter(None)
        return [self._search_vector(query, vector, k, ranking, allowed)
                for query, vector, ranking in zip(queries, vectors, rankings, strict=True)]

    def _search_vector(
        self, query: str, query_vector: np.ndarray, k: int,
        intent_ranking: Iterable[Mapping[str, Any]] | None,
        allowed: Callable[[_State, int], bool],
    ) -> SearchResult:
        probabilities = _ranking_probabilities(intent_ranking)
        has_ranking = bool(probabilities)
        if not query_vector.any():
            return SearchResult([], FALLBACK, has_ranking=has_ranking)
        with self._lock.read():
            state = self._state
            candidates = self._candidates(state, query_vector, max(k, 10), allowed)
            for intent, _ in sorted(probabilities.items(), key=lambda kv: -kv[1])[
                :RANKING_CANDIDATES
            ]:
                candidates.update(a for a in state.by_intent.get(intent, ()) if allowed(state, a))
            hits = [self._hit(state, a, query_vector, probabilities) for a in candidates]
            hits.sort(key=lambda h: (-h.score, h.answer_id))
            if self.hybrid and state.lexical is not None and hits:
                hits = self._fuse(state, query, hits)
        exact = [h for h in hits if h.similarity >= EXACT_MATCH]
        if len(exact) == 1:
            # Staff wrote (nearly) this very question for one answer: that beats any intent
            # boost, which matters for a new answer that no classifier knows yet. (Two such
            # answers are a real ambiguity, left to the usual decision: clarify.)
            hits = [exact[0], *(h for h in hits if h is not exact[0])][:k]
            return SearchResult(hits, ANSWER, exact=True, has_ranking=has_ranking)
        hits = hits[:k]
        thresholds = self.calibration.thresholds(has_ranking)
        return SearchResult(hits, decide([h.score for h in hits], thresholds),
                            has_ranking=has_ranking)

    @staticmethod
    def _filter(filters: Mapping[str, Any] | None) -> Callable[[_State, int], bool]:
        if not filters:
            return lambda state, answer_id: True
        unknown = set(filters) - FILTER_KEYS
        if unknown:
            raise ValueError(f"unknown filter keys: {', '.join(sorted(unknown))}")
        intents = filters.get("intent")
        intents = {intents} if isinstance(intents, str) else set(intents or ())
        tags = {str(t).lower() for t in filters.get("tags") or ()}
        ids = {int(i) for i in filters.get("answer_ids") or ()}

        def allowed(state: _State, answer_id: int) -> bool:
            answer = state.answers[answer_id]
            return ((not intents or answer.intent in intents)
                    and (not tags or bool(tags & set(answer.tags)))
                    and (not ids or answer_id in ids))

        return allowed

    @staticmethod
    def _candidates(
        state: _State, query: np.ndarray, wanted: int, allowed: Callable[[_State, int], bool]
    ) -> set[int]:
        """Distinct answers among the nearest vectors, fetching more until there are enough."""
        total = state.index.ntotal
        fetch = min(total, max(8 * wanted, 64))
        while fetch:
            _, ids = state.index.search(query[None, :], fetch)
            found = {answer_of(v) for v in ids[0].tolist() if v >= 0}
            found = {a for a in found if a in state.answers and allowed(state, a)}
            if len(found) >= wanted or fetch >= min(total, 2048):
                return found
            fetch = min(total, fetch * 4, 2048)
        return set()

    def _hit(
        self, state: _State, answer_id: int, query: np.ndarray, probabilities: dict[str, float]
    ) -> Hit:
        similarities = state.vectors[answer_id] @ query
        best = int(np.argmax(similarities))
        answer = state.answers[answer_id]
        boost = self.calibration.boost * probabilities.get(answer.intent or "", 0.0)
        similarity = float(similarities[best])
        support = 0.0
        if self.calibration.support and len(similarities) > 1:
            second = float(np.partition(similarities, -2)[-2])
            support = self.calibration.support * max(0.0, second)
        return Hit(answer_id, similarity + support + boost, similarity, boost,
                   state.texts[answer_id][best], answer.title, answer.intent, support)

    @staticmethod
    def _fuse(state: _State, query: str, hits: list[Hit]) -> list[Hit]:
        """Reciprocal rank fusion of the dense order with BM25's (best text per answer)."""
        assert state.lexical is not None
        lexical: dict[int, float] = {}
        for vid, score in state.lexical.scores(query).items():
            answer_id = answer_of(vid)
            lexical[answer_id] = max(lexical.get(answer_id, 0.0), score)
        lexical_rank = {a: r for r, a in enumerate(sorted(lexical, key=lambda a: -lexical[a]))}
        fused = {
            h.answer_id: 1 / (RRF_K + rank)
            + (1 / (RRF_K + lexical_rank[h.answer_id]) if h.answer_id in lexical_rank else 0.0)
            for rank, h in enumerate(hits)
        }
        return sorted(hits, key=lambda h: (-fused[h.answer_id], h.answer_id))

    # -- snapshot support -----------------------------------------------------------------
    def export_state(self, write: Callable[[VectorIndex, list[Row], int], None]) -> None:
        """Call ``write(index, rows, version)`` while no write can change them."""
        with self._lock.read():
            state = self._state
            rows = [(state.answers[a], state.texts[a], state.vectors[a]) for a in state.answers]
            write(state.index, rows, self.version)

    def import_state(
        self, index: VectorIndex, rows: Sequence[Row], version: int,
    ) -> None:
        state = _State(index, BM25() if self.hybrid else None)
        for answer, texts, vectors in rows:
            state.put(answer, texts, vectors)
        with self._lock.write():
            self._state, self.version = state, version

