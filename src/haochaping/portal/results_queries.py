"""Read side of the public results pages (公示): what `/public`, `/public/orgs/{code}` and
`/public/items/{code}` show, assembled from the metrics module (`analytics/metrics.py`) so
that every number is the one the statistics API and the dashboard give for the same node and
period ("same number" rule), and from the published rectified bad reviews
(`workorders/disclosure.py`).

Nothing here reads personal data: staff appear by staff number and masked name, and a staff
member's figures only where they rest on at least the region's `public_min_cell` ratings
(k-anonymity; below it the page says 样本不足，暂不公开)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.analytics import metrics, source
from haochaping.analytics import periods as P
from haochaping.core.errors import NotFound
from haochaping.core.security import mask_name
from haochaping.orgs.choices import ORG_KIND_LABELS, RegionTier
from haochaping.orgs.models import Item, Org, Region
from haochaping.reports import service as report_service
from haochaping.workorders import disclosure
from haochaping.workorders.disclosure import RectifiedReview

PUBLIC = metrics.PUBLIC  # the public reads the whole tree
TREND_MONTHS = 12
RANK_ROWS = 10  # rows of each ranking on the overview
LIST_MAX = 200  # links listed per section (regions, units, items, places)
# The ranking tiers of the overview, with the name column's heading.
TIERS: list[tuple[metrics.Tier, str, str]] = [
    ("region", "下级地区", "地区"),
    ("department", "部门", "部门"),
    ("hall", "服务大厅", "大厅"),
    ("window", "窗口", "窗口"),
    ("item", "事项", "事项"),
    ("staff", "工作人员", "工作人员"),
]
BASIS = {"score": "平均分（平均分相同时按好评率）", "good_rate": "好评率（好评率相同时按平均分）"}


# --- formatting: one place, so that the page and the tests agree ------------------------------


def count_text(n: int) -> str:
    return f"{n:,}"


def rate_text(rate: float | None) -> str:
    """好评率 as a percentage with two decimals; a dash when there is no rating."""
    return "—" if rate is None else f"{rate * 100:.2f}%"


def score_text(score: float | None) -> str:
    return "—" if score is None else f"{score:.2f}"


@dataclass(frozen=True)
class FiguresView:
    total: int
    bad: int
    good_rate: float | None
    score: float | None
    full_score: int = 10

    @property
    def total_text(self) -> str:
        return count_text(self.total)

    @property
    def bad_text(self) -> str:
        return count_text(self.bad)

    @property
    def good_rate_text(self) -> str:
        return rate_text(self.good_rate)

    @property
    def score_text(self) -> str:
        return score_text(self.score)


async def figures_of(db: AsyncSession, ctx: metrics.Context) -> metrics.Figures:
    """The figures of a resolved question, as `metrics.summary_of` computes them (the same
    counts through the same formula) without the bad-review funnel the pages do not show,
    which costs more than the figures on a region's year of ratings."""
    counts = (await source.level_counts(db, ctx.scope)).get(None, [0] * 5)
    return metrics.figures(counts, ctx.formula)


def _figures(f: Any, full_score: int = 10) -> FiguresView:
    return FiguresView(f.total, f.bad, f.good_rate, f.score, full_score)


@dataclass(frozen=True)
class TrendPoint:
    label: str
    total: int
    good_rate: float | None
    score: float | None
    bar: int  # 0..50: the CSS bar's width class (2 % steps)

    @property
    def total_text(self) -> str:
        return count_text(self.total)

    @property
    def good_rate_text(self) -> str:
        return rate_text(self.good_rate)

    @property
    def score_text(self) -> str:
        return score_text(self.score)

    @property
    def good_rate_pct(self) -> str:
        return "" if self.good_rate is None else f"{self.good_rate * 100:.2f}"

    @property
    def score_value(self) -> str:
        return "" if self.score is None else f"{self.score:.2f}"


@dataclass(frozen=True)
class Link:
    name: str
    href: str
    kind_label: str = ""


@dataclass(frozen=True)
class RankLine:
    rank: int | None
    name: str
    href: str | None
    total: int
    good_rate: float | None
    score: float | None

    @property
    def total_text(self) -> str:
        return count_text(self.total)

    @property
    def good_rate_text(self) -> str:
        return rate_text(self.good_rate)

    @property
    def score_text(self) -> str:
        return score_text(self.score)


@dataclass(frozen=True)
class RankingView:
    tier: str
    tier_label: str
    name_label: str
    period_label: str
    rows: list[RankLine]
    ranked: int
    min_sample: int

    @property
    def more(self) -> bool:
        return self.ranked > len(self.rows)


@dataclass(frozen=True)
class RankingGroup:
    title: str
    rankings: list[RankingView]


@dataclass(frozen=True)
class StaffCell:
    label: str  # staff number and masked name
    figures: FiguresView | None  # None: fewer ratings than public_min_cell


@dataclass
class Window12:
    """The period of the figures: the current month and the 11 before it, up to now."""

    since: datetime
    until: datetime
    text: str


def last_twelve_months(now: datetime) -> Window12:
    current = P.current_period("month", now)
    first = current.shift(-(TREND_MONTHS - 1))
    since, _ = first.bounds()
    return Window12(since, now, f"{first.label} 至 {current.label}（本月为实时数据）")


def trend_points(series: Any) -> list[TrendPoint]:
    top = max((p.total for p in series.items), default=0)
    return [
        TrendPoint(
            p.period,
            p.total,
            p.good_rate,
            p.score,
            round(p.total * 50 / top) if top else 0,
        )
        for p in series.items
    ]


def org_href(code: str) -> str:
    return f"/public/orgs/{code}"


def item_href(code: str) -> str:
    return f"/public/items/{code}"


def region_href(code: str) -> str:
    return f"/public?region={code}"


# --- the overview of a region ------------------------------------------------------------------


@dataclass
class Overview:
    region: Link
    ancestors: list[Link]
    period_text: str
    figures: FiguresView
    trend: list[TrendPoint]
    rankings: list[RankingGroup]
    ranking_basis: str
    min_sample: int
    children: list[Link] = field(default_factory=list)
    units: list[Link] = field(default_factory=list)


async def top_region(db: AsyncSession) -> Region:
    """This instance's top region: the root region whose tree holds the most organisations
    (an installation has one; a bare root such as 000000 全国 of a first administrator loses
    to the province it serves). 404 when there is no region at all."""
    roots = (
        (await db.execute(select(Region).where(Region.parent_code.is_(None)).order_by(Region.code)))
        .scalars()
        .all()
    )
    if not roots:
        raise NotFound("本系统尚未设置行政区划，暂无公示数据", code="region_not_found")
    if len(roots) == 1:
        return roots[0]
    best, best_count = roots[0], -1
    for root in roots:
        count = (
            await db.execute(
                select(func.count())
                .select_from(Org)
                .join(Region, Region.code == Org.region_code)
                .where(Region.path.startswith(root.path, autoescape=True))
            )
        ).scalar_one()
        if count > best_count:
            best, best_count = root, count
    return best


async def find_region(db: AsyncSession, code: str) -> Region:
    region = await db.get(Region, code[:12])
    if region is None or len(code) > 12:
        raise NotFound(
            f"未找到代码为“{code[:40]}”的地区，请返回公示首页查看",
            code="region_not_found",
            details=[{"field": "region", "value": code[:40]}],
        )
    return region


async def _region_ancestors(db: AsyncSession, region: Region) -> list[Link]:
    codes = [c for c in region.path.split("/") if c and c != region.code]
    if not codes:
        return []
    names = dict(
        (await db.execute(select(Region.code, Region.name).where(Region.code.in_(codes)))).all()
    )
    return [Link(names[c], region_href(c)) for c in codes if c in names]


def _ranking_view(
    tier: str, label: str, name_label: str, period_label: str, result: Any, min_cell: int
) -> RankingView:
    rows = []
    for r in result.items:
        if r.code == metrics.NONE_CODE:  # ratings naming no staff member or no item
            continue
        if tier == "staff":
            if r.total < min_cell:  # k-anonymity: no staff figure below the threshold
                continue
            who = f"{r.code} {mask_name(r.name)}"  # staff number and masked name
            rows.append(RankLine(r.rank, who, None, r.total, r.good_rate, r.score))
            continue
        href = (
            region_href(r.code)
            if tier == "region"
            else item_href(r.code)
            if tier == "item"
            else org_href(r.code)
        )
        rows.append(RankLine(r.rank, r.name, href, r.total, r.good_rate, r.score))
    return RankingView(
        tier, label, name_label, period_label, rows[:RANK_ROWS], len(rows), result.min_sample
    )


async def overview(*, db: AsyncSession, region: Region, now: datetime) -> Overview:
    """The overview of a region: figures and trend of the last 12 months, the rankings of
    the live current month and of the last complete month per tier, and the ways down."""
    window = last_twelve_months(now)
    ctx = await metrics.resolve(
        db=db, actor=PUBLIC, region_code=region.code, since=window.since, until=window.until
    )
    summary = await figures_of(db, ctx)
    series = await metrics.timeseries(
        db=db,
        actor=PUBLIC,
        granularity="month",
        region_code=region.code,
        since=window.since,
        until=window.until,
    )
    formula = ctx.formula
    children = (
        (
            await db.execute(
                select(Region)
                .where(Region.parent_code == region.code)
                .order_by(Region.code)
                .limit(LIST_MAX)
            )
        )
        .scalars()
        .all()
    )
    current = P.current_period("month", now)
    groups = []
    for period, title in (
        (None, f"本月 {current.label}（实时）"),
        (current.previous().label, f"上月 {current.previous().label}"),
    ):
        views = []
        for tier, label, name_label in TIERS:
            if tier == "region" and not children:
                continue
            result = await metrics.rankings(
                db=db, actor=PUBLIC, tier=tier, period=period, region_code=region.code, now=now
            )
            views.append(
                _ranking_view(
                    tier, label, name_label, result.period, result, formula.public_min_cell
                )
            )
        groups.append(RankingGroup(title, views))
    units = (
        await db.execute(
            select(Org.code, Org.name, Org.kind)
            .where(Org.region_code == region.code, Org.kind.in_(("department", "hall")))
            .order_by(Org.kind, Org.code)
            .limit(LIST_MAX)
        )
    ).all()
    return Overview(
        region=Link(region.name, region_href(region.code)),
        ancestors=await _region_ancestors(db, region),
        period_text=window.text,
        figures=_figures(summary, formula.points[5]),
        trend=trend_points(series),
        rankings=groups,
        ranking_basis=BASIS.get(formula.ranking_metric, formula.ranking_metric),
        min_sample=formula.min_sample,
        children=[Link(c.name, region_href(c.code), RegionTier.label_of(c.tier)) for c in children],
        units=[Link(n, org_href(c), ORG_KIND_LABELS.get(k, "")) for c, n, k in units],
    )


# --- an organisation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublicStar:
    """A window service star who consented to be named: full name, staff number, photo."""

    staff_no: str
    name: str
    total: int
    score: float | None
    photo_href: str | None


@dataclass
class OrgPage:
    org: Org
    kind_label: str
    region_name: str | None
    ancestors: list[Link]
    period_text: str
    figures: FiguresView
    trend: list[TrendPoint]
    rectified: list[RectifiedReview]
    children: list[Link]
    children_title: str
    items: list[Link]
    staff: list[StaffCell]
    min_cell: int
    stars: list[PublicStar] = field(default_factory=list)
    stars_month: str = ""


def staff_photo_href(staff_no: str) -> str:
    return f"/public/staff/{quote(staff_no, safe='')}/photo"


async def hall_stars(db: AsyncSession, org: Org, now: datetime) -> tuple[str, list[PublicStar]]:
    """A hall's window service stars of the last complete month, those whose consent to be
    named in public is on record (窗口服务之星)."""
    month = P.current_period("month", now).previous().label
    if org.kind != "hall":
        return month, []
    found = await report_service.public_stars(db=db, hall_code=org.code, month=month)
    return month, [
        PublicStar(
            s.staff_no,
            s.name,
            s.total,
            s.score,
            staff_photo_href(s.staff_no) if staff.photo_key else None,
        )
        for s, staff in found
    ]


async def find_org(db: AsyncSession, code: str) -> Org:
    org = (await db.execute(select(Org).where(Org.code == code[:50]))).scalar_one_or_none()
    if org is None or len(code) > 50:
        raise NotFound(
            f"未找到编码为“{code[:60]}”的部门、大厅或窗口，请核对编码，或返回公示首页查看",
            code="org_not_found",
            details=[{"field": "org_code", "value": code[:60]}],
        )
    return org


async def org_page(*, db: AsyncSession, org: Org, now: datetime) -> OrgPage:
    """A department, hall or window: its figures and trend over 12 months, its recent
    published rectifications, its child units and items, its staff (k-anonymous)."""
    window = last_twelve_months(now)
    ctx = await metrics.resolve(
        db=db, actor=PUBLIC, org_code=org.code, since=window.since, until=window.until
    )
    summary = await figures_of(db, ctx)
    # One resolved question for every figure of the page.
    series = await metrics.series_of(db=db, ctx=ctx, granularity="month")
    staff = await metrics.breakdown_of(db=db, ctx=ctx, by="staff")
    rated_items = await metrics.breakdown_of(db=db, ctx=ctx, by="item", limit=LIST_MAX)
    min_cell = ctx.formula.public_min_cell
    full = ctx.formula.points[5]
    shown = {row.code for row in metrics.publishable(staff.rows, ctx.formula)}
    cells = [
        StaffCell(
            f"{row.code} {mask_name(row.name)}",
            _figures(row, full) if row.code in shown else None,
        )
        for row in staff.rows
        if row.code != metrics.NONE_CODE
    ]
    codes = [c for c in org.path.split("/") if c and c != org.code]
    names = (
        dict((await db.execute(select(Org.code, Org.name).where(Org.code.in_(codes)))).all())
        if codes
        else {}
    )
    kids = (
        await db.execute(
            select(Org.code, Org.name, Org.kind)
            .where(Org.parent_id == org.id)
            .order_by(Org.kind, Org.code)
            .limit(LIST_MAX)
        )
    ).all()
    owned = (
        await db.execute(
            select(Item.code, Item.name)
            .where(Item.org_id == org.id)
            .order_by(Item.code)
            .limit(LIST_MAX)
        )
    ).all()
    items: dict[str, str] = dict(owned)
    for row in rated_items.rows:
        if row.code != metrics.NONE_CODE:
            items.setdefault(row.code, row.name)
    region_name = (
        await db.execute(select(Region.name).where(Region.code == org.region_code))
    ).scalar_one_or_none()
    stars_month, stars = await hall_stars(db, org, now)
    return OrgPage(
        org=org,
        kind_label=ORG_KIND_LABELS.get(org.kind, ""),
        region_name=region_name,
        ancestors=[Link(names[c], org_href(c)) for c in codes if c in names],
        period_text=window.text,
        figures=_figures(summary, full),
        trend=trend_points(series),
        rectified=await disclosure.recent_rectified(db=db, org_path=org.path),
        children=[Link(n, org_href(c), ORG_KIND_LABELS.get(k, "")) for c, n, k in kids],
        children_title="下设大厅和窗口" if org.kind != "window" else "下设窗口",
        items=[Link(n, item_href(c)) for c, n in list(items.items())[:LIST_MAX]],
        staff=cells,
        min_cell=min_cell,
        stars=stars,
        stars_month=stars_month,
    )


# --- a service item ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    name: str
    href: str
    figures: FiguresView


@dataclass
class ItemPage:
    item: Item
    owner: Link | None
    period_text: str
    figures: FiguresView
    trend: list[TrendPoint]
    places: list[Place]
    rectified: list[RectifiedReview]


async def find_item(db: AsyncSession, code: str) -> Item:
    item = (await db.execute(select(Item).where(Item.code == code[:64]))).scalar_one_or_none()
    if item is None or len(code) > 64:
        raise NotFound(
            f"未找到实施编码为“{code[:70]}”的政务服务事项，请核对编码，或返回公示首页查看",
            code="item_not_found",
            details=[{"field": "item_code", "value": code[:70]}],
        )
    return item


async def item_page(*, db: AsyncSession, item: Item, now: datetime) -> ItemPage:
    """A service item: its figures and trend over 12 months, where it is served (each hall or
    window with its figures for the item), its recent published rectifications."""
    window = last_twelve_months(now)
    ctx = await metrics.resolve(
        db=db, actor=PUBLIC, item_code=item.code, since=window.since, until=window.until
    )
    summary = await figures_of(db, ctx)
    series = await metrics.timeseries(
        db=db,
        actor=PUBLIC,
        granularity="month",
        item_code=item.code,
        since=window.since,
        until=window.until,
    )
    full = ctx.formula.points[5]
    # Where it is served: the window when the rating names one, else the hall or department,
    # each counted by the metrics module's formula.
    by_unit = await source.level_counts(db, ctx.scope, "unit")
    places = []
    for org_id, counts in by_unit.items():
        unit = ctx.orgs.get(org_id)
        if unit is not None:
            places.append(
                Place(
                    unit.name,
                    org_href(unit.code),
                    _figures(metrics.figures(counts, ctx.formula), full),
                )
            )
    places.sort(key=lambda p: (-p.figures.total, p.href))
    owner = (
        await db.execute(select(Org.code, Org.name).where(Org.id == item.org_id))
    ).one_or_none()
    return ItemPage(
        item=item,
        owner=Link(owner[1], org_href(owner[0])) if owner else None,
        period_text=window.text,
        figures=_figures(summary, full),
        trend=trend_points(series),
        places=places[:LIST_MAX],
        rectified=await disclosure.recent_rectified(db=db, item_id=item.id),
    )


async def consenting_photo(db: AsyncSession, staff_no: str) -> Any:
    """The staff row of a consenting staff member with a photo (404 otherwise): the public
    sees only the photos of those who agreed to be named."""
    found = await report_service.consenting_staff(db=db, staff_no=staff_no[:50])
    if found is None or not found.photo_key or not found.photo_type:
        raise NotFound("照片不存在", code="photo_not_found")
    return found
