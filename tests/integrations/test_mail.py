"""SMTP e-mail against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import pytest

from haochaping.core.notify import DeliveryError
from haochaping.integrations import mail
from tests.integrations.servers import SmtpSink, free_port

SUBJECT = "【好差评】新的差评工单：不动产登记 — 请于3个工作日内核实"
BODY = "您单位收到一条差评（1 星）。\n评价内容：窗口人员态度差，材料反复退回。\n请登录系统处理。"


def sender(port: int, **kwargs) -> mail.SmtpEmailSender:
    return mail.SmtpEmailSender(
        host="127.0.0.1",
        port=port,
        timeout=5,
        sender="好差评平台 <noreply@haochaping.test>",
        **kwargs,
    )


async def test_email_reaches_the_server_with_chinese_subject_and_body():
    with SmtpSink() as sink:
        await sender(sink.port).send(
            to="unit-a@gov.test", subject=SUBJECT, body=BODY, key="hcp-outbox-7-1"
        )
    [got] = sink.received
    assert got.rcpt_tos == ["unit-a@gov.test"]
    assert got.mail_from == "noreply@haochaping.test"
    msg = got.message
    assert msg["Subject"] == SUBJECT
    assert msg["To"] == "unit-a@gov.test"
    assert msg["From"].addresses[0].display_name == "好差评平台"
    assert msg["Message-ID"] == "<hcp-outbox-7-1@haochaping.test>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_charset() == "utf-8"
    assert msg.get_content().rstrip("\n") == BODY
    # On the wire every header is 7-bit: the Chinese subject travels RFC 2047-encoded.
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")
    assert b"=?utf-8?" in head


async def test_multiline_subject_is_folded_into_one_line():
    with SmtpSink() as sink:
        await sender(sink.port).send(
            to="a@gov.test", subject="超期预警\n工单 W-1", body="正文", key="k-1"
        )
    assert sink.received[0].message["Subject"] == "超期预警 工单 W-1"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_auth_logs_in_with_the_configured_account():
    with SmtpSink(credentials=("notify", "s3cret")) as sink:
        await sender(sink.port, username="notify", password="s3cret").send(
            to="a@gov.test", subject="回访邀请", body="正文", key="k-2"
        )
        with pytest.raises(DeliveryError) as refused:
            await sender(sink.port, username="notify", password="wrong").send(
                to="a@gov.test", subject="回访邀请", body="正文", key="k-3"
            )
    assert sink.logins == ["notify"]
    assert len(sink.received) == 1
    assert "535" in str(refused.value)
    assert not refused.value.permanent


async def test_server_down_is_a_retryable_failure():
    port = free_port()
    with pytest.raises(DeliveryError) as exc:
        await sender(port).send(to="a@gov.test", subject="主题", body="正文", key="k")
    assert not exc.value.permanent
    assert f"127.0.0.1:{port}" in str(exc.value)


async def test_refused_recipient_is_a_permanent_failure():
    with SmtpSink() as sink, pytest.raises(DeliveryError) as exc:
        await sender(sink.port).send(to="nobody@gov.test", subject="主题", body="正文", key="k")
    assert exc.value.permanent
    assert "550" in str(exc.value)
    assert sink.received == []


@pytest.mark.parametrize("to", ["", "not-an-address", "a@b.test\r\nBcc: x@evil.test"])
async def test_malformed_recipient_is_refused_before_connecting(to):
    with pytest.raises(DeliveryError) as exc:
        await sender(free_port()).send(to=to, subject="主题", body="正文", key="k")
    assert exc.value.permanent
