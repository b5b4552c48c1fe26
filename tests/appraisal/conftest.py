"""Fixtures of the appraisal tests: more halls, a province policy ranking from 2 ratings,
and a signed-in assessor and office."""

from __future__ import annotations

import pytest

from haochaping.accounts import service as account_service
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from tests.factories import PASSWORD, WORLD_ADMIN, bearer_headers

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n% commendation\n"


@pytest.fixture
async def halls(db, world, client):
    """HALL-C, HALL-D and HALL-E beside the world's two halls; min_sample 2 in 330000."""
    for code, region in (("HALL-C", "330100"), ("HALL-D", "330100"), ("HALL-E", "330102")):
        await org_service.create_org(
            db=db,
            actor=WORLD_ADMIN,
            data=org_schemas.OrgCreate(
                code=code, name=f"{code}大厅", kind="hall", parent_code="OFFICE", region_code=region
            ),
        )
    await account_service.create_user(
        db=db, username="staff_x", password=PASSWORD, role="staff", org_code="W-A1"
    )
    # An assessor of the county only (region 330102).
    await account_service.create_user(
        db=db, username="assessor_a", password=PASSWORD, role="assessor", org_code="HALL-A"
    )
    await db.commit()
    headers = await bearer_headers(client, world.users["admin"])
    r = await client.post(
        "/api/v1/policies",
        headers=headers,
        json={
            "region_code": "330000",
            "values": {"min_sample": 2},
            "effective_from": "2025-01-01",
        },
    )
    assert r.status_code == 201, r.text
    return world


@pytest.fixture
async def assessor(client, world):
    return await bearer_headers(client, world.users["assessor"])


@pytest.fixture
async def office(client, world):
    return await bearer_headers(client, world.users["office"])
