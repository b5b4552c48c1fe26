"""The SQL answers equal a plain recount in Python over random ratings (seeded)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from haochaping.analytics import metrics
from haochaping.evaluations.standing import Standing, set_standing
from tests.factories import ADMIN, add_rating, bearer_headers

POINTS = {5: 10, 4: 8, 3: 6, 2: 3, 1: 0}
WINDOWS = {"W-A1": "HALL-A", "W-A2": "HALL-A", "W-B1": "HALL-B"}
START = datetime(2026, 1, 1, tzinfo=UTC)


def _local_day(at: datetime) -> str:
    return (at + timedelta(hours=8)).date().isoformat()


@pytest.mark.parametrize("seed", [11, 22, 33])
async def test_figures_equal_a_recount(db, world, client, seed):
    rnd = random.Random(seed)
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={"region_code": "330000", "values": {"min_sample": 5}, "effective_from": "2025-01-01"},
    )
    assert r.status_code == 201, r.text
    rows = []
    for _ in range(160):
        window = rnd.choice(list(WINDOWS))
        row = {
            "window": window,
            "org": WINDOWS[window],
            "level": rnd.choice([5, 5, 5, 4, 4, 3, 2, 1]),
            "channel": rnd.choice(["pad", "qrcode", "mobile"]),
            "at": START + timedelta(minutes=rnd.randrange(0, 90 * 24 * 60)),
            "is_default": rnd.random() < 0.05,
            "eval_count": 2 if rnd.random() < 0.05 else 1,
            "standing": rnd.choice([None] * 8 + ["invalid", "held", "valid"]),
        }
        stored = await add_rating(
            db,
            world,
            level=row["level"],
            at=row["at"],
            org=row["org"],
            window=window,
            staff=None,
            channel=row["channel"],
            is_default=row["is_default"],
            eval_count=row["eval_count"],
        )
        if row["standing"]:
            await set_standing(
                db=db,
                evaluation_id=stored.id,
                standing=Standing(row["standing"]),
                reason="test",
                actor="t",
            )
        rows.append(row)
    await db.commit()
    counted = [
        r
        for r in rows
        if r["eval_count"] == 1 and not r["is_default"] and r["standing"] not in ("invalid", "held")
    ]

    def expect(group):
        n = len(group)
        good = sum(1 for r in group if r["level"] >= 3)
        points = sum(POINTS[r["level"]] for r in group)
        return n, good, n - good, round(points / n, 3) if n else None

    # Summary: HALL-A, and the whole tree (with what is left out).
    hall_a = await metrics.summary(db=db, actor=ADMIN, org_code="HALL-A")
    want = expect([r for r in counted if r["org"] == "HALL-A"])
    assert (hall_a.total, hall_a.good, hall_a.bad, hall_a.score) == want
    whole = await metrics.summary(db=db, actor=ADMIN)
    first = [r for r in rows if r["eval_count"] == 1]
    assert (whole.total, whole.default_ratings) == (
        len(counted),
        sum(1 for r in first if r["is_default"]),
    )
    assert (whole.invalid, whole.held) == (
        sum(1 for r in first if r["standing"] == "invalid"),
        sum(1 for r in first if r["standing"] == "held"),
    )
    # Days in Beijing time.
    series = await metrics.timeseries(
        db=db, actor=ADMIN, granularity="day", since=START, until=START + timedelta(days=91)
    )
    per_day = Counter(_local_day(r["at"]) for r in counted)
    assert {p.period: p.total for p in series.items if p.total} == dict(per_day)
    # Channels.
    channels = await metrics.breakdown(db=db, actor=ADMIN, by="channel")
    by_channel = defaultdict(list)
    for r in counted:
        by_channel[r["channel"]].append(r)
    assert {x.code: (x.total, x.good, x.bad, x.score) for x in channels.rows} == {
        c: expect(g) for c, g in by_channel.items()
    }
    # February's window ranking: rank = 1 + the units strictly better on (score, good rate).
    since, until = datetime(2026, 1, 31, 16, tzinfo=UTC), datetime(2026, 2, 28, 16, tzinfo=UTC)
    feb = defaultdict(list)
    for r in counted:
        if since <= r["at"] < until:
            feb[r["window"]].append(r)
    key = {
        w: (
            Fraction(sum(POINTS[r["level"]] for r in g), len(g)),
            Fraction(sum(1 for r in g if r["level"] >= 3), len(g)),
        )
        for w, g in feb.items()
        if len(g) >= 5
    }
    want_ranks = {w: 1 + sum(1 for o in key.values() if o > k) for w, k in key.items()}
    ranking = await metrics.rankings(db=db, actor=ADMIN, tier="window", period="2026-02")
    assert {x.code: x.rank for x in ranking.items} == want_ranks
    assert {x.code for x in ranking.unranked} == {w for w in feb if w not in key}
