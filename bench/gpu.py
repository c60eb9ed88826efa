"""The GPU tier, run on a borrowed GPU machine by ``bench/gpu.sh`` (see that file for how).

That machine has its own Python (3.12) with PyTorch, transformers and sentence-transformers,
no FAISS and no route to a model hub, and takes a small upload. So the bank's base checkpoint
travels as fp16 (``--pack``, here) and is widened back to fp32 there before training; our code
needs only pydantic beside what is installed there, carried as a wheel.

Measured there, written as one JSON file:
- the bank's classifier trained on CUDA (probe, then ``--epochs`` fine-tuning epochs) on
  BANKING77's training split: training time, and accuracy on its test split;
- the FAISS GPU index against the CPU one (the check of ``test_gpu_index_matches_cpu``) and a
  1M-vector speed table, when a FAISS with GPU support imports there; otherwise the reason.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
KEEP = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "vocab.txt", "modules.json", "sentence_bert_config.json",
        "config_sentence_transformers.json")


def pack(target: Path) -> None:
    """Here: the shipped checkpoint with fp16 weights (half the upload) into ``target``."""
    from safetensors.torch import load_file, save_file

    from common.config import shipped_model

    source = Path(shipped_model())
    target.mkdir(parents=True, exist_ok=True)
    weights = load_file(str(source / "model.safetensors"))
    save_file({k: v.half().contiguous() for k, v in weights.items()},
              str(target / "model.safetensors"))
    for name in KEEP:
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    pooling = source / "1_Pooling"
    if pooling.is_dir():
        shutil.copytree(pooling, target / "1_Pooling", dirs_exist_ok=True)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"packed {source.name} into {target} ({size / 2**20:.1f} MiB)")


def widen(packed: Path, target: Path) -> Path:
    """There: the carried checkpoint back in fp32, as it was trained from here."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(packed, target, dirs_exist_ok=True)
    weights = load_file(str(packed / "model.safetensors"))
    save_file({k: v.float().contiguous() for k, v in weights.items()},
              str(target / "model.safetensors"))
    return target


def train_on_cuda(base: Path, epochs: int, work: Path) -> dict:
    import torch

    from nlu import datasets
    from nlu.classifier import IntentClassifier
    from nlu.training import TrainParams, train

    train_set, test_set = datasets.load_banking77("train"), datasets.load_banking77("test")
    figures: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                     "train_examples": len(train_set), "test_examples": len(test_set)}
    for name, params in (("probe_only", TrainParams(base_model=str(base), epochs=0,
                                                    device="cuda")),
                         ("fine_tuned", TrainParams(base_model=str(base), epochs=epochs,
                                                    device="cuda"))):
        torch.cuda.synchronize()
        started = time.monotonic()
        result = train([e.text for e in train_set], [e.intent for e in train_set], params,
                       work / name, progress=False)
        torch.cuda.synchronize()
        seconds = time.monotonic() - started
        classifier = IntentClassifier.load(result.path, backend="torch", device="cuda")
        predicted = classifier.predict_batch([e.text for e in test_set])
        accuracy = sum(p.intent == e.intent for p, e in zip(predicted, test_set, strict=True))
        figures[name] = {"epochs": params.epochs, "train_seconds": round(seconds, 1),
                         "best_epoch": result.metrics.get("best_epoch"),
                         "test_accuracy": round(accuracy / len(test_set), 4)}
        print(f"[gpu] {name}: {json.dumps(figures[name])}", flush=True)
    return figures


def faiss_on_gpu() -> dict:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return {"skipped": "no FAISS on that machine; the GPU wheel (faiss-gpu-cu12) needs "
                           "CUDA 12's cuBLAS and runtime, several hundred MB, far beyond what "
                           "a call may carry (64 MiB)"}
    import faiss
    import numpy as np

    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        return {"skipped": "this FAISS has no GPU support"}
    from retrieval.index import VectorIndex, recall_at_k

    rng = np.random.default_rng(0)
    figures: dict = {}
    for size in (2_000, 1_000_000):
        vectors = rng.normal(size=(size, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = np.arange(size, dtype=np.int64) << 10
        queries = vectors[:1000]
        timings = {}
        results = {}
        for device in ("cpu", "gpu"):
            started = time.monotonic()
            index = VectorIndex.build(ids, vectors, 384, device=device)
            if device == "gpu":
                index.wait_for_mirror()
            built = time.monotonic() - started
            started = time.monotonic()
            results[device] = index.search(queries, 10)[1]
            timings[device] = {"build_s": round(built, 2),
                               "search_ms_per_query": round(
                                   (time.monotonic() - started) * 1000 / len(queries), 4)}
        figures[str(size)] = {**timings, "recall_at_10_gpu_vs_cpu": round(
            recall_at_k(results["gpu"], results["cpu"], None), 4)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pack", type=Path, help="here: write the fp16 checkpoint there")
    parser.add_argument("--weights", type=Path, help="there: the carried fp16 checkpoint")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu.json")
    args = parser.parse_args()
    if args.pack:
        pack(args.pack)
        return
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: bench/gpu.sh runs on a borrowed GPU machine")
    work = Path("/tmp/helpdesk-gpu")
    base = widen(args.weights, work / "base")
    figures = {"python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
               "classifier": train_on_cuda(base, args.epochs, work),
               "faiss": faiss_on_gpu()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(json.dumps(figures, indent=2), flush=True)


if __name__ == "__main__":
    main()
