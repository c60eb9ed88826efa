"""BM25 over the indexed texts, updated per text so that it follows live edits like FAISS does.

Plain dictionaries of postings: a helpdesk's answer base (thousands of texts) is small, and
an incremental structure avoids refitting a vectoriser on every edit.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

_TOKEN = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    "a an and are as at be but by can do does for from have how i if in is it me my of on or "
    "so that the their there this to was what when where which who why will with you your".split()
)


def tokenize(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOP]


class BM25:
    """Okapi BM25 with add/remove by document id."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._postings: dict[str, dict[int, int]] = defaultdict(dict)
        self._lengths: dict[int, int] = {}
        self._terms: dict[int, list[str]] = {}
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def add(self, doc_id: int, text: str) -> None:
        self.remove(doc_id)
        tokens = tokenize(text)
        counts = Counter(tokens)
        for term, count in counts.items():
            self._postings[term][doc_id] = count
        self._lengths[doc_id] = len(tokens)
        self._terms[doc_id] = list(counts)
        self._total_length += len(tokens)

    def remove(self, doc_id: int) -> None:
        if doc_id not in self._lengths:
            return
        for term in self._terms.pop(doc_id):
            postings = self._postings[term]
            postings.pop(doc_id, None)
            if not postings:
                del self._postings[term]
        self._total_length -= self._lengths.pop(doc_id)

    def scores(self, query: str) -> dict[int, float]:
        """BM25 score of every document sharing a term with the query."""
        count = len(self._lengths)
        if not count:
            return {}
        average = max(self._total_length / count, 1e-9)
        result: dict[int, float] = defaultdict(float)
        for term in set(tokenize(query)):
            postings = self._postings.get(term)
            if not postings:
                continue
            idf = math.log(1 + (count - len(postings) + 0.5) / (len(postings) + 0.5))
            for doc_id, freq in postings.items():
                norm = freq + self.k1 * (1 - self.b + self.b * self._lengths[doc_id] / average)
                result[doc_id] += idf * freq * (self.k1 + 1) / norm
        return result
