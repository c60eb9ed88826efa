"""Choosing the proposed answers' clustering: distance threshold and minimum cluster size.

An inbox of unanswered questions looks like a few topics asked again and again among many
one-off questions. This sweep builds such inboxes from BANKING77's held-out questions (which
no model trained on): ``--topics`` intents with ``--per-topic`` questions each, plus
``--noise`` questions of other intents (at most two per intent, so they should form no
proposal), encodes them with the retriever's encoder and clusters them with every threshold
and minimum size of the grid. Per setting, over ``--seeds`` inboxes:

- topics found: the share of topics that are the majority of at least one proposal;
- purity: the share of proposal members whose intent is their proposal's majority intent;
- splits: proposals per found topic (1 is ideal: one topic, one proposal);
- noise kept: the share of one-off questions that ended up in some proposal.

The chosen setting is the one that finds most topics with purity of at least ``--purity``
and splits of at most ``--max-splits``; ``retrieval/clusters.py`` holds it.

    .venv/bin/python bench/proposals.py [--seeds 3] [--smoke]

Writes bench/results/proposals.json and prints a table.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results_file import add_smoke_flag, merge  # noqa: E402

THRESHOLDS = [0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65]
MIN_SIZES = [2, 3, 4, 5]


def _inbox(examples: list, topics: int, per_topic: int, noise: int,
           seed: int) -> tuple[list[str], list[str], set[str]]:
    rng = random.Random(seed)
    by_intent: dict[str, list[str]] = {}
    for example in examples:
        by_intent.setdefault(example.intent, []).append(example.text)
    intents = sorted(by_intent)
    rng.shuffle(intents)
    chosen, others = intents[:topics], intents[topics:]
    texts, labels = [], []
    for intent in chosen:
        for text in rng.sample(by_intent[intent], min(per_topic, len(by_intent[intent]))):
            texts.append(text)
            labels.append(intent)
    pool = [(intent, text) for intent in others for text in by_intent[intent][:2]]
    rng.shuffle(pool)
    for intent, text in pool[:noise]:
        texts.append(text)
        labels.append(intent)
    return texts, labels, set(chosen)


def _score(clusters: list, labels: list[str], topics: set[str]) -> dict[str, float]:
    members = kept_noise = 0
    pure = 0
    majorities: Counter[str] = Counter()
    for cluster in clusters:
        intents = Counter(labels[i] for i in cluster.members)
        majority, count = intents.most_common(1)[0]
        majorities[majority] += 1
        pure += count
        members += cluster.size
        kept_noise += sum(1 for i in cluster.members if labels[i] not in topics)
    found = [t for t in topics if majorities[t]]
    noise_total = sum(1 for label in labels if label not in topics)
    return {
        "topics_found": len(found) / len(topics),
        "purity": pure / members if members else 1.0,
        "splits": sum(majorities[t] for t in found) / len(found) if found else 0.0,
        "noise_kept": kept_noise / noise_total if noise_total else 0.0,
        "proposals": float(len(clusters)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=20)
    parser.add_argument("--per-topic", type=int, default=12)
    parser.add_argument("--noise", type=int, default=80)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--purity", type=float, default=0.9)
    parser.add_argument("--max-splits", type=float, default=1.25)
    add_smoke_flag(parser)
    args = parser.parse_args()
    if args.smoke:
        args.topics, args.per_topic, args.noise, args.seeds = 4, 5, 10, 1

    from common.config import get_settings
    from nlu import datasets
    from retrieval.clusters import DISTANCE_THRESHOLD, MIN_SIZE, cluster_questions
    from retrieval.encoder import load_encoder

    encoder = load_encoder(get_settings().encoder_models)
    examples = datasets.load_banking77("test")
    inboxes = []
    for seed in range(args.seeds):
        texts, labels, topics = _inbox(examples, args.topics, args.per_topic, args.noise, seed)
        inboxes.append((encoder.encode(texts, cache=False), labels, topics))
    rows = []
    for threshold in THRESHOLDS:
        for min_size in MIN_SIZES:
            started = time.perf_counter()
            scores = [_score(cluster_questions(vectors, threshold, min_size), labels, topics)
                      for vectors, labels, topics in inboxes]
            seconds = (time.perf_counter() - started) / len(inboxes)
            mean = {k: round(sum(s[k] for s in scores) / len(scores), 3) for k in scores[0]}
            rows.append({"threshold": threshold, "min_size": min_size, **mean,
                         "cluster_seconds": round(seconds, 4)})
    eligible = [r for r in rows if r["purity"] >= args.purity
                and r["splits"] <= args.max_splits] or rows
    best = max(eligible, key=lambda r: (r["topics_found"], -r["noise_kept"], r["purity"]))
    current = next(r for r in rows if r["threshold"] == DISTANCE_THRESHOLD
                   and r["min_size"] == MIN_SIZE)
    print(f"{'threshold':>9} {'min':>3} {'topics':>7} {'purity':>7} {'splits':>7} "
          f"{'noise':>6} {'props':>6}")
    for r in rows:
        mark = " <- chosen" if r is best else (" <- in use" if r is current else "")
        print(f"{r['threshold']:>9} {r['min_size']:>3} {r['topics_found']:>7.3f} "
              f"{r['purity']:>7.3f} {r['splits']:>7.2f} {r['noise_kept']:>6.3f} "
              f"{r['proposals']:>6.1f}{mark}")
    merge("proposals", "sweep", {
        "inbox": {"topics": args.topics, "per_topic": args.per_topic, "noise": args.noise,
                  "seeds": args.seeds, "source": "BANKING77 test split"},
        "encoder": encoder.model_id, "rule": {"purity_at_least": args.purity,
                                              "splits_at_most": args.max_splits},
        "chosen": {"threshold": best["threshold"], "min_size": best["min_size"]},
        "in_use": {"threshold": DISTANCE_THRESHOLD, "min_size": MIN_SIZE},
        "grid": rows}, smoke=args.smoke)


if __name__ == "__main__":
    main()
