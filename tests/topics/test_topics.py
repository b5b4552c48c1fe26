"""The text analysis (issue 12, 社情民意): comments segmented once by the job, the most frequent
terms, phrases and reasons, and the emerging topics on planted and on flat data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from haochaping.analytics import metrics
from haochaping.core.errors import Conflict, Invalid
from haochaping.evaluations.standing import Standing, set_standing
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.topics import jobs, queries, significance
from haochaping.topics import service as topic_service
from haochaping.topics.segment import Lexicon
from tests.factories import (
    ADMIN,
    TOPIC_ID_NO,
    TOPIC_PHONE,
    TOPIC_PLANTED,
    WORLD_ADMIN,
    add_rating,
    add_weeks_of_comments,
    assert_error,
    bearer_headers,
)

NOW = datetime.now(UTC).replace(microsecond=0)
LATER = NOW + timedelta(days=1)  # every rating of the test is past the job's grace by then
PHONE, ID_NO, PLANTED = TOPIC_PHONE, TOPIC_ID_NO, TOPIC_PLANTED


@pytest.fixture
def lexicons() -> jobs.Lexicons:
    return jobs.Lexicons()


async def add_item(db, code: str, name: str, org: str = "HALL-A") -> str:
    await org_service.create_item(
        db=db, actor=ADMIN, data=org_schemas.ItemCreate(code=code, name=name, org_code=org)
    )
    return code


async def test_a_planted_matter_comes_first_with_masked_examples(db, world, sessionmaker, lexicons):
    item = await add_item(db, "ITEM-PLANT", "出入境证件办理")
    flat = await add_item(db, "ITEM-FLAT", "社保卡补办")
    await add_weeks_of_comments(db, world, item, [4] * 12, planted=[0] * 9 + [3, 6, 10], now=NOW)
    await add_weeks_of_comments(db, world, flat, [4] * 12, now=NOW)
    await db.commit()
    report = await jobs.refresh(sessionmaker, lexicons=lexicons, now=LATER)
    assert report.comments >= 2 * 12 * 24

    found = await queries.emerging(db, actor=WORLD_ADMIN, region_code="330102", now=NOW)
    assert found.tested > 0
    top = found.items[0]
    assert (top.item_code, top.term) == ("ITEM-PLANT", "预约号")
    assert (top.recent, top.before) == (19, 0)
    assert top.score > 5
    # Week by week (ISO weeks): the planted comments all in the last four, none before.
    assert sum(top.weekly[-4:]) == 19 and sum(top.weekly[:-4]) == 0
    assert all(t.item_code == "ITEM-PLANT" for t in found.items)  # the flat item raises none
    # The week rows of a whole region and the day rows of the units give the same answer.
    ctx = await metrics.resolve(db=db, actor=ADMIN, region_code="330102")
    assert (await queries._source(db, ctx, narrowed=False)).weekly
    by_week = await queries.emerging(db, actor=ADMIN, region_code="330102", now=NOW)
    by_unit = await queries.emerging(db, actor=WORLD_ADMIN, org_code="HALL-A", now=NOW)
    assert not (await queries._source(db, ctx, narrowed=True)).weekly
    assert [
        (t.item_code, t.term, t.recent, t.before, t.weekly)
        for t in by_week.items
        if t.item_code == "ITEM-PLANT"
    ] == [(t.item_code, t.term, t.recent, t.before, t.weekly) for t in by_unit.items]
    assert by_unit.items
    assert len(top.examples) == 3
    text = " ".join(e.text for e in top.examples)
    assert "预约号" in text
    for secret in (PHONE, ID_NO, PHONE[3:7], ID_NO[6:14]):
        assert secret not in text
    # The planted comments hold the numbers, and the examples would show them unmasked.
    assert any(PHONE in p or ID_NO in p for p in PLANTED)


async def test_flat_weeks_raise_no_topic(db, world, sessionmaker, lexicons):
    flat = await add_item(db, "ITEM-FLAT", "社保卡补办")
    # Weekly counts that wobble (3 to 6 complaints) without a trend.
    await add_weeks_of_comments(db, world, flat, [4, 6, 3, 5, 4, 6, 3, 5, 4, 6, 3, 5], now=NOW)
    await db.commit()
    await jobs.refresh(sessionmaker, lexicons=lexicons, now=LATER)
    found = await queries.emerging(db, actor=WORLD_ADMIN, item_code=flat, now=NOW, min_count=3)
    assert found.tested > 0  # terms were tested, and none rose significantly
    assert found.items == []


async def test_top_terms_count_each_comment_once_and_only_valid_ratings(
    db, world, sessionmaker, lexicons
):
    item = await add_item(db, "ITEM-TOP", "不动产登记")
    rows = []
    for n in range(6):
        row = await add_rating(
            db,
            world,
            level=2,
            at=NOW - timedelta(days=2, hours=n),
            item=item,
            comment="排队时间太长，排队时间太长！",  # twice in one comment: counted once
        )
        rows.append(row)
    await add_rating(
        db,
        world,
        level=3,
        at=NOW - timedelta(days=2),
        item=item,
        comment="材料要求重复提交",
        reasons=["314"],
    )
    await db.commit()
    await jobs.refresh(sessionmaker, lexicons=lexicons, now=LATER)
    top = await queries.top_terms(db, actor=WORLD_ADMIN, item_code=item, now=NOW)
    terms = {t.term: (t.count, t.bad, t.basic) for t in top.terms}
    assert terms["排队时间"] == (6, 6, 0)
    assert terms["重复提交"] == (1, 0, 1)
    assert (top.ratings, top.comments) == (7, 7)
    assert {r.code: r.count for r in top.reasons} == {"207": 6, "314": 1}
    assert any(p.term == "材料 要求" or p.term == "要求 重复提交" for p in top.phrases)

    # An upheld appeal takes its rating out of the counts at the next pass.
    await set_standing(
        db=db,
        evaluation_id=rows[0].id,
        standing=Standing.INVALID,
        reason="appeal_upheld",
        actor="t",
    )
    await db.commit()
    again = await jobs.refresh(sessionmaker, lexicons=lexicons, now=LATER)
    assert again.changes == 1
    top = await queries.top_terms(db, actor=WORLD_ADMIN, item_code=item, now=NOW)
    assert {t.term: t.count for t in top.terms}["排队时间"] == 5
    # And a comment is never segmented twice: a pass with nothing new counts nothing.
    assert (await jobs.refresh(sessionmaker, lexicons=lexicons, now=LATER)).comments == 0


async def test_an_added_word_segments_the_next_comments(db, world, sessionmaker, lexicons):
    item = await add_item(db, "ITEM-WORD", "居住证办理")
    word = "浙里办码"
    await add_rating(
        db, world, level=2, at=NOW - timedelta(days=1), item=item, comment=f"{word}一直打不开"
    )
    await db.commit()
    await jobs.refresh(sessionmaker, lexicons=lexicons, now=LATER)
    await topic_service.add_word(db=db, word=word, actor="admin", actor_role="admin")
    await db.commit()
    await add_rating(
        db, world, level=2, at=NOW - timedelta(days=1), item=item, comment=f"{word}一直打不开"
    )
    await db.commit()
    await jobs.refresh(sessionmaker, lexicons=lexicons, now=LATER)
    top = await queries.top_terms(db, actor=WORLD_ADMIN, item_code=item, now=NOW)
    # The first comment stays as it was segmented; the second one has the new word.
    assert {t.term: t.count for t in top.terms}.get(word) == 1
    # A rebuild segments every comment again with today's dictionary.
    await jobs.rebuild(sessionmaker, lexicons=lexicons, now=LATER)
    top = await queries.top_terms(db, actor=WORLD_ADMIN, item_code=item, now=NOW)
    assert {t.term: t.count for t in top.terms}.get(word) == 2
    with pytest.raises(Conflict):
        await topic_service.add_word(db=db, word=word, actor="admin", actor_role="admin")
    for bad in ("a", "abc", "x" * 40):
        with pytest.raises(Invalid):
            await topic_service.add_word(db=db, word=bad, actor="admin", actor_role="admin")


def test_the_binomial_tail_against_exact_values():
    assert significance.binomial_tail(8, 10, 0.5) == pytest.approx(56 / 1024)
    assert significance.binomial_tail(0, 10, 0.3) == 1.0
    assert significance.binomial_tail(3, 3, 0.5) == pytest.approx(1 / 8)
    assert significance.binomial_tail(11, 10, 0.5) == 0.0
    # Past the mean: P(X >= 60 | n=100, p=0.5) = 0.028443966820490...
    assert significance.binomial_tail(60, 100, 0.5) == pytest.approx(0.0284439668, rel=1e-8)


def test_the_prefilter_never_drops_a_pair_the_test_finds_emerging():
    """`may_be_emerging` (Slud's inequality) says False only where the exact tail is at least
    the threshold: checked against the exact binomial tail over a grid of counts, volumes
    and thresholds, where it also drops most pairs (what it is there for)."""
    dropped = kept_significant = 0
    for threshold in (0.01, 1e-4, 5.7e-7):
        z = significance.z_bound(threshold)
        for n_recent, n_before in ((1, 3), (4, 8), (10, 90), (30, 30), (7, 5), (25, 75)):
            for n in range(1, 80):
                for recent in range(n + 1):
                    before = n - recent
                    if significance.may_be_emerging(recent, before, n_recent, n_before, z):
                        continue
                    dropped += 1
                    share = n_recent / (n_recent + n_before)
                    assert significance.binomial_tail(recent, n, share) >= threshold, (
                        recent,
                        before,
                        n_recent,
                        n_before,
                        threshold,
                    )
        kept_significant += significance.may_be_emerging(60, 0, 4, 8, z)
    assert dropped > 10_000 and kept_significant == 3
    # A rate that did not rise is dropped; a share above one half is never judged.
    z = significance.z_bound(1e-6)
    assert not significance.may_be_emerging(4, 8, 4, 8, z)
    assert significance.may_be_emerging(11, 9, 9, 1, z)


def test_one_comment_is_not_a_trend():
    verdict = significance.test(recent=2, before=0, n_recent=10, n_before=1000)
    assert verdict.p_value < 0.001  # unlikely by chance, yet below the minimum count
    assert not significance.emerging(verdict, 2, tested=1)
    assert significance.emerging(significance.test(5, 0, 10, 1000), 5, tested=1)


def test_the_lexicon_keeps_service_terms_whole_and_drops_numbers_and_stopwords():
    found = Lexicon().terms(f"一网通办 系统崩溃了，电话{PHONE}，非常不满意")
    assert {"一网通办", "系统崩溃"} <= found.words
    assert not any(ch.isdigit() for w in found.words for ch in w)
    assert "不满意" not in found.words and "非常" not in found.words


# --- the API ---------------------------------------------------------------------------------


async def test_the_api_answers_topics_and_emerging_and_refuses_bad_input(
    client, db, world, sessionmaker, app
):
    item = await add_item(db, "ITEM-API", "出入境证件办理")
    await add_weeks_of_comments(db, world, item, [4] * 12, planted=[0] * 9 + [3, 6, 10], now=NOW)
    await db.commit()
    await jobs.refresh(sessionmaker, lexicons=app.state.topic_lexicons, now=LATER)
    headers = await bearer_headers(client, world.users["admin"])

    r = await client.get(
        "/api/v1/stats/emerging", params={"region_code": "330102", "weeks": 4}, headers=headers
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert {"item_code", "term", "recent", "before", "score"} <= set(items[0])
    assert (items[0]["item_code"], items[0]["term"]) == ("ITEM-API", "预约号")
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert PHONE not in r.text and ID_NO not in r.text

    since = (NOW - timedelta(days=30)).isoformat()
    r = await client.get(
        "/api/v1/stats/topics", params={"item_code": item, "since": since}, headers=headers
    )
    assert r.status_code == 200, r.text
    terms = {t["term"]: t["count"] for t in r.json()["terms"]}
    assert terms["预约号"] == 19
    # The hall's unit (its window) answers the same through org_code.
    r = await client.get(
        "/api/v1/stats/topics", params={"org_code": "HALL-A", "since": since}, headers=headers
    )
    assert {t["term"]: t["count"] for t in r.json()["terms"]}["预约号"] == 19

    for path, params, status, code in [
        ("/api/v1/stats/topics", {"item_code": "NO-SUCH"}, 404, "item_not_found"),
        ("/api/v1/stats/topics", {"org_code": "NO-SUCH"}, 404, "org_not_found"),
        ("/api/v1/stats/emerging", {"region_code": "999999"}, 404, "region_not_found"),
        ("/api/v1/stats/emerging", {"weeks": 0}, 422, "invalid_period"),
        ("/api/v1/stats/emerging", {"weeks": 13}, 422, "invalid_period"),
        ("/api/v1/stats/emerging", {"baseline_weeks": 27}, 422, "invalid_period"),
        (
            "/api/v1/stats/topics",
            {"since": NOW.isoformat(), "until": (NOW - timedelta(days=1)).isoformat()},
            422,
            "invalid_range",
        ),
    ]:
        assert_error(await client.get(path, params=params, headers=headers), status, code)
    r = await client.get("/api/v1/stats/topics", params={"since": "yesterday"}, headers=headers)
    assert r.status_code == 422
    # A unit sees its own subtree only.
    unit_b = await bearer_headers(client, world.users["unit_b"])
    r = await client.get("/api/v1/stats/topics", params={"org_code": "HALL-A"}, headers=unit_b)
    assert_error(r, 403, "out_of_scope")
    assert (await client.get("/api/v1/stats/emerging")).status_code == 401


async def test_a_halls_manager_reads_only_their_halls_comments(db, world, sessionmaker, lexicons):
    """The scope holds for the terms: a unit at HALL-B sees none of HALL-A's complaints, and
    the office above both sees them (the scope is a subquery on the organisation tree)."""
    from haochaping.core.auth import Principal

    item = await add_item(db, "ITEM-SCOPE", "医保登记")
    await add_weeks_of_comments(db, world, item, [4] * 3, planted=[5, 5, 5], now=NOW)
    await db.commit()
    await jobs.refresh(sessionmaker, lexicons=lexicons, now=LATER)
    hall_b = Principal(
        kind="user", id=0, name="b", org_id=0, org_path="/OFFICE/HALL-B/", role="unit"
    )
    theirs = await queries.top_terms(db, actor=hall_b, item_code=item, now=NOW)
    assert theirs.ratings == 0 and "预约号" not in [t.term for t in theirs.terms]
    office = await queries.top_terms(db, actor=WORLD_ADMIN, item_code=item, now=NOW)
    assert office.ratings > 0 and "预约号" in [t.term for t in office.terms]
