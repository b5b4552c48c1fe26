"""E-mail over SMTP with the standard library's `smtplib`, run in a worker thread.

`smtplib` rather than aiosmtplib: one blocking session per message in `asyncio.to_thread` is
enough for notification volumes, and it adds no dependency.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from haochaping.core.notify import DeliveryError


class SmtpEmailSender:
    """An `EmailSender` that hands each message to an SMTP server (STARTTLS and AUTH optional)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str = "",
        password: str = "",
        starttls: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout = timeout
        self.domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"

    def build(self, *, to: str, subject: str, body: str, key: str) -> EmailMessage:
        """The MIME message: UTF-8 body, RFC 2047 headers, a Message-ID derived from `key`."""
        if "@" not in parseaddr(to)[1]:
            raise DeliveryError(f"收件人邮箱地址无效：{to}", permanent=True)
        msg = EmailMessage()
        try:
            msg["From"] = self.sender
            msg["To"] = to
            # A header may not span lines; the subject is one line however it was written.
            msg["Subject"] = " ".join(subject.split())
        except ValueError as exc:
            raise DeliveryError(f"邮件头无效：{exc}", permanent=True) from exc
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = f"<{key}@{self.domain}>"
        # Notifications: out-of-office replies and the like should not answer (RFC 3834).
        msg["Auto-Submitted"] = "auto-generated"
        # base64 passes any relay, including those without 8BITMIME.
        msg.set_content(body, charset="utf-8", cte="base64")
        return msg

    async def send(self, *, to: str, subject: str, body: str, key: str) -> None:
        """Send one e-mail; a refused recipient is permanent, anything else is retried."""
        msg = self.build(to=to, subject=subject, body=body, key=key)
        await asyncio.to_thread(self._send_blocking, msg)

    def _send_blocking(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"邮件服务器拒收收件人：{_describe(exc.recipients)}",
                permanent=all(code >= 500 for code in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            text = _text(exc.smtp_error)
            raise DeliveryError(f"邮件服务器返回错误 {exc.smtp_code}：{text}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"无法通过邮件服务器 {self.host}:{self.port} 发送：{exc or type(exc).__name__}"
            ) from exc


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def _describe(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "；".join(f"{addr} {code} {_text(msg)}" for addr, (code, msg) in recipients.items())
