"""The sentence vector the classifier hands to the retriever: only from an untouched base
encoder, only for a text read whole, compact, and refused when it cannot stand for the
retriever's own encoding."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from common.config import get_settings
from common.files import weights_fingerprint
from nlu import handover
from nlu.classifier import IntentClassifier


def test_a_packed_vector_comes_back_as_the_same_unit_vector() -> None:
    vector = np.random.default_rng(0).normal(size=384).astype(np.float32) * 3
    packed = handover.pack("enc-1", vector)
    assert packed["encoder"] == "enc-1" and len(packed["vector"]) <= 1024
    back = handover.unpack(packed, "enc-1", 384)
    assert back is not None and back.dtype == np.float32
    assert abs(float(np.linalg.norm(back)) - 1) < 1e-5
    assert float(back @ (vector / np.linalg.norm(vector))) > 0.99999


def test_a_vector_that_cannot_stand_for_the_retrievers_is_refused() -> None:
    good = handover.pack("enc-1", np.ones(384, dtype=np.float32))
    nan = base64.b64encode(np.full(384, np.nan, dtype="<f2").tobytes()).decode()
    zero = base64.b64encode(np.zeros(384, dtype="<f2").tobytes()).decode()
    for entry, encoder_id, dim in [
        (good, "enc-2", 384),  # another encoder's vector
        (good, "", 384),
        (good, "enc-1", 768),  # another size
        (None, "enc-1", 384), ("text", "enc-1", 384), ({"encoder": "enc-1"}, "enc-1", 384),
        ({"encoder": "enc-1", "vector": "not base64!"}, "enc-1", 384),
        ({"encoder": "enc-1", "vector": good["vector"][:-8]}, "enc-1", 384),
        ({"encoder": "enc-1", "vector": "A" * 100_000}, "enc-1", 384),
        ({"encoder": "enc-1", "vector": nan}, "enc-1", 384),
        ({"encoder": "enc-1", "vector": zero}, "enc-1", 384),
        ({"encoder": "enc-1", "vector": 12}, "enc-1", 384),
    ]:
        assert handover.unpack(entry, encoder_id, dim) is None, (entry, encoder_id, dim)


def test_a_probe_only_model_hands_over_its_base_encoders_sentence_vector(
        oos_intent_model: Path, encoder) -> None:
    classifier = IntentClassifier.load(oos_intent_model)
    assert classifier.meta.encoder_id == weights_fingerprint(get_settings().base_model_dir)
    assert classifier.meta.encoder_id == encoder.model_id
    texts = ["my new card still has not arrived", "what rate do you use for euros?",
             "😀 ¿dónde está mi tarjeta? \x07"]
    reference = encoder.encode(texts, cache=False)
    for text, expected in zip(texts, reference, strict=True):
        prediction = classifier.predict(text)
        assert prediction.whole_text and prediction.embedding is not None
        vector = handover.unpack(handover.pack(classifier.meta.encoder_id, prediction.embedding),
                                 encoder.model_id, encoder.dim)
        assert vector is not None
        # int8 or fp32, the classifier's graph gives the retriever's vector to within rounding
        # and quantisation (bench/turn.py --part handover measures the decisions it moves).
        assert float(vector @ expected) > 0.97
    # A text longer than the classifier reads is not handed over: the retriever reads more.
    long = classifier.predict("please tell me where my card is " * 20)
    assert not long.whole_text


def test_a_fine_tuned_model_hands_over_nothing(tiny_intent_model: Path) -> None:
    classifier = IntentClassifier.load(tiny_intent_model)
    assert classifier.meta.encoder_id == ""  # its encoder's vectors are its own
