"""Generate the demo province as plain rows: reference data, then a year of cases and ratings.

No database here: `build_reference` returns lists of row dicts with their ids already
assigned, and `generate_activity` yields chunks of case and evaluation rows in time order, so
the loader can write them with bulk inserts. One `random.Random` drives everything, so a seed
gives the same province every time.

The texture follows what published figures show: about 99% good ratings; bad ones clustered in
a few windows (one member of staff in each, usually) and a few items with overdue or confusing
procedures; reasons and comments that fit the level and the cause; more bad ratings from
SMS and hotline callbacks than from the window pad; fewer cases on weekends and holidays.
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from haochaping.demo import codes, vocab
from haochaping.evaluations.tags import NATIONAL_VERSION

CHINA = timezone(timedelta(hours=8), "CST")
DAY = 86_400.0

ROOT_NAME = "示范省政务服务管理办公室"
# The root org's credit code identifies the demo: a second load finds it and stops.
ROOT_CODE = codes.credit_code("11", vocab.PROVINCE[0], "99000000")

# Share of ratings per channel, by service mode.
OFFLINE_CHANNELS = {
    "pad": 0.52,
    "qrcode": 0.2,
    "sms": 0.13,
    "phone": 0.06,
    "terminal": 0.05,
    "mobile": 0.04,
}
ONLINE_CHANNELS = {"mobile": 0.45, "pc": 0.33, "sms": 0.14, "phone": 0.08}
# People rate more harshly away from the window, where the staff cannot see them.
CHANNEL_BAD = {
    "pad": 0.45,
    "terminal": 0.8,
    "qrcode": 0.9,
    "mobile": 1.2,
    "pc": 1.3,
    "sms": 1.8,
    "phone": 2.2,
}
BASE_BAD = 0.0042
PROBLEM_WINDOW_BAD = 16.0
PROBLEM_STAFF_BAD = 2.0
PROBLEM_ITEM_BAD = 5.0
OVERDUE_BAD = 5.0
RATED_OFFLINE, RATED_ONLINE, RATED_IN_PROGRESS = 0.8, 0.63, 0.04
EVALUATION_WINDOW_DAYS = 29  # a little inside the default 30-day evaluation window

# Reason weights by level and by cause: "any" always applies, the others when the cause holds.
REASON_WEIGHTS: dict[int, dict[str, dict[str, float]]] = {
    5: {
        "any": {"517": 4, "510": 2, "512": 1, "516": 1},
        "offline": {"517": 4, "510": 2, "511": 1, "515": 1},
        "online": {"513": 5, "514": 3},
    },
    4: {
        "any": {"413": 3, "411": 1, "408": 1, "409": 1},
        "offline": {"413": 3, "411": 2, "410": 1},
        "online": {"406": 2, "407": 2, "410": 2},
        "terminal": {"412": 6},
    },
    3: {
        "any": {"314": 4, "309": 2, "310": 1, "311": 2, "307": 1, "308": 1, "313": 1},
        "online": {"312": 2},
    },
    2: {
        "any": {"207": 1, "208": 1, "210": 1, "213": 1, "214": 1},
        "staff": {"213": 5, "214": 6},
        "item": {"207": 3, "208": 4, "210": 4},
        "overdue": {"209": 12},
        "online": {"211": 3, "212": 2},
    },
    1: {
        "any": {"108": 1, "109": 1, "113": 1, "114": 1, "115": 1},
        "staff": {"115": 8, "113": 2},
        "item": {"108": 2, "109": 4, "111": 1, "113": 3, "114": 3},
        "overdue": {"110": 12},
        "online": {"112": 3},
    },
}


@dataclass
class WindowInfo:
    """A window with what case generation needs: its hall, staff and troubles."""

    id: int
    code: str
    hall_id: int
    region_code: str
    line: vocab.WindowLine
    traffic: float
    staff_ids: list[int] = field(default_factory=list)
    staff_cum: list[float] = field(default_factory=list)
    problem: bool = False
    problem_staff: int | None = None


@dataclass
class ItemInfo:
    """An item with the windows that serve it and how likely it is to go wrong."""

    id: int
    code: str
    org_id: int
    region_code: str
    tmpl: vocab.ItemTemplate
    weight: float
    windows: list[WindowInfo] = field(default_factory=list)
    window_cum: list[float] = field(default_factory=list)
    problem: bool = False


@dataclass
class Accounts:
    """The orgs (by code) and the staff member that the demo accounts belong to."""

    office_code: str = ""
    office_name: str = ""
    hall_code: str = ""
    hall_name: str = ""
    window_code: str = ""
    window_name: str = ""
    staff_name: str = ""


@dataclass
class Reference:
    """The demo province's reference data as rows, plus lookups for case generation."""

    regions: list[dict[str, Any]] = field(default_factory=list)
    orgs: list[dict[str, Any]] = field(default_factory=list)
    staff: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    windows: list[WindowInfo] = field(default_factory=list)
    item_infos: list[ItemInfo] = field(default_factory=list)
    halls: list[dict[str, Any]] = field(default_factory=list)
    accounts: Accounts = field(default_factory=Accounts)


@dataclass
class ActivityStats:
    """Counts kept while generating cases and ratings, for the summary."""

    cases: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    levels: Counter[int] = field(default_factory=Counter)

    @property
    def ratings(self) -> int:
        return sum(self.levels.values())

    @property
    def bad(self) -> int:
        return self.levels[1] + self.levels[2]


# --- people ------------------------------------------------------------------------------

_BORN_LAST = date(2006, 12, 31).toordinal()
_SURNAME_CUM = list(itertools.accumulate(1.0 / (r + 4) for r in range(len(vocab.SURNAMES))))


def person_name(rng: random.Random, male: bool) -> str:
    """A plausible Chinese personal name."""
    if rng.random() < 0.005:
        surname = rng.choice(vocab.COMPOUND_SURNAMES)
    else:
        surname = vocab.SURNAMES[bisect(_SURNAME_CUM, rng.random() * _SURNAME_CUM[-1])]
    chars = vocab.MALE_CHARS if male else vocab.FEMALE_CHARS
    given = rng.choice(chars) + (rng.choice(chars) if rng.random() < 0.75 else "")
    return surname + given


class Applicants:
    """Pools of applicants (people, companies, institutions) who come back now and then."""

    def __init__(
        self, rng: random.Random, size: int, county_codes: list[str], cities: list[str]
    ) -> None:
        self.rng = rng
        self.people = [self._person(county_codes) for _ in range(size)]
        self.companies = [self._company(county_codes, cities) for _ in range(max(200, size // 6))]
        self.institutions = [
            self._body(county_codes, cities, "12", "institution", vocab.INSTITUTIONS)
            for _ in range(60)
        ]
        self.social = [
            self._body(county_codes, cities, "51", "social_org", vocab.SOCIAL_ORGS)
            for _ in range(40)
        ]

    def _person(self, county_codes: list[str]) -> tuple[str, ...]:
        rng = self.rng
        male = rng.random() < 0.5
        name = person_name(rng, male)
        r = rng.random()
        if r < 0.98:
            born = date.fromordinal(_BORN_LAST - int(60 * 365.25 * rng.random() ** 1.3))
            seq = rng.randrange(500) * 2 + (1 if male else 0)
            cert_type, cert_no = "id_card", codes.id_card_no(rng.choice(county_codes), born, seq)
        elif r < 0.99:
            cert_type, cert_no = "passport", f"E{rng.randrange(10**8):08d}"
        elif r < 0.995:
            cert_type, cert_no = "hk_macao_pass", f"H{rng.randrange(10**8):08d}"
        else:
            cert_type, cert_no = "taiwan_pass", f"{rng.randrange(10**8):08d}"
        return ("person", name, cert_type, cert_no, codes.mobile(rng))

    def _credit(self, kind: str, county_codes: list[str]) -> str:
        body = "".join(self.rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
        return codes.credit_code(kind, self.rng.choice(county_codes), body)

    def _company(self, county_codes: list[str], cities: list[str]) -> tuple[str, ...]:
        rng = self.rng
        brand = rng.choice(vocab.COMPANY_BRANDS)
        if rng.random() < 0.6:
            brand = "".join(
                rng.sample(
                    "恒华鑫博瑞宏金嘉众天汇康永锦安云智绿新德盛海星润和联百远茂"
                    "信达源丰图诚禾成通泰兴程捷帆创航",
                    2,
                )
            )
        name = (
            rng.choice(cities)[:-1]
            + brand
            + rng.choice(vocab.COMPANY_TRADES)
            + rng.choice(vocab.COMPANY_FORMS)
        )
        return (
            "enterprise",
            name,
            "credit_code",
            self._credit("91", county_codes),
            codes.mobile(self.rng),
        )

    def _body(
        self, county_codes: list[str], cities: list[str], kind: str, type_: str, names: list[str]
    ) -> tuple[str, ...]:
        name = self.rng.choice(cities) + self.rng.choice(names)
        return (
            type_,
            name,
            "credit_code",
            self._credit(kind, county_codes),
            codes.mobile(self.rng),
        )

    def pick(self, business: bool) -> tuple[str, ...]:
        """An applicant for a case; companies dominate the business departments."""
        rng = self.rng
        r = rng.random()
        if r < (0.6 if business else 0.04):
            pool = self.companies
        elif r < (0.62 if business else 0.055):
            pool = self.institutions
        elif r < (0.63 if business else 0.065):
            pool = self.social
        else:
            pool = self.people
        # A skewed pick: some applicants (agents, busy companies) come again and again.
        return pool[int(len(pool) * rng.random() ** 1.25)]


# --- reference data ----------------------------------------------------------------------


def _region(code: str, name: str, parent: dict[str, Any] | None, at: datetime) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "parent_code": parent["code"] if parent else None,
        "tier": parent["tier"] + 1 if parent else 1,
        "path": f"{parent['path'] if parent else '/'}{code}/",
        "created_at": at,
    }


def _top_k(rng: random.Random, population: list[Any], weights: list[float], k: int) -> list[Any]:
    """A weighted sample without replacement (Efraimidis-Spirakis keys)."""
    keyed = sorted(
        zip(population, weights, strict=True),
        key=lambda pw: rng.random() ** (1.0 / pw[1]) if pw[1] > 0 else 0.0,
        reverse=True,
    )
    return [p for p, _ in keyed[:k]]


def build_reference(
    rng: random.Random, *, now: datetime, org_id: int, staff_id: int, item_id: int
) -> Reference:
    """The demo province: regions, offices, departments, halls, windows, staff and items;
    ids are assigned from the given first free ids."""
    ref = Reference()
    at = now - timedelta(days=400)
    org_ids, staff_ids, item_ids = (
        itertools.count(org_id),
        itertools.count(staff_id),
        itertools.count(item_id),
    )
    dept_seq = itertools.count(1)
    staff_seq: Counter[str] = Counter()
    windows_by_hall: dict[int, list[WindowInfo]] = {}

    def add_org(
        code: str, name: str, kind: str, parent: dict[str, Any] | None, region: str
    ) -> dict[str, Any]:
        row = {
            "id": next(org_ids),
            "code": code,
            "name": name,
            "kind": kind,
            "parent_id": parent["id"] if parent else None,
            "region_code": region,
            "path": f"{parent['path'] if parent else '/'}{code}/",
            "created_at": at,
        }
        ref.orgs.append(row)
        return row

    def add_department(
        key: str, level: str, place: str, city: str, parent: dict[str, Any], region: str
    ) -> dict[str, Any]:
        dept = vocab.DEPARTMENTS[key]
        code = codes.credit_code("11", region, f"{99000000 + next(dept_seq):08d}")
        return add_org(
            code, vocab.department_name(dept, level, place, city), "department", parent, region
        )

    def add_hall(
        name: str, layout: str, parent: dict[str, Any], region: str, busy: float
    ) -> dict[str, Any]:
        n = sum(1 for h in ref.halls if h["region_code"] == region) + 1
        hall = add_org(f"{region}-DT{n:02d}", name, "hall", parent, region)
        ref.halls.append(hall)
        windows: list[WindowInfo] = []
        numbers: Counter[str] = Counter()
        for label, count in vocab.HALL_LAYOUTS[layout]:
            line = vocab.LINES[label]
            for _ in range(count):
                numbers[label] += 1
                w_name = f"{label}{numbers[label]}号窗口" if line.numbered else f"{label}窗口"
                w = add_org(
                    f"{hall['code']}-CK{len(windows) + 1:02d}", w_name, "window", hall, region
                )
                info = WindowInfo(
                    w["id"],
                    w["code"],
                    hall["id"],
                    region,
                    line,
                    line.traffic * busy * rng.uniform(0.7, 1.3),
                )
                for _ in range(rng.choice((2, 3, 3, 4) if line.numbered else (2,))):
                    staff_seq[region[:6]] += 1
                    row = {
                        "id": next(staff_ids),
                        "staff_no": f"{region[:6]}{staff_seq[region[:6]]:04d}",
                        "name": person_name(rng, rng.random() < 0.45),
                        "org_id": w["id"],
                        "created_at": at,
                    }
                    ref.staff.append(row)
                    info.staff_ids.append(row["id"])
                info.staff_cum = list(
                    itertools.accumulate(rng.uniform(0.5, 1.5) for _ in info.staff_ids)
                )
                windows.append(info)
        ref.windows.extend(windows)
        windows_by_hall[hall["id"]] = windows
        return hall

    def add_items(
        level: str,
        depts: dict[str, dict[str, Any]],
        region: str,
        busy: float,
        halls: list[tuple[dict[str, Any], bool]],
    ) -> None:
        for t_no, tmpl in enumerate(vocab.ITEMS, start=1):
            if tmpl.dept not in depts or not _implements(tmpl, level):
                continue
            dept_org = depts[tmpl.dept]
            # Demo basic code: kind of power, department, catalogue entry (12 digits).
            dept_no = list(vocab.DEPARTMENTS).index(tmpl.dept) + 1
            basic = f"{vocab.ITEM_KINDS[tmpl.kind]}{dept_no:03d}{t_no:03d}0000"
            row = {
                "id": next(item_ids),
                "code": f"{dept_org['code']}{basic}",
                "basic_code": basic,
                "name": tmpl.name,
                "org_id": dept_org["id"],
                "created_at": at,
            }
            ref.items.append(row)
            info = ItemInfo(
                row["id"], row["code"], dept_org["id"], region, tmpl, tmpl.weight * busy
            )
            weights = []
            for hall, town in halls:
                if town and "T" not in tmpl.levels:
                    continue
                for w in windows_by_hall[hall["id"]]:
                    if w.line.depts is None or tmpl.dept in w.line.depts:
                        info.windows.append(w)
                        specialised = w.line.depts is not None
                        weights.append(w.traffic * (2.5 if specialised else 1.0))
            info.window_cum = list(itertools.accumulate(weights))
            ref.item_infos.append(info)

    code, name = vocab.PROVINCE
    province = _region(code, name, None, at)
    ref.regions.append(province)
    root = add_org(ROOT_CODE, ROOT_NAME, "department", None, code)
    p_depts = {
        k: add_department(k, "province", name, name, root, code)
        for k in _departments_at("province")
    }
    p_hall = add_hall(f"{name}政务服务中心", "province", root, code, busy=0.8)
    add_items("province", p_depts, code, 0.6, [(p_hall, False)])

    for c_no, (c_code, c_name, counties) in enumerate(vocab.CITIES):
        city = _region(c_code, c_name, province, at)
        ref.regions.append(city)
        c_busy = 1.5 if c_no == 0 else rng.uniform(0.8, 1.1)
        office = add_org(
            codes.credit_code("11", c_code, f"{99000000 + next(dept_seq):08d}"),
            f"{c_name}政务服务管理办公室",
            "department",
            root,
            c_code,
        )
        c_depts = {
            k: add_department(k, "city", c_name, c_name, office, c_code)
            for k in _departments_at("city")
        }
        main = add_hall(f"{c_name}政务服务中心", "city", office, c_code, c_busy * 1.3)
        estate = add_hall(f"{c_name}不动产登记交易中心", "estate", office, c_code, c_busy)
        add_items("city", c_depts, c_code, c_busy, [(main, False), (estate, False)])
        if c_no == 0:
            main_windows = windows_by_hall[main["id"]]
            ref.accounts = Accounts(
                office["code"], office["name"], main["code"], main["name"], main_windows[0].code, ""
            )
        for k_code, k_name, towns in counties:
            county = _region(k_code, k_name, city, at)
            ref.regions.append(county)
            k_busy = c_busy * rng.uniform(0.6, 1.3)
            k_office = add_org(
                codes.credit_code("11", k_code, f"{99000000 + next(dept_seq):08d}"),
                f"{k_name}政务服务管理办公室",
                "department",
                office,
                k_code,
            )
            k_depts = {
                k: add_department(k, "county", k_name, c_name, k_office, k_code)
                for k in _departments_at("county")
            }
            halls = [(add_hall(f"{k_name}政务服务中心", "county", k_office, k_code, k_busy), False)]
            for t_no, t_name in enumerate(towns, start=1):
                t_code = f"{k_code}{t_no:03d}"
                ref.regions.append(_region(t_code, t_name, county, at))
                halls.append(
                    (
                        add_hall(
                            f"{t_name}便民服务中心",
                            "town",
                            k_office,
                            t_code,
                            k_busy * rng.uniform(0.25, 0.45),
                        ),
                        True,
                    )
                )
            add_items("county", k_depts, k_code, k_busy * 0.8, halls)

    _mark_problems(rng, ref)
    first = next(w for w in ref.windows if w.code == ref.accounts.window_code)
    ref.accounts.window_name = ref.accounts.hall_name + next(
        o["name"] for o in ref.orgs if o["id"] == first.id
    )
    ref.accounts.staff_name = next(s["name"] for s in ref.staff if s["id"] == first.staff_ids[0])
    return ref


def _implements(tmpl: vocab.ItemTemplate, level: str) -> bool:
    """Which templates a level implements: counties leave the rare city-level ones to the city."""
    if level == "province":
        return "P" in tmpl.levels
    if level == "city":
        return "C" in tmpl.levels
    return "X" in tmpl.levels and (tmpl.weight >= 3 or "T" in tmpl.levels or "C" not in tmpl.levels)


def _departments_at(level: str) -> list[str]:
    return [
        key
        for key, dept in vocab.DEPARTMENTS.items()
        if (level != "province" or dept.province)
        and any(t.dept == key and _implements(t, level) for t in vocab.ITEMS)
    ]


def _mark_problems(rng: random.Random, ref: Reference) -> None:
    """A few busy windows (usually one person in each) and a few items cause most bad reviews."""
    counted = [w for w in ref.windows if w.line.numbered]
    k = max(3, round(len(ref.windows) * 0.05))
    for w in _top_k(rng, counted, [w.traffic for w in counted], k):
        w.problem = True
        w.problem_staff = rng.choice(w.staff_ids)
    served = [i for i in ref.item_infos if i.windows]
    k = max(3, round(len(ref.item_infos) * 0.025))
    for item in _top_k(rng, served, [i.weight for i in served], k):
        item.problem = True


# --- time ----------------------------------------------------------------------------------


def _holiday(d: date) -> bool:
    """Statutory holidays, roughly (the exact 调休 calendar does not matter for demo volume)."""
    md = (d.month, d.day)
    if md == (1, 1) or (5, 1) <= md <= (5, 5) or (10, 1) <= md <= (10, 7) or (4, 4) <= md <= (4, 6):
        return True
    sf = vocab.SPRING_FESTIVAL.get(d.year)
    if sf is not None:
        start = date(d.year, *sf) - timedelta(days=1)
        return start <= d <= start + timedelta(days=7)
    return False


def _day_weights(today: date, days: int, online: bool) -> list[float]:
    """Relative volume per day back from today (index 0 = today)."""
    weekday = (
        (1.0, 1.0, 1.0, 1.0, 0.95, 0.45, 0.4) if online else (1.15, 1.0, 1.0, 1.0, 0.95, 0.18, 0.03)
    )
    weights = []
    for back in range(days):
        d = today - timedelta(days=back)
        w = weekday[d.weekday()] * (0.85 + 0.3 * (days - back) / days)  # use grows over the year
        if _holiday(d):
            w *= 0.3 if online else 0.03
        weights.append(w)
    return weights


def _quarter_weights(online: bool, saturday: bool = False) -> list[float]:
    """Relative volume per quarter hour of the local day."""
    out = []
    for q in range(96):
        h = q / 4
        if online:
            w = (
                0.08
                if h < 7
                else 0.5
                if h < 8.5
                else 1.0
                if h < 12
                else 0.7
                if h < 14
                else 1.0
                if h < 18
                else 0.8
                if h < 22.5
                else 0.25
            )
        elif saturday:
            w = 1.0 if 9 <= h < 12 else 0.0
        else:
            w = (
                0.0
                if h < 8.5 or h >= 17.5 or 12 <= h < 13.5
                else 1.5
                if 9 <= h < 10.5 or 14.5 <= h < 16
                else 1.0
            )
        out.append(w)
    return out


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_CST = 8 * 3600  # Asia/Shanghai has had no DST since 1991: a fixed offset is exact
_WORKDAY: dict[int, bool] = {}


def _workday(day: int) -> bool:
    """Whether a local day (days since 1970-01-01, a Thursday) is a working day."""
    known = _WORKDAY.get(day)
    if known is None:
        known = _WORKDAY[day] = (day + 3) % 7 < 5 and not _holiday(
            date.fromordinal(_EPOCH_ORDINAL + day)
        )
    return known


def _office_moment(rng: random.Random, ts: float) -> float:
    """A moment in office hours on the same local day, moved off weekends and holidays (when
    promised cases are decided, and inspectors visit)."""
    day = int((ts + _CST) // DAY)
    while not _workday(day):
        day += 1
    return day * DAY - _CST + 9 * 3600 + rng.uniform(0, 8 * 3600)


# --- cases and ratings ---------------------------------------------------------------------


def _cum(weights: dict[str, float]) -> tuple[list[str], list[float]]:
    return list(weights), list(itertools.accumulate(weights.values()))


_REASON_TABLES: dict[tuple[int, tuple[str, ...]], tuple[list[str], list[float]]] = {}


def _reason_table(level: int, causes: tuple[str, ...]) -> tuple[list[str], list[float]]:
    key = (level, causes)
    table = _REASON_TABLES.get(key)
    if table is None:
        weights: Counter[str] = Counter()
        for cause in ("any", *causes):
            weights.update(REASON_WEIGHTS[level].get(cause, {}))
        table = _REASON_TABLES[key] = _cum(dict(weights))
    return table


def _pick_reasons(rng: random.Random, level: int, causes: tuple[str, ...]) -> list[str]:
    """One reason of the level, sometimes two, weighted by what went right or wrong."""
    names, cum = _reason_table(level, causes)
    first = names[bisect(cum, rng.random() * cum[-1])]
    if rng.random() < 0.25:
        second = names[bisect(cum, rng.random() * cum[-1])]
        if second != first:
            return [first, second]
    return [first]


def _content(
    rng: random.Random, level: int, causes: tuple[str, ...]
) -> tuple[list[str], str | None]:
    """Reasons (codes of the rating's own level) and a short comment that fits them."""
    if level <= 2:
        reasons = _pick_reasons(rng, level, causes) if rng.random() < 0.92 else []
        if reasons and rng.random() < 0.2:
            return reasons, None
        pool = vocab.BAD_COMMENTS[reasons[0]] if reasons else vocab.GENERIC_BAD_COMMENTS
        return reasons, rng.choice(pool)
    reasons = _pick_reasons(rng, level, causes) if rng.random() < 0.72 else []
    share = {5: 0.16, 4: 0.25, 3: 0.45}[level]
    return reasons, rng.choice(vocab.GOOD_COMMENTS[level]) if rng.random() < share else None


def _level(rng: random.Random, p_bad: float, troubled: bool, channel: str) -> int:
    r = rng.random()
    if r < p_bad:
        return 1 if rng.random() < 0.35 else 2
    r = rng.random()
    five = 0.72 if troubled else 0.93 if channel == "pad" else 0.86
    return 5 if r < five else 4 if r < five + (0.2 if troubled else 0.105) else 3


def _rating_delay(rng: random.Random, channel: str, online: bool) -> float:
    """Seconds from completion to rating, per channel."""
    if channel == "pad":
        return rng.uniform(3, 90)
    if channel == "terminal":
        return rng.uniform(30, 600)
    if channel == "qrcode":
        return 60 + rng.expovariate(1 / 900)
    if channel == "mobile":
        return rng.expovariate(1 / (10 * 3600 if online else 20 * 3600)) + 300
    if channel == "pc":
        return rng.expovariate(1 / DAY) + 600
    if channel == "sms":
        return rng.uniform(1800, 3 * 3600) + rng.expovariate(1 / 7200)
    return rng.uniform(1, 5) * DAY  # phone: the 12345 callback a few days later (office hours)


def generate_activity(
    rng: random.Random,
    ref: Reference,
    *,
    now: datetime,
    cases: int,
    case_id: int,
    client_id: int | None,
    stats: ActivityStats,
    days: int = 365,
    chunk: int = 5000,
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Cases over the past `days` in time order, with their ratings, in chunks of rows."""
    applicants = Applicants(
        rng,
        max(1000, cases // 4),
        [r["code"] for r in ref.regions if r["tier"] == 3],
        [r["name"] for r in ref.regions if r["tier"] == 2],
    )
    items = ref.item_infos
    item_cum = list(itertools.accumulate(i.weight for i in items))
    today = now.astimezone(CHINA).date()
    midnight0 = datetime(today.year, today.month, today.day, tzinfo=CHINA).astimezone(UTC)
    day_cum = {m: list(itertools.accumulate(_day_weights(today, days, m))) for m in (False, True)}
    q_cum = {m: list(itertools.accumulate(_quarter_weights(m))) for m in (False, True)}
    q_sat = list(itertools.accumulate(_quarter_weights(False, saturday=True)))

    # Draw every case's item, mode and moment first, then walk them in time order.
    drawn: list[tuple[float, int, bool]] = []
    for idx in (bisect(item_cum, rng.random() * item_cum[-1]) for _ in range(cases)):
        item = items[idx]
        online = not item.windows or rng.random() < vocab.DEPARTMENTS[item.tmpl.dept].online_share
        back = bisect(day_cum[online], rng.random() * day_cum[online][-1])
        day_start = midnight0 - timedelta(days=back)
        qc = q_cum[online]
        if not online and (today - timedelta(days=back)).weekday() == 5:
            qc = q_sat
        quarter = bisect(qc, rng.random() * qc[-1])
        ts = day_start.timestamp() + quarter * 900 + rng.uniform(0, 900)
        if ts > now.timestamp():
            ts -= DAY
        drawn.append((ts, idx, online))
    drawn.sort()

    off_channels, on_channels = _cum(OFFLINE_CHANNELS), _cum(ONLINE_CHANNELS)
    now_ts = now.timestamp()
    ymd_cache: dict[int, str] = {}
    case_rows: list[dict[str, Any]] = []
    eval_rows: list[dict[str, Any]] = []
    for n, (ts, idx, online) in enumerate(drawn):
        item = items[idx]
        tmpl = item.tmpl
        window = None
        staff_id = None
        if not online:
            window = item.windows[bisect(item.window_cum, rng.random() * item.window_cum[-1])]
            staff_id = window.staff_ids[
                bisect(window.staff_cum, rng.random() * window.staff_cum[-1])
            ]
        received = ts
        status, accepted, completed, overdue = "completed", None, None, False
        if rng.random() < (0.025 if tmpl.kind == "许可" else 0.01):
            status = "rejected"  # 不予受理: never accepted, so never rated
        elif online and now_ts - received < DAY and rng.random() < 0.5:
            status = "received"  # still in online pre-review (网上预审)
        else:
            accepted = received + (
                rng.uniform(60, 900) if not online else rng.expovariate(1 / (6 * 3600)) + 60
            )
            if tmpl.promise_days:
                span = tmpl.promise_days * 1.4 * DAY * rng.uniform(0.2, 1.0)
                if rng.random() < (0.25 if item.problem else 0.04):
                    span = tmpl.promise_days * 1.4 * DAY * rng.uniform(1.2, 2.5)
                    overdue = True
                completed = max(_office_moment(rng, accepted + span), accepted + 3600)
            elif online:
                completed = accepted + rng.expovariate(1 / 7200) + 120
            else:
                completed = accepted + rng.uniform(300, 2700)
            if accepted > now_ts:
                status, accepted, completed = "received", None, None
            elif completed > now_ts:
                status, completed = "accepted", None
        stats.cases[status] += 1
        org_id = window.hall_id if window else item.org_id
        region = window.region_code if window else item.region_code
        a_type, a_name, a_cert_type, a_cert_no, a_phone = applicants.pick(
            vocab.DEPARTMENTS[tmpl.dept].business
        )
        cid = case_id + n
        day = int((received + _CST) // DAY)
        ymd = ymd_cache.get(day)
        if ymd is None:
            ymd = ymd_cache[day] = date.fromordinal(_EPOCH_ORDINAL + day).strftime("%Y%m%d")
        received_at = datetime.fromtimestamp(received, UTC)
        accepted_at = datetime.fromtimestamp(accepted, UTC) if accepted else None
        completed_at = datetime.fromtimestamp(completed, UTC) if completed else None
        case_rows.append(
            {
                "id": cid,
                "case_no": f"{region[:6]}{ymd}{n + 1:07d}",
                "item_id": item.id,
                "org_id": org_id,
                "window_id": window.id if window else None,
                "staff_id": staff_id,
                "mode": "online" if online else "offline",
                "case_type": "promised" if tmpl.promise_days else "immediate",
                "status": status,
                "applicant_type": a_type,
                "applicant_name": a_name,
                "applicant_cert_type": a_cert_type,
                "applicant_cert_no": a_cert_no,
                "applicant_phone": a_phone,
                "received_at": received_at,
                "accepted_at": accepted_at,
                "completed_at": completed_at,
                "client_id": client_id,
                "created_at": received_at,
                "updated_at": completed_at or accepted_at or received_at,
            }
        )

        # The rating, if the applicant gave one (and has had the time to).
        if status == "completed":
            rate = RATED_ONLINE if online else RATED_OFFLINE
        elif status == "accepted":
            rate = RATED_IN_PROGRESS
        else:
            rate = 0.0
        if rng.random() < rate:
            names, cum = on_channels if online else off_channels
            channel = names[bisect(cum, rng.random() * cum[-1])]
            if completed is not None:
                evaluated = completed + min(
                    _rating_delay(rng, channel, online), EVALUATION_WINDOW_DAYS * DAY
                )
                if channel == "phone":
                    evaluated = _office_moment(rng, evaluated)
            else:
                channel = "mobile" if channel not in {"pc", "mobile"} else channel
                evaluated = accepted + rng.expovariate(1 / DAY)  # type: ignore[operator]
            if evaluated <= now_ts:
                eval_rows.append(
                    _case_rating(
                        rng,
                        case=case_rows[-1],
                        item=item,
                        window=window,
                        channel=channel,
                        evaluated=evaluated,
                        now_ts=now_ts,
                        overdue=overdue,
                        online=online,
                        client_id=client_id,
                        stats=stats,
                    )
                )
        if len(case_rows) >= chunk:
            yield case_rows, eval_rows
            case_rows, eval_rows = [], []
    if case_rows:
        yield case_rows, eval_rows


def _case_rating(
    rng: random.Random,
    *,
    case: dict[str, Any],
    item: ItemInfo,
    window: WindowInfo | None,
    channel: str,
    evaluated: float,
    now_ts: float,
    overdue: bool,
    online: bool,
    client_id: int | None,
    stats: ActivityStats,
) -> dict[str, Any]:
    p_bad = BASE_BAD * CHANNEL_BAD[channel]
    causes: list[str] = ["online" if online else "offline"]
    if channel == "terminal":
        causes.append("terminal")
    staff_trouble = False
    if window is not None and window.problem:
        factor = PROBLEM_WINDOW_BAD
        if case["staff_id"] == window.problem_staff:
            factor *= PROBLEM_STAFF_BAD
        # Rectification works: the last three months are better than the year before.
        if now_ts - evaluated < 90 * DAY:
            factor *= 0.45
        p_bad *= factor
        staff_trouble = True
    if item.problem:
        p_bad *= PROBLEM_ITEM_BAD
        causes.append("item")
    if overdue:
        p_bad *= OVERDUE_BAD
        causes.append("overdue")
    if staff_trouble:
        causes.append("staff")
    level = _level(rng, min(p_bad, 0.6), staff_trouble or item.problem, channel)
    reasons, comment = _content(rng, level, tuple(causes))
    stats.channels[channel] += 1
    stats.levels[level] += 1
    lag = (
        rng.uniform(5, 120)
        if channel == "sms"
        else rng.uniform(2, 20) * 3600
        if channel == "phone"
        else rng.uniform(0.2, 3)
    )
    evaluated_at = datetime.fromtimestamp(evaluated, UTC)
    anonymous = rng.random() < 0.02
    return {
        "case_id": case["id"],
        "stage": "whole",
        "eval_count": 1,
        "channel": channel,
        "level": level,
        "reasons": reasons,
        "comment": comment,
        "tagset_version": NATIONAL_VERSION,
        "org_id": case["org_id"],
        "item_id": item.id,
        "window_id": case["window_id"],
        "staff_id": case["staff_id"],
        "region_code": window.region_code if window else item.region_code,
        "rater_type": case["applicant_type"],
        "rater_name": case["applicant_name"],
        "rater_cert_type": case["applicant_cert_type"],
        "rater_cert_no": case["applicant_cert_no"],
        "rater_phone": case["applicant_phone"],
        "anonymous": anonymous,
        "is_public": rng.random() < (0.85 if level <= 2 else 0.97),
        "client_id": client_id,
        "user_id": None,
        "invitation_id": None,
        "source_ip": None,
        "user_agent": _agent(rng, channel),
        "device_id": f"PAD-{window.code}"
        if channel == "pad" and window
        else f"ZZJ-{window.code[:-5]}"
        if channel == "terminal" and window
        else None,
        "evaluated_at": evaluated_at,
        "received_at": datetime.fromtimestamp(min(evaluated + lag, now_ts), UTC),
    }


def _agent(rng: random.Random, channel: str) -> str | None:
    if channel == "mobile":
        return rng.choice(vocab.MOBILE_AGENTS)
    if channel in {"pc", "qrcode"}:
        return rng.choice(vocab.PC_AGENTS if channel == "pc" else vocab.MOBILE_AGENTS)
    return None


def generate_free_ratings(
    rng: random.Random,
    ref: Reference,
    *,
    now: datetime,
    cases: int,
    client_id: int | None,
    stats: ActivityStats,
    days: int = 365,
) -> list[dict[str, Any]]:
    """General comments (综合点评) and supervisory ratings (监督查评): bound to an org or an
    item, not to a case."""
    orgs = {o["id"]: o for o in ref.orgs}
    applicants = Applicants(
        rng,
        300,
        [r["code"] for r in ref.regions if r["tier"] == 3],
        [r["name"] for r in ref.regions if r["tier"] == 2],
    )
    windows = [w for w in ref.windows if w.line.numbered]
    w_cum = list(itertools.accumulate(w.traffic * (3 if w.problem else 1) for w in windows))
    i_cum = list(itertools.accumulate(i.weight for i in ref.item_infos))
    inspectors = [person_name(rng, rng.random() < 0.5) for _ in range(12)]
    rows = []
    n_review, n_inspection = max(30, round(cases * 0.006)), max(12, round(cases * 0.0025))
    for n in range(n_review + n_inspection):
        channel = "review" if n < n_review else "inspection"
        r = rng.random()
        item = None
        window = windows[bisect(w_cum, rng.random() * w_cum[-1])]
        if channel == "review" and r < 0.3:
            item = ref.item_infos[bisect(i_cum, rng.random() * i_cum[-1])]
            org = orgs[item.org_id]
        elif r < (0.55 if channel == "review" else 0.7):
            org = orgs[window.id]
        else:
            org = orgs[window.hall_id]
        troubled = (org["id"] in {window.id, window.hall_id} and window.problem) or bool(
            item and item.problem
        )
        dist = (0.58, 0.84, 0.94, 0.98) if channel == "review" else (0.5, 0.8, 0.92, 0.98)
        r = rng.random() ** (0.55 if troubled else 1.0)  # troubled places rate lower
        level = (
            5
            if r < dist[0]
            else 4
            if r < dist[1]
            else 3
            if r < dist[2]
            else 2
            if r < dist[3]
            else 1
        )
        back = rng.uniform(0, days) * DAY
        evaluated = now - timedelta(seconds=back)
        if channel == "inspection":
            evaluated = datetime.fromtimestamp(
                min(_office_moment(rng, evaluated.timestamp()), now.timestamp() - 3600), UTC
            )
            if level <= 2:
                # National codes start with their level: 2xx 不满意, 1xx 非常不满意.
                found = [c for c in vocab.INSPECTION_FINDINGS if c[0] == str(level)]
                reasons = [rng.choice(found)]
                comment: str | None = rng.choice(vocab.INSPECTION_FINDINGS[reasons[0]])
            else:
                reasons = _pick_reasons(rng, level, ("offline",))
                comment = rng.choice(vocab.INSPECTION_REMARKS)
            inspector = f"{vocab.PROVINCE[1]}政务服务督查组 {rng.choice(inspectors)}"
            rater: tuple[str | None, ...] = ("government", inspector, None, None, None)
            anonymous = False
        else:
            causes = ("item",) if item else ("offline", "staff") if troubled else ("offline",)
            reasons, comment = _content(rng, level, causes)
            if comment is None and rng.random() < 0.7:
                comment = rng.choice(
                    vocab.GOOD_COMMENTS[level] if level >= 3 else vocab.GENERIC_BAD_COMMENTS
                )
            rater = applicants.pick(False)
            anonymous = rng.random() < 0.3
        stats.channels[channel] += 1
        stats.levels[level] += 1
        is_window = org["kind"] == "window"
        rows.append(
            {
                "case_id": None,
                "stage": "whole",
                "eval_count": 1,
                "channel": channel,
                "level": level,
                "reasons": reasons,
                "comment": comment,
                "tagset_version": NATIONAL_VERSION,
                "org_id": org["id"],
                "item_id": item.id if item else None,
                "window_id": org["id"] if is_window else None,
                "staff_id": None,
                "region_code": org["region_code"],
                "rater_type": rater[0],
                "rater_name": rater[1],
                "rater_cert_type": rater[2],
                "rater_cert_no": rater[3],
                "rater_phone": rater[4],
                "anonymous": anonymous,
                "is_public": channel == "review",
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
    return rows
