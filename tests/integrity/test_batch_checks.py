"""Batch checks: each on ratings built to trip it and on ratings built not to; the pass is
idempotent and a broken check does not stop the others."""

from __future__ import annotations

import random
from datetime import timedelta

from haochaping.db.crypto import DataKeys
from haochaping.evaluations.standing import Standing, standing_of
from haochaping.integrity import detectors, jobs, service
from tests import factories
from tests.integrity.conftest import T0, flag_count, flags_of

NOW = T0 + timedelta(days=1)


async def run(db, settings, *names, now=NOW):
    """One batch pass of the named checks at `now`."""
    checks = [detectors.REGISTRY[n] for n in names]
    return await jobs.run_batch(db, keys=DataKeys.from_settings(settings), now=now, checks=checks)


def ids_of(rows):
    return [r["id"] for r in rows]


# --- instant_pad -----------------------------------------------------------------------------


async def test_pad_pressed_seconds_after_completion_is_flagged(db, build, settings):
    instant = [build.spec(at=T0 + timedelta(minutes=9 * k), delay=1 + k % 2) for k in range(12)]
    honest = [build.spec(at=T0 + timedelta(minutes=9 * k + 3), delay=25 + 7 * k) for k in range(4)]
    rows = await build.store(instant + honest)
    report = await run(db, settings, "instant_pad")
    flags = await flags_of(db, ids_of(rows), "instant_pad")
    assert set(flags) == set(ids_of(rows[:12])) and report.flagged["instant_pad"] == 12
    ev = flags[rows[0]["id"]].evidence
    assert ev["ratings"] == 16 and ev["instant"] == 12 and ev["share"] == 0.75
    assert ev["window_code"] == build.world.code("W-A1") and ev["seconds"] == 1.0
    assert "办结后 3 秒内" in flags[rows[0]["id"]].reason
    assert await standing_of(db, rows[0]["id"]) == Standing.HELD


async def test_quick_citizens_and_small_pads_pass(db, build, settings):
    # At W-A2: 2 of 20 within seconds (citizens who were ready); at W-B1: 5 of 5, too few.
    busy = [
        build.spec(at=T0 + timedelta(minutes=5 * k), window="w_a2", delay=2 if k < 2 else 30 + k)
        for k in range(20)
    ]
    small = [build.spec(at=T0 + timedelta(minutes=5 * k), window="w_b1", delay=1) for k in range(5)]
    # Pressed instantly, but through citizens' own phones: not the window's pad.
    phones = [
        build.spec(at=T0 + timedelta(minutes=k), channel="mobile", delay=1) for k in range(12)
    ]
    rows = await build.store(busy + small + phones)
    await run(db, settings, "instant_pad")
    assert await flag_count(db, ids_of(rows)) == 0


# --- perfect_unit ----------------------------------------------------------------------------


def honest_levels(n, p5, rng):
    """Levels of n honest ratings: a share p5 of 非常满意, the rest mostly 满意."""
    return [5 if rng.random() < p5 else rng.choice([4, 4, 4, 3, 2]) for _ in range(n)]


async def peers(build, rng):
    return [
        build.spec(at=T0 - timedelta(hours=k % 500), window=w, level=lv, staff_id=None)
        for w in ("w_a2", "w_b1")
        for k, lv in enumerate(honest_levels(150, 0.8, rng))
    ]


async def test_window_perfect_against_its_peers_is_flagged(db, build, settings):
    rng = random.Random(7)
    perfect = [build.spec(at=T0 - timedelta(hours=5 * k), level=5) for k in range(90)]
    rows = await build.store(await peers(build, rng) + perfect)
    await run(db, settings, "perfect_unit")
    flags = await flags_of(db, ids_of(rows), "perfect_unit")
    assert set(flags) == set(ids_of(rows[-90:]))
    ev = flags[rows[-1]["id"]].evidence
    assert ev["unit"] in ("window", "staff") and ev["ratings"] == 90 and ev["top"] == 90
    assert ev["peer_share"] < 0.9 and ev["p_value"] < 1e-6
    assert "非常满意" in flags[rows[-1]["id"]].reason


async def test_excellent_but_plausible_and_small_windows_pass(db, build, settings):
    rng = random.Random(11)
    excellent = [
        build.spec(at=T0 - timedelta(hours=5 * k), level=lv)
        for k, lv in enumerate([5] * 83 + [4] * 6 + [3])
    ]  # 92 %: great, not perfect
    rows = await build.store(await peers(build, rng) + excellent)
    # A small window, perfect for a few days: too few ratings to judge.
    small = await build.store(
        [
            build.spec(at=T0 - timedelta(hours=k), window="w_a1", level=5, staff_id=None)
            for k in range(20)
        ]
    )
    await run(db, settings, "perfect_unit")
    assert await flag_count(db, ids_of(rows)) == 0
    # The 20 perfect ones join W-A1's 90: 103 of 110 is 94 %, still plausible.
    assert await flag_count(db, ids_of(small)) == 0


# --- duplicate_comment -----------------------------------------------------------------------


async def test_same_long_comment_on_three_cases_of_a_unit_is_flagged(db, build, settings, iworld):
    text = "窗口工作人员业务熟练，热情周到，一次就办好了"
    rows = await build.store(
        [
            build.spec(at=T0 + timedelta(hours=k), window=w, comment=text)
            for k, w in enumerate(["w_a1", "w_a2", "w_a1"])
        ]
    )
    await run(db, settings, "duplicate_comment")
    flags = await flags_of(db, ids_of(rows), "duplicate_comment")
    assert set(flags) == set(ids_of(rows))
    ev = flags[rows[0]["id"]].evidence
    assert ev["cases"] == 3 and ev["org_code"] == iworld.code("HALL-A") and ev["comment"] == text


async def test_short_stock_phrases_pairs_and_spread_phrases_pass(db, build, settings):
    quick = "工作人员态度很好，办事效率很高"  # a quick phrase of the rating page
    rows = await build.store(
        [build.spec(at=T0 + timedelta(minutes=k), comment="非常满意") for k in range(10)]
        + [
            build.spec(at=T0 + timedelta(minutes=k), comment="  办事效率很高，一次就办好了  ")
            for k in range(2)
        ]
        # Three people's own words (one changed word would be a near-duplicate: flagged).
        + [
            build.spec(at=T0 + timedelta(minutes=k), comment=text)
            for k, text in enumerate(
                ["第一次来办，材料一次讲清楚了", "排队不到十分钟就轮到我", "帮老人填表很耐心，谢谢"]
            )
        ]
        # Used across units, two at each: common, not pasted.
        + [
            build.spec(at=T0 + timedelta(hours=k), window=w, comment=quick)
            for k, w in enumerate(["w_a1", "w_b1", "w_a2", "w_b1"])
        ]
    )
    await run(db, settings, "duplicate_comment")
    assert await flag_count(db, ids_of(rows)) == 0


async def test_a_phrase_common_across_units_is_not_a_paste(db, build, settings):
    quick = "材料一次性告知，没有跑冤枉路"
    rows = await build.store(
        [build.spec(at=T0 + timedelta(hours=k), comment=quick) for k in range(3)]
    )  # three at HALL-A this week...
    await build.store([build.spec(at=T0 - timedelta(days=9), window="w_b1", comment=quick)])
    # ...and at HALL-B last week: with at most one other unit allowed, a common phrase.
    th = detectors.Thresholds(comment_max_orgs=1)
    await jobs.run_batch(
        db,
        keys=DataKeys.from_settings(settings),
        now=NOW,
        thresholds=th,
        checks=[detectors.REGISTRY["duplicate_comment"]],
    )
    assert await flag_count(db, ids_of(rows)) == 0
    await run(db, settings, "duplicate_comment")  # the default allows three units
    assert await flag_count(db, ids_of(rows)) == 3


async def test_comment_with_a_phone_number_is_masked_in_the_evidence(db, build, settings):
    text = "有问题请联系13812345678，服务很好很好"
    rows = await build.store(
        [build.spec(at=T0 + timedelta(hours=k), comment=text) for k in range(3)]
    )
    await run(db, settings, "duplicate_comment")
    flag = (await flags_of(db, ids_of(rows)))[rows[0]["id"]]
    assert "13812345678" not in flag.evidence["comment"] + flag.reason + flag.subject
    assert "138****5678" in flag.evidence["comment"]


# --- coordinated_bad -------------------------------------------------------------------------


async def test_bad_ratings_from_linked_raters_against_one_unit_are_flagged(db, build, settings):
    # Four people, two phones between them, one unit, one afternoon.
    specs = [
        build.spec(
            at=T0 + timedelta(minutes=35 * k),
            level=1,
            channel="mobile",
            rater_phone=["13600000001", "13600000002"][k // 2],
            device_id="DEV-GRUDGE" if k in (1, 2) else None,
            rater_cert_no=f"33010219700101{k:04d}",
        )
        for k in range(4)
    ]
    rows = await build.store(specs)
    await run(db, settings, "coordinated_bad")
    flags = await flags_of(db, ids_of(rows), "coordinated_bad")
    assert set(flags) == set(ids_of(rows))
    ev = flags[rows[0]["id"]].evidence
    assert ev["ratings"] == 4 and ev["raters"] == 4
    assert set(ev["linked_by"]) == {"phone", "device"}
    assert "疑似组织恶意差评" in flags[rows[0]["id"]].reason


async def test_an_outage_rated_badly_by_strangers_passes(db, build, settings):
    # Eight unrelated citizens, bad ratings within two hours: a real failure, not a campaign.
    strangers = [build.spec(at=T0 + timedelta(minutes=15 * k), level=2) for k in range(8)]
    # One person, three bad ratings of three of their own cases: no related raters.
    one = [
        build.spec(
            at=T0 + timedelta(minutes=20 * k),
            level=1,
            channel="mobile",
            rater_phone="13600000009",
            rater_cert_no="330102197001019999",
        )
        for k in range(3)
    ]
    rows = await build.store(strangers + one)
    await run(db, settings, "coordinated_bad")
    assert await flag_count(db, ids_of(rows)) == 0


# --- backstops of the intake checks ------------------------------------------------------------


async def test_burst_split_across_processes_is_found_by_the_batch_pass(db, build, settings):
    rows = await build.store(
        [
            build.spec(
                at=T0 + timedelta(minutes=30 * k), channel="mobile", rater_phone="13500000001"
            )
            for k in range(5)
        ]
    )
    # No intake hook saw them (another process, or a restart); the pass does, once.
    await run(db, settings, "source_burst")
    await run(db, settings, "source_burst", now=NOW + timedelta(minutes=10))
    flags = await flags_of(db, ids_of(rows), "source_burst")
    assert set(flags) == set(ids_of(rows)) and await flag_count(db, ids_of(rows)) == 5
    assert all(f.stage == "batch" for f in flags.values())


async def test_self_rating_backstop_reads_each_rating_once(db, build, settings, iworld):
    await service.register_staff_identity(
        db=db,
        actor=factories.ADMIN,
        keys=DataKeys.from_settings(settings),
        staff_no=iworld.code("S-B1"),
        phone="13912349999",
    )
    rows = await build.store(
        [
            build.spec(at=T0, window="w_b1", rater_phone="13912349999"),
            build.spec(at=T0, window="w_b1"),
        ]
    )
    first = await run(db, settings, "staff_self_rating")
    again = await run(db, settings, "staff_self_rating")
    assert first.flagged["staff_self_rating"] >= 1 and again.flagged["staff_self_rating"] == 0
    assert set(await flags_of(db, ids_of(rows))) == {rows[0]["id"]}


async def test_fast_link_backstop(db, build, settings):
    def rating(window, k, after):
        return build.spec(
            at=T0 + timedelta(hours=k),
            window=window,
            channel="qrcode",
            issued=T0 + timedelta(hours=k, seconds=-after),
        )

    rows = await build.store(
        [rating("w_a2", 0, 2), rating("w_a2", 5, 5), rating("w_a2", 9, 900), rating("w_b1", 1, 3)]
    )
    await run(db, settings, "invitation_misuse")
    assert set(await flags_of(db, ids_of(rows))) == {rows[0]["id"], rows[1]["id"]}


# --- the pass as a whole -----------------------------------------------------------------------


async def test_rerunning_the_pass_adds_no_flags(db, build, settings):
    rows = await build.store(
        [build.spec(at=T0 + timedelta(minutes=9 * k), delay=1) for k in range(12)]
    )
    first = await jobs.run_batch(db, keys=DataKeys.from_settings(settings), now=NOW)
    second = await jobs.run_batch(db, keys=DataKeys.from_settings(settings), now=NOW)
    assert first.flagged["instant_pad"] >= 12 and second.flagged["instant_pad"] == 0
    assert await flag_count(db, ids_of(rows)) == 12 and not first.failed


class Broken(detectors.Check):
    name = "broken_for_test"
    label = "测试用"

    async def scan(self, ctx):
        raise RuntimeError("boom")


async def test_a_broken_check_is_reported_and_the_others_still_run(db, build, settings):
    rows = await build.store(
        [build.spec(at=T0 + timedelta(minutes=9 * k), delay=1) for k in range(12)]
    )
    checks = [Broken(), detectors.REGISTRY["instant_pad"]]
    report = await jobs.run_batch(db, keys=DataKeys.from_settings(settings), now=NOW, checks=checks)
    assert report.failed == ["broken_for_test"] and report.flagged["instant_pad"] == 12
    assert "broken_for_test" in str(report)
    assert await flag_count(db, ids_of(rows)) == 12


async def test_the_job_runs_once_per_interval(app, db):
    # Later than any pass another suite may have committed.
    at = factories.now() + timedelta(days=400)
    first = await jobs.run_due(app.state, now=at)
    second = await jobs.run_due(app.state, now=at + timedelta(seconds=5))
    assert first.ran and not first.failed and set(first.flagged) >= {"pad_burst", "agent_volume"}
    assert not second.ran and "0 分钟前" in str(second) and "--force" in str(second)
    forced = await jobs.run_due(app.state, now=at + timedelta(seconds=10), force=True)
    assert forced.ran and "已运行" in str(forced)
    later = await jobs.run_due(app.state, now=at + timedelta(seconds=10 + jobs.INTERVAL_SECONDS))
    assert later.ran
