"""The senders behind the outbox's `Notifier` (core.notify): `EmailSender`, `SmsGateway`, and
`ChannelNotifier`, which hands each message to its channel's sender."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from haochaping.core.notify import DeliveryError


class EmailSender(Protocol):
    """Sends one e-mail; raises `DeliveryError` when it was not accepted."""

    async def send(self, *, to: str, subject: str, body: str, key: str) -> None: ...


class WebhookSender(Protocol):
    """POSTs one signed body to a URL; raises `DeliveryError` unless it was accepted (2xx)."""

    async def send(self, *, url: str, body: str, signature: str, key: str) -> None: ...


class SmsGateway(Protocol):
    """Sends one text message; raises `DeliveryError` when the operator did not accept it."""

    async def send(self, *, to: str, text: str, key: str) -> None: ...


@dataclass(frozen=True)
class ChannelNotifier:
    """A `Notifier` that hands e-mail and SMS to the configured sender of each channel."""

    email: EmailSender | None
    sms: SmsGateway | None
    webhook: WebhookSender | None = None

    async def send(
        self, *, channel: str, recipient: str, subject: str, body: str, key: str
    ) -> None:
        """Deliver one message through its channel's sender."""
        if channel == "email":
            if self.email is None:
                raise DeliveryError("未配置邮件发送服务", permanent=True)
            await self.email.send(to=recipient, subject=subject, body=body, key=key)
        elif channel == "sms":
            if self.sms is None:
                raise DeliveryError("未配置短信网关", permanent=True)
            await self.sms.send(to=recipient, text=body, key=key)
        elif channel == "webhook":
            if self.webhook is None:
                raise DeliveryError("未配置 Webhook 推送", permanent=True)
            # A webhook message's subject is its signature header (computed when queued).
            await self.webhook.send(url=recipient, body=body, signature=subject, key=key)
        else:
            raise DeliveryError(f"未知的通知渠道：{channel}", permanent=True)
