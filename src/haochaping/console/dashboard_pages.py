"""HTML routes of the statistics in the console: the dashboard (数据看板) and the rankings
(榜单), with their downloads (CSV and Excel).

The figures come from `analytics.metrics`, the same functions as the JSON routes under
`/api/v1/stats`, so that a page, its download and the API agree. The pages are rendered on the
server with their tables filled; `static/js/dashboard.js` draws the charts from the same rows
(embedded as JSON). Everyone sees their own area only: a unit its subtree, an office its
region within its subtree, an assessor every organisation located in its organisation's
region (`Principal.region_path`, resolved with the other scopes in `orgs.service.stats_node`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from haochaping.analytics import metrics
from haochaping.analytics.periods import parse_period
from haochaping.console import dashboard_views as dv
from haochaping.console import topics_views as tv
from haochaping.console.dashboard_forms import (
    DashboardFilters,
    Granularity,
    Node,
    NodeKind,
    PeriodKind,
    Preset,
    RankingFilters,
    Tier,
    current_period,
    export_format,
    local_today,
    recent_periods,
)
from haochaping.console.layout import StatsConsoleUser, page
from haochaping.core.auth import Principal
from haochaping.core.db import DbSession
from haochaping.core.errors import DomainError, Forbidden, NotFound
from haochaping.core.exports import table_response
from haochaping.core.roles import Role
from haochaping.core.templating import html_route
from haochaping.orgs import queries as org_queries
from haochaping.orgs import service as org_service
from haochaping.orgs.choices import RegionTier
from haochaping.orgs.models import Region
from haochaping.topics import queries as topic_queries

router = APIRouter(route_class=html_route("console/error.html"))

DASHBOARD = "/console/dashboard"
RANKINGS = "/console/rankings"
DASHBOARD_TABLES = ("summary", "trend", "levels", "channels", "reasons", "funnel", "children")
RANKING_TABLES = ("ranked", "unranked", "bottom")


def may_use_regions(user: Principal) -> bool:
    """Offices, administrators and assessors look at their region; a unit at its subtree."""
    return user.has_role(Role.ADMIN, Role.OFFICE, Role.ASSESSOR)


@dataclass
class Scope:
    """Where the figures are taken, as people read it: its name, the trail back up, and the
    label of the tier one down."""

    name: str
    root_name: str
    trail: list[dict[str, Any]]
    child_region_label: str = "下级地区"  # what a child region is called (市, 县（区）...)
    default_region: str | None = None  # the person's own region, asked when no node is


def _href(filters: DashboardFilters, node: Node | None) -> str:
    """The dashboard with the same filters at another node (None: the person's whole area)."""
    return DASHBOARD + "?" + urlencode(filters.query(node=node.value if node else None))


async def resolve_scope(db: DbSession, user: Principal, filters: DashboardFilters) -> Scope:
    """The node of the filters checked against the person's area (404 unknown, 403 outside),
    with its trail back up to the person's whole area."""
    own_org = await org_queries.own_org(db, user)
    own_region = await org_queries.own_region(db, user)
    regions = may_use_regions(user) and own_region is not None
    root_name = (own_region.name if regions and own_region else None) or (
        own_org.name if own_org else "本单位"
    )
    trail: list[dict[str, Any]] = [{"name": root_name, "href": _href(filters, None)}]
    node = filters.node
    if node is None:
        trail[-1]["href"] = None
        if regions and own_region is not None:
            return Scope(root_name, root_name, trail, _region_child(own_region), own_region.code)
        return Scope(root_name, root_name, trail)
    if node.kind is NodeKind.REGION:
        region = await org_queries.region_by_code(db, node.code)
        if region is None:
            raise NotFound("统计范围中的地区不存在", code="region_not_found")
        if not regions or own_region is None or not region.path.startswith(own_region.path):
            raise Forbidden("统计范围超出本账号的地区权限", code="out_of_scope")
        for r in await org_queries.region_chain(db, region, own_region):
            trail.append({"name": r.name, "href": _href(filters, Node(NodeKind.REGION, r.code))})
        trail[-1]["href"] = None
        return Scope(region.name, root_name, trail, _region_child(region))
    org = await org_queries.org_by_code(db, node.code)
    if org is None:
        raise NotFound("统计范围中的单位不存在", code="org_not_found")
    await org_service.stats_node(db=db, actor=user, org=org, region=None)
    if regions and own_region is not None:
        org_region = await org_queries.region_by_code(db, org.region_code)
        if org_region is not None and org_region.code != own_region.code:
            for r in await org_queries.region_chain(db, org_region, own_region):
                trail.append(
                    {"name": r.name, "href": _href(filters, Node(NodeKind.REGION, r.code))}
                )
    for o in await org_queries.org_chain(db, user, org):
        trail.append({"name": o.name, "href": _href(filters, Node(NodeKind.ORG, o.code))})
    trail[-1]["href"] = None
    return Scope(org.name, root_name, trail)


def _region_child(region: Region) -> str:
    return RegionTier.label_of(region.tier + 1, "下级地区")


def metric_filters(user: Principal, f: DashboardFilters, scope: Scope) -> dict[str, Any]:
    """The filters as `analytics.metrics` takes them. Without a node, a person who looks at a
    region asks about their own region (so that the next tier down is its cities)."""
    return {
        "actor": user,
        "org_code": f.org_code,
        "region_code": f.region_code or scope.default_region,
        "item_code": f.item_code or None,
        "since": f.since_at,
        "until": f.until_at,
    }


def child_label(kinds: set[str], scope: Scope) -> str:
    """What the rows one tier down are called (the first column's header)."""
    if kinds == {"region"}:
        return scope.child_region_label
    if "region" in kinds:
        return scope.child_region_label + "及直属单位"
    if kinds == {"staff"}:
        return "工作人员"
    return "单位"


async def dashboard_tables(
    db: DbSession, user: Principal, f: DashboardFilters, scope: Scope
) -> tuple[dict[str, Any], dict[str, dv.Table]]:
    """The summary and every table of the dashboard for the filters."""
    # One resolution of the scope and one read of the counts for the whole page.
    board = await metrics.dashboard(
        db=db,
        **metric_filters(user, f, scope),
        granularity=cast(metrics.Granularity, f.granularity.value),
    )
    summary = asdict(board.summary)
    trend, levels, channels = board.trend, board.levels, board.channels
    reasons, children = board.reasons, board.children
    kind = children.child_kind

    def link(row: dict[str, Any]) -> str | None:
        # Each row says what its code names: a city's children are its counties and the
        # city's own halls and departments side by side.
        row_kind = str(row.get("kind") or kind)
        if row_kind not in NodeKind.values():  # staff: the bottom of the tree
            return None
        return _href(f, Node(NodeKind(row_kind), row["code"]))

    tables = {
        "summary": dv.summary_table(summary),
        "trend": dv.trend_table([asdict(i) for i in trend.items]),
        "levels": dv.level_table([asdict(r) for r in levels.rows]),
        "channels": dv.channel_table([asdict(r) for r in channels.rows]),
        "reasons": dv.reason_table([asdict(r) for r in reasons.rows]),
        "funnel": dv.funnel_table(summary),
        "children": dv.child_table(
            [asdict(r) for r in children.rows],
            child_label({r.kind or kind or "org" for r in children.rows}, scope),
            link,
        ),
    }
    return summary, tables


ITEM_SELECT_MAX = 100  # more items than this: the item is typed by its code


async def node_choices(
    db: DbSession, user: Principal, f: DashboardFilters, scope_name: str
) -> list[tuple[str, list[tuple[str, str, bool]]]]:
    """The node picker's groups of (value, label, selected): regions of the person's region,
    then departments and halls of their subtree (indented by depth)."""
    chosen = f.node.value if f.node else ""
    regions: list[dict[str, Any]] = []
    own_region = await org_queries.own_region(db, user)
    if may_use_regions(user) and own_region is not None:
        regions = await org_queries.region_subtree_options(db, own_region)
    orgs = await org_queries.org_options(db=db, actor=user)
    own = await org_queries.own_org(db, user)
    # (An assessor's whole area is their region: their own organisation stays an option.)
    if own is not None and user.region_path is None and any(o["code"] == own.code for o in orgs):
        # The person's own organisation is the "whole area" option; the rest move up a level.
        orgs = [{**o, "depth": o["depth"] - 1} for o in orgs if o["code"] != own.code]
    groups = []
    for label, kind, rows in (("地区", "region", regions), ("单位", "org", orgs)):
        options = [
            (value, "\u3000" * max(o["depth"], 0) + o["name"], value == chosen)
            for o in rows
            if (value := f"{kind}:{o['code']}")
        ]
        if options:
            groups.append((label, options))
    if chosen and not any(sel for _, options in groups for *_, sel in options):
        groups.append(("当前", [(chosen, scope_name or chosen, True)]))
    return groups


async def item_choices(
    db: DbSession, user: Principal, f: DashboardFilters
) -> list[tuple[str, str, bool]] | None:
    """The items to pick from, or None when there are none or too many for a list (the code
    is typed instead): those of the chosen organisation's subtree, else of the person's."""
    subtree, region_path = user.org_path, user.region_path
    if f.org_code:
        org = await org_queries.org_by_code(db, f.org_code)
        located = await org_queries.region_by_code(db, org.region_code) if org else None
        if org is not None and user.reads(org.path, located.path if located else None):
            subtree, region_path = org.path, None
    rows = await org_queries.item_options(db, subtree, ITEM_SELECT_MAX + 1, region_path)
    if not rows or len(rows) > ITEM_SELECT_MAX:
        return None
    options = [(o["code"], o["name"], o["code"] == f.item_code) for o in rows]
    if f.item_code and not any(sel for *_, sel in options):
        options.append((f.item_code, f.item_code, True))
    return options


@router.get(DASHBOARD)
async def dashboard(request: Request, db: DbSession, user: StatsConsoleUser):
    """The dashboard of the person's area for a period, a node and an item: KPI cards, the
    trend, the level and channel mix, the top reasons, the bad-review closed loop and the
    next tier down (each row and bar drills one tier down)."""
    f = DashboardFilters.from_query(request.query_params)
    context: dict[str, Any] = {
        "filters": f,
        "presets": Preset.choices(),
        "granularities": Granularity.choices(),
        "query": f.query(),
        "export_base": DASHBOARD + "/export",
        "errors": list(f.errors),
        "item_name": None,
        "trail": [],
    }
    status = 422 if f.errors else 200
    scope = None
    try:
        scope = await resolve_scope(db, user, f)
        if f.item_code:
            context["item_name"] = await org_queries.item_name(db, f.item_code)
            if context["item_name"] is None:
                raise NotFound("所选服务事项不存在", code="item_not_found")
    except DomainError as exc:
        context["errors"].append(exc.message)
        status = exc.status_code if status == 200 else status
    if scope is not None:
        context.update(scope_name=scope.name, root_name=scope.root_name, trail=scope.trail)
    else:
        context.update(scope_name="", root_name="本单位", trail=[])
    context["node_options"] = await node_choices(db, user, f, context["scope_name"])
    context["item_options"] = await item_choices(db, user, f)
    if not context["errors"] and scope is not None:
        summary, tables = await dashboard_tables(db, user, f, scope)
        context.update(
            kpis=dv.kpi_cards(summary),
            tables=tables,
            summary_table=tables["summary"],
            charts=[c for t in tables.values() if (c := t.chart_data())],
        )
        # The emerging complaint topics of the same node (the recent weeks up to today).
        args = metric_filters(user, f, scope)
        found = await topic_queries.emerging(
            db, **{k: args[k] for k in ("actor", "region_code", "org_code", "item_code")}
        )
        context["emerging"] = tv.emerging_table(found)
        if chart := tv.emerging_chart(found):
            context["charts"].append(chart)
    return await page(request, db, user, "console/dashboard.html", context, status_code=status)


@router.get(DASHBOARD + "/export")
async def dashboard_export(request: Request, db: DbSession, user: StatsConsoleUser):
    """One table of the dashboard as CSV or Excel, with the page's filters."""
    f = DashboardFilters.from_query(request.query_params)
    what = (request.query_params.get("what") or "").strip()
    fmt, problem = export_format(request.query_params)
    if what not in DASHBOARD_TABLES:
        raise DomainError(
            "下载内容应为 " + "、".join(DASHBOARD_TABLES) + " 之一",
            code="invalid_export",
            status_code=422,
        )
    if fmt is None or f.errors:
        raise DomainError(problem or "；".join(f.errors), code="invalid_filter", status_code=422)
    scope = await resolve_scope(db, user, f)
    if f.item_code and await org_queries.item_name(db, f.item_code) is None:
        raise NotFound("所选服务事项不存在", code="item_not_found")
    _, tables = await dashboard_tables(db, user, f, scope)
    table = tables[what]
    name = f"数据看板-{table.title}-{scope.name}-{f.since.isoformat()}至{f.until.isoformat()}"
    return table_response(
        filename=name, columns=table.columns, rows=table.rows, fmt=fmt, sheet=table.title
    )


# --- the rankings --------------------------------------------------------------------------


def period_options(today: date) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        ("月度", recent_periods(PeriodKind.MONTH, today, 12)),
        ("季度", recent_periods(PeriodKind.QUARTER, today, 8)),
        ("年度", recent_periods(PeriodKind.YEAR, today, 3)),
    ]


def bottom_period(f: RankingFilters, today: date) -> str:
    """The last period of the consecutive-bottom list: the chosen one when complete, else the
    one before it (a period still running says nothing yet about the bottom)."""
    if f.period == current_period(f.kind, today):
        return parse_period(f.period).previous().label
    return f.period


async def ranking_tables(
    db: DbSession, user: Principal, f: RankingFilters
) -> tuple[dict[str, Any], dict[str, dv.Table]]:
    """The ranking of the tier for the period, and the consecutive-bottom list."""
    result = await metrics.rankings(
        db=db, actor=user, tier=cast(metrics.Tier, f.tier.value), period=f.period
    )
    low = await metrics.bottom(
        db=db,
        actor=user,
        tier=cast(metrics.Tier, f.tier.value),
        period=bottom_period(f, local_today()),
    )
    label = f.tier.label
    tables = {
        "ranked": dv.ranking_table([asdict(r) for r in result.items], label),
        "unranked": dv.unranked_table(
            [asdict(r) for r in result.unranked], label, result.min_sample
        ),
        "bottom": dv.bottom_table(low, label),
    }
    return {"formula": dv.formula_text(result.formula), "live": result.live}, tables


async def _scope_name(db: DbSession, user: Principal) -> str:
    own_region = await org_queries.own_region(db, user)
    if may_use_regions(user) and own_region is not None:
        return own_region.name
    own = await org_queries.own_org(db, user)
    return own.name if own else "本单位"


@router.get(RANKINGS)
async def rankings(request: Request, db: DbSession, user: StatsConsoleUser):
    """The ranking of one tier (region, department, hall, window, staff, item) for a month, a
    quarter or a year: the ranked, those below the minimum sample apart, and those at the
    bottom for several periods in a row (约谈、通报 candidates)."""
    f = RankingFilters.from_query(request.query_params)
    context: dict[str, Any] = {
        "filters": f,
        "tiers": Tier.choices(),
        "period_options": period_options(local_today()),
        "query": f.query(),
        "export_base": RANKINGS + "/export",
        "errors": list(f.errors),
        "scope_name": await _scope_name(db, user),
        "formula": "",
    }
    status = 422 if f.errors else 200
    if not f.errors:
        about, tables = await ranking_tables(db, user, f)
        context.update(
            tables=tables,
            formula=about["formula"],
            running=f.period == current_period(f.kind, local_today()),
        )
    return await page(request, db, user, "console/rankings.html", context, status_code=status)


@router.get(RANKINGS + "/export")
async def rankings_export(request: Request, db: DbSession, user: StatsConsoleUser):
    """One table of the rankings as CSV or Excel."""
    f = RankingFilters.from_query(request.query_params)
    what = (request.query_params.get("what") or "").strip()
    fmt, problem = export_format(request.query_params)
    if what not in RANKING_TABLES:
        raise DomainError(
            "下载内容应为 " + "、".join(RANKING_TABLES) + " 之一",
            code="invalid_export",
            status_code=422,
        )
    if fmt is None or f.errors:
        raise DomainError(problem or "；".join(f.errors), code="invalid_filter", status_code=422)
    _, tables = await ranking_tables(db, user, f)
    table = tables[what]
    name = f"榜单-{f.tier.label}-{f.label}-{table.title}"
    return table_response(
        filename=name, columns=table.columns, rows=table.rows, fmt=fmt, sheet=table.title
    )
