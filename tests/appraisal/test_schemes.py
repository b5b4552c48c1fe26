"""Schemes through the API: weights and CR, a refused inconsistent matrix, validation, and
versions that never change."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from haochaping.core.models import AuditEvent
from tests.appraisal.test_ahp import LEADER, LIGHT
from tests.factories import assert_error

SCHEMES = "/api/v1/appraisal/schemes"
FOUR = [
    {"code": "I1", "metric": "good_rate", "weight_label": "好评率"},
    {"code": "I2", "metric": "rectified_on_time_rate", "weight_label": "差评按期整改率"},
    {"code": "I3", "metric": "callback_satisfied_rate", "weight_label": "回访满意率"},
    {"code": "I4", "metric": "active_rating_rate", "weight_label": "主动评价率"},
]


def body(judgements, indicators=None, **extra):
    return {
        "region_code": "330000",
        "year": 2026,
        "indicators": indicators or FOUR,
        "judgements": judgements,
        **extra,
    }


async def test_create_answers_weights_and_cr_and_is_audited(client, db, halls, assessor):
    r = await client.post(SCHEMES, json=body(LEADER), headers=assessor)
    assert r.status_code == 201, r.text
    scheme = r.json()
    assert scheme["version"] == 1
    assert scheme["weights"] == pytest.approx([0.547, 0.127, 0.270, 0.056], abs=0.0015)
    assert scheme["cr"] == pytest.approx(0.0439, abs=0.0005)
    assert [i["direction"] for i in scheme["indicators"]] == ["higher"] * 4
    assert scheme["indicators"][3]["metric_label"] == "主动评价率"
    assert scheme["indicators"][0]["description"]  # the figure's plain-language meaning
    assert scheme["judgements"][1] == ["1/4", "1", "1/3", "3"]
    rows = (
        await db.execute(
            select(AuditEvent).where(
                AuditEvent.action == "create_appraisal_scheme",
                AuditEvent.target_id == scheme["id"],
            )
        )
    ).scalars()
    assert [(a.actor_role, a.detail["version"]) for a in rows] == [("assessor", 1)]


async def test_inconsistent_matrix_is_refused_with_its_cr(client, db, halls, assessor):
    r = await client.post(SCHEMES, json=body(LIGHT), headers=assessor)
    err = assert_error(r, 422, "inconsistent_judgements")
    assert err["details"][0]["cr"] == pytest.approx(0.1447, abs=0.0005)
    assert err["details"][0]["limit"] == 0.1
    assert "CR" in err["message"]
    listed = await client.get(
        SCHEMES, params={"region_code": "330000", "year": 2026}, headers=assessor
    )
    assert listed.json()["items"] == []


async def test_versions_never_change(client, halls, assessor):
    first = (await client.post(SCHEMES, json=body(LEADER), headers=assessor)).json()
    equal = [[1] * 4 for _ in range(4)]
    second = await client.post(SCHEMES, json=body(equal, note="权重调整"), headers=assessor)
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2
    assert second.json()["weights"] == pytest.approx([0.25] * 4)
    again = (await client.get(f"{SCHEMES}/{first['id']}", headers=assessor)).json()
    assert again["weights"] == first["weights"]
    assert again["judgements"] == first["judgements"]
    assert again["version"] == 1
    listed = (await client.get(SCHEMES, params={"year": 2026}, headers=assessor)).json()
    assert [s["version"] for s in listed["items"]] == [2, 1]
    # Another year starts again at version 1.
    other = await client.post(SCHEMES, json=body(equal, year=2027), headers=assessor)
    assert other.json()["version"] == 1


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"judgements": [[1, 3], ["1/3", 1]]}, 422, "judgements_shape"),
        (
            {"judgements": [[1, 3, 1, 1], ["1/3", 1, 1, 1], [1, 1, 1, 12], [1, 1, "1/12", 1]]},
            422,
            "judgement_scale",
        ),
        (
            {"judgements": [[1, 3, 1, 1], [3, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]},
            422,
            "judgements_not_reciprocal",
        ),
        ({"indicators": [*FOUR[:3], {**FOUR[3], "metric": "nonsense"}]}, 422, "unknown_metric"),
        ({"indicators": [*FOUR[:3], {**FOUR[3], "code": "I1"}]}, 422, "duplicate_indicator"),
        ({"region_code": "999999"}, 404, "region_not_found"),
        ({"year": 1800}, 422, None),
        ({"indicators": []}, 422, None),
        ({"extra": 1}, 422, None),
    ],
)
async def test_refusals(client, halls, assessor, change, status, code):
    r = await client.post(
        SCHEMES, json={**body([[1] * 4 for _ in range(4)]), **change}, headers=assessor
    )
    assert_error(r, status, code)


async def test_a_region_outside_the_assessors_own_is_refused(client, halls):
    from tests.factories import bearer_headers

    county = await bearer_headers(client, "assessor_a")
    r = await client.post(SCHEMES, json=body(LEADER), headers=county)  # 330000 above 330102
    assert_error(r, 403, "out_of_scope")
    ok = await client.post(SCHEMES, json=body(LEADER, region_code="330102"), headers=county)
    assert ok.status_code == 201, ok.text
