"""Contrastive fine-tuning of the sentence encoder on labelled questions.

Pairs two questions of the same intent as (anchor, positive) and trains with in-batch
negatives: sentence-transformers' own multiple-negatives ranking loss in both directions
(anchor to positive and back), with transformers' linear warm-up and decay. Our part is the
batching: each batch holds at most one pair per intent, so no "negative" is secretly a
positive (sentence-transformers' trainer would need ``datasets`` and ``accelerate``, which this
environment does not install, so a short loop drives the library's loss). The result is saved
in sentence-transformers' ``save_pretrained`` layout, written under a temporary name and
renamed, and reloads with one call (``Encoder(path)`` or ``SentenceTransformer(path)``).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from common.files import staged_dir


@dataclass(frozen=True)
class FinetuneParams:
    epochs: int = 1
    batch_size: int = 64  # pairs per batch; at most one per intent
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    scale: float = 20.0  # cosine similarities are multiplied by this before the softmax
    max_length: int = 64
    seed: int = 0


def _batches(texts: Sequence[str], labels: Sequence[str], batch_size: int,
             rng: random.Random) -> list[list[tuple[str, str]]]:
    """Every text once as an anchor, with a random same-intent positive; one pair per intent."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in zip(texts, labels, strict=True):
        by_label[label].append(text)
    pairs = []
    for label, group in by_label.items():
        if len(group) < 2:
            continue
        for anchor in group:
            positive = anchor
            while positive == anchor:
                positive = rng.choice(group)
            pairs.append((label, anchor, positive))
    rng.shuffle(pairs)
    open_batches: list[tuple[set[str], list[tuple[str, str]]]] = []
    done = []
    for label, anchor, positive in pairs:
        for labels_in, batch in open_batches:
            if label not in labels_in:
                labels_in.add(label)
                batch.append((anchor, positive))
                if len(batch) == batch_size:
                    done.append(batch)
                    open_batches.remove((labels_in, batch))
                break
        else:
            open_batches.append(({label}, [(anchor, positive)]))
    done.extend(batch for _, batch in open_batches if len(batch) > 1)
    rng.shuffle(done)
    return done


def symmetric_loss(model: Any, scale: float) -> Any:
    """Multiple-negatives ranking in both directions: each anchor must find its positive among
    the batch's positives, and each positive its anchor among the anchors."""
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    return MultipleNegativesRankingLoss(model, scale=scale,
                                        directions=("query_to_doc", "doc_to_query"),
                                        partition_mode="per_direction")


def finetune(
    base: str, texts: Sequence[str], labels: Sequence[str], out_dir: Path,
    params: FinetuneParams = FinetuneParams(), progress: bool = True,
) -> Path:
    """Fine-tune ``base`` on the labelled texts and save it to ``out_dir``."""
    from sentence_transformers import SentenceTransformer
    from transformers import get_linear_schedule_with_warmup

    rng = random.Random(params.seed)
    torch.manual_seed(params.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(base, device=device)
    model.max_seq_length = params.max_length
    loss_fn = symmetric_loss(model, params.scale)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate)
    plans = [_batches(texts, labels, params.batch_size, rng) for _ in range(params.epochs)]
    total = sum(len(p) for p in plans)
    schedule = get_linear_schedule_with_warmup(
        optimizer, max(1, int(total * params.warmup_ratio)), total)
    model.train()
    started = time.monotonic()
    bar = tqdm(total=total, desc="fine-tuning encoder", disable=not progress)
    for plan in plans:
        for batch in plan:
            sides = []
            for side in zip(*batch, strict=True):
                features = model.tokenize(list(side))
                sides.append({k: v.to(device) if isinstance(v, torch.Tensor) else v
                              for k, v in features.items()})
            loss = loss_fn(sides, None)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.eval()
    with staged_dir(out_dir) as staging:
        model.save(str(staging))
        (staging / "FINETUNED.txt").write_text(
            f"base: {base}\nexamples: {len(texts)}\nparams: {params}\n"
            f"seconds: {time.monotonic() - started:.0f}\n", encoding="utf-8")
    return out_dir
