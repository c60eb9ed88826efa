"""Rasa's default NLU pipeline (DIET), as a Rasa user writes it in ``config.yml``: the baseline
of the intent benchmark (NLU alone) and of the turn's cost (with its ResponseSelector answering
from responses). One text, so that both baselines are the same pipeline."""

from __future__ import annotations


def stock_config(epochs: int, response_selector: bool = False,
                 policies: tuple[str, ...] = ()) -> str:
    """``config.yml`` of Rasa's default DIET pipeline trained for ``epochs``."""
    lines = ["recipe: default.v1", "language: en", "assistant_id: bench", "pipeline:",
             "  - name: WhitespaceTokenizer", "  - name: RegexFeaturizer",
             "  - name: LexicalSyntacticFeaturizer", "  - name: CountVectorsFeaturizer",
             "  - name: CountVectorsFeaturizer", "    analyzer: char_wb", "    min_ngram: 1",
             "    max_ngram: 4", "  - name: DIETClassifier", f"    epochs: {epochs}",
             "    random_seed: 42"]
    if response_selector:
        lines += ["  - name: EntitySynonymMapper", "  - name: ResponseSelector",
                  f"    epochs: {epochs}", "    random_seed: 42",
                  "  - name: FallbackClassifier", "    threshold: 0.3"]
    lines += ["policies:" + ("" if policies else " []")]
    lines += [f"  - name: {policy}" for policy in policies]
    return "\n".join(lines) + "\n"
