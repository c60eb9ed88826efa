"""Questions the bot could not answer, grouped by meaning into proposed answers.

Agglomerative clustering with average linkage over cosine distances of the retriever's own
embeddings: no number of clusters to guess (a distance threshold cuts the tree instead), and
a question unlike any other stays alone rather than being forced into a topic, which is what
a proposal needs (the installed scikit-learn has no HDBSCAN). The threshold and the minimum
size are chosen on labelled questions by ``bench/proposals.py``; ``docs/console.md`` states
the values and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DISTANCE_THRESHOLD = 0.3
MIN_SIZE = 4


@dataclass(frozen=True)
class Cluster:
    """Indices of the input questions, the most central first, and their mean direction."""

    members: list[int]
    centre: np.ndarray

    @property
    def size(self) -> int:
        return len(self.members)


def cluster_questions(vectors: np.ndarray, distance_threshold: float = DISTANCE_THRESHOLD,
                      min_size: int = MIN_SIZE) -> list[Cluster]:
    """Clusters of at least ``min_size`` among L2-normalised ``vectors``, largest first."""
    from sklearn.cluster import AgglomerativeClustering

    if len(vectors) < max(2, min_size):
        return []
    model = AgglomerativeClustering(n_clusters=None, affinity="cosine", linkage="average",
                                    distance_threshold=distance_threshold)
    labels = model.fit_predict(vectors)
    clusters = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < min_size:
            continue
        centre = vectors[members].mean(axis=0)
        centre = centre / (np.linalg.norm(centre) or 1.0)
        order = np.argsort(-(vectors[members] @ centre), kind="stable")
        clusters.append(Cluster([int(i) for i in members[order]], centre.astype(np.float32)))
    clusters.sort(key=lambda c: (-c.size, c.members[0]))
    return clusters
