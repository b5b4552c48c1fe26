"""Property-based intake tests: whatever a client sends, the answer follows the rules and a
refusal stores nothing; no body ever makes the service fail with a 5xx."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from haochaping.evaluations.models import Evaluation
from haochaping.evaluations.tags import national_tags
from tests.factories import EvaluationPayloadFactory, key_headers, make_case

TAGS = {t.code: t.level for t in national_tags()}
FAST = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
not_a_level = st.one_of(
    st.integers().filter(lambda n: not 1 <= n <= 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.lists(st.integers(1, 5), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


async def count(db) -> int:
    return (await db.execute(select(func.count()).select_from(Evaluation))).scalar_one()


def assert_error_body(r) -> None:
    err = r.json()["error"]
    assert set(err) == {"code", "message", "details"} and isinstance(err["details"], list)


@FAST
@given(level=not_a_level)
async def test_any_level_outside_one_to_five_is_refused_and_stores_nothing(
    client, db, world, level
):
    before = await count(db)
    body = json.dumps(
        {"channel": "review", "org_code": "HALL-A", "level": level, "comment": "属性测试"},
        allow_nan=True,
    )
    r = await client.post(
        "/api/v1/evaluations",
        content=body,
        headers={**key_headers(world), "content-type": "application/json"},
    )
    assert r.status_code == 422, (level, r.text)
    assert r.json()["error"]["details"][0]["field"] == "level"
    assert await count(db) == before


@FAST
@given(
    level=st.integers(1, 5),
    reasons=st.lists(st.sampled_from([*TAGS, "999", "000", "51O"]), max_size=4),
    comment=st.one_of(st.none(), st.text(alphabet="慢差 a1\t", max_size=6)),
)
async def test_reasons_are_accepted_iff_they_exist_fit_the_level_and_bad_ones_say_why(
    client, db, world, level, reasons, comment
):
    case = await make_case(db, world)
    before = await count(db)
    r = await client.post(
        "/api/v1/evaluations",
        headers=key_headers(world),
        json={
            "case_no": case["case_no"],
            "channel": "pc",
            "level": level,
            "reasons": reasons,
            "comment": comment,
        },
    )
    has_comment = bool(comment and comment.strip())
    acceptable = (
        all(TAGS.get(code) == level for code in reasons)
        and len(set(reasons)) == len(reasons)
        and (level >= 3 or reasons or has_comment)
    )
    if acceptable:
        assert r.status_code == 201, (level, reasons, comment, r.text)
        assert r.json()["reasons"] == reasons
        assert await count(db) == before + 1
    else:
        assert r.status_code == 422, (level, reasons, comment, r.text)
        assert r.json()["error"]["code"] in {
            "unknown_reason",
            "reason_level_mismatch",
            "duplicate_reason",
            "reason_required",
        }
        assert await count(db) == before


@FAST
@given(body=json_values)
async def test_json_junk_never_makes_a_5xx(client, db, world, body):
    before = await count(db)
    for route in ("/api/v1/evaluations", "/api/v1/evaluations/batch", "/api/v1/cases"):
        r = await client.post(route, json=body, headers=key_headers(world))
        assert r.status_code < 500, (route, body, r.text)
        if r.status_code >= 400:
            assert_error_body(r)
    assert await count(db) == before


@FAST
@given(raw=st.binary(max_size=200))
async def test_byte_junk_never_makes_a_5xx(client, db, world, raw):
    r = await client.post(
        "/api/v1/evaluations",
        content=raw,
        headers={**key_headers(world), "content-type": "application/json"},
    )
    assert 400 <= r.status_code < 500, r.text
    assert_error_body(r)


FIELDS = [
    "case_no",
    "org_code",
    "item_code",
    "stage",
    "channel",
    "level",
    "reasons",
    "comment",
    "rater",
    "anonymous",
    "public",
    "evaluated_at",
    "device_id",
]


@FAST
@given(field=st.sampled_from(FIELDS), value=json_values)
async def test_a_valid_rating_with_one_field_spoiled_never_makes_a_5xx(
    client, db, world, case, field, value
):
    body = {**EvaluationPayloadFactory(case_no=case["case_no"]), field: value}
    for route, payload in (
        ("/api/v1/evaluations", body),
        ("/api/v1/evaluations/batch", {"items": [body, body]}),
    ):
        r = await client.post(route, json=payload, headers=key_headers(world))
        assert r.status_code < 500, (field, value, r.text)
        if r.status_code >= 400:
            assert_error_body(r)
        elif route.endswith("batch"):
            assert all(x["status"] < 500 for x in r.json()["items"])


@FAST
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "case_no",
                "org_code",
                "item_code",
                "level",
                "channel",
                "since",
                "until",
                "cursor",
                "limit",
            ]
        ),
        st.text(max_size=30),
        max_size=4,
    )
)
async def test_list_filters_never_make_a_5xx(client, world, params):
    r = await client.get("/api/v1/evaluations", params=params, headers=key_headers(world))
    assert r.status_code in (200, 400, 422), (params, r.text)
    if r.status_code != 200:
        assert_error_body(r)
