"""What one answered turn costs, and whether the classifier's vector may stand for the retriever's.

Parts (each merges into ``bench/results/turn.json``):
- ``handover``: before the retriever relies on the sentence vector the intent classifier hands
  over (``nlu/handover.py``), how far it drifts from the retriever's own encoding. BANKING77's
  3,080 test questions (and CLINC150's out-of-scope test queries when ../shared has them) go
  through the served classifier of a model archive (int8 or fp32, as its export chose; 64
  tokens) and through the retriever's encoder (fp32, 256 tokens). Reported: the share of
  questions handed over (read whole by the classifier), the cosine between both vectors, and
  against the 80 shipped answers with the product's thresholds: top answer and decision
  agreement and recall@1 with each vector. A row with the fp32 encoder cut at the classifier's
  64 tokens separates quantisation from truncation. CPU ms to encode a question (eager torch,
  ONNX) and to unpack a handed-over vector.

    .venv/bin/python bench/turn.py --part handover [--model var/models/X.tar.gz] [--smoke]

The model is ``--model``, or the newest archive in ``var/models`` (``helpdesk train``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import merge  # noqa: E402

CLINC = ROOT.parent / "shared" / "datasets" / "clinc150" / "data_full.json"


def _newest_model() -> Path:
    from common.config import get_settings

    archives = sorted(get_settings().models_dir.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not archives:
        raise SystemExit("no model in var/models: run `helpdesk train` or pass --model")
    return archives[-1]


def _cpu_ms(function, items: list) -> float:
    """Median CPU milliseconds of ``function(item)`` (process time: both cores count)."""
    for item in items[:5]:
        function(item)
    times = []
    for item in items:
        started = time.process_time()
        function(item)
        times.append((time.process_time() - started) * 1000)
    return round(statistics.median(times), 3)


def handover(args: argparse.Namespace) -> dict:
    from common.config import get_settings, shipped_model
    from nlu import datasets, handover
    from nlu.evaluation import load_any
    from nlu.rasa_component import BertIntentClassifier, to_rasa
    from retrieval.answers import load_answers_dir
    from retrieval.decision import Calibration
    from retrieval.encoder import Encoder
    from retrieval.onnx_encoder import OnnxSentenceModel, export_folder
    from retrieval.retriever import Retriever

    model = Path(args.model) if args.model else _newest_model()
    classifier = load_any(model)
    meta = classifier.meta
    print(f"[handover] {model.name}: classifier served as {meta.fast_format}, "
          f"{meta.max_length} tokens, encoder id {meta.encoder_id or '(fine-tuned)'}", flush=True)
    questions = datasets.load_banking77("test")
    texts, gold_intents = [e.text for e in questions], [e.intent for e in questions]
    if CLINC.is_file():
        oos = [t for t, _ in json.loads(CLINC.read_text())["oos_test"]]
        texts, gold_intents = texts + oos, gold_intents + [None] * len(oos)
    else:
        print(f"[handover] out-of-scope queries skipped: {CLINC} not found", flush=True)
    if args.smoke:
        texts, gold_intents = texts[::20], gold_intents[::20]

    settings = get_settings()
    export_dir = settings.index_dir / "encoders"
    encoder = Encoder(shipped_model(), export_dir=export_dir)
    encoder_id = meta.encoder_id or encoder.model_id  # a fine-tuned model: measured anyway
    if meta.encoder_id and meta.encoder_id != encoder.model_id:
        raise SystemExit(f"the model's encoder {meta.encoder_id} is not the retriever's "
                         f"{encoder.model_id}: nothing would be handed over")
    answers = load_answers_dir(ROOT / "data" / "answers")
    answer_of = {a.intent: a.id for a in answers if a.intent}
    retriever = Retriever(encoder, Calibration.load(settings.retriever_thresholds))
    retriever.replace_all(answers)

    config = BertIntentClassifier.get_default_config()
    reference = encoder.encode(texts, cache=False)
    cut = OnnxSentenceModel(export_folder(export_dir, encoder.model_id))
    cut._max_length = meta.max_length  # the same fp32 graph, cut where the classifier cuts
    cut_vectors = cut.encode(texts)

    rows: dict[str, list] = {"reference": [], "handover": [], "fp32_cut": []}
    cosines, whole_count = [], 0
    for i, text in enumerate(texts):
        prediction = classifier.predict_batch([text])[0]  # one at a time, as Rasa parses
        ranking = to_rasa(prediction, classifier, config)[1]
        vector = None
        if prediction.embedding is not None and prediction.whole_text:
            whole_count += 1
            vector = handover.unpack(handover.pack(encoder_id, prediction.embedding),
                                     encoder_id, encoder.dim)
            cosines.append(float(vector @ reference[i]))
        for name, query_vector in (("reference", reference[i]), ("handover", vector),
                                   ("fp32_cut", cut_vectors[i])):
            result = retriever.search(text, k=3, intent_ranking=ranking, vector=query_vector)
            rows[name].append((result.top.answer_id if result.top else None, result.decision))

    def recall(name: str) -> float:
        hits = [top == answer_of.get(g) for (top, _), g in zip(rows[name], gold_intents,
                                                              strict=True) if g in answer_of]
        return round(float(np.mean(hits)), 4)

    def right_answered(name: str) -> dict:
        answered = [(top, g) for (top, decision), g in zip(rows[name], gold_intents, strict=True)
                    if decision == "answer"]
        in_scope = [g for g in gold_intents if g in answer_of]
        oos_total = sum(g is None for g in gold_intents)
        return {"answered_in_scope": round(sum(g in answer_of for _, g in answered)
                                           / max(1, len(in_scope)), 4),
                "right_when_answered": round(float(np.mean([t == answer_of.get(g)
                                                            for t, g in answered
                                                            if g is not None] or [0])), 4),
                "oos_answered": round(sum(g is None for _, g in answered) / max(1, oos_total), 4)}

    def agreement(name: str) -> dict:
        pairs = list(zip(rows["reference"], rows[name], strict=True))
        return {"top_answer": round(float(np.mean([a[0] == b[0] for a, b in pairs])), 4),
                "decision": round(float(np.mean([a[1] == b[1] for a, b in pairs])), 4),
                "decisions_changed": int(sum(a[1] != b[1] for a, b in pairs))}

    sample = texts[:300]
    torch_encoder = Encoder(shipped_model())  # the eager model, for the speed comparison
    packed = handover.pack(encoder_id, reference[0])
    figures = {
        "model": model.name, "classifier_format": meta.fast_format,
        "classifier_max_length": meta.max_length, "questions": len(texts),
        "handed_over_share": round(whole_count / len(texts), 4),
        "cosine": {"p50": round(float(np.median(cosines)), 5),
                   "p1": round(float(np.percentile(cosines, 1)), 5),
                   "min": round(float(min(cosines)), 5)} if cosines else {},
        "recall_at_1": {name: recall(name) for name in rows},
        "decisions": {name: right_answered(name) for name in rows},
        "agreement_with_reference": {name: agreement(name) for name in ("handover", "fp32_cut")},
        "cpu_ms_per_question": {
            "encode_torch": _cpu_ms(lambda t: torch_encoder.encode([t], cache=False, urgent=True),
                                    sample),
            "encode_onnx": _cpu_ms(lambda t: encoder.encode([t], cache=False, urgent=True),
                                   sample),
            "unpack_handover": _cpu_ms(lambda _t: handover.unpack(packed, encoder_id,
                                                                  encoder.dim), sample),
        },
        "packed_bytes": len(json.dumps(packed)),
    }
    merge("turn", "handover", figures, smoke=args.smoke)
    print(json.dumps(figures, indent=1), flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["handover"], default="handover")
    parser.add_argument("--model", help="a Rasa model archive (default: newest in var/models)")
    parser.add_argument("--smoke", action="store_true", help="a small run, written apart")
    args = parser.parse_args()
    if args.part == "handover":
        handover(args)


if __name__ == "__main__":
    main()
