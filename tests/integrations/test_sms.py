"""SMS gateways: the JSON-lines file, and the generic HTTP gateway against a fake operator."""

from __future__ import annotations

import json

import pytest

from haochaping.core.notify import DeliveryError
from haochaping.integrations import build_notifier, mail, sms
from tests.integrations.servers import FakeOperator, free_port

TEXT = "【好差评】您对“不动产登记”的差评已整改完毕，请回复 1 满意、2 基本满意、3 不满意。"


async def test_log_gateway_appends_one_json_line_per_message(tmp_path):
    path = tmp_path / "sub" / "sms.jsonl"
    gateway = sms.LogSmsGateway(path)
    await gateway.send(to="13800000001", text=TEXT, key="hcp-outbox-1-1")
    await gateway.send(to="13800000002", text='含"引号"\n与换行', key="hcp-outbox-2-1")
    raw = path.read_text(encoding="utf-8")
    assert "不动产登记" in raw  # readable in the file, not \u-escaped
    first, second = (json.loads(line) for line in raw.splitlines())
    assert (first["to"], first["text"], first["key"]) == ("138****0001", TEXT, "hcp-outbox-1-1")
    assert second["text"] == '含"引号"\n与换行'
    assert first["at"].endswith("+00:00")


async def test_log_gateway_masks_the_number_and_link_tokens(tmp_path):
    """The file is personal data otherwise: a number in the clear, a link that opens a
    citizen's bad review. Both are masked; the message key still identifies the message."""
    path = tmp_path / "sms.jsonl"
    token = "eyJlIjo0Mn0.Zx9aQ1.b8c2f0d1e4a7_kq-9XlM"
    text = f"【好差评】办理进度：https://hcp.gov.cn/p/{token} 评价：http://127.0.0.1:8011/r/{token}"
    await sms.LogSmsGateway(path).send(to="13912345678", text=text, key="hcp-outbox-9-1")
    raw = path.read_text(encoding="utf-8")
    assert "13912345678" not in raw and token not in raw and token[4:12] not in raw
    [line] = (json.loads(x) for x in raw.splitlines())
    assert line["to"] == "139****5678"
    assert line["text"] == (
        "【好差评】办理进度：https://hcp.gov.cn/p/eyJl**** 评价：http://127.0.0.1:8011/r/eyJl****"
    )
    assert line["key"] == "hcp-outbox-9-1"


async def test_log_gateway_that_cannot_write_fails(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    gateway = sms.LogSmsGateway(tmp_path / "taken" / "sms.jsonl")
    with pytest.raises(DeliveryError) as exc:
        await gateway.send(to="13800000001", text=TEXT, key="k")
    assert not exc.value.permanent


def http_gateway(url: str, **kwargs) -> sms.HttpSmsGateway:
    template = sms.parse_template(
        '{"sign": "好差评", "mobiles": ["$to"], "content": "$text", "outId": "$key", "ttl": 3}'
    )
    return sms.HttpSmsGateway(url=url, template=template, timeout=5, **kwargs)


async def test_http_gateway_posts_the_rendered_template_with_the_token():
    with FakeOperator() as operator:
        await http_gateway(operator.url, token="tok-123").send(
            to="13800000001", text=TEXT, key="hcp-outbox-9-1"
        )
    [request] = operator.requests
    assert request.path == "/sms/send"
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {
        "sign": "好差评",
        "mobiles": ["13800000001"],
        "content": TEXT,
        "outId": "hcp-outbox-9-1",
        "ttl": 3,
    }


async def test_http_gateway_uses_a_custom_auth_header():
    with FakeOperator() as operator:
        await http_gateway(operator.url, token="k", auth_header="X-Api-Key", auth_prefix="").send(
            to="13800000001", text="短信", key="k"
        )
    assert operator.requests[0].headers["X-Api-Key"] == "k"
    assert "Authorization" not in operator.requests[0].headers


@pytest.mark.parametrize("status", [500, 503, 400, 302])
async def test_http_gateway_treats_non_2xx_as_failure(status):
    with FakeOperator(status=status) as operator, pytest.raises(DeliveryError) as exc:
        await http_gateway(operator.url).send(to="13800000001", text=TEXT, key="k")
    assert f"HTTP {status}" in str(exc.value)
    assert len(operator.requests) == 1


async def test_http_gateway_unreachable_is_a_failure():
    with pytest.raises(DeliveryError, match="无法连接短信网关"):
        await http_gateway(f"http://127.0.0.1:{free_port()}/sms").send(
            to="13800000001", text=TEXT, key="k"
        )


def test_template_substitutes_string_values_only():
    rendered = sms.render_template(
        {"$to": "$to", "n": 1, "list": ["x-$key", {"deep": "$text"}], "cost": "$5", "ok": True},
        {"to": "138", "text": "文本", "key": "K"},
    )
    assert rendered == {
        "$to": "138",
        "n": 1,
        "list": ["x-K", {"deep": "文本"}],
        "cost": "$5",
        "ok": True,
    }


@pytest.mark.parametrize("raw", ["not json", "[1, 2]"])
def test_bad_template_is_refused_at_startup(settings, raw):
    bad = settings.model_copy(
        update={"sms_gateway": "http", "sms_http_url": "http://x.test/", "sms_http_template": raw}
    )
    with pytest.raises(ValueError, match="HAOCHAPING_SMS_HTTP_TEMPLATE"):
        build_notifier(bad)


def test_factory_follows_the_settings(settings, tmp_path):
    log = build_notifier(
        settings.model_copy(update={"sms_gateway": "log", "sms_log_path": str(tmp_path / "s")})
    )
    assert isinstance(log.email, mail.SmtpEmailSender)
    assert isinstance(log.sms, sms.LogSmsGateway)
    http = build_notifier(
        settings.model_copy(update={"sms_gateway": "http", "sms_http_url": "http://op.test/send"})
    )
    assert isinstance(http.sms, sms.HttpSmsGateway)
    assert build_notifier(settings.model_copy(update={"sms_gateway": "none"})).sms is None
    with pytest.raises(ValueError, match="HAOCHAPING_SMS_HTTP_URL"):
        build_notifier(settings.model_copy(update={"sms_gateway": "http", "sms_http_url": ""}))


async def test_without_a_gateway_sms_fails_permanently(settings):
    notifier = build_notifier(settings.model_copy(update={"sms_gateway": "none"}))
    with pytest.raises(DeliveryError, match="未配置短信网关") as exc:
        await notifier.send(channel="sms", recipient="13800000001", subject="", body=TEXT, key="k")
    assert exc.value.permanent


async def test_notifier_sends_sms_body_through_the_configured_gateway(settings):
    with FakeOperator() as operator:
        notifier = build_notifier(
            settings.model_copy(
                update={"sms_gateway": "http", "sms_http_url": operator.url, "sms_http_token": "t"}
            )
        )
        await notifier.send(
            channel="sms",
            recipient="13800000009",
            subject="不发送的主题",
            body=TEXT,
            key="hcp-outbox-3-1",
        )
    assert operator.requests[0].body == {"to": "13800000009", "text": TEXT, "id": "hcp-outbox-3-1"}
