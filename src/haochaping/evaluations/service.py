"""Evaluation intake: validate, deduplicate and store ratings for good (append-only)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from haochaping.cases.models import Case
from haochaping.core import audit
from haochaping.core.auth import Principal
from haochaping.core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from haochaping.core.handlers import validation_details, validation_message
from haochaping.core.roles import HANDLERS, MANAGERS, Role
from haochaping.core.security import (
    mask_cert_no,
    mask_name,
    mask_phone,
    mask_text,
    split_identifiers,
)
from haochaping.core.timeutil import utcnow
from haochaping.db import bulk
from haochaping.db.crypto import DataKeys
from haochaping.evaluations import schemas
from haochaping.evaluations.choices import (
    CASE_BOUND_CHANNELS,
    LEVEL_LABELS,
    Channel,
    Reached,
)
from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.schemas import StageRule
from haochaping.evaluations.tags import Tag
from haochaping.orgs.models import Item, Org, Staff
from haochaping.orgs.service import inactive

if TYPE_CHECKING:
    from starlette.requests import Request

EVALUATION: Table = Evaluation.__table__  # type: ignore[assignment]
# The national default list of stages: the whole case, from acceptance.
NATIONAL_STAGES: Mapping[str, StageRule] = {"whole": StageRule(code="whole")}
# A general comment or supervisory rating is about an org or item, not a step of a case.
FREE_STAGES = NATIONAL_STAGES
# Raters and assessors who sign in may file the two channels not bound to a case.
USER_CHANNEL_ROLES: dict[str, frozenset[Role]] = {
    "review": MANAGERS | {Role.ASSESSOR},
    "inspection": MANAGERS | {Role.ASSESSOR},
}


@dataclass(frozen=True)
class IntakeRules:
    """What intake checks a rating against."""

    tagset_version: str
    tags: dict[str, Tag]
    # The data keys of the app's engine: intake hashes the rater's identifiers with them.
    keys: DataKeys
    window_days: int = 30  # the default rating window, days after completion
    good_levels: frozenset[int] = frozenset({3, 4, 5})
    # `async (db, region_code, default) -> days`: a region's own window (its policy); set by
    # the app at startup. None: `window_days` everywhere.
    window_of: Any = None
    # `async (db, region_code) -> {code: StageRule}`: the closed list of stages a region's
    # cases may be rated at (its policy, cached); set by the app at startup. None: `whole`.
    stages_of: Any = None
    # Called with the rows just stored, in the same transaction (the closed loop opens work
    # orders for bad ratings here); set by the app at startup.
    on_stored: Any = None

    def is_bad(self, level: int) -> bool:
        return level not in self.good_levels

    async def window_for(self, db: AsyncSession, region_code: str) -> int:
        """Days after completion during which a case of this region may be rated."""
        if self.window_of is None or not region_code:
            return self.window_days
        return await self.window_of(db, region_code, self.window_days)

    async def stages_for(self, db: AsyncSession, region_code: str) -> Mapping[str, StageRule]:
        """The stages a case of this region may be rated at, and how far it must have come."""
        if self.stages_of is None or not region_code:
            return NATIONAL_STAGES
        return await self.stages_of(db, region_code)


@dataclass
class Source:
    """Where a rating came from: recorded on the row, never trusted for scope."""

    ip: str | None = None
    user_agent: str | None = None
    invitation_id: int | None = None
    client_id: int | None = None  # the client that issued the rating link, if any


def source_of(request: Request) -> Source:
    """Where a rating comes from, read off the HTTP request (the API's and the portal's)."""
    client = request.client
    return Source(ip=client.host if client else None, user_agent=request.headers.get("user-agent"))


@dataclass
class Target:
    """What a rating is about, resolved to ids (for the row) and codes (for the answer)."""

    case_id: int | None = None
    case_no: str | None = None
    org_id: int = 0
    org_code: str = ""
    region_code: str = ""
    item_id: int | None = None
    item_code: str | None = None
    window_id: int | None = None
    window_code: str | None = None
    staff_id: int | None = None
    staff_no: str | None = None
    applicant: dict[str, Any] = field(default_factory=dict)


def _invalid(message: str, code: str, field_name: str, **extra: Any) -> Invalid:
    return Invalid(message, code=code, details=[{"field": field_name, **extra}])


def check_content(*, data: schemas.EvaluationCreate, rules: IntakeRules) -> None:
    """Level-bound rules: reasons belong to the level; a bad rating says why."""
    for code in data.reasons:
        tag = rules.tags.get(code)
        if tag is None:
            raise _invalid(f"评价原因代码 {code} 不存在", "unknown_reason", "reasons", value=code)
        if tag.level != data.level:
            raise _invalid(
                f"评价原因“{tag.text}”({code}) 属于“{LEVEL_LABELS[tag.level]}”，"
                f"与所选等级“{LEVEL_LABELS[data.level]}”不符",
                "reason_level_mismatch",
                "reasons",
                value=code,
            )
    if len(set(data.reasons)) != len(data.reasons):
        raise _invalid("评价原因有重复", "duplicate_reason", "reasons")
    if rules.is_bad(data.level) and not data.reasons and not data.comment:
        raise _invalid("差评须至少选择一项原因或填写评价内容", "reason_required", "reasons")


def check_call_id(*, data: schemas.EvaluationCreate) -> None:
    """A hotline call's id belongs to a rating recorded in that call (channel `phone`)."""
    if data.call_id is not None and data.channel != Channel.PHONE:
        raise _invalid(
            "来电编号 call_id 仅用于 12345 热线（电话渠道 phone）代录的评价",
            "call_id_not_allowed",
            "call_id",
            channel=str(data.channel),
        )


def check_channel(*, actor: Principal, channel: str) -> None:
    """A client posts only on its channels; people only on review/inspection by role."""
    if actor.channels is not None:  # API clients and rating links carry their channels
        if channel not in actor.channels:
            raise Forbidden(
                f"此 API 密钥无权使用渠道 {channel}",
                code="channel_out_of_scope",
                details=[{"field": "channel", "value": channel}],
            )
    elif actor.role not in USER_CHANNEL_ROLES.get(channel, ()):
        raise Forbidden(
            "当前角色无权在此渠道提交评价",
            code="channel_out_of_scope",
            details=[{"field": "channel", "value": channel}],
        )


async def rules_for_case(
    *, db: AsyncSession, case: Case, rules: IntakeRules
) -> tuple[int, Mapping[str, StageRule]]:
    """The rating window and the stage list of a case: its unit's region's policy, or the
    defaults."""
    region = (await db.execute(select(Org.region_code).where(Org.id == case.org_id))).scalar()
    return (await rules.window_for(db, region or ""), await rules.stages_for(db, region or ""))


async def check_link_stage(
    *, db: AsyncSession, case: Case, stage: str, rules: IntakeRules
) -> StageRule:
    """The rule of a rating link's stage as the region's policy has it now: 422 when the list
    no longer holds it or the case has not reached it (the policy may change after the link
    was made)."""
    _, stages = await rules_for_case(db=db, case=case, rules=rules)
    rule = check_stage(stage=stage, stages=stages)
    check_stage_reached(case=case, rule=rule)
    return rule


def check_stage(*, stage: str, stages: Mapping[str, StageRule]) -> StageRule:
    """The rule of a stage on the region's closed list, or a 422."""
    rule = stages.get(stage)
    if rule is None:
        listed = "、".join(f"{r.label}（{r.code}）" for r in stages.values())
        raise _invalid(
            f"评价环节 {stage} 不在本地区可评价的环节之列：{listed}",
            "unknown_stage",
            "stage",
            value=stage,
        )
    return rule


def check_stage_reached(*, case: Any, rule: StageRule) -> None:
    """A stage that needs completion cannot be rated while the case is still in progress."""
    if rule.reached is Reached.COMPLETED and case.completed_at is None:
        raise _invalid(
            f"办件尚未办结，暂不能评价“{rule.label}”环节",
            "stage_not_reached",
            "stage",
            value=rule.code,
        )


def check_case_rules(
    *,
    case: Any,
    data: schemas.EvaluationCreate,
    window_days: int,
    now: datetime,
    stages: Mapping[str, StageRule] | None = None,
) -> None:
    """A case may be rated from acceptance until the window after completion closes, at a
    stage of the region's list that it has reached."""
    if case.status == "received" or case.accepted_at is None:
        raise _invalid("办件尚未受理，暂不能评价", "case_not_accepted", "case_no")
    rule = check_stage(stage=data.stage, stages=NATIONAL_STAGES if stages is None else stages)
    check_stage_reached(case=case, rule=rule)
    end = case.completed_at
    if end is not None and now > end + timedelta(days=window_days):
        raise _invalid(
            f"已超过评价期限（办结后 {window_days} 天）", "evaluation_window_closed", "case_no"
        )
    r = data.rater
    if (
        r is not None
        and r.cert_no
        and case.applicant_cert_no
        and not r.is_agent
        and r.cert_no.upper() != case.applicant_cert_no.upper()
    ):
        raise _invalid("评价人不是该办件的申请人", "rater_not_applicant", "rater.cert_no")


_Window = aliased(Org)
# One query per lookup, window code included: each round trip costs more than the join.
# Columns, not the ORM entity: intake only reads them, and building and tracking an entity
# per case cost more than the query (docs/benchmarks.md). The applicant's identifiers are
# decrypted by their column type, as the entity's would be.
_CASE_TARGET = (
    select(
        Case.id,
        Case.case_no,
        Case.org_id,
        Case.item_id,
        Case.window_id,
        Case.staff_id,
        Case.status,
        Case.accepted_at,
        Case.completed_at,
        Case.applicant_type,
        Case.applicant_name,
        Case.applicant_cert_type,
        Case.applicant_cert_no,
        Case.applicant_phone,
        Org.code.label("org_code"),
        Org.path.label("org_path"),
        Org.region_code,
        Item.code.label("item_code"),
        Staff.staff_no,
        _Window.code.label("window_code"),
        Org.active.label("org_active"),
        Item.active.label("item_active"),
        Staff.active.label("staff_active"),
        _Window.active.label("window_active"),
    )
    .join(Org, Org.id == Case.org_id)
    .join(Item, Item.id == Case.item_id)
    .outerjoin(Staff, Staff.id == Case.staff_id)
    .outerjoin(_Window, _Window.id == Case.window_id)
)
# Built once with bound parameters, like the INSERTs below: a `.where()` per call made a new
# statement whose cache key SQLAlchemy computed over the whole join every time, and an IN list
# of one value is recompiled on every execution.
_CASE_BY_NO = _CASE_TARGET.where(Case.case_no == bindparam("case_no"))
_CASES_BY_NO = _CASE_TARGET.where(Case.case_no.in_(bindparam("case_nos", expanding=True)))


def _target_from_case(case: Any) -> Target:
    return Target(
        case_id=case.id,
        case_no=case.case_no,
        org_id=case.org_id,
        org_code=case.org_code,
        region_code=case.region_code,
        item_id=case.item_id,
        item_code=case.item_code,
        window_id=case.window_id,
        window_code=case.window_code,
        staff_id=case.staff_id,
        staff_no=case.staff_no,
        applicant={
            "rater_type": case.applicant_type,
            "rater_name": case.applicant_name,
            "rater_cert_type": case.applicant_cert_type,
            "rater_cert_no": case.applicant_cert_no,
            "rater_phone": case.applicant_phone,
        },
    )


RATINGS_REFUSED = "不再接受评价"


def check_case_active(case: Any) -> None:
    """422 when the case's organisation, window, item or staff member has been deactivated:
    deactivation stops new ratings (the ones given before stay and still count)."""
    if not case.org_active:
        raise inactive("org", case.org_code, "case_no", RATINGS_REFUSED)
    if case.window_id is not None and not case.window_active:
        raise inactive("org", case.window_code, "case_no", RATINGS_REFUSED)
    if not case.item_active:
        raise inactive("item", case.item_code, "case_no", RATINGS_REFUSED)
    if case.staff_id is not None and not case.staff_active:
        raise inactive("staff", case.staff_no, "case_no", RATINGS_REFUSED)


_CASE_BY_ID = _CASE_TARGET.where(Case.id == bindparam("case_id"))


async def check_case_open(*, db: AsyncSession, case_id: int) -> None:
    """`check_case_active` for a case by id (rating links: when made, opened and used)."""
    row = (await db.execute(_CASE_BY_ID, {"case_id": case_id})).one()
    check_case_active(row)


async def resolve_case_targets(
    *, db: AsyncSession, case_nos: set[str]
) -> dict[str, tuple[Any, str, Target]]:
    """Cases by number (a row of the columns intake reads), org path and target, in one
    query."""
    if len(case_nos) == 1:
        rows = (await db.execute(_CASE_BY_NO, {"case_no": next(iter(case_nos))})).all()
    else:
        rows = (await db.execute(_CASES_BY_NO, {"case_nos": list(case_nos)})).all()
    return {case.case_no: (case, case.org_path, _target_from_case(case)) for case in rows}


async def resolve_free_target(
    *, db: AsyncSession, actor: Principal, data: schemas.EvaluationCreate
) -> Target:
    """The org and/or item that a general comment or supervisory rating is about."""
    if data.case_no:
        raise _invalid(
            "综合点评与监督查评不绑定办件，请填写 org_code 或 item_code",
            "case_not_allowed",
            "case_no",
        )
    if not data.org_code and not data.item_code:
        raise _invalid(
            "须填写被评价的机构 org_code 或事项 item_code", "target_required", "org_code"
        )
    item = None
    if data.item_code:
        item = (
            await db.execute(select(Item).where(Item.code == data.item_code))
        ).scalar_one_or_none()
        if item is None:
            raise NotFound(
                f"事项 {data.item_code} 不存在",
                code="item_not_found",
                details=[{"field": "item_code", "value": data.item_code}],
            )
        if not item.active:
            raise inactive("item", item.code, "item_code", RATINGS_REFUSED)
    if data.org_code:
        org = (await db.execute(select(Org).where(Org.code == data.org_code))).scalar_one_or_none()
        if org is None:
            raise NotFound(
                f"机构 {data.org_code} 不存在",
                code="org_not_found",
                details=[{"field": "org_code", "value": data.org_code}],
            )
        if item is not None and item.org_id != org.id:
            raise _invalid("事项不属于所填机构", "item_org_mismatch", "item_code")
    else:
        assert item is not None  # a rating names an org or an item (schema-checked)
        org = await db.get(Org, item.org_id)
    assert org is not None  # an item's org (foreign key)
    actor.require(org.path)
    if not org.active:
        field_name = "org_code" if data.org_code else "item_code"
        raise inactive("org", org.code, field_name, RATINGS_REFUSED)
    window = org if org.kind == "window" else None
    return Target(
        org_id=org.id,
        org_code=org.code,
        region_code=org.region_code,
        item_id=item.id if item else None,
        item_code=item.code if item else None,
        window_id=window.id if window else None,
        window_code=window.code if window else None,
    )


def comment_columns(comment: str | None) -> dict[str, str | None]:
    """The comment columns of a rating: ID-card and mobile numbers masked in `comment`, the
    original in `comment_original` (encrypted by its column type) only when they differ."""
    masked, original = split_identifiers(comment or None)
    return {"comment": masked, "comment_original": original}


def build_row(
    *,
    data: schemas.EvaluationCreate,
    target: Target,
    actor: Principal,
    rules: IntakeRules,
    source: Source,
    now: datetime,
) -> dict[str, Any]:
    """The column values of a new evaluation row."""
    r = data.rater
    # Every rater column, even when nobody is named (a general comment without a rater).
    rater: dict[str, Any] = dict.fromkeys(
        ("rater_type", "rater_name", "rater_cert_type", "rater_cert_no", "rater_phone")
    )
    rater.update(
        {
            "rater_type": r.type.value,
            "rater_name": r.name,
            "rater_cert_type": r.cert_type,
            "rater_cert_no": r.cert_no,
            "rater_phone": r.phone,
        }
        if r is not None
        else target.applicant
    )
    if not rater.get("rater_type"):
        rater["rater_type"] = "person"
    evaluated_at = min(data.evaluated_at, now) if data.evaluated_at else now
    # The keyed hashes the INSERT would compute as column defaults, computed here once so that
    # the intake hooks (detectors, malicious-rater register) match on them without rehashing.
    rater["rater_cert_hash"] = rules.keys.identity_hash(rater["rater_cert_no"], "cert")
    rater["rater_phone_hash"] = rules.keys.identity_hash(rater["rater_phone"], "phone")
    return {
        "case_id": target.case_id,
        "stage": data.stage,
        "eval_count": 1,
        "channel": data.channel.value,
        "level": data.level,
        "reasons": list(data.reasons),
        **comment_columns(data.comment),
        "tagset_version": rules.tagset_version,
        "org_id": target.org_id,
        "item_id": target.item_id,
        "window_id": target.window_id,
        "staff_id": target.staff_id,
        "region_code": target.region_code,
        **rater,
        "anonymous": data.anonymous,
        "is_public": data.public,
        "client_id": actor.id if actor.kind == "client" else source.client_id,
        "user_id": actor.id if actor.kind == "user" else None,
        "invitation_id": source.invitation_id,
        "source_ip": source.ip,
        "user_agent": (source.user_agent or "")[:300] or None,
        "device_id": data.device_id,
        "call_id": data.call_id,
        "evaluated_at": evaluated_at,
        "displayed_at": min(data.displayed_at, evaluated_at) if data.displayed_at else None,
        "received_at": now,
    }


def read_from_row(row: dict[str, Any], target: Target, rules: IntakeRules) -> dict[str, Any]:
    """The answer for a stored rating: personal data masked, anonymous raters hidden."""
    rater = None
    if not row["anonymous"]:
        rater = {
            "type": row["rater_type"],
            "name": mask_name(row["rater_name"]),
            "cert_no": mask_cert_no(row["rater_cert_no"]),
            "phone": mask_phone(row["rater_phone"]),
        }
    return {
        "id": row["id"],
        "case_no": target.case_no,
        "stage": row["stage"],
        "eval_count": row["eval_count"],
        "channel": row["channel"],
        "level": row["level"],
        "level_label": LEVEL_LABELS[row["level"]],
        "is_bad": rules.is_bad(row["level"]),
        # Stored masked since intake does it; masked again for ratings stored before that.
        "reasons": row["reasons"],
        "comment": mask_text(row["comment"]),
        "tagset_version": row["tagset_version"],
        "org_code": target.org_code,
        "item_code": target.item_code,
        "window_code": target.window_code,
        "staff_no": target.staff_no,
        "region_code": target.region_code,
        "rater": rater,
        "anonymous": row["anonymous"],
        "public": row["is_public"],
        "call_id": row.get("call_id"),
        "evaluated_at": row["evaluated_at"],
        "received_at": row["received_at"],
    }


def _insert(db: AsyncSession):
    dialect = db.bind.dialect.name  # type: ignore[union-attr]
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(EVALUATION)


# Built once and executed with the row as parameters, so SQLAlchemy compiles each only once;
# `.values(row)` made a new statement per call (a cache key over every value) and, for a
# batch, a fresh compile of a 400-row VALUES list (docs/benchmarks.md: ~4x batch throughput).
_INSERT_FREE = {
    d: ins(EVALUATION).returning(EVALUATION.c.id)
    for d, ins in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_INSERT_BOUND = {
    d: ins(EVALUATION)
    # No conflict target: on PostgreSQL the once-rule is the partitioned table's trigger
    # (evaluation_once, migration 0030), which skips a taken case and stage as this would.
    .on_conflict_do_nothing()
    .returning(EVALUATION.c.id, EVALUATION.c.case_id, EVALUATION.c.stage)
    for d, ins in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def _prepared(db: AsyncSession, statements: dict[str, Any]) -> Any:
    dialect = db.bind.dialect.name  # type: ignore[union-attr]
    return statements["postgresql" if dialect == "postgresql" else "sqlite"]


async def _existing_id(db: AsyncSession, case_id: int, stage: str, count: int) -> int | None:
    return (
        await db.execute(
            select(Evaluation.id).where(
                Evaluation.case_id == case_id,
                Evaluation.stage == stage,
                Evaluation.eval_count == count,
            )
        )
    ).scalar_one_or_none()


def duplicate_error(existing_id: int | None) -> Conflict:
    return Conflict(
        "该办件在此环节已评价", code="duplicate_evaluation", details=[{"id": existing_id}]
    )


async def insert_one(db: AsyncSession, row: dict[str, Any]) -> int:
    """Insert one rating; 409 when the case and stage were already rated."""
    stmt = _prepared(db, _INSERT_FREE if row["case_id"] is None else _INSERT_BOUND)
    new_id = (await db.execute(stmt, row)).scalar()
    if new_id is None:
        raise duplicate_error(
            await _existing_id(db, row["case_id"], row["stage"], row["eval_count"])
        )
    return new_id


async def submit(
    *,
    db: AsyncSession,
    actor: Principal,
    data: schemas.EvaluationCreate,
    rules: IntakeRules,
    source: Source,
    target: Target | None = None,
    case: Any = None,
) -> dict[str, Any]:
    """Validate and store one rating; returns its answer body (the caller commits)."""
    now = utcnow()
    check_channel(actor=actor, channel=data.channel)
    check_call_id(data=data)
    check_content(data=data, rules=rules)
    if data.channel in CASE_BOUND_CHANNELS:
        if not data.case_no:
            raise _invalid("此渠道的评价须填写办件编号 case_no", "case_no_required", "case_no")
        if data.org_code or data.item_code:
            raise _invalid(
                "绑定办件的评价不再填写 org_code / item_code", "target_conflict", "org_code"
            )
        if target is None or case is None:
            found = await resolve_case_targets(db=db, case_nos={data.case_no})
            if data.case_no not in found:
                raise NotFound(
                    f"办件 {data.case_no} 不存在",
                    code="case_not_found",
                    details=[{"field": "case_no", "value": data.case_no}],
                )
            case, path, target = found[data.case_no]
            actor.require(path)
        check_case_active(case)
        check_case_rules(
            case=case,
            data=data,
            now=now,
            window_days=await rules.window_for(db, target.region_code),
            stages=await rules.stages_for(db, target.region_code),
        )
    else:
        check_stage(stage=data.stage, stages=FREE_STAGES)
        target = await resolve_free_target(db=db, actor=actor, data=data)
    row = build_row(data=data, target=target, actor=actor, rules=rules, source=source, now=now)
    row["id"] = await insert_one(db, row)
    if rules.on_stored is not None:
        await rules.on_stored(db, [row])
    return read_from_row(row, target, rules)


@dataclass
class Submission:
    """One rating as a caller sent it: who, what, from where (a batch item, or a single
    request waiting in the group writer)."""

    actor: Principal
    data: schemas.EvaluationCreate
    source: Source


async def submit_batch(
    *,
    db: AsyncSession,
    actor: Principal,
    items: list[Any],
    rules: IntakeRules,
    source: Source,
    echo: bool = True,
) -> list[dict[str, Any]]:
    """Store many independent ratings at once; one result per item, in order (each stored
    one with its full answer body under "evaluation" unless `echo` is False)."""
    results: list[dict[str, Any] | None] = [None] * len(items)
    parsed: list[tuple[int, Submission]] = []
    for i, raw in enumerate(items):
        try:
            data = schemas.EvaluationCreate.model_validate(raw)
        except ValidationError as exc:
            results[i] = {"status": 422, "error": validation_error_body(exc)["error"]}
        else:
            parsed.append((i, Submission(actor=actor, data=data, source=source)))
    outcomes = await store_group(
        db=db, submissions=[sub for _, sub in parsed], rules=rules, echo=echo
    )
    for (i, _), outcome in zip(parsed, outcomes, strict=True):
        if isinstance(outcome, DomainError):
            results[i] = {"status": outcome.status_code, "error": outcome.body()["error"]}
        else:
            results[i] = outcome
    return results  # type: ignore[return-value]


async def store_group(
    *,
    db: AsyncSession,
    submissions: list[Submission],
    rules: IntakeRules,
    echo: bool = True,
) -> list[dict[str, Any] | DomainError]:
    """Check and store ratings together in the caller's transaction: the cases in one query,
    the rows in one multi-row INSERT, the hooks once. One outcome per submission, in order:
    `{"status": 201, "id"[, "evaluation"]}` or the refusal (a `DomainError`) that this rating
    alone would have met; the others are stored regardless (the caller commits)."""
    results: list[dict[str, Any] | None] = [None] * len(submissions)
    refusals: dict[int, DomainError] = {}
    case_nos = {
        s.data.case_no
        for s in submissions
        if s.data.case_no and s.data.channel in CASE_BOUND_CHANNELS
    }
    found = await resolve_case_targets(db=db, case_nos=case_nos) if case_nos else {}
    now = utcnow()
    pending: list[tuple[int, dict[str, Any], Target]] = []
    seen: dict[tuple[int, str], int] = {}
    dup_of: dict[int, int] = {}  # a repeat inside the group -> the index of the first
    windows: dict[str, int] = {}  # region -> rating window, looked up once per group
    stage_lists: dict[str, Mapping[str, StageRule]] = {}  # region -> its stages, likewise
    for i, sub in enumerate(submissions):
        actor, data = sub.actor, sub.data
        try:
            check_channel(actor=actor, channel=data.channel)
            check_call_id(data=data)
            check_content(data=data, rules=rules)
            if data.channel in CASE_BOUND_CHANNELS:
                if not data.case_no:
                    raise _invalid(
                        "此渠道的评价须填写办件编号 case_no", "case_no_required", "case_no"
                    )
                if data.org_code or data.item_code:
                    raise _invalid(
                        "绑定办件的评价不再填写 org_code / item_code", "target_conflict", "org_code"
                    )
                if data.case_no not in found:
                    raise NotFound(
                        f"办件 {data.case_no} 不存在",
                        code="case_not_found",
                        details=[{"field": "case_no", "value": data.case_no}],
                    )
                case, path, target = found[data.case_no]
                actor.require(path)
                check_case_active(case)
                region = target.region_code
                if region not in windows:
                    windows[region] = await rules.window_for(db, region)
                    stage_lists[region] = await rules.stages_for(db, region)
                check_case_rules(
                    case=case,
                    data=data,
                    now=now,
                    window_days=windows[region],
                    stages=stage_lists[region],
                )
                key = (case.id, data.stage)
                if key in seen:
                    dup_of[i] = seen[key]
                    continue
                seen[key] = i
            else:
                check_stage(stage=data.stage, stages=FREE_STAGES)
                target = await resolve_free_target(db=db, actor=actor, data=data)
            row = build_row(
                data=data, target=target, actor=actor, rules=rules, source=sub.source, now=now
            )
            pending.append((i, row, target))
        except DomainError as exc:
            refusals[i] = exc
    await _insert_many(db, pending, results, refusals, rules if echo else None)
    stored = [row for _, row, _ in pending if "id" in row]
    if stored and rules.on_stored is not None:
        await rules.on_stored(db, stored)
    for i, first in dup_of.items():
        existing = (results[first] or {}).get("id")
        if existing is None and first in refusals:
            # The first of the pair met a rating stored before: name that one.
            existing = refusals[first].details[0].get("id") if refusals[first].details else None
        refusals[i] = duplicate_error(existing)
    return [refusals[i] if i in refusals else results[i] for i in range(len(submissions))]  # type: ignore[misc]


async def _insert_many(
    db: AsyncSession,
    pending: list[tuple[int, dict[str, Any], Target]],
    results: list[dict[str, Any] | None],
    refusals: dict[int, DomainError],
    rules: IntakeRules | None,
) -> None:
    """Insert the rows; results get status and id, and the answer body when `rules` given;
    a case and stage rated before gets its 409 in `refusals`."""
    bound = [p for p in pending if p[1]["case_id"] is not None]
    free = [p for p in pending if p[1]["case_id"] is None]
    postgres = db.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
    step = (len(bound) or 1) if postgres else 400  # PostgreSQL: one parameter however many
    for chunk_start in range(0, len(bound), step):
        chunk = bound[chunk_start : chunk_start + step]
        stored = await bulk.insert_rows(
            db,
            EVALUATION,
            [row for _, row, _ in chunk],
            returning=("id", "case_id", "stage"),
            on_conflict_do_nothing=True,
        )
        got = {(c, s): new_id for new_id, c, s in stored}
        for i, row, target in chunk:
            new_id = got.get((row["case_id"], row["stage"]))
            if new_id is None:
                existing = await _existing_id(db, row["case_id"], row["stage"], 1)
                refusals[i] = duplicate_error(existing)
            else:
                row["id"] = new_id
                results[i] = _stored(row, target, rules)
    for i, row, target in free:
        row["id"] = await insert_one(db, row)
        results[i] = _stored(row, target, rules)


def _stored(row: dict[str, Any], target: Target, rules: IntakeRules | None) -> dict[str, Any]:
    if rules is None:
        return {"status": 201, "id": row["id"]}
    return {"status": 201, "id": row["id"], "evaluation": read_from_row(row, target, rules)}


def validation_error_body(exc: ValidationError) -> dict[str, Any]:
    """A pydantic error as the API's error body (422)."""
    details = validation_details(exc.errors())
    return {
        "error": {
            "code": "invalid_input",
            "message": validation_message(details),
            "details": details,
        }
    }


REVEAL_ROLES = HANDLERS


async def reveal_comment(
    *, db: AsyncSession, actor: Principal, evaluation_id: int, source_ip: str | None
) -> dict[str, Any]:
    """The comment as the rater typed it (numbers unmasked), for the handler who must reach
    them, and an audit record of who saw it (the rules of revealing a rater's phone)."""
    if actor.is_client or actor.role not in REVEAL_ROLES:
        raise Forbidden("只有办理人员可以查看评价内容原文", code="role_forbidden")
    row = (
        await db.execute(
            select(Evaluation.id, Evaluation.case_id, Evaluation.comment_original)
            .join(Org, Org.id == Evaluation.org_id)
            .where(
                Evaluation.id == evaluation_id, Org.path.startswith(actor.org_path, autoescape=True)
            )
        )
    ).first()
    if row is None:
        raise NotFound("评价不存在或不在本账号的权限范围内", code="evaluation_not_found")
    if row.comment_original is None:
        raise Invalid("此评价内容中没有遮盖的号码，无需查看原文", code="comment_not_masked")
    audit.record(
        db,
        actor=actor.name,
        actor_role=actor.role,
        action=audit.AuditAction.REVEAL_COMMENT,
        target_type="evaluation",
        target_id=row.id,
        detail={"case_id": row.case_id, "purpose": "contact"},
        source_ip=source_ip,
    )
    await db.flush()
    return {"id": row.id, "comment": row.comment_original}
