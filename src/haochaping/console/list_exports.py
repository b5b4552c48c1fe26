"""The Excel downloads of the lists an office works from (ratings, work orders, appeals,
flags, spot checks): each list's columns, with Chinese headers, and its rows as the list
shows them (the same query, scope, order and masking: the rows come from the list's own page
function, read in batches by `core.pagination.walk`), streamed by `core.exports.list_response`.

Masked data only: a rater's masked name, never a phone or certificate number (not even
masked); free texts through `mask_text` as on the page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import StreamingResponse

from haochaping.core import pagination
from haochaping.core.errors import Invalid
from haochaping.core.exports import Column, ColumnKind, list_response
from haochaping.core.security import mask_text
from haochaping.core.timeutil import to_local, utcnow
from haochaping.evaluations.choices import CHANNEL_LABELS, LEVEL_LABELS
from haochaping.workorders.choices import VERDICT_LABELS

T = ColumnKind.TEXT
AT = ColumnKind.TIME
N = ColumnKind.COUNT
BATCH = 1000  # rows per query of an export: what it holds in memory at once

Row = Sequence[Any]


def _join(values: Sequence[str] | None) -> str:
    return "；".join(values or [])


def _level(level: int | None) -> str:
    return LEVEL_LABELS.get(level, "") if level else ""


# --- ratings ----------------------------------------------------------------------------------

RATING_COLUMNS = [
    Column("评价编号", N),
    Column("评价时间", AT),
    Column("等级"),
    Column("是否差评"),
    Column("状态"),
    Column("原因"),
    Column("评价内容"),
    Column("办件编号"),
    Column("服务事项"),
    Column("事项编码"),
    Column("办理机构"),
    Column("机构编码"),
    Column("窗口"),
    Column("渠道"),
    Column("评价人"),
]


def rating_row(ev: dict[str, Any]) -> Row:
    """A rating of the console's list (`views.evaluation_view`) as a row of the download."""
    rater = ev["rater"]
    return [
        ev["id"],
        ev["evaluated_at"],
        ev["level_label"],
        "差评" if ev["is_bad"] else "",
        ev["standing_label"] or "",
        _join(ev["reason_texts"]),
        mask_text(ev["comment"]),
        ev["case_no"],
        ev["item_name"],
        ev["item_code"],
        ev["org_name"],
        ev["org_code"],
        ev["window_name"],
        CHANNEL_LABELS.get(ev["channel"], ev["channel"]),
        "匿名" if rater is None else (rater.get("name") or ""),
    ]


# --- work orders ------------------------------------------------------------------------------

WORK_ORDER_COLUMNS = [
    Column("工单编号", N),
    Column("生成时间", AT),
    Column("状态"),
    Column("是否超期"),
    Column("评价等级"),
    Column("服务事项"),
    Column("责任单位"),
    Column("机构编码"),
    Column("最近期限"),
    Column("期限截止日期"),
    Column("督办次数", N),
]


def work_order_row(wo: dict[str, Any]) -> Row:
    """A work order of a queue (`views.queue_item_view`) as a row of the download."""
    due = wo["deadline"]
    return [
        wo["id"],
        wo["opened_at"],
        wo["state_label"],
        "已超期" if wo["overdue"] else "",
        _level(wo["level"]),
        wo["item_name"],
        wo["org_name"],
        wo["org_code"],
        f"{due['label']}：{due['text']}" if due else "",
        due["due_date"].isoformat() if due else "",
        wo["escalations"],
    ]


# --- appeals ----------------------------------------------------------------------------------

APPEAL_COLUMNS = [
    Column("申诉编号", N),
    Column("提出时间", AT),
    Column("工单编号", N),
    Column("状态"),
    Column("类别"),
    Column("责任单位"),
    Column("机构编码"),
    Column("申诉理由"),
    Column("提出人"),
    Column("复核期限", AT),
    Column("复核人"),
    Column("复核时间", AT),
    Column("复核意见"),
    Column("列入恶意评价人员信息库"),
]


def appeal_row(a: dict[str, Any]) -> Row:
    """An appeal of the list (`views.appeal_view` with its unit) as a row of the download."""
    return [
        a["id"],
        a["filed_at"],
        a["work_order_id"],
        a["state_label"],
        a["category_label"],
        a["org_name"],
        a["org_code"],
        a["reasons"],
        a["filed_by"],
        a["decide_due_at"],
        a["decided_by"],
        a["decided_at"],
        a["decision_note"],
        "是" if a["register_rater"] else "",
    ]


# --- flags (疑似刷评) ----------------------------------------------------------------------------

FLAG_COLUMNS = [
    Column("标记编号", N),
    Column("标记时间", AT),
    Column("检测类型"),
    Column("状态"),
    Column("疑点"),
    Column("被评价单位"),
    Column("机构编码"),
    Column("评价编号", N),
    Column("评价等级"),
    Column("渠道"),
    Column("评价时间", AT),
    Column("办件编号"),
    Column("评价状态"),
    Column("复核人"),
    Column("复核时间", AT),
    Column("复核意见"),
]


def flag_row(f: dict[str, Any]) -> Row:
    """A flag of the review queue (`integrity.queries.item`) as a row of the download."""
    return [
        f["id"],
        f["created_at"],
        f["check_label"],
        f["state_label"],
        mask_text(f["reason"]),
        f["org_name"],
        f["org_code"],
        f["evaluation_id"],
        f["level_label"],
        f["channel_label"],
        f["evaluated_at"],
        f["case_no"],
        f["standing_label"],
        f["reviewed_by"],
        f["reviewed_at"],
        mask_text(f["review_note"]),
    ]


# --- spot checks (抽查回访) ---------------------------------------------------------------------

SPOT_CHECK_COLUMNS = [
    Column("抽查编号", N),
    Column("抽取时间", AT),
    Column("状态"),
    Column("评价编号", N),
    Column("评价等级"),
    Column("渠道"),
    Column("评价时间", AT),
    Column("服务事项"),
    Column("被评价单位"),
    Column("机构编码"),
    Column("窗口"),
    Column("评价人"),
    Column("有手机号"),
    Column("回访时间", AT),
    Column("评价人意见"),
    Column("生成工单编号", N),
]
SPOT_STATE_LABELS = {"pending": "待回访", "done": "已回访"}


def spot_check_row(c: dict[str, Any]) -> Row:
    """A spot check of the queue (`workorders.queries.spot_check_page`) as a row."""
    return [
        c["id"],
        c["created_at"],
        SPOT_STATE_LABELS.get(c["state"], c["state"]),
        c["evaluation_id"],
        _level(c["level"]),
        CHANNEL_LABELS.get(c["channel"], c["channel"]),
        c["evaluated_at"],
        c["item_name"],
        c["org_name"],
        c["org_code"],
        c["window_name"],
        c["rater"] or "匿名",
        "是" if c["has_phone"] else "否",
        c["done_at"],
        VERDICT_LABELS.get(c["verdict"], c["verdict"] or ""),
        c["work_order_id"],
    ]


# --- the download -------------------------------------------------------------------------------


def refuse(errors: Sequence[str]) -> None:
    """An export of filters the list would drop with a warning is refused (422), not run on
    other filters than the person asked for."""
    if errors:
        raise Invalid(
            "筛选条件有误，未导出：" + "；".join(errors),
            code="invalid_filter",
            details=[{"message": e} for e in errors],
        )


async def _rows(
    db: AsyncSession, fetch: pagination.PageFetch[Any], to_row: Callable[[Any], Row]
) -> AsyncIterator[Row]:
    async for item in pagination.walk(db, fetch, batch=BATCH):
        yield to_row(item)


def filename(title: str, now: datetime | None = None) -> str:
    """The download's name: the list's title and the local time of the export."""
    local = to_local(now or utcnow())
    assert local is not None
    return f"{title}-{local:%Y%m%d-%H%M}"


def download(
    *,
    db: AsyncSession,
    title: str,
    columns: Sequence[Column],
    fetch: pagination.PageFetch[Any],
    to_row: Callable[[Any], Row],
) -> StreamingResponse:
    """A list's Excel download: every row its filters show, in its order, read `BATCH` at a
    time through `fetch` (the list's page function) and streamed."""
    return list_response(
        filename=filename(title), columns=columns, rows=_rows(db, fetch, to_row), sheet=title
    )
