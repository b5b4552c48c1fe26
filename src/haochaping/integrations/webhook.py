"""Delivering a webhook: one signed POST of the outbox message's body to its URL."""

from __future__ import annotations

import httpx

from haochaping.core.notify import DeliveryError

# The receiver says the endpoint is gone for good: no retry.
GONE = 410


class HttpWebhookSender:
    """POSTs JSON with the signature header; a 2xx answer is a delivery, anything else (or no
    answer) a failure the outbox retries with back-off."""

    def __init__(self, *, timeout: float, signature_header: str) -> None:
        self.timeout = timeout
        self.signature_header = signature_header

    async def send(self, *, url: str, body: str, signature: str, key: str) -> None:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "haochaping-webhook/1",
            self.signature_header: signature,
            "X-Haochaping-Delivery": key,
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                answer = await client.post(url, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"推送失败：{type(exc).__name__}") from exc
        if not 200 <= answer.status_code < 300:
            raise DeliveryError(
                f"接收方答复 HTTP {answer.status_code}", permanent=answer.status_code == GONE
            )
