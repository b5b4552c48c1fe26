"""Stored values of the appraisal with their Chinese labels."""

from __future__ import annotations

from dataclasses import dataclass

from haochaping.core.choices import ChoiceSet


class Direction(ChoiceSet):
    HIGHER = "higher", "越高越好"
    LOWER = "lower", "越低越好"


class Tier(ChoiceSet):
    """The units an appraisal ranks (考核对象)."""

    DEPARTMENT = "department", "部门"
    HALL = "hall", "政务服务大厅"
    WINDOW = "window", "窗口"


@dataclass(frozen=True, slots=True)
class Metric:
    """A figure of `analytics.metrics` that an indicator may draw on."""

    code: str
    label: str
    direction: Direction
    description: str


# The figures an indicator may be built on: every rate and score the metrics module defines
# for a unit (docs/metrics.md), with the direction that is better and what it means.
METRICS: dict[str, Metric] = {
    m.code: m
    for m in (
        Metric(
            "good_rate",
            "好评率",
            Direction.HIGHER,
            "计入统计的评价中好评（默认非常满意、满意、基本满意）所占比例。",
        ),
        Metric(
            "bad_rate",
            "差评率",
            Direction.LOWER,
            "计入统计的评价中差评（不满意、非常不满意）所占比例。",
        ),
        Metric(
            "score",
            "平均分",
            Direction.HIGHER,
            "按政策规定的各等级分值计算的平均分（默认 10、8、6、3、0 分）。",
        ),
        Metric(
            "rectified_on_time_rate",
            "差评按期整改率",
            Direction.HIGHER,
            "差评中在整改期限内报告整改（或办结，按政策）的比例。",
        ),
        Metric(
            "verified_on_time_rate",
            "差评按期核实率",
            Direction.HIGHER,
            "差评工单中在核实期限内完成核实的比例。",
        ),
        Metric(
            "callback_rate",
            "回访率",
            Direction.HIGHER,
            "差评工单中已回访联系到评价人的比例。",
        ),
        Metric(
            "callback_satisfied_rate",
            "回访满意率",
            Direction.HIGHER,
            "已联系到的回访中，评价人对整改表示满意或基本满意的比例。",
        ),
        Metric(
            "active_rating_rate",
            "主动评价率",
            Direction.HIGHER,
            "期内办结的办件中，办事人主动作出评价（不含系统默认评价）的比例。",
        ),
    )
}
