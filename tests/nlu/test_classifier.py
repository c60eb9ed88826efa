"""The intent model without Rasa: learning, reloading, the fast path, odd input, resuming."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from nlu import backends, calibration, oos
from nlu.calibration import rescale
from nlu.classifier import IntentClassifier
from nlu.memory import MEMORY_FILE, MIN_VALIDATION, ExampleMemory, choose_blend, normalise
from nlu.model import META_FILE, ModelMeta, load, save
from nlu.training import Interrupted, TrainParams, train
from tests.conftest import TINY_INTENTS as INTENTS
from tests.conftest import banking_examples as _examples
from tests.conftest import scoped_banking_split


def test_learns_separable_intents(tiny_intent_model: Path) -> None:
    held_out = _examples("test", 40)
    predictions = IntentClassifier.load(tiny_intent_model, backend="torch").predict_batch(
        [e.text for e in held_out])
    accuracy = np.mean([p.intent == e.intent for p, e in zip(predictions, held_out, strict=True)])
    assert accuracy >= 0.90, accuracy


def test_save_and_reload_predict_identically(tiny_intent_model: Path, tmp_path: Path) -> None:
    texts = [e.text for e in _examples("test", 5)]
    first = IntentClassifier.load(tiny_intent_model, backend="torch").probabilities(texts)
    loaded = load(tiny_intent_model)
    save(loaded.model, loaded.tokenizer, loaded.meta, tmp_path / "copy", loaded.memory)
    second = IntentClassifier.load(tmp_path / "copy", backend="torch").probabilities(texts)
    np.testing.assert_allclose(first, second, atol=1e-6)
    assert loaded.meta.labels == sorted(INTENTS)


def test_logits_and_embeddings_are_what_the_probabilities_come_from(
        tiny_intent_model: Path) -> None:
    classifier = IntentClassifier.load(tiny_intent_model, backend="torch")
    texts = [e.text for e in _examples("test", 6)]
    logits, embedded = classifier.logits_and_embeddings(texts)
    assert logits.shape == (len(texts), len(classifier.labels))
    assert embedded is not None and embedded.shape[0] == len(texts)
    scaled = torch.from_numpy(logits) / classifier.meta.calibration.temperature
    np.testing.assert_allclose(torch.softmax(scaled, dim=1).numpy(),
                               classifier.head_only().probabilities(texts), atol=1e-5)
    # The same text twice embeds identically; a different one does not.
    again = classifier.logits_and_embeddings([texts[0], texts[0], texts[1]])[1]
    np.testing.assert_allclose(again[0], again[1], atol=1e-5)
    assert not np.allclose(again[0], again[2], atol=1e-3)
    with pytest.raises(ValueError, match="no texts"):
        classifier.logits_and_embeddings([])


def test_quantized_model_agrees_with_full_model(tiny_intent_model: Path) -> None:
    held_out = _examples("test", 40)
    texts = [e.text for e in held_out]
    full = IntentClassifier.load(tiny_intent_model, backend="torch").predict_batch(texts)
    quick = IntentClassifier.load(tiny_intent_model, backend="onnx").predict_batch(texts)
    agreement = np.mean([a.intent == b.intent for a, b in zip(full, quick, strict=True)])
    assert agreement >= 0.97, agreement
    assert backends.serving_path(tiny_intent_model).is_file()  # what backend "auto" serves
    assert np.mean([q.intent == e.intent for q, e in zip(quick, held_out, strict=True)]) >= 0.9


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_any_text_gets_a_valid_prediction(tiny_intent_model: Path, backend: str) -> None:
    classifier = IntentClassifier.load(tiny_intent_model, backend=backend)
    odd = ["", "x" * 50_000, "💳🔥🙃", "\x00\x01\x1b[31m\u200b", "Моя карта 卡 لم تصل card",
           "<script>alert(1)</script>", "   \n\t  "]
    for prediction in classifier.predict_batch(odd) + [classifier.predict(odd[1])]:
        assert prediction.intent in INTENTS
        assert 0.0 <= prediction.confidence <= 1.0
        values = [v for _, v in prediction.ranking]
        assert values == sorted(values, reverse=True) and len(values) == len(INTENTS)
        assert abs(sum(values) - 1.0) < 1e-4
    ids, _ = classifier._encode(["word " * 20_000])
    assert ids.shape[1] == classifier.meta.max_length  # long input is truncated


def test_training_is_deterministic_and_resumes_after_interruption(tmp_path: Path) -> None:
    examples = _examples("train", 8, INTENTS[:3])
    texts, labels = [e.text for e in examples], [e.intent for e in examples]
    params = TrainParams(epochs=2, batch_size=8, validation_fraction=0.0)
    straight = train(texts, labels, params, tmp_path / "straight", progress=False)

    def stop_after_first(epoch: int, _accuracy: float) -> None:
        if epoch == 1:
            raise Interrupted

    checkpoints = tmp_path / "checkpoints"
    with pytest.raises(Interrupted):
        train(texts, labels, params, tmp_path / "resumed", checkpoints, False, stop_after_first)
    assert (checkpoints / "checkpoint.pt").is_file()
    assert not (tmp_path / "resumed").exists()  # nothing half-written where the model goes
    resumed = train(texts, labels, params, tmp_path / "resumed", checkpoints, progress=False)
    assert not (checkpoints / "checkpoint.pt").exists()
    probe = [e.text for e in _examples("test", 5, INTENTS[:3])]
    a = IntentClassifier.load(straight.path, backend="torch").probabilities(probe)
    b = IntentClassifier.load(resumed.path, backend="torch").probabilities(probe)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_temperature_scaling_recovers_a_known_temperature() -> None:
    generator = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 5, generator=generator) * 2
    labels = torch.multinomial(torch.softmax(true_logits, 1), 1, generator=generator).squeeze(1)
    fitted = calibration.fit_temperature(true_logits * 3.0, labels)  # over-confident by 3x
    assert 2.6 < fitted < 3.4, fitted


def test_expected_calibration_error() -> None:
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.2, 1.0, 20_000)
    calibrated = rng.uniform(size=confidence.size) < confidence
    assert calibration.expected_calibration_error(confidence, calibrated) < 0.02
    assert calibration.expected_calibration_error(np.full(1000, 0.9), np.zeros(1000)) > 0.85


def test_oos_threshold_separates_and_respects_the_budget() -> None:
    rng = np.random.default_rng(1)
    in_conf = rng.uniform(0.6, 1.0, 500)
    correct = np.ones(500, dtype=bool)
    oos_conf = rng.uniform(0.1, 0.5, 100)
    threshold = calibration.choose_oos_threshold(in_conf, correct, oos_conf, 0.02)
    assert 0.5 <= threshold <= np.sort(in_conf)[10]
    assert calibration.choose_oos_threshold(in_conf[:10], correct[:10], oos_conf) == 0.0


def test_rescale_puts_the_learned_threshold_on_the_configured_one() -> None:
    assert rescale(0.62, 0.62, 0.3) == pytest.approx(0.3)
    values = [rescale(x, 0.62, 0.3) for x in np.linspace(0, 1, 101)]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == pytest.approx(1.0)
    assert rescale(0.4, 0.0, 0.3) == 0.4  # nothing learned: unchanged


def test_a_probe_only_model_is_refit_on_its_validation_examples_too(tmp_path: Path) -> None:
    examples = _examples("train", 10)
    texts, labels = [e.text for e in examples], [e.intent for e in examples]
    held = _examples("test", 15)
    results = {}
    for refit in (False, True):
        result = train(texts, labels, TrainParams(epochs=0, refit_on_all=refit),
                       tmp_path / str(refit), progress=False)
        model = IntentClassifier.load(result.path)
        val_texts, val_labels = result.validation
        results[refit] = {
            "trained": result.metrics["train_examples"],
            "val": np.mean([p.intent == t for p, t in
                            zip(model.predict_batch(val_texts), val_labels, strict=True)]),
            "test": np.mean([model.predict(e.text).intent == e.intent for e in held]),
            "calibration": result.meta.calibration,
        }
    assert results[True]["trained"] == len(texts) > results[False]["trained"]
    assert results[True]["val"] == 1.0  # it has now seen them
    assert results[True]["test"] >= results[False]["test"] - 0.02  # and lost nothing unseen
    assert results[True]["test"] > 2 / len(INTENTS)
    # The temperature and threshold come from the validation split, before the refit.
    assert results[True]["calibration"] == results[False]["calibration"]


def test_a_given_validation_split_is_held_out_and_used(tmp_path: Path) -> None:
    train_part = _examples("train", 10, INTENTS[:3])
    val_part = _examples("test", 20, INTENTS[:3])
    texts, labels = [e.text for e in train_part], [e.intent for e in train_part]
    validation = ([e.text for e in val_part], [e.intent for e in val_part])
    result = train(texts, labels, TrainParams(epochs=0), tmp_path / "model", progress=False,
                   validation=validation)
    # Every training example is trained on, the given split only measures (even though the
    # probe alone would otherwise refit its head on the validation rows too).
    assert result.metrics["train_examples"] == len(texts)
    assert result.metrics["val_examples"] == len(val_part)
    assert result.validation == (validation[0], validation[1])
    assert result.metrics["val_accuracy"] >= 0.9
    with pytest.raises(ValueError, match="never seen in training"):
        train(texts, labels, TrainParams(epochs=0), tmp_path / "other", progress=False,
              validation=(["hello"], ["no_such_intent"]))
    assert not (tmp_path / "other").exists()


def _clusters(rng: np.random.Generator, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return centres[labels] + 0.15 * rng.normal(size=(len(labels), centres.shape[1]))


def test_memory_votes_for_the_nearest_examples_and_its_weight_is_learned() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16))
    stored = np.repeat(np.arange(4), 30)
    memory = ExampleMemory(_clusters(rng, stored, centres), stored, 4)
    truth = rng.integers(0, 4, 200)
    queries = _clusters(rng, truth, centres)
    vote = memory.vote(queries, k=5, temperature=0.05)
    np.testing.assert_allclose(vote.sum(1), 1.0)
    assert (vote.argmax(1) == truth).mean() > 0.95
    nearest = np.argmax(queries @ memory.embeddings.T / np.linalg.norm(queries, axis=1)[:, None],
                        axis=1)
    np.testing.assert_array_equal(memory.vote(queries, 1, 0.05).argmax(1), stored[nearest])

    useless_head = np.full((200, 4), 0.25)
    assert choose_blend(memory, useless_head, queries, truth).weight >= 0.5
    sure_head = np.full((200, 4), 0.02)
    sure_head[np.arange(200), truth] = 0.94
    shuffled = ExampleMemory(memory.embeddings, rng.permutation(stored), 4)
    assert choose_blend(shuffled, sure_head, queries, truth).weight == 0.0  # the head alone
    few = MIN_VALIDATION - 1
    assert choose_blend(memory, useless_head[:few], queries[:few], truth[:few]).weight == 0.0
    blended = memory.blend(useless_head, queries, choose_blend(memory, useless_head, queries,
                                                                truth))
    assert (blended.argmax(1) == truth).mean() > 0.95


def test_both_backends_serve_the_memory_blend(tiny_intent_model: Path, tmp_path: Path) -> None:
    # The tiny model's validation split is too small to learn a blend: the head alone, no file.
    meta = ModelMeta.from_json((tiny_intent_model / META_FILE).read_text())
    assert meta.calibration.knn_weight == 0.0
    assert not (tiny_intent_model / MEMORY_FILE).exists()
    folder = tmp_path / "with-memory"
    shutil.copytree(tiny_intent_model, folder)
    examples = _examples("train", 15)
    loaded = load(folder)
    encoded = loaded.tokenizer([e.text for e in examples], padding=True, return_tensors="pt")
    with torch.inference_mode():
        stored = loaded.model.embed(encoded["input_ids"], encoded["attention_mask"]).numpy()
    label_ids = np.array([meta.labels.index(e.intent) for e in examples])
    ExampleMemory(stored, label_ids, len(meta.labels)).save(folder)
    meta.calibration.knn_weight, meta.calibration.knn_k = 1.0, 1  # the nearest example decides
    (folder / META_FILE).write_text(meta.to_json())

    held_out = [e.text for e in _examples("test", 10)]
    with torch.inference_mode():
        encoded = loaded.tokenizer(held_out, padding=True, return_tensors="pt")
        queries = loaded.model.embed(encoded["input_ids"], encoded["attention_mask"]).numpy()
    unit = stored / np.linalg.norm(stored, axis=1, keepdims=True)
    expected = [meta.labels[label_ids[i]] for i in np.argmax(queries @ unit.T, axis=1)]
    for backend in ("torch", "onnx"):
        classifier = IntentClassifier.load(folder, backend=backend)
        predicted = [p.intent for p in classifier.predict_batch(held_out)]
        agreement = np.mean([a == b for a, b in zip(predicted, expected, strict=True)])
        assert agreement >= (1.0 if backend == "torch" else 0.9), (backend, agreement)
        own = classifier.predict_batch([e.text for e in examples[:30]])
        assert [p.intent for p in own] == [e.intent for e in examples[:30]]
    (folder / MEMORY_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="example memory"):
        IntentClassifier.load(folder, backend="torch")


def test_training_learns_the_blend_when_the_head_alone_is_weak(tmp_path: Path) -> None:
    train_part, val_part = _examples("train", 10), _examples("test", 10)
    validation = ([e.text for e in val_part], [e.intent for e in val_part])
    # A heavily regularised probe is nearly flat: the nearest examples must carry the decision.
    result = train([e.text for e in train_part], [e.intent for e in train_part],
                   TrainParams(epochs=0, probe_c=1e-4), tmp_path / "model", progress=False,
                   validation=validation)
    blend = result.meta.calibration.blend()
    assert blend.weight >= 0.5, blend
    assert result.metrics["val_accuracy"] > result.metrics["val_accuracy_head"] - 1e-9
    assert result.metrics["val_accuracy"] >= 0.8
    memory = ExampleMemory.load(result.path, len(INTENTS))
    assert memory is not None and len(memory.label_ids) == len(train_part)  # validation held out
    classifier = IntentClassifier.load(result.path, backend="torch")
    predicted = classifier.predict_batch(validation[0])
    assert np.mean([p.intent == t for p, t in zip(predicted, validation[1], strict=True)]) \
        == pytest.approx(result.metrics["val_accuracy"])


def test_oos_reference_distances_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    embeddings, labels = rng.normal(size=(60, 8)), np.repeat(np.arange(4), 15)
    reference = oos.Reference(embeddings, labels, oos_index=3)  # label 3 is out of scope
    bank, kept = normalise(embeddings[:45]), labels[:45]
    np.testing.assert_allclose(reference.bank, bank, atol=1e-6)
    queries = normalise(rng.normal(size=(10, 8)))
    similarity = np.sort(queries @ bank.T, axis=1)
    nearest, tenth = reference.nearest(queries)
    np.testing.assert_allclose(nearest, similarity[:, -1], atol=1e-6)
    np.testing.assert_allclose(tenth, similarity[:, -10], atol=1e-6)
    means = np.stack([bank[kept == c].mean(axis=0) for c in range(3)])
    centred = bank - means[kept]
    precision = np.linalg.inv(centred.T @ centred / len(bank) + oos.COVARIANCE_RIDGE * np.eye(8))
    expected = [min((q - m) @ precision @ (q - m) for m in means) for q in queries]
    np.testing.assert_allclose(reference.mahalanobis(queries), expected, rtol=1e-3)


def test_the_oos_regression_is_kept_only_when_it_beats_the_confidence() -> None:
    rng = np.random.default_rng(1)
    is_oos = rng.random(400) < 0.2
    nobody = np.zeros(400, dtype=bool)  # no message predicted as the out-of-scope intent
    values = rng.normal(size=(400, len(oos.FEATURES)))
    values[:, oos.FEATURES.index("knn1")] += 3.0 * ~is_oos  # the distance separates
    scorer, out_of_fold = oos.fit(values, is_oos, nobody)
    assert scorer.val_auroc > 0.95
    assert roc_auc_score(~is_oos, out_of_fold) == pytest.approx(scorer.val_auroc)
    assert np.argmax(scorer.coef) == oos.FEATURES.index("knn1")
    assert roc_auc_score(~is_oos, scorer.score(values)) > 0.95
    np.testing.assert_allclose(oos.OosScorer.from_dict(scorer.to_dict()).score(values),
                               scorer.score(values))
    few = np.flatnonzero(is_oos)[: oos.MIN_OOS - 1]
    rows = np.concatenate([few, np.flatnonzero(~is_oos)])
    assert oos.fit(values[rows], is_oos[rows], nobody[rows]) is None  # too few to learn from
    perfect = values.copy()
    perfect[:, 0] = ~is_oos + 0.01 * rng.random(400)  # the confidence alone separates
    assert oos.fit(perfect, is_oos, nobody) is None


def _ranked(predictions: list, use: str) -> np.ndarray:
    return np.array([0.0 if p.intent == "out_of_scope" else getattr(p, use) for p in predictions])


def test_the_learned_oos_score_catches_what_the_confidence_misses(
        oos_intent_model: Path, tmp_path: Path) -> None:
    calib = ModelMeta.from_json((oos_intent_model / META_FILE).read_text()).calibration
    assert calib.oos_scorer is not None and (oos_intent_model / MEMORY_FILE).is_file()
    held = scoped_banking_split()["held_out"]
    texts, truth = [t for t, _ in held], [i for _, i in held]
    is_oos = np.array([t == "out_of_scope" for t in truth])
    predictions = IntentClassifier.load(oos_intent_model, backend="torch").predict_batch(texts)
    learned, confidence = _ranked(predictions, "in_scope"), _ranked(predictions, "confidence")
    # Held-out out-of-scope questions come from intents never seen in training.
    assert roc_auc_score(~is_oos, learned) >= max(0.95, roc_auc_score(~is_oos, confidence))
    rejected = np.array([p.out_of_scope for p in predictions])
    right = np.array([p.intent == t for p, t in zip(predictions, truth, strict=True)])
    assert rejected[is_oos].mean() >= 0.8 and (right & ~rejected)[~is_oos].mean() >= 0.9
    assert all(p.out_of_scope == (p.intent == "out_of_scope" or p.in_scope < calib.oos_threshold)
               for p in predictions)
    served = IntentClassifier.load(oos_intent_model, backend="onnx").predict_batch(texts)
    assert np.mean([a.out_of_scope == b.out_of_scope
                    for a, b in zip(predictions, served, strict=True)]) >= 0.95
    copy = tmp_path / "copy"
    shutil.copytree(oos_intent_model, copy)
    again = IntentClassifier.load(copy, backend="torch").predict_batch(texts)
    np.testing.assert_allclose([p.in_scope for p in again], [p.in_scope for p in predictions],
                               atol=1e-6)
    (copy / MEMORY_FILE).unlink()  # the distances need it: refuse, never decide otherwise
    with pytest.raises(FileNotFoundError, match="example memory"):
        IntentClassifier.load(copy, backend="torch")


def test_without_the_learned_score_the_confidence_decides(tmp_path: Path,
                                                         tiny_intent_model: Path) -> None:
    split = scoped_banking_split()
    result = train([t for t, _ in split["train"]], [i for _, i in split["train"]],
                   TrainParams(epochs=0, oos_scorer=False), tmp_path / "model", progress=False,
                   validation=([t for t, _ in split["validation"]],
                               [i for _, i in split["validation"]]))
    assert result.meta.calibration.oos_scorer is None
    predictions = IntentClassifier.load(result.path).predict_batch(
        [t for t, _ in split["held_out"]])
    assert all(p.in_scope == p.confidence for p in predictions)
    # Nor is it learned without out-of-scope examples (the tiny model has none).
    tiny = ModelMeta.from_json((tiny_intent_model / META_FILE).read_text()).calibration
    assert tiny.oos_scorer is None and tiny.confidence_threshold() == tiny.oos_threshold
