"""The demo's emerging complaint topic (社情民意, issue 12): over the last three weeks more and
more citizens complain, about one item, of one matter: the booking numbers (预约号) run out.

The ratings are general comments (综合点评) on the item at one of its windows, written with the
rest of the demo; the periodic job segments them like any comment and the emerging-topics view
(`topics.queries.emerging`) puts this item and this matter first. The comments carry no phone
or ID number: at intake those are masked, and these rows do not pass through intake.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from haochaping.demo import generate
from haochaping.evaluations.tags import NATIONAL_VERSION

MATTER = "预约号"
COMMENTS = [
    "预约号总是抢不到，白跑了一趟",
    "网上的预约号一放出就没了",
    "预约号太少了，连续一周都约不上",
    "天天蹲预约号，还是约不到",
    "预约号被黄牛抢光了，希望管一管",
    "现场说必须先有预约号，网上又没有号",
]
WEEKLY = (4, 9, 16)  # complaints in each of the last three weeks, oldest first
# Beside them, the item's ordinary general comments, the same every week for twelve weeks: the
# baseline the rise is measured against, even in a small demo whose cases rate it seldom.
STEADY = 15
PRAISE = ["办理顺利", "工作人员很耐心", None, "材料一次性告知，点赞", None]
REASONS = {1: ["110"], 2: ["212"], 4: [], 5: []}


def is_planted(rating: dict[str, Any]) -> bool:
    """Whether a rating is one of the planted complaints: they are genuine, and the demo's
    halls do not appeal against them (an upheld appeal would take some out of the rise)."""
    return rating.get("comment") in COMMENTS


def planted_item(ref: generate.Reference) -> generate.ItemInfo:
    """The item the complaints are about: a busy one (its baseline is the province's normal
    traffic), the same at every load."""
    served = [i for i in ref.item_infos if i.windows]
    return sorted(served, key=lambda i: (-i.weight, i.code))[min(3, len(served) - 1)]


def plant(
    rng: random.Random,
    ref: generate.Reference,
    *,
    now: datetime,
    client_id: int | None,
    stats: generate.ActivityStats,
) -> list[dict[str, Any]]:
    """The rows to insert (bad general comments on `planted_item` naming the matter), counted
    into the load's `stats`. `rng` is the plant's own, so that the rest of the demo is the same
    with or without it."""
    item = planted_item(ref)
    window = item.windows[0]
    cities = [r["name"] for r in ref.regions if r["tier"] == 2]
    people = generate.Applicants(rng, 60, [item.region_code[:6]], cities)
    rows: list[dict[str, Any]] = []
    steady = [(week, 5 - n % 2, rng.choice(PRAISE)) for week in range(-9, 3) for n in range(STEADY)]
    complaints = [
        (week, 1 if n % 3 == 0 else 2, rng.choice(COMMENTS))
        for week, count in enumerate(WEEKLY)
        for n in range(count)
    ]
    for week, level, comment in steady + complaints:
        days_ago = 7 * (len(WEEKLY) - 1 - week) + rng.uniform(0.2, 6.5)
        evaluated = now - timedelta(days=days_ago)
        rater = people.pick(False)
        rows.append(
            {
                "case_id": None,
                "stage": "whole",
                "eval_count": 1,
                "channel": "review",
                "level": level,
                "reasons": REASONS[level],
                "comment": comment,
                "tagset_version": NATIONAL_VERSION,
                "org_id": window.hall_id,
                "item_id": item.id,
                "window_id": window.id,
                "staff_id": None,
                "region_code": window.region_code,
                "rater_type": rater[0],
                "rater_name": rater[1],
                "rater_cert_type": rater[2],
                "rater_cert_no": rater[3],
                "rater_phone": rater[4],
                "anonymous": False,
                "is_public": True,
                "client_id": client_id,
                "user_id": None,
                "invitation_id": None,
                "source_ip": None,
                "user_agent": None,
                "device_id": None,
                "evaluated_at": evaluated,
                "received_at": min(evaluated + timedelta(seconds=rng.uniform(1, 600)), now),
            }
        )
    rows.sort(key=lambda r: r["received_at"])
    for row in rows:
        stats.channels[row["channel"]] += 1
        stats.levels[row["level"]] += 1
    return rows
