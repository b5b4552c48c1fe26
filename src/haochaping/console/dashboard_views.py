"""The dashboard's and the rankings' tables: the figures of the statistics put into rows with
Chinese headers, once, for the page (the accessible source), the charts (drawn from the same
rows) and the downloads (the same rows again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from haochaping.core.exports import Column, ColumnKind, cell_text
from haochaping.evaluations.choices import LEVEL_LABELS

COUNT, RATE, SCORE, SIGNED = ColumnKind.COUNT, ColumnKind.RATE, ColumnKind.SCORE, ColumnKind.SIGNED
TOP_REASONS = 10


@dataclass
class Table:
    """One table of a page: its rows are raw values in the order of its columns; `links` holds
    the drill-down address of each row (or None)."""

    key: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]
    chart: str | None = None  # "bar" | "line" | "pie" | "funnel" (None: a table only)
    chart_columns: tuple[int, ...] = (1,)  # the value columns the chart draws
    links: list[str | None] = field(default_factory=list)
    note: str = ""
    header: int = 0  # the column that names a row (its row header)

    def cells(self) -> list[list[str]]:
        """The rows as people read them (the page and the CSV show the same text)."""
        return [
            [cell_text(v, c.kind) for v, c in zip(row, self.columns, strict=True)]
            for row in self.rows
        ]

    def row_links(self) -> list[str | None]:
        return self.links or [None] * len(self.rows)

    def lines(self) -> list[tuple[list[tuple[str, str]], str | None]]:
        """Each row's cells as read with their CSS class, and its drill-down link."""
        numeric = [c.kind is not ColumnKind.TEXT for c in self.columns]
        out = []
        for cells, link in zip(self.cells(), self.row_links(), strict=True):
            row = []
            for text, num in zip(cells, numeric, strict=True):
                classes = ["num"] if num else []
                if text.startswith(("↑", "↓")):  # a rank change: said in words, coloured too
                    classes += ["change", "change--up" if text[0] == "↑" else "change--down"]
                row.append((text, " ".join(classes)))
            out.append((row, link))
        return out

    def chart_data(self) -> dict[str, Any] | None:
        """What dashboard.js draws: the first column as the categories, the chart's columns as
        series (rates as percentages), and the drill-down links."""
        if not self.chart or not self.rows:
            return None
        series = []
        for i in self.chart_columns:
            col = self.columns[i]
            scale = 100 if col.kind is RATE else 1
            series.append(
                {
                    "name": col.label + ("（%）" if col.kind is RATE else ""),
                    "data": [
                        None if row[i] is None else round(float(row[i]) * scale, 2)
                        for row in self.rows
                    ],
                }
            )
        return {
            "key": self.key,
            "type": self.chart,
            "categories": [str(row[0]) for row in self.rows],
            "series": series,
            "links": self.row_links() if self.links else None,
        }


def share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


# --- the dashboard -------------------------------------------------------------------------

KPIS = [
    ("total", "评价数", COUNT),
    ("good_rate", "好评率", RATE),
    ("bad_rate", "差评率", RATE),
    ("score", "平均分", SCORE),
    ("default_ratings", "默认好评", COUNT),
    ("invalid", "无效评价", COUNT),
]
FUNNEL = [
    ("opened", "开单"),
    ("verified_on_time", "按时核实"),
    ("rectified_on_time", "按时整改"),
    ("called_back", "已回访"),
    ("callback_satisfied", "回访满意"),
    ("supervised", "督办中"),
    ("overdue_open", "当前逾期"),
]
RATES = [
    ("rectified_on_time_rate", "按时整改率"),
    ("callback_rate", "回访率"),
    ("callback_satisfied_rate", "回访满意率"),
]


def kpi_cards(summary: dict[str, Any]) -> list[dict[str, str]]:
    """The KPI cards: label and value as people read them."""
    return [
        {"key": key, "label": label, "value": cell_text(summary.get(key), kind)}
        for key, label, kind in KPIS
    ]


def summary_table(summary: dict[str, Any]) -> Table:
    """Every headline figure as one table (指标, 数值), for the download."""
    rows: list[list[Any]] = [[label, summary.get(key)] for key, label, _ in KPIS]
    rows += [[label, summary.get(key)] for key, label in FUNNEL]
    rows += [[label, summary.get(key)] for key, label in RATES]
    # The values of one column have different kinds: the download shows them as read.
    kinds = [kind for *_, kind in KPIS] + [COUNT] * len(FUNNEL) + [RATE] * len(RATES)
    text_rows: list[list[Any]] = [
        [label, cell_text(value, kind)] for (label, value), kind in zip(rows, kinds, strict=True)
    ]
    return Table("summary", "总体指标", [Column("指标"), Column("数值")], text_rows)


def funnel_table(summary: dict[str, Any]) -> Table:
    """The bad-review closed loop, step by step, with the share of the work orders opened."""
    opened = int(summary.get("opened") or 0)
    rows: list[list[Any]] = [
        [label, int(summary.get(key) or 0), share(int(summary.get(key) or 0), opened)]
        for key, label in FUNNEL
    ]
    return Table(
        "funnel",
        "差评整改情况",
        [Column("环节"), Column("工单数", COUNT), Column("占开单比例", RATE)],
        rows,
        chart="bar",
        note="督办中、当前逾期为统计时段内开单、目前仍在该状态的工单。",
    )


def trend_table(items: list[dict[str, Any]]) -> Table:
    rows = [
        [i["period"], i["total"], i.get("good_rate"), i.get("bad"), i.get("score")] for i in items
    ]
    return Table(
        "trend",
        "评价趋势",
        [
            Column("时段"),
            Column("评价数", COUNT),
            Column("好评率", RATE),
            Column("差评数", COUNT),
            Column("平均分", SCORE),
        ],
        rows,
        chart="line",
        chart_columns=(1, 3),
    )


def _key(row: dict[str, Any]) -> str:
    return str(row.get("code", row.get("key", "")))


def _name(row: dict[str, Any]) -> str:
    return str(row.get("name") or row.get("label") or _key(row))


def mix_table(key: str, title: str, label: str, rows: list[dict[str, Any]]) -> Table:
    """A breakdown by level or channel: count and share, with the rates of each group."""
    total = sum(int(r["total"]) for r in rows)
    out = [
        [_name(r), r["total"], share(int(r["total"]), total), r.get("good_rate"), r.get("score")]
        for r in rows
    ]
    return Table(
        key,
        title,
        [
            Column(label),
            Column("评价数", COUNT),
            Column("占比", RATE),
            Column("好评率", RATE),
            Column("平均分", SCORE),
        ],
        out,
        chart="pie",
    )


def level_table(rows: list[dict[str, Any]]) -> Table:
    # A level's 好评率 is 100% or 0% by definition: the table shows count and share only.
    total = sum(int(r["total"]) for r in rows)
    out = [[_name(r), r["total"], share(int(r["total"]), total)] for r in rows]
    return Table(
        "levels",
        "评价等级分布",
        [Column("评价等级"), Column("评价数", COUNT), Column("占比", RATE)],
        out,
        chart="pie",
    )


def channel_table(rows: list[dict[str, Any]]) -> Table:
    return mix_table("channels", "评价渠道分布", "评价渠道", rows)


def reason_table(rows: list[dict[str, Any]]) -> Table:
    """The reasons given most often with bad ratings (a reason tag belongs to one level, so
    its bad count is the number of bad ratings that chose it)."""
    bad = [r for r in rows if int(r.get("bad") or 0) > 0]
    top = sorted(bad, key=lambda r: (-int(r["bad"]), _key(r)))[:TOP_REASONS]
    out = [[_name(r), _key(r), r["bad"]] for r in top]
    return Table(
        "reasons",
        "差评主要原因",
        [Column("原因"), Column("代码"), Column("次数", COUNT)],
        out,
        chart="bar",
        chart_columns=(2,),
        note=f"差评所选原因标签，按次数取前 {TOP_REASONS} 项；一条差评可选多项。",
    )


def child_table(
    rows: list[dict[str, Any]], tier_label: str, link: Callable[[dict[str, Any]], str | None]
) -> Table:
    """The next tier down: one row per child node, with its link one tier further down."""
    out = [
        [_name(r), _key(r), r["total"], r.get("good_rate"), r.get("bad_rate"), r.get("score")]
        for r in rows
    ]
    return Table(
        "children",
        f"下级{tier_label}对比" if tier_label else "下级对比",
        [
            Column(tier_label or "名称"),
            Column("编码"),
            Column("评价数", COUNT),
            Column("好评率", RATE),
            Column("差评率", RATE),
            Column("平均分", SCORE),
        ],
        out,
        chart="bar",
        chart_columns=(2,),
        links=[link(r) for r in rows],
    )


# --- the rankings --------------------------------------------------------------------------


def rank_change_text(change: int | None) -> str:
    """The move since the previous period, in words as well as arrows (not colour alone)."""
    if change is None:
        return "新上榜"
    if change > 0:
        return f"↑ 上升{change}位"
    if change < 0:
        return f"↓ 下降{-change}位"
    return "— 持平"


def ranking_table(items: list[dict[str, Any]], tier_label: str) -> Table:
    out = [
        [
            i["rank"],
            _name(i),
            _key(i),
            i["total"],
            i.get("good_rate"),
            i.get("bad_rate"),
            i.get("score"),
            rank_change_text(i.get("rank_change")),
        ]
        for i in items
    ]
    return Table(
        "ranked",
        f"{tier_label}排名",
        [
            Column("名次", COUNT),
            Column(tier_label),
            Column("编码"),
            Column("评价数", COUNT),
            Column("好评率", RATE),
            Column("差评率", RATE),
            Column("得分", SCORE),
            Column("名次变化"),
        ],
        out,
        header=1,
    )


def unranked_table(items: list[dict[str, Any]], tier_label: str, min_sample: int) -> Table:
    out = [[_name(i), _key(i), i["total"], i.get("good_rate"), i.get("score")] for i in items]
    return Table(
        "unranked",
        "样本不足、暂不排名",
        [
            Column(tier_label),
            Column("编码"),
            Column("评价数", COUNT),
            Column("好评率", RATE),
            Column("得分", SCORE),
        ],
        out,
        note=f"评价数少于 {min_sample} 条的对象不参与排名，单独列出。",
    )


def bottom_table(low: Any, tier_label: str) -> Table:
    """Units in the bottom N for K periods running (`analytics.metrics.BottomList`): the
    candidates for a summons (约谈) or a public report (通报)."""
    out = [
        [
            u.name,
            u.code,
            "；".join(f"{r.period} 第{r.rank}名/共{r.of}" for r in u.ranks),
        ]
        for u in low.items
    ]
    periods = "、".join(low.periods)
    return Table(
        "bottom",
        f"连续 {len(low.periods)} 期排名末 {low.bottom} 位（约谈、通报候选）",
        [Column(tier_label), Column("编码"), Column("各期名次")],
        out,
        note=f"统计周期：{periods}。每期排名倒数 {low.bottom} 位（并列者同列）且连续"
        f" {len(low.periods)} 期均在其中的对象。",
    )


METRIC_LABELS = {"score": "平均分", "good_rate": "好评率"}


def formula_text(formula: dict[str, Any]) -> str:
    """The ranking rule as people read it, from the formula the ranking states."""
    metric = METRIC_LABELS.get(formula.get("metric", ""), formula.get("metric", ""))
    tie = METRIC_LABELS.get(formula.get("tie_break", ""), formula.get("tie_break", ""))
    points = formula.get("points", {})
    levels = "、".join(
        f"{LEVEL_LABELS[int(level)]} {points[level]} 分"
        for level in ("5", "4", "3", "2", "1")
        if level in points
    )
    good = "、".join(LEVEL_LABELS[int(lv)] for lv in formula.get("good_levels", []))
    return (
        f"按{metric}从高到低排名，{metric}相同时比较{tie}，仍相同者名次并列（如 1、2、2、4）；"
        f"好评等级：{good}；分值：{levels}；"
        f"评价数少于 {formula.get('min_sample', '')} 条的对象不参与排名。"
    )
