"""The retriever's encoder in ONNX Runtime gives the eager model's vectors, so stored vectors,
cached ones and thresholds stay valid; its export is made once and survives interruptions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from common.config import shipped_model
from retrieval import onnx_encoder
from retrieval.encoder import Encoder, load_encoder
from retrieval.retriever import Retriever
from tests.conftest import make_answer

HOSTILE = [
    "I am still waiting on my card?",
    "",
    "   ",
    "x" * 5000,  # far past the model's 256 tokens
    "😀 héllo 你好 \x00\x07 card <script>alert(1)</script>",
    "what is the exchange rate " * 60,
    "a",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Encoder, Path]:
    export_dir = tmp_path_factory.mktemp("encoders")
    return Encoder(shipped_model(), export_dir=export_dir), export_dir


def test_the_onnx_encoder_gives_the_eager_models_vectors(exported, encoder) -> None:
    onnx, _ = exported
    assert onnx.runtime == "onnx" and encoder.runtime == "torch"
    assert onnx.model_id == encoder.model_id and onnx.dim == encoder.dim
    fast = onnx.encode(HOSTILE, cache=False)
    eager = encoder.encode(HOSTILE, cache=False)
    assert np.abs(fast - eager).max() < 1e-5
    norms = np.linalg.norm(fast, axis=1)
    assert norms[1] == norms[2] == 0  # empty texts stay zero vectors
    assert np.allclose(np.delete(norms, [1, 2]), 1, atol=1e-5)
    # One at a time (a customer's question) equals the batch (an import's answers).
    for i, text in enumerate(HOSTILE):
        assert np.abs(onnx.encode([text], cache=False, urgent=True)[0] - fast[i]).max() < 1e-5


def test_an_export_is_made_once_and_reused(exported) -> None:
    onnx, export_dir = exported
    [folder] = [p for p in export_dir.iterdir() if not p.name.startswith(".")]
    graph = folder / onnx_encoder.GRAPH_FILE
    made = graph.stat().st_mtime_ns
    again = Encoder(shipped_model(), export_dir=export_dir)
    assert graph.stat().st_mtime_ns == made
    assert np.array_equal(again.encode(HOSTILE[:1], cache=False),
                          onnx.encode(HOSTILE[:1], cache=False))


def test_an_interrupted_export_leaves_nothing_that_serves(tmp_path: Path, monkeypatch) -> None:
    def interrupted(*_args, **_kwargs) -> None:
        raise KeyboardInterrupt

    import torch

    monkeypatch.setattr(torch.onnx, "export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Encoder(shipped_model(), export_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no half-written folder is left to be trusted
    monkeypatch.undo()
    encoder = Encoder(shipped_model(), export_dir=tmp_path)
    assert encoder.encode(["card"], cache=False).shape == (1, encoder.dim)


def test_the_served_retriever_runs_onnx_and_finds_what_the_eager_one_finds(
        tmp_path: Path, encoder) -> None:
    served = load_encoder([shipped_model()], cache_path=tmp_path / "embeddings.sqlite")
    assert getattr(served, "runtime", None) == "onnx"
    assert (tmp_path / "encoders").is_dir()
    answers = [
        make_answer(1, "Card delivery", "Cards arrive within 5 working days.",
                    ["When will my card arrive?"]),
        make_answer(2, "Exchange rates", "We use the interbank rate.",
                    ["What exchange rate do you use?"]),
        make_answer(3, "Top up by cheque", "Cheques are not accepted.", ["Can I pay in a cheque?"]),
    ]
    fast, eager = Retriever(served), Retriever(encoder)
    fast.replace_all(answers)
    eager.replace_all(answers)
    for question in ("my card has not come yet", "which rate for euros?", "cheque top up"):
        a, b = fast.search(question, k=3), eager.search(question, k=3)
        assert [h.answer_id for h in a.hits] == [h.answer_id for h in b.hits]
        assert a.decision == b.decision
        assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], abs=1e-5)
