"""Clustering unanswered questions by meaning with the real encoder."""

from __future__ import annotations

import numpy as np

from retrieval.clusters import cluster_questions
from tests.conftest import JOINT_ACCOUNT, ONE_OFF_QUESTIONS, TRAVEL_INSURANCE


def test_two_topics_become_two_clusters_and_one_off_questions_none(encoder) -> None:
    texts = TRAVEL_INSURANCE + JOINT_ACCOUNT + ONE_OFF_QUESTIONS
    clusters = cluster_questions(encoder.encode(texts))
    assert len(clusters) == 2
    found = [{texts[i] for i in c.members} for c in clusters]
    joint = next(f for f in found if f <= set(JOINT_ACCOUNT))
    travel = next(f for f in found if f <= set(TRAVEL_INSURANCE))
    assert len(joint) >= 4 and len(travel) >= 4
    assert not any(set(ONE_OFF_QUESTIONS) & f for f in found)
    for cluster in clusters:  # the first member is the most central one
        vectors = encoder.encode([texts[i] for i in cluster.members])
        closeness = vectors @ cluster.centre
        assert closeness[0] == closeness.max()
        assert np.isclose(np.linalg.norm(cluster.centre), 1.0, atol=1e-5)


def test_a_topic_smaller_than_the_minimum_size_is_no_proposal(encoder) -> None:
    texts = TRAVEL_INSURANCE[:3] + ONE_OFF_QUESTIONS
    vectors = encoder.encode(texts)
    assert cluster_questions(vectors, min_size=4) == []
    [small] = cluster_questions(vectors, min_size=3)
    assert {texts[i] for i in small.members} == set(TRAVEL_INSURANCE[:3])


def test_too_few_questions_give_no_clusters(encoder) -> None:
    assert cluster_questions(np.zeros((0, encoder.dim), dtype=np.float32)) == []
    assert cluster_questions(encoder.encode(["Do you offer travel insurance?"])) == []
