"""Answer, clarify or fall back: thresholds chosen on labelled queries, band of doubt included."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from retrieval.decision import (
    ANSWER,
    CLARIFY,
    FALLBACK,
    Calibration,
    Case,
    Thresholds,
    choose_thresholds,
    decide,
    worth,
)


def _mean_worth(cases: list[Case], thresholds: Thresholds) -> float:
    return float(np.mean([worth(c, decide(c.scores, thresholds)) for c in cases]))


def _cases(middle_in_scope: bool) -> list[Case]:
    """Sure questions score high and are right; out-of-scope ones score low; in the middle,
    questions whose right answer is second or third (or out-of-scope ones)."""
    sure = [Case((0.9, 0.5, 0.4), 0, True) for _ in range(40)]
    foreign = [Case((0.3, 0.28, 0.2), None, False) for _ in range(40)]
    middle = [Case((0.6, 0.35, 0.3), 1 if middle_in_scope else None, middle_in_scope)
              for _ in range(20)]
    return sure + foreign + middle


def test_a_band_of_doubt_asks_when_the_right_answer_is_among_the_top_ones() -> None:
    cases = _cases(middle_in_scope=True)
    thresholds, chosen_worth = choose_thresholds(cases)
    # The middle questions are further from their runner-up than any margin: only the band asks.
    assert thresholds.fallback <= 0.6 < thresholds.answer <= 0.9
    assert decide((0.6, 0.35, 0.3), thresholds) == CLARIFY
    assert decide((0.9, 0.5, 0.4), thresholds) == ANSWER
    assert decide((0.3, 0.28, 0.2), thresholds) == FALLBACK
    assert chosen_worth == _mean_worth(cases, thresholds)
    without_band = Thresholds(thresholds.fallback, thresholds.margin, thresholds.fallback)
    assert _mean_worth(cases, without_band) < chosen_worth


def test_no_band_when_the_doubtful_questions_are_out_of_scope() -> None:
    cases = _cases(middle_in_scope=False)
    thresholds, _ = choose_thresholds(cases)
    assert thresholds.answer <= thresholds.fallback  # no band: nothing is asked
    assert decide((0.6, 0.35, 0.3), thresholds) == FALLBACK
    assert decide((0.9, 0.5, 0.4), thresholds) == ANSWER


def test_the_fast_search_finds_the_best_point_of_its_grid() -> None:
    """Every margin at once by cumulative sums must agree with deciding each query."""
    rng = random.Random(7)
    cases = []
    for _ in range(300):
        in_scope = rng.random() < 0.6
        top = rng.uniform(0.3, 1.0) if in_scope else rng.uniform(0.0, 0.7)
        scores = (round(top, 3), round(top - rng.uniform(0, 0.15), 3), round(top - 0.3, 3))
        rank = rng.choice([0, 0, 0, 1, 2, None] if top > 0.6 else [0, 1, 2, None])
        cases.append(Case(scores, rank if in_scope else None, in_scope))
    cases.append(Case((0.8,), 0, True))  # a single hit has no runner-up
    cases.append(Case((), None, False))  # an empty index
    thresholds, chosen_worth = choose_thresholds(cases)
    assert abs(chosen_worth - _mean_worth(cases, thresholds)) < 1e-9
    tops = sorted({c.scores[0] for c in cases if c.scores})
    for fallback in tops[::25]:
        for answer in (fallback, *tops[::25]):
            for margin in (0.0, 0.02, 0.05, 0.1, 0.2):
                assert _mean_worth(cases, Thresholds(fallback, margin, answer)) \
                    <= chosen_worth + 1e-9


def test_thresholds_saved_before_the_band_load_without_one(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"boost": 0.5, "support": 0.2,
                                "without_ranking": {"fallback": 0.6, "margin": 0.04},
                                "with_ranking": {"fallback": 1.2, "margin": 0.0}}))
    calibration = Calibration.load(path)
    assert calibration.without_ranking == Thresholds(0.6, 0.04, 0.0)
    assert decide((0.65, 0.5), calibration.without_ranking) == ANSWER
    banded = Calibration(without_ranking=Thresholds(0.6, 0.04, 0.7))
    banded.save(path)
    assert Calibration.load(path).without_ranking == Thresholds(0.6, 0.04, 0.7)
    assert decide((0.65, 0.5), Calibration.load(path).without_ranking) == CLARIFY


def test_a_margin_asks_only_below_it() -> None:
    """A gap equal to a margin is answered, as ``decide`` does (exact in binary: 0.125)."""
    close = [Case((0.5, 0.375, 0.2), 1, True) for _ in range(30)]  # right answer second
    clear = [Case((0.5, 0.25, 0.2), 0, True) for _ in range(100)]
    thresholds, chosen_worth = choose_thresholds(close + clear)
    assert thresholds.margin == 0.13  # the smallest margin of the grid above the gap
    assert decide((0.5, 0.375), Thresholds(0.5, 0.125)) == ANSWER
    assert decide((0.5, 0.375, 0.2), thresholds) == CLARIFY
    assert chosen_worth == _mean_worth(close + clear, thresholds)


def test_a_hand_edited_threshold_that_is_no_number_fails_at_load(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"boost": 0.5, "without_ranking": {"fallback": "0.6", "margin": 0},
                                "with_ranking": {"fallback": 1.2, "margin": 0.0,
                                                 "answer": "high"}}))
    with pytest.raises(ValueError):
        Calibration.load(path)
    path.write_text(path.read_text().replace('"high"', "1.3"))
    assert Calibration.load(path).without_ranking == Thresholds(0.6, 0.0, 0.0)


def test_a_misspelt_threshold_key_fails_at_load_and_names_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"boost": 0.5, "without_ranking": {"fallback": 0.6, "margin": 0},
                                "with_ranking": {"fallback": 1.2, "margn": 0.1}}))
    with pytest.raises(ValueError, match=r"unknown threshold keys \['margn'\].*'margin'"):
        Calibration.load(path)
