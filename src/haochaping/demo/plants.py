"""Planted abuse: a few recent cases rated the way fake ratings look, for the detectors to find.

Real provinces see it every month: one phone rating many cases of different people (刷好评),
a group of linked raters piling bad ratings on one window (恶意差评), the same pasted comment
on case after case. The rows are written with the rest of the demo; the real batch checks
(`integrity.jobs.run_batch`) then find them and hold the ratings for review, so every flag in
the demo is one the product raised itself.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from haochaping.demo import codes, generate, vocab
from haochaping.evaluations.tags import NATIONAL_VERSION

HOUR = 3600.0
# The pasted comment: long enough to be somebody's own words, seen nowhere else.
PASTED = "窗口工作人员服务特别热情周到，办事效率非常高，点赞点赞！"


@dataclass
class Planted:
    """The rows to insert, and what was planted (for the summary and the tests)."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    ratings: list[dict[str, Any]] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)


def _person(rng: random.Random, region: str) -> tuple[str, str]:
    male = rng.random() < 0.5
    born = date(1970 + rng.randrange(30), 1 + rng.randrange(12), 1 + rng.randrange(28))
    cert = codes.id_card_no(region[:6], born, rng.randrange(500) * 2 + int(male))
    return generate.person_name(rng, male), cert


def plant(
    rng: random.Random,
    ref: generate.Reference,
    *,
    now: datetime,
    case_id: int,
    client_id: int | None,
) -> Planted:
    """Three patterns of abuse in the last day before `now`, at three different windows."""
    out = Planted()
    numbered = [w for w in ref.windows if w.line.numbered and w.staff_ids]
    items_at: dict[int, list[generate.ItemInfo]] = {}
    for item in ref.item_infos:
        for w in item.windows:
            items_at.setdefault(w.id, []).append(item)
    windows = [w for w in numbered if items_at.get(w.id)]
    burst_w, bad_w, paste_w = rng.sample(windows, 3)
    ids = iter(range(case_id, case_id + 1000))
    seq = iter(range(1, 1000))

    def case_and_rating(
        window: generate.WindowInfo,
        *,
        at: float,
        level: int,
        channel: str,
        rater: tuple[str, str],
        phone: str,
        device: str | None = None,
        comment: str | None = None,
    ) -> None:
        item = rng.choice(items_at[window.id])
        staff_id = rng.choice(window.staff_ids)
        name, cert = rater
        completed = at - rng.uniform(0.3, 2) * HOUR
        received = completed - rng.uniform(0.2, 1) * HOUR
        cid = next(ids)
        day = datetime.fromtimestamp(received, generate.CHINA).strftime("%Y%m%d")
        case = {
            "id": cid,
            "case_no": f"{window.region_code[:6]}{day}9{next(seq):06d}",
            "item_id": item.id,
            "org_id": window.hall_id,
            "window_id": window.id,
            "staff_id": staff_id,
            "mode": "offline",
            "case_type": "promised" if item.tmpl.promise_days else "immediate",
            "status": "completed",
            "applicant_type": "person",
            "applicant_name": name,
            "applicant_cert_type": "id_card",
            "applicant_cert_no": cert,
            "applicant_phone": phone,
            "received_at": datetime.fromtimestamp(received, UTC),
            "accepted_at": datetime.fromtimestamp(received + 300, UTC),
            "completed_at": datetime.fromtimestamp(completed, UTC),
            "client_id": client_id,
            "created_at": datetime.fromtimestamp(received, UTC),
            "updated_at": datetime.fromtimestamp(completed, UTC),
        }
        causes = ("offline", "staff") if level <= 2 else ("offline",)
        reasons, text = generate._content(rng, level, causes)
        if level <= 2 and not reasons:
            reasons = generate._pick_reasons(rng, level, causes)
        out.cases.append(case)
        out.ratings.append(
            {
                "case_id": cid,
                "stage": "whole",
                "eval_count": 1,
                "channel": channel,
                "level": level,
                "reasons": reasons,
                "comment": comment if comment is not None else text,
                "tagset_version": NATIONAL_VERSION,
                "org_id": window.hall_id,
                "item_id": item.id,
                "window_id": window.id,
                "staff_id": staff_id,
                "region_code": window.region_code,
                "rater_type": "person",
                "rater_name": name,
                "rater_cert_type": "id_card",
                "rater_cert_no": cert,
                "rater_phone": phone,
                "anonymous": False,
                "is_public": True,
                "client_id": client_id,
                "user_id": None,
                "invitation_id": None,
                "source_ip": None,
                "user_agent": rng.choice(vocab.MOBILE_AGENTS) if channel == "mobile" else None,
                "device_id": device,
                "evaluated_at": datetime.fromtimestamp(at, UTC),
                "received_at": datetime.fromtimestamp(at + rng.uniform(1, 20), UTC),
            }
        )

    end = now.timestamp()
    # 1. 刷好评: one phone rates five cases of five different applicants within three hours.
    phone = codes.mobile(rng)
    start = end - rng.uniform(5, 9) * HOUR
    for k in range(5):
        case_and_rating(
            burst_w,
            at=start + k * rng.uniform(0.3, 0.6) * HOUR,
            level=5,
            channel="sms",
            rater=_person(rng, burst_w.region_code),
            phone=phone,
        )
    out.kinds["source_burst"] = 5
    # 2. 恶意差评: four bad ratings of one window in an afternoon from three people who share a
    # phone and a handset.
    device = f"IMEI-86{rng.randrange(10**13):013d}"
    shared_phone = codes.mobile(rng)
    raters = [_person(rng, bad_w.region_code) for _ in range(3)]
    start = end - rng.uniform(20, 26) * HOUR
    for k in range(4):
        case_and_rating(
            bad_w,
            at=start + k * rng.uniform(0.5, 1.2) * HOUR,
            level=1 if k % 2 else 2,
            channel="mobile",
            rater=raters[k % 3],
            phone=shared_phone if k != 1 else codes.mobile(rng),
            device=device,
        )
    out.kinds["coordinated_bad"] = 4
    # 3. 复制粘贴: the same long comment on four cases of one window in two days.
    start = end - rng.uniform(40, 46) * HOUR
    for k in range(4):
        case_and_rating(
            paste_w,
            at=start + k * rng.uniform(6, 9) * HOUR,
            level=5,
            channel="qrcode",
            rater=_person(rng, paste_w.region_code),
            phone=codes.mobile(rng),
            comment=PASTED,
        )
    out.kinds["duplicate_comment"] = 4
    return out


def showcase(
    rng: random.Random,
    ref: generate.Reference,
    *,
    opens: list[tuple[int, datetime]],
    case_id: int,
    client_id: int | None,
) -> Planted:
    """Bad ratings at given halls and moments (the showcase orders of `workflow.SHOWCASE`):
    ordinary ones, from different people, so that no detector links them."""
    out = Planted()
    by_hall: dict[int, list[generate.WindowInfo]] = {}
    for w in ref.windows:
        if w.line.numbered and w.staff_ids:
            by_hall.setdefault(w.hall_id, []).append(w)
    items_at: dict[int, list[generate.ItemInfo]] = {}
    for item in ref.item_infos:
        for w in item.windows:
            items_at.setdefault(w.id, []).append(item)
    for n, (hall_id, at) in enumerate(opens):
        window = rng.choice([w for w in by_hall[hall_id] if items_at.get(w.id)])
        item = rng.choice(items_at[window.id])
        staff_id = rng.choice(window.staff_ids)
        name, cert = _person(rng, window.region_code)
        phone = codes.mobile(rng)
        completed = at - timedelta(minutes=rng.uniform(5, 60))
        received = completed - timedelta(minutes=rng.uniform(10, 40))
        cid = case_id + n
        day = received.astimezone(generate.CHINA).strftime("%Y%m%d")
        out.cases.append(
            {
                "id": cid,
                "case_no": f"{window.region_code[:6]}{day}8{n + 1:06d}",
                "item_id": item.id,
                "org_id": window.hall_id,
                "window_id": window.id,
                "staff_id": staff_id,
                "mode": "offline",
                "case_type": "promised" if item.tmpl.promise_days else "immediate",
                "status": "completed",
                "applicant_type": "person",
                "applicant_name": name,
                "applicant_cert_type": "id_card",
                "applicant_cert_no": cert,
                "applicant_phone": phone,
                "received_at": received,
                "accepted_at": received + timedelta(minutes=3),
                "completed_at": completed,
                "client_id": client_id,
                "created_at": received,
                "updated_at": completed,
            }
        )
        level = 1 if rng.random() < 0.35 else 2
        causes = ("offline", "staff")
        reasons = generate._pick_reasons(rng, level, causes)
        comment = rng.choice(vocab.BAD_COMMENTS[reasons[0]])
        out.ratings.append(
            {
                "case_id": cid,
                "stage": "whole",
                "eval_count": 1,
                "channel": rng.choice(["pad", "sms", "qrcode"]),
                "level": level,
                "reasons": reasons,
                "comment": comment,
                "tagset_version": NATIONAL_VERSION,
                "org_id": window.hall_id,
                "item_id": item.id,
                "window_id": window.id,
                "staff_id": staff_id,
                "region_code": window.region_code,
                "rater_type": "person",
                "rater_name": name,
                "rater_cert_type": "id_card",
                "rater_cert_no": cert,
                "rater_phone": phone,
                "anonymous": False,
                "is_public": True,
                "client_id": client_id,
                "user_id": None,
                "invitation_id": None,
                "source_ip": None,
                "user_agent": None,
                "device_id": None,
                "evaluated_at": at - timedelta(seconds=rng.uniform(5, 60)),
                "received_at": at,
            }
        )
    return out
