"""BertIntentClassifier inside real ``rasa train`` runs and a loaded Rasa agent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from common.config import get_settings
from nlu import datasets

pytestmark = pytest.mark.slow
INTENTS = ["card_arrival", "exchange_rate", "lost_or_stolen_card", "terminate_account",
           "apple_pay_or_google_pay", "age_limit"]
PARSE = """
import asyncio, json, sys
from rasa.core.agent import Agent
agent = Agent.load(sys.argv[1])
async def main():
    return [await agent.parse_message(t) for t in json.loads(sys.argv[2])]
print("PARSED" + json.dumps(asyncio.run(main())))
"""


def _project(folder: Path, base: Path) -> None:
    by_intent: dict[str, list[str]] = {}
    for example in datasets.load_banking77("train"):
        if example.intent in INTENTS and len(by_intent.setdefault(example.intent, [])) < 15:
            by_intent[example.intent].append(example.text)
    conversational = datasets.load_conversational()
    by_intent["out_of_scope"] = conversational["out_of_scope"]
    by_intent["greet"] = conversational["greet"]
    nlu = {"version": "3.1", "nlu": [
        {"intent": name, "examples": "".join(f"- {t}\n" for t in texts)}
        for name, texts in by_intent.items()]}
    (folder / "nlu.yml").write_text(yaml.safe_dump(nlu, sort_keys=False))
    (folder / "domain.yml").write_text(yaml.safe_dump(
        {"version": "3.1", "intents": list(by_intent)}))
    config = {
        "recipe": "default.v1", "language": "en", "assistant_id": "component-test",
        "pipeline": [
            {"name": "nlu.BertIntentClassifier", "epochs": 1, "batch_size": 16,
             "base_model": str(base), "fallback_threshold": 0.3},
            {"name": "RegexEntityExtractor"},
            {"name": "FallbackClassifier", "threshold": 0.3},
        ],
        "policies": [],
    }
    (folder / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


def _train(folder: Path, out: str) -> tuple[Path, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", RASA_TELEMETRY_ENABLED="false",
               RASA_CACHE_DIRECTORY=str(folder / "cache"))
    result = subprocess.run(
        [sys.executable, "-m", "rasa", "train", "nlu", "--config", "config.yml",
         "--nlu", "nlu.yml", "--domain", "domain.yml", "--out", out],
        cwd=folder, env=env, capture_output=True, text=True, timeout=900)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    [model] = list((folder / out).glob("*.tar.gz"))
    return model, log


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rasa-project")
    base = folder / "base-checkpoint"  # a private copy, so the test may change it
    shutil.copytree(get_settings().base_model_dir, base)
    _project(folder, base)
    return folder


def test_trained_agent_returns_our_ranking_and_falls_back(project: Path) -> None:
    model, log = _train(project, "first")
    assert "Finished training component 'BertIntentClassifier'" in log
    with tarfile.open(model) as archive:  # serving needs the ONNX model, not torch weights
        names = {Path(n).name for n in archive.getnames()}
    assert "model.fast.onnx" in names and "model.safetensors" not in names
    texts = ["my new card still has not been delivered", "tell me a joke please",
             "", "x" * 50_000, "💳🔥 ¿dónde está mi tarjeta?"]
    result = subprocess.run([sys.executable, "-c", PARSE, str(model), json.dumps(texts)],
                            capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    parsed = json.loads(result.stdout.split("PARSED", 1)[1])
    card, joke = parsed[0], parsed[1]
    assert card["intent"]["name"] == "card_arrival"
    assert "text_vector" not in card  # fine-tuned: its vectors are not the retriever's
    ranking = card["intent_ranking"]
    assert 1 < len(ranking) <= 10
    assert {r["name"] for r in ranking} <= set(INTENTS) | {"out_of_scope", "greet"}
    values = [r["confidence"] for r in ranking]
    assert values == sorted(values, reverse=True) and all(0 <= v <= 1 for v in values)
    assert joke["intent"]["name"] == "nlu_fallback"  # the out-of-scope class ends in fallback
    for odd in parsed[2:]:
        assert odd["intent"]["name"] in INTENTS + ["out_of_scope", "greet", "nlu_fallback"]


def test_cache_reused_until_the_base_checkpoint_changes(project: Path) -> None:
    _train(project, "warmup")  # make sure this configuration is in the cache
    _, cached = _train(project, "again")
    assert "Restored component 'BertIntentClassifier' from cache" in cached
    assert "Finished training component 'BertIntentClassifier'" not in cached
    tokenizer_config = project / "base-checkpoint" / "tokenizer_config.json"
    tokenizer_config.write_text(tokenizer_config.read_text() + "\n")  # same model, new bytes
    _, retrained = _train(project, "changed")
    assert "Finished training component 'BertIntentClassifier'" in retrained


def test_the_learned_oos_score_decides_rasas_fallback(oos_intent_model: Path) -> None:
    from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
    from rasa.shared.nlu.training_data.message import Message

    from nlu.classifier import IntentClassifier
    from nlu.rasa_component import BertIntentClassifier
    from tests.conftest import scoped_banking_split

    classifier = IntentClassifier.load(oos_intent_model)
    assert classifier.meta.calibration.oos_scorer is not None
    # The bot's own FallbackClassifier settings (no ambiguity rule: the retriever clarifies).
    bot_config = yaml.safe_load((Path(__file__).parents[2] / "bot" / "config.yml").read_text())
    fallback_settings = next(c for c in bot_config["pipeline"] if c["name"] == "FallbackClassifier")
    config = {**BertIntentClassifier.get_default_config(),
              "fallback_threshold": fallback_settings["threshold"]}
    component = BertIntentClassifier(config, None, None, classifier)  # type: ignore[arg-type]
    fallback = FallbackClassifier({**FallbackClassifier.get_default_config(), **fallback_settings})
    texts = [t for t, _ in scoped_banking_split()["held_out"]]
    messages = fallback.process(component.process([Message(data={"text": t}) for t in texts]))
    predictions = classifier.predict_batch(texts)
    fell_back = [m.get("intent")["name"] == "nlu_fallback" for m in messages]
    assert fell_back == [p.out_of_scope for p in predictions]
    # The learned score, not the confidence, decided: some confident questions fell back.
    assert any(f and p.confidence >= fallback_settings["threshold"] and p.intent != "out_of_scope"
               for f, p in zip(fell_back, predictions, strict=True))
    for message, prediction in zip(messages, predictions, strict=True):
        ranking = message.get("intent_ranking")
        top = next(r for r in ranking if r["name"] == prediction.intent)
        assert top["confidence"] == pytest.approx(prediction.confidence)  # probabilities
