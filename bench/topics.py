"""The text analysis at scale (issue 12): segment and count 1,000,000 comments, then answer the
emerging-topics question over them.

    .venv/bin/python bench/topics.py [--comments 1000000] [--db pg|sqlite] [--rounds 20]

Builds a fresh database (PostgreSQL `hcp_topics_*` on postgres@127.0.0.1:5432, or a SQLite
file), migrated to the newest schema, with one province (40 halls, 400 items) and N first
ratings, each with a comment, spread over the last 12 weeks (loaded set-based: COPY on
PostgreSQL, executemany on SQLite; not timed). 65 % are praise, 15 % 基本满意 and 20 % bad, their
comments drawn from clauses as people write them (a subject and a complaint, sometimes with a
number or a count in it), so that many clauses repeat and many do not. One item's complaints
about booking numbers (预约号) grow over the last three weeks.

Then it times, on the product's own code:

- `topics.jobs.refresh`: every comment segmented (jieba, the shipped dictionary) and its terms,
  phrases and reasons added to the day counts: the goal is under 60 s;
- `topics.queries.emerging` for the province, `--rounds` times (p50, p95): under 200 ms;
- `topics.queries.top_terms` for the province (from the region-day rows, and from the day rows
  of every unit and item in the same run) and for one item over 30 days.

The database is dropped at the end (`--keep` keeps it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta

import harness
from sqlalchemy import insert, select

from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.evaluations.models import Evaluation
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Item, Org
from haochaping.topics import jobs, queries

PROVINCE = "990000"
HALLS, ITEMS, WEEKS = 40, 400, 12
PRAISE = [
    "办事很快",
    "服务热情周到",
    "工作人员耐心",
    "一次就办好了",
    "流程清楚",
    "环境干净整洁",
    "指引很到位",
    "不用排队",
    "网上就办完了",
    "态度很好",
    "解答专业",
    "效率高",
    "导办员很热心",
    "材料一次性告知",
    "窗口人员很专业",
    "预约很方便",
    "自助机好用",
    "比以前快多了",
    "给你们点赞",
    "全程帮办",
]
SUBJECTS = [
    "排队时间",
    "窗口人员",
    "网上预约",
    "申请材料",
    "系统",
    "叫号",
    "停车",
    "自助机",
    "电话",
    "办事指南",
    "工作人员",
    "审批时限",
    "证明材料",
    "大厅指引",
    "打印机",
    "人脸识别",
    "小程序",
    "社保卡",
    "公积金提取",
    "不动产登记",
    "营业执照",
    "办结通知",
    "导办员",
    "窗口",
]
COMPLAINTS = [
    "太长",
    "态度差",
    "不清楚",
    "要重复提交",
    "一直卡顿",
    "打不通",
    "没人管",
    "要跑好几趟",
    "说法不一致",
    "不耐烦",
    "太少",
    "经常出错",
    "办不了",
    "没有告知",
    "超时了",
    "推来推去",
    "不给解释",
    "太复杂",
    "很难找",
    "总是坏",
]
PLANTED = [
    "预约号总是抢不到",
    "网上的预约号一放出就没了",
    "预约号太少约不上",
    "天天蹲预约号",
    "预约号被黄牛抢光",
]
REASONS = {5: ["517"], 4: ["413"], 3: ["314", "309"], 2: ["207", "209", "213"], 1: ["108", "110"]}


def complaint(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        clause = rng.choice(SUBJECTS) + rng.choice(COMPLAINTS)
        roll = rng.random()
        if roll < 0.15:  # counts and numbers make clauses people do not repeat word for word
            clause = f"等了{rng.randint(20, 240)}分钟，{clause}"
        elif roll < 0.25:
            clause = f"{rng.randint(1, 40)}号窗口{clause}"
        parts.append(clause)
    return "，".join(parts)


def ratings(n: int, halls: list[int], items: list[int], now: datetime, seed: int = 12):
    """N rows of the evaluation table, oldest first (ids in receipt order)."""
    rng = random.Random(seed)
    span = WEEKS * 7 * 86400
    planted_item = items[7]
    times = sorted(rng.random() for _ in range(n))
    for k, frac in enumerate(times):
        at = now - timedelta(seconds=span * (1 - frac)) - timedelta(hours=1)
        roll = rng.random()
        level = (5 if roll < 0.4 else 4) if roll < 0.65 else 3 if roll < 0.8 else rng.choice((1, 2))
        item = items[int(len(items) * rng.random() ** 2)]
        if level >= 4:
            text = "，".join(rng.sample(PRAISE, rng.choice((1, 1, 2))))
        else:
            text = complaint(rng)
        # The planted matter: from three weeks ago, ever more complaints about booking numbers.
        days_ago = (now - at).days
        if days_ago < 21 and rng.random() < 0.004 * (21 - days_ago) / 21:
            item, level, text = planted_item, 1, rng.choice(PLANTED)
        yield {
            "channel": "pad",
            "level": level,
            "reasons": REASONS[level][: rng.choice((1, 2))],
            "comment": text,
            "tagset_version": "national-2020",
            "org_id": halls[k % len(halls)],
            "item_id": item,
            "region_code": PROVINCE,
            "evaluated_at": at,
            "received_at": at,
            "eval_count": 1,
            "stage": "whole",
            "rater_type": "person",
            "anonymous": False,
            "is_public": True,
            "is_default": False,
            "rater_cert_hash": None,
            "rater_phone_hash": None,
        }


async def build(url: str, n: int, now: datetime) -> tuple[list[int], list[int]]:
    engine = make_engine(harness.settings_for(url))
    try:
        async with make_sessionmaker(engine)() as db:
            await org_service.create_region(
                db=db,
                actor=harness.ADMIN,
                data=org_schemas.RegionCreate(code=PROVINCE, name="星湖省"),
            )
            await org_service.create_org(
                db=db,
                actor=harness.ADMIN,
                data=org_schemas.OrgCreate(
                    code="T-OFFICE", name="省政务服务办", kind="department", region_code=PROVINCE
                ),
            )
            for h in range(HALLS):
                await org_service.create_org(
                    db=db,
                    actor=harness.ADMIN,
                    data=org_schemas.OrgCreate(
                        code=f"T-HALL{h:03d}",
                        name=f"第{h + 1}政务服务中心",
                        kind="hall",
                        parent_code="T-OFFICE",
                        region_code=PROVINCE,
                    ),
                )
            halls = list(
                (
                    await db.execute(select(Org.id).where(Org.kind == "hall").order_by(Org.id))
                ).scalars()
            )
            await db.execute(
                insert(Item),
                [
                    {
                        "code": f"T-ITEM{i:04d}",
                        "name": f"服务事项{i + 1}",
                        "org_id": halls[i % HALLS],
                    }
                    for i in range(ITEMS)
                ],
            )
            items = list((await db.execute(select(Item.id).order_by(Item.id))).scalars())
            await db.commit()
        rows = ratings(n, halls, items, now)
        if url.startswith("postgresql"):
            cols = None
            async with engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                batch: list[tuple] = []
                for row in rows:
                    if cols is None:
                        cols = list(row)
                    row["reasons"] = json.dumps(row["reasons"])
                    batch.append(tuple(row.values()))
                    if len(batch) >= 100_000:
                        await raw.copy_records_to_table("evaluation", records=batch, columns=cols)
                        batch = []
                if batch:
                    await raw.copy_records_to_table("evaluation", records=batch, columns=cols)
                await conn.exec_driver_sql("ANALYZE")
                await conn.commit()
        else:
            async with engine.begin() as conn:
                batch2: list[dict] = []
                for row in rows:
                    batch2.append(row)
                    if len(batch2) >= 50_000:
                        await conn.execute(insert(Evaluation.__table__), batch2)
                        batch2 = []
                if batch2:
                    await conn.execute(insert(Evaluation.__table__), batch2)
        return halls, items
    finally:
        await engine.dispose()


def ms(values: list[float]) -> str:
    s = sorted(values)
    p50, p95 = statistics.median(s) * 1000, harness.percentile(s, 95) * 1000
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, min {s[0] * 1000:.0f} ms"


async def measure(
    url: str, rounds: int, now: datetime, items: list[int], no_vacuum: bool = False
) -> None:
    engine = make_engine(harness.settings_for(url))
    maker = make_sessionmaker(engine)
    try:
        lexicons = jobs.Lexicons()
        async with maker() as db:
            t = time.perf_counter()
            await lexicons.current(db)
            print(
                f"lexicon built (jieba dictionary + service terms): {time.perf_counter() - t:.1f} s"
            )
        dbname = url.rsplit("/", 1)[1]
        pg_before = {p: harness.cpu_seconds([p]) for p in harness.postgres_pids(dbname)}
        cpu = time.process_time()
        t = time.perf_counter()
        # The ratings end an hour before `now`: past the job's grace, and in the week the
        # emerging question below is asked in (the running sums are as of the job's week).
        report = await jobs.refresh(maker, lexicons=lexicons, now=now)
        took = time.perf_counter() - t
        cpu = time.process_time() - cpu
        pg_cpu = sum(
            harness.cpu_seconds([p]) - pg_before.get(p, 0.0)
            for p in harness.postgres_pids(dbname, auxiliary=False)
        )
        async with maker() as db:
            lex = await lexicons.current(db)
        print(f"refresh: {report}")
        print(
            f"segment and count: {took:.1f} s ({report.comments / took:,.0f} comments/s), "
            f"CPU: this process {cpu:.1f} s, its PostgreSQL backends {pg_cpu:.1f} s; "
            f"clauses segmented by jieba {lex.misses:,}, from the cache {lex.hits:,}; "
            f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
        )
        if url.startswith("postgresql"):
            # What autovacuum does after such a pass (it is off on the bench machine's
            # server): the catch-up updated each running sum once per chunk, and the dead
            # versions would otherwise be read by every question.
            verb = "ANALYZE" if no_vacuum else "VACUUM ANALYZE"
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                for table in (
                    "topic_term_day",
                    "topic_volume_day",
                    "topic_term_week",
                    "topic_volume_week",
                    "topic_term_run",
                    "topic_volume_run",
                    "topic_term_region_day",
                    "topic_volume_region_day",
                ):
                    await conn.exec_driver_sql(f"{verb} {table}")
            print(f"{verb} of the count tables")
        async with maker() as db:
            rows = (await db.execute(select(jobs.TERM.c.n).limit(1))).all()
            assert rows
            answers = {}
            # The running sums (the default question) and, in the same run, the week rows
            # they summarise (the way every other question is answered).
            for label, use_run in (("running sums", True), ("week rows", False)):
                queries.USE_RUN = use_run
                times = []
                found = None
                for _ in range(rounds):
                    t = time.perf_counter()
                    found = await queries.emerging(
                        db, actor=harness.ADMIN, region_code=PROVINCE, now=now
                    )
                    times.append(time.perf_counter() - t)
                assert found is not None
                answers[label] = [(x.item_code, x.term, x.recent, x.before) for x in found.items]
                print(
                    f"emerging from the {label} (province, 4 weeks against 8, "
                    f"{found.tested:,} pairs tested): {ms(times)}; "
                    f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
                )
            queries.USE_RUN = True
            print(f"same answers both ways: {answers['running sums'] == answers['week rows']}")
            for topic in found.items[:5]:
                print(
                    f"  {topic.item_code} {topic.term}: {topic.recent} vs {topic.before} "
                    f"(ratings {topic.recent_ratings} vs {topic.before_ratings}), "
                    f"score {topic.score}"
                )
            since = now - timedelta(days=30)
            tops = {}
            # The province from the region-day rows and, in the same run, from the day rows
            # of every unit and item (the way a part of a region is answered); one item.
            for label, kwargs, region_days in (
                ("province, region-day rows", {"region_code": PROVINCE}, True),
                ("province, day rows", {"region_code": PROVINCE}, False),
                ("one item", {"item_code": "T-ITEM0000"}, True),
            ):
                queries.USE_REGION_DAYS = region_days
                times = []
                for _ in range(rounds):
                    t = time.perf_counter()
                    top = await queries.top_terms(
                        db, actor=harness.ADMIN, since=since, now=now, **kwargs
                    )
                    times.append(time.perf_counter() - t)
                tops[label] = (
                    top.ratings,
                    top.comments,
                    [(x.term, x.count, x.bad) for x in top.terms],
                    [(x.term, x.count, x.bad) for x in top.phrases],
                    [(x.code, x.count, x.bad) for x in top.reasons],
                )
                print(
                    f"top terms ({label}, 30 days): {ms(times)}; "
                    f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}"
                )
            queries.USE_REGION_DAYS = True
            same = tops["province, region-day rows"] == tops["province, day rows"]
            print(f"same province top terms both ways: {same}")
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("pg", "sqlite"), default="pg")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--reuse",
        metavar="URL",
        help="measure on a database kept by --keep (the job has nothing new to count)",
    )
    parser.add_argument("--now", help="with --reuse: the moment the kept run used (ISO)")
    parser.add_argument(
        "--no-vacuum", action="store_true", help="ANALYZE the count tables only, no VACUUM"
    )
    args = parser.parse_args()
    now = datetime.now(UTC)
    if args.reuse:
        now = datetime.fromisoformat(args.now) if args.now else now
        asyncio.run(measure(args.reuse, args.rounds, now, [], args.no_vacuum))
        return
    name = folder = None
    if args.db == "pg":
        name, url = asyncio.run(harness.create_pg_database("hcp_bench_topics"))
    else:
        folder, url = harness.sqlite_url()
    try:
        harness.migrate(url)  # Alembic runs its own event loop
        t = time.perf_counter()
        _, items = asyncio.run(build(url, args.comments, now))
        print(
            f"{args.db}: {args.comments:,} rated comments loaded in {time.perf_counter() - t:.0f} s"
        )
        asyncio.run(measure(url, args.rounds, now, items, args.no_vacuum))
    finally:
        if args.keep:
            print(f"kept: {url} (now {now.isoformat()})")
        else:
            if name:
                asyncio.run(harness.drop_pg_database(name))
            if folder:
                shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
