"""What the outbox delivers through: the `Notifier` Protocol and the error it raises.

They live in core because the outbox (core) is their consumer; `integrations` implements
them (e-mail, SMS) and sits above core, so the two never import each other both ways.
"""

from __future__ import annotations

from typing import Protocol


class DeliveryError(Exception):
    """A message that could not be delivered; `permanent` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Notifier(Protocol):
    """What the outbox talks to: one message on one channel to one recipient.

    `key` identifies the message across retries (the outbox row), so that a receiver can
    recognise the rare duplicate that at-least-once delivery allows after a crash.
    """

    async def send(
        self, *, channel: str, recipient: str, subject: str, body: str, key: str
    ) -> None: ...
