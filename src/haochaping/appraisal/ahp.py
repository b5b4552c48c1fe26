"""The analytic hierarchy process (层次分析法, AHP): weights from a pairwise judgement matrix.

Pure Python, no database and no HTTP. A judgement a_ij on Saaty's 1–9 scale says how much more
indicator i matters than indicator j (1 equal, 3 moderately, 5 strongly, 7 very strongly,
9 extremely; 2, 4, 6, 8 between); a_ji = 1 / a_ij and a_ii = 1.

- Weights: the principal (Perron) eigenvector of the matrix, normalised to sum 1, by power
  iteration. numpy is not a dependency of the package and a judgement matrix has at most
  `MAX_SIZE` rows, so a few hundred multiplications of a 15 × 15 matrix settle the vector to
  1e-12; a positive matrix has one simple dominant eigenvalue (Perron–Frobenius), so the
  iteration converges from the all-ones start.
- λmax = the mean over i of (A·w)_i / w_i; CI = (λmax − n) / (n − 1); CR = CI / RI(n) with
  Saaty's random index RI (Saaty 1980, The Analytic Hierarchy Process, table 1.7). CR < 0.1 is
  acceptable; n ≤ 2 is always consistent (CR 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

# Saaty's random consistency index by matrix size (Saaty 1980).
RANDOM_INDEX: dict[int, float] = {
    1: 0.0,
    2: 0.0,
    3: 0.58,
    4: 0.90,
    5: 1.12,
    6: 1.24,
    7: 1.32,
    8: 1.41,
    9: 1.45,
    10: 1.49,
    11: 1.51,
    12: 1.48,
    13: 1.56,
    14: 1.57,
    15: 1.59,
}
MAX_SIZE = max(RANDOM_INDEX)
CR_LIMIT = 0.1
# The values a judgement may take: 1–9 and their reciprocals.
SCALE: tuple[Fraction, ...] = tuple(
    sorted({Fraction(k) for k in range(1, 10)} | {Fraction(1, k) for k in range(2, 10)})
)
_TOLERANCE = 0.001  # 0.333 stands for 1/3; 0.14 does not stand for 1/7 (0.142857)


class JudgementError(ValueError):
    """A matrix that is not a judgement matrix; `problem` is a stable code, `cells` the
    offending positions (row, column), 0-based."""

    def __init__(self, problem: str, message: str, cells: list[tuple[int, int]]) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
        self.cells = cells


@dataclass(frozen=True, slots=True)
class Result:
    """Weights (sum 1), λmax, CI and CR of one judgement matrix."""

    weights: list[float]
    lambda_max: float
    ci: float
    cr: float

    @property
    def consistent(self) -> bool:
        return self.cr < CR_LIMIT


def parse_value(value: object) -> Fraction | None:
    """A judgement as a fraction on the scale: a number (3, 0.2, 0.333) or a text ("1/3",
    "5"); None when it is not one of the 17 scale values."""
    if isinstance(value, bool):
        return None
    number: float
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:
                top, bottom = text.split("/", 1)
                number = int(top.strip()) / int(bottom.strip())
            else:
                number = float(text)
        except (ValueError, ZeroDivisionError):
            return None
    else:
        return None
    for candidate in SCALE:
        if abs(number - float(candidate)) <= _TOLERANCE * max(1.0, float(candidate)):
            return candidate
    return None


def check(matrix: list[list[object]], n: int) -> list[list[Fraction]]:
    """The matrix as fractions, or `JudgementError`: shape (n × n), scale, diagonal,
    reciprocity."""
    if len(matrix) != n or any(not isinstance(row, list) or len(row) != n for row in matrix):
        raise JudgementError("judgements_shape", f"判断矩阵应为 {n} 行 {n} 列", [])
    parsed: list[list[Fraction]] = []
    bad: list[tuple[int, int]] = []
    for i, row in enumerate(matrix):
        out = []
        for j, value in enumerate(row):
            f = parse_value(value)
            if f is None:
                bad.append((i, j))
                f = Fraction(1)
            out.append(f)
        parsed.append(out)
    if bad:
        raise JudgementError("judgement_scale", "判断值须为 1–9 标度或其倒数（如 3、1/3）", bad)
    diagonal = [(i, i) for i in range(n) if parsed[i][i] != 1]
    if diagonal:
        raise JudgementError("judgements_diagonal", "判断矩阵对角线上的值须为 1", diagonal)
    unpaired = [
        (i, j) for i in range(n) for j in range(i + 1, n) if parsed[i][j] * parsed[j][i] != 1
    ]
    if unpaired:
        raise JudgementError(
            "judgements_not_reciprocal", "判断矩阵须互为倒数：a[j][i] = 1 / a[i][j]", unpaired
        )
    return parsed


def weigh(matrix: list[list[Fraction]]) -> Result:
    """Principal-eigenvector weights and the consistency of a checked judgement matrix."""
    n = len(matrix)
    a = [[float(v) for v in row] for row in matrix]
    w = [1.0 / n] * n
    for _ in range(1000):
        product = [sum(a[i][j] * w[j] for j in range(n)) for i in range(n)]
        total = sum(product)
        nxt = [p / total for p in product]
        settled = max(abs(x - y) for x, y in zip(nxt, w, strict=True)) < 1e-13
        w = nxt
        if settled:
            break
    aw = [sum(a[i][j] * w[j] for j in range(n)) for i in range(n)]
    lambda_max = sum(aw[i] / w[i] for i in range(n)) / n
    ci = (lambda_max - n) / (n - 1) if n > 2 else 0.0
    ri = RANDOM_INDEX[n]
    cr = ci / ri if ri else 0.0
    # Rounding noise of a perfectly consistent matrix is no inconsistency.
    ci, cr = max(ci, 0.0), max(cr, 0.0)
    return Result(weights=w, lambda_max=lambda_max, ci=ci, cr=cr)
