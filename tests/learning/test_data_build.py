"""``helpdesk data build``: deterministic output, and malformed data refused by file and entry."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from common.text import same_text_key
from learning import data_build
from nlu import datasets
from nlu.datasets import DataError
from tests.conftest import BIN_DIR, PROJECT_ROOT, helpdesk_env


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of data/ to break in one way per test."""
    target = tmp_path / "data"
    shutil.copytree(PROJECT_ROOT / "data", target)
    for path in target.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return target


def _tree(folder: Path) -> dict[str, bytes]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def test_build_is_deterministic(tmp_path: Path) -> None:
    first = data_build.build(tmp_path / "a")
    second = data_build.build(tmp_path / "b")
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert first.data_hash == second.data_hash
    assert first.intents == 77 + 8
    assert first.examples > 10_000


def test_build_output_is_a_rasa_project(tmp_path: Path) -> None:
    data_build.build(tmp_path / "out")
    files = set(_tree(tmp_path / "out"))
    assert {"config.yml", "domain/intents.yml", "data/nlu/seed.yml", "data/rules/faq.yml",
            "domain/conversation.yml", "data/rules/conversation.yml", "manifest.json"} <= files
    intents = yaml.safe_load((tmp_path / "out/domain/intents.yml").read_text())["intents"]
    assert "reverted_card_payment" in intents and "refund_not_showing_up" in intents
    rules = yaml.safe_load((tmp_path / "out/data/rules/faq.yml").read_text())["rules"]
    # Every banking intent is a FAQ, except those with a flow of their own in bot/data/rules.
    faq = {r["steps"][0]["intent"] for r in rules}
    assert len(faq) == 77 - 2
    assert not faq & {"lost_or_stolen_card", "transfer_not_received_by_recipient"}
    assert all(r["steps"][1] == {"action": "action_answer"} for r in rules)


def test_held_out_test_set_never_reaches_training_data(tmp_path: Path) -> None:
    data_build.build(tmp_path / "out")
    nlu = yaml.safe_load((tmp_path / "out/data/nlu/seed.yml").read_text())["nlu"]
    trained = {same_text_key(line[2:]) for block in nlu
               for line in block["examples"].splitlines() if line.startswith("- ")}
    train_only = {same_text_key(e.text) for e in datasets.load_banking77("train")}
    test_only = {same_text_key(e.text)
                 for e in datasets.load_banking77("test")} - train_only
    assert test_only, "the test split should have questions absent from train"
    assert not trained & test_only


def test_limit_per_intent_keeps_every_intent(tmp_path: Path) -> None:
    result = data_build.build(tmp_path / "out", limit_per_intent=3)
    assert result.intents == 85
    assert result.examples == 85 * 3


def _break_answers(data_dir: Path, name: str, change) -> Path:
    path = data_dir / "answers" / name
    answers = yaml.safe_load(path.read_text())
    change(answers)
    path.write_text(yaml.safe_dump(answers, sort_keys=False))
    return path


def test_duplicate_answer_id_is_refused(tmp_path: Path, data_copy: Path) -> None:
    def duplicate(answers: list) -> None:
        answers[1]["id"] = answers[0]["id"]

    path = _break_answers(data_copy, "transfers.yaml", duplicate)
    with pytest.raises(DataError) as error:
        data_build.build(tmp_path / "out", data_dir=data_copy)
    assert str(path) in str(error.value) and "duplicate" in str(error.value)
    assert not (tmp_path / "out").exists(), "a failed build must write nothing"


def test_answer_id_duplicated_across_files_is_refused(tmp_path: Path, data_copy: Path) -> None:
    def reuse_card_id(answers: list) -> None:
        answers[0]["id"] = 101

    _break_answers(data_copy, "transfers.yaml", reuse_card_id)
    with pytest.raises(DataError, match=r"answer id 101 .*duplicate answer id.*cards.yaml"):
        data_build.build(tmp_path / "out", data_dir=data_copy)


def test_answer_for_unknown_intent_is_refused(tmp_path: Path, data_copy: Path) -> None:
    def unknown(answers: list) -> None:
        answers[2]["intent"] = "buy_crypto"

    path = _break_answers(data_copy, "exchange.yaml", unknown)
    with pytest.raises(DataError) as error:
        data_build.build(tmp_path / "out", data_dir=data_copy)
    message = str(error.value)
    assert str(path) in message and "603" in message and "unknown intent 'buy_crypto'" in message


def test_variant_copied_from_test_set_is_refused(tmp_path: Path, data_copy: Path) -> None:
    leaked = datasets.load_banking77("test")[0].text

    def leak(answers: list) -> None:
        # Case and punctuation changes must not hide a copy.
        answers[0]["questions"].append(leaked.upper().rstrip("?!.") + "!!")

    path = _break_answers(data_copy, "cards.yaml", leak)
    with pytest.raises(DataError) as error:
        data_build.build(tmp_path / "out", data_dir=data_copy)
    message = str(error.value)
    assert str(path) in message and "answer id 101" in message and "held-out" in message


def test_intent_without_examples_is_refused(tmp_path: Path, data_copy: Path) -> None:
    path = data_copy / "conversational" / "intents.yaml"
    intents = yaml.safe_load(path.read_text())
    intents["thank_you"] = []
    path.write_text(yaml.safe_dump(intents))
    with pytest.raises(DataError, match=r"intents.yaml: intent 'thank_you': has no examples"):
        data_build.build(tmp_path / "out", data_dir=data_copy)


def test_domain_intent_missing_from_data_is_refused(tmp_path: Path, data_copy: Path) -> None:
    path = data_copy / "conversational" / "intents.yaml"
    intents = yaml.safe_load(path.read_text())
    del intents["bot_challenge"]
    path.write_text(yaml.safe_dump(intents))
    with pytest.raises(DataError, match=r"no examples"):
        data_build.build(tmp_path / "out", data_dir=data_copy)


def test_malformed_answer_entry_names_file_and_entry(tmp_path: Path, data_copy: Path) -> None:
    def no_title(answers: list) -> None:
        answers[3]["title"] = "   "

    path = _break_answers(data_copy, "account.yaml", no_title)
    with pytest.raises(DataError) as error:
        data_build.build(tmp_path / "out", data_dir=data_copy)
    assert f"{path}: entry 4 (id 704)" in str(error.value) and "title" in str(error.value)


def test_cli_reports_bad_data_and_exits_non_zero(tmp_path: Path, data_copy: Path) -> None:
    def unknown(answers: list) -> None:
        answers[0]["intent"] = "not_an_intent"

    _break_answers(data_copy, "top_ups.yaml", unknown)
    result = subprocess.run(
        [str(BIN_DIR / "helpdesk"), "data", "build", "--out", str(tmp_path / "out")],
        env=helpdesk_env(tmp_path, HELPDESK_DATA_DIR=str(data_copy)),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "top_ups.yaml" in result.stderr and "not_an_intent" in result.stderr
