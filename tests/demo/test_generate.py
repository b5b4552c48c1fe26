"""The demo generator without a database: where bad ratings fall, and synthetic identifiers."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from haochaping.demo import codes, generate, vocab
from haochaping.evaluations.tags import national_tags

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


def top_share(counts: Counter, k: int) -> float:
    """The share of the total held by the k largest counts."""
    return sum(sorted(counts.values(), reverse=True)[:k]) / sum(counts.values())


def test_bad_ratings_cluster_in_a_few_windows_and_items():
    # 40,000 cases give a few hundred bad ratings: enough for the shape to show.
    rng = random.Random(11)
    ref = generate.build_reference(rng, now=NOW, org_id=1, staff_id=1, item_id=1)
    stats = generate.ActivityStats()
    ratings = [
        row
        for _, rows in generate.generate_activity(
            rng, ref, now=NOW, cases=40_000, case_id=1, client_id=None, stats=stats
        )
        for row in rows
    ]
    bad = [r for r in ratings if r["level"] <= 2]
    assert len(bad) > 150
    windows = len(ref.windows) // 10
    bad_by_window = Counter(r["window_id"] for r in bad if r["window_id"])
    all_by_window = Counter(r["window_id"] for r in ratings if r["window_id"])
    # The busiest tenth of windows takes about a third of all ratings, but the worst tenth
    # takes most of the bad ones.
    assert top_share(bad_by_window, windows) > 0.5
    assert top_share(bad_by_window, windows) > 1.5 * top_share(all_by_window, windows)
    items = len(ref.items) // 20
    bad_by_item = Counter(r["item_id"] for r in bad)
    all_by_item = Counter(r["item_id"] for r in ratings)
    assert top_share(bad_by_item, items) > 1.5 * top_share(all_by_item, items)
    # Staff-related reasons dominate where windows go wrong; overdue reasons exist.
    reasons = Counter(code for r in bad for code in r["reasons"])
    assert reasons["213"] + reasons["214"] + reasons["115"] > reasons["211"] + reasons["112"]
    assert reasons["209"] + reasons["110"] > 0


def test_same_seed_same_province():
    first = generate.build_reference(random.Random(3), now=NOW, org_id=1, staff_id=1, item_id=1)
    again = generate.build_reference(random.Random(3), now=NOW, org_id=1, staff_id=1, item_id=1)
    assert first.orgs == again.orgs and first.staff == again.staff
    assert first.items == again.items
    assert len({s["staff_no"] for s in first.staff}) == len(first.staff)
    assert len({i["code"] for i in first.items}) == len(first.items)


def test_identifiers_carry_correct_check_characters():
    # The worked examples of GB 11643 and GB 32100.
    assert codes.id_check_char("11010519491231002") == "X"
    assert codes.credit_code("91", "350100", "M000100Y") == "91350100M000100Y43"
    assert codes.is_valid_credit_code("91350100M000100Y43")
    assert not codes.is_valid_credit_code("91350100M000100Y44")
    rng = random.Random(5)
    people = generate.Applicants(rng, 200, ["990102"], ["星湖市"]).people
    ids = [p[3] for p in people if p[2] == "id_card"]
    assert ids and all(codes.is_valid_id_card_no(i) and i.startswith("990102") for i in ids)
    assert all(len(p[4]) == 11 and p[4].startswith("1") for p in people)
    assert codes.is_valid_credit_code(generate.ROOT_CODE)


def test_reason_tables_and_comments_fit_the_national_tag_set():
    level_of = {t.code: t.level for t in national_tags()}
    for level, by_cause in generate.REASON_WEIGHTS.items():
        for weights in by_cause.values():
            assert all(level_of[code] == level for code in weights)
    bad_codes = {code for code, level in level_of.items() if level <= 2}
    assert set(vocab.BAD_COMMENTS) == bad_codes  # every bad reason has words to go with it
    assert set(vocab.INSPECTION_FINDINGS) <= bad_codes
