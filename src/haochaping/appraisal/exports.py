"""The scores table with its Chinese headers, for the page and the Excel/CSV download."""

from __future__ import annotations

from typing import Any

from haochaping.appraisal.service import Scores
from haochaping.core.exports import Column, ColumnKind


def score_table(result: Scores) -> tuple[list[Column], list[list[Any]]]:
    """Rank, unit, each indicator's value and points, the bonus items and the score; the
    unscored units after the ranked ones."""
    indicators = result.scheme.indicators
    columns = [
        Column("排名", ColumnKind.COUNT),
        Column("单位代码"),
        Column("单位名称"),
        Column("计入统计的评价数", ColumnKind.COUNT),
    ]
    for ind in indicators:
        kind = ColumnKind.SCORE if ind["metric"] == "score" else ColumnKind.RATE
        columns.append(Column(f"{ind['weight_label']}（值）", kind))
        columns.append(
            Column(f"{ind['weight_label']}（得分，权重 {ind['weight']:.4f}）", ColumnKind.SCORE)
        )
    columns += [
        Column("指标得分", ColumnKind.SCORE),
        Column("弹性加减分", ColumnKind.SCORE),
        Column("总分", ColumnKind.SCORE),
    ]
    rows: list[list[Any]] = []
    for u in [*result.items, *result.unscored]:
        row: list[Any] = [u.rank, u.code, u.name, u.ratings]
        by_code = {c["code"]: c for c in u.contributions}
        for ind in indicators:
            c = by_code.get(ind["code"])
            row.append(u.values.get(ind["code"]))
            row.append(c["contribution"] if c else None)
        row += [u.indicator_score, u.adjustment, u.score]
        rows.append(row)
    return columns, rows
