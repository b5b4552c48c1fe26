"""Ids in an appeal's body are bounded like ids in paths (issue 8, found by the fuzz test)."""

from __future__ import annotations

import pytest

from haochaping.core.schemas import MAX_ID
from tests import factories


@pytest.mark.parametrize(
    "body,field",
    [
        ({"evaluation_id": MAX_ID + 1}, "evaluation_id"),
        ({"evaluation_id": 0}, "evaluation_id"),
        ({"evaluation_id": 1, "attachment_ids": [2**70]}, "attachment_ids.0"),
    ],
)
async def test_an_id_past_bigint_in_an_appeal_is_a_422_naming_the_field(client, world, body, field):
    headers = await factories.bearer_headers(client, world.users["unit_a"])
    response = await client.post(
        "/api/v1/appeals",
        headers=headers,
        json={"category": "mistaken", "reasons": "评价对象有误", **body},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["field"] == field
