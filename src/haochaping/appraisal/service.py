"""The appraisal's use cases: publish a scheme version, record a bonus/deduction item, and
score the units of a tier for a month, quarter or year.

Scoring (docs/appraisal.md): each indicator's value per unit comes from `analytics.metrics`
(the same figure as the dashboard, under the scheme region's formula); values are normalised
min–max within the tier, direction-aware (higher-better: (v − min) / (max − min); lower-better:
(max − v) / (max − min); all equal, or a value without a denominator — no bad review to
rectify, no completed case: 1); a unit's score = 100 × Σ weight × normalised + its bonus and
deduction items of the period's months. Units with fewer counted ratings than the policy's
`min_sample` are listed apart, unscored, as in the rankings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.analytics import metrics, source
from haochaping.analytics import periods as P
from haochaping.appraisal import ahp, queries
from haochaping.appraisal.choices import METRICS, Direction, Tier
from haochaping.appraisal.models import AppraisalAdjustment, AppraisalScheme
from haochaping.appraisal.schemas import SchemeCreate
from haochaping.core.audit import AuditAction, record
from haochaping.core.auth import Principal
from haochaping.core.errors import Forbidden, Invalid, NotFound
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Org, Region
from haochaping.workorders import attachments

NORMALISATION = (
    "min-max within the tier, direction-aware; 1 when all units are equal or the value has "
    "no denominator"
)
POINTS_LIMIT = 20  # a bonus or deduction item is at most ±20 points
FOLDER = "appraisal"  # under the upload directory, beside the work orders' attachments


# --- scope ------------------------------------------------------------------------------------


async def own_region(db: AsyncSession, actor: Principal) -> Region | None:
    """The region of the caller's organisation (None: an organisation without one)."""
    org = await db.get(Org, actor.org_id)
    return await db.get(Region, org.region_code) if org is not None else None


async def require_region(db: AsyncSession, actor: Principal, code: str) -> Region:
    """A region inside the caller's own region (404 unknown, 403 outside)."""
    region = await org_service.get_region(db=db, code=code)
    own = await own_region(db, actor)
    if own is None or not region.path.startswith(own.path):
        raise Forbidden(
            "超出本账号所在行政区划的范围",
            code="out_of_scope",
            details=[{"field": "region_code", "value": code}],
        )
    return region


# --- schemes ----------------------------------------------------------------------------------


def _invalid(message: str, code: str, details: list[Any]) -> Invalid:
    return Invalid(message, code=code, details=details)


def check_indicators(data: SchemeCreate) -> list[dict[str, Any]]:
    """The indicators with their direction and description filled in (422 on an unknown
    figure or a repeated code)."""
    seen: set[str] = set()
    out = []
    for i, ind in enumerate(data.indicators):
        metric = METRICS.get(ind.metric)
        if metric is None:
            raise _invalid(
                f"指标 {ind.code} 的统计口径 {ind.metric} 不存在",
                "unknown_metric",
                [{"field": f"indicators[{i}].metric", "value": ind.metric[:40]}],
            )
        if ind.code in seen:
            raise _invalid(
                f"指标代码 {ind.code} 重复",
                "duplicate_indicator",
                [{"field": f"indicators[{i}].code", "value": ind.code}],
            )
        seen.add(ind.code)
        out.append(
            {
                "code": ind.code,
                "metric": ind.metric,
                "weight_label": ind.weight_label,
                "direction": (ind.direction or metric.direction).value,
                "description": ind.description or metric.description,
            }
        )
    return out


def judge(matrix: list[list[Any]], n: int) -> tuple[ahp.Result, list[list[str]]]:
    """Weights and consistency of a judgement matrix for n indicators; 422 when it is not a
    judgement matrix or its CR is 0.1 or more (`inconsistent_judgements`, the CR in details)."""
    try:
        parsed = ahp.check(matrix, n)
    except ahp.JudgementError as exc:
        raise _invalid(
            exc.message,
            exc.problem,
            [{"field": "judgements", "row": i, "column": j} for i, j in exc.cells]
            or [{"field": "judgements", "size": n}],
        ) from exc
    result = ahp.weigh(parsed)
    if not result.consistent:
        raise _invalid(
            f"判断矩阵一致性不足：一致性比率 CR = {result.cr:.4f}，须小于 0.1，请调整判断值",
            "inconsistent_judgements",
            [
                {
                    "field": "judgements",
                    "cr": round(result.cr, 6),
                    "ci": round(result.ci, 6),
                    "lambda_max": round(result.lambda_max, 6),
                    "limit": ahp.CR_LIMIT,
                }
            ],
        )
    return result, [[str(v) for v in row] for row in parsed]


async def create_scheme(
    *, db: AsyncSession, actor: Principal, data: SchemeCreate
) -> AppraisalScheme:
    """Publish the next version of a region's scheme for a year (earlier versions stay)."""
    region = await require_region(db, actor, data.region_code)
    indicators = check_indicators(data)
    result, cells = judge(data.judgements, len(indicators))
    for ind, w in zip(indicators, result.weights, strict=True):
        ind["weight"] = round(w, 6)
    version = await queries.last_version(db, region_code=region.code, year=data.year) + 1
    scheme = AppraisalScheme(
        region_code=region.code,
        year=data.year,
        version=version,
        indicators=indicators,
        judgements=cells,
        lambda_max=round(result.lambda_max, 6),
        ci=round(result.ci, 6),
        cr=round(result.cr, 6),
        note=data.note,
        created_by=actor.name,
    )
    db.add(scheme)
    await db.flush()
    record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=AuditAction.CREATE_APPRAISAL_SCHEME,
        target_type="appraisal_scheme",
        target_id=scheme.id,
        detail={"region_code": region.code, "year": data.year, "version": version},
    )
    return scheme


async def get_scheme(*, db: AsyncSession, actor: Principal, scheme_id: int) -> AppraisalScheme:
    """A scheme version of the caller's region (404 otherwise, 403 outside it)."""
    scheme = await db.get(AppraisalScheme, scheme_id)
    if scheme is None:
        raise NotFound("考核方案不存在", code="scheme_not_found")
    await require_region(db, actor, scheme.region_code)
    return scheme


def scheme_view(scheme: AppraisalScheme) -> dict[str, Any]:
    """A scheme as the API and the pages show it."""
    indicators = [
        {**ind, "metric_label": METRICS[ind["metric"]].label} for ind in scheme.indicators
    ]
    return {
        "id": scheme.id,
        "region_code": scheme.region_code,
        "year": scheme.year,
        "version": scheme.version,
        "indicators": indicators,
        "weights": [ind["weight"] for ind in scheme.indicators],
        "judgements": scheme.judgements,
        "lambda_max": scheme.lambda_max,
        "ci": scheme.ci,
        "cr": scheme.cr,
        "note": scheme.note,
        "created_by": scheme.created_by,
        "created_at": scheme.created_at,
    }


# --- bonus and deduction items ----------------------------------------------------------------


def parse_month(value: str) -> str:
    """A month label `2026-11` (422 `invalid_month` otherwise)."""
    try:
        period = P.parse_period(value)
    except Invalid:
        period = None
    if period is None or period.kind != "month":
        raise _invalid(
            "月份格式不正确，应为 2026-11",
            "invalid_month",
            [{"field": "month", "value": value[:20]}],
        )
    return period.label


def parse_points(value: float) -> int:
    """Points as tenths (422 `invalid_points`: zero, beyond ±20, or finer than 0.1)."""
    tenths = round(value * 10)
    if not tenths or abs(value) > POINTS_LIMIT or abs(tenths - value * 10) > 1e-6:
        raise _invalid(
            f"加减分须为 -{POINTS_LIMIT} 至 {POINTS_LIMIT} 之间的非零分值，最多一位小数",
            "invalid_points",
            [{"field": "points"}],
        )
    return tenths


async def add_adjustment(
    *,
    db: AsyncSession,
    actor: Principal,
    org_code: str,
    month: str,
    points: float,
    note: str,
    filename: str,
    declared: str | None,
    data: bytes,
    max_bytes: int,
    upload_dir: Path,
) -> AppraisalAdjustment:
    """Record a bonus (+) or deduction (−) item of a unit for a month, with its note and
    evidence file (stored like a work order's attachment); on the audit trail."""
    org = await org_service.get_org(db=db, code=org_code)
    actor.require(org.path)
    await require_region(db, actor, org.region_code)
    if org.kind not in Tier.values():
        raise _invalid("该机构不是考核对象", "not_appraised", [{"field": "org_code"}])
    label = parse_month(month)
    tenths = parse_points(points)
    text = note.strip()
    if not text or len(text) > 500:
        raise _invalid("请填写 1–500 字的说明", "invalid_note", [{"field": "note"}])
    content_type = attachments.check(
        filename=filename, declared=declared, data=data, max_bytes=max_bytes
    )
    key, digest = await asyncio.to_thread(attachments.store, upload_dir / FOLDER, data)
    item = AppraisalAdjustment(
        org_id=org.id,
        month=label,
        points_tenths=tenths,
        note=text,
        filename=(filename or "file")[:200],
        content_type=content_type,
        size=len(data),
        sha256=digest,
        storage_key=key,
        created_by=actor.name,
    )
    db.add(item)
    await db.flush()
    record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=AuditAction.ADD_APPRAISAL_ADJUSTMENT,
        target_type="appraisal_adjustment",
        target_id=item.id,
        detail={"org_code": org.code, "month": label, "points": tenths / 10, "sha256": digest},
    )
    return item


async def read_adjustment_file(
    *, db: AsyncSession, actor: Principal, adjustment_id: int, upload_dir: Path
) -> tuple[AppraisalAdjustment, bytes]:
    """An item's evidence file (404 unknown, 403 outside the caller's area)."""
    item = await db.get(AppraisalAdjustment, adjustment_id)
    if item is None:
        raise NotFound("加减分项不存在", code="adjustment_not_found")
    org = await db.get(Org, item.org_id)
    assert org is not None
    actor.require(org.path)
    await require_region(db, actor, org.region_code)
    data = await asyncio.to_thread((upload_dir / FOLDER / item.storage_key).read_bytes)
    return item, data


def adjustment_view(item: AppraisalAdjustment, org: Org) -> dict[str, Any]:
    return {
        "id": item.id,
        "org_code": org.code,
        "org_name": org.name,
        "month": item.month,
        "points": item.points,
        "note": item.note,
        "filename": item.filename,
        "content_type": item.content_type,
        "size": item.size,
        "sha256": item.sha256,
        "created_by": item.created_by,
        "created_at": item.created_at,
    }


async def adjustment_view_of(db: AsyncSession, item: AppraisalAdjustment) -> dict[str, Any]:
    org = await db.get(Org, item.org_id)
    assert org is not None
    return adjustment_view(item, org)


async def list_adjustments(
    *, db: AsyncSession, actor: Principal, region_code: str, period: str | None
) -> list[tuple[AppraisalAdjustment, Org]]:
    """The items of a region's units in the caller's area, of a month, quarter or year."""
    region = await require_region(db, actor, region_code)
    months = months_of(P.parse_period(period)) if period else None
    return await queries.adjustments(db, actor=actor, region=region, months=months)


# --- scores -----------------------------------------------------------------------------------


@dataclass
class UnitScore:
    code: str
    name: str
    ratings: int
    values: dict[str, float | None]
    adjustment: float
    contributions: list[dict[str, Any]] = field(default_factory=list)
    indicator_score: float | None = None
    score: float | None = None
    rank: int | None = None


def months_of(period: P.Period) -> list[str]:
    """The month labels a month, quarter or year covers."""
    first = P.month_of(period.start)
    return [first.shift(i).label for i in range(period.months)]


def normalise(value: float | None, lo: float | None, hi: float | None, direction: str) -> float:
    """Min–max within the tier, direction-aware; 1 without a value or a spread."""
    if value is None or lo is None or hi is None or hi == lo:
        return 1.0
    if direction == Direction.LOWER:
        return (hi - value) / (hi - lo)
    return (value - lo) / (hi - lo)


def score_units(scheme: AppraisalScheme, units: list[UnitScore]) -> None:
    """Fill each scored unit's contributions, score and competition rank (1, 2, 2, 4)."""
    for ind in scheme.indicators:
        present = [u.values[ind["code"]] for u in units if u.values[ind["code"]] is not None]
        lo = min(present) if present else None  # type: ignore[type-var]
        hi = max(present) if present else None  # type: ignore[type-var]
        for u in units:
            value = u.values[ind["code"]]
            n = normalise(value, lo, hi, ind["direction"])
            u.contributions.append(
                {
                    "code": ind["code"],
                    "value": value,
                    "normalised": round(n, 6),
                    "weight": ind["weight"],
                    "contribution": round(100 * ind["weight"] * n, 4),
                }
            )
    for u in units:
        u.indicator_score = round(sum(c["contribution"] for c in u.contributions), 4)
        u.score = round(u.indicator_score + u.adjustment, 4)
    units.sort(key=lambda u: (-(u.score or 0.0), u.code))
    previous: float | None = None
    current = 0
    for position, u in enumerate(units, start=1):
        if u.score != previous:
            current, previous = position, u.score
        u.rank = current


def unit_context(ctx: metrics.Context, unit: Org, every: dict[str, int]) -> metrics.Context:
    """The region's resolved question narrowed to one unit's subtree: the region's formula,
    the unit's organisations (its window's ratings for a window). When none of the subtree
    was left out by the region, the subtree's root is the rollups' node, as `metrics.resolve`
    would set it for `org_code` alone."""
    ids = tuple(sorted(o.id for o in ctx.orgs.values() if o.path.startswith(unit.path)))
    whole = len(ids) == sum(1 for path in every if path.startswith(unit.path))
    scope = source.Scope(
        org_ids=ids,
        by_window=unit.kind == "window",
        since=ctx.scope.since,
        until=ctx.scope.until,
        held_counts=ctx.formula.held_counts,
        node=(unit.id, unit.path) if whole else None,
    )
    return metrics.Context(scope, ctx.formula, ctx.orgs, None, ctx.node_region, ctx.policy_region)


async def _values(
    db: AsyncSession, scheme: AppraisalScheme, ctx: metrics.Context
) -> tuple[int, dict[str, float | None]]:
    summary = await metrics.summary_of(db=db, ctx=ctx)
    figures: dict[str, float | None] = {
        "good_rate": summary.good_rate,
        "bad_rate": summary.bad_rate,
        "score": summary.score,
        "rectified_on_time_rate": summary.rectified_on_time_rate,
        "verified_on_time_rate": summary.verified_on_time_rate,
        "callback_rate": summary.callback_rate,
        "callback_satisfied_rate": summary.callback_satisfied_rate,
    }
    if any(ind["metric"] == "active_rating_rate" for ind in scheme.indicators):
        figures["active_rating_rate"] = (await metrics.active_rating_of(db=db, ctx=ctx)).rate
    return summary.total, {ind["code"]: figures[ind["metric"]] for ind in scheme.indicators}


@dataclass
class Scores:
    region: Region
    period: P.Period
    tier: str
    scheme: AppraisalScheme
    min_sample: int
    items: list[UnitScore]
    unscored: list[UnitScore]


async def scores(
    *,
    db: AsyncSession,
    actor: Principal,
    region_code: str,
    period: str,
    tier: str,
    version: int | None = None,
) -> Scores:
    """The scores of a tier's units in a region for a month, quarter or year, by the newest
    (or the given) version of the region's scheme for that year, ranked."""
    region = await require_region(db, actor, region_code)
    if tier not in Tier.values():
        raise _invalid("考核对象层级不正确", "invalid_tier", [{"field": "tier"}])
    when = P.parse_period(period)
    scheme = await queries.scheme_version(
        db, region_code=region.code, year=when.start.year, version=version
    )
    if scheme is None:
        raise NotFound(
            f"{region.name} {when.start.year} 年尚无"
            + (f"第 {version} 版" if version else "")
            + "考核方案",
            code="scheme_not_found",
            details=[{"field": "version" if version else "period", "value": period}],
        )
    since, until = when.bounds()
    # The region's question, resolved once (its formula, the organisations located in it);
    # each unit is that question narrowed to the unit's subtree.
    ctx = await metrics.resolve(
        db=db, actor=actor, region_code=region.code, since=since, until=until
    )
    formula = ctx.formula
    every = {o.path: o.id for o in await source.org_rows(db, actor.org_path)}
    orgs = await queries.units(db, actor=actor, region=region, kind=tier)
    extra = await queries.adjustment_totals(
        db, org_ids=[o.id for o in orgs], months=months_of(when)
    )
    scored: list[UnitScore] = []
    unscored: list[UnitScore] = []
    for org in orgs:
        total, values = await _values(db, scheme, unit_context(ctx, org, every))
        unit = UnitScore(org.code, org.name, total, values, extra.get(org.id, 0) / 10)
        (scored if total and total >= formula.min_sample else unscored).append(unit)
    score_units(scheme, scored)
    unscored.sort(key=lambda u: (-u.ratings, u.code))
    return Scores(region, when, tier, scheme, formula.min_sample, scored, unscored)


def scores_view(result: Scores) -> dict[str, Any]:
    """The scores as the API answers them."""
    scheme = scheme_view(result.scheme)
    since, until = result.period.bounds()

    def row(u: UnitScore) -> dict[str, Any]:
        return {
            "rank": u.rank,
            "code": u.code,
            "name": u.name,
            "ratings": u.ratings,
            "indicator_score": u.indicator_score,
            "adjustment": u.adjustment,
            "score": u.score,
            "contributions": u.contributions,
        }

    return {
        "region_code": result.region.code,
        "period": result.period.label,
        "tier": result.tier,
        "since": since,
        "until": until,
        "scheme": {
            "id": scheme["id"],
            "year": scheme["year"],
            "version": scheme["version"],
            "cr": scheme["cr"],
            "indicators": scheme["indicators"],
        },
        "normalisation": NORMALISATION,
        "min_sample": result.min_sample,
        "items": [row(u) for u in result.items],
        "unscored": [row(u) for u in result.unscored],
    }
