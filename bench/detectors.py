"""Fake-rating detectors measured: a generated month of ratings with planted abuse of each
kind, every check run as in production, then precision and recall per check.

    .venv/bin/python bench/detectors.py [--seed 1] [--days 30] [--per-day 1500]
                                        [--postgres] [--markdown]

The data set (made in memory, stored in a fresh SQLite file, or with --postgres in a fresh
PostgreSQL database): three counties, twelve halls, sixty windows, two staff members each;
`per-day` honest ratings a day over office hours, on seven channels, about 99 % good, with
honest look-alikes of every abuse (agents rating their own many cases, a family's shared
phone, a hall's Wi-Fi, quick citizens at the pad, excellent windows, stock phrases, an
outage rated badly by strangers). Planted on top, each rating labelled with its kind:

  staff_self_rating   staff rating their own cases (as applicant, or with their own phone)
  source_burst        phones, app devices and browsers rating many people's cases in hours
  invitation_misuse   links spent seconds after issue; a source that tried spent links
  instant_pad         windows whose pad is pressed 0.5-2.5 s after completion, for days
  perfect_unit        windows and a staff member with nothing but 非常满意 all month
  duplicate_comment   one text pasted on many cases of a unit within two days
  coordinated_bad     bad ratings against one hall within hours from linked raters

Then, in arrival order, every rating goes through the intake hook (IntakeGuard.on_stored, as
the API calls it) and the batch pass (jobs.run_batch) runs every `--pass-hours` of simulated
time. A flag counts as correct when the rating was planted for that check's kind (strict) or
for any kind (lenient). Recall is over the ratings planted for the check's kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import random
import shutil
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import harness
from sqlalchemy import insert, select, text

from haochaping.accounts.models import ApiClient
from haochaping.cases.models import Case
from haochaping.db.crypto import DataKeys
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.evaluations.models import Evaluation, Invitation
from haochaping.integrity import detectors, jobs
from haochaping.integrity import service as integrity_service
from haochaping.integrity.models import IntegrityFlag
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from haochaping.orgs.models import Item, Org, Staff

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECRET = "bench-detectors-secret-" + "x" * 20
KEYS = DataKeys(secret=SECRET)
START = datetime(2025, 3, 3, tzinfo=SHANGHAI)  # a Monday
KINDS = [
    "staff_self_rating",
    "source_burst",
    "invitation_misuse",
    "instant_pad",
    "perfect_unit",
    "duplicate_comment",
    "coordinated_bad",
    "pad_burst",
    "agent_volume",
]
COUNTIES = ["330102", "330105", "330106"]
CHANNELS = [
    ("pad", 0.55),
    ("mobile", 0.20),
    ("pc", 0.07),
    ("qrcode", 0.10),
    ("sms", 0.06),
    ("phone", 0.02),
]
STOCK = [
    "非常满意",
    "满意",
    "很好",
    "办事效率高",
    "服务态度好",
    "点赞",
    "态度很好",
    "方便快捷",
    "一次办好",
    "不错",
    "挺好的",
    "速度快",
    "好评",
    "辛苦了",
    "很专业",
]
QUICK_PHRASES = [
    "工作人员态度很好，办事效率很高",
    "材料一次性告知，没有跑冤枉路",
    "窗口服务规范，流程清楚明白",
]
FRAGMENTS = [
    "工作人员很耐心",
    "讲解得很清楚",
    "排队时间不长",
    "材料准备指导到位",
    "帮我填了表",
    "比上次快多了",
    "没想到这么顺利",
    "大厅环境整洁",
    "引导员很热情",
    "网上预约很方便",
    "当场就拿到了证",
    "有不懂的地方主动解释",
    "窗口人员业务熟练",
    "取号很方便",
    "整个过程二十分钟",
    "等了半小时左右",
    "老人办事有人帮忙",
    "下次还来这里办",
    "提前准备的材料都用上了",
    "系统有点慢但人很好",
    "告知了后续怎么领取",
    "容缺受理帮了大忙",
    "周末也能办很贴心",
    "停车有点难",
    "说明书写得清楚",
    "一窗通办很方便",
    "不用来回跑了",
    "电话咨询也很耐心",
    "午休时间也有人值班",
    "窗口少了点",
]
COMPLAINTS = [
    "等了两个小时还没办完",
    "材料要求前后说法不一致",
    "让我跑了三趟",
    "工作人员态度冷淡",
    "系统故障无法办理",
    "窗口提前下班",
    "电话一直打不通",
    "告知不清楚又被退回",
]
UAS = [f"Mozilla/5.0 (Linux; Android {9 + k % 6}; M{k:03d}) WeChat/8.0.{k % 50}" for k in range(60)]


@dataclass
class World:
    """Reference data ids: windows with their hall, region, staff and item."""

    windows: list[dict[str, Any]] = field(default_factory=list)
    halls: dict[int, dict[str, Any]] = field(default_factory=dict)
    staff: dict[int, dict[str, Any]] = field(default_factory=dict)
    client_id: int | None = None  # the API client pads and apps post through


@dataclass
class Data:
    """The generated ratings (rows as stored), their cases and links, and the truth."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    cases: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    truth: dict[int, str] = field(default_factory=dict)  # evaluation id → planted kind
    variant: dict[int, str] = field(default_factory=dict)  # evaluation id → how it was done
    refusals: list[tuple[datetime, str, str, str]] = field(default_factory=list)
    identities: list[tuple[str, str, str]] = field(default_factory=list)  # staff_no, cert, phone


class Generator:
    """Builds the month: honest traffic with hard negatives, then each kind of abuse."""

    def __init__(self, world: World, *, seed: int, days: int, per_day: int) -> None:
        self.w, self.rng, self.days, self.per_day = world, random.Random(seed), days, per_day
        self.data = Data()
        self.person = 0
        self.agents = [self.new_person() for _ in range(40)]
        self.families = [self.new_person() for _ in range(300)]
        rates = [self.rng.uniform(10, 40) for _ in world.windows]
        total = sum(rates)
        self.rate = [r / total * per_day for r in rates]
        # Per-window share of 非常满意: most around 80 %, a few excellent (hard negatives).
        self.p5 = [min(0.95, max(0.6, self.rng.gauss(0.8, 0.06))) for _ in world.windows]
        for k in self.rng.sample(range(len(world.windows)), 4):
            self.p5[k] = self.rng.uniform(0.92, 0.95)

    # --- people and times ------------------------------------------------------------------

    def new_person(self) -> dict[str, Any]:
        self.person += 1
        n = self.person
        return {
            "cert": f"330{n:014d}X",
            "phone": f"13{n:09d}",
            "device": f"DEV{n:07d}",
            "ua": self.rng.choice(UAS),
            "name": "市民",
        }

    def office_time(self, day: int) -> datetime:
        local = START + timedelta(days=day, hours=9, seconds=self.rng.uniform(0, 8 * 3600))
        return local.astimezone(UTC)

    def pad_delay(self) -> float:
        if self.rng.random() < 0.05:  # citizens ready at the pad before the staff finished
            return self.rng.uniform(1.5, 6.0)
        return math.exp(self.rng.gauss(math.log(20), 0.7))

    def level(self, k: int) -> int:
        if self.rng.random() < self.p5[k]:
            return 5
        return self.rng.choices([4, 3, 2, 1], [75, 20, 3, 2])[0]

    def detail(self) -> str:
        rng = self.rng
        return rng.choice(
            [
                f"前后用了{rng.randint(5, 90)}分钟",
                f"这是第{rng.randint(2, 6)}次来",
                f"{rng.randint(8, 16)}点多到的",
                f"排在第{rng.randint(3, 60)}号",
            ]
        )

    def comment(self, level: int) -> str | None:
        """Free text as people write it: stock words, quick phrases, or their own sentences."""
        rng = self.rng
        r = rng.random()
        if level <= 2:
            return f"{rng.choice(COMPLAINTS)}，{self.detail()}" if r < 0.7 else None
        if r >= 0.15:
            return None
        r = rng.random()
        if r < 0.6:
            return rng.choice(STOCK)
        if r < 0.63:  # the rating page's quick phrases: the same words across the province
            return rng.choice(QUICK_PHRASES)
        parts = rng.sample(FRAGMENTS, rng.choice([2, 3]))
        if rng.random() < 0.6:
            parts.append(self.detail())
        return "，".join(parts)

    # --- one rating ------------------------------------------------------------------------

    def add(
        self,
        *,
        k: int,
        completed: datetime,
        person: dict[str, Any],
        channel: str,
        level: int,
        delay: float,
        kind: str | None = None,
        staff_id: int | None = -1,
        rater_phone: str | None = None,
        rater_cert: str | None = -1,  # type: ignore[assignment]
        device: str | None = None,
        ip: str | None = None,
        ua: str | None = None,
        issued_after: float | None = None,
        comment: str | None = -1,  # type: ignore[assignment]
        no_phone: bool = False,
        uploaded: datetime | None = None,
        applicant: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One case and its rating. `person` rates; the case is `applicant`'s (the same
        person unless given); `uploaded` is when a buffered rating reaches the server."""
        win = self.w.windows[k]
        applicant = applicant or person
        case_id = len(self.data.cases) + 1
        if staff_id == -1:
            staff_id = self.rng.choices(win["staff"], [70, 30])[0]
        self.data.cases.append(
            {
                "id": case_id,
                "case_no": f"DET-{case_id:07d}",
                "item_id": win["item_id"],
                "org_id": win["hall_id"],
                "window_id": win["id"],
                "staff_id": staff_id,
                "mode": "offline",
                "case_type": "immediate",
                "status": "completed",
                "applicant_type": "person",
                "applicant_name": applicant["name"],
                "applicant_cert_type": "id_card",
                "applicant_cert_no": applicant["cert"],
                "applicant_phone": applicant["phone"],
                "received_at": completed - timedelta(hours=1),
                "accepted_at": completed - timedelta(minutes=40),
                "completed_at": completed,
                "created_at": completed,
                "updated_at": completed,
            }
        )
        evaluated = completed + timedelta(seconds=delay)
        received = uploaded or evaluated + timedelta(seconds=self.rng.uniform(0.05, 1.5))
        invitation_id = None
        if channel == "qrcode":
            invitation_id = len(self.data.links) + 1
            issued = received - timedelta(
                seconds=issued_after if issued_after is not None else delay
            )
            self.data.links.append(
                {
                    "id": invitation_id,
                    "nonce": f"n{invitation_id:08d}",
                    "case_id": case_id,
                    "stage": "whole",
                    "channel": "qrcode",
                    "expires_at": completed + timedelta(days=30),
                    "used_at": received,
                    "evaluation_id": None,
                    "created_at": issued,
                }
            )
        row = {
            "case_id": case_id,
            "stage": "whole",
            "eval_count": 1,
            "channel": channel,
            "level": level,
            "reasons": [],
            "comment": self.comment(level) if comment == -1 else comment,
            "tagset_version": "national-2020",
            "org_id": win["hall_id"],
            "item_id": win["item_id"],
            "window_id": win["id"],
            "staff_id": staff_id,
            "region_code": win["region"],
            "rater_type": "person",
            "rater_name": person["name"],
            "rater_cert_type": "id_card",
            "rater_cert_no": person["cert"] if rater_cert == -1 else rater_cert,
            "rater_phone": None if no_phone else rater_phone or person["phone"],
            "anonymous": False,
            "is_public": True,
            "is_default": False,
            # Pads, terminals and apps post through our API client; a link's rating comes
            # from the citizen's browser.
            "client_id": None if channel == "qrcode" else self.w.client_id,
            "user_id": None,
            "invitation_id": invitation_id,
            "source_ip": ip,
            "user_agent": ua,
            "device_id": device,
            "evaluated_at": evaluated,
            "received_at": received,
            "_kind": kind,
        }
        self.data.rows.append(row)
        return row

    def honest(
        self,
        k: int,
        completed: datetime,
        *,
        level: int | None = None,
        person: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One honest rating at window k, with the look-alikes of abuse mixed in."""
        rng = self.rng
        win = self.w.windows[k]
        channel = rng.choices([c for c, _ in CHANNELS], [p for _, p in CHANNELS])[0]
        if person is None:
            r = rng.random()
            person = (
                rng.choice(self.agents)
                if r < 0.05
                else rng.choice(self.families)
                if r < 0.07
                else self.new_person()
            )
        level = self.level(k) if level is None else level
        device = ip = ua = None
        delay = self.pad_delay()
        issued_after = None
        if channel == "mobile":
            device, ua = person["device"], person["ua"]
            delay = rng.uniform(60, 6 * 3600)
        elif channel in ("pc", "sms", "phone"):
            delay = rng.uniform(300, 48 * 3600)
        elif channel == "qrcode":
            ua = person["ua"]
            ip = (
                win["wifi"]
                if rng.random() < 0.3
                else f"10.{rng.randrange(64)}.{rng.randrange(256)}.{rng.randrange(256)}"
            )
            at_window = rng.random() < 0.5
            delay = (
                12 + math.exp(rng.gauss(math.log(40), 0.6))
                if at_window
                else math.exp(rng.gauss(math.log(7200), 1.0))
            )
            if rng.random() < 0.005:  # a very quick citizen: a hard negative
                delay = issued_after = rng.uniform(6, 10)
        return self.add(
            k=k,
            completed=completed,
            person=person,
            channel=channel,
            level=level,
            delay=delay,
            device=device,
            ip=ip,
            ua=ua,
            issued_after=issued_after,
        )

    # --- the month ---------------------------------------------------------------------------

    def generate(self) -> Data:
        rng = self.rng
        perfect = set(rng.sample(range(len(self.w.windows)), 2))
        # A third window fakes less greedily: 97 % 非常满意 (below the check's 98 % bar).
        self.near_perfect = rng.choice([k for k in range(len(self.w.windows)) if k not in perfect])
        self.perfect_windows = perfect
        for day in range(self.days):
            for k in range(len(self.w.windows)):
                n = self._poisson(
                    self.rate[k] * (0.4 if (START + timedelta(days=day)).weekday() >= 5 else 1.0)
                )
                for _ in range(n):
                    level = (
                        5
                        if k in perfect
                        else (5 if rng.random() < 0.97 else 4)
                        if k == self.near_perfect
                        else None
                    )
                    row = self.honest(k, self.office_time(day), level=level)
                    if k in perfect:
                        row["_kind"] = "perfect_unit/a window with only 非常满意"
                    elif k == self.near_perfect:
                        row["_kind"] = "perfect_unit/evasive: a window with 97% 非常满意"
        self.outage()
        self.plant_self_rating()
        self.plant_bursts()
        self.plant_links()
        self.plant_instant_pads(perfect)
        self.plant_perfect_staff(perfect)
        self.plant_duplicates()
        self.plant_coordinated_bad()
        self.plant_second_attempts()
        self.second_look_alikes()
        return self.finish()

    def _poisson(self, lam: float) -> int:
        threshold, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= threshold:
                return k
            k += 1

    def windows_of_hall(self, hall_id: int) -> list[int]:
        return [k for k, w in enumerate(self.w.windows) if w["hall_id"] == hall_id]

    def outage(self) -> None:
        """Hard negative: a hall's system fails; ten strangers rate badly within 3 hours."""
        hall = self.rng.choice(list(self.w.halls))
        t0 = self.office_time(12)
        for j in range(10):
            k = self.rng.choice(self.windows_of_hall(hall))
            self.honest(k, t0 + timedelta(minutes=18 * j), level=self.rng.choice([1, 2]))

    def plant_self_rating(self) -> None:
        staff_ids = list(self.w.staff)
        cheats = self.rng.sample(staff_ids, 6)
        for sid in staff_ids:  # every staff member's identity is on record
            me = self.new_person()
            self.w.staff[sid]["person"] = me
            self.data.identities.append((self.w.staff[sid]["no"], me["cert"], me["phone"]))
        for sid in cheats:
            s = self.w.staff[sid]
            me, k = s["person"], s["window_k"]
            for j in range(4):
                t = self.office_time(self.rng.randrange(self.days))
                if j < 2:  # a made-up case with the staff member as the applicant
                    self.add(
                        k=k,
                        completed=t,
                        person=me,
                        channel="pad",
                        level=5,
                        delay=self.pad_delay(),
                        staff_id=sid,
                        kind="staff_self_rating/made-up case, the staff member as applicant",
                    )
                else:  # a citizen's case rated in an app with the staff member's phone
                    self.add(
                        k=k,
                        completed=t,
                        person=self.new_person(),
                        channel="mobile",
                        level=5,
                        delay=self.rng.uniform(600, 7200),
                        staff_id=sid,
                        rater_phone=me["phone"],
                        rater_cert=None,
                        device=me["device"],
                        ua=me["ua"],
                        kind="staff_self_rating/rated with the staff's own phone",
                    )
        # Evasive: a staff member rates three of their cases with a relative's phone.
        sid = self.rng.choice([s for s in staff_ids if s not in cheats])
        relative = self.new_person()
        for _ in range(3):
            self.add(
                k=self.w.staff[sid]["window_k"],
                completed=self.office_time(self.rng.randrange(self.days)),
                person=self.new_person(),
                channel="mobile",
                level=5,
                delay=900,
                staff_id=sid,
                rater_phone=relative["phone"],
                rater_cert=None,
                kind="staff_self_rating/evasive: a relative's phone",
            )
        # Hard negatives: staff members who are citizens elsewhere now and then.
        others = [s for s in staff_ids if s not in cheats]
        for sid in self.rng.sample(others, 30):
            me = self.w.staff[sid]["person"]
            k = self.rng.choice(
                [
                    j
                    for j, w in enumerate(self.w.windows)
                    if w["hall_id"] != self.w.staff[sid]["hall_id"]
                ]
            )
            self.honest(k, self.office_time(self.rng.randrange(self.days)), person=me)

    def plant_bursts(self) -> None:
        halls = list(self.w.halls)
        for kind_of_source, count in (("phone", 5), ("device", 3), ("ip", 2)):
            for _ in range(count):
                hall = self.rng.choice(halls)
                t0 = self.office_time(self.rng.randrange(self.days))
                faker = self.new_person()
                for j in range(self.rng.randint(5, 8) if kind_of_source == "phone" else 6):
                    k = self.rng.choice(self.windows_of_hall(hall))
                    victim = self.new_person()
                    t = t0 + timedelta(minutes=self.rng.uniform(0, 150))
                    if kind_of_source == "phone":
                        self.add(
                            k=k,
                            completed=t,
                            person=victim,
                            channel="mobile",
                            level=5,
                            delay=self.rng.uniform(60, 900),
                            rater_phone=faker["phone"],
                            rater_cert=None,
                            kind="source_burst/one phone, 5-8 cases in 2.5 h",
                        )
                    elif kind_of_source == "device":
                        self.add(
                            k=k,
                            completed=t,
                            person=victim,
                            channel="mobile",
                            level=5,
                            delay=self.rng.uniform(60, 900),
                            device=faker["device"],
                            ua=faker["ua"],
                            kind="source_burst/one app device, 6 cases in 2.5 h",
                        )
                    else:
                        self.add(
                            k=k,
                            completed=t - timedelta(hours=5),
                            person=victim,
                            channel="qrcode",
                            level=5,
                            delay=5 * 3600 + j * 60,
                            ip="10.99.0.7",
                            ua=faker["ua"],
                            kind="source_burst/one browser and address, 6 links in 2.5 h",
                        )

        # Evasive: three cases only (below the bar), or six spread one every eight hours.
        for spread, n, label in (
            (0.0, 3, "3 cases only"),
            (0.0, 3, "3 cases only"),
            (8.0, 6, "6 cases, one every 8 h"),
        ):
            faker, t0 = self.new_person(), self.office_time(self.rng.randrange(self.days - 2))
            for j in range(n):
                k = self.rng.randrange(len(self.w.windows))
                t = t0 + timedelta(hours=spread * j, minutes=self.rng.uniform(0, 120))
                self.add(
                    k=k,
                    completed=t,
                    person=self.new_person(),
                    channel="mobile",
                    level=5,
                    delay=600,
                    rater_phone=faker["phone"],
                    rater_cert=None,
                    kind=f"source_burst/evasive: {label}",
                )
        # Grey, labelled honest: an enterprise agent (代办) rating five clients' cases with
        # the agent's own phone in one morning.
        for _ in range(2):
            agent, t0 = self.new_person(), self.office_time(self.rng.randrange(self.days))
            hall = self.rng.choice(halls)
            for _j in range(5):
                k = self.rng.choice(self.windows_of_hall(hall))
                self.add(
                    k=k,
                    completed=t0 + timedelta(minutes=self.rng.uniform(0, 180)),
                    person=self.new_person(),
                    channel="pc",
                    level=5,
                    delay=1800,
                    rater_phone=agent["phone"],
                    rater_cert=None,
                )

    def plant_links(self) -> None:
        for k in self.rng.sample(range(len(self.w.windows)), 2):
            for _ in range(12):
                t = self.office_time(self.rng.randrange(self.days))
                self.add(
                    k=k,
                    completed=t,
                    person=self.new_person(),
                    channel="qrcode",
                    level=5,
                    delay=self.rng.uniform(2, 6),
                    ip=self.w.windows[k]["wifi"],
                    ua=UAS[0],
                    kind="invitation_misuse/12 links spent 2-6 s after issue at a window",
                )
        # Evasive: once each at two other windows (a single quick link passes).
        for k in self.rng.sample(range(len(self.w.windows)), 2):
            self.add(
                k=k,
                completed=self.office_time(self.rng.randrange(self.days)),
                person=self.new_person(),
                channel="qrcode",
                level=5,
                delay=3,
                ip=self.w.windows[k]["wifi"],
                ua=UAS[0],
                kind="invitation_misuse/evasive: one quick link at a window",
            )
        # A source that tried spent links three times, then rated three links of its own.
        t0 = self.office_time(self.rng.randrange(2, self.days))
        ip, ua = "10.77.0.3", "Mozilla/5.0 (probe)"
        for j in range(3):
            self.data.refusals.append((t0 - timedelta(minutes=30 - j), "invitation_used", ip, ua))
        for j in range(3):
            k = self.rng.randrange(len(self.w.windows))
            self.add(
                k=k,
                completed=t0 - timedelta(hours=3),
                person=self.new_person(),
                channel="qrcode",
                level=5,
                delay=3 * 3600 + j * 600,
                ip=ip,
                ua=ua,
                kind="invitation_misuse/rated after three refused spent links",
            )

    def plant_instant_pads(self, perfect: set[int]) -> None:
        ks = self.rng.sample(
            [k for k in range(len(self.w.windows)) if k not in perfect and k != self.near_perfect],
            5,
        )
        # Three blatant; then evasive: a third of the cases only, or pressed after 4-6 s.
        variants = ["60% of 10 days' cases pressed 0.5-2.5 s after completion"] * 3 + [
            "evasive: 30% of the cases",
            "evasive: pressed 4-6 s after completion",
        ]
        for k, share, (lo, hi), variant in zip(
            ks, (0.6, 0.6, 0.6, 0.3, 0.6), ((0.5, 2.5),) * 4 + ((4.0, 6.0),), variants, strict=True
        ):
            first = self.rng.randrange(0, self.days - 10)
            for row in self.data.rows:
                day = (row["received_at"].astimezone(SHANGHAI) - START).days
                if (
                    row["window_id"] == self.w.windows[k]["id"]
                    and row["channel"] == "pad"
                    and first <= day < first + 10
                    and row["_kind"] is None
                    and self.rng.random() < share
                ):
                    case = self.data.cases[row["case_id"] - 1]
                    gap = self.rng.uniform(lo, hi)
                    case["completed_at"] = row["evaluated_at"] - timedelta(seconds=gap)
                    row.update(level=5, _kind=f"instant_pad/{variant}")
                    if row["comment"] and row["comment"].split("，")[0] in COMPLAINTS:
                        row["comment"] = None

    def plant_perfect_staff(self, perfect: set[int]) -> None:
        k = self.rng.choice([j for j in range(len(self.w.windows)) if j not in perfect])
        sid = self.w.windows[k]["staff"][0]
        for row in self.data.rows:
            if row["staff_id"] == sid and row["_kind"] is None:
                row.update(level=5, _kind="perfect_unit/a staff member with only 非常满意")
                if row["comment"] and row["comment"].split("，")[0] in COMPLAINTS:
                    row["comment"] = None

    def plant_duplicates(self) -> None:
        texts = [
            "窗口小王业务精通，服务热情，为人民服务的好榜样",
            "非常感谢工作人员的耐心帮助，办事效率超级高，点赞",
            "服务热情周到，环境干净整洁，办事一次成功，非常满意",
            "工作人员态度好效率高，政务服务越来越便民了",
        ]
        for text_ in texts:
            hall = self.rng.choice(list(self.w.halls))
            day = self.rng.randrange(self.days - 2)
            for _ in range(self.rng.randint(5, 8)):
                k = self.rng.choice(self.windows_of_hall(hall))
                self.add(
                    k=k,
                    completed=self.office_time(day + self.rng.randrange(2)),
                    person=self.new_person(),
                    channel="pad",
                    level=5,
                    delay=self.pad_delay(),
                    comment=text_,
                    kind="duplicate_comment/one text on 5-8 cases of a hall in 2 days",
                )
        # Evasive: pasted twice only; pasted once at each of five halls; pasted with the end
        # changed each time (near, not exact, copies).
        halls = list(self.w.halls)
        day = self.rng.randrange(self.days - 2)
        hall = self.rng.choice(halls)
        evasive = [(hall, "大厅服务一流，值得全省推广学习", "twice only") for _ in range(2)]
        evasive += [
            (h, "为窗口工作人员点赞，服务效率一流，群众很满意", "once at each of 5 halls")
            for h in self.rng.sample(halls, 5)
        ]
        hall = self.rng.choice(halls)
        evasive += [
            (hall, "办事快捷，服务贴心，给政府点赞" + end, "4 copies, each ending changed")
            for end in ("！", "。", "!!", "~")
        ]
        for hall, text_, variant in evasive:
            self.add(
                k=self.rng.choice(self.windows_of_hall(hall)),
                completed=self.office_time(day + self.rng.randrange(2)),
                person=self.new_person(),
                channel="pad",
                level=5,
                delay=self.pad_delay(),
                comment=text_,
                kind=f"duplicate_comment/evasive: {variant}",
            )

    def plant_coordinated_bad(self) -> None:
        # The last campaign is evasive: four raters with nothing shared that the data shows.
        variants = {
            "device": "5 bad ratings in 4 h by 3-4 raters sharing an app device",
            "phone": "5 bad ratings in 4 h by 3-4 raters giving one phone",
            "ip": "5 bad ratings in 4 h by 3-4 raters through one browser",
            "none": "evasive: 3-4 raters sharing nothing the data shows",
        }
        for link, variant in variants.items():
            hall = self.rng.choice(list(self.w.halls))
            t0 = self.office_time(self.rng.randrange(self.days))
            gang = [self.new_person() for _ in range(self.rng.randint(3, 4))]
            shared = self.new_person()
            for j in range(5):
                k = self.rng.choice(self.windows_of_hall(hall))
                who = gang[j % len(gang)]
                t = t0 + timedelta(minutes=self.rng.uniform(0, 240))
                common = {
                    "k": k,
                    "completed": t - timedelta(hours=2),
                    "person": who,
                    "level": self.rng.choice([1, 2]),
                    "comment": self.comment(1),
                    "kind": f"coordinated_bad/{variant}",
                }
                if link == "device":
                    self.add(
                        channel="mobile",
                        delay=7200,
                        device=shared["device"],
                        ua=shared["ua"],
                        **common,
                    )
                elif link == "phone":
                    self.add(channel="mobile", delay=7200, rater_phone=shared["phone"], **common)
                elif link == "ip":
                    self.add(
                        channel="qrcode", delay=7200, ip="10.55.1.1", ua=shared["ua"], **common
                    )
                else:
                    self.add(
                        channel="mobile", delay=7200, device=who["device"], ua=who["ua"], **common
                    )

    # --- issue 16: what an abuser tries second, and the honest look-alikes of it ----------

    def closing(self, day: int, minute: float = 0.0) -> datetime:
        """16:55 local on `day`, plus minutes."""
        return (START + timedelta(days=day, hours=16, minutes=55 + minute)).astimezone(UTC)

    def plant_second_attempts(self) -> None:
        rng = self.rng
        halls = list(self.w.halls)
        # One phone written several ways (+86, 0086, dashes, 86 without +): a ring that
        # looked like four sources.
        for _ in range(3):
            hall, t0, faker = (
                rng.choice(halls),
                self.office_time(rng.randrange(self.days)),
                self.new_person(),
            )
            p = faker["phone"]
            ways = ["+86" + p, "0086" + p, f"{p[:3]}-{p[3:7]}-{p[7:]}", "86" + p, p]
            for j in range(rng.randint(5, 6)):
                self.add(
                    k=rng.choice(self.windows_of_hall(hall)),
                    completed=t0 + timedelta(minutes=rng.uniform(0, 150)),
                    person=self.new_person(),
                    channel="mobile",
                    level=5,
                    delay=rng.uniform(60, 900),
                    rater_phone=ways[j % len(ways)],
                    rater_cert=None,
                    kind="source_burst/second try: one phone written 4 ways, 5-6 cases in 2.5 h",
                )
        # Time: six cases rated from one app device in half an hour, uploaded over 12 hours.
        for _ in range(2):
            faker, t0 = self.new_person(), self.office_time(rng.randrange(self.days - 1))
            for j in range(6):
                given = t0 + timedelta(minutes=5 * j)
                self.add(
                    k=rng.randrange(len(self.w.windows)),
                    completed=given - timedelta(minutes=30),
                    person=self.new_person(),
                    channel="mobile",
                    level=5,
                    delay=1800,
                    device=faker["device"],
                    ua=faker["ua"],
                    uploaded=given + timedelta(hours=2.2 * j, seconds=rng.uniform(1, 60)),
                    kind="source_burst/second try: 6 given in 30 min, uploaded over 12 h",
                )
        # Staff members rating with their own phone written with the country code.
        cheats = [s for s in self.w.staff.values() if "person" in s]
        for s in rng.sample(cheats, 3):
            for _ in range(2):
                self.add(
                    k=s["window_k"],
                    completed=self.office_time(rng.randrange(self.days)),
                    person=self.new_person(),
                    channel="pc",
                    level=5,
                    delay=rng.uniform(600, 7200),
                    staff_id=next(i for i, x in self.w.staff.items() if x is s),
                    rater_phone="+86 " + s["person"]["phone"],
                    rater_cert=None,
                    kind="staff_self_rating/second try: own phone written +86",
                )
        # Near-duplicates: each copy with a word or a mark changed.
        texts = [
            (
                "大厅窗口服务热情周到，办事效率非常高，为你们点赞",
                [("非常", "特别"), ("点赞", "点个赞")],
            ),
            (
                "工作人员耐心细致，一次性告知所需材料，太贴心了",
                [("耐心细致", "耐心细心"), ("太", "很")],
            ),
            ("政务服务越来越便民，跑一次就办好了，感谢政府", [("感谢", "谢谢"), ("便民", "方便")]),
        ]
        for text_, swaps in texts:
            hall, day = rng.choice(halls), rng.randrange(self.days - 2)
            for j in range(rng.randint(5, 6)):
                copy = text_
                old, new = swaps[j % len(swaps)]
                if j % 3 == 1:
                    copy = copy.replace(old, new)
                elif j % 3 == 2:
                    copy = copy.replace("，", "、", 1) + "！"
                self.add(
                    k=rng.choice(self.windows_of_hall(hall)),
                    completed=self.office_time(day + rng.randrange(2)),
                    person=self.new_person(),
                    channel="pad",
                    level=5,
                    delay=self.pad_delay(),
                    comment=copy,
                    kind="duplicate_comment/second try: a word or a mark changed, 5-6 cases",
                )
        # A backlog pressed through at closing time: presses 0.3-0.9 s apart.
        for k in rng.sample(range(len(self.w.windows)), 3):
            day = rng.randrange(self.days)
            press = self.closing(day)
            for _ in range(rng.randint(6, 12)):
                done = self.office_time(day)
                done = min(done, press - timedelta(minutes=5))
                self.add(
                    k=k,
                    completed=done,
                    person=self.new_person(),
                    channel="pad",
                    level=5,
                    delay=(press - done).total_seconds(),
                    kind="pad_burst/a backlog pressed 0.3-0.9 s apart at closing time",
                )
                press += timedelta(seconds=rng.uniform(0.3, 0.9))
        # One ID number, no phone or device, rating in one sitting (40 minutes) the cases of
        # applicants served at one window over the day.
        for level in (5, 5, 1):
            k, day = rng.randrange(len(self.w.windows)), rng.randrange(self.days)
            sitting, faker = self.closing(day, 30), self.new_person()
            for _ in range(rng.randint(6, 8)):
                done = self.office_time(day)
                at = sitting + timedelta(minutes=rng.uniform(0, 40))
                self.add(
                    k=k,
                    completed=done,
                    person=faker,
                    applicant=self.new_person(),
                    channel="pc",
                    level=level,
                    delay=(at - done).total_seconds(),
                    no_phone=True,
                    comment=None,
                    kind="agent_volume/one ID, 6-8 applicants' cases of a window in 40 min",
                )
        # Coordinated bad ratings from raters sharing nothing but the time and the wording.
        attacks = [
            "窗口人员态度恶劣，故意刁难群众，让我白跑了三趟",
            "这个窗口办事拖拉，工作人员玩手机不理人，强烈投诉",
        ]
        for text_ in attacks:
            hall, t0 = rng.choice(halls), self.office_time(rng.randrange(self.days))
            for j in range(5):
                who = self.new_person()
                self.add(
                    k=rng.choice(self.windows_of_hall(hall)),
                    completed=t0 - timedelta(hours=2),
                    person=who,
                    channel="mobile",
                    level=rng.choice([1, 2]),
                    delay=7200 + rng.uniform(0, 3 * 3600),
                    device=who["device"],
                    ua=who["ua"],
                    comment=text_ + ["", "！", "！！", "。", "，差评"][j],
                    kind="coordinated_bad/second try: sharing only time and near-identical words",
                )

    def second_look_alikes(self) -> None:
        """Honest: agent firms, a genuine closing-time rush, a pad's buffered upload."""
        rng = self.rng
        # Agent firms (代办) filing for clients all month at several windows, no phone.
        for _ in range(6):
            firm = self.new_person()
            places = rng.sample(range(len(self.w.windows)), rng.randint(3, 6))
            for _ in range(rng.randint(10, 16)):
                k = rng.choice(places)
                self.add(
                    k=k,
                    completed=self.office_time(rng.randrange(self.days)),
                    person=firm,
                    applicant=self.new_person(),
                    channel="pc",
                    level=self.level(k),
                    delay=rng.uniform(600, 24 * 3600),
                    no_phone=True,
                )
        # A busy firm: six clients' cases at one window in a morning, rated as they finish.
        firm = self.new_person()
        k, t0 = rng.randrange(len(self.w.windows)), self.office_time(rng.randrange(self.days))
        for _ in range(6):
            self.add(
                k=k,
                completed=t0 + timedelta(minutes=rng.uniform(0, 180)),
                person=firm,
                applicant=self.new_person(),
                channel="pc",
                level=self.level(k),
                delay=rng.uniform(300, 3600),
                no_phone=True,
            )
        # Closing-time rushes of genuine ratings, one to three minutes apart.
        for k in rng.sample(range(len(self.w.windows)), 6):
            day = rng.randrange(self.days)
            at = self.closing(day, -15)
            for _ in range(rng.randint(8, 10)):
                at += timedelta(seconds=rng.uniform(60, 180))
                delay = self.pad_delay()
                self.honest_pad(k, at - timedelta(seconds=delay), delay)
        # A pad offline for 90 minutes: ten ratings given over that time arrive together.
        for k in rng.sample(range(len(self.w.windows)), 3):
            day = rng.randrange(self.days)
            start = self.office_time(day)
            back = start + timedelta(minutes=90)
            for j in range(10):
                given = start + timedelta(minutes=9 * j, seconds=rng.uniform(0, 60))
                delay = self.pad_delay()
                self.honest_pad(
                    k,
                    given - timedelta(seconds=delay),
                    delay,
                    uploaded=back + timedelta(seconds=0.2 * j),
                )

    def honest_pad(
        self, k: int, completed: datetime, delay: float, uploaded: datetime | None = None
    ) -> dict[str, Any]:
        return self.add(
            k=k,
            completed=completed,
            person=self.new_person(),
            channel="pad",
            level=self.level(k),
            delay=delay,
            uploaded=uploaded,
        )

    def finish(self) -> Data:
        """Ids in arrival order (as intake would give them), and the truth by id."""
        self.data.rows.sort(key=lambda r: r["received_at"])
        perfect = {self.w.windows[k]["id"] for k in self.perfect_windows}
        for i, row in enumerate(self.data.rows, start=1):
            row["id"] = i
            kind = row.pop("_kind")
            if row["window_id"] in perfect and kind is None:  # nothing but 非常满意 there
                row["level"], kind = 5, "perfect_unit/a window with only 非常满意"
                if row["comment"] and row["comment"].split("，")[0] in COMPLAINTS:
                    row["comment"] = None
            if kind:
                self.data.truth[i] = kind.split("/", 1)[0]
                self.data.variant[i] = kind.split("/", 1)[1]
        for link in self.data.links:
            link["evaluation_id"] = None
        by_case = {r["case_id"]: r["id"] for r in self.data.rows}
        for link in self.data.links:
            link["evaluation_id"] = by_case[link["case_id"]]
        return self.data


# --- the database --------------------------------------------------------------------------------


async def seed_world(sessionmaker) -> World:
    """Counties, halls, windows, staff and items through the services (paths and all)."""
    w = World()
    admin = harness.ADMIN
    async with sessionmaker() as db:
        for code, name, parent in [("330000", "浙江省", None), ("330100", "杭州市", "330000")] + [
            (c, f"县区{c}", "330100") for c in COUNTIES
        ]:
            await org_service.create_region(
                db=db,
                actor=admin,
                data=org_schemas.RegionCreate(code=code, name=name, parent_code=parent),
            )
        await org_service.create_org(
            db=db,
            actor=admin,
            data=org_schemas.OrgCreate(
                code="OFFICE", name="政务服务管理办公室", kind="department", region_code="330000"
            ),
        )
        for c in COUNTIES:
            for h in range(4):
                hall = f"H{c}-{h}"
                await org_service.create_org(
                    db=db,
                    actor=admin,
                    data=org_schemas.OrgCreate(
                        code=hall,
                        name=f"{c}第{h + 1}服务大厅",
                        kind="hall",
                        parent_code="OFFICE",
                        region_code=c,
                    ),
                )
                await org_service.create_item(
                    db=db,
                    actor=admin,
                    data=org_schemas.ItemCreate(code=f"IT-{hall}", name="综合事项", org_code=hall),
                )
                for x in range(5):
                    win = f"{hall}-W{x}"
                    await org_service.create_org(
                        db=db,
                        actor=admin,
                        data=org_schemas.OrgCreate(
                            code=win,
                            name=f"{x + 1}号窗口",
                            kind="window",
                            parent_code=hall,
                            region_code=c,
                        ),
                    )
                    for s in range(2):
                        await org_service.create_staff(
                            db=db,
                            actor=admin,
                            data=org_schemas.StaffCreate(
                                staff_no=f"S-{win}-{s}", name="员工", org_code=win
                            ),
                        )
        await db.commit()
        orgs = {
            code: (oid, parent, region)
            for code, oid, parent, region in await db.execute(
                select(Org.code, Org.id, Org.parent_id, Org.region_code)
            )
        }
        items = dict((await db.execute(select(Item.org_id, Item.id))).all())
        w.client_id = (
            await db.execute(
                insert(ApiClient)
                .values(
                    name="bench-pads",
                    key_prefix="bench",
                    key_hash="0" * 64,
                    org_id=orgs["OFFICE"][0],
                    channels=["pad", "terminal", "mobile", "pc", "sms", "phone"],
                )
                .returning(ApiClient.id)
            )
        ).scalar_one()
        await db.commit()
        staff = (await db.execute(select(Staff.id, Staff.staff_no, Staff.org_id))).all()
    for code, (oid, parent, region) in sorted(orgs.items()):
        if code.count("-W") == 1:
            k = len(w.windows)
            w.windows.append(
                {
                    "id": oid,
                    "hall_id": parent,
                    "region": region,
                    "item_id": items[parent],
                    "wifi": f"172.16.{parent % 256}.1",
                    "staff": [sid for sid, _no, org in staff if org == oid],
                }
            )
            w.halls.setdefault(parent, {"code": code.rsplit("-W", 1)[0]})
            for sid, no, org in staff:
                if org == oid:
                    w.staff[sid] = {"no": no, "window_k": k, "hall_id": parent}
    return w


async def store(sessionmaker, data: Data) -> None:
    """Cases, links and ratings in bulk, with the ids the generator gave them."""
    async with sessionmaker() as db:
        for table, rows in ((Case, data.cases), (Invitation, data.links)):
            for i in range(0, len(rows), 2000):
                await db.execute(insert(table), rows[i : i + 2000])
        for i in range(0, len(data.rows), 2000):
            await db.execute(insert(Evaluation), data.rows[i : i + 2000])
        if db.bind.dialect.name == "postgresql":  # explicit ids: move the sequences on
            for table in ("service_case", "invitation", "evaluation"):
                await db.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
        for staff_no, cert, phone in data.identities:
            await integrity_service.register_staff_identity(
                db=db, actor=harness.ADMIN, keys=KEYS, staff_no=staff_no, cert_no=cert, phone=phone
            )
        await db.commit()


async def replay(
    sessionmaker, data: Data, *, pass_hours: float, days: int, thresholds: detectors.Thresholds
) -> dict[str, float]:
    """Every rating through the intake hook in arrival order; the batch pass on schedule."""
    guard = detectors.IntakeGuard(keys=KEYS, thresholds=thresholds)
    refusals = sorted(data.refusals)
    timing = {"intake": 0.0, "batch": 0.0}
    next_pass = START.astimezone(UTC) + timedelta(hours=pass_hours)
    end = START.astimezone(UTC) + timedelta(days=days + 1)
    rows = iter(data.rows)
    row = next(rows, None)
    while next_pass <= end + timedelta(hours=pass_hours):
        async with sessionmaker() as db:
            t0 = time.perf_counter()
            while row is not None and row["received_at"] < next_pass:
                while refusals and refusals[0][0] <= row["received_at"]:
                    at, code, ip, ua = refusals.pop(0)
                    await guard.note_refusal(code=code, source_ip=ip, user_agent=ua, at=at)
                await guard.on_stored(db, [row])
                row = next(rows, None)
            await db.commit()
            timing["intake"] += time.perf_counter() - t0
        async with sessionmaker() as db:
            t0 = time.perf_counter()
            report = await jobs.run_batch(db, keys=KEYS, now=next_pass, thresholds=thresholds)
            await db.commit()
            timing["batch"] += time.perf_counter() - t0
            if report.failed:
                raise RuntimeError(f"checks failed: {report.failed}")
        next_pass += timedelta(hours=pass_hours)
    return timing


async def hook_cost(sessionmaker, data: Data) -> tuple[float, float]:
    """CPU of the intake checks per rating, without the database: (µs with every staff
    identity on record, µs with none). Link ratings are left out (they add one SELECT)."""
    out = []
    for with_identities in (True, False):
        guard = detectors.IntakeGuard(keys=KEYS)
        if with_identities:
            async with sessionmaker() as db:
                await guard.identities.get(db)
        guard.identities.ttl = float("inf")
        guard.identities._expires = float("inf")
        rows = [r for r in data.rows if not r["invitation_id"]]
        t0 = time.perf_counter()
        for row in rows:
            await guard.findings_for(None, [row])  # type: ignore[arg-type]
        out.append((time.perf_counter() - t0) / len(rows) * 1e6)
    return out[0], out[1]


async def measure(sessionmaker, data: Data, show_false: int = 0) -> list[dict[str, Any]]:
    """Precision and recall per check from the flags in the database."""
    async with sessionmaker() as db:
        flags = (
            await db.execute(
                select(
                    IntegrityFlag.evaluation_id,
                    IntegrityFlag.check_name,
                    IntegrityFlag.stage,
                    IntegrityFlag.reason,
                )
            )
        ).all()
    by_check: dict[str, set[int]] = defaultdict(set)
    at_intake: dict[str, set[int]] = defaultdict(set)
    false_alarms: dict[str, Counter] = defaultdict(Counter)
    for eid, check, stage, reason in flags:
        by_check[check].add(eid)
        if eid not in data.truth:
            false_alarms[check][reason] += 1
        if stage == "intake":
            at_intake[check].add(eid)
    planted: dict[str, set[int]] = defaultdict(set)
    for eid, kind in data.truth.items():
        planted[kind].add(eid)
    out = []
    for kind in KINDS:
        flagged, truth = by_check[kind], planted[kind]
        hit = flagged & truth
        out.append(
            {
                "check": kind,
                "planted": len(truth),
                "flagged": len(flagged),
                "correct": len(hit),
                "precision": len(hit) / len(flagged) if flagged else float("nan"),
                "precision_any": (
                    len(flagged & set(data.truth)) / len(flagged) if flagged else float("nan")
                ),
                "recall": len(hit) / len(truth) if truth else float("nan"),
                "recall_intake": (
                    len(at_intake[kind] & truth) / len(truth)
                    if truth and kind in ("staff_self_rating", "source_burst", "invitation_misuse")
                    else None
                ),
            }
        )
    for check, reasons in false_alarms.items():
        for reason, n in reasons.most_common(show_false):
            print(f"  false alarm ({check}, {n}×): {reason}")
    held = {eid for eid, *_ in flags}
    variants: dict[tuple[str, str], list[int]] = defaultdict(list)
    for eid, variant in data.variant.items():
        variants[(data.truth[eid], variant)].append(eid)
    print("recall by way of abuse (flagged by the check of its kind):")
    for (kind, variant), ids in sorted(variants.items()):
        got = sum(eid in by_check[kind] for eid in ids)
        print(f"  {kind:18} {got:4}/{len(ids):<4} {got / len(ids):6.1%}  {variant}")
    print()
    honest = len(data.rows) - len(data.truth)
    out.append(
        {
            "check": "all",
            "planted": len(data.truth),
            "flagged": len(held),
            "correct": len(held & set(data.truth)),
            "precision": len(held & set(data.truth)) / len(held) if held else float("nan"),
            "precision_any": float("nan"),
            "recall": len(held & set(data.truth)) / len(data.truth),
            "recall_intake": None,
            "honest": honest,
            "honest_held": len(held - set(data.truth)),
        }
    )
    return out


def report(results: list[dict[str, Any]], *, markdown: bool) -> None:
    """The table, as text or as Markdown for docs/detection.md."""
    head = [
        "check",
        "planted",
        "flagged",
        "correct",
        "precision",
        "precision (any abuse)",
        "recall",
        "recall at intake alone",
    ]

    def pct(x):
        return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"

    lines = [
        [
            r["check"],
            str(r["planted"]),
            str(r["flagged"]),
            str(r["correct"]),
            pct(r["precision"]),
            pct(r["precision_any"]),
            pct(r["recall"]),
            pct(r["recall_intake"]),
        ]
        for r in results
    ]
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
        print("  ".join(h.ljust(wd) for h, wd in zip(head, widths, strict=True)))
        for line in lines:
            print("  ".join(c.ljust(wd) for c, wd in zip(line, widths, strict=True)))
    total = results[-1]
    print(
        f"\nhonest ratings held for review: {total['honest_held']} of {total['honest']} "
        f"({total['honest_held'] / total['honest']:.2%})"
    )


async def intake_ab(args: argparse.Namespace) -> int:
    """The intake service path (validate, resolve the case, insert, every hook; one session
    and commit per rating, as a request) with and without the intake checks, in alternating
    blocks: CPU time of this process per rating, and wall time."""
    from haochaping.app import create_app, startup
    from haochaping.appeals.register import make_register_hook
    from haochaping.core.auth import Principal
    from haochaping.evaluations import hooks, schemas
    from haochaping.evaluations import service as evaluation_service
    from haochaping.workorders.intake import make_on_stored

    blocks, per_block = args.intake_ab, 400
    pg_name, folder = None, None
    if args.postgres:
        pg_name, url = await harness.create_pg_database("hcp_detect_ab")
    else:
        folder, url = harness.sqlite_url()
    try:
        await asyncio.to_thread(harness.migrate, url)
        world = await harness.seed(url, (blocks + 1) * per_block * 4 + 10)
        app = create_app(harness.settings_for(url))
        await startup(app)
        try:
            state = app.state
            variants = {
                "with checks": state.rules,
                "without": dataclasses.replace(
                    state.rules,
                    on_stored=hooks.compose(make_on_stored(state), make_register_hook(state)),
                ),
            }
            actor = Principal(
                kind="client",
                id=world.client_id,
                name="bench",
                org_id=world.org_id,
                org_path="/OFFICE/",
                channels=frozenset(harness.CASE_CHANNELS),
            )
            cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
            wall: dict[tuple[str, str], list[float]] = defaultdict(list)
            k = 0
            for path in ("single", "batch"):
                for b in range(blocks + 1):
                    order = list(variants) if b % 2 else list(reversed(variants))
                    for name in order:
                        bodies = [harness.rating_body(world, k + i, "ab") for i in range(per_block)]
                        k += per_block
                        c0, w0 = time.process_time(), time.perf_counter()
                        if path == "single":  # one request, session and commit per rating
                            for body in bodies:
                                async with state.sessionmaker() as db:
                                    await evaluation_service.submit(
                                        db=db,
                                        actor=actor,
                                        data=schemas.EvaluationCreate.model_validate(body),
                                        rules=variants[name],
                                        source=evaluation_service.Source(ip="127.0.0.1"),
                                    )
                                    await db.commit()
                        else:  # the batch route's service: all of them in one call
                            async with state.sessionmaker() as db:
                                await evaluation_service.submit_batch(
                                    db=db,
                                    actor=actor,
                                    items=bodies,
                                    rules=variants[name],
                                    source=evaluation_service.Source(ip="127.0.0.1"),
                                )
                                await db.commit()
                        if b:  # the first round warms caches and is not counted
                            cpu[(path, name)].append((time.process_time() - c0) / per_block * 1e6)
                            wall[(path, name)].append((time.perf_counter() - w0) / per_block * 1e6)
        finally:
            await app.state.engine.dispose()
        print(
            f"intake service path, {blocks} alternating blocks of {per_block} ratings per "
            f"variant ({'PostgreSQL' if args.postgres else 'SQLite'}), median per rating:"
        )
        for path in ("single", "batch"):
            for name in variants:
                print(
                    f"  {path:6} {name:12} CPU {statistics.median(cpu[(path, name)]):6.0f} µs"
                    f"  wall {statistics.median(wall[(path, name)]):6.0f} µs  (CPU blocks: "
                    + " ".join(f"{x:.0f}" for x in cpu[(path, name)])
                    + ")"
                )
            ratio = statistics.median(cpu[(path, "with checks")]) / statistics.median(
                cpu[(path, "without")]
            )
            print(f"  {path}: with checks / without (CPU) {ratio:.3f}")
        return 0
    finally:
        if pg_name:
            with contextlib.suppress(Exception):
                await harness.drop_pg_database(pg_name)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


async def main(args: argparse.Namespace) -> int:
    """Generate, store, replay, measure, print; the database is removed afterwards."""
    if args.intake_ab:
        return await intake_ab(args)
    pg_name = folder = None
    if args.postgres:
        pg_name, url = await harness.create_pg_database("hcp_detect")
    else:
        folder, url = harness.sqlite_url()
    try:
        t0 = time.perf_counter()
        await asyncio.to_thread(harness.migrate, url)
        engine = make_engine(harness.settings_for(url))
        sessionmaker = make_sessionmaker(engine)
        try:
            world = await seed_world(sessionmaker)
            data = Generator(world, seed=args.seed, days=args.days, per_day=args.per_day).generate()
            await store(sessionmaker, data)
            kinds = Counter(data.truth.values())
            print(
                f"data set: {len(data.rows):,} ratings over {args.days} days, "
                f"{len(world.windows)} windows, {len(world.staff)} staff; planted "
                + ", ".join(f"{k} {kinds[k]}" for k in KINDS)
                + f"; bad ratings {sum(r['level'] <= 2 for r in data.rows) / len(data.rows):.1%}"
                f" ({engine.dialect.name}, built in {time.perf_counter() - t0:.1f} s)"
            )
            if args.set:
                print("thresholds changed: " + ", ".join(args.set))
            timing = await replay(
                sessionmaker,
                data,
                pass_hours=args.pass_hours,
                days=args.days,
                thresholds=args.thresholds,
            )
            with_ids, without_ids = await hook_cost(sessionmaker, data)
            replay_us = timing["intake"] / len(data.rows) * 1e6
            print(
                f"intake checks: {with_ids:.0f} µs CPU per rating with {len(world.staff)} "
                f"staff identities on record, {without_ids:.0f} µs with none (in process, "
                f"no database); replay with flag writes {replay_us:.0f} µs per rating; "
                f"batch passes every {args.pass_hours:g} h: {timing['batch']:.1f} s in all\n"
            )
            report(await measure(sessionmaker, data, args.show_false), markdown=args.markdown)
        finally:
            await engine.dispose()
        return 0
    finally:
        if pg_name:
            with contextlib.suppress(Exception):
                await harness.drop_pg_database(pg_name)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    """The command line of the benchmark."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--per-day", type=int, default=1500, help="honest ratings a day")
    p.add_argument(
        "--pass-hours", type=float, default=6.0, help="simulated hours between batch passes"
    )
    p.add_argument(
        "--postgres",
        action="store_true",
        help="use a fresh PostgreSQL database (postgres@127.0.0.1:5432), not SQLite",
    )
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument(
        "--intake-ab",
        type=int,
        default=0,
        metavar="BLOCKS",
        help="instead: time the intake service path with and without the intake "
        "checks, in BLOCKS alternating blocks of 400 ratings each",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change a threshold of the checks (detectors.Thresholds), e.g. perfect_max_p=1e-5",
    )
    p.add_argument(
        "--show-false",
        type=int,
        default=0,
        metavar="N",
        help="print the N commonest reasons of false alarms per check",
    )
    args = p.parse_args()
    fields = {f.name: f.type for f in dataclasses.fields(detectors.Thresholds)}
    changes = {}
    for item in args.set:
        name, _, value = item.partition("=")
        if name not in fields:
            p.error(f"no threshold {name!r}; known: {', '.join(fields)}")
        kind = str(fields[name])
        changes[name] = (
            tuple(float(v) for v in value.split(","))
            if kind.startswith("tuple")
            else float(value)
            if kind in ("float", str(float))
            else int(value)
        )
    args.thresholds = detectors.Thresholds(**changes)
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
