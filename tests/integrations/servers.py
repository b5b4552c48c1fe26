"""Real local servers for the integration tests: an SMTP server (aiosmtpd) and a fake SMS
operator (http.server) — the operator is the one thing we fake."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


@dataclass
class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message it accepts.

    Recipients whose local part starts with `nobody` are refused with 550; with `credentials`
    set, AUTH is offered (without TLS: this is a loopback test) and checked.
    """

    port: int = field(default_factory=free_port)
    delay: float = 0.0  # seconds spent on each DATA, to make concurrent senders overlap
    credentials: tuple[str, str] | None = None
    received: list[ReceivedMail] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.delay:
            time.sleep(self.delay)  # blocks only the server's own thread
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self.received.append(
            ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), raw, message)
        )  # type: ignore[arg-type]
        return "250 OK"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.credentials is not None:
            login, password = auth_data.login.decode(), auth_data.password.decode()
            if (login, password) == self.credentials:
                self.logins.append(login)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def to(self, recipient: str) -> list[ReceivedMail]:
        """The messages received for one recipient."""
        return [m for m in self.received if recipient in m.rcpt_tos]

    def __enter__(self) -> SmtpSink:
        kwargs: dict[str, Any] = {}
        if self.credentials is not None:
            kwargs = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@dataclass
class OperatorRequest:
    path: str
    headers: dict[str, str]
    body: Any


class FakeOperator:
    """An SMS operator's HTTP API on 127.0.0.1: records each POST, answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[OperatorRequest] = []
        operator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                operator.requests.append(OperatorRequest(self.path, dict(self.headers), body))
                answer = json.dumps({"code": "OK" if operator.status < 300 else "ERROR"}).encode()
                self.send_response(operator.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms/send"

    def __enter__(self) -> FakeOperator:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
