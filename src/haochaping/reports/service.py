"""Monthly report use cases: the window service stars of a month, the report's content (a list
of sections), writing and archiving it once per region and month, reading the archive.

Every figure in a report comes from `analytics.metrics` (the same functions as
`/api/v1/stats`); this module only arranges them. A report is a list of `Section`s built by
the functions in `SECTIONS`, in order: another section is one more entry there.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.analytics import metrics
from haochaping.analytics import periods as P
from haochaping.appeals.choices import CATEGORY_LABELS
from haochaping.appeals.choices import STATE_LABELS as APPEAL_STATE_LABELS
from haochaping.core.auth import Principal
from haochaping.core.errors import Conflict, Forbidden, Invalid, NotFound
from haochaping.core.timeutil import SHANGHAI, utcnow
from haochaping.evaluations.choices import LEVEL_LABELS
from haochaping.ledger.hashing import sm3
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Region
from haochaping.policies import service as policy_service
from haochaping.policies.schemas import PolicyValues
from haochaping.reports import queries, workbook
from haochaping.reports.models import MonthlyReport
from haochaping.topics import queries as topic_queries
from haochaping.workorders.states import State

# Who asks the metrics for a report: the whole tree, narrowed by the report's region.
REPORTER = Principal(kind="system", id=0, name="月度通报", org_id=0, org_path="/")
FOLDER = "reports"  # under the upload folder, like the work orders' attachments
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
RANK_TIERS: tuple[tuple[str, str], ...] = (
    ("region", "下级地区"),
    ("department", "部门"),
    ("hall", "大厅"),
    ("window", "窗口"),
    ("staff", "工作人员"),
    ("item", "事项"),
)
BOTTOM_TIERS: tuple[tuple[str, str], ...] = (
    ("department", "部门"),
    ("hall", "大厅"),
    ("window", "窗口"),
)
STATE_LABELS = State.labels()


# --- the window service stars (窗口服务之星) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Star:
    """A window service star of one hall and month."""

    hall_code: str
    hall_name: str
    staff_no: str
    name: str
    total: int
    score: float | None
    good_rate: float | None


def parse_month(month: str) -> P.Period:
    """`2026-11` as a period (422 `invalid_month` otherwise)."""
    if not _MONTH.match(month or ""):
        raise Invalid(
            "月份格式应为 YYYY-MM，例如 2026-11",
            code="invalid_month",
            details=[{"field": "month", "value": month}],
        )
    return P.parse_period(month)


def _last_day(period: P.Period) -> date:
    return P.local_day(period.bounds()[1] - timedelta(microseconds=1))


async def _values(db: AsyncSession, region_code: str, on: date) -> PolicyValues:
    values, _ = await policy_service.effective(db=db, region_code=region_code, on=on)
    return values


async def monthly_stars(
    *,
    db: AsyncSession,
    actor: Principal,
    month: str,
    region_code: str | None = None,
    org_code: str | None = None,
) -> list[Star]:
    """Per hall of a region (or under an organisation), the month's window service stars:
    among the staff with at least `star_min_ratings` counted ratings (the policy of the
    region, in force on the month's last day) and no substantiated bad review that month,
    those with the best figure of the metrics' staff ranking (ties all named)."""
    period = parse_month(month)
    since, until = period.bounds()
    policy_region = region_code
    if policy_region is None and org_code:
        policy_region = (await org_service.get_org(db=db, code=org_code)).region_code
    values = await _values(db, policy_region, _last_day(period)) if policy_region else None
    minimum = values.star_min_ratings if values else PolicyValues().star_min_ratings
    bad_levels = values.bad_levels if values else PolicyValues().bad_levels
    halls = await metrics.hall_staff_rankings(
        db=db,
        actor=actor,
        period=period.label,
        region_code=region_code,
        org_code=org_code,
        min_ratings=minimum,
    )
    ranked = [r.code for hall in halls for r in hall.items]
    excluded = await queries.substantiated_staff(
        db, staff_nos=ranked, since=since, until=until, bad_levels=bad_levels
    )
    stars: list[Star] = []
    for hall in halls:
        eligible = [r for r in hall.items if r.code not in excluded]
        if not eligible:
            continue
        best = eligible[0].rank
        stars.extend(
            Star(hall.hall_code, hall.hall_name, r.code, r.name, r.total, r.score, r.good_rate)
            for r in eligible
            if r.rank == best
        )
    return stars


async def public_stars(*, db: AsyncSession, hall_code: str, month: str) -> list[tuple[Star, Any]]:
    """The stars of a hall whose consent to be named in public is on record, with their
    staff row (for the photo)."""
    stars = await monthly_stars(db=db, actor=metrics.PUBLIC, month=month, org_code=hall_code)
    consenting = await queries.consenting_staff(db, [s.staff_no for s in stars])
    return [(s, consenting[s.staff_no]) for s in stars if s.staff_no in consenting]


async def consenting_staff(*, db: AsyncSession, staff_no: str) -> Any:
    """The staff member by number when their consent to be named in public is on record."""
    return (await queries.consenting_staff(db, [staff_no])).get(staff_no)


# --- the report's content ----------------------------------------------------------------------

# Column formats: how a value is shown (page) and stored (workbook).
TEXT, INT, RATE, SCORE = "text", "int", "rate", "score"


@dataclass
class Section:
    """One part of a report: a titled table (a sheet of the workbook, a table of the page).
    `row_formats` formats the second column row by row (a key-value table)."""

    key: str
    title: str
    columns: list[tuple[str, str]]  # (header, format)
    rows: list[list[Any]]
    note: str | None = None
    row_formats: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "columns": [list(c) for c in self.columns],
            "rows": self.rows,
            "note": self.note,
            "row_formats": self.row_formats,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Section:
        return cls(
            key=data["key"],
            title=data["title"],
            columns=[(c[0], c[1]) for c in data["columns"]],
            rows=data["rows"],
            note=data.get("note"),
            row_formats=data.get("row_formats"),
        )


@dataclass
class ReportInput:
    """What every section builder is given."""

    db: AsyncSession
    region: Region
    period: P.Period
    values: PolicyValues
    now: datetime
    since: datetime = field(init=False)
    until: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.since, self.until = self.period.bounds()


def _local(moment: datetime | None) -> str | None:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if moment else None


async def _overview(inp: ReportInput) -> list[Section]:
    s = await metrics.summary(
        db=inp.db,
        actor=REPORTER,
        region_code=inp.region.code,
        since=inp.since,
        until=inp.until,
        now=inp.now,
    )
    rows: list[tuple[str, Any, str]] = [
        ("评价总数（计入统计）", s.total, INT),
        ("好评数", s.good, INT),
        ("差评数", s.bad, INT),
        ("好评率", s.good_rate, RATE),
        ("差评率", s.bad_rate, RATE),
        ("平均分", s.score, SCORE),
        ("默认评价（另计）", s.default_ratings, INT),
        ("无效评价（不计入）", s.invalid, INT),
        ("待复核评价", s.held, INT),
        ("差评工单", s.opened, INT),
        ("按时核实", s.verified_on_time, INT),
        ("按时整改", s.rectified_on_time, INT),
        ("差评整改率（按时）", s.rectified_on_time_rate, RATE),
        ("回访率", s.callback_rate, RATE),
        ("回访满意率", s.callback_satisfied_rate, RATE),
        ("督办", s.supervised, INT),
        ("超期未办结（生成时）", s.overdue_open, INT),
    ]
    return [
        Section(
            "overview",
            "概况",
            [("指标", TEXT), ("数值", TEXT)],
            [[label, value] for label, value, _ in rows],
            note="数据口径与数据看板、统计接口相同（analytics/metrics）。",
            row_formats=[fmt for _, _, fmt in rows],
        )
    ]


RANK_COLUMNS: list[tuple[str, str]] = [
    ("名次", TEXT),
    ("代码", TEXT),
    ("名称", TEXT),
    ("评价数", INT),
    ("好评率", RATE),
    ("差评率", RATE),
    ("平均分", SCORE),
    ("名次变化", INT),
]


async def _rankings(inp: ReportInput) -> list[Section]:
    out = []
    for tier, label in RANK_TIERS:
        r = await metrics.rankings(
            db=inp.db,
            actor=REPORTER,
            tier=tier,  # type: ignore[arg-type]
            period=inp.period.label,
            region_code=inp.region.code,
        )
        rows = [
            [x.rank, x.code, x.name, x.total, x.good_rate, x.bad_rate, x.score, x.rank_change]
            for x in r.items
        ]
        rows += [
            ["未排名", x.code, x.name, x.total, x.good_rate, x.bad_rate, x.score, None]
            for x in r.unranked
        ]
        out.append(
            Section(
                f"ranking_{tier}",
                f"排名·{label}",
                RANK_COLUMNS,
                rows,
                note=f"评价数不少于 {r.min_sample} 条的参与排名；名次变化为上月名次减本月名次。",
            )
        )
    return out


async def _bottom(inp: ReportInput) -> list[Section]:
    rows: list[list[Any]] = []
    periods: list[str] = []
    n = k = 0
    for tier, label in BOTTOM_TIERS:
        b = await metrics.bottom(
            db=inp.db,
            actor=REPORTER,
            tier=tier,  # type: ignore[arg-type]
            period=inp.period.label,
            region_code=inp.region.code,
        )
        periods, n, k = b.periods, b.bottom, len(b.periods)
        for unit in b.items:
            rows.append([label, unit.code, unit.name, *(f"{p.rank}/{p.of}" for p in unit.ranks)])
    columns = [("层级", TEXT), ("代码", TEXT), ("名称", TEXT), *((p, TEXT) for p in periods)]
    return [
        Section(
            "bottom",
            "连续末位",
            columns,
            rows,
            note=f"连续 {k} 个月排名后 {n} 名（名次/参与排名数）。",
        )
    ]


def _deadline_status(row: dict[str, Any], basis: str, now: datetime) -> str:
    """Whether the rectification deadline was met, missed, or is still ahead."""
    if row["order_id"] is None:
        return "无工单"
    if row["state"] == State.INVALIDATED:
        return "差评无效"
    due = row["rectify_due_at"]
    done = row["closed_at"] if basis == "closed" else row["rectified_at"]
    if done is not None:
        return "按期" if due is None or done <= due else "逾期"
    if due is not None and due < now:
        return "逾期未整改"
    return "未到期"


async def _bad_reviews(inp: ReportInput) -> list[Section]:
    found = await queries.bad_reviews(
        inp.db,
        region_path=inp.region.path,
        since=inp.since,
        until=inp.until,
        bad_levels=inp.values.bad_levels,
    )
    rows = [
        [
            r["id"],
            _local(r["received_at"]),
            r["org_name"],
            r["window_name"],
            r["staff_no"],
            r["item_name"],
            LEVEL_LABELS.get(r["level"], str(r["level"])),
            r["order_id"],
            STATE_LABELS.get(r["state"], r["state"]) if r["state"] else None,
            _local(r["rectify_due_at"]),
            _local(r["rectified_at"]),
            _deadline_status(r, inp.values.rectified_on_time, inp.now),
        ]
        for r in found
    ]
    columns = [
        ("评价编号", TEXT),
        ("评价时间", TEXT),
        ("被评价单位", TEXT),
        ("窗口", TEXT),
        ("工号", TEXT),
        ("事项", TEXT),
        ("等级", TEXT),
        ("工单编号", TEXT),
        ("整改状态", TEXT),
        ("整改期限", TEXT),
        ("报告整改时间", TEXT),
        ("期限", TEXT),
    ]
    return [Section("bad_reviews", "差评整改", columns, rows, note="本月收到的全部差评。")]


async def _overdue(inp: ReportInput) -> list[Section]:
    found = await queries.overdue_orders(
        inp.db, region_path=inp.region.path, since=inp.since, until=inp.until
    )
    rows = [
        [
            r["id"],
            r["org_name"],
            _local(r["opened_at"]),
            STATE_LABELS.get(r["state"], r["state"]),
            _local(r["overdue_at"]),
            r["escalations"],
            _local(r["closed_at"]),
        ]
        for r in found
    ]
    columns = [
        ("工单编号", TEXT),
        ("责任单位", TEXT),
        ("开单时间", TEXT),
        ("当前状态", TEXT),
        ("超期时间", TEXT),
        ("督办次数", INT),
        ("办结时间", TEXT),
    ]
    return [
        Section(
            "overdue",
            "超期工单",
            columns,
            rows,
            note="本月超期的工单，以及此前超期、至今未办结的工单。",
        )
    ]


async def _appeals(inp: ReportInput) -> list[Section]:
    found = await queries.appeals(
        inp.db, region_path=inp.region.path, since=inp.since, until=inp.until
    )
    rows = [
        [
            r["id"],
            r["work_order_id"],
            r["org_name"],
            CATEGORY_LABELS.get(r["category"], r["category"]),
            _local(r["filed_at"]),
            APPEAL_STATE_LABELS.get(r["state"], r["state"]),
            _local(r["decided_at"]),
            "是" if r["register_rater"] else "否",
        ]
        for r in found
    ]
    columns = [
        ("申诉编号", TEXT),
        ("工单编号", TEXT),
        ("申诉单位", TEXT),
        ("申诉类别", TEXT),
        ("提出时间", TEXT),
        ("结果", TEXT),
        ("复核时间", TEXT),
        ("列入恶意评价人名单", TEXT),
    ]
    return [Section("appeals", "申诉及结果", columns, rows, note="本月提出的申诉。")]


async def _stars(inp: ReportInput) -> list[Section]:
    stars = await monthly_stars(
        db=inp.db, actor=REPORTER, month=inp.period.label, region_code=inp.region.code
    )
    rows = [[s.hall_name, s.staff_no, s.name, s.total, s.score, s.good_rate] for s in stars]
    columns = [
        ("大厅", TEXT),
        ("工号", TEXT),
        ("姓名", TEXT),
        ("评价数", INT),
        ("平均分", SCORE),
        ("好评率", RATE),
    ]
    return [
        Section(
            "stars",
            "窗口服务之星",
            columns,
            rows,
            note=(
                f"每个大厅本月评价不少于 {inp.values.star_min_ratings} 条、"
                "无属实差评的工作人员中得分最高者。"
            ),
        )
    ]


# The emerging complaint topics: the month's last four ISO weeks against the eight before.
TOPIC_WEEKS, TOPIC_BASELINE, TOPIC_ROWS = 4, 8, 20


async def _topics(inp: ReportInput) -> list[Section]:
    """The terms of bad and 基本满意 comments that rose significantly in the month's last
    weeks, per service item, with masked examples (`topics.queries.emerging`, as counted by
    the periodic job)."""
    found = await topic_queries.emerging(
        inp.db,
        actor=REPORTER,
        region_code=inp.region.code,
        weeks=TOPIC_WEEKS,
        baseline_weeks=TOPIC_BASELINE,
        limit=TOPIC_ROWS,
        examples=1,
        now=inp.until - timedelta(microseconds=1),
    )
    rows = [
        [
            t.item_code,
            t.item_name,
            t.term,
            t.recent,
            t.before,
            round(t.score, 1),
            t.examples[0].text if t.examples else "",
        ]
        for t in found.items
    ]
    columns = [
        ("事项编码", TEXT),
        ("事项名称", TEXT),
        ("词语", TEXT),
        (f"近 {TOPIC_WEEKS} 周条数", INT),
        (f"此前 {TOPIC_BASELINE} 周条数", INT),
        ("显著性得分", TEXT),
        ("示例（已脱敏）", TEXT),
    ]
    return [
        Section(
            "topics",
            "新出现的投诉热点",
            columns,
            rows,
            note=(
                f"不满意、基本满意评价的文字中，近 {TOPIC_WEEKS} 周出现比例较此前 "
                f"{TOPIC_BASELINE} 周显著上升的词语（单侧二项检验，α={found.alpha:g}，"
                f"至少 {found.min_count} 条；得分为 −log10 p）。"
            ),
        )
    ]


Builder = Callable[[ReportInput], Awaitable[list[Section]]]
# The report, part by part, in order (the workbook's sheets, the page's tables).
SECTIONS: list[tuple[str, Builder]] = [
    ("overview", _overview),
    ("rankings", _rankings),
    ("bottom", _bottom),
    ("bad_reviews", _bad_reviews),
    ("overdue", _overdue),
    ("appeals", _appeals),
    ("stars", _stars),
    ("topics", _topics),
]

Progress = Callable[[str, int, int], None]


def title_of(region_name: str, month: str) -> str:
    year, mon = month.split("-")
    return f"{region_name}{year}年{int(mon)}月政务服务“好差评”情况通报"


async def build_content(
    *,
    db: AsyncSession,
    region_code: str,
    month: str,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The content of a region's report of a month: its header and its sections."""
    period = parse_month(month)
    moment = now or utcnow()
    if period.bounds()[1] > moment:
        raise Invalid(
            "只能生成已结束月份的通报",
            code="month_not_over",
            details=[{"field": "month", "value": month}],
        )
    region = await org_service.get_region(db=db, code=region_code)
    values = await _values(db, region.code, _last_day(period))
    inp = ReportInput(db, region, period, values, moment)
    sections: list[Section] = []
    for done, (_name, build) in enumerate(SECTIONS):
        if progress:
            progress("生成通报", done, len(SECTIONS))
        sections.extend(await build(inp))
    if progress:
        progress("生成通报", len(SECTIONS), len(SECTIONS))
    return {
        "title": title_of(region.name, period.label),
        "region_code": region.code,
        "region_name": region.name,
        "month": period.label,
        "generated_at": _local(moment),
        "sections": [s.to_json() for s in sections],
    }


def sections_of(content: dict[str, Any]) -> list[Section]:
    """The sections of a stored report's content."""
    return [Section.from_json(s) for s in content["sections"]]


# --- the archive -----------------------------------------------------------------------------


def _store(folder: Path, data: bytes) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(16)
    (folder / key).write_bytes(data)
    return key


async def write_monthly(
    *,
    db: AsyncSession,
    region_code: str,
    month: str,
    upload_dir: Path,
    created_by: str,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> tuple[MonthlyReport, bool]:
    """The region's report of the month, written and archived once: an existing one is
    returned as it is (`False`), never replaced; a new one is stored with its SM3 digest
    (`True`). Two writers at once: the second finds the first's (unique region and month)."""
    period = parse_month(month)
    await org_service.get_region(db=db, code=region_code)
    existing = await queries.find(db, region_code, period.label)
    if existing is not None:
        return existing, False
    content = await build_content(
        db=db, region_code=region_code, month=period.label, now=now, progress=progress
    )
    data = workbook.render(content, sections_of(content))
    folder = upload_dir / FOLDER
    key = await asyncio.to_thread(_store, folder, data)
    report = MonthlyReport(
        region_code=region_code,
        month=period.label,
        created_by=created_by,
        sm3=sm3(data).hex(),
        size=len(data),
        storage_key=key,
        content=content,
        created_at=now or utcnow(),
    )
    try:
        async with db.begin_nested():
            db.add(report)
            await db.flush()
    except IntegrityError:
        (folder / key).unlink(missing_ok=True)
        again = await queries.find(db, region_code, period.label)
        if again is None:
            raise
        return again, False
    return report, True


async def _reader_region(db: AsyncSession, actor: Principal) -> str:
    return (await own_region(db=db, actor=actor)).path


async def own_region(*, db: AsyncSession, actor: Principal) -> Region:
    """The region of the person's organisation (whose reports and stars they read)."""
    region = await queries.actor_region(db, actor.org_id)
    if region is None:
        raise Forbidden("账号所在机构不属于任何地区", code="out_of_scope")
    return region


async def list_reports(
    *,
    db: AsyncSession,
    actor: Principal,
    region_code: str | None = None,
    month: str | None = None,
) -> list[MonthlyReport]:
    """The archived reports of the person's region and the regions below it."""
    if month:
        parse_month(month)
    path = await _reader_region(db, actor)
    if region_code:
        region = await org_service.get_region(db=db, code=region_code)
        if not region.path.startswith(path):
            raise Forbidden("只能查看本辖区的通报", code="out_of_scope")
    return list((await db.execute(queries.reports_in(path, region_code, month))).scalars())


async def get_report(*, db: AsyncSession, actor: Principal, report_id: int) -> MonthlyReport:
    """One archived report (404 unknown, 403 another region's)."""
    report = await db.get(MonthlyReport, report_id)
    if report is None:
        raise NotFound("通报不存在", code="report_not_found")
    region = await org_service.get_region(db=db, code=report.region_code)
    if not region.path.startswith(await _reader_region(db, actor)):
        raise Forbidden("只能查看本辖区的通报", code="out_of_scope")
    return report


async def read_workbook(*, report: MonthlyReport, upload_dir: Path) -> bytes:
    """The archived workbook's bytes, checked against the SM3 digest recorded with it."""
    path = upload_dir / FOLDER / report.storage_key
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError as exc:
        raise Conflict("通报文件缺失，请联系系统管理员", code="report_file_missing") from exc
    if sm3(data).hex() != report.sm3:
        raise Conflict("通报文件与存档的 SM3 摘要不符，可能已被改动", code="report_tampered")
    return data


def filename_of(report: MonthlyReport) -> str:
    return f"通报-{report.region_code}-{report.month}.xlsx"
