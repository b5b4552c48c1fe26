"""AHP weights and consistency against published worked examples (no database)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from haochaping.appraisal import ahp

# Wikipedia, "Analytic hierarchy process – leader example" (criteria of choosing a leader:
# Experience, Education, Charisma, Age): priorities .547, .127, .270, .056, CR 0.044
# (https://en.wikipedia.org/wiki/Analytic_hierarchy_process_–_leader_example).
LEADER = [
    [1, 4, 3, 7],
    ["1/4", 1, "1/3", 3],
    ["1/3", 3, 1, 5],
    ["1/7", "1/3", "1/5", 1],
]
# Saaty (1977), "A scaling method for priorities in hierarchical structures", J. Math.
# Psychology 15(3), 234–281, the light-intensity experiment (relative brightness of four
# chairs at increasing distance from a lamp): eigenvector .61, .24, .10, .05 and λmax = 4.39,
# so CI = 0.13 and CR = 0.13 / 0.90 = 0.14 — above Saaty's 0.1: refused by the appraisal.
LIGHT = [
    [1, 5, 6, 7],
    ["1/5", 1, 4, 6],
    ["1/6", "1/4", 1, 4],
    ["1/7", "1/6", "1/4", 1],
]


def test_leader_example_weights_and_cr():
    result = ahp.weigh(ahp.check(LEADER, 4))
    assert [round(w, 3) for w in result.weights] == pytest.approx(
        [0.547, 0.127, 0.270, 0.056], abs=0.0015
    )
    assert sum(result.weights) == pytest.approx(1.0)
    assert round(result.cr, 3) == pytest.approx(0.044, abs=0.001)
    assert result.consistent


def test_saaty_light_intensity_is_inconsistent():
    result = ahp.weigh(ahp.check(LIGHT, 4))
    assert [round(w, 2) for w in result.weights] == pytest.approx(
        [0.61, 0.24, 0.10, 0.05], abs=0.011
    )
    assert result.lambda_max == pytest.approx(4.39, abs=0.005)
    assert result.ci == pytest.approx(0.13, abs=0.005)
    assert result.cr == pytest.approx(0.14, abs=0.006)
    assert not result.consistent


def test_a_consistent_matrix_gives_back_its_weights_with_cr_zero():
    # a_ij = w_i / w_j for w = (4, 2, 1, 1) / 8: perfectly consistent, λmax = n.
    w = [Fraction(4), Fraction(2), Fraction(1), Fraction(1)]
    matrix: list[list[object]] = [[str(a / b) for b in w] for a in w]
    result = ahp.weigh(ahp.check(matrix, 4))
    assert result.weights == pytest.approx([0.5, 0.25, 0.125, 0.125], abs=1e-9)
    assert result.lambda_max == pytest.approx(4.0, abs=1e-9)
    assert result.cr == pytest.approx(0.0, abs=1e-9)


def test_random_index_is_saatys():
    assert [ahp.RANDOM_INDEX[n] for n in range(1, 11)] == [
        0.0,
        0.0,
        0.58,
        0.90,
        1.12,
        1.24,
        1.32,
        1.41,
        1.45,
        1.49,
    ]


def test_two_indicators_are_always_consistent():
    result = ahp.weigh(ahp.check([[1, 3], ["1/3", 1]], 2))
    assert result.weights == pytest.approx([0.75, 0.25])
    assert result.cr == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3, Fraction(3)), ("1/3", Fraction(1, 3)), (0.333, Fraction(1, 3)), (0.2, Fraction(1, 5))],
)
def test_scale_values(value, expected):
    assert ahp.parse_value(value) == expected


@pytest.mark.parametrize("value", [10, 0, -3, "1/10", 2.5, "abc", True, None, 0.14])
def test_off_scale_values(value):
    assert ahp.parse_value(value) is None


@pytest.mark.parametrize(
    ("matrix", "problem"),
    [
        ([[1, 3]], "judgements_shape"),
        ([[1, 3], ["1/3", 1], [1, 1]], "judgements_shape"),
        ([[1, 11], ["1/3", 1]], "judgement_scale"),
        ([[2, 3], ["1/3", 1]], "judgements_diagonal"),
        ([[1, 3], [3, 1]], "judgements_not_reciprocal"),
    ],
)
def test_malformed_matrices(matrix, problem):
    with pytest.raises(ahp.JudgementError) as err:
        ahp.check(matrix, 2)
    assert err.value.problem == problem
