"""Settings: one validated class, read from the environment (HAOCHAPING_*) or `.env`."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me"
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT = 10
# Long enough that a random hex secret (16 symbols) almost never has such a run (~1e-7).
MAX_SECRET_RUN = 8


def secret_weakness(secret: str) -> str | None:
    """Why a production secret is too weak to sign tokens and cookies, or None.

    Refused: the development constant, fewer than 32 characters, fewer than 10 distinct
    characters (`aaaa…`, `password` four times), a run of eight equal characters, or a block
    repeated to fill the length (`0123456789` four times)."""
    if secret == DEV_SECRET:
        return "it is the published development secret"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"it is shorter than {MIN_SECRET_LENGTH} characters"
    if len(set(secret)) < MIN_SECRET_DISTINCT:
        return f"it has fewer than {MIN_SECRET_DISTINCT} distinct characters"
    if any(
        len(set(secret[i : i + MAX_SECRET_RUN])) == 1
        for i in range(len(secret) - MAX_SECRET_RUN + 1)
    ):
        return f"it repeats one character {MAX_SECRET_RUN} times in a row"
    if any(secret[p:] == secret[:-p] for p in range(1, len(secret) // 2 + 1)):
        return "it is one block of characters repeated"
    return None


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen_url(host: str, port: int) -> str:
    """The http URL of a listening address; a wildcard address is reached on loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


class Settings(BaseSettings):
    """Everything the service can be told from outside; injected into `create_app`."""

    model_config = SettingsConfigDict(
        env_prefix="HAOCHAPING_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # a refused setting must not print the secrets beside it
    )

    env: str = Field("development", pattern="^(development|test|production)$")
    database_url: str = "sqlite+aiosqlite:///./data/haochaping.db"
    secret_key: str = DEV_SECRET
    # Public address in rating links, QR codes and e-mails. Unset: the address the server
    # listens on (http://HOST:PORT); set it behind a reverse proxy.
    base_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Evaluation rules: the national defaults; each region's policy may set its own window.
    evaluation_window_days: int = Field(30, ge=1, le=3650)
    good_levels: tuple[int, ...] = (3, 4, 5)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    token_ttl_seconds: int = Field(8 * 3600, ge=60)
    # Unset: True in production (the cookie only travels over HTTPS), False otherwise.
    session_cookie_secure: bool = False
    db_pool_size: int = Field(10, ge=1)
    db_echo: bool = False
    # The closed loop: attachments and the periodic deadline job.
    upload_dir: str = "./data/uploads"
    attachment_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    # Seconds between passes of the deadline job inside `serve` (0: only `haochaping worker`).
    job_interval_seconds: float = Field(60, ge=0)
    # Seconds a pass may spend keeping the most-asked rankings of closed periods (issue 10,
    # `analytics/jobs.warm`); the next pass goes on where it stopped (0: never).
    ranking_warm_seconds: float = Field(20, ge=0, le=600)
    # Encryption at rest of certificate and phone numbers (SM4): "k1:<base64 16 bytes>,k2:...";
    # empty: a key derived from the secret (development). New values use data_key_id.
    data_keys: str = ""
    data_key_id: str = ""
    # Abuse limits (429), shared across processes through Redis when a URL is given.
    redis_url: str = ""  # e.g. redis://127.0.0.1:6379/0; empty: per-process memory
    # The detectors' cheap checks in the intake request (self-rating, bursts, link misuse);
    # off only to measure their cost (bench/intake.py) — the periodic batch checks still run.
    integrity_intake_checks: bool = True
    # Group commit (evaluations/group.py): single ratings arriving together are stored in one
    # transaction, each answered after its COMMIT. Off: one transaction per request.
    intake_group_commit: bool = True
    # At most this many ratings per group, and how long the writer waits for more once the
    # first has arrived (milliseconds; 0: only what queued while the last group was written).
    intake_group_max: int = Field(64, ge=1, le=1000)
    intake_group_wait_ms: float = Field(2.0, ge=0, le=100)
    # Groups written at once per server process (PostgreSQL; SQLite has one writer anyway).
    intake_group_writers: int = Field(1, ge=1, le=16)
    # The lean path for `POST /api/v1/evaluations` and `/evaluations/batch` (core/lean.py):
    # API-key requests served without the framework's routing, dependencies and middleware,
    # with the same answers. Off only to measure what it saves (bench/intake.py --env-ab).
    intake_lean: bool = True
    # The national interface (`POST /api/v1/compat/evaluations`): which end of its 1–5
    # `satisfaction` is 非常满意 ("ascending": 5, the national default; "descending": 1, as
    # GB/T 39046), and its `pf` channel codes as JSON, e.g. {"6": "sms"} where 6 means SMS.
    compat_satisfaction: str = Field("ascending", pattern="^(ascending|descending)$")
    compat_pf: dict[int, Literal["pc", "mobile", "qrcode", "pad", "terminal", "phone", "sms"]] = {
        1: "pc",
        2: "mobile",
        3: "qrcode",
        4: "pad",
        5: "terminal",
        6: "phone",
        7: "sms",
    }
    # Reporting up (上报, issue 14): the parent instance's address (its origin, e.g.
    # https://province.example.gov.cn) and the API key it issued with the `exchange` channel;
    # empty URL: this instance reports to no one. The satisfaction direction and `pf` codes
    # of the parent's interface (provinces differ), the batch size, how long after receipt a
    # rating is sent (transactions still in flight commit within it) and one POST's timeout.
    upstream_url: str = ""
    upstream_key: str = ""
    upstream_satisfaction: str = Field("ascending", pattern="^(ascending|descending)$")
    upstream_pf: dict[int, Literal["pc", "mobile", "qrcode", "pad", "terminal", "phone", "sms"]] = {
        1: "pc",
        2: "mobile",
        3: "qrcode",
        4: "pad",
        5: "terminal",
        6: "phone",
        7: "sms",
    }
    upstream_batch_size: int = Field(1000, ge=1, le=5000)
    # Batches posted before the oldest is answered (the watermark still moves in order).
    upstream_in_flight: int = Field(2, ge=1, le=16)
    upstream_grace_seconds: float = Field(5, ge=0, le=3600)
    upstream_timeout_seconds: float = Field(30, gt=0, le=600)
    # Seconds between reconciliations with the parent in the periodic job (0: never).
    upstream_reconcile_interval_seconds: int = Field(86400, ge=0)
    # Where the sender runs. `haochaping serve` starts it in a process of its own beside the
    # workers, at a lower priority (niceness `upstream_sender_nice`): draining a backlog is
    # background work, and in a worker its reading and encoding would hold up the requests
    # on the same event loop. It sets `upstream_sender_inline` false for its workers; an
    # app served any other way (uvicorn directly, tests) runs the sender in its own loop.
    upstream_sender_inline: bool = True
    upstream_sender_nice: int = Field(10, ge=0, le=19)
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or CIDRs,
    # e.g. "10.0.0.0/8,192.0.2.7"); empty: none, the connecting address is the client's.
    trusted_proxies: str = ""
    rate_citizen_per_minute: int = Field(30, ge=0)  # rating links, per IP (0: off)
    rate_public_per_minute: int = Field(120, ge=0)  # public pages, per IP
    rate_comment_per_hour: int = Field(10, ge=0)  # 综合点评 submissions, per IP (0: off)
    rate_login_per_minute: int = Field(20, ge=0)  # sign-in attempts, per IP
    # Failures of one username from one IP before that IP is locked out of that account;
    # each further failure doubles the lock, up to login_lockout_max_seconds.
    login_max_failures: int = Field(5, ge=1)
    login_lockout_seconds: int = Field(900, ge=30)
    login_lockout_max_seconds: int = Field(24 * 3600, ge=30)
    # Failures of one username from all IPs within login_lockout_seconds past which its
    # sign-ins are slowed to one per login_throttle_seconds (never locked).
    login_account_ceiling: int = Field(50, ge=1)
    login_throttle_seconds: int = Field(3, ge=1)
    # Notifications, delivered through the outbox (core/outbox.py) by the worker.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str = ""  # empty: no SMTP AUTH
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(30, gt=0, le=300)
    mail_from: str = "好差评平台 <noreply@localhost>"
    # "log" is refused in production unless set by name (it keeps masked copies in a file).
    sms_gateway: str = Field("log", pattern="^(log|http|none)$")
    sms_log_path: str = "./data/sms.jsonl"
    sms_http_url: str = ""
    sms_http_token: str = ""
    sms_http_auth_header: str = "Authorization"
    sms_http_auth_prefix: str = "Bearer "  # the header's value is prefix + token
    # JSON sent to the operator; string values may use $to, $text and $key (the message key).
    sms_http_template: str = '{"to": "$to", "text": "$text", "id": "$key"}'
    sms_http_timeout_seconds: float = Field(15, gt=0, le=300)
    # The operator signs inbound replies (POST /api/v1/sms/inbound) with HMAC-SHA256 under
    # this secret; empty: the route answers 503 (replies are not taken).
    sms_inbound_secret: str = ""
    webhook_timeout_seconds: float = Field(15, gt=0, le=300)  # one delivery's POST
    outbox_batch_size: int = Field(50, ge=1, le=1000)
    outbox_max_attempts: int = Field(8, ge=1, le=100)
    outbox_backoff_base_seconds: float = Field(30, gt=0)
    outbox_backoff_max_seconds: float = Field(6 * 3600, gt=0)
    # A claimed message not reported back within the lease (a crashed worker) is retried.
    outbox_lease_seconds: int = Field(300, ge=30)

    @model_validator(mode="before")
    @classmethod
    def _defaults_that_follow(cls, data: Any) -> Any:
        """Defaults derived from other settings when a value is not given."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if not data.get("base_url"):
            fields = cls.model_fields
            data["base_url"] = listen_url(
                str(data.get("host") or fields["host"].default),
                int(data.get("port") or fields["port"].default),
            )
        if data.get("session_cookie_secure") in (None, ""):
            data["session_cookie_secure"] = data.get("env") == "production"
        return data

    @model_validator(mode="after")
    def _proxies_are_networks(self) -> Settings:
        for item in self.proxy_networks:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"HAOCHAPING_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network"
                ) from None
        return self

    @property
    def proxy_networks(self) -> list[str]:
        """The trusted proxies as a list (addresses and CIDR networks)."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @model_validator(mode="after")
    def _secret_in_production(self) -> Settings:
        if self.env != "production":
            return self
        weakness = secret_weakness(self.secret_key)
        if weakness:
            raise ValueError(
                f"HAOCHAPING_SECRET_KEY is refused in production: {weakness}; set a random "
                "string of 32+ characters, e.g. python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'"
            )
        if not self.data_keys:
            raise ValueError("HAOCHAPING_DATA_KEYS must be set in production (SM4 data keys)")
        if self.sms_gateway == "log" and "sms_gateway" not in self.model_fields_set:
            raise ValueError(
                "HAOCHAPING_SMS_GATEWAY must be chosen in production: http (an operator), "
                "none, or log by name (a file of masked messages, nothing is delivered)"
            )
        return self

    def listening_problem(self, host: str) -> str | None:
        """Why the server must not listen on `host` with these settings, or None."""
        if self.secret_key == DEV_SECRET and not is_loopback(host):
            return (
                f"拒绝在 {host} 上启动：HAOCHAPING_SECRET_KEY 仍是公开的开发密钥，"
                "他人可据此伪造管理员令牌和登录会话。请设置随机密钥（32 位以上），例如 "
                "export HAOCHAPING_SECRET_KEY=$(python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')，或只在 127.0.0.1 上监听。"
            )
        return None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_data_dir(self) -> None:
        """Create the folder of an SQLite file database."""
        if self.is_sqlite and ":///" in self.database_url:
            path = self.database_url.split(":///", 1)[1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
