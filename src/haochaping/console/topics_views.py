"""The dashboard's emerging complaint topics (新出现的投诉话题, issue 12): one table (the
accessible source, with the masked example comments) and the chart of the leading terms' weekly
counts, drawn by dashboard.js from the same numbers."""

from __future__ import annotations

from typing import Any

from haochaping.console.dashboard_views import Table
from haochaping.core.exports import Column, ColumnKind
from haochaping.topics.queries import Emerging

CHART_TOPICS = 5  # lines in the chart; the table lists them all


def week_label(start: Any) -> str:
    return f"{start.month}月{start.day}日起"


def emerging_table(found: Emerging) -> Table:
    """One row per emerging (item, term), highest score first, with its weekly counts."""
    weeks = [week_label(w) for w in found.week_starts]
    rows = [
        [
            f"{t.term}（{t.item_name}）",
            t.recent,
            t.before,
            t.score,
            *t.weekly,
            "；".join(e.text for e in t.examples),
        ]
        for t in found.items
    ]
    columns = [
        Column("词语（事项）"),
        Column(f"近{found.weeks}周", ColumnKind.COUNT),
        Column(f"此前{found.baseline_weeks}周", ColumnKind.COUNT),
        Column("显著性得分", ColumnKind.SCORE),
        *(Column(w, ColumnKind.COUNT) for w in weeks),
        Column("评价示例（已脱敏）"),
    ]
    note = (
        f"差评和基本满意评价中，近{found.weeks}周每条评价提及该词的比例显著高于此前"
        f"{found.baseline_weeks}周的词语（按事项，单侧二项检验，已按检验的 {found.tested} 个"
        f"词语校正，近期至少 {found.min_count} 条）；得分 = −lg p，越高越显著。"
    )
    return Table("emerging", "新出现的投诉话题", columns, rows, note=note)


def emerging_chart(found: Emerging) -> dict[str, Any] | None:
    """The weekly counts of the leading topics, one line each (dashboard.js type "trend")."""
    if not found.items:
        return None
    return {
        "key": "emerging",
        "type": "trend",
        "categories": [week_label(w) for w in found.week_starts],
        "series": [
            {"name": f"{t.term}（{t.item_name}）", "data": list(t.weekly)}
            for t in found.items[:CHART_TOPICS]
        ],
        "links": None,
    }
