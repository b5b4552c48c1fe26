"""The parent's side of reporting up (上报): a child's batches of ratings and work-order
outcomes, and the per-day reconciliation figures.

A batch is taken set-wise (a few statements per batch, not per record) because a child may
drain a backlog of millions. The child's organisations, items, windows and staff are learned
from the records by code and name and placed under the child's API client's organisation
(codes are unique on the parent: a code already used outside that subtree refuses the
record). A rating already reported (same child and `sourceId`, or same case number, stage
and evaluation count) answers with the stored id and stores nothing. Reported ratings are
marked with their origin (`evaluation.origin_client_id`, `origin_ref`) and count in every
figure like the parent's own; they open no work order here: the child runs the closed loop
and reports its outcomes (`exchange_work_order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases.choices import ServiceMode
from haochaping.cases.models import Case
from haochaping.core.auth import Principal
from haochaping.core.errors import Forbidden, Invalid, Malformed
from haochaping.core.timeutil import utcnow
from haochaping.db import bulk
from haochaping.db.types import dialect_keys
from haochaping.evaluations.choices import EXCHANGE_CHANNEL, Channel
from haochaping.evaluations.models import Evaluation
from haochaping.exchange import records
from haochaping.exchange.models import ExchangeWorkOrder
from haochaping.exchange.national import Dialect, RecordRefused
from haochaping.orgs.models import Item, Org, Staff
from haochaping.workorders.states import State

OFFLINE = frozenset({Channel.QRCODE.value, Channel.PAD.value, Channel.TERMINAL.value})


def require_exchange(actor: Principal) -> None:
    """Only an API client holding the `exchange` channel reports up (403 otherwise)."""
    if not actor.is_client or EXCHANGE_CHANNEL not in (actor.channels or ()):
        raise Forbidden(
            "上报接口仅限持有 exchange 渠道的下级平台客户端调用", code="exchange_forbidden"
        )


def refusal(index: int, ref: Any, refused: RecordRefused) -> dict[str, Any]:
    """One refused record's answer in a batch."""
    return {
        "index": index,
        "sourceId": ref if isinstance(ref, int) and not isinstance(ref, bool) else None,
        "code": "0",
        "error": refused.code,
        "text": refused.text,
        "field": refused.field,
    }


def _ins(db: AsyncSession) -> Any:
    return pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert


@dataclass
class _Scope:
    """The child's client and its organisation on the parent."""

    client_id: int
    root: Org


async def _scope(db: AsyncSession, actor: Principal) -> _Scope:
    root = await db.get(Org, actor.org_id)
    assert root is not None
    return _Scope(client_id=actor.id, root=root)


async def _learn_orgs(
    db: AsyncSession, scope: _Scope, wanted: dict[str, tuple[str, str, str | None]]
) -> dict[str, tuple[int, str]]:
    """Code -> (id, path) of the records' organisations, creating those the parent lacks.
    `wanted`: code -> (name, kind, parent code or None: the client's organisation)."""
    if not wanted:
        return {}
    found = {
        code: (oid, path)
        for oid, code, path in (
            await db.execute(select(Org.id, Org.code, Org.path).where(Org.code.in_(wanted)))
        ).all()
    }
    # Departments first, then the windows under them.
    for pass_parent in (False, True):
        rows = []
        # In code order: parallel batches take the unique keys' locks in one order (no
        # deadlock between two batches learning the same codes).
        for code, (name, kind, parent) in sorted(wanted.items()):
            if code in found or (parent is not None) != pass_parent:
                continue
            parent_path = scope.root.path if parent is None else found[parent][1]
            parent_id = scope.root.id if parent is None else found[parent][0]
            rows.append(
                {
                    "code": code,
                    "name": name,
                    "kind": kind,
                    "parent_id": parent_id,
                    "region_code": scope.root.region_code,
                    "path": f"{parent_path}{code}/",
                    "created_at": utcnow(),
                    "active": True,
                }
            )
        if rows:
            await db.execute(_ins(db)(Org).on_conflict_do_nothing(), rows)
            for oid, code, path in (
                await db.execute(
                    select(Org.id, Org.code, Org.path).where(
                        Org.code.in_([r["code"] for r in rows])
                    )
                )
            ).all():
                found[code] = (oid, path)
    return found


async def _learn(
    db: AsyncSession,
    model: Any,
    key: Any,
    wanted: dict[str, tuple[str, int]],
    *,
    name_field: str,
    key_field: str,
) -> dict[str, tuple[int, int]]:
    """Key -> (id, org id) of items or staff, creating the missing ones under their org."""
    if not wanted:
        return {}
    query = select(model.id, key, model.org_id).where(key.in_(wanted))
    found = {k: (i, o) for i, k, o in (await db.execute(query)).all()}
    rows = [
        {key_field: k, name_field: name, "org_id": org_id, "created_at": utcnow(), "active": True}
        for k, (name, org_id) in sorted(wanted.items())
        if k not in found
    ]
    if rows:
        await db.execute(_ins(db)(model).on_conflict_do_nothing(), rows)
        found.update({k: (i, o) for i, k, o in (await db.execute(query)).all()})
    return found


async def take_ratings(
    *, db: AsyncSession, actor: Principal, body: Any, dialect: Dialect
) -> list[dict[str, Any]]:
    """Store a batch of reported ratings; one answer per record, in order (the caller
    commits: the records answered "1" are stored together)."""
    require_exchange(actor)
    items = _records_of(body)
    scope = await _scope(db, actor)
    answers: list[dict[str, Any] | None] = [None] * len(items)
    read: list[tuple[int, records.RatingRow]] = []
    for index, raw in enumerate(items):
        try:
            read.append((index, records.read_rating(raw, dialect)))
        except RecordRefused as refused:
            ref = raw.get("sourceId") if isinstance(raw, dict) else None
            answers[index] = refusal(index, ref, refused)
    # Reported before: same child, same id there (by the ids' range: a child sends runs of
    # consecutive ids, and a range reads the index without a parameter per record).
    refs = {r.id for _, r in read}
    known: dict[int, int] = {}
    if refs:
        known = {
            ref: eid
            for ref, eid in (
                await db.execute(
                    select(Evaluation.origin_ref, Evaluation.id).where(
                        Evaluation.origin_client_id == scope.client_id,
                        Evaluation.origin_ref.between(min(refs), max(refs)),
                    )
                )
            ).all()
            if ref in refs
        }
    fresh: list[tuple[int, records.RatingRow]] = []
    seen: set[int] = set()
    for index, r in read:
        if r.id in known:
            answers[index] = _stored(index, r.id, known[r.id], duplicate=True)
        elif r.id in seen:
            answers[index] = None  # answered after the insert, as its twin
            fresh.append((index, r))
        else:
            seen.add(r.id)
            fresh.append((index, r))
    # The organisations, windows, items and staff the records name.
    wanted_orgs: dict[str, tuple[str, str, str | None]] = {}
    for _, r in fresh:
        wanted_orgs.setdefault(r.org_code, (r.org_name, "department", None))
        if r.window_code:
            wanted_orgs.setdefault(
                r.window_code, (r.window_name or r.window_code, "window", r.org_code)
            )
    orgs = await _learn_orgs(db, scope, wanted_orgs)
    out_of_scope = {c for c, (_, path) in orgs.items() if not path.startswith(scope.root.path)}
    usable: list[tuple[int, records.RatingRow]] = []
    for index, r in fresh:
        bad = next((c for c in (r.org_code, r.window_code) if c and c in out_of_scope), None)
        if bad is not None:
            answers[index] = refusal(
                index,
                r.id,
                RecordRefused(
                    f"机构编码 {bad} 已属于本平台其他机构", "org_out_of_scope", "deptCode"
                ),
            )
        else:
            usable.append((index, r))
    item_map = await _learn(
        db,
        Item,
        Item.code,
        {
            r.item_code: (r.item_name or r.item_code, orgs[r.org_code][0])
            for _, r in usable
            if r.item_code
        },
        name_field="name",
        key_field="code",
    )
    staff_map = await _learn(
        db,
        Staff,
        Staff.staff_no,
        {
            r.staff_no: (r.staff_name or r.staff_no, orgs[r.window_code or r.org_code][0])
            for _, r in usable
            if r.staff_no
        },
        name_field="name",
        key_field="staff_no",
    )
    case_ids = await _cases(db, scope, usable, orgs, item_map, staff_map)
    rows: list[dict[str, Any]] = []
    now = utcnow()
    # The raters' keyed hashes computed here, not by the columns' per-row defaults (which
    # rebuild each row's parameters: a tenth of the batch's Python time).
    identity_hash = dialect_keys(db.get_bind().dialect).identity_hash
    placed: list[tuple[int, records.RatingRow]] = []
    for index, r in usable:
        case_id = case_ids.get(r.case_no) if r.case_no else None
        if r.case_no and case_id is None:
            answers[index] = refusal(
                index,
                r.id,
                RecordRefused(
                    f"办件 {r.case_no} 已由本平台其他来源报送", "case_conflict", "projectNo"
                ),
            )
            continue
        placed.append((index, r))
        rows.append(
            {
                "case_id": case_id,
                "stage": r.stage,
                "eval_count": r.eval_count,
                "channel": r.channel,
                "level": r.level,
                "reasons": r.reasons,
                "comment": r.comment,
                "tagset_version": r.tagset_version,
                "org_id": orgs[r.org_code][0],
                "item_id": item_map[r.item_code][0] if r.item_code else None,
                "window_id": orgs[r.window_code][0] if r.window_code else None,
                "staff_id": staff_map[r.staff_no][0] if r.staff_no else None,
                "region_code": r.region_code or scope.root.region_code,
                "rater_type": r.rater_type,
                "rater_name": r.rater_name,
                "rater_cert_no": r.rater_cert_no,
                "rater_phone": r.rater_phone,
                "rater_cert_hash": identity_hash(r.rater_cert_no, "cert"),
                "rater_phone_hash": identity_hash(r.rater_phone, "phone"),
                "anonymous": r.anonymous,
                "is_public": r.is_public,
                "is_default": r.is_default,
                "client_id": scope.client_id,
                "origin_client_id": scope.client_id,
                "origin_ref": r.id,
                "evaluated_at": r.evaluated_at,
                "received_at": now,
            }
        )
    inserted: dict[int, int] = {}
    if rows:
        # A twin (same child id, or same case, stage and count) is skipped, not an error.
        inserted = {
            ref: eid
            for eid, ref in await bulk.insert_rows(
                db,
                Evaluation.__table__,
                rows,
                returning=("id", "origin_ref"),
                on_conflict_do_nothing=True,
            )
        }
    rest = [r for _, r in placed if r.id not in inserted]
    ids = await _ids_of(db, scope.client_id, rest, case_ids)
    answered: set[int] = set()
    for index, r in placed:
        got = inserted.get(r.id)
        if got is not None and r.id not in answered:
            answered.add(r.id)
            answers[index] = _stored(index, r.id, got, duplicate=False)
            continue
        twin = got or ids.get(("ref", r.id)) or ids.get(("case", r.case_no, r.stage, r.eval_count))
        if twin is None:
            answers[index] = refusal(
                index, r.id, RecordRefused("评价未能保存（与已有评价冲突）", "duplicate_conflict")
            )
        else:
            answers[index] = _stored(index, r.id, twin, duplicate=True)
    return [a for a in answers if a is not None]


def _stored(index: int, ref: int, eval_id: int, *, duplicate: bool) -> dict[str, Any]:
    return {"index": index, "sourceId": ref, "code": "1", "id": eval_id, "duplicate": duplicate}


def _records_of(body: Any) -> list[Any]:
    """The batch's records (400 for a body that is no batch, 422 for an unknown version)."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise Malformed(
            '请求体须为 {"formatVersion": ..., "records": [...]}', code="malformed_batch"
        )
    if body.get("formatVersion") != records.FORMAT_VERSION:
        raise Invalid(
            f"不支持的格式版本 {body.get('formatVersion')!r}（本平台：{records.FORMAT_VERSION}）",
            code="unsupported_format_version",
            details=[{"field": "formatVersion"}],
        )
    items: list[Any] = body["records"]
    if len(items) > records.MAX_BATCH:
        raise Invalid(
            f"一批最多 {records.MAX_BATCH} 条记录",
            code="batch_too_large",
            details=[{"field": "records"}],
        )
    return items


async def _cases(
    db: AsyncSession,
    scope: _Scope,
    usable: Sequence[tuple[int, records.RatingRow]],
    orgs: dict[str, tuple[int, str]],
    item_map: dict[str, tuple[int, int]],
    staff_map: dict[str, tuple[int, int]],
) -> dict[str, int]:
    """Case number -> id of the records' cases: created for this child when new; a case of
    another source is left out (its records are refused)."""
    wanted = {r.case_no: r for _, r in usable if r.case_no}
    if not wanted:
        return {}
    rows = [
        {
            "case_no": no,
            "item_id": item_map[r.item_code][0] if r.item_code else None,
            "org_id": orgs[r.org_code][0],
            "window_id": orgs[r.window_code][0] if r.window_code else None,
            "staff_id": staff_map[r.staff_no][0] if r.staff_no else None,
            "mode": ServiceMode.OFFLINE.value if r.channel in OFFLINE else ServiceMode.ONLINE.value,
            "case_type": "immediate",
            "status": "completed",
            "applicant_type": r.rater_type,
            "applicant_name": r.rater_name,
            # No certificate or phone on a reported case: no hashes (skips the defaults).
            "applicant_cert_hash": None,
            "applicant_phone_hash": None,
            "accepted_at": r.evaluated_at,
            "completed_at": r.evaluated_at,
            "client_id": scope.client_id,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }
        for no, r in sorted(wanted.items())  # one lock order across parallel batches
    ]
    # New cases come back from the insert; only those that existed are looked up.
    new = await bulk.insert_rows(
        db, Case.__table__, rows, returning=("case_no", "id"), on_conflict_do_nothing=True
    )
    found: dict[str, tuple[int, int | None]] = {no: (cid, scope.client_id) for no, cid in new}
    missing = [no for no in wanted if no not in found]
    if missing:
        query = select(Case.case_no, Case.id, Case.client_id).where(Case.case_no.in_(missing))
        found.update({no: (cid, client) for no, cid, client in (await db.execute(query)).all()})
    return {no: cid for no, (cid, client) in found.items() if client == scope.client_id}


async def _ids_of(
    db: AsyncSession,
    client_id: int,
    placed: Sequence[records.RatingRow],
    case_ids: dict[str, int],
) -> dict[tuple[Any, ...], int]:
    """The stored ids of the placed records: by child id, and by case key for the twins."""
    out: dict[tuple[Any, ...], int] = {}
    if not placed:
        return out
    for ref, eid in (
        await db.execute(
            select(Evaluation.origin_ref, Evaluation.id).where(
                Evaluation.origin_client_id == client_id,
                Evaluation.origin_ref.in_([r.id for r in placed]),
            )
        )
    ).all():
        out[("ref", ref)] = eid
    keys = [
        (case_ids[r.case_no], r.stage, r.eval_count)
        for r in placed
        if r.case_no and ("ref", r.id) not in out
    ]
    if keys:
        by_case = {cid: no for no, cid in case_ids.items()}
        for eid, cid, stage, count in (
            await db.execute(
                select(
                    Evaluation.id, Evaluation.case_id, Evaluation.stage, Evaluation.eval_count
                ).where(
                    tuple_(Evaluation.case_id, Evaluation.stage, Evaluation.eval_count).in_(keys)
                )
            )
        ).all():
            if cid is not None:
                out[("case", by_case[cid], stage, count)] = eid
    return out


async def take_work_orders(
    *, db: AsyncSession, actor: Principal, body: Any
) -> list[dict[str, Any]]:
    """Store a batch of reported work-order outcomes: each order's newest state (an older
    report of an order never overwrites a newer one)."""
    require_exchange(actor)
    items = _records_of(body)
    answers: list[dict[str, Any]] = []
    read: list[tuple[int, records.WorkOrderRow]] = []
    for index, raw in enumerate(items):
        try:
            read.append((index, records.read_work_order(raw, State.values())))
        except RecordRefused as refused:
            ref = raw.get("sourceId") if isinstance(raw, dict) else None
            answers.append(refusal(index, ref, refused))
    if not read:
        return answers
    evals = dict(
        (
            await db.execute(
                select(Evaluation.origin_ref, Evaluation.id).where(
                    Evaluation.origin_client_id == actor.id,
                    Evaluation.origin_ref.in_([w.evaluation_id for _, w in read]),
                )
            )
        ).all()
    )
    existing = {
        o.origin_ref: o
        for o in (
            await db.execute(
                select(ExchangeWorkOrder).where(
                    ExchangeWorkOrder.client_id == actor.id,
                    ExchangeWorkOrder.origin_ref.in_([w.id for _, w in read]),
                )
            )
        ).scalars()
    }
    new_rows: dict[int, dict[str, Any]] = {}
    for index, w in read:
        values = {
            "evaluation_id": evals.get(w.evaluation_id),
            "case_no": w.case_no,
            "stage": w.stage,
            "eval_count": w.eval_count,
            "state": w.state,
            "opened_at": w.opened_at,
            "closed_at": w.closed_at,
            "close_reason": w.close_reason,
            **{attr: getattr(w, attr) for attr in records.FUNNEL_TIMES.values()},
            **{attr: getattr(w, attr) for attr in records.FUNNEL_FLAGS.values()},
            "event_ref": w.event_id,
            "updated_at": utcnow(),
        }
        current = existing.get(w.id)
        if current is not None:
            if w.event_id > current.event_ref:
                for k, v in values.items():
                    setattr(current, k, v)
        elif w.id not in new_rows or w.event_id > new_rows[w.id]["event_ref"]:
            new_rows[w.id] = {"client_id": actor.id, "origin_ref": w.id, **values}
        answers.append({"index": index, "sourceId": w.id, "code": "1"})
    if new_rows:
        await db.execute(insert(ExchangeWorkOrder), list(new_rows.values()))
    await db.flush()
    return sorted(answers, key=lambda a: a["index"])


@dataclass(frozen=True)
class DayFigures:
    """A day's count and digest of one child's ratings, as one side holds them."""

    day: date
    count: int
    digest: str


async def day_figures(db: AsyncSession, *, day: date, origin_client_id: int | None) -> DayFigures:
    """The count and SM3 digest of a local day's ratings (by rating time): the parent's copy
    of one child's (`origin_client_id`), or this instance's own (None: the child's side)."""
    start, end = records.day_bounds(day)
    E = Evaluation
    ref = E.origin_ref if origin_client_id is not None else E.id
    query = (
        select(ref, Case.case_no, E.stage, E.eval_count, E.level, E.channel, E.evaluated_at)
        .outerjoin(Case, Case.id == E.case_id)
        .where(E.evaluated_at >= start, E.evaluated_at < end)
        .order_by(ref)
    )
    if origin_client_id is not None:
        query = query.where(E.origin_client_id == origin_client_id)
    count = 0
    lines: list[str] = []
    for row in (await db.execute(query)).all():
        count += 1
        lines.append(
            records.digest_line(
                ref=row[0] or 0,
                case_no=row[1],
                stage=row[2],
                eval_count=row[3],
                level=row[4],
                channel=row[5],
                evaluated_at=row[6],
            )
        )
    return DayFigures(day=day, count=count, digest=records.digest(lines))
