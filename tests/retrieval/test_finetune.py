"""Contrastive fine-tuning of the retriever's encoder learns intents and reloads in one call;
the tuned and the shipped encoder serve together as an ensemble."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from common.config import get_settings, shipped_model
from retrieval import snapshot
from retrieval.decision import Calibration, Thresholds
from retrieval.encoder import Encoder, EnsembleEncoder, load_encoder
from retrieval.finetune import FinetuneParams, _batches, finetune
from retrieval.retriever import Retriever
from tests.conftest import banking_examples, make_answer


def _separation(encoder: Encoder, examples: list) -> float:
    """Mean cosine to same-intent questions minus mean cosine to other intents' questions."""
    vectors = encoder.encode([e.text for e in examples])
    labels = np.array([e.intent for e in examples])
    similarity = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    other = labels[:, None] != labels[None, :]
    return float(similarity[same].mean() - similarity[other].mean())


def test_batches_hold_one_pair_per_intent() -> None:
    import random

    texts = [f"q{i}" for i in range(40)]
    labels = [f"intent{i % 4}" for i in range(40)]
    batches = _batches(texts, labels, 3, random.Random(0))
    label_of = dict(zip(texts, labels, strict=True))
    assert sum(len(b) for b in batches) >= 36  # every anchor once, bar a few leftovers
    for batch in batches:
        assert len({label_of[a] for a, _ in batch}) == len(batch) <= 3
        assert all(a != p and label_of[a] == label_of[p] for a, p in batch)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped encoder fine-tuned on a few BANKING77 intents (once for this module)."""
    train = banking_examples("train", 16)
    folder = tmp_path_factory.mktemp("finetune")
    out = finetune(shipped_model(), [e.text for e in train], [e.intent for e in train],
                   folder / "tuned", FinetuneParams(epochs=2, batch_size=6,
                                                    learning_rate=5e-5), progress=False)
    assert not (folder / "tuned.tmp").exists()
    return out


def test_finetuning_separates_intents_on_held_out_questions(tuned: Path) -> None:
    held_out = banking_examples("test", 10)
    assert (tuned / "config.json").is_file() and (tuned / "FINETUNED.txt").is_file()
    base = Encoder(shipped_model())
    fine = Encoder(str(tuned))  # save_pretrained layout: reloads with one call
    assert _separation(fine, held_out) > _separation(base, held_out) + 0.02
    again = Encoder(str(tuned))
    texts = [e.text for e in held_out[:5]]
    assert np.allclose(fine.encode(texts), again.encode(texts), atol=1e-6)


def test_several_models_serve_as_one_ensemble(tuned: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    held_out = banking_examples("test", 10)
    texts = [e.text for e in held_out]
    monkeypatch.setenv("HELPDESK_RETRIEVER_MODEL",
                       f" {shipped_model()}{os.pathsep}{tuned}{os.pathsep}")
    assert get_settings().encoder_models == [shipped_model(), str(tuned)]
    ensemble = load_encoder(get_settings().encoder_models, cache_path=tmp_path / "emb.sqlite")
    assert isinstance(ensemble, EnsembleEncoder)
    base, fine = ensemble.members
    assert ensemble.dim == base.dim + fine.dim
    assert ensemble.model_id not in {base.model_id, fine.model_id}

    # The ensemble's inner product is the mean of its members' cosines, and it still ranks
    # held-out questions by intent better than the shipped encoder alone.
    vectors = ensemble.encode([*texts, ""])
    assert np.allclose(np.linalg.norm(vectors[:-1], axis=1), 1.0, atol=1e-5)
    assert not vectors[-1].any()  # an empty text stays a zero vector: the retriever's fallback
    a, b = base.encode(texts), fine.encode(texts)
    assert np.allclose(vectors[:-1] @ vectors[:-1].T, (a @ a.T + b @ b.T) / 2, atol=1e-5)
    assert _separation(ensemble, held_out) > _separation(base, held_out) + 0.01

    # Each member caches under its own model: a new ensemble over the same file encodes nothing.
    again = load_encoder(get_settings().encoder_models, cache_path=tmp_path / "emb.sqlite")
    assert np.allclose(again.encode(texts), vectors[:-1], atol=1e-6) and again.encoded == 0

    # The retriever serves it unchanged; its snapshot is refused by a single-model retriever.
    flat = Calibration(0.0, Thresholds(0.3, 0.0), Thresholds(0.3, 0.0), "tests")
    retriever = Retriever(ensemble, flat, device="cpu")
    retriever.replace_all([
        make_answer(1, "Card delivery", "New cards arrive within a week.", [held_out[0].text]),
        make_answer(2, "Top-ups", "Top up by bank transfer.", ["My top-up did not go through"]),
    ], version=3)
    assert retriever.search(held_out[0].text).top.answer_id == 1
    assert retriever.stats()["model_id"] == ensemble.model_id
    snapshot.save(retriever, tmp_path / "index")
    restored = Retriever(again, flat, device="cpu")
    assert snapshot.load(restored, tmp_path / "index").answers_version == 3
    assert restored.search(held_out[0].text) == retriever.search(held_out[0].text)
    with pytest.raises(snapshot.SnapshotError, match="made with model"):
        snapshot.load(Retriever(base, flat, device="cpu"), tmp_path / "index")
    with pytest.raises(ValueError, match="at least two"):
        EnsembleEncoder([base])


def test_the_default_encoder_is_the_shipped_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_RETRIEVER_MODEL", f" {os.pathsep} ")
    assert get_settings().encoder_models == [shipped_model()]
    monkeypatch.delenv("HELPDESK_RETRIEVER_MODEL")
    assert get_settings().encoder_models == [shipped_model()]
    assert Path(shipped_model(), "config.json").is_file()
