"""Loading the demo into a database that already holds other data."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from haochaping.accounts import service as account_service
from haochaping.demo import generate, loader
from haochaping.orgs.models import Org
from haochaping.workorders.models import SpotCheck
from tests import factories


async def test_demo_loads_beside_existing_data_and_keeps_existing_accounts(db):
    world = await factories.build_world(db)  # has its own "admin" user and orgs
    # Other data's pending spot checks: the demo's people call only the demo's own.
    for i in range(8):
        ev = await factories.add_rating(
            db, world, level=5, at=datetime(2026, 3, 2, 9, i, tzinfo=UTC)
        )
        hall = (await db.execute(select(Org).where(Org.code == "HALL-A"))).scalar_one()
        db.add(SpotCheck(evaluation_id=ev.id, org_id=hall.id, state="pending"))
    await db.commit()
    orgs_before = (await db.execute(select(func.count()).select_from(Org))).scalar_one()
    # `serve --demo` loads only into an empty database.
    assert await loader.load_into_if_empty(db, cases=200) is None

    summary = await loader.load_into(db, cases=200, seed=1)
    await db.commit()
    assert not summary.already_loaded
    admin = next(u for u in summary.users if u.username == "admin")
    assert not admin.created and "账号已存在" in str(summary)
    # The existing admin keeps its password and organisation.
    user = await account_service.authenticate(
        db=db, username=world.users["admin"], password=factories.PASSWORD
    )
    office = (await db.execute(select(Org).where(Org.id == user.org_id))).scalar_one()
    assert office.code == world.code("OFFICE")
    # The other demo accounts were created.
    unit = await account_service.authenticate(db=db, username="unit", password="unit12345")
    assert unit.role == "unit"
    demo_orgs = (
        await db.execute(
            select(func.count()).select_from(Org).where(Org.path.like(f"/{generate.ROOT_CODE}/%"))
        )
    ).scalar_one()
    total = (await db.execute(select(func.count()).select_from(Org))).scalar_one()
    assert total == orgs_before + demo_orgs
    # New rows still get fresh ids after the demo's explicitly numbered ones.
    extra = Org(
        code="AFTER-DEMO",
        name="后来的机构",
        kind="department",
        parent_id=None,
        region_code="330000",
        path="/AFTER-DEMO/",
    )
    db.add(extra)
    await db.flush()
    assert (
        extra.id
        > (await db.execute(select(func.max(Org.id)).where(Org.code != "AFTER-DEMO"))).scalar_one()
    )
