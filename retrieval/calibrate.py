"""Choosing the retriever's weights and decision thresholds on labelled questions.

The support weight, the intent boost and the thresholds (fallback, answer, margin; with and
without a classifier ranking) decide what customers get, and every encoder scores on its own
scale, so they are chosen on data, never guessed: ``helpdesk index calibrate`` runs this on a
validation split of the domain's questions and writes the thresholds file that every action
server reads. The benchmark (``bench/retrieval.py``) calls the same functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from retrieval.answers import AnswerData
from retrieval.decision import Calibration, Case, Thresholds, choose_thresholds
from retrieval.encoder import TextEncoder
from retrieval.retriever import Retriever

SUPPORT_GRID = (0.0, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1.0)
BOOST_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5)
Ranking = list[dict]  # [{"name": intent, "confidence": p}, ...] as the bot's parse gives it


@dataclass
class Queries:
    """Labelled questions: each one's gold answer id (None: out of scope, nothing should be
    answered) and, when a classifier is at hand, its intent ranking."""

    texts: list[str]
    gold: list[int | None]
    rankings: list[Ranking] | None = None

    def __post_init__(self) -> None:
        if len(self.gold) != len(self.texts) or (
                self.rankings is not None and len(self.rankings) != len(self.texts)):
            raise ValueError("every question needs its gold answer (and ranking, if any)")

    def in_scope(self) -> Queries:
        keep = [i for i, g in enumerate(self.gold) if g is not None]
        return Queries([self.texts[i] for i in keep], [self.gold[i] for i in keep],
                       [self.rankings[i] for i in keep] if self.rankings is not None else None)


@dataclass
class Choice:
    """What was chosen and how it measured on the validation questions."""

    calibration: Calibration
    recall_at_1: dict[str, float]  # "support" (dense) and, with rankings, "boost"
    worth: dict[str, float]  # mean worth of the decisions: "without" and "with" a ranking


def measure(retriever: Retriever, queries: Queries,
            use_rankings: bool = False) -> tuple[dict[str, float], list[Case]]:
    """Recall@1 and @3 over the in-scope questions, and one decision case per question."""
    cases, at1, at3 = [], 0, 0
    for i, text in enumerate(queries.texts):
        ranking = queries.rankings[i] if use_rankings and queries.rankings else None
        result = retriever.search(text, k=3, intent_ranking=ranking)
        ids = [h.answer_id for h in result.hits]
        gold = queries.gold[i]
        rank = ids.index(gold) if gold in ids else None
        at1 += rank == 0
        at3 += rank is not None
        cases.append(Case(tuple(h.score for h in result.hits), rank, gold is not None))
    in_scope = sum(g is not None for g in queries.gold) or 1
    return {"recall_at_1": at1 / in_scope, "recall_at_3": at3 / in_scope}, cases


def _best(scores: dict[float, float]) -> float:
    """The weight with the best recall; ties go to the smallest weight."""
    return max(scores, key=lambda w: (scores[w], -w))


def choose_support(retriever: Retriever, queries: Queries,
                   grid: Sequence[float] = SUPPORT_GRID) -> tuple[float, dict[float, float]]:
    """The support weight with the best recall@1 on the in-scope questions (no boost)."""
    inside, scores = queries.in_scope(), {}
    for weight in grid:
        retriever.calibration = Calibration(boost=0.0, support=weight)
        scores[weight] = measure(retriever, inside)[0]["recall_at_1"]
    return _best(scores), scores


def choose_boost(retriever: Retriever, queries: Queries, support: float,
                 grid: Sequence[float] = BOOST_GRID) -> tuple[float, dict[float, float]]:
    """The intent boost with the best recall@1 on the in-scope questions, given their
    rankings."""
    if queries.rankings is None:
        raise ValueError("choosing the boost needs the classifier's rankings")
    inside, scores = queries.in_scope(), {}
    for boost in grid:
        retriever.calibration = Calibration(boost=boost, support=support)
        scores[boost] = measure(retriever, inside, use_rankings=True)[0]["recall_at_1"]
    return _best(scores), scores


def calibrate(encoder: TextEncoder, answers: Sequence[AnswerData], queries: Queries, *,
              chosen_on: str, support_texts: dict[int, list[str]] | None = None,
              previous: Calibration | None = None,
              progress: Callable[[str], None] = lambda _: None) -> Choice:
    """Choose support, boost and thresholds for ``answers`` as served (staff variants only).

    ``support_texts`` are extra question variants per answer used only while choosing the
    support weight (questions from outside the validation split): with the staff variants
    alone it would favour the best text. Without rankings, the boost and the with-ranking
    thresholds are kept from ``previous``.
    """
    previous = previous or Calibration()
    retriever = Retriever(encoder, Calibration(boost=0.0), device="cpu", cache_queries=True,
                          hybrid=False)
    recall: dict[str, float] = {}
    progress("choosing the support weight")
    retriever.replace_all(list(answers), extra_texts=support_texts)
    support, by_support = choose_support(retriever, queries)
    recall["support"] = by_support[support]
    retriever.replace_all(list(answers))
    boost = previous.boost
    if queries.rankings is not None:
        progress("choosing the intent boost")
        boost, by_boost = choose_boost(retriever, queries, support)
        recall["boost"] = by_boost[boost]
    retriever.calibration = Calibration(boost=boost, support=support)
    progress("choosing the decision thresholds")
    _, plain = measure(retriever, queries)
    without, worth_without = choose_thresholds(plain)
    worth = {"without": worth_without}
    with_ranking: Thresholds = previous.with_ranking
    if queries.rankings is not None:
        _, ranked = measure(retriever, queries, use_rankings=True)
        with_ranking, worth["with"] = choose_thresholds(ranked)
    calibration = Calibration(boost=boost, support=support, without_ranking=without,
                              with_ranking=with_ranking, chosen_on=chosen_on)
    return Choice(calibration, recall, worth)
