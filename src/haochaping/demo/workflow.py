"""The demo's closed loop, lived through on a simulated clock.

Every bad rating of the demo year opens its work order at the moment it arrived, through
`workorders.service.open_for_evaluations`, like intake does. Then the people of the province
act on it through the same services as the console and the API (`workorders.service.act`,
`workorders.citizen.give_verdict`, `appeals.service.file` / `decide`), each at a moment of its
own, and the deadline job (`workorders.jobs.escalate_overdue`, `send_warnings`) runs every
night of the year. Deadlines are therefore real working-day deadlines, an order that nobody
handled in time is escalated by the job itself, and whatever state an order is in at the end
is one the product reached. Steps planned after `now` simply have not happened yet: that is
what leaves the recent orders open, some overdue, some under supervision, some appeals
pending.

Who acts is a demo account (`Cast`): the unit's own account where the demo has one, else the
management office above it, which may handle any order of its subtree.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from haochaping.accounts.models import User
from haochaping.appeals import schemas as appeal_schemas
from haochaping.appeals import service as appeal_service
from haochaping.appeals.models import Appeal
from haochaping.core.auth import Principal
from haochaping.core.roles import MANAGERS, Role
from haochaping.core.timeutil import SHANGHAI
from haochaping.demo import topics_plant
from haochaping.evaluations.models import Evaluation
from haochaping.orgs.models import Org
from haochaping.policies.service import PolicyCache
from haochaping.workorders import citizen, jobs
from haochaping.workorders import schemas as wo_schemas
from haochaping.workorders import service as wo_service
from haochaping.workorders.context import LoopContext
from haochaping.workorders.models import WorkOrder
from haochaping.workorders.states import State

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# The deadline job's nightly pass, local time (it runs every minute in production; once a
# night is enough for deadlines that fall at the end of a day).
SWEEP_AT = timedelta(minutes=30)

Progress = Callable[[str, int, int], None]

VERIFY_NOTES = [
    "已电话联系评价人，核实情况属实，责成窗口整改。",
    "已调取窗口录像并联系评价人，确认办理过程中解释不到位。",
    "经核实，评价人反映的等候时间过长问题属实。",
    "已与评价人沟通，核实系材料清单告知不清导致多次跑腿。",
    "已联系评价人了解详情，情况基本属实，进入整改。",
]
RECTIFY_NOTES = [
    "已对窗口工作人员进行批评教育，组织服务规范再培训，并向评价人致歉。",
    "已优化叫号分流，高峰时段增开窗口，等候时间明显缩短。",
    "已修订一次性告知单并在窗口和网上公开，补正材料一次讲清。",
    "已为评价人加急办结，并对相关流程进行梳理，压缩办理时限。",
    "已更换自助终端故障部件，安排专人值守引导。",
]
EXPLAIN_NOTES = [
    "评价人所需材料为法定要件，已向其耐心解释政策依据，并提供代办帮办服务。",
    "该事项须现场核验身份，无法全程网办，已向评价人说明原因。",
    "办理时限为法定时限，已向评价人解释并告知进度查询方式。",
]
TRANSFER_NOTES = [
    "经核实，该事项审批由业务主管部门负责，转牵头单位核实整改。",
    "评价人反映问题属业务部门职责，转办主管部门处理。",
]
OFFICE_NOTES = {
    "redispatch": "整改不到位，重新派单，请限期整改并报送整改材料。",
    "hold_accountable": "多次超期未办，启动问责程序，约谈单位负责人。",
    "close": "经督办核查，问题已整改到位，办结。",
    "close_accountability": "问责程序已完成，相关责任人已处理，办结。",
}
APPEAL_REASONS = {
    "malicious": "评价人因不符合受理条件未能办理，多次辱骂窗口人员并扬言刷差评，有录像为证。",
    "mistaken": "评价人误将其他单位的服务评价为本窗口，已电话确认系误评。",
    "outside_remit": "评价人反映的收费标准由省级部门制定，不属本单位职责范围。",
    "other": "评价人反映的问题已在评价前当场解决，评价人表示满意但误点差评。",
}
DECISION_NOTES = {
    "uphold": "经调取录像、询问当事人，申诉理由成立，该差评不计入统计。",
    "reject": "申诉理由不充分，差评有效，请责任单位继续整改。",
}

# Orders in the last weeks whose people act at set moments, so that every state of the loop
# is on show whatever the demo's size: (what it shows, which hall, steps). A step is (working
# days before today, local hour, what happens); day 0 is `hour` hours before now. The first
# step is the bad rating's arrival. Each step goes through the same service as the rest.
SHOWCASE: list[tuple[str, str, list[tuple[int, float, str]]]] = [
    ("新差评，待核实", "hall", [(0, 1.0, "open")]),
    ("已转办，待牵头单位核实", "hall", [(1, 9.5, "open"), (1, 11, "transfer")]),
    ("整改中", "hall", [(3, 10, "open"), (3, 15, "verify")]),
    ("已解释，待回访", "hall2", [(2, 9.5, "open"), (2, 14, "explain")]),
    ("整改完成，待回访", "hall", [(8, 10, "open"), (8, 14, "verify"), (1, 11, "rectified")]),
    ("核实超期，系统自动转督办", "hall2", [(4, 10, "open")]),
    (
        "回访不满意，督办中",
        "hall2",
        [
            (9, 10, "open"),
            (9, 15, "verify"),
            (4, 11, "rectified"),
            (3, 10, "callback:dissatisfied"),
        ],
    ),
    (
        "问责中",
        "hall2",
        [
            (13, 10, "open"),
            (13, 15, "verify"),
            (8, 11, "rectified"),
            (7, 10, "callback:dissatisfied"),
            (5, 10, "hold"),
        ],
    ),
    ("申诉待复核", "hall", [(1, 9.5, "open"), (1, 15, "appeal:malicious")]),
    (
        "申诉成立，评价人列入恶意评价人员信息库",
        "hall",
        [(7, 10, "open"), (7, 14, "appeal:malicious"), (4, 10, "decide:uphold+register")],
    ),
    (
        "申诉驳回，继续整改",
        "hall",
        [(6, 10, "open"), (6, 15, "appeal:outside_remit"), (3, 11, "decide:reject")],
    ),
    (
        "评价人通过进度链接表示满意，办结",
        "hall",
        [(8, 10, "open"), (8, 15, "verify"), (3, 11, "rectified"), (2, 20, "citizen:satisfied")],
    ),
    (
        "督办后重新整改，回访满意办结",
        "hall2",
        [
            (14, 10, "open"),
            (14, 15, "verify"),
            (9, 10, "rectified"),
            (8, 10, "callback:dissatisfied"),
            (7, 10, "redispatch"),
            (4, 10, "rectified"),
            (3, 10, "callback:satisfied"),
        ],
    ),
    (
        "转办部门后整改，回访满意办结（部门账号邮箱有误：死信）",
        "hall",
        [
            (5, 10, "open"),
            (5, 11, "transfer:dept"),
            (5, 13, "verify"),
            (5, 16, "rectified"),
            (4, 10, "callback:satisfied"),
        ],
    ),
]


def showcase_moments(calendar: Any, now: datetime) -> list[list[tuple[datetime, str]]]:
    """The SHOWCASE steps as moments: working days counted back from today."""
    today = now.astimezone(SHANGHAI).date()
    days: list[date] = []
    day = today
    while len(days) < 20:
        day -= timedelta(days=1)
        if calendar.is_workday(day):
            days.append(day)
    out = []
    for _label, _hall, steps in SHOWCASE:
        moments = []
        for ago, hour, what in steps:
            if ago == 0:
                at = now - HOUR * hour
            else:
                d = days[ago - 1]
                at = datetime(d.year, d.month, d.day, tzinfo=SHANGHAI) + HOUR * hour
            moments.append((at.astimezone(now.tzinfo), what))
        out.append(moments)
    return out


@dataclass(frozen=True)
class OrgInfo:
    id: int
    code: str
    name: str
    path: str
    parent_id: int | None
    region_code: str
    kind: str


class Cast:
    """The demo accounts that act, as principals, and which one acts for an organisation."""

    def __init__(self, orgs: dict[int, OrgInfo], users: list[User]) -> None:
        self.orgs = orgs
        self.people: list[Principal] = []
        for u in users:
            org = orgs.get(u.org_id)
            if org is None:
                continue
            self.people.append(
                Principal(
                    kind="user",
                    id=u.id,
                    name=u.display_name,
                    org_id=u.org_id,
                    org_path=org.path,
                    role=Role(u.role),
                )
            )

    def _covering(self, org_id: int, roles: frozenset[Role]) -> Principal:
        path = self.orgs[org_id].path
        found = [p for p in self.people if p.role in roles and p.covers(path)]
        if not found:
            raise LookupError(f"no demo account covers org {org_id}")
        # The nearest one: offices before administrators, the deepest office first.
        return max(found, key=lambda p: (p.role != Role.ADMIN, len(p.org_path)))

    def handler(self, org_id: int) -> Principal:
        """The unit's own account, else the nearest management office above it."""
        for p in self.people:
            if p.role == Role.UNIT and p.org_id == org_id:
                return p
        return self.manager(org_id)

    def manager(self, org_id: int) -> Principal:
        """The nearest management office (or administrator) whose subtree holds the org."""
        return self._covering(org_id, MANAGERS)


@dataclass
class Plan:
    """How one order's people will behave: decided when it opens, followed as it goes."""

    order: WorkOrder
    path: str  # rectify | explain | transfer | appeal | late_verify | late_rectify
    verdict: str  # satisfied | basic | dissatisfied | unreachable | citizen | late
    item_org_id: int | None
    seen: int = 0  # the sweep generation the order object was last read at
    token: int = 0  # the wake-up that counts (an escalation supersedes a planned step)
    scripted: bool = False  # a showcase order: its people act at its own moments only
    transferred: bool = False
    redispatched: int = 0
    appeal_id: int | None = None
    script: list[tuple[datetime, str]] = field(default_factory=list)  # SHOWCASE steps left


@dataclass
class LoopStats:
    opened: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    sweeps: int = 0
    escalated: int = 0
    warned: int = 0
    appeals: Counter[str] = field(default_factory=Counter)


class Simulation:
    """The clock, the plans, and the people acting on them."""

    def __init__(
        self,
        db: AsyncSession,
        *,
        ctx: LoopContext,
        rng: random.Random,
        now: datetime,
        cast: Cast,
        dead_letter_org: int | None,
        scripts: dict[int, list[tuple[datetime, str]]] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.db, self.ctx, self.rng, self.now, self.cast = db, ctx, rng, now, cast
        self.calendar = ctx.deadlines.calendar
        self.policies = PolicyCache()
        self.heap: list[tuple[datetime, int, int, int]] = []
        # Every warning and due time an order has been given, as (time, order, kind, which):
        # a nightly pass with none of them behind it that still applies to its order (the
        # order is in a state the deadline governs, not yet warned) would find nothing to do,
        # so it is skipped. Same outcome, less work.
        self.deadlines: list[tuple[datetime, int, str, str]] = []
        self.noted: set[tuple[datetime, int, str, str]] = set()
        self.seq = itertools.count()
        self.plans: dict[int, Plan] = {}
        self.generation = 0
        self.clock = now
        self.stats = LoopStats()
        self.progress = progress
        # One showcase order, and only that one, is transferred to this unit (its account's
        # e-mail address is mistyped: the one notification it gets is the dead letter).
        self.dead_letter_org = dead_letter_org
        self.scripts = scripts or {}  # by case id
        self.departments: dict[str, list[int]] = {}
        for o in cast.orgs.values():
            office = "政务服务管理办公室" in o.name
            if o.kind == "department" and not office and o.id != dead_letter_org:
                self.departments.setdefault(o.region_code, []).append(o.id)

    # --- time --------------------------------------------------------------------------

    def office_after(self, t: datetime, low: float, high: float) -> datetime:
        """`low`..`high` hours after `t`, moved into office hours of a working day."""
        at = (t + HOUR * self.rng.uniform(low, high)).astimezone(SHANGHAI)
        hours = at.hour + at.minute / 60
        if not self.calendar.is_workday(at.date()) or hours >= 17.5 or hours < 8.75:
            day = at.date() + timedelta(days=1) if hours >= 17.5 else at.date()
            while not self.calendar.is_workday(day):
                day += timedelta(days=1)
            at = datetime(day.year, day.month, day.day, 9, tzinfo=SHANGHAI) + HOUR * (
                self.rng.uniform(0, 2.5)
            )
        elif 12 <= hours < 13.5:
            at += HOUR * 1.6
        return at

    def before(self, at: datetime, due: datetime | None, t: datetime) -> datetime:
        """`at`, or a moment between `t` and the deadline when `at` would miss it."""
        if due is not None and t < due and at >= due - HOUR / 2:
            return t + (due - t) * self.rng.uniform(0.3, 0.8)
        return at

    def wake(self, plan: Plan, at: datetime, *, scripted: bool = False) -> None:
        """The order's next step at `at` (it replaces any step planned before)."""
        if plan.scripted and not scripted:
            return  # a showcase order: its people act at its own moments only
        plan.token += 1
        heapq.heappush(self.heap, (at, next(self.seq), plan.order.id, plan.token))

    # --- the run -----------------------------------------------------------------------

    async def run(self, ratings: list[dict[str, Any]]) -> LoopStats:
        """Open every bad rating's order when it arrived and live the year through."""
        opens = sorted(ratings, key=lambda r: (r["received_at"], r["id"]))
        if not opens:
            return self.stats
        # Held for the run: the session's identity map is weak, and the services look the
        # organisations up again and again (each lookup then stays in memory).
        self.held = list((await self.db.execute(select(Org))).scalars())
        first = opens[0]["received_at"].astimezone(SHANGHAI)
        tick = datetime(first.year, first.month, first.day, tzinfo=SHANGHAI) + DAY + SWEEP_AT
        i, total = 0, len(opens)
        while True:
            next_open = opens[i]["received_at"] if i < total else None
            next_step = self.heap[0][0] if self.heap else None
            at = (
                min(t for t in (next_open, next_step) if t is not None)
                if (next_open or next_step)
                else None
            )
            if at is None or at > self.now:
                break
            while tick <= at:
                self.clock = tick
                await self.sweep_if_due(tick)
                tick += DAY
            self.clock = at
            if next_open is not None and at == next_open:
                await self.open(opens[i])
                i += 1
                if self.progress and (i % 50 == 0 or i == total):
                    self.progress("差评工单办理", i, total)
            else:
                _, _, order_id, token = heapq.heappop(self.heap)
                plan = self.plans[order_id]
                if token == plan.token:
                    await self.step(plan, at)
                    self.note_deadlines(plan.order)
        while tick <= self.now:
            self.clock = tick
            await self.sweep_if_due(tick)
            tick += DAY
        self.clock = self.now
        await self.sweep(self.now)
        if self.progress:
            self.progress("差评工单办理", total, total)
        return self.stats

    def note_deadlines(self, order: WorkOrder, *, again: bool = False) -> None:
        """Remember the order's deadlines (`again`: also those seen before, for an order that
        comes back under deadlines it had left, as after a rejected appeal)."""
        for kind, _states, due_col, warn_col, _warned in jobs.DEADLINES:
            for which, col in (("due", due_col), ("warn", warn_col)):
                moment = getattr(order, col.key)
                if moment is None:
                    continue
                entry = (moment, order.id, kind, which)
                if again or entry not in self.noted:
                    self.noted.add(entry)
                    heapq.heappush(self.deadlines, entry)

    def _applies(self, order_id: int, kind: str, which: str) -> bool:
        plan = self.plans.get(order_id)
        if plan is None:
            return True
        order = plan.order
        for name, states, _due, _warn, warned in jobs.DEADLINES:
            if name == kind:
                if order.state not in {s.value for s in states}:
                    return False
                return which == "due" or getattr(order, warned.key) is None
        return True  # pragma: no cover - every kind is in DEADLINES

    async def sweep_if_due(self, at: datetime) -> None:
        """The nightly pass, when some warning or deadline that still applies has come."""
        due = False
        while self.deadlines and self.deadlines[0][0] <= at:
            _, order_id, kind, which = heapq.heappop(self.deadlines)
            due = due or self._applies(order_id, kind, which)
        if due:
            await self.sweep(at)

    async def sweep(self, at: datetime) -> None:
        """The deadline job's pass at `at`; the offices pick up what it escalated."""
        report = jobs.SweepReport()
        await jobs.escalate_overdue(self.db, at, report)
        await jobs.send_warnings(self.db, at, report)
        self.stats.sweeps += 1
        escalated = sum(report.escalated.values())
        self.stats.warned += sum(report.warned.values())
        if not escalated:
            return
        self.stats.escalated += escalated
        self.generation += 1
        ids = (
            await self.db.execute(
                select(WorkOrder.id).where(
                    WorkOrder.state == State.SUPERVISING.value, WorkOrder.overdue_at == at
                )
            )
        ).scalars()
        for order_id in ids:
            plan = self.plans.get(order_id)
            if plan is not None:
                self.wake(plan, self.office_after(at, 2, 40))

    async def open(self, rating: dict[str, Any]) -> None:
        policy, policy_id = await self.policies.get(self.db, rating["region_code"])
        (order,) = await wo_service.open_for_evaluations(
            db=self.db,
            openings=[(rating, policy, policy_id)],
            ctx=self.ctx,
            now=rating["received_at"],
        )
        self.stats.opened += 1
        self.note_deadlines(order)
        plan = self.new_plan(order, rating)
        self.plans[order.id] = plan
        plan.seen = self.generation
        t = rating["received_at"]
        script = self.scripts.get(rating["case_id"])
        if script:
            plan.scripted, plan.script = True, list(script[1:])
            if plan.script:
                self.wake(plan, plan.script[0][0], scripted=True)
            return
        if plan.path == "late_verify":
            return  # nobody looks at it: the deadline job escalates it
        if plan.path == "appeal":
            self.wake(plan, self.before(self.office_after(t, 1, 6), order.verify_due_at, t))
        else:
            self.wake(plan, self.before(self.office_after(t, 0.5, 20), order.verify_due_at, t))

    def new_plan(self, order: WorkOrder, rating: dict[str, Any]) -> Plan:
        rng = self.rng
        unit_account = self.cast.handler(order.org_id).role == Role.UNIT
        recent = self.now - rating["received_at"] < timedelta(days=6)
        r = rng.random()
        appealable = unit_account and not topics_plant.is_planted(rating)
        if appealable and (r < 0.14 or (recent and r < 0.5)):
            path = "appeal"
        elif r < 0.15:
            path = "explain"
        elif r < 0.23:
            path = "transfer"
        elif r < 0.27:
            path = "late_verify"
        elif r < 0.32:
            path = "late_rectify"
        else:
            path = "rectify"
        v = rng.random()
        verdict = (
            "satisfied"
            if v < 0.5
            else "basic"
            if v < 0.72
            else "citizen"
            if v < 0.82
            else "dissatisfied"
            if v < 0.9
            else "unreachable"
            if v < 0.96
            else "late"
        )
        return Plan(order=order, path=path, verdict=verdict, item_org_id=rating.get("item_org_id"))

    # --- one step of one order ---------------------------------------------------------

    async def step(self, plan: Plan, t: datetime) -> None:
        order = plan.order
        if plan.seen != self.generation:
            await self.db.refresh(order)
            plan.seen = self.generation
        if plan.scripted:
            if plan.script:
                await self.scripted(plan, t)
            return
        state = State(order.state)
        if state in (State.VERIFYING, State.TRANSFERRED):
            await self.handle_new(plan, t)
        elif state == State.RECTIFYING:
            if plan.path == "late_rectify":
                return  # the deadline job will find it
            await self.act(plan, t, wo_schemas.ReportRectifiedIn, note=RECTIFY_NOTES)
            self.after_answer(plan, t)
        elif state in (State.CALLBACK, State.EXPLAINED):
            await self.call_back(plan, t)
        elif state == State.SUPERVISING:
            await self.supervise(plan, t)
        elif state == State.ACCOUNTABILITY:
            await self.act(
                plan,
                t,
                wo_schemas.CloseIn,
                note=[OFFICE_NOTES["close_accountability"]],
                office=True,
            )
        elif state == State.APPEALING:
            await self.decide_appeal(plan, t)

    async def act(
        self,
        plan: Plan,
        t: datetime,
        model: type[Any],
        *,
        note: list[str] | None = None,
        office: bool = False,
        **fields: Any,
    ) -> None:
        order = plan.order
        who = self.cast.manager(order.org_id) if office else self.cast.handler(order.org_id)
        (action,) = get_args(model.model_fields["action"].annotation)
        if note is not None:
            fields["note"] = self.rng.choice(note)
        data = model(action=action, version=order.version, **fields)
        await wo_service.act(db=self.db, principal=who, order=order, data=data, ctx=self.ctx, now=t)
        self.stats.actions[action] += 1

    async def handle_new(self, plan: Plan, t: datetime) -> None:
        order = plan.order
        if plan.path == "appeal" and plan.appeal_id is None:
            await self.file_appeal(plan, t)
            return
        if plan.path == "transfer" and not plan.transferred:
            target = self.transfer_target(plan)
            if target is not None:
                await self.act(
                    plan,
                    t,
                    wo_schemas.TransferIn,
                    note=TRANSFER_NOTES,
                    lead_org_code=self.cast.orgs[target].code,
                )
                plan.transferred = True
                # The new lead looks at it within hours (before the unit's warning time).
                self.wake(plan, t + HOUR * self.rng.uniform(0.3, 2))
                return
        if plan.path == "explain":
            await self.act(plan, t, wo_schemas.ExplainIn, note=EXPLAIN_NOTES)
            self.after_answer(plan, t)
            return
        await self.act(plan, t, wo_schemas.VerifyIn, note=VERIFY_NOTES)
        if plan.path == "late_rectify":
            return
        at = self.office_after(t, 4, 24 * 9)
        self.wake(plan, self.before(at, order.rectify_due_at, t))

    def transfer_target(self, plan: Plan) -> int | None:
        order = plan.order
        item_org = plan.item_org_id
        if item_org is not None and item_org not in (order.org_id, self.dead_letter_org):
            return item_org
        choices = [d for d in self.departments.get(order.region_code, []) if d != order.org_id]
        return self.rng.choice(choices) if choices else None

    def after_answer(self, plan: Plan, t: datetime) -> None:
        """Rectified or explained: the callback (or the rater's own verdict) comes next."""
        order = plan.order
        if plan.verdict == "late":
            return  # nobody calls back: overdue, escalated by the job
        if plan.verdict == "citizen":
            self.wake(plan, t + HOUR * self.rng.uniform(1, 30))
            return
        at = self.office_after(t, 2, 30)
        self.wake(plan, self.before(at, order.callback_due_at, t))

    async def call_back(self, plan: Plan, t: datetime) -> None:
        order = plan.order
        verdict = plan.verdict
        if verdict == "citizen" and order.callback_attempts == 0:
            choice = self.rng.choices(["satisfied", "basic", "dissatisfied"], [6, 3, 1])[0]
            await citizen.give_verdict(
                db=self.db,
                order=order,
                data=wo_schemas.CitizenVerdictIn.model_validate({"verdict": choice}),
                version=order.version,
                now=t,
            )
            self.stats.actions[f"citizen_{choice}"] += 1
            if order.state == State.SUPERVISING.value:
                self.wake(plan, self.office_after(t, 2, 40))
            return
        policy_attempts = int(order.policy.get("max_contact_attempts", 3))
        if verdict == "unreachable":
            if order.callback_attempts >= policy_attempts:
                await self.act(
                    plan,
                    t,
                    wo_schemas.CloseUnreachableIn,
                    note=["三次电话回访均无人接听，短信告知整改情况后办结。"],
                )
                return
            await self.act(plan, t, wo_schemas.CallbackIn, method="phone", reached=False)
            nxt = self.office_after(t, 1, 6)
            if order.callback_attempts >= policy_attempts:
                nxt = t + HOUR * self.rng.uniform(0.1, 0.5)
            self.wake(plan, self.before(nxt, order.callback_due_at, t))
            return
        said = {"satisfied": "satisfied", "basic": "basic"}.get(verdict, "dissatisfied")
        if plan.redispatched:
            said = "satisfied"  # the second rectification satisfied them
        await self.act(
            plan,
            t,
            wo_schemas.CallbackIn,
            method=self.rng.choice(["phone", "phone", "phone", "sms", "wechat"]),
            reached=True,
            verdict=said,
        )
        if order.state == State.SUPERVISING.value:
            self.wake(plan, self.office_after(t, 2, 40))

    async def supervise(self, plan: Plan, t: datetime) -> None:
        order = plan.order
        r = self.rng.random()
        if plan.redispatched == 0 and r < 0.6:
            await self.act(
                plan,
                t,
                wo_schemas.RedispatchIn,
                note=[OFFICE_NOTES["redispatch"]],
                office=True,
                rectify_days=self.rng.choice([3, 5, 5, 10]),
            )
            plan.redispatched += 1
            plan.path = "rectify"
            if plan.verdict in ("late", "dissatisfied"):
                plan.verdict = "satisfied"
            at = self.office_after(t, 8, 24 * 3)
            self.wake(plan, self.before(at, order.rectify_due_at, t))
        elif r < 0.8:
            await self.act(
                plan,
                t,
                wo_schemas.HoldAccountableIn,
                note=[OFFICE_NOTES["hold_accountable"]],
                office=True,
            )
            self.wake(plan, self.office_after(t, 24 * 2, 24 * 10))
        else:
            await self.act(plan, t, wo_schemas.CloseIn, note=[OFFICE_NOTES["close"]], office=True)

    async def file_appeal(self, plan: Plan, t: datetime, category: str | None = None) -> None:
        order = plan.order
        category = (
            category
            or self.rng.choices(["malicious", "mistaken", "outside_remit", "other"], [4, 3, 2, 1])[
                0
            ]
        )
        appeal = await appeal_service.file(
            db=self.db,
            principal=self.cast.handler(order.org_id),
            data=appeal_schemas.AppealCreate.model_validate(
                {
                    "evaluation_id": order.evaluation_id,
                    "category": category,
                    "reasons": APPEAL_REASONS[category],
                }
            ),
            ctx=self.ctx,
            now=t,
        )
        plan.appeal_id = appeal.id
        self.stats.appeals["filed"] += 1
        at = self.office_after(t, 6, 24 * 5)
        self.wake(plan, self.before(at, appeal.decide_due_at, t))

    async def decide_appeal(
        self, plan: Plan, t: datetime, decision: str | None = None, register: bool = False
    ) -> None:
        appeal = await self.db.get(Appeal, plan.appeal_id)
        assert appeal is not None
        uphold_share = {"malicious": 0.75, "mistaken": 0.6, "outside_remit": 0.3, "other": 0.2}
        if decision is not None:
            await self._decide(plan, t, appeal, decision, register)
            return
        uphold = self.rng.random() < uphold_share[appeal.category]
        ev = await self.db.get(Evaluation, appeal.evaluation_id)
        register = (
            uphold
            and appeal.category == "malicious"
            and ev is not None
            and not ev.anonymous
            and bool(ev.rater_cert_no or ev.rater_phone)
            and self.rng.random() < 0.7
        )
        await self._decide(plan, t, appeal, "uphold" if uphold else "reject", register)
        if not uphold:
            plan.path = "rectify"
            at = self.office_after(t, 8, 24 * 6)
            self.wake(plan, self.before(at, plan.order.rectify_due_at, t))

    async def _decide(
        self, plan: Plan, t: datetime, appeal: Appeal, decision: str, register: bool
    ) -> None:
        await appeal_service.decide(
            db=self.db,
            principal=self.cast.manager(plan.order.org_id),
            appeal=appeal,
            data=appeal_schemas.AppealDecision.model_validate(
                {
                    "decision": decision,
                    "note": DECISION_NOTES[decision],
                    "register_rater": register,
                    "register_days": 365,
                }
            ),
            ctx=self.ctx,
            now=t,
        )
        self.stats.appeals[decision] += 1
        if register:
            self.stats.appeals["registered"] += 1
        if decision == "reject":
            self.note_deadlines(plan.order, again=True)

    async def scripted(self, plan: Plan, t: datetime) -> None:
        """The next SHOWCASE step of a showcase order."""
        _, what = plan.script.pop(0)
        kind, _, arg = what.partition(":")
        if kind == "verify":
            await self.act(plan, t, wo_schemas.VerifyIn, note=VERIFY_NOTES)
        elif kind == "transfer":
            target = self.dead_letter_org if arg == "dept" else self.transfer_target(plan)
            assert target is not None
            await self.act(
                plan,
                t,
                wo_schemas.TransferIn,
                note=TRANSFER_NOTES,
                lead_org_code=self.cast.orgs[target].code,
            )
        elif kind == "explain":
            await self.act(plan, t, wo_schemas.ExplainIn, note=EXPLAIN_NOTES)
        elif kind == "rectified":
            await self.act(plan, t, wo_schemas.ReportRectifiedIn, note=RECTIFY_NOTES)
        elif kind == "callback":
            await self.act(
                plan, t, wo_schemas.CallbackIn, method="phone", reached=True, verdict=arg
            )
        elif kind == "citizen":
            await citizen.give_verdict(
                db=self.db,
                order=plan.order,
                data=wo_schemas.CitizenVerdictIn.model_validate({"verdict": arg}),
                version=plan.order.version,
                now=t,
            )
        elif kind == "appeal":
            await self.file_appeal(plan, t, category=arg)
        elif kind == "decide":
            decision, _, register = arg.partition("+")
            await self.decide_appeal(plan, t, decision=decision, register=bool(register))
        elif kind == "redispatch":
            await self.act(
                plan,
                t,
                wo_schemas.RedispatchIn,
                note=[OFFICE_NOTES["redispatch"]],
                office=True,
                rectify_days=5,
            )
        elif kind == "hold":
            await self.act(
                plan,
                t,
                wo_schemas.HoldAccountableIn,
                note=[OFFICE_NOTES["hold_accountable"]],
                office=True,
            )
        else:  # pragma: no cover - SHOWCASE names only the steps above
            raise ValueError(what)
        self.stats.actions[kind] += 1
        if plan.script:
            self.wake(plan, plan.script[0][0], scripted=True)


async def org_infos(db: AsyncSession, root_path: str) -> dict[int, OrgInfo]:
    columns = (Org.id, Org.code, Org.name, Org.path, Org.parent_id, Org.region_code, Org.kind)
    rows = await db.execute(select(*columns).where(Org.path.like(f"{root_path}%")))
    return {r[0]: OrgInfo(*r) for r in rows}


async def bad_ratings(
    db: AsyncSession, bad_levels: list[int], root_path: str
) -> list[dict[str, Any]]:
    """Every bad first rating of the demo (of the organisations under `root_path`; a database
    may hold other data beside it) without an order yet, with what opening its order needs."""
    from haochaping.orgs.models import Item

    E = Evaluation
    rows = await db.execute(
        select(
            E.id,
            E.case_id,
            E.org_id,
            E.region_code,
            E.level,
            E.comment,
            E.rater_phone,
            E.anonymous,
            E.received_at,
            Item.org_id.label("item_org_id"),
        )
        .outerjoin(Item, Item.id == E.item_id)
        .join(Org, Org.id == E.org_id)
        .where(
            E.level.in_(bad_levels),
            E.eval_count == 1,
            E.is_default.is_(False),
            Org.path.startswith(root_path, autoescape=True),
            ~select(WorkOrder.id).where(WorkOrder.evaluation_id == E.id).exists(),
        )
        .order_by(E.received_at, E.id)
    )
    return [dict(r._mapping) for r in rows]
