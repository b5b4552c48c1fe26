"""Integrations behind Protocols, chosen by settings (STYLE rule 8)."""

from __future__ import annotations

from haochaping.config import Settings
from haochaping.integrations import mail, sms, webhook
from haochaping.integrations.notify import ChannelNotifier, SmsGateway


def build_notifier(settings: Settings) -> ChannelNotifier:
    """The notifier the settings ask for: SMTP e-mail, a log, HTTP or no SMS gateway, and
    signed webhook POSTs."""
    email = mail.SmtpEmailSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.mail_from,
        username=settings.smtp_user,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )
    gateway: SmsGateway | None = None
    if settings.sms_gateway == "log":
        gateway = sms.LogSmsGateway(settings.sms_log_path)
    elif settings.sms_gateway == "http":
        if not settings.sms_http_url:
            raise ValueError("HAOCHAPING_SMS_HTTP_URL must be set when HAOCHAPING_SMS_GATEWAY=http")
        gateway = sms.HttpSmsGateway(
            url=settings.sms_http_url,
            template=sms.parse_template(settings.sms_http_template),
            token=settings.sms_http_token,
            auth_header=settings.sms_http_auth_header,
            auth_prefix=settings.sms_http_auth_prefix,
            timeout=settings.sms_http_timeout_seconds,
        )
    hooks = webhook.HttpWebhookSender(
        timeout=settings.webhook_timeout_seconds, signature_header="X-Haochaping-Signature"
    )
    return ChannelNotifier(email=email, sms=gateway, webhook=hooks)
