"""The detection pipeline: independent checks, each flagging suspect ratings with a reason
(Chinese, for the reviewer) and the evidence behind it.

A check is a subclass of `Check` decorated with `@register`. It may look at each rating as
it is stored (`inspect`: intake, inside the rating's own transaction, so it must be cheap: in-
memory sliding windows and at most one indexed lookup) and/or at recent ratings as a whole
(`scan`: the periodic batch pass, set-based SQL). A check returns its findings; a rating it
does not name passed. Flags are written by `flags.raise_flags`, once per rating and check.

The intake windows are per process: with several workers each sees its share of the traffic,
so every intake check also has a batch `scan` over the database that catches what the split
hid. They are heuristics that hold a rating for review; none of them refuses one.
"""

from __future__ import annotations

import logging
import math
import time
import unicodedata
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from rapidfuzz import fuzz, process
from sqlalchemy import and_, case, distinct, extract, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.cases.models import Case
from haochaping.core import jobs as job_state
from haochaping.core.security import mask_text
from haochaping.core.timeutil import utcnow
from haochaping.db.crypto import DataKeys, IdentityHasher
from haochaping.evaluations.choices import LEVEL_LABELS
from haochaping.evaluations.models import Evaluation, Invitation
from haochaping.integrity.choices import FlagStage, SourceKind
from haochaping.integrity.flags import Finding, raise_flags
from haochaping.integrity.identity import mask, normalize
from haochaping.integrity.models import StaffIdentity
from haochaping.orgs.models import Org, Staff

log = logging.getLogger("haochaping.integrity")

Row = dict[str, Any]
Hook = Callable[[AsyncSession, list[Row]], Awaitable[None]]
# Devices fixed at a window (the pad, the self-service terminal) are shared by every citizen
# served there: they say nothing about who rated.
FIXED_DEVICE_CHANNELS = frozenset({"pad", "terminal"})
FREE_CHANNELS = frozenset({"review", "inspection", "system"})
SOURCE_LABELS = SourceKind.labels()


@dataclass(frozen=True)
class Thresholds:
    """Every number the checks use; the defaults are the ones measured in docs/detection.md."""

    # source_burst: one phone / device / IP+browser rating many cases of different raters.
    burst_window_seconds: int = 6 * 3600
    burst_min_cases: int = 4
    burst_min_raters: int = 2
    burst_lookback_hours: int = 24
    # invitation_misuse: links spent faster than a citizen can open them, again and again at
    # one window; a source that tried spent or forged links.
    link_min_seconds: float = 10.0
    link_repeat_days: int = 7
    link_min_repeats: int = 2
    refusal_window_seconds: int = 24 * 3600
    refusal_min_reused: int = 2
    refusal_min_forged: int = 1
    # instant_pad: the pad pressed seconds after completion more often than at other pads.
    # For each cut-off, a pad's presses within it are tested against the rate of the better
    # peer pads (binomial tail); the cut-off with the smallest chance is the one judged.
    pad_lookback_days: int = 7
    pad_cutoffs_seconds: tuple[float, ...] = (3.0, 6.0)
    pad_min_ratings: int = 10
    pad_min_instant: int = 6
    pad_peer_quantile: float = 0.9
    pad_peer_min_units: int = 5
    # The null rate when there are fewer peer pads than that: a generous share of citizens
    # ready at the pad before the staff finished.
    pad_default_share: float = 0.1
    pad_max_p: float = 1e-6
    # perfect_unit: a window or staff member more perfect than its peers can explain.
    perfect_lookback_days: int = 30
    perfect_min_ratings: int = 50
    # The null rate: the 95th percentile of the other units of the deployment (of the same
    # tier), not their average (excellent units exist), and not one county's: twenty units
    # make a quantile too noisy to hold an excellent window's rate (docs/detection.md).
    perfect_peer_quantile: float = 0.95
    # Peers that look perfect themselves are left out of the null (fakers hiding one another).
    perfect_peer_exclude_share: float = 0.98
    # A flag holds a whole unit's ratings and every unit is tested every pass: a high bar.
    perfect_max_p: float = 1e-6
    peer_min_ratings: int = 200
    # duplicate_comment: the same written comment on different cases.
    comment_lookback_days: int = 7
    comment_min_chars: int = 10
    comment_min_cases: int = 3  # at one unit
    # Text seen at more units than this over a month is a common phrase (the rating page's
    # quick phrases, a saying), not a paste.
    comment_max_orgs: int = 3
    comment_common_days: int = 30
    # Near-duplicates (duplicate_comment, coordinated_bad): texts compared after
    # `comment_key` (NFKC, no punctuation or spaces); similar at this Indel similarity (0-100,
    # rapidfuzz's fuzz.ratio: one word changed in a sentence of 15 characters is about 87).
    comment_similarity: float = 85.0
    # coordinated_bad: bad ratings against one unit from raters linked by phone/device/IP,
    # or, sharing nothing, by time and near-identical wording.
    bad_lookback_days: int = 3
    bad_span_hours: int = 24
    bad_min_ratings: int = 3
    bad_min_raters: int = 2
    bad_text_span_hours: float = 6.0
    bad_text_min_chars: int = 8
    bad_text_similarity: float = 90.0
    # pad_burst: presses less than a second apart at one window and device (a backlog
    # pressed through), consecutive in a run of this many.
    press_lookback_days: int = 2
    press_gap_seconds: float = 1.0
    press_min_run: int = 3
    # agent_volume: one ID number with no phone or device rating many applicants' cases,
    # in a short time, at one place, all at one level. An agent firm rates its clients'
    # cases too: volume, spread and level pattern together, never the role.
    agent_lookback_days: int = 7
    agent_span_hours: float = 1.0
    agent_min_applicants: int = 5
    agent_min_share_one_place: float = 0.8
    agent_min_share_one_level: float = 1.0
    # Time: the time a rating was given as its device or channel reports it, when an API
    # client reported it and it is at most this long before receipt; else the receipt.
    given_max_lag_hours: float = 24.0
    # Ratings read per batch pass by the watermark-driven backstops.
    batch_limit: int = 50_000


PASS: tuple[Finding, ...] = ()  # what a check returns for a rating it has nothing against


class Check:
    """Base of every check: override `inspect` (intake), `scan` (batch), or both."""

    name: ClassVar[str]
    label: ClassVar[str]  # Chinese, shown in the review queue

    async def inspect(self, guard: IntakeGuard, db: AsyncSession, row: Row) -> Sequence[Finding]:
        """Judge one rating just stored (same transaction): findings, or PASS."""
        return PASS

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        """Judge recent ratings as a whole: the findings (ratings not named pass)."""
        return []

    @property
    def at_intake(self) -> bool:
        return type(self).inspect is not Check.inspect

    @property
    def in_batch(self) -> bool:
        return type(self).scan is not Check.scan


REGISTRY: dict[str, Check] = {}


def register(cls: type[Check]) -> type[Check]:
    """Add a check to the pipeline (a class decorator)."""
    REGISTRY[cls.name] = cls()
    return cls


def intake_checks() -> list[Check]:
    return [c for c in REGISTRY.values() if c.at_intake]


def batch_checks() -> list[Check]:
    return [c for c in REGISTRY.values() if c.in_batch]


def check_labels() -> dict[str, str]:
    """Check name → Chinese label, for lists and filters."""
    return {name: c.label for name, c in REGISTRY.items()}


# --- shared pieces ---------------------------------------------------------------------------


def _ts(value: datetime) -> float:
    return value.timestamp()


TIME_BASIS = {"given": "评价器或渠道报告的评价时间", "received": "评价到达服务器的时间"}


def rating_time(row: Mapping[Any, Any], th: Thresholds) -> tuple[datetime, str]:
    """When a rating was given, and on what the figure rests (`given` or `received`).

    A pad buffers ratings while offline and uploads them together; a burst can be uploaded
    later, spread out. The time the rating was given is what tells them apart, and it is
    trusted where a client of ours reported it (pads, terminals, business systems: not a
    browser with a link, whose time is the receipt anyway), bounded by receipt: not after
    it (intake already caps it) and not more than `given_max_lag_hours` before it."""
    received: datetime = row["received_at"]
    if row.get("client_id") is None or row.get("invitation_id"):
        return received, "received"
    given: datetime | None = row.get("evaluated_at")
    if given is not None and given != received:
        lag = (received - given).total_seconds()
        if 0.0 < lag <= th.given_max_lag_hours * 3600.0:
            return given, "given"
    return received, "received"


_COMMENT_DROP = frozenset("PSZC")  # punctuation, symbols, separators, control characters


def comment_key(text: str | None) -> str:
    """A comment in the form near-duplicates are compared in: full-width forms made ASCII
    (NFKC), lower case, punctuation, symbols and spaces dropped, so that changing a comma
    or an exclamation mark changes nothing."""
    if not text:
        return ""
    norm = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in norm if unicodedata.category(ch)[0] not in _COMMENT_DROP)


def _rater(row: Row) -> str:
    """Who rated, as far as the row says: the ID number, else this rating alone (unknown).

    Rows read back from the database carry keyed hashes (the numbers are encrypted at rest);
    rows at intake carry the numbers themselves, which never leave this process."""
    cert = row.get("rater_cert_hash") or normalize("cert", row.get("rater_cert_no"))
    return cert if cert else f"?{row['id']}"


def source_keys(row: Row) -> list[tuple[str, str]]:
    """(kind, value) of the sources a rating came from that belong to the rater."""
    keys = []
    phone = row.get("rater_phone_hash") or normalize("phone", row.get("rater_phone"))
    if phone:
        keys.append(("phone", phone))
    device = row.get("device_id")
    if device and row.get("channel") not in FIXED_DEVICE_CHANNELS:
        keys.append(("device", device))
    # The address is the rater's own only for a signed link opened in their browser; API
    # clients post from their servers. Keyed with the browser, so a hall's shared Wi-Fi does
    # not make every visitor one source.
    if row.get("invitation_id") and row.get("source_ip"):
        keys.append(("ip", f"{row['source_ip']}|{row.get('user_agent') or ''}"))
    return keys


def _source_shown(kind: str, row: Row) -> str:
    if kind == "ip":
        return mask("ip", row.get("source_ip")) or ""
    if kind == "phone":
        return mask("phone", normalize("phone", row.get("rater_phone"))) or ""
    return mask(kind, row.get("device_id")) or ""


def _decrement(counts: dict[Any, int], key: Any) -> None:
    left = counts[key] - 1
    if left:
        counts[key] = left
    else:
        del counts[key]


@dataclass(slots=True)
class SourceEvent:
    t: float
    evaluation_id: int
    case_id: int
    rater: str
    org_id: int
    flagged: bool = False


def flag_once(
    events: Iterable[SourceEvent],
    check: str,
    subject: str,
    reason: str,
    evidence: Callable[[SourceEvent], dict[str, Any]],
) -> list[Finding]:
    """A finding for each event of a window not flagged yet, which is then marked flagged
    (a source's window flags each of its ratings once however often it trips a check)."""
    out = []
    for e in events:
        if not e.flagged:
            e.flagged = True
            out.append(
                Finding(
                    evaluation_id=e.evaluation_id,
                    org_id=e.org_id,
                    check=check,
                    subject=subject,
                    reason=reason,
                    evidence=evidence(e),
                )
            )
    return out


class SourceWindow:
    """One source's recent events, with counts of their cases and raters kept as it slides
    (so that judging a rating costs the same however busy the source).

    Most sources (a citizen's phone) rate once: the counts are made when a second event
    arrives, so that a one-off source costs one small object, not three (at intake the
    windows of a day's distinct phones are most of the hook's time and memory)."""

    __slots__ = ("events", "cases", "raters")

    def __init__(self) -> None:
        self.events: deque[SourceEvent] = deque()
        self.cases: dict[int, int] | None = None
        self.raters: dict[str, int] | None = None

    def _drop(self) -> None:
        old = self.events.popleft()
        if self.cases is None or self.raters is None:
            return
        _decrement(self.cases, old.case_id)
        _decrement(self.raters, old.rater)

    def push(self, event: SourceEvent, window: float, limit: int) -> None:
        events = self.events
        while events and event.t - events[0].t > window:
            self._drop()
        if len(events) >= limit:
            self._drop()
        events.append(event)
        if self.cases is None or self.raters is None:
            if len(events) < 2:
                return
            self.cases, self.raters = {}, {}
            counted: Iterable[SourceEvent] = events
        else:
            counted = (event,)
        cases, raters = self.cases, self.raters
        for e in counted:
            cases[e.case_id] = cases.get(e.case_id, 0) + 1
            raters[e.rater] = raters.get(e.rater, 0) + 1

    def burst(self, th: Thresholds) -> tuple[int, int] | None:
        """(cases, raters) when the window is a burst, else None."""
        if self.cases is None or self.raters is None:  # one event or none
            n = len(self.events)
            return (n, n) if n >= th.burst_min_cases and n >= th.burst_min_raters else None
        if len(self.cases) >= th.burst_min_cases and len(self.raters) >= th.burst_min_raters:
            return len(self.cases), len(self.raters)
        return None

    def __iter__(self):
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


class SourceWindows:
    """Per-source sliding windows of recent ratings (per process, bounded in memory).

    A source seen once (most citizens' phones) is kept as its one event, not as a window: the
    garbage collector walks every object the guard keeps, on every full collection, and at
    intake that was most of what the checks cost (docs/benchmarks.md). Its second event makes
    it a window."""

    def __init__(
        self, *, window_seconds: float, per_key: int = 64, max_keys: int = 200_000
    ) -> None:
        self.window, self.per_key, self.max_keys = window_seconds, per_key, max_keys
        # A one-off source is held as a tuple of plain values: the collector stops tracking
        # such tuples after one pass, where a SourceEvent stays on its lists for good.
        self._data: dict[Any, SourceWindow | tuple] = {}
        self._adds = 0

    def add(self, key: Any, event: SourceEvent) -> SourceWindow:
        """Record an event; returns the key's window (its events, oldest first)."""
        held = self._data.get(key)
        window = SourceWindow()
        if held is None:
            self._data[key] = (
                event.t,
                event.evaluation_id,
                event.case_id,
                event.rater,
                event.org_id,
                event.flagged,
            )
        elif isinstance(held, tuple):
            window.push(SourceEvent(*held), self.window, self.per_key)
            self._data[key] = window
        else:
            window = held
        window.push(event, self.window, self.per_key)
        self._adds += 1
        if self._adds % 10_000 == 0:
            self._prune(event.t)
        return window

    @staticmethod
    def _last(held: SourceWindow | tuple) -> float:
        if isinstance(held, tuple):
            return held[0]
        return held.events[-1].t if held.events else float("-inf")

    def _prune(self, now: float) -> None:
        stale = [k for k, held in self._data.items() if now - self._last(held) > self.window]
        for k in stale:
            del self._data[k]
        if len(self._data) > self.max_keys:  # a flood of one-off sources: keep the recent half
            keep = sorted(self._data.items(), key=lambda kv: self._last(kv[1]))[
                len(self._data) // 2 :
            ]
            self._data = dict(keep)

    def __len__(self) -> int:
        return len(self._data)


def burst_in(events: Iterable[SourceEvent], th: Thresholds) -> tuple[int, int] | None:
    """(cases, raters) when a window's events are a burst, else None."""
    cases, raters = set(), set()
    for e in events:
        cases.add(e.case_id)
        raters.add(e.rater)
    if len(cases) >= th.burst_min_cases and len(raters) >= th.burst_min_raters:
        return len(cases), len(raters)
    return None


class RefusalLog:
    """Refused rating links (reused, forged) per source, for a day (this process only)."""

    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._data: dict[str, deque[tuple[float, str]]] = {}

    async def add(self, key: str, code: str, t: float) -> None:
        events = self._data.setdefault(key, deque(maxlen=50))
        events.append((t, code))
        if len(self._data) > 100_000:
            self._data = {k: v for k, v in self._data.items() if t - v[-1][0] <= self.window}

    async def recent(self, key: str, t: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for when, code in self._data.get(key, ()):
            if t - when <= self.window:
                counts[code] = counts.get(code, 0) + 1
        return counts

    async def close(self) -> None:
        return None


class RedisRefusalLog(RefusalLog):
    """The same log in Redis, so that every server process sees every refusal: one sorted
    set per source (scored by time, trimmed to the window, expiring with it)."""

    def __init__(self, window_seconds: float, url: str) -> None:
        import redis.asyncio as redis

        super().__init__(window_seconds)
        self._redis = redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    @staticmethod
    def _key(key: str) -> str:
        import hashlib

        return "hcp:refusal:" + hashlib.sha256(key.encode()).hexdigest()[:32]

    async def add(self, key: str, code: str, t: float) -> None:
        import uuid

        k = self._key(key)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(k, {f"{code}:{uuid.uuid4().hex[:12]}": t})
            pipe.zremrangebyscore(k, "-inf", t - self.window)
            pipe.zremrangebyrank(k, 0, -51)  # the 50 newest, as in memory
            pipe.expire(k, int(self.window) + 60)
            await pipe.execute()

    async def recent(self, key: str, t: float) -> dict[str, int]:
        counts: dict[str, int] = {}
        for member in await self._redis.zrangebyscore(self._key(key), t - self.window, "+inf"):
            code = (member.decode() if isinstance(member, bytes) else str(member)).split(":", 1)[0]
            counts[code] = counts.get(code, 0) + 1
        return counts

    async def close(self) -> None:
        await self._redis.aclose()


StaffEntry = tuple[int, int, str]  # staff id, org id, staff number
RAW = {"cert": "rater_cert_no", "phone": "rater_phone"}


class IdentityCache:
    """Identity hash → staff, reloaded at most once a minute (registrations are rare)."""

    def __init__(self, ttl_seconds: float = 60.0) -> None:
        self.ttl = ttl_seconds
        self._index: dict[str, list[StaffEntry]] = {}
        self._expires = 0.0

    def invalidate(self) -> None:
        self._expires = 0.0

    async def get(self, db: AsyncSession) -> dict[str, list[StaffEntry]]:
        now = time.monotonic()
        if now < self._expires:
            return self._index
        self._index = await load_identity_index(db)
        self._expires = now + self.ttl
        return self._index


async def load_identity_index(db: AsyncSession) -> dict[str, list[StaffEntry]]:
    """Every registered staff identity hash with its staff member."""
    index: dict[str, list[StaffEntry]] = {}
    rows = await db.execute(
        select(StaffIdentity.identity_hash, Staff.id, Staff.org_id, Staff.staff_no).join(
            Staff, Staff.id == StaffIdentity.staff_id
        )
    )
    for digest, staff_id, org_id, staff_no in rows:
        index.setdefault(digest, []).append((staff_id, org_id, staff_no))
    return index


# --- the intake guard: per-process state and the hook -----------------------------------------


class IntakeGuard:
    """The intake checks with their per-process memory; `on_stored` is the intake hook."""

    def __init__(
        self,
        *,
        keys: DataKeys,
        thresholds: Thresholds | None = None,
        checks: list[Check] | None = None,
        redis_url: str = "",
    ) -> None:
        self.thresholds = thresholds or Thresholds()
        self.checks = intake_checks() if checks is None else checks
        self.sources = SourceWindows(window_seconds=self.thresholds.burst_window_seconds)
        self.fast_links = SourceWindows(window_seconds=self.thresholds.link_repeat_days * 86400)
        self.hasher = keys.identity_hash
        # Refused links leave no row for a batch pass to find: with several server processes
        # they are shared through Redis when it is configured.
        window = self.thresholds.refusal_window_seconds
        self.refusals = RedisRefusalLog(window, redis_url) if redis_url else RefusalLog(window)
        self.identities = IdentityCache()

    async def findings_for(self, db: AsyncSession, rows: list[Row]) -> list[Finding]:
        """Run every intake check on the rows just stored (a failing check is skipped)."""
        found: list[Finding] = []
        for row in rows:
            if row.get("is_default") or row.get("channel") == "system":
                continue
            for check in self.checks:
                try:
                    found.extend(await check.inspect(self, db, row))
                except Exception:  # noqa: BLE001 - a detector's bug must not refuse a rating
                    log.exception("intake check %s failed on rating %s", check.name, row.get("id"))
        return found

    async def on_stored(self, db: AsyncSession, rows: list[Row]) -> None:
        """The `IntakeRules.on_stored` callback: flag what the checks find, same transaction
        (in a savepoint: flags that cannot be written never cost the rating)."""
        found = await self.findings_for(db, rows)
        if found:
            try:
                async with db.begin_nested():
                    await raise_flags(db=db, findings=found, stage=FlagStage.INTAKE)
            except Exception:  # noqa: BLE001 - the batch backstops find them again
                log.exception("intake flags could not be written")

    async def note_refusal(
        self,
        *,
        code: str,
        source_ip: str | None,
        user_agent: str | None,
        at: datetime | None = None,
    ) -> None:
        """Remember a refused rating link (reused or forged) from a browser."""
        if source_ip:
            await self.refusals.add(f"{source_ip}|{user_agent or ''}", code, _ts(at or utcnow()))


def make_intake_hook(state: Any) -> Hook:
    """The intake hook of an app: the guard lives on `state.integrity_guard`."""
    state.integrity_guard = IntakeGuard(keys=state.keys, redis_url=state.settings.redis_url)
    return state.integrity_guard.on_stored


async def note_invitation_refusal(
    state: Any, *, code: str, source_ip: str | None, user_agent: str | None
) -> None:
    """Record a link refused as reused (`invitation_used`) or forged (`invitation_invalid`);
    never fails the page that refused it."""
    guard: IntakeGuard | None = getattr(state, "integrity_guard", None)
    if guard is not None and code in ("invitation_used", "invitation_invalid"):
        try:
            await guard.note_refusal(code=code, source_ip=source_ip, user_agent=user_agent)
        except Exception:  # noqa: BLE001 - Redis away: the refusal goes unrecorded, logged
            log.exception("refused link could not be recorded")


# --- the batch context -------------------------------------------------------------------------


@dataclass
class BatchContext:
    """What a batch check sees: the session, the time of the pass, thresholds, bad levels."""

    db: AsyncSession
    now: datetime
    keys: DataKeys
    thresholds: Thresholds = field(default_factory=Thresholds)
    bad_levels: frozenset[int] = frozenset({1, 2})

    @property
    def hasher(self) -> IdentityHasher:
        return self.keys.identity_hash

    def since(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    @property
    def dialect(self) -> str:
        return self.db.bind.dialect.name  # type: ignore[union-attr]

    def recent(self, days: float):
        """Ratings received in the last `days` before the pass, system defaults left out."""
        return and_(
            Evaluation.received_at >= self.since(days),
            Evaluation.received_at < self.now,
            Evaluation.is_default.is_(False),
        )

    async def watermark(self, name: str) -> int:
        """The last rating id a backstop has looked at."""
        return await job_state.watermark(self.db, name)

    async def advance(self, name: str, value: int) -> None:
        await job_state.advance(self.db, name, value)

    def seconds_between(self, later, earlier):
        """SQL: seconds from `earlier` to `later` (PostgreSQL and SQLite)."""
        if self.dialect == "postgresql":
            return extract("epoch", later - earlier)
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0


async def _org_codes(db: AsyncSession, ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    ids = set(ids)
    if not ids:
        return {}
    rows = await db.execute(select(Org.id, Org.code, Org.name).where(Org.id.in_(ids)))
    return {i: (code, name) for i, code, name in rows}


# --- intake checks (each with a batch backstop) -----------------------------------------------


@register
class StaffSelfRating(Check):
    """The rater's ID number or phone is that of the staff member who served (or a colleague)."""

    name = "staff_self_rating"
    label = "工作人员自评"

    def match(
        self, hasher: IdentityHasher, index: dict[str, list[StaffEntry]], row: Row
    ) -> Finding | None:
        best: tuple[str, str, StaffEntry] | None = None
        for kind in ("cert", "phone"):
            digest = row.get(f"rater_{kind}_hash") or hasher(row.get(RAW[kind]), kind)
            for entry in index.get(digest, ()) if digest else ():
                staff_id, org_id, _no = entry
                if staff_id == row.get("staff_id"):
                    best = ("self", kind, entry)
                    break
                if best is None and org_id in (row.get("window_id"), row.get("org_id")):
                    best = ("colleague", kind, entry)
            if best and best[0] == "self":
                break
        if best is None:
            return None
        relation, kind, (_sid, _oid, staff_no) = best
        what = "身份证号" if kind == "cert" else "手机号"
        reason = (
            f"评价人{what}与办理该件的工作人员（工号 {staff_no}）一致，疑似本人自评"
            if relation == "self"
            else f"评价人{what}与被评价单位的工作人员（工号 {staff_no}）一致，疑似内部刷评"
        )
        return Finding(
            evaluation_id=row["id"],
            org_id=row["org_id"],
            check=self.name,
            subject=f"工作人员 {staff_no}",
            reason=reason,
            evidence={"relation": relation, "matched": kind, "staff_no": staff_no},
        )

    async def inspect(self, guard: IntakeGuard, db: AsyncSession, row: Row) -> Sequence[Finding]:
        if not (row.get("rater_cert_no") or row.get("rater_phone")):
            return PASS
        index = await guard.identities.get(db)
        if not index:
            return PASS
        found = self.match(guard.hasher, index, row)
        return [found] if found else PASS

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        """Ratings past the watermark, against the identities as registered now."""
        last = await ctx.watermark("integrity_self_rating")
        rows = (
            (
                await ctx.db.execute(
                    select(
                        Evaluation.id,
                        Evaluation.org_id,
                        Evaluation.staff_id,
                        Evaluation.window_id,
                        Evaluation.rater_cert_hash,
                        Evaluation.rater_phone_hash,
                    )
                    .where(Evaluation.id > last, Evaluation.received_at < ctx.now)
                    .order_by(Evaluation.id)
                    .limit(ctx.thresholds.batch_limit)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            return []
        index = await load_identity_index(ctx.db)
        found = [f for r in rows if index for f in [self.match(ctx.hasher, index, dict(r))] if f]
        await ctx.advance("integrity_self_rating", rows[-1]["id"])
        return found


@register
class SourceBurst(Check):
    """One phone, device or IP address rating many different cases of different raters."""

    name = "source_burst"
    label = "同一来源短时评价多件"

    def _findings(
        self, kind: str, row: Row, events: SourceWindow, th: Thresholds, basis: str
    ) -> Sequence[Finding]:
        burst = events.burst(th)
        if burst is None:
            return PASS
        cases, raters = burst
        shown = _source_shown(kind, row)
        hours = th.burst_window_seconds / 3600
        ids = [e.evaluation_id for e in events]
        evidence = {
            "source": kind,
            "value": shown,
            "window_hours": hours,
            "cases": cases,
            "raters": raters,
            "evaluation_ids": ids,
            "time_basis": basis,
        }
        reason = (
            f"同一{SOURCE_LABELS[kind]}（{shown}）在 {hours:g} 小时内（按{TIME_BASIS[basis]}）"
            f"评价了 {cases} 件"
            f"不同办件，涉及 {raters} 个不同评价人"
        )
        return flag_once(
            events, self.name, f"{SOURCE_LABELS[kind]} {shown}", reason, lambda _e: evidence
        )

    async def inspect(self, guard: IntakeGuard, db: AsyncSession, row: Row) -> Sequence[Finding]:
        if row.get("case_id") is None:
            return PASS
        found: list[Finding] = []
        th = guard.thresholds
        keys = source_keys(row)
        if not keys:
            return PASS
        when, basis = rating_time(row, th)
        for kind, value in keys:
            event = SourceEvent(_ts(when), row["id"], row["case_id"], _rater(row), row["org_id"])
            # Only a hash of the value is kept in memory, never the number itself.
            events = guard.sources.add((kind, hash(value)), event)
            found.extend(self._findings(kind, row, events, th, basis))
        return found

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        """The same windows over the database: catches bursts split across processes."""
        th = ctx.thresholds
        E = Evaluation
        base = and_(ctx.recent(th.burst_lookback_hours / 24), E.case_id.is_not(None))
        many = func.count(distinct(E.case_id)) >= th.burst_min_cases
        phones = (
            select(E.rater_phone_hash)
            .where(base, E.rater_phone_hash.is_not(None))
            .group_by(E.rater_phone_hash)
            .having(many)
        )
        devices = (
            select(E.device_id)
            .where(base, E.device_id.is_not(None), E.channel.not_in(FIXED_DEVICE_CHANNELS))
            .group_by(E.device_id)
            .having(many)
        )
        ips = (
            select(E.source_ip)
            .where(base, E.invitation_id.is_not(None), E.source_ip.is_not(None))
            .group_by(E.source_ip)
            .having(many)
        )
        cond = or_(E.rater_phone_hash.in_(phones), E.device_id.in_(devices), E.source_ip.in_(ips))
        rows = (
            (
                await ctx.db.execute(
                    # The phone itself (decrypted) only for these few rows: the evidence
                    # shows it masked.
                    select(
                        E.id,
                        E.case_id,
                        E.org_id,
                        E.channel,
                        E.rater_phone,
                        E.rater_phone_hash,
                        E.rater_cert_hash,
                        E.device_id,
                        E.invitation_id,
                        E.source_ip,
                        E.user_agent,
                        E.client_id,
                        E.evaluated_at,
                        E.received_at,
                    )
                    .where(base, cond)
                    .order_by(E.received_at, E.id)
                    .limit(th.batch_limit)
                )
            )
            .mappings()
            .all()
        )
        given = [(*rating_time(r, th), dict(r)) for r in rows]
        # On the time given (a burst uploaded later is still a burst), and on the receipt as
        # well: a rater's own source gains nothing from a pad's buffer, and a reported time
        # spread out by whoever controls the device must not hide a burst that arrived as one.
        received = [(r["received_at"], "received", dict(r)) for r in rows]
        found: list[Finding] = []
        for timed in (given, received):
            timed.sort(key=lambda t: (t[0], t[2]["id"]))
            windows = SourceWindows(window_seconds=th.burst_window_seconds, per_key=10_000)
            for when, basis, row in timed:
                for kind, value in source_keys(row):
                    event = SourceEvent(
                        _ts(when), row["id"], row["case_id"], _rater(row), row["org_id"]
                    )
                    events = windows.add((kind, value), event)
                    found.extend(self._findings(kind, row, events, th, basis))
        return found


@register
class InvitationMisuse(Check):
    """Links spent faster than a citizen could open them, time after time at one window; or a
    rating from a source that tried spent or forged links."""

    name = "invitation_misuse"
    label = "评价链接异常"

    def _fast_findings(
        self, events: SourceWindow | list[SourceEvent], place: str, th: Thresholds
    ) -> Sequence[Finding]:
        if len(events) < th.link_min_repeats:
            return PASS
        seconds = [float(e.rater) for e in events]  # the rater slot carries the seconds here
        reason = (
            f"{place} {th.link_repeat_days} 天内有 {len(events)} 条评价在评价链接签发后 "
            f"{th.link_min_seconds:g} 秒内完成，群众难以在此时间内收到并打开链接，"
            f"疑似工作人员代评"
        )
        return flag_once(
            events,
            self.name,
            place,
            reason,
            lambda e: {
                "fast_links": len(events),
                "seconds_after_issue": float(e.rater),
                "all_seconds": seconds[:50],
                "evaluation_ids": [x.evaluation_id for x in events][:50],
                "days": th.link_repeat_days,
            },
        )

    @staticmethod
    async def _places(db: AsyncSession, units: Iterable[tuple[int, bool]]) -> dict[int, str]:
        """The code of each window (or unit) named in a reason."""
        units = list(units)
        codes = await _org_codes(db, [u for u, _ in units])
        return {
            u: f"{'窗口' if is_window else '单位'} {codes.get(u, ('?', ''))[0]}"
            for u, is_window in units
        }

    async def inspect(self, guard: IntakeGuard, db: AsyncSession, row: Row) -> Sequence[Finding]:
        inv_id = row.get("invitation_id")
        if not inv_id:
            return PASS
        th = guard.thresholds
        found: list[Finding] = []
        if row.get("source_ip"):
            key = f"{row['source_ip']}|{row.get('user_agent') or ''}"
            refused = await guard.refusals.recent(key, _ts(row["received_at"]))
            reused, forged = refused.get("invitation_used", 0), refused.get("invitation_invalid", 0)
            if reused >= th.refusal_min_reused or forged >= th.refusal_min_forged:
                shown = _source_shown("ip", row)
                found.append(
                    Finding(
                        evaluation_id=row["id"],
                        org_id=row["org_id"],
                        check=self.name,
                        subject=f"IP 地址 {shown}",
                        reason=(
                            f"同一来源（{shown}）近 24 小时内 {reused} 次使用已用过的评价链接、"
                            f"{forged} 次使用无效或伪造的链接后提交了本评价"
                        ),
                        evidence={
                            "invitation_id": inv_id,
                            "refused_reused": reused,
                            "refused_forged": forged,
                            "source": shown,
                        },
                    )
                )
        issued = (
            await db.execute(select(Invitation.created_at).where(Invitation.id == inv_id))
        ).scalar_one_or_none()
        if issued is not None:
            seconds = (row["received_at"] - issued).total_seconds()
            if seconds < th.link_min_seconds:
                unit = row.get("window_id") or row["org_id"]
                event = SourceEvent(
                    _ts(row["received_at"]),
                    row["id"],
                    row.get("case_id") or 0,
                    f"{max(seconds, 0):.1f}",
                    row["org_id"],
                )
                events = guard.fast_links.add(unit, event)
                if len(events) >= th.link_min_repeats:
                    places = await self._places(db, [(unit, bool(row.get("window_id")))])
                    found.extend(self._fast_findings(events, places[unit], th))
        return found

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        """Fast link ratings of the last days grouped by window (intake memory is per
        process)."""
        th, E = ctx.thresholds, Evaluation
        seconds = ctx.seconds_between(E.received_at, Invitation.created_at)
        rows = (
            await ctx.db.execute(
                select(E.id, E.org_id, E.window_id, E.case_id, E.received_at, seconds)
                .join(Invitation, Invitation.id == E.invitation_id)
                .where(ctx.recent(th.link_repeat_days), seconds < th.link_min_seconds)
                .order_by(E.received_at, E.id)
                .limit(th.batch_limit)
            )
        ).all()
        groups: dict[int, list[SourceEvent]] = {}
        kinds: dict[int, bool] = {}
        for eid, org_id, window_id, case_id, received, sec in rows:
            unit = window_id or org_id
            kinds[unit] = window_id is not None
            groups.setdefault(unit, []).append(
                SourceEvent(_ts(received), eid, case_id or 0, f"{max(float(sec), 0):.1f}", org_id)
            )
        groups = {u: ev for u, ev in groups.items() if len(ev) >= th.link_min_repeats}
        places = await self._places(ctx.db, ((u, kinds[u]) for u in groups))
        return [
            f
            for unit, events in groups.items()
            for f in self._fast_findings(events, places[unit], th)
        ]


# --- batch checks ------------------------------------------------------------------------------


@register
class InstantPad(Check):
    """At one pad, ratings pressed within seconds of completion far more often than at other
    pads: a binomial tail against the rate of the better peer pads, not a fixed share."""

    name = "instant_pad"
    label = "评价器办结即评"

    @staticmethod
    def null_share(
        pads: Mapping[tuple[int, str | None], tuple[int, int]],
        me: tuple[int, str | None] | None,
        th: Thresholds,
    ) -> tuple[float, int]:
        """(the null rate of quick presses, peers behind it) for pad `me`: the rate of the
        better peers (`pad_peer_quantile` of the other pads' shares, after leaving out the
        far outliers, Tukey's fence at 3 IQR, so that fakers do not hide one another); the
        generous default when there are too few peers."""
        shares = [k / n for p, (n, k) in pads.items() if p != me and n >= th.pad_min_ratings]
        if not shares:
            return th.pad_default_share, 0
        shares = [x for x in shares if x <= tukey_far_fence(shares)]
        if len(shares) < th.pad_peer_min_units:
            return th.pad_default_share, len(shares)
        return quantile(shares, th.pad_peer_quantile), len(shares)

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        th, E = ctx.thresholds, Evaluation
        delay = ctx.seconds_between(E.evaluated_at, Case.completed_at)
        # Bands of the delay: within the first cut-off, then between consecutive ones. Each
        # is judged on its own, so honest quick presses of another band are not held with
        # the faked ones.
        cuts = sorted(th.pad_cutoffs_seconds)
        bands = list(zip([0.0, *cuts[:-1]], cuts, strict=True))

        def within(band: tuple[float, float]):
            lo, hi = band
            inside = and_(delay >= -hi, delay <= hi)
            return and_(inside, or_(delay < -lo, delay > lo)) if lo else inside

        base = and_(
            ctx.recent(th.pad_lookback_days),
            E.channel.in_(FIXED_DEVICE_CHANNELS),
            E.stage == "whole",
            E.window_id.is_not(None),
            Case.completed_at.is_not(None),
        )
        counts = [func.sum(case((within(b), 1), else_=0)) for b in bands]
        rows = (
            await ctx.db.execute(
                select(E.window_id, E.device_id, func.count(), *counts)
                .join(Case, Case.id == E.case_id)
                .where(base)
                .group_by(E.window_id, E.device_id)
            )
        ).all()
        by_band = {
            b: {(r[0], r[1]): (int(r[2]), int(r[3 + i] or 0)) for r in rows}
            for i, b in enumerate(bands)
        }
        # The rate of all pads first: a pad at or below it is no outlier (leaving itself out
        # would only raise the rate); the exact comparison, without the pad, for the others.
        overall = {b: self.null_share(by_band[b], None, th)[0] for b in bands}
        suspects = []
        for window_id, device_id, n, *_ in rows:
            if n < th.pad_min_ratings:
                continue
            me = (window_id, device_id)
            for b in bands:
                k = by_band[b][me][1]
                if k < th.pad_min_instant or k / n <= overall[b]:
                    continue
                null, peers = self.null_share(by_band[b], me, th)
                p_value = binomial_tail(k, n, null)
                if p_value < th.pad_max_p:
                    suspects.append((window_id, device_id, n, p_value, b, k, null, peers))
        if not suspects:
            return []
        codes = await _org_codes(ctx.db, [s[0] for s in suspects])
        found: list[Finding] = []
        for window_id, device_id, n, p_value, band, k, null, peers in suspects:
            pad = E.device_id == device_id if device_id is not None else E.device_id.is_(None)
            hits = (
                await ctx.db.execute(
                    select(E.id, E.org_id, delay)
                    .join(Case, Case.id == E.case_id)
                    .where(base, E.window_id == window_id, pad, within(band))
                    .order_by(E.id)
                )
            ).all()
            code = codes.get(window_id, ("?", ""))[0]
            shown = f"窗口 {code}" + (f" 评价器 {mask('device', device_id)}" if device_id else "")
            evidence = {
                "window_code": code,
                "device": mask("device", device_id),
                "ratings": n,
                "instant": k,
                "share": round(k / n, 3),
                "instant_seconds": band[1],
                **({"instant_after_seconds": band[0]} if band[0] else {}),
                "peer_share": round(null, 4),
                "peers": peers,
                "p_value": float(f"{p_value:.3g}"),
                "days": th.pad_lookback_days,
            }
            basis = (
                f"其他评价器较高水平为 {null:.1%}"
                if peers >= th.pad_peer_min_units
                else f"可比评价器不足，按 {null:.0%} 估计"
            )
            when = f"{band[0]:g}–{band[1]:g} 秒之间" if band[0] else f"{band[1]:g} 秒内"
            reason = (
                f"{shown}近 {th.pad_lookback_days} 天 {n} 条评价中有 {k} 条"
                f"（{k / n:.0%}）在办结后 {when}提交，{basis}，"
                f"偶然出现的概率约 {p_value:.1e}，疑似工作人员代按评价器"
            )
            found.extend(
                Finding(
                    evaluation_id=eid,
                    org_id=org_id,
                    check=self.name,
                    subject=shown,
                    reason=reason,
                    evidence={**evidence, "seconds": round(float(sec), 1)},
                )
                for eid, org_id, sec in hits
            )
        return found


@register
class PadBurst(Check):
    """At one window and device, presses less than a second apart: nobody rates after the
    previous citizen that fast, so a run of them is a backlog pressed through (closing time)."""

    name = "pad_burst"
    label = "评价器连续快速按键"

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        th, E = ctx.thresholds, Evaluation
        rows = (
            (
                await ctx.db.execute(
                    select(
                        E.id,
                        E.org_id,
                        E.window_id,
                        E.device_id,
                        E.client_id,
                        E.invitation_id,
                        E.evaluated_at,
                        E.received_at,
                    )
                    .where(
                        ctx.recent(th.press_lookback_days),
                        E.channel.in_(FIXED_DEVICE_CHANNELS),
                        E.window_id.is_not(None),
                    )
                    .order_by(E.id.desc())  # the newest: older ones were seen by earlier passes
                    .limit(th.batch_limit)
                )
            )
            .mappings()
            .all()
        )
        pads: dict[tuple[int, str | None], list[tuple[datetime, str, Row]]] = {}
        for r in rows:
            when, basis = rating_time(r, th)
            pads.setdefault((r["window_id"], r["device_id"]), []).append((when, basis, dict(r)))
        runs: list[tuple[int, str | None, list[tuple[datetime, str, Row]]]] = []
        for (window_id, device_id), presses in pads.items():
            presses.sort(key=lambda p: (p[0], p[2]["id"]))
            run = presses[:1]
            for press in presses[1:]:
                if (press[0] - run[-1][0]).total_seconds() < th.press_gap_seconds:
                    run.append(press)
                    continue
                if len(run) >= th.press_min_run:
                    runs.append((window_id, device_id, run))
                run = [press]
            if len(run) >= th.press_min_run:
                runs.append((window_id, device_id, run))
        if not runs:
            return []
        codes = await _org_codes(ctx.db, [w for w, _d, _r in runs])
        found: list[Finding] = []
        for window_id, device_id, run in runs:
            code = codes.get(window_id, ("?", ""))[0]
            shown = f"窗口 {code}" + (f" 评价器 {mask('device', device_id)}" if device_id else "")
            gaps = [
                round((b[0] - a[0]).total_seconds(), 2) for a, b in zip(run, run[1:], strict=False)
            ]
            bases = sorted({basis for _w, basis, _r in run})
            evidence = {
                "window_code": code,
                "device": mask("device", device_id),
                "presses": len(run),
                "gaps_seconds": gaps[:50],
                "first": run[0][0].isoformat(),
                "last": run[-1][0].isoformat(),
                "time_basis": bases,
                "evaluation_ids": [r["id"] for _w, _b, r in run][:200],
            }
            reason = (
                f"{shown}连续 {len(run)} 次评价的间隔均不足 {th.press_gap_seconds:g} 秒"
                f"（按{'、'.join(TIME_BASIS[b] for b in bases)}），"
                f"不可能是先后到窗口的群众各自评价，疑似积压后集中代按"
            )
            found.extend(
                Finding(
                    evaluation_id=r["id"],
                    org_id=r["org_id"],
                    check=self.name,
                    subject=shown,
                    reason=reason,
                    evidence=evidence,
                )
                for _w, _b, r in run
            )
        return found


@register
class AgentVolume(Check):
    """One ID number, with no phone or device, rating many different applicants' cases as
    their agent: in a short time, nearly all at one window or unit, all at one level. Agent
    firms rate their clients' cases too, spread over days and places, at varied levels: the
    pattern is what is judged, not the role."""

    name = "agent_volume"
    label = "同一证件代评多人办件"

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        th, E = ctx.thresholds, Evaluation
        base = and_(
            ctx.recent(th.agent_lookback_days),
            E.rater_cert_hash.is_not(None),
            E.rater_phone_hash.is_(None),
            or_(E.device_id.is_(None), E.channel.in_(FIXED_DEVICE_CHANNELS)),
            Case.applicant_cert_hash.is_distinct_from(E.rater_cert_hash),
        )
        applicants = func.count(distinct(func.coalesce(Case.applicant_cert_hash, Case.case_no)))
        busy = (
            select(E.rater_cert_hash)
            .join(Case, Case.id == E.case_id)
            .where(base)
            .group_by(E.rater_cert_hash)
            .having(applicants >= th.agent_min_applicants)
        )
        rows = (
            (
                await ctx.db.execute(
                    select(
                        E.id,
                        E.org_id,
                        E.window_id,
                        E.level,
                        E.client_id,
                        E.invitation_id,
                        E.evaluated_at,
                        E.received_at,
                        E.rater_cert_hash,
                        E.rater_cert_no,  # decrypted for these few rows: shown masked
                        func.coalesce(Case.applicant_cert_hash, Case.case_no).label("applicant"),
                    )
                    .join(Case, Case.id == E.case_id)
                    .where(base, E.rater_cert_hash.in_(busy))
                    .order_by(E.id.desc())  # the newest: older ones were seen by earlier passes
                    .limit(th.batch_limit)
                )
            )
            .mappings()
            .all()
        )
        by_rater: dict[str, list[tuple[datetime, str, Row]]] = {}
        for r in rows:
            by_rater.setdefault(r["rater_cert_hash"], []).append((*rating_time(r, th), dict(r)))
        span = timedelta(hours=th.agent_span_hours)
        suspects = []
        for ratings in by_rater.values():
            ratings.sort(key=lambda x: (x[0], x[2]["id"]))
            best: list[tuple[datetime, str, Row]] = []
            lo = 0
            for hi in range(len(ratings)):  # the busiest span of `agent_span_hours`
                while ratings[hi][0] - ratings[lo][0] > span:
                    lo += 1
                if hi - lo + 1 > len(best):
                    best = ratings[lo : hi + 1]
            if len({r["applicant"] for _t, _b, r in best}) < th.agent_min_applicants:
                continue
            places = Counter(r["window_id"] or r["org_id"] for _t, _b, r in best)
            levels = Counter(r["level"] for _t, _b, r in best)
            place, at_place = places.most_common(1)[0]
            level, at_level = levels.most_common(1)[0]
            n = len(best)
            if (
                at_place / n >= th.agent_min_share_one_place
                and at_level / n >= th.agent_min_share_one_level
            ):
                suspects.append((best, place, at_place, level, at_level))
        if not suspects:
            return []
        codes = await _org_codes(ctx.db, [s[1] for s in suspects])
        found: list[Finding] = []
        for best, place, at_place, level, at_level in suspects:
            n = len(best)
            applicants_n = len({r["applicant"] for _t, _b, r in best})
            hours = max((best[-1][0] - best[0][0]).total_seconds() / 3600, 0.1)
            code = codes.get(place, ("?", ""))[0]
            bases = sorted({b for _t, b, _r in best})
            cert_shown = mask("cert", normalize("cert", best[0][2]["rater_cert_no"])) or "?"
            evidence = {
                "ratings": n,
                "applicants": applicants_n,
                "hours": round(hours, 1),
                "rater": cert_shown,
                "place_code": code,
                "at_place": at_place,
                "level": level,
                "at_level": at_level,
                "time_basis": bases,
                "evaluation_ids": [r["id"] for _t, _b, r in best][:200],
            }
            reason = (
                f"同一证件号（未留手机号、设备）在 {hours:.1f} 小时内评价了 {applicants_n} 位"
                f"不同办事人的 {n} 件办件，其中 {at_place} 件在 {code}，"
                f"{at_level} 件为“{LEVEL_LABELS.get(level, level)}”"
                f"（按{'、'.join(TIME_BASIS[b] for b in bases)}），"
                f"不像代办机构按办件分散的评价，疑似借代办身份刷评"
            )
            found.extend(
                Finding(
                    evaluation_id=r["id"],
                    org_id=r["org_id"],
                    check=self.name,
                    subject=f"证件号 {cert_shown}",
                    reason=reason,
                    evidence=evidence,
                )
                for _t, _b, r in best
            )
        return found


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    lgn = math.lgamma(n + 1)
    total = sum(
        math.exp(lgn - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
        for i in range(k, n + 1)
    )
    return min(1.0, total)


def quantile(values: Sequence[float], q: float) -> float:
    """The `q` quantile of `values` (linear interpolation between order statistics)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def tukey_far_fence(values: Sequence[float]) -> float:
    """Tukey's upper fence for far outliers (Q3 + 3 IQR); infinite under four values."""
    if len(values) < 4:
        return math.inf
    q1, q3 = quantile(values, 0.25), quantile(values, 0.75)
    return q3 + 3.0 * (q3 - q1)


def peer_ceiling(units: list[tuple[int, int]], quantile: float) -> tuple[float, float]:
    """(pooled rate, the rate of the better peers at `quantile`) of peer units given as
    (ratings, top); peers with too few ratings to tell are left out of the quantile."""
    m = sum(k for _, k in units) / sum(n for n, _ in units)
    shares = sorted(k / n for n, k in units if n >= 30) or [m]
    pos = quantile * (len(shares) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(shares) - 1)
    return m, shares[lo] + (shares[hi] - shares[lo]) * (pos - lo)


@register
class PerfectUnit(Check):
    """A window or staff member whose share of 非常满意 its peers cannot explain: even at the
    rate of its better peers (excellent units exist), so many would come by chance with a
    probability below a small threshold."""

    name = "perfect_unit"
    label = "满意度分布异常完美"

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        th = ctx.thresholds
        found: list[Finding] = []
        for unit, column in (("window", Evaluation.window_id), ("staff", Evaluation.staff_id)):
            found.extend(await self._scan_unit(ctx, unit, column, th))
        return found

    async def _scan_unit(
        self, ctx: BatchContext, unit: str, column, th: Thresholds
    ) -> list[Finding]:
        E = Evaluation
        base = and_(
            ctx.recent(th.perfect_lookback_days),
            column.is_not(None),
            E.channel.not_in(FREE_CHANNELS),
        )
        top = func.sum(case((E.level == 5, 1), else_=0))
        stats = (
            await ctx.db.execute(select(column, func.count(), top).where(base).group_by(column))
        ).all()
        exclude = th.perfect_peer_exclude_share
        eligible = [(n, k) for _u, n, k in stats if n >= 10 and k / n < exclude]
        if sum(n for n, _ in eligible) < th.peer_min_ratings:
            return []
        # A unit at or below the rate of the better units of all can be no outlier (leaving
        # itself out only raises that rate): the exact comparison is made for the others.
        overall = peer_ceiling(eligible, th.perfect_peer_quantile)[1]
        suspects = []
        for unit_id, n, k in stats:
            if n < th.perfect_min_ratings or k / n <= overall:
                continue
            # Peers: every other unit of the tier, not those that look perfect themselves.
            peers = [
                (pn, pk) for u, pn, pk in stats if u != unit_id and pn >= 10 and pk / pn < exclude
            ]
            peer_n = sum(pn for pn, _ in peers)
            if peer_n < th.peer_min_ratings:
                continue
            # The null is generous: as good as the better peers, not the average one.
            peer_p, best = peer_ceiling(peers, th.perfect_peer_quantile)
            p_value = binomial_tail(k, n, best)
            if p_value < th.perfect_max_p:
                suspects.append((unit_id, n, k, peer_p, best, peer_n, p_value))
        if not suspects:
            return []
        if unit == "window":
            names = {
                i: c for i, (c, _n) in (await _org_codes(ctx.db, [s[0] for s in suspects])).items()
            }
            label = "窗口"
        else:
            names = dict(
                (
                    await ctx.db.execute(
                        select(Staff.id, Staff.staff_no).where(
                            Staff.id.in_([s[0] for s in suspects])
                        )
                    )
                ).all()
            )
            label = "工作人员"
        found: list[Finding] = []
        for unit_id, n, k, peer_p, best, peer_n, p_value in suspects:
            code = names.get(unit_id, "?")
            ids = (
                await ctx.db.execute(
                    select(E.id, E.org_id)
                    .where(base, column == unit_id, E.level == 5)
                    .order_by(E.id)
                    .limit(th.batch_limit)
                )
            ).all()
            evidence = {
                "unit": unit,
                "code": code,
                "ratings": n,
                "top": k,
                "share": round(k / n, 4),
                "peer_share": round(peer_p, 4),
                "peer_best": round(best, 4),
                "peer_ratings": peer_n,
                "p_value": float(f"{p_value:.3g}"),
                "days": th.perfect_lookback_days,
            }
            top_pct = round((1 - th.perfect_peer_quantile) * 100)
            reason = (
                f"{label} {code} 近 {th.perfect_lookback_days} 天 {n} 条评价中 {k} 条为"
                f"“非常满意”（{k / n:.1%}），同类平均 {peer_p:.1%}、前 {top_pct}% 为 "
                f"{best:.1%}；即便按前 {top_pct}% 的水平，偶然出现的概率也只有约 "
                f"{p_value:.1e}"
            )
            found.extend(
                Finding(
                    evaluation_id=eid,
                    org_id=org_id,
                    check=self.name,
                    subject=f"{label} {code}",
                    reason=reason,
                    evidence=evidence,
                )
                for eid, org_id in ids
            )
        return found


def similar_pairs(texts: Sequence[str], cutoff: float) -> Iterable[tuple[int, int]]:
    """(i, j), i < j, of every pair of `texts` at least `cutoff` alike (rapidfuzz
    fuzz.ratio, the normalised Indel similarity, 0-100; its C++ loop does the work)."""
    for i in range(len(texts) - 1):
        rest = texts[i + 1 :]
        for _text, _score, k in process.extract(
            texts[i], rest, scorer=fuzz.ratio, score_cutoff=cutoff, limit=None
        ):
            yield i, i + 1 + k


def similar_to_any(queries: Sequence[str], texts: Sequence[str], cutoff: float) -> set[int]:
    """Indices of `texts` at least `cutoff` alike to one of `queries`."""
    hits: set[int] = set()
    for q in queries:
        hits.update(
            k
            for _t, _s, k in process.extract(
                q, texts, scorer=fuzz.ratio, score_cutoff=cutoff, limit=None
            )
        )
    return hits


def similar_groups(texts: Sequence[str], cutoff: float) -> list[list[int]]:
    """Indices of `texts` grouped by near-identity: a pair is linked when its Indel
    similarity (rapidfuzz fuzz.ratio, 0-100) reaches `cutoff`; groups are the linked
    components. Identical texts are compared once."""
    distinct = list(dict.fromkeys(texts))
    links = _Links()
    for i in range(len(distinct)):
        links.find(i)
    if len(distinct) > 1:
        for i, j in similar_pairs(distinct, cutoff):
            links.union(i, j)
    position = {t: i for i, t in enumerate(distinct)}
    groups: dict[int, list[int]] = {}
    for k, t in enumerate(texts):
        groups.setdefault(links.find(position[t]), []).append(k)
    return list(groups.values())


@register
class DuplicateComment(Check):
    """The same comment, or one changed by a word or a punctuation mark, on several cases of
    one unit within days; unless the wording is common across the whole region served (a
    phrase many units hear is repetition, not a paste)."""

    name = "duplicate_comment"
    label = "评价内容雷同"

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        th, E = ctx.thresholds, Evaluation
        rows = (
            await ctx.db.execute(
                select(E.id, E.org_id, E.region_code, E.case_id, E.comment)
                .where(
                    ctx.recent(th.comment_lookback_days),
                    E.comment.is_not(None),
                    E.case_id.is_not(None),
                    func.length(E.comment) >= th.comment_min_chars,
                )
                .order_by(E.id.desc())  # the newest: older ones were seen by earlier passes
                .limit(th.batch_limit)
            )
        ).all()
        # (id, case, region, comment key, comment) per unit, oldest first
        by_org: dict[int, list[tuple[int, int, str, str, str]]] = {}
        for eid, org_id, region, case_id, comment in sorted(rows):
            key = comment_key(comment)
            if len(key) >= th.comment_min_chars:
                by_org.setdefault(org_id, []).append(
                    (eid, case_id or 0, region, key, comment or "")
                )
        candidates: list[tuple[int, list[tuple[int, int, str, str, str]]]] = []
        for org_id, items in by_org.items():
            if len(items) < th.comment_min_cases:
                continue
            for idx in similar_groups([it[3] for it in items], th.comment_similarity):
                group = [items[i] for i in idx]
                if len({g[1] for g in group}) >= th.comment_min_cases:
                    candidates.append((org_id, group))
        if not candidates:
            return []
        candidates = await self._not_common(ctx, candidates)
        codes = await _org_codes(ctx.db, [org_id for org_id, _ in candidates])
        found: list[Finding] = []
        for org_id, group in candidates:
            code, name = codes.get(org_id, ("?", "?"))
            shown = mask_text(group[0][4]) or ""
            short = shown if len(shown) <= 24 else shown[:24] + "…"
            cases = len({g[1] for g in group})
            variants = len({g[3] for g in group})
            evidence = {
                "comment": shown,
                "cases": cases,
                "variants": variants,
                "similarity": th.comment_similarity,
                "org_code": code,
                "evaluation_ids": [g[0] for g in group][:200],
                "days": th.comment_lookback_days,
            }
            alike = "相同" if variants == 1 else f"相同或仅个别字词、标点不同（{variants} 种写法）"
            reason = (
                f"{alike}的评价内容“{short}”在 {th.comment_lookback_days} 天内出现在"
                f"{name}（{code}）{cases} 件不同办件的评价中，疑似复制粘贴"
            )
            found.extend(
                Finding(
                    evaluation_id=g[0],
                    org_id=org_id,
                    check=self.name,
                    subject=f"评论 “{short}”",
                    reason=reason,
                    evidence=evidence,
                )
                for g in group
            )
        return found

    async def _not_common(
        self, ctx: BatchContext, candidates: list[tuple[int, list[tuple[int, int, str, str, str]]]]
    ) -> list[tuple[int, list[tuple[int, int, str, str, str]]]]:
        """The candidate groups whose wording is seen (alike) at no more than
        `comment_max_orgs` units within `comment_common_days`, counted over every unit the
        service covers (the province, not one county: a county has too few halls to tell a
        phrase people use from a paste)."""
        th, E = ctx.thresholds, Evaluation
        rows = (
            await ctx.db.execute(
                select(E.org_id, E.comment)
                .where(
                    ctx.recent(th.comment_common_days),
                    E.comment.is_not(None),
                    func.length(E.comment) >= th.comment_min_chars,
                )
                .order_by(E.id.desc())
                .limit(th.batch_limit * 4)
            )
        ).all()
        phrases: dict[str, set[int]] = {}  # comment key -> the units it was written at
        for org_id, comment in rows:
            key = comment_key(comment)
            if len(key) >= th.comment_min_chars:
                phrases.setdefault(key, set()).add(org_id)
        texts = list(phrases)
        kept = []
        for org_id, group in candidates:
            units: set[int] = {org_id}
            if texts:
                mine = list({g[3] for g in group})
                for j in similar_to_any(mine, texts, th.comment_similarity):
                    units |= phrases[texts[j]]
            if len(units) <= th.comment_max_orgs:
                kept.append((org_id, group))
        return kept


class _Links:
    """Union-find over ratings."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


@register
class CoordinatedBad(Check):
    """A burst of bad ratings against one unit from raters linked by phone, device or IP."""

    name = "coordinated_bad"
    label = "关联人员集中差评"

    async def scan(self, ctx: BatchContext) -> list[Finding]:
        th, E = ctx.thresholds, Evaluation
        rows = (
            (
                await ctx.db.execute(
                    select(
                        E.id,
                        E.org_id,
                        E.case_id,
                        E.channel,
                        E.rater_phone_hash,
                        E.rater_cert_hash,
                        E.device_id,
                        E.invitation_id,
                        E.source_ip,
                        E.user_agent,
                        E.client_id,
                        E.comment,
                        E.evaluated_at,
                        E.received_at,
                    )
                    .where(
                        ctx.recent(th.bad_lookback_days),
                        E.level.in_(sorted(ctx.bad_levels)),
                        E.case_id.is_not(None),
                    )
                    .order_by(E.received_at, E.id)
                    .limit(th.batch_limit)
                )
            )
            .mappings()
            .all()
        )
        by_org: dict[int, list[Row]] = {}
        for m in rows:
            r = dict(m)
            r["at"], r["basis"] = rating_time(r, th)
            by_org.setdefault(m["org_id"], []).append(r)
        span = th.bad_span_hours * 3600
        groups = []
        for org_id, ratings in by_org.items():
            if len(ratings) < th.bad_min_ratings:
                continue
            ratings.sort(key=lambda r: (r["at"], r["id"]))
            links = _Links()
            last_seen: dict[tuple[str, str], tuple[float, int]] = {}
            kinds: dict[tuple[int, int], set[str]] = {}
            self._link_by_wording(ratings, links, kinds, th)
            for r in ratings:
                t = _ts(r["at"])
                keys = source_keys(r)
                cert = r.get("rater_cert_hash")
                if cert:
                    keys.append(("cert", cert))
                links.find(r["id"])
                for key in keys:
                    prev = last_seen.get(key)
                    if prev is not None and t - prev[0] <= span:
                        links.union(prev[1], r["id"])
                        kinds.setdefault((prev[1], r["id"]), set()).add(key[0])
                    last_seen[key] = (t, r["id"])
            members: dict[int, list[Row]] = {}
            for r in ratings:
                members.setdefault(links.find(r["id"]), []).append(r)
            for group in members.values():
                cases = {r["case_id"] for r in group}
                raters = {_rater(r) for r in group}
                if len(cases) >= th.bad_min_ratings and len(raters) >= th.bad_min_raters:
                    ids = {r["id"] for r in group}
                    via = sorted({k for (a, b), ks in kinds.items() if a in ids for k in ks})
                    groups.append((org_id, group, len(cases), len(raters), via))
        return await self._flag_groups(ctx, groups)

    @staticmethod
    def _link_by_wording(
        ratings: list[Row], links: _Links, kinds: dict[tuple[int, int], set[str]], th: Thresholds
    ) -> None:
        """Raters who share nothing else: linked when their comments are near-identical
        (`bad_text_similarity`) and given within `bad_text_span_hours` of each other."""
        worded = [
            (r, key)
            for r in ratings
            for key in [comment_key(r.get("comment"))]
            if len(key) >= th.bad_text_min_chars
        ]
        if len(worded) < 2:
            return
        texts = [key for _r, key in worded]
        span = th.bad_text_span_hours * 3600
        for i, j in similar_pairs(texts, th.bad_text_similarity):
            a, b = worded[i][0], worded[j][0]
            if abs(_ts(b["at"]) - _ts(a["at"])) <= span:
                links.union(a["id"], b["id"])
                kinds.setdefault((a["id"], b["id"]), set()).add("text")

    async def _flag_groups(
        self, ctx: BatchContext, groups: list[tuple[int, list[Row], int, int, list[str]]]
    ) -> list[Finding]:
        """One finding per rating of each linked group, naming what linked its raters."""
        if not groups:
            return []
        codes = await _org_codes(ctx.db, [g[0] for g in groups])
        via_labels = {
            "phone": "手机号",
            "device": "设备",
            "ip": "IP 地址",
            "cert": "身份证号",
        }
        found: list[Finding] = []
        for org_id, group, cases, raters, via in groups:
            code, name = codes.get(org_id, ("?", "?"))
            first, last = group[0]["at"], group[-1]["at"]
            hours = max((last - first).total_seconds() / 3600, 0.1)
            shared = "、".join(via_labels[v] for v in via if v != "text")
            how = "，且".join(
                ([f"共用{shared}"] if shared else [])
                + (["评价内容几乎相同"] if "text" in via else [])
            )
            evidence = {
                "org_code": code,
                "ratings": len(group),
                "cases": cases,
                "raters": raters,
                "linked_by": via,
                "first": first.isoformat(),
                "last": last.isoformat(),
                "time_basis": sorted({r["basis"] for r in group}),
                "evaluation_ids": [r["id"] for r in group],
            }
            reason = (
                f"{hours:.1f} 小时内 {len(group)} 条差评集中指向{name}（{code}），"
                f"{raters} 个评价人之间{how}，疑似组织恶意差评"
            )
            found.extend(
                Finding(
                    evaluation_id=r["id"],
                    org_id=org_id,
                    check=self.name,
                    subject=f"单位 {code}",
                    reason=reason,
                    evidence=evidence,
                )
                for r in group
            )
        return found
