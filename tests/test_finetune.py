"""Contrastive fine-tuning of the retriever's encoder learns intents and reloads in one call."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval import settings
from retrieval.encoder import Encoder
from retrieval.finetune import FinetuneParams, _batches, finetune
from tests.conftest import banking_examples


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


def test_finetuning_separates_intents_on_held_out_questions(tmp_path: Path) -> None:
    train = banking_examples("train", 16)
    held_out = banking_examples("test", 10)
    out = finetune(settings.encoder_model(), [e.text for e in train], [e.intent for e in train],
                   tmp_path / "tuned", FinetuneParams(epochs=2, batch_size=6,
                                                      learning_rate=5e-5), progress=False)
    assert (out / "config.json").is_file() and (out / "FINETUNED.txt").is_file()
    assert not (tmp_path / "tuned.tmp").exists()
    base = Encoder(settings.encoder_model())
    tuned = Encoder(str(out))  # save_pretrained layout: reloads with one call
    assert _separation(tuned, held_out) > _separation(base, held_out) + 0.02
    again = Encoder(str(out))
    texts = [e.text for e in held_out[:5]]
    assert np.allclose(tuned.encode(texts), again.encode(texts), atol=1e-6)
