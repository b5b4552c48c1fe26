"""The citizen rating page behind a signed link: the form, its refusals, single use."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select, update

from haochaping.evaluations.models import Evaluation, Invitation
from tests.factories import now
from tests.portal.conftest import invite


async def ratings_of(db, case_no: str) -> list[Evaluation]:
    from haochaping.cases.models import Case

    return list(
        (
            await db.execute(
                select(Evaluation)
                .join(Case, Case.id == Evaluation.case_id)
                .where(Case.case_no == case_no)
            )
        ).scalars()
    )


def checked(html: str, input_id: str) -> bool:
    tag = re.search(rf'<input[^>]*id="{input_id}"[^>]*>', html, re.S)
    assert tag, input_id
    return re.search(r"\schecked[\s>]", tag.group(0)) is not None


async def test_page_shows_what_is_rated_and_no_personal_data(client, link, case):
    r = await client.get(link)
    assert r.status_code == 200
    html = r.text
    assert '<html lang="zh-CN"' in html
    assert "营业执照核发" in html and "上城区市民之家" in html and "综合受理1号窗口" in html
    for label in ("非常满意", "满意", "基本满意", "不满意", "非常不满意"):
        assert f'<span class="level__text">{label}</span>' in html
    # Every reason tag is in the page, grouped by level (JavaScript hides the others).
    assert html.count('name="reasons"') == 40 and 'data-level="2"' in html
    assert case["applicant"]["name"] not in html
    assert case["applicant"]["cert_no"] not in html and case["applicant"]["phone"] not in html
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "hcp_session" not in r.headers.get("set-cookie", "")


async def test_good_rating_is_stored_and_thanked(client, db, link, case):
    r = await client.post(
        link, data={"level": "5", "reasons": ["517", "510"], "comment": "  很方便  "}
    )
    assert r.status_code == 303 and r.headers["location"] == f"{link}/thanks"
    thanks = await client.get(r.headers["location"])
    assert thanks.status_code == 200
    assert "谢谢您的评价" in thanks.text and "非常满意" in thanks.text
    [row] = await ratings_of(db, case["case_no"])
    assert (row.level, row.channel, row.comment) == (5, "qrcode", "很方便")
    assert sorted(row.reasons) == ["510", "517"] and row.invitation_id is not None
    assert row.source_ip == "203.0.113.7"
    inv = await db.get(Invitation, row.invitation_id)
    assert inv.used_at is not None and inv.evaluation_id == row.id


async def test_bad_rating_with_comment_is_thanked_with_the_follow_up(client, db, link, case):
    r = await client.post(
        link, data={"level": "1", "comment": "材料要求反复变化"}, follow_redirects=True
    )
    assert r.status_code == 200 and "核实整改" in r.text
    [row] = await ratings_of(db, case["case_no"])
    assert row.level == 1 and row.reasons == []


async def test_bad_rating_without_reason_or_comment_is_refused_and_kept(client, db, link, case):
    r = await client.post(link, data={"level": "2", "comment": "   "})
    assert r.status_code == 422
    assert "差评须至少选择一项原因或填写评价内容" in r.text
    assert checked(r.text, "level-2") and not checked(r.text, "level-5")
    assert await ratings_of(db, case["case_no"]) == []
    # The link is not spent by a refused attempt.
    again = await client.post(link, data={"level": "2", "reasons": "213"})
    assert again.status_code == 303


async def test_reason_of_another_level_is_refused_with_values_kept(client, db, link, case):
    r = await client.post(
        link, data={"level": "2", "reasons": ["213", "517"], "comment": "窗口人员答复含糊"}
    )
    assert r.status_code == 422
    assert "与所选等级“不满意”不符" in r.text
    assert checked(r.text, "level-2") and checked(r.text, "reason-213")
    assert checked(r.text, "reason-517") and not checked(r.text, "reason-214")
    assert "窗口人员答复含糊</textarea>" in r.text
    assert await ratings_of(db, case["case_no"]) == []


async def test_missing_level_and_overlong_comment_are_refused(client, db, link, case):
    r = await client.post(link, data={"comment": "很好"})
    assert r.status_code == 422 and "请选择您对本次服务的满意程度" in r.text
    r = await client.post(link, data={"level": "9"})
    assert r.status_code == 422 and "请选择您对本次服务的满意程度" in r.text
    r = await client.post(link, data={"level": "4", "comment": "很" * 2001})
    assert r.status_code == 422 and "评价内容不能超过 2000 字" in r.text
    r = await client.post(link, data={"level": "4", "reasons": "<b>"})
    assert r.status_code == 422 and "评价原因无效" in r.text
    assert await ratings_of(db, case["case_no"]) == []


async def test_link_is_single_use(client, db, link, case):
    assert (await client.post(link, data={"level": "4"})).status_code == 303
    again = await client.get(link)
    assert again.status_code == 409
    assert "您已完成评价" in again.text and "此链接已使用" in again.text
    replay = await client.post(link, data={"level": "1", "comment": "再评一次"})
    assert replay.status_code == 409 and "您已完成评价" in replay.text
    [row] = await ratings_of(db, case["case_no"])
    assert row.level == 4


async def test_case_rated_elsewhere_answers_already_rated(client, db, world, link, case):
    r = await client.post(
        "/api/v1/evaluations",
        headers={"X-Api-Key": world.keys["hall_a_pad"]},
        json={"case_no": case["case_no"], "channel": "pad", "level": 5},
    )
    assert r.status_code == 201
    page = await client.post(link, data={"level": "3"})
    assert page.status_code == 409 and "您已完成评价" in page.text
    assert len(await ratings_of(db, case["case_no"])) == 1


async def test_expired_link_says_so(client, db, link, case):
    await db.execute(update(Invitation).values(expires_at=now() - timedelta(minutes=1)))
    await db.commit()
    r = await client.get(link)
    assert r.status_code == 410 and "此评价链接已过期" in r.text
    r = await client.post(link, data={"level": "5"})
    assert r.status_code == 410 and "此评价链接已过期" in r.text
    assert await ratings_of(db, case["case_no"]) == []


async def test_forged_or_unknown_link_is_not_found(client, link):
    for path in ("/r/not-a-token", link[:-3] + "abc", link + "x"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert "评价链接无效" in r.text and r.headers["content-type"].startswith("text/html")
        assert (await client.post(path, data={"level": "5"})).status_code == 404
    assert (await client.get("/r/not-a-token/qr.svg")).status_code == 404


async def test_thanks_page_of_an_unused_link_goes_back_to_the_form(client, link):
    r = await client.get(f"{link}/thanks")
    assert r.status_code == 303 and r.headers["location"] == link


async def test_qr_code_of_a_link(client, link):
    r = await client.get(f"{link}/qr.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.lstrip().startswith("<svg") and "扫码评价" in r.text


async def test_second_link_of_a_rated_case_is_refused(client, db, world, link, case):
    other = await invite(client, world, case["case_no"])
    assert (await client.post(link, data={"level": "5"})).status_code == 303
    r = await client.post(other, data={"level": "5"})
    assert r.status_code == 409 and "您已完成评价" in r.text
    total = (await db.execute(select(func.count()).select_from(Evaluation))).scalar_one()
    assert total >= 1 and len(await ratings_of(db, case["case_no"])) == 1


async def test_font_size_is_remembered_without_javascript(client, link):
    r = await client.get("/font", params={"size": "large", "next": link})
    assert r.status_code == 303 and r.headers["location"] == link
    assert "hcp_font=large" in r.headers["set-cookie"]
    page = await client.get(link)
    assert '<html lang="zh-CN" class="font-large">' in page.text
    assert 'aria-current="true">大</a>' in page.text
    r = await client.get("/font", params={"size": "huge", "next": "//evil.example/"})
    assert r.headers["location"] == "/console" and "set-cookie" not in r.headers


# --- refused links feed the integrity checks (invitation_misuse) -----------------------------


async def _issued_an_hour_ago(db) -> None:
    """Links spent seconds after issue are a signal of their own (fast links): not this one."""
    await db.execute(update(Invitation).values(created_at=now() - timedelta(hours=1)))


async def _misuse_flags(db, case_no: str) -> list:
    from haochaping.integrity.models import IntegrityFlag

    [row] = await ratings_of(db, case_no)
    return list(
        (
            await db.execute(
                select(IntegrityFlag).where(
                    IntegrityFlag.evaluation_id == row.id,
                    IntegrityFlag.check_name == "invitation_misuse",
                )
            )
        ).scalars()
    )


async def test_rating_after_a_forged_link_from_the_same_browser_is_flagged(client, db, link, case):
    assert (await client.get(link[:-3] + "abc")).status_code == 404
    assert (await client.post(link, data={"level": "5"})).status_code == 303
    [flag] = await _misuse_flags(db, case["case_no"])
    assert flag.evidence["refused_forged"] == 1 and flag.state == "open"


async def test_replaying_spent_links_is_recorded_but_reopening_one_is_not(
    client, db, world, link, case
):
    from tests.factories import make_case

    await _issued_an_hour_ago(db)
    assert (await client.post(link, data={"level": "5"})).status_code == 303
    for _ in range(3):  # reopening the spent link (e.g. from the SMS) is harmless
        assert (await client.get(link)).status_code == 409
    second = await make_case(db, world)
    link2 = await invite(client, world, second["case_no"])
    await _issued_an_hour_ago(db)
    assert (await client.post(link2, data={"level": "5"})).status_code == 303
    assert await _misuse_flags(db, second["case_no"]) == []
    for _ in range(2):  # now trying to rate again with both spent links
        assert (await client.post(link, data={"level": "5"})).status_code == 409
    third = await make_case(db, world)
    link3 = await invite(client, world, third["case_no"])
    await _issued_an_hour_ago(db)
    assert (await client.post(link3, data={"level": "5"})).status_code == 303
    [flag] = await _misuse_flags(db, third["case_no"])
    assert flag.evidence["refused_reused"] == 2
