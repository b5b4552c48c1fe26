"""Fixtures of the detector tests: a world of its own (unique codes), a builder that stores
cases and ratings directly with chosen times and sources, signed-in reviewers."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from haochaping.accounts.models import User
from haochaping.cases.models import Case
from haochaping.core.auth import TOKEN_SALT
from haochaping.core.security import signer
from haochaping.db.crypto import DataKeys
from haochaping.evaluations.models import Evaluation, Invitation
from haochaping.integrity import detectors
from haochaping.integrity.models import IntegrityFlag
from haochaping.orgs.models import Item, Org, Staff
from tests import factories

# Batch tests run at a fixed time in the past, away from ratings other suites commit "now".
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
_seq = itertools.count()


@dataclass
class Ids:
    """Database ids of the world's reference data."""

    office: int
    hall_a: int
    w_a1: int
    w_a2: int
    hall_b: int
    w_b1: int
    s_a1: int
    s_b1: int
    item_a1: int
    item_b1: int


class Builder:
    """Stores completed cases and their ratings in two INSERTs, as intake would have."""

    def __init__(self, db, world: factories.World, ids: Ids, region: str) -> None:
        self.db, self.world, self.ids, self.region = db, world, ids, region

    def spec(
        self,
        *,
        at: datetime,
        window: str = "w_a1",
        level: int = 5,
        channel: str = "pad",
        delay: float = 40.0,
        **extra: Any,
    ) -> dict[str, Any]:
        """One rating `delay` seconds after its case's completion, received at `at`."""
        i = self.ids
        org, win, staff, item = {
            "w_a1": (i.hall_a, i.w_a1, i.s_a1, i.item_a1),
            "w_a2": (i.hall_a, i.w_a2, None, i.item_a1),
            "w_b1": (i.hall_b, i.w_b1, i.s_b1, i.item_b1),
        }[window]
        n = next(_seq)
        return {
            "at": at,
            "org_id": org,
            "window_id": win,
            "staff_id": extra.pop("staff_id", staff),
            "item_id": item,
            "level": level,
            "channel": channel,
            "delay": delay,
            "cert": extra.pop("rater_cert_no", f"33010219900101{n % 10000:04d}"),
            "phone": extra.pop("rater_phone", f"139{n % 100000000:08d}"),
            **extra,
        }

    async def store(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows as the intake hook sees them (with ids), in the order given."""
        if not specs:
            return []
        tag = uuid.uuid4().hex[:8]
        cases = []
        for k, s in enumerate(specs):
            done = s["at"] - timedelta(seconds=s["delay"])
            cases.append(
                {
                    "case_no": f"INT-{tag}-{k}",
                    "item_id": s["item_id"],
                    "org_id": s["org_id"],
                    "window_id": s["window_id"],
                    "staff_id": s["staff_id"],
                    "mode": "offline",
                    "case_type": "immediate",
                    "status": "completed",
                    "applicant_type": "person",
                    "applicant_name": "张三",
                    "applicant_cert_type": "id_card",
                    "applicant_cert_no": s.get("applicant_cert", s["cert"]),
                    "applicant_phone": s["phone"],
                    "received_at": done - timedelta(hours=1),
                    "accepted_at": done - timedelta(minutes=30),
                    "completed_at": done,
                    "created_at": done,
                    "updated_at": done,
                }
            )
        case_ids = (
            (
                await self.db.execute(
                    insert(Case).returning(Case.id, sort_by_parameter_order=True), cases
                )
            )
            .scalars()
            .all()
        )
        links = {}
        for s, case_id in zip(specs, case_ids, strict=True):
            if "issued" in s:  # rated through a signed link issued at that time
                links[case_id] = Invitation(
                    nonce=uuid.uuid4().hex,
                    case_id=case_id,
                    stage="whole",
                    channel="qrcode",
                    expires_at=s["issued"] + timedelta(days=30),
                    created_at=s["issued"],
                    used_at=s["at"],
                )
        self.db.add_all(links.values())
        await self.db.flush()
        rows = []
        for s, case_id in zip(specs, case_ids, strict=True):
            rows.append(
                {
                    "case_id": case_id,
                    "stage": "whole",
                    "eval_count": 1,
                    "channel": s["channel"],
                    "level": s["level"],
                    "reasons": [],
                    "comment": s.get("comment"),
                    "tagset_version": "national-2020",
                    "org_id": s["org_id"],
                    "item_id": s["item_id"],
                    "window_id": s["window_id"],
                    "staff_id": s["staff_id"],
                    "region_code": self.region,
                    "rater_type": "person",
                    "rater_name": "张三",
                    "rater_cert_type": "id_card",
                    "rater_cert_no": s["cert"],
                    "rater_phone": s["phone"],
                    "anonymous": False,
                    "is_public": True,
                    "is_default": False,
                    "client_id": s.get("client_id"),
                    "user_id": None,
                    "invitation_id": links[case_id].id if case_id in links else None,
                    "source_ip": s.get("source_ip"),
                    "user_agent": s.get("user_agent"),
                    "device_id": s.get("device_id"),
                    "evaluated_at": s.get("evaluated_at", s["at"]),
                    "received_at": s["at"],
                }
            )
        ids = (
            (
                await self.db.execute(
                    insert(Evaluation).returning(Evaluation.id, sort_by_parameter_order=True), rows
                )
            )
            .scalars()
            .all()
        )
        for row, eid in zip(rows, ids, strict=True):
            row["id"] = eid
        await self.db.flush()
        return rows


async def flags_of(db, ids, check: str | None = None) -> dict[int, IntegrityFlag]:
    """The flags on the given ratings (by rating id), optionally of one check."""
    stmt = select(IntegrityFlag).where(IntegrityFlag.evaluation_id.in_(list(ids)))
    if check:
        stmt = stmt.where(IntegrityFlag.check_name == check)
    return {f.evaluation_id: f for f in (await db.execute(stmt)).scalars()}


async def flag_count(db, ids) -> int:
    return (
        await db.execute(
            select(func.count())
            .select_from(IntegrityFlag)
            .where(IntegrityFlag.evaluation_id.in_(list(ids)))
        )
    ).scalar_one()


@pytest.fixture
async def iworld(db) -> factories.World:
    """A province whose codes no other test uses."""
    w = await factories.build_world(db, suffix=f"-i{uuid.uuid4().hex[:6]}")
    await db.commit()
    return w


@pytest.fixture
async def ids(db, iworld) -> Ids:
    codes = dict((await db.execute(select(Org.code, Org.id))).all())
    staff = dict((await db.execute(select(Staff.staff_no, Staff.id))).all())
    items = dict((await db.execute(select(Item.code, Item.id))).all())
    c = iworld.code
    return Ids(
        office=codes[c("OFFICE")],
        hall_a=codes[c("HALL-A")],
        w_a1=codes[c("W-A1")],
        w_a2=codes[c("W-A2")],
        hall_b=codes[c("HALL-B")],
        w_b1=codes[c("W-B1")],
        s_a1=staff[c("S-A1")],
        s_b1=staff[c("S-B1")],
        item_a1=items[c("ITEM-A1")],
        item_b1=items[c("ITEM-B1")],
    )


@pytest.fixture
def build(db, iworld, ids) -> Builder:
    # A region code of its own keeps the peers of the distribution check to this test's data.
    return Builder(db, iworld, ids, region=f"9{uuid.uuid4().int % 10**8:08d}")


@pytest.fixture
def guard(settings) -> detectors.IntakeGuard:
    return detectors.IntakeGuard(keys=DataKeys.from_settings(settings))


@pytest.fixture
async def headers(db, iworld, settings) -> dict[str, dict[str, str]]:
    """Bearer headers of the world's users, by role name."""
    out = {}
    for name, username in iworld.users.items():
        uid = (await db.execute(select(User.id).where(User.username == username))).scalar_one()
        token = signer(settings.secret_key, TOKEN_SALT).dumps({"uid": uid})
        out[name] = {"Authorization": f"Bearer {token}"}
    return out
