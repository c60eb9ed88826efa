"""The bank's default data in data/ meets the bar a real support team would set."""

from __future__ import annotations

from collections import Counter

from common.text import same_text_key
from nlu import datasets
from retrieval.answers import AnswerStatus, load_answers_dir
from tests.conftest import PROJECT_ROOT

ANSWERS = load_answers_dir(PROJECT_ROOT / "data" / "answers")


def test_every_banking_intent_has_one_published_answer() -> None:
    intents = Counter(a.intent for a in ANSWERS if a.intent)
    banking = datasets.banking77_intents()
    assert len(banking) == 77
    assert set(intents) == set(banking)
    assert all(count == 1 for count in intents.values())
    assert all(a.status is AnswerStatus.published for a in ANSWERS)


def test_some_answers_have_no_intent() -> None:
    # They are reachable only through the retriever, which the schema must allow.
    assert any(a.intent is None for a in ANSWERS)


def test_answer_bodies_are_substantial_and_unique() -> None:
    for answer in ANSWERS:
        words = len(answer.body.split())
        assert words >= 40, f"answer {answer.id} has only {words} words"
    bodies = [same_text_key(a.body) for a in ANSWERS]
    assert len(set(bodies)) == len(bodies)
    titles = [a.title.lower() for a in ANSWERS]
    assert len(set(titles)) == len(titles)


def test_answers_have_two_to_five_original_variants() -> None:
    held_out = {same_text_key(e.text) for e in datasets.load_banking77("test")}
    for answer in ANSWERS:
        assert 2 <= len(answer.questions) <= 5, answer.id
        for question in answer.questions:
            assert same_text_key(question) not in held_out, (answer.id, question)


def test_conversational_intents_have_twenty_varied_examples() -> None:
    intents = datasets.load_conversational()
    expected = {"greet", "goodbye", "thank_you", "affirm", "deny", "bot_challenge",
                "request_human", "out_of_scope"}
    assert expected <= set(intents)
    for intent, examples in intents.items():
        normalised = {same_text_key(e) for e in examples}
        assert len(normalised) >= 20, f"{intent}: {len(normalised)} distinct examples"


def test_banking77_ships_with_its_licence_and_both_splits() -> None:
    folder = PROJECT_ROOT / "data" / "banking77"
    assert "Attribution 4.0 International" in (folder / "LICENSE").read_text()
    assert "Casanueva" in (folder / "README.md").read_text()
    assert len(datasets.load_banking77("train")) == 10_003
    assert len(datasets.load_banking77("test")) == 3_080
