"""What the customer is told for a search result: the one mapping from the retriever's decision
to a reply, used by the bot's ``action_answer`` and by the staff console's "Try it" (which may
not import the bot), so that what staff try is what customers get.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from retrieval.answers import AnswerData
from retrieval.decision import ANSWER, CLARIFY, FALLBACK
from retrieval.retriever import SearchResult

CLARIFY_TEXT = "I'm not sure which of these you mean. Please pick one:"
# The bot's domain response for "no answer" (it offers a person); see bot/domain/faq.yml.
NO_ANSWER_RESPONSE = "utter_no_answer"


@dataclass(frozen=True)
class Reply:
    """``decision`` is answer, clarify or fallback. A fallback carries no text: the bot says
    its ``NO_ANSWER_RESPONSE`` (or hands over, the second time in a row)."""

    decision: str
    text: str | None = None
    buttons: list[dict[str, str]] = field(default_factory=list)
    answer_id: int | None = None
    answer_ids: list[int] = field(default_factory=list)
    score: float | None = None


def reply_for(result: SearchResult | None,
              answer_of: Callable[[int], AnswerData | None]) -> Reply:
    """The reply to ``result``; ``answer_of`` looks an answer up at reply time (it may have
    been unpublished since the search, which makes the reply a fallback)."""
    if result is None or result.top is None or result.decision not in {ANSWER, CLARIFY}:
        return Reply(FALLBACK)
    if result.decision == CLARIFY:
        return Reply(CLARIFY, CLARIFY_TEXT,
                     buttons=[{"title": h.title, "payload": h.title} for h in result.hits],
                     answer_ids=[h.answer_id for h in result.hits])
    top = result.top
    answer = answer_of(top.answer_id)
    if answer is None:
        return Reply(FALLBACK)
    return Reply(ANSWER, answer.body.strip(), answer_id=top.answer_id,
                 answer_ids=[top.answer_id], score=round(top.score, 4))
