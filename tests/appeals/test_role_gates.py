"""Who may decide an appeal, review a held rating or record a spot-check call is settled by
the routes' typed role dependencies before anything is read (issue 9): a person of another
role gets 403 `role_forbidden` (with the domain's wording where it has one), an API key 403
`user_required`, and an allowed person goes on to the service's own answers."""

from __future__ import annotations

from tests.factories import assert_error, bearer_headers, key_headers

MISSING = 987_654_321
DECISION = {"decision": "reject", "note": "核查不属实"}
STANDING = {"standing": "valid", "note": "核实有效"}
CALLBACK = {"method": "phone", "reached": False}
ROUTES = [
    (f"/api/v1/appeals/{MISSING}/decision", DECISION, "appeal_not_found"),
    (f"/api/v1/evaluations/{MISSING}/standing", STANDING, "evaluation_not_found"),
    (f"/api/v1/spot-checks/{MISSING}/callback", CALLBACK, "spot_check_not_found"),
]


async def test_other_roles_are_refused_before_anything_is_read(client, world):
    unit = await bearer_headers(client, world.users["unit_a"])
    assessor = await bearer_headers(client, world.users["assessor"])
    err = assert_error(
        await client.post(ROUTES[0][0], headers=unit, json=DECISION), 403, "role_forbidden"
    )
    assert err["message"] == "申诉由政务服务管理机构复核决定"
    err = assert_error(
        await client.post(ROUTES[1][0], headers=unit, json=STANDING), 403, "role_forbidden"
    )
    assert err["message"] == "待复核评价由政务服务管理机构决定"
    for path, body, _ in ROUTES:
        assert_error(await client.post(path, headers=assessor, json=body), 403, "role_forbidden")
        assert_error(
            await client.post(path, headers=key_headers(world), json=body), 403, "user_required"
        )
        assert_error(await client.post(path, json=body), 401)


async def test_allowed_roles_reach_the_service(client, world):
    office = await bearer_headers(client, world.users["office"])
    unit = await bearer_headers(client, world.users["unit_a"])
    for path, body, code in ROUTES:
        assert_error(await client.post(path, headers=office, json=body), 404, code)
    # Units handle bad ratings: they record spot-check calls too.
    path, body, code = ROUTES[2]
    assert_error(await client.post(path, headers=unit, json=body), 404, code)
