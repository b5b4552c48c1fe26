"""The text analysis job's set-based counting against the per-rating reference, and the
running sums of the default emerging question against the week rows they summarise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select

from haochaping.core.models import JobState
from haochaping.evaluations.standing import Standing, set_standing
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Item
from haochaping.topics import jobs, queries
from haochaping.topics.segment import Lexicon
from tests.factories import ADMIN, add_rating, add_weeks_of_comments

NOW = datetime.now(UTC).replace(microsecond=0)


async def add_item(db, code: str, name: str) -> str:
    await org_service.create_item(
        db=db, actor=ADMIN, data=org_schemas.ItemCreate(code=code, name=name, org_code="HALL-A")
    )
    return code


async def _table(db, table, measures: int = 1) -> set[tuple]:
    """A count table's rows, without those taken back to nought."""
    out = set()
    for row in await db.execute(select(table)):
        values = [jobs.as_date(v) if k in ("day", "week") else v for k, v in row._mapping.items()]
        if any(values[-measures:]):
            out.add(tuple(values))
    return out


async def _expected(db) -> dict[str, set[tuple]]:
    """Every first rating that counts now, added one by one (`Counts.add`, the reference)."""
    from haochaping.evaluations.standing import EvaluationStanding

    es = EvaluationStanding.__table__
    counts = jobs.Counts()
    lexicon = Lexicon()
    rows = await db.execute(
        select(*jobs.RATING_COLUMNS)
        .select_from(jobs.E.outerjoin(es, es.c.evaluation_id == jobs.E.c.id))
        .where(
            jobs.E.c.eval_count == 1,
            jobs.E.c.is_default.is_(False),
            # No standing row, or one a review left valid (a held rating counted after all).
            or_(es.c.evaluation_id.is_(None), es.c.standing == "valid"),
        )
    )
    for row in rows:
        counts.add(lexicon, row)
    out: dict[str, set[tuple]] = {}
    out["term"] = {
        (*key, kind, term, n)
        for key, bags in counts.terms.items()
        for kind, bag in zip(jobs.KINDS, bags, strict=True)
        for term, n in bag.items()
        if n
    }
    out["volume"] = {(*k, *v) for k, v in counts.volume.items() if any(v)}
    out["week_term"] = {
        (*k, term, n) for k, bag in counts.week_terms.items() for term, n in bag.items() if n
    }
    out["week_volume"] = {(*k, n) for k, n in counts.week_volume.items() if n}
    out["region_term"] = {
        (*key, kind, term, n)
        for key, bags in counts.region_terms.items()
        for kind, bag in zip(jobs.KINDS, bags, strict=True)
        for term, n in bag.items()
        if n
    }
    out["region_volume"] = {(*k, *v) for k, v in counts.region_volume.items() if any(v)}
    return out


async def test_the_set_based_fold_counts_as_the_reference_does(db, world, sessionmaker):
    item = await add_item(db, "ITEM-COUNT", "户籍迁移")
    cases = [
        (2, "排队时间太长，窗口人员态度差", ["207", "207", "209"]),  # a code twice: once
        (3, "材料要求重复提交", ["314"]),
        (1, "\u3000 \n", ["110"]),  # blank: no comment
        (2, None, ["209"]),
        (5, "办事很快，服务热情周到", ["517"]),  # praise: in the volumes only
        (4, "", ["413"]),
        (3, "叫号系统卡顿", []),
    ]
    rated = []
    for n in range(40):
        level, comment, reasons = cases[n % len(cases)]
        rated.append(
            await add_rating(
                db,
                world,
                level=level,
                at=NOW - timedelta(days=n % 17, hours=n % 5),
                item=item if n % 3 else None,
                window="W-A1" if n % 2 else None,
                comment=comment,
                reasons=reasons,
            )
        )
    await add_rating(
        db, world, level=2, at=NOW - timedelta(days=1), comment="系统", is_default=True
    )
    # Out before the first pass (its standing as of the pass), and out after it (a difference).
    await set_standing(
        db=db,
        evaluation_id=rated[0].id,
        standing=Standing.INVALID,
        reason="appeal_upheld",
        actor="t",
    )
    await db.commit()
    later = datetime.now(UTC) + timedelta(minutes=10)
    first = await jobs.refresh(sessionmaker, now=later)
    # 39 of the test's own, and any committed by other tests (live servers) before them.
    assert first.ratings >= 39 and first.segmented > 0
    await set_standing(
        db=db,
        evaluation_id=rated[7].id,
        standing=Standing.INVALID,
        reason="appeal_upheld",
        actor="t",
    )
    await db.commit()
    again = await jobs.refresh(sessionmaker, now=datetime.now(UTC) + timedelta(minutes=10))
    assert again.changes == 1

    expected = await _expected(db)
    assert await _table(db, jobs.TERM) == expected["term"]
    assert await _table(db, jobs.VOLUME, 2) == expected["volume"]
    assert await _table(db, jobs.WEEK_TERM) == expected["week_term"]
    assert await _table(db, jobs.WEEK_VOLUME) == expected["week_volume"]
    assert await _table(db, jobs.REGION_TERM) == expected["region_term"]
    assert await _table(db, jobs.REGION_VOLUME, 2) == expected["region_volume"]
    assert any(r[3] == "phrase" for r in expected["region_term"])
    # The reasons of complaints are counted once per rating; praise has no term rows.
    reasons = {r[5]: r[6] for r in expected["term"] if r[4] == "reason" and r[1] != 0}
    assert "207" in reasons and "517" not in reasons
    assert not any(r[3] == "good" for r in expected["term"])


async def _both(db, monkeypatch, **kwargs):
    """The emerging answer from the running sums and from the week rows."""

    def key(found):
        return (
            found.tested,
            [(t.item_code, t.term, t.recent, t.before, t.recent_ratings, t.before_ratings,
              t.p_value, t.score, t.weekly) for t in found.items],
        )  # fmt: skip

    ctx = await queries.metrics.resolve(
        db=db, actor=kwargs["actor"], region_code=kwargs.get("region_code")
    )
    src = await queries._source(db, ctx, narrowed=False)
    last = jobs.local_date(kwargs["now"])
    assert await queries._run_answers(db, src, 4, 8, last)
    fast = key(await queries.emerging(db, **kwargs))
    monkeypatch.setattr(queries, "USE_RUN", False)
    slow = key(await queries.emerging(db, **kwargs))
    monkeypatch.setattr(queries, "USE_RUN", True)
    return fast, slow


async def test_the_running_sums_answer_as_the_week_rows_do(db, world, sessionmaker, monkeypatch):
    plant = await add_item(db, "ITEM-RUN", "出入境证件办理")
    flat = await add_item(db, "ITEM-RUN-FLAT", "社保卡补办")
    await add_weeks_of_comments(db, world, plant, [4] * 12, planted=[0] * 9 + [3, 6, 10], now=NOW)
    await add_weeks_of_comments(db, world, flat, [4, 6, 3, 5] * 3, now=NOW)
    await db.commit()

    async def same_answers(at):
        # The province (its cities' and counties' ratings expanded up to it), a county, and
        # the whole tree ("*").
        tops = []
        for region in ("330000", "330102", None):
            # The administrator sees every organisation of a region: the sums answer only a
            # caller who sees the whole region (browser tests commit orgs to these regions).
            ask = {"actor": ADMIN, "region_code": region, "now": at, "min_count": 3}
            fast, slow = await _both(db, monkeypatch, **ask)
            assert fast == slow
            # This test's planted matter (live servers commit 预约号 comments to these regions
            # too, which can rank above it once two of its ratings are invalidated).
            tops.append(next((t for t in fast[1] if t[:2] == ("ITEM-RUN", "预约号")), None))
        return tops

    # Another test's pass (a live server's, committed) may have moved the sums to another
    # week: this pass starts them afresh, as the first pass of a week does.
    await db.execute(delete(JobState).where(JobState.name == jobs.WM_RUN))
    await db.commit()
    at = datetime.now(UTC) + timedelta(minutes=10)
    await jobs.refresh(sessionmaker, now=at)
    tops = await same_answers(at)
    assert all(t is not None and t[:3] == ("ITEM-RUN", "预约号", 19) for t in tops)

    # A standing change after the pass is a difference in the sums too.
    planted = (
        await db.execute(
            select(jobs.E.c.id)
            .where(
                # This test's planted ratings (live servers commit 预约号 comments too).
                jobs.E.c.item_id == select(Item.id).where(Item.code == plant).scalar_subquery(),
                jobs.E.c.comment.contains("预约号"),
            )
            .order_by(jobs.E.c.id.desc())
            .limit(2)
        )
    ).scalars()
    for rating_id in planted:
        await set_standing(
            db=db,
            evaluation_id=rating_id,
            standing=Standing.INVALID,
            reason="appeal_upheld",
            actor="t",
        )
    await db.commit()
    at = datetime.now(UTC) + timedelta(minutes=10)
    assert (await jobs.refresh(sessionmaker, now=at)).changes == 2
    tops = await same_answers(at)
    assert all(t is not None and t[2] == 17 for t in tops)

    # A new week: the next pass moves the sums on (the recent weeks are others now).
    week_on = at + timedelta(days=7)
    await jobs.refresh(sessionmaker, now=week_on)
    await same_answers(week_on)


async def test_a_regions_top_terms_from_the_region_days_are_the_day_rows_answer(
    db, world, sessionmaker, monkeypatch
):
    item = await add_item(db, "ITEM-REGION-DAY", "出入境证件办理")
    await add_weeks_of_comments(db, world, item, [4, 6, 3, 5], planted=[0, 2, 4, 6], now=NOW)
    await add_rating(
        db,
        world,
        level=2,
        at=NOW - timedelta(days=3),
        window="W-A1",
        comment="窗口人员态度差",
        reasons=["207", "209"],
    )
    await db.commit()
    await jobs.refresh(sessionmaker, now=datetime.now(UTC) + timedelta(minutes=10))

    def key(top):
        return (
            top.first,
            top.last,
            top.ratings,
            top.comments,
            [(t.term, t.count, t.bad, t.basic) for t in top.terms],
            [(t.term, t.count, t.bad, t.basic) for t in top.phrases],
            [(r.code, r.count, r.bad, r.basic) for r in top.reasons],
        )

    since = NOW - timedelta(days=25)
    for region in ("330000", "330102", None):
        ctx = await queries.metrics.resolve(db=db, actor=ADMIN, region_code=region)
        assert (await queries._source(db, ctx, narrowed=False)).weekly
        ask = {"actor": ADMIN, "region_code": region, "since": since, "now": NOW, "limit": 100}
        fast = key(await queries.top_terms(db, **ask))
        monkeypatch.setattr(queries, "USE_REGION_DAYS", False)
        slow = key(await queries.top_terms(db, **ask))
        monkeypatch.setattr(queries, "USE_REGION_DAYS", True)
        assert fast == slow
        terms = {t[0]: t[1] for t in fast[4]}
        assert terms.get("预约号", 0) >= 12 and fast[2] >= 19
        assert any(r[0] == "207" for r in fast[6])
