"""The newest capabilities of the demo province, lived through their own services on the day
of the load: paired rating pads (评价器) at the windows of the demo hall with the services the
queuing system announced and the ratings pressed on them (one window still serving),
综合点评 general comments left on the public pages `/c/{code}` of a few halls and departments,
a county platform of the demo city reporting its ratings up as a child (上报), and 监督查评
inspection visits by the assessor over the last weeks, against the demo city's own checklist,
some with photos.

These services stamp the real clock (a pad's service starts now, a visit may be at most 30
days old), so this part of the demo is built relative to the real time of the load, not the
`now` of the generated year. A bad comment or visit opens its work order through the closed
loop's own opening, as intake does in the app (the other intake hooks, the malicious-rater
register and the detectors' intake checks, are not part of a load: the detectors run over
everything afterwards as a batch)."""

from __future__ import annotations

import random
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts import service as account_service
from haochaping.accounts.choices import Role
from haochaping.cases import schemas as case_schemas
from haochaping.cases import service as case_service
from haochaping.cases.choices import CaseStatus, CertType, ServiceMode
from haochaping.cases.models import Case
from haochaping.config import Settings
from haochaping.core.auth import Principal
from haochaping.core.timeutil import SHANGHAI, utcnow
from haochaping.db.crypto import DataKeys
from haochaping.demo import codes, generate, vocab
from haochaping.demo.workflow import Cast
from haochaping.evaluations import general, tags
from haochaping.evaluations import service as evaluation_service
from haochaping.evaluations.choices import EXCHANGE_CHANNEL, Channel
from haochaping.exchange import federation, records
from haochaping.exchange.national import Dialect
from haochaping.inspections import schemas as inspection_schemas
from haochaping.inspections import service as inspection_service
from haochaping.orgs.choices import OrgKind
from haochaping.orgs.models import Item, Org, Staff
from haochaping.pads import schemas as pad_schemas
from haochaping.pads import service as pad_service
from haochaping.pads.models import PadDevice
from haochaping.policies.service import PolicyCache
from haochaping.workorders import service as wo_service
from haochaping.workorders.context import LoopContext

Progress = Callable[[str, int, int], None]
PHASE = "评价器、点评、查评、上报"
PAD_WINDOWS = 6  # windows of the demo hall given a pad
VISITS = 14  # inspection visits of the last weeks
VISIT_DAYS = 25  # within the 30 days a visit may be entered late (weekends move back)
COMMENTS = 10
CHILD_RATINGS = 36  # reported up by the county platform over the last weeks
CHILD_CHANNELS = (("pad", 0.45), ("qrcode", 0.7), ("mobile", 0.85), ("pc", 0.93), ("sms", 1.0))
# The demo city's own checklist: the default list and two items of its own.
CITY_ITEMS = (
    "“高效办成一件事”专区标识清晰、引导到位",
    "“办不成事”反映窗口有人值守、问题有台账",
)
# Where a comment or a visit comes from (documentation addresses, RFC 5737).
SOURCE_IP = "192.0.2.10"
VISIT_NOTES: dict[int, list[str | None]] = {
    5: ["整体情况良好", "窗口秩序井然，群众等候时间短", None],
    4: ["个别窗口人员未佩戴工作牌，已当场提醒", "自助服务区一台设备故障，已报修", None],
    3: ["部分检查项目未达标，已要求限期整改"],
    2: ["暗访发现问题较多，已责成大厅负责人整改并反馈"],
    1: ["暗访发现问题较多，已责成大厅负责人整改并反馈"],
}


@dataclass
class Live:
    """What this part of the load made (printed in the summary)."""

    pads: Counter[str] = field(default_factory=Counter)
    services: int = 0
    pad_ratings: int = 0
    serving_window: str = ""
    comments: int = 0
    comment_orgs: list[str] = field(default_factory=list)
    visits: int = 0
    photos: int = 0
    checklist_region: str = ""
    cases: int = 0  # accepted today at the pads' windows
    child: str = ""  # the API client of the county platform reporting up here
    reported: int = 0  # its ratings taken (each with its completed case)
    levels: Counter[int] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)

    def rated(self, channel: Channel, level: int) -> None:
        self.channels[channel.value] += 1
        self.levels[level] += 1


def photo_png(rng: random.Random, width: int = 48, height: int = 32) -> bytes:
    """A small PNG of a few coloured bands (a stand-in for a photo taken on a visit)."""
    bands = [bytes(rng.randrange(60, 230) for _ in range(3)) for _ in range(4)]
    rows = b"".join(b"\x00" + bands[min(3, y * 4 // height)] * width for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def intake_rules(
    db: AsyncSession, *, settings: Settings, ctx: LoopContext
) -> evaluation_service.IntakeRules:
    """The intake rules as the app builds them, with the closed loop's opening of a bad
    rating's work order as the hook (the app's `make_on_stored`, on the load's context)."""
    policies = PolicyCache()

    async def on_stored(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        openings = []
        for row in rows:
            if row.get("eval_count", 1) != 1 or row.get("is_default"):
                continue
            policy, policy_id = await policies.get(session, row["region_code"])
            if row["level"] in policy.bad_levels:
                openings.append((row, policy, policy_id))
        if openings:
            await wo_service.open_for_evaluations(db=session, openings=openings, ctx=ctx)

    sets = await tags.load(db)
    return evaluation_service.IntakeRules(
        tagset_version=tags.NATIONAL_VERSION,
        tags=sets[tags.NATIONAL_VERSION],
        keys=ctx.keys,
        window_days=settings.evaluation_window_days,
        good_levels=frozenset(settings.good_levels),
        on_stored=on_stored,
    )


def _reasons(rng: random.Random, rules: evaluation_service.IntakeRules, level: int) -> list[str]:
    """One reason of the level's own (the national list), or none for some good ratings."""
    codes_ = sorted(t.code for t in rules.tags.values() if t.level == level)
    if not codes_ or (level >= 3 and rng.random() < 0.4):
        return []
    return [rng.choice(codes_)]


def _level(rng: random.Random, shares: tuple[float, ...]) -> int:
    """5 down to 1 by the cumulative shares given for 5, 4, 3, 2."""
    r = rng.random()
    for level, share in zip((5, 4, 3, 2), shares, strict=True):
        if r < share:
            return level
    return 1


def _office_hours(rng: random.Random, day: datetime) -> datetime:
    """A moment between 09:00 and 17:00 in Shanghai on that day, or the Friday before."""
    local = day.astimezone(SHANGHAI).replace(hour=9, minute=0, second=0, microsecond=0)
    local -= timedelta(days=max(0, local.weekday() - 4))
    return local + timedelta(minutes=rng.randrange(0, 8 * 60))


async def stage(
    db: AsyncSession,
    *,
    cast: Cast,
    ctx: LoopContext,
    rng: random.Random,
    settings: Settings,
    client: Principal,
    hall_code: str,
    window_code: str,
    office_code: str,
    avoid_org: int | None,
    progress: Progress | None = None,
) -> Live:
    """Pads, general comments, the child platform's report and inspection visits, through
    their services."""
    live = Live()

    def step(done: int) -> None:
        if progress:
            progress(PHASE, done, 4)

    rules = await intake_rules(db, settings=settings, ctx=ctx)
    orgs = {o.code: o for o in (await db.execute(select(Org))).scalars()}
    office = orgs[office_code]
    # The nearest management office of the demo city (the demo's `office` account); the
    # demo's assessor unless an account of that name existed before the demo elsewhere.
    office_actor = cast.manager(office.id)
    assessor = next(
        (p for p in cast.people if p.role == Role.ASSESSOR and p.covers(office.path)), None
    )
    await _pads(
        db,
        live,
        rng=rng,
        settings=settings,
        rules=rules,
        client=client,
        actor=cast.manager(orgs[hall_code].id),
        hall=orgs[hall_code],
        window_code=window_code,
    )
    step(1)
    city = [
        o
        for o in orgs.values()
        if o.kind in general.RATEABLE_KINDS
        and o.active
        and o.path.startswith(office.path)
        and o.id != avoid_org
        and "政务服务管理办公室" not in o.name
    ]
    city.sort(key=lambda o: (o.code != hall_code, o.kind != OrgKind.HALL, o.code))
    await _comments(db, live, rng=rng, rules=rules, places=city[:4])
    step(2)
    await _child(db, live, rng=rng, rules=rules, office=office, orgs=list(orgs.values()))
    step(3)
    if assessor is None:
        step(4)
        return live
    await _inspections(
        db,
        live,
        rng=rng,
        settings=settings,
        rules=rules,
        office=office_actor,
        assessor=assessor,
        places=city[:12],
    )
    step(4)
    return live


async def _pads(
    db: AsyncSession,
    live: Live,
    *,
    rng: random.Random,
    settings: Settings,
    rules: evaluation_service.IntakeRules,
    client: Principal,
    actor: Principal,
    hall: Org,
    window_code: str,
) -> None:
    """A pad paired at each of the first windows of the demo hall (the demo window's first
    pad replaced: revoked), one more waiting for its code; the queuing system's services of
    the day at each paired window, rated on the pad, the demo window still serving."""
    windows = list(
        (
            await db.execute(
                select(Org)
                .where(
                    Org.kind == OrgKind.WINDOW,
                    Org.active.is_(True),
                    Org.path.startswith(hall.path, autoescape=True),
                )
                .order_by(Org.code)
            )
        ).scalars()
    )
    windows.sort(key=lambda w: w.code != window_code)  # the demo window first
    secret = settings.secret_key
    keys = rules.keys
    paired: list[tuple[Org, PadDevice]] = []
    for n, window in enumerate(windows[:PAD_WINDOWS]):
        if n == 0:
            old = await pad_service.create_pairing(
                db=db, secret=secret, window_code=window.code, actor=actor, source_ip=SOURCE_IP
            )
            await pad_service.pair(db=db, secret=secret, code=old["code"])
            await pad_service.revoke(
                db=db, actor=actor, device_id=old["device_id"], source_ip=SOURCE_IP
            )
            live.pads["revoked"] += 1
        made = await pad_service.create_pairing(
            db=db, secret=secret, window_code=window.code, actor=actor, source_ip=SOURCE_IP
        )
        device, _credential = await pad_service.pair(db=db, secret=secret, code=made["code"])
        live.pads["paired"] += 1
        paired.append((window, device))
    if len(windows) > PAD_WINDOWS:
        # A pad set up in the console whose code was never entered (it expires unused).
        await pad_service.create_pairing(
            db=db,
            secret=secret,
            window_code=windows[PAD_WINDOWS].code,
            actor=actor,
            source_ip=SOURCE_IP,
        )
        live.pads["pending"] += 1
    for n, (window, device) in enumerate(paired):
        serving_here = n == 0
        made_cases = await _cases_today(
            db,
            rng=rng,
            client=client,
            keys=keys,
            window=window,
            count=4 if serving_here else rng.randint(1, 3),
        )
        live.cases += len(made_cases)
        prefix = "ABCDEFGH"[n % 8]
        for k, case_no in enumerate(made_cases):
            service = await pad_service.start_service(
                db=db,
                actor=client,
                window_code=window.code,
                data=pad_schemas.ServingCreate(
                    case_no=case_no, flow_no=f"{prefix}{rng.randrange(1, 300):03d}"
                ),
            )
            live.services += 1
            if serving_here and k == len(made_cases) - 1:
                live.serving_window = window.code
                continue  # the applicant has not pressed yet: the pad shows the faces
            pressed = utcnow()
            level = _level(rng, (0.82, 0.96, 0.99, 1.0))
            await pad_service.rate(
                db=db,
                device=device,
                window=window,
                data=pad_schemas.PadRating(
                    service_id=service["id"],
                    level=level,
                    reasons=_reasons(rng, rules, level),
                    displayed_at=pressed - timedelta(seconds=rng.uniform(3, 25)),
                    evaluated_at=pressed,
                ),
                rules=rules,
                source=evaluation_service.Source(ip=SOURCE_IP, user_agent="haochaping-pad"),
            )
            live.pad_ratings += 1
            live.rated(Channel.PAD, level)
        if made_cases and not serving_here:
            await pad_service.end_service(db=db, actor=client, window_code=window.code)


async def _cases_today(
    db: AsyncSession,
    *,
    rng: random.Random,
    client: Principal,
    keys: DataKeys,
    window: Org,
    count: int,
) -> list[str]:
    """Cases accepted at the window in the last minutes, as its business system reports them
    (`cases.service.upsert_case`), like the window's latest case: its case numbers."""
    like = (
        await db.execute(
            select(Case.mode, Item.code, Org.code, Staff.staff_no)
            .join(Item, Item.id == Case.item_id)
            .join(Org, Org.id == Case.org_id)
            .outerjoin(Staff, Staff.id == Case.staff_id)
            .where(Case.window_id == window.id)
            .order_by(Case.id.desc())
            .limit(1)
        )
    ).first()
    if like is None:
        return []
    mode, item_code, org_code, staff_no = like
    now = utcnow()
    day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
    made = []
    for k in range(count):
        male = rng.random() < 0.5
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(45 * 365))
        accepted = now - timedelta(minutes=(count - k) * rng.uniform(6, 12))
        case_no = f"{window.region_code[:6]}{day}7{window.id % 100_000:05d}{k:02d}"
        await case_service.upsert_case(
            db=db,
            actor=client,
            data=case_schemas.CaseUpsert(
                case_no=case_no,
                item_code=item_code,
                org_code=org_code,
                window_code=window.code,
                staff_no=staff_no,
                mode=ServiceMode(mode),
                applicant=case_schemas.Applicant(
                    name=generate.person_name(rng, male),
                    cert_type=CertType.ID_CARD,
                    cert_no=codes.id_card_no(
                        window.region_code[:6], born, rng.randrange(500) * 2 + int(male)
                    ),
                    phone=codes.mobile(rng),
                ),
                status=CaseStatus.ACCEPTED,
                received_at=accepted - timedelta(minutes=rng.uniform(1, 5)),
                accepted_at=accepted,
            ),
            keys=keys,
        )
        made.append(case_no)
    return made


async def _comments(
    db: AsyncSession,
    live: Live,
    *,
    rng: random.Random,
    rules: evaluation_service.IntakeRules,
    places: list[Org],
) -> None:
    """General comments on the public pages of the demo hall and a few units of its city,
    some leaving a phone number (stored encrypted, shown masked)."""
    for n in range(COMMENTS):
        org = places[0] if n < COMMENTS // 2 or len(places) == 1 else rng.choice(places[1:])
        level = 2 if n == 3 else _level(rng, (0.6, 0.9, 1.0, 1.0))
        comment = rng.choice(
            vocab.GOOD_COMMENTS[level] if level >= 3 else vocab.GENERIC_BAD_COMMENTS
        )
        await general.submit_comment(
            db=db,
            org=org,
            level=level,
            reasons=_reasons(rng, rules, level),
            comment=comment,
            phone=codes.mobile(rng) if rng.random() < 0.6 or level <= 2 else "",
            rules=rules,
            source=evaluation_service.Source(ip=SOURCE_IP, user_agent="Mozilla/5.0 (demo)"),
        )
        live.comments += 1
        live.rated(Channel.REVIEW, level)
        if org.code not in live.comment_orgs:
            live.comment_orgs.append(org.code)


async def _inspections(
    db: AsyncSession,
    live: Live,
    *,
    rng: random.Random,
    settings: Settings,
    rules: evaluation_service.IntakeRules,
    office: Principal,
    assessor: Principal,
    places: list[Org],
) -> None:
    """The demo city's own checklist (set by its office), then the assessor's visits of the
    last weeks to its halls and departments, oldest first, some with a photo."""
    checklist = await inspection_service.set_checklist(
        db=db,
        actor=office,
        data=inspection_schemas.ChecklistUpdate(
            items=[*inspection_service.DEFAULT_CHECKLIST, *CITY_ITEMS]
        ),
        source_ip=SOURCE_IP,
    )
    live.checklist_region = checklist.region_code
    items = len(checklist.items)
    now = utcnow()
    days = sorted(rng.uniform(1, VISIT_DAYS) for _ in range(VISITS))
    upload_dir = Path(settings.upload_dir)
    findings = sorted(vocab.INSPECTION_FINDINGS)
    for n, back in enumerate(reversed(days)):
        org = places[n % len(places)]
        level = 2 if n == VISITS // 2 else _level(rng, (0.5, 0.85, 1.0, 1.0))
        failed = {5: 0, 4: 1, 3: 2, 2: 4, 1: 5}[level]
        missed = set(rng.sample(range(items), failed))
        notes: str | None
        if level <= 2:
            code = rng.choice([c for c in findings if c[0] == str(level)])
            reasons, notes = [code], rng.choice(vocab.INSPECTION_FINDINGS[code])
        else:
            reasons = _reasons(rng, rules, level)
            notes = rng.choice([*VISIT_NOTES[level], *vocab.INSPECTION_REMARKS])
        photos = []
        if n == 0 or (level <= 4 and rng.random() < 0.7):
            photos = [
                inspection_service.Photo(f"现场照片{k + 1}.png", "image/png", photo_png(rng))
                for k in range(rng.randint(1, 2))
            ]
        await inspection_service.record_visit(
            db=db,
            actor=assessor,
            data=inspection_schemas.VisitCreate(
                org_code=org.code,
                visited_at=_office_hours(rng, now - timedelta(days=back)),
                passed=sorted(set(range(items)) - missed),
                level=level,
                reasons=reasons,
                notes=notes,
            ),
            photos=photos,
            rules=rules,
            source=evaluation_service.Source(ip=SOURCE_IP),
            upload_dir=upload_dir,
        )
        live.visits += 1
        live.rated(Channel.INSPECTION, level)
        live.photos += len(photos)


async def _child(
    db: AsyncSession,
    live: Live,
    *,
    rng: random.Random,
    rules: evaluation_service.IntakeRules,
    office: Org,
    orgs: list[Org],
) -> None:
    """A county of the demo city runs a platform of its own and reports up to the province
    (上报, the province is its parent): its API client holding the `exchange` channel, and a
    batch of its ratings of the last weeks taken by the parent's federation intake (which
    learns its centre, windows, items and staff under the client's organisation). Good
    ratings only: a child's bad ones come with the outcomes of its own work orders."""
    homes = sorted(
        (
            o
            for o in orgs
            if o.kind == OrgKind.DEPARTMENT
            and "政务服务管理办公室" in o.name
            and o.path.startswith(office.path)
            and o.id != office.id
        ),
        key=lambda o: o.code,
    )
    if not homes:
        return
    home = homes[0]
    place = home.name.removesuffix("政务服务管理办公室")
    name = f"{place}好差评平台"
    client, _key = await account_service.create_client(
        db=db, name=name, org_code=home.code, channels=[EXCHANGE_CHANNEL]
    )
    child = Principal(
        kind="client",
        id=client.id,
        name=name,
        org_id=home.id,
        org_path=home.path,
        channels=frozenset({EXCHANGE_CHANNEL}),
    )
    centre = (f"{home.code}-ZX01", f"{place}便民服务中心")
    windows = [(f"{centre[0]}-CK{k:02d}", f"{centre[1]}{k}号窗口") for k in range(1, 4)]
    staff = [
        (f"{home.code}-RY{k:02d}", generate.person_name(rng, rng.random() < 0.5))
        for k in range(len(windows))
    ]
    names = sorted(
        (
            await db.execute(
                select(Item.name)
                .join(Org, Org.id == Item.org_id)
                .where(Org.path.startswith(office.path, autoescape=True))
                .order_by(Item.id)
                .limit(200)
            )
        ).scalars()
    ) or ["户籍证明开具"]
    items = [(f"{home.code}-SX{k:02d}", rng.choice(names)) for k in range(1, 7)]
    now = utcnow()
    rows = []
    for ref in range(1, CHILD_RATINGS + 1):
        at = _office_hours(rng, now - timedelta(days=rng.uniform(1, VISIT_DAYS)))
        w = rng.randrange(len(windows))
        item = rng.choice(items)
        r = rng.random()
        channel = next(c for c, share in CHILD_CHANNELS if r < share)
        at_window = channel in federation.OFFLINE
        level = _level(rng, (0.85, 0.97, 1.0, 1.0))
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(45 * 365))
        male = rng.random() < 0.5
        rows.append(
            records.RatingRow(
                id=ref,
                case_no=f"{home.region_code[:6]}{at.astimezone(SHANGHAI):%Y%m%d}6{ref:06d}",
                stage="whole",
                eval_count=1,
                channel=channel,
                level=level,
                reasons=_reasons(rng, rules, level),
                comment=rng.choice(vocab.GOOD_COMMENTS[level]) if rng.random() < 0.2 else None,
                tagset_version=tags.NATIONAL_VERSION,
                region_code=home.region_code,
                rater_type="person",
                rater_name=generate.person_name(rng, male),
                rater_cert_no=codes.id_card_no(
                    home.region_code[:6], born, rng.randrange(500) * 2 + int(male)
                ),
                rater_phone=codes.mobile(rng),
                anonymous=False,
                is_public=True,
                is_default=False,
                evaluated_at=at,
                org_code=centre[0],
                org_name=centre[1],
                item_code=item[0],
                item_name=item[1],
                # At a window only what was given there (an online case has none).
                window_code=windows[w][0] if at_window else None,
                window_name=windows[w][1] if at_window else None,
                staff_no=staff[w][0] if at_window else None,
                staff_name=staff[w][1] if at_window else None,
            )
        )
    rows.sort(key=lambda row: row.evaluated_at)
    dialect = Dialect()
    batch = {
        "formatVersion": records.FORMAT_VERSION,
        "records": [records.encode_rating(row, dialect) for row in rows],
    }
    answers = await federation.take_ratings(db=db, actor=child, body=batch, dialect=dialect)
    by_ref = {row.id: row for row in rows}
    for answer in answers:
        if answer["code"] == "1" and not answer["duplicate"]:
            live.reported += 1
            live.rated(
                Channel(by_ref[answer["sourceId"]].channel), by_ref[answer["sourceId"]].level
            )
    live.child = name
