"""Normalisation and ranking by hand, without a database: direction-aware min–max, a value
without a denominator, equal values, ties."""

from __future__ import annotations

import pytest

from haochaping.appraisal.models import AppraisalScheme
from haochaping.appraisal.service import UnitScore, normalise, score_units


def test_normalise_both_directions():
    assert normalise(0.75, 0.5, 1.0, "higher") == 0.5
    assert normalise(0.75, 0.5, 1.0, "lower") == 0.5
    assert normalise(0.6, 0.5, 1.0, "lower") == pytest.approx(0.8)  # less is better
    assert normalise(None, 0.5, 1.0, "higher") == 1.0  # nothing to judge: full marks
    assert normalise(0.7, 0.7, 0.7, "lower") == 1.0  # no spread


def test_scores_with_a_lower_is_better_indicator_and_a_missing_value():
    scheme = AppraisalScheme(
        indicators=[
            {"code": "B", "metric": "bad_rate", "direction": "lower", "weight": 0.6},
            {"code": "R", "metric": "rectified_on_time_rate", "direction": "higher",
             "weight": 0.4},
        ]
    )  # fmt: skip
    units = [
        UnitScore("U1", "一", 10, {"B": 0.10, "R": 0.5}, 0.0),
        UnitScore("U2", "二", 10, {"B": 0.30, "R": 1.0}, 1.5),
        UnitScore("U3", "三", 10, {"B": 0.20, "R": None}, 0.0),  # no bad review to rectify
    ]
    score_units(scheme, units)
    # U1: 100 × (0.6 × 1 + 0.4 × 0) = 60; U2: 100 × (0.6 × 0 + 0.4 × 1) + 1.5 = 41.5;
    # U3: 100 × (0.6 × 0.5 + 0.4 × 1) = 70.
    assert [(u.code, u.rank, u.score) for u in units] == [
        ("U3", 1, pytest.approx(70.0)),
        ("U1", 2, pytest.approx(60.0)),
        ("U2", 3, pytest.approx(41.5)),
    ]
    u3 = units[0]
    assert [(c["code"], c["normalised"], c["contribution"]) for c in u3.contributions] == [
        ("B", 0.5, 30.0),
        ("R", 1.0, 40.0),
    ]
