"""The child's side of reporting up (上报): sending every stored rating and every work-order
outcome to the parent, reconciling day by day, and exporting a day as JSON lines.

Why a watermark over ids, not an outbox row per rating: the rating row is itself the queue
entry, written in the intake transaction, so nothing extra is written at intake (the intake
rate does not drop while a backlog drains) and a backlog of millions is read by its primary
key in order, a batch per query. `upstream_stream.watermark` is the last id the parent
accepted; a batch is taken from the ids above it, stopping at the first rating received less
than GRACE ago: an id below it may belong to a transaction still in flight (the rollups' and
the ledger's reasoning). The watermark moves only after the parent has answered the batch,
so a parent that is down (or a child that crashes mid-batch) loses nothing: the batch is sent
again, and the parent stores nothing twice (its key: the child's client and the id here). A
lease on the stream's row keeps one sender at a time across processes; failures back off
1, 2, 4 ... seconds up to a minute. Reconciliation finds what a too-short GRACE or a loss on
the parent left out, and `--repair` sends those days again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from haochaping.cases.models import Case
from haochaping.config import Settings
from haochaping.core.db import rows_changed
from haochaping.core.notify import DeliveryError
from haochaping.core.timeutil import SHANGHAI, utcnow
from haochaping.evaluations.models import Evaluation
from haochaping.exchange import records
from haochaping.exchange.federation import DayFigures, day_figures
from haochaping.exchange.models import UpstreamStream
from haochaping.exchange.national import Dialect, SatisfactionOrder
from haochaping.integrations.upstream import Upstream
from haochaping.orgs.models import Item, Org, Staff
from haochaping.workorders.choices import SATISFIED_VERDICTS
from haochaping.workorders.models import CallbackAttempt, WorkOrder, WorkOrderEvent

log = logging.getLogger("haochaping.exchange")

RATINGS = "ratings"
WORK_ORDERS = "work_orders"
STREAMS = (RATINGS, WORK_ORDERS)
PATHS = {RATINGS: "/api/v1/exchange/evaluations", WORK_ORDERS: "/api/v1/exchange/work-orders"}
LEASE = timedelta(minutes=2)
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 60.0
# One drain call sends for at most this long, then lets the caller's loop breathe.
DRAIN_SECONDS = 30.0


@dataclass(frozen=True)
class UpstreamConfig:
    """How this child reports: the parent's interface dialect, batch size and grace."""

    dialect: Dialect
    batch_size: int = 1000
    grace: timedelta = timedelta(seconds=5)
    in_flight: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> UpstreamConfig:
        """The configuration from the HAOCHAPING_UPSTREAM_* settings."""
        return cls(
            dialect=Dialect(
                satisfaction=SatisfactionOrder(settings.upstream_satisfaction),
                pf={int(k): v for k, v in settings.upstream_pf.items()},
            ),
            batch_size=settings.upstream_batch_size,
            grace=timedelta(seconds=settings.upstream_grace_seconds),
            in_flight=settings.upstream_in_flight,
        )


@dataclass
class SendReport:
    """What one drain did."""

    batches: int = 0
    sent: int = 0
    refused: int = 0
    error: str | None = None
    waiting: bool = False  # in back-off, or another process holds the lease

    def __str__(self) -> str:
        text = f"上报 {self.sent} 条（{self.batches} 批），被拒 {self.refused} 条"
        return f"{text}；{self.error}" if self.error else text


def _ins(db: AsyncSession) -> Any:
    return pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert


def backoff(failures: int) -> timedelta:
    """The wait after the n-th failure in a row: 1, 2, 4 ... seconds, at most a minute."""
    return timedelta(seconds=min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failures - 1)))


async def _claim(
    sessionmaker: async_sessionmaker[AsyncSession], name: str, worker: str, now: datetime
) -> int | None:
    """Take the stream's lease (None: another sender holds it, or the back-off runs);
    returns the watermark."""
    async with sessionmaker() as db, db.begin():
        await db.execute(
            _ins(db)(UpstreamStream)
            .values(name=name, watermark=0, sent=0, refused=0, failures=0)
            .on_conflict_do_nothing()
        )
        S = UpstreamStream
        return (
            await db.execute(
                update(S)
                .where(
                    S.name == name,
                    (S.locked_until.is_(None)) | (S.locked_until < now) | (S.locked_by == worker),
                    (S.next_attempt_at.is_(None)) | (S.next_attempt_at <= now),
                )
                .values(locked_by=worker, locked_until=now + LEASE, last_attempt_at=now)
                .returning(S.watermark)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()


async def _settle(
    sessionmaker: async_sessionmaker[AsyncSession],
    name: str,
    worker: str,
    *,
    expected: int,
    release: bool = True,
    **values: Any,
) -> bool:
    """Record a batch's outcome, and release the lease or renew it (fenced: only the lease
    holder, at the watermark it read)."""
    lease = (
        {"locked_by": None, "locked_until": None} if release else {"locked_until": utcnow() + LEASE}
    )
    async with sessionmaker() as db, db.begin():
        S = UpstreamStream
        result = await db.execute(
            update(S)
            .where(S.name == name, S.locked_by == worker, S.watermark == expected)
            .values(**lease, **values)
            .execution_options(synchronize_session=False)
        )
    return rows_changed(result) == 1


W = aliased(Org)
O = aliased(Org)  # noqa: E741


def _rating_query() -> Any:
    E = Evaluation
    return (
        select(
            E.id,
            Case.case_no,
            E.stage,
            E.eval_count,
            E.channel,
            E.level,
            E.reasons,
            E.comment,
            E.tagset_version,
            E.region_code,
            E.rater_type,
            E.rater_name,
            E.rater_cert_no,
            E.rater_phone,
            E.anonymous,
            E.is_public,
            E.is_default,
            E.evaluated_at,
            O.code,
            O.name,
            Item.code,
            Item.name,
            W.code,
            W.name,
            Staff.staff_no,
            Staff.name,
            E.received_at,
        )
        .join(O, O.id == E.org_id)
        .outerjoin(Case, Case.id == E.case_id)
        .outerjoin(Item, Item.id == E.item_id)
        .outerjoin(W, W.id == E.window_id)
        .outerjoin(Staff, Staff.id == E.staff_id)
    )


def _rating_of(row: Any) -> records.RatingRow:
    return records.RatingRow(*row[:26])


async def _ratings_after(
    db: AsyncSession, watermark: int, limit: int, cutoff: datetime
) -> tuple[list[records.RatingRow], datetime | None]:
    """The ratings above the watermark in id order, up to the first received after
    `cutoff`; and the receipt time of the last one."""
    rows = (
        await db.execute(
            _rating_query().where(Evaluation.id > watermark).order_by(Evaluation.id).limit(limit)
        )
    ).all()
    out: list[records.RatingRow] = []
    last: datetime | None = None
    for row in rows:
        if row[26] >= cutoff:
            break
        out.append(_rating_of(row))
        last = row[26]
    return out, last


async def _work_orders_after(
    db: AsyncSession, watermark: int, limit: int, cutoff: datetime
) -> tuple[list[records.WorkOrderRow], int, datetime | None]:
    """The work orders whose events lie above the watermark (each once, at its current
    state, with its newest event's id); the last event id taken and its time. An order whose
    rating the parent has not yet accepted (above the ratings' watermark) stops the batch:
    the parent links an outcome to its rating when the outcome arrives."""
    ratings_sent = (
        await db.execute(select(UpstreamStream.watermark).where(UpstreamStream.name == RATINGS))
    ).scalar_one_or_none() or 0
    events = (
        await db.execute(
            select(
                WorkOrderEvent.id,
                WorkOrderEvent.work_order_id,
                WorkOrderEvent.created_at,
                WorkOrder.evaluation_id,
            )
            .join(WorkOrder, WorkOrder.id == WorkOrderEvent.work_order_id)
            .where(WorkOrderEvent.id > watermark)
            .order_by(WorkOrderEvent.id)
            .limit(limit)
        )
    ).all()
    newest: dict[int, int] = {}
    top, last = watermark, None
    for eid, order_id, created, evaluation_id in events:
        if created >= cutoff or evaluation_id > ratings_sent:
            break
        newest[order_id] = eid
        top, last = eid, created
    if not newest:
        return [], top, last
    W = WorkOrder
    reached = CallbackAttempt.reached.is_(True)
    attempt = select(CallbackAttempt.id).where(CallbackAttempt.work_order_id == W.id, reached)
    rows = (
        await db.execute(
            select(
                W.id,
                W.evaluation_id,
                Case.case_no,
                Evaluation.stage,
                Evaluation.eval_count,
                W.state,
                W.opened_at,
                W.closed_at,
                W.close_reason,
                W.verify_due_at,
                W.verified_at,
                W.rectify_due_at,
                W.rectified_at,
                W.callback_due_at,
                W.overdue_at,
                (W.supervising_at.is_not(None)) | (W.escalations > 0),
                attempt.exists(),
                attempt.where(CallbackAttempt.verdict.in_(SATISFIED_VERDICTS)).exists(),
            )
            .join(Evaluation, Evaluation.id == W.evaluation_id)
            .outerjoin(Case, Case.id == Evaluation.case_id)
            .where(W.id.in_(newest))
            .order_by(W.id)
        )
    ).all()
    out = [records.WorkOrderRow(r[0], newest[r[0]], *r[1:]) for r in rows]
    return out, top, last


def _batch(records_: list[dict[str, Any]]) -> bytes:
    body = {"formatVersion": records.FORMAT_VERSION, "records": records_}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _refusals(answer: dict[str, Any]) -> tuple[int, int, str | None]:
    """Accepted and refused counts of a batch answer, and the first refusal, told."""
    results = answer.get("results") or []
    refused = [r for r in results if r.get("code") != "1"]
    first = None
    if refused:
        r = refused[0]
        first = (
            f"上级平台拒收 {len(refused)} 条（如 sourceId={r.get('sourceId')}："
            f"{r.get('error')} {r.get('text')}）"
        )
    return len(results) - len(refused), len(refused), first


@dataclass
class _Read:
    """A batch read from the stream: its records, the id they reach, the last one's time."""

    after: int
    body: list[dict[str, Any]]
    top: int
    through: datetime | None


async def _read(
    sessionmaker: async_sessionmaker[AsyncSession],
    config: UpstreamConfig,
    name: str,
    after: int,
    cutoff: datetime,
) -> _Read:
    async with sessionmaker() as db:
        if name == RATINGS:
            ratings, through = await _ratings_after(db, after, config.batch_size, cutoff)
            body = [records.encode_rating(r, config.dialect) for r in ratings]
            return _Read(after, body, ratings[-1].id if ratings else after, through)
        orders, top, through = await _work_orders_after(db, after, config.batch_size, cutoff)
        return _Read(after, [records.encode_work_order(o) for o in orders], top, through)


async def send_stream(
    sessionmaker: async_sessionmaker[AsyncSession],
    upstream: Upstream,
    config: UpstreamConfig,
    name: str,
    *,
    worker: str | None = None,
    now: datetime | None = None,
    seconds: float = DRAIN_SECONDS,
) -> SendReport:
    """Send one stream's due records, batch after batch in id order, until none is due, the
    parent fails (back-off) or `seconds` have passed.

    Up to `config.in_flight` batches are posted before the oldest is answered (the parent
    stores them in parallel transactions, the child reads the next batch meanwhile); the
    watermark moves in order only, batch by batch as each is answered. A failure stops at the
    last batch answered in order: the batches after it are sent again, and the parent, which
    may have stored some, stores nothing twice."""
    worker = worker or f"{socket.gethostname()}:{os.getpid()}"
    report = SendReport()
    loop = asyncio.get_running_loop()
    ends = loop.time() + seconds
    watermark = await _claim(sessionmaker, name, worker, now or utcnow())
    if watermark is None:
        report.waiting = True
        return report
    inflight: deque[tuple[_Read, asyncio.Future[Any]]] = deque()
    read_from, caught_up, held = watermark, False, True
    try:
        while True:
            while not caught_up and len(inflight) < config.in_flight and loop.time() < ends:
                cutoff = (now or utcnow()) - config.grace
                batch = await _read(sessionmaker, config, name, read_from, cutoff)
                if batch.top == read_from:
                    caught_up = True
                    break
                post = upstream.post(PATHS[name], _batch(batch.body)) if batch.body else _empty()
                inflight.append((batch, asyncio.ensure_future(post)))
                read_from = batch.top
            if not inflight:
                break
            batch, posting = inflight.popleft()
            try:
                posted = await posting
            except DeliveryError as exc:
                held = False
                await _failed(sessionmaker, name, worker, watermark, exc)
                report.error = str(exc)
                return report
            accepted, refused, first = _refusals(posted)
            values: dict[str, Any] = {
                "watermark": batch.top,
                "sent": UpstreamStream.sent + accepted,
                "refused": UpstreamStream.refused + refused,
                "failures": 0,
                "next_attempt_at": None,
                "last_success_at": utcnow(),
                "sent_through": batch.through,
            }
            if first is not None:
                values.update(last_error=first[:2000], last_error_at=utcnow())
                log.warning("upstream %s: %s", name, first)
            if not await _settle(
                sessionmaker, name, worker, expected=watermark, release=False, **values
            ):
                held = False
                log.warning(
                    "upstream %s: lease lost during a batch (sent again, stored once)", name
                )
                return report
            watermark = batch.top
            report.batches += 1
            report.sent += accepted
            report.refused += refused
        return report
    finally:
        for _, posting in inflight:
            posting.cancel()
        if inflight:
            await asyncio.gather(*(p for _, p in inflight), return_exceptions=True)
        if held:  # also when cancelled (shutdown): the next sender need not wait out the lease
            await asyncio.shield(_settle(sessionmaker, name, worker, expected=watermark))


async def _empty() -> dict[str, Any]:
    return {}


async def _failed(
    sessionmaker: async_sessionmaker[AsyncSession],
    name: str,
    worker: str,
    watermark: int,
    exc: DeliveryError,
) -> None:
    """Record a failed batch: the back-off grows, the watermark stays."""
    async with sessionmaker() as db:
        failures = (
            await db.execute(select(UpstreamStream.failures).where(UpstreamStream.name == name))
        ).scalar_one()
    stamp = utcnow()
    await _settle(
        sessionmaker,
        name,
        worker,
        expected=watermark,
        failures=failures + 1,
        next_attempt_at=stamp + backoff(failures + 1),
        last_error=str(exc)[:2000],
        last_error_at=stamp,
    )
    log.warning("upstream %s: %s (retry in %s)", name, exc, backoff(failures + 1))


async def send_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    upstream: Upstream,
    config: UpstreamConfig,
    *,
    seconds: float = DRAIN_SECONDS,
) -> SendReport:
    """Both streams: the ratings first (the outcomes refer to them), then the outcomes."""
    report = await send_stream(sessionmaker, upstream, config, RATINGS, seconds=seconds)
    if report.error is None:
        orders = await send_stream(sessionmaker, upstream, config, WORK_ORDERS, seconds=seconds)
        report.error = orders.error
        report.batches += orders.batches
        report.sent += orders.sent
        report.refused += orders.refused
        report.waiting = report.waiting or orders.waiting
    return report


async def send_all_due(
    sessionmaker: async_sessionmaker[AsyncSession], upstream: Upstream, config: UpstreamConfig
) -> SendReport:
    """Both streams until nothing is due, the parent fails (back-off) or another process
    holds a lease: what `haochaping worker --once` runs."""
    total = SendReport()
    while True:
        report = await send_due(sessionmaker, upstream, config)
        total.batches += report.batches
        total.sent += report.sent
        total.refused += report.refused
        total.error, total.waiting = report.error, report.waiting
        if report.batches == 0 or report.error is not None or report.waiting:
            return total


async def run_forever(state: Any, *, idle_seconds: float = 1.0) -> None:
    """Send while there is something to send; poll every `idle_seconds` when caught up or
    waiting out a back-off. Never raises but for cancellation."""
    config = UpstreamConfig.from_settings(state.settings)
    while True:
        try:
            report = await send_due(state.sessionmaker, state.upstream, config)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the sender must survive a bad round
            log.exception("upstream sender round failed")
            report = SendReport(error="内部错误")
        if report.batches == 0 or report.error is not None:
            await asyncio.sleep(idle_seconds)


# --- what the console shows ------------------------------------------------------------------


@dataclass
class StreamStatus:
    """One stream's queue for the console page 上报."""

    name: str
    pending: int
    oldest_pending: datetime | None
    sent: int
    refused: int
    failures: int
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    next_attempt_at: datetime | None
    sent_through: datetime | None
    lag: timedelta | None = field(default=None)


async def status(db: AsyncSession, *, now: datetime | None = None) -> list[StreamStatus]:
    """Queue length and lag of both streams (the lag: how long the oldest unsent record has
    waited; none when the queue is empty)."""
    now = now or utcnow()
    rows = {s.name: s for s in (await db.execute(select(UpstreamStream))).scalars()}
    out = []
    for name in STREAMS:
        s = rows.get(name)
        wm = s.watermark if s else 0
        if name == RATINGS:
            pending, oldest = (
                await db.execute(
                    select(func.count(), func.min(Evaluation.received_at)).where(Evaluation.id > wm)
                )
            ).one()
        else:
            pending, oldest = (
                await db.execute(
                    select(
                        func.count(func.distinct(WorkOrderEvent.work_order_id)),
                        func.min(WorkOrderEvent.created_at),
                    ).where(WorkOrderEvent.id > wm)
                )
            ).one()
        out.append(
            StreamStatus(
                name=name,
                pending=pending,
                oldest_pending=oldest,
                sent=s.sent if s else 0,
                refused=s.refused if s else 0,
                failures=s.failures if s else 0,
                last_success_at=s.last_success_at if s else None,
                last_error=s.last_error if s else None,
                last_error_at=s.last_error_at if s else None,
                next_attempt_at=s.next_attempt_at if s else None,
                sent_through=s.sent_through if s else None,
                lag=(now - oldest) if oldest is not None else None,
            )
        )
    return out


# --- reconciliation and export --------------------------------------------------------------


@dataclass(frozen=True)
class DayComparison:
    """One day on both sides."""

    day: date
    ours: DayFigures
    parent_count: int
    parent_digest: str

    @property
    def agrees(self) -> bool:
        return self.ours.count == self.parent_count and self.ours.digest == self.parent_digest


def local_day(value: datetime) -> date:
    return value.astimezone(SHANGHAI).date()


async def days_with_ratings(db: AsyncSession, *, since: date, until: date) -> list[date]:
    """The local days from `since` to `until` (inclusive) on which ratings were given here."""
    start, _ = records.day_bounds(since)
    _, end = records.day_bounds(until)
    times = (
        await db.execute(
            select(func.min(Evaluation.evaluated_at), func.max(Evaluation.evaluated_at)).where(
                Evaluation.evaluated_at >= start, Evaluation.evaluated_at < end
            )
        )
    ).one()
    if times[0] is None:
        return []
    first, last = local_day(times[0]), local_day(times[1])
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def compare(
    sessionmaker: async_sessionmaker[AsyncSession], upstream: Upstream, days: list[date]
) -> list[DayComparison]:
    """Each day's count and digest here and at the parent."""
    out = []
    for day in days:
        async with sessionmaker() as db:
            ours = await day_figures(db, day=day, origin_client_id=None)
        theirs = await upstream.get("/api/v1/exchange/reconciliation", {"day": day.isoformat()})
        out.append(
            DayComparison(
                day=day,
                ours=ours,
                parent_count=int(theirs.get("count", -1)),
                parent_digest=str(theirs.get("digest", "")),
            )
        )
    return out


async def _day_ratings(
    db: AsyncSession, day: date, batch: int
) -> AsyncIterator[list[records.RatingRow]]:
    start, end = records.day_bounds(day)
    after = 0
    while True:
        rows = (
            await db.execute(
                _rating_query()
                .where(
                    Evaluation.evaluated_at >= start,
                    Evaluation.evaluated_at < end,
                    Evaluation.id > after,
                )
                .order_by(Evaluation.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            return
        yield [_rating_of(r) for r in rows]
        after = rows[-1][0]


async def resend_day(
    sessionmaker: async_sessionmaker[AsyncSession],
    upstream: Upstream,
    config: UpstreamConfig,
    day: date,
) -> SendReport:
    """补报: send a day's ratings again (the parent stores only those it lacks)."""
    report = SendReport()
    async with sessionmaker() as db:
        async for chunk in _day_ratings(db, day, config.batch_size):
            body = [records.encode_rating(r, config.dialect) for r in chunk]
            answer = await upstream.post(PATHS[RATINGS], _batch(body))
            accepted, refused, first = _refusals(answer)
            report.batches += 1
            report.sent += sum(
                1
                for r in answer.get("results", [])
                if r.get("code") == "1" and not r.get("duplicate")
            )
            report.refused += refused
            report.error = report.error or first
    return report


async def reconcile_recent(
    state: Any, *, days: int = 7, repair: bool = True
) -> list[DayComparison]:
    """The periodic job's reconciliation: the last `days` local days, repaired when asked
    (never raises: the next run tries again)."""
    try:
        today = local_day(utcnow())
        async with state.sessionmaker() as db:
            wanted = await days_with_ratings(db, since=today - timedelta(days=days), until=today)
        found = await compare(state.sessionmaker, state.upstream, wanted)
        differ = [c for c in found if not c.agrees]
        config = UpstreamConfig.from_settings(state.settings)
        for c in differ:
            log.warning(
                "reconcile %s: here %s (%s…), parent %s (%s…)",
                c.day,
                c.ours.count,
                c.ours.digest[:12],
                c.parent_count,
                c.parent_digest[:12],
            )
            if repair:
                await resend_day(state.sessionmaker, state.upstream, config, c.day)
        return found
    except Exception:  # noqa: BLE001 - reconciliation must not stop the pass
        log.exception("reconciliation with the parent failed")
        return []


async def export_day(
    sessionmaker: async_sessionmaker[AsyncSession], config: UpstreamConfig, day: date, out: Path
) -> int:
    """Write a day's ratings in the exchange format as JSON lines; how many."""
    count = 0
    with out.open("w", encoding="utf-8") as f:
        async with sessionmaker() as db:
            async for chunk in _day_ratings(db, day, config.batch_size):
                for r in chunk:
                    line = {"formatVersion": records.FORMAT_VERSION}
                    line.update(records.encode_rating(r, config.dialect))
                    f.write(json.dumps(line, ensure_ascii=False))
                    f.write("\n")
                    count += 1
    return count
