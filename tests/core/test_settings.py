"""Settings that decide what is safe: the public base URL, production secrets, the session
cookie and the SMS log gateway (issue 8)."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError
from starlette.middleware.sessions import SessionMiddleware

from haochaping.app import create_app
from haochaping.config import DEV_SECRET, Settings

DATA_KEYS = "k1:AAECAwQFBgcICQoLDA0ODw=="


def production(**values) -> Settings:
    values = {
        "env": "production",
        "secret_key": secrets.token_urlsafe(48),
        "data_keys": DATA_KEYS,
        "sms_gateway": "http",
        **values,
    }
    return Settings(_env_file=None, **values)


@pytest.fixture(autouse=True)
def no_settings_from_outside(monkeypatch):
    for name in (
        "BASE_URL",
        "HOST",
        "PORT",
        "ENV",
        "SECRET_KEY",
        "SESSION_COOKIE_SECURE",
        "SMS_GATEWAY",
        "DATA_KEYS",
    ):
        monkeypatch.delenv(f"HAOCHAPING_{name}", raising=False)


def test_base_url_follows_the_listen_address_when_unset():
    assert Settings(_env_file=None).base_url == "http://127.0.0.1:8000"
    assert Settings(_env_file=None, port=8011).base_url == "http://127.0.0.1:8011"
    # A wildcard address is reached on loopback from this machine; IPv6 is bracketed.
    assert Settings(_env_file=None, host="0.0.0.0", port=9000).base_url == "http://127.0.0.1:9000"
    assert Settings(_env_file=None, host="::1", port=9000).base_url == "http://[::1]:9000"


def test_base_url_follows_the_port_given_in_the_environment(monkeypatch):
    # `serve --port` hands the port to uvicorn's app through HAOCHAPING_PORT.
    monkeypatch.setenv("HAOCHAPING_PORT", "8011")
    assert Settings(_env_file=None).base_url == "http://127.0.0.1:8011"
    monkeypatch.setenv("HAOCHAPING_BASE_URL", "https://hcp.example.gov.cn")
    assert Settings(_env_file=None).base_url == "https://hcp.example.gov.cn"


@pytest.mark.parametrize(
    "weak",
    [
        DEV_SECRET,
        "short-but-random-Xq9",  # under 32 characters
        "a" * 48,  # one character
        "passwordpasswordpasswordpassword",  # 7 distinct characters
        "0123456789" * 4,  # a repeated block
        "Zq8-Lm3!Rt6@Wv1#Yp4$Bn7%Kd2^Hs5&xxxxxxxxf",  # a run of eight
    ],
)
def test_production_refuses_weak_secrets(weak):
    with pytest.raises(ValidationError, match="HAOCHAPING_SECRET_KEY is refused") as exc:
        production(secret_key=weak)
    assert weak not in str(exc.value)  # the refusal does not print the secret


@pytest.mark.parametrize(
    "strong",
    [secrets.token_urlsafe(48), secrets.token_hex(16), "correct horse battery staple, 2026!"],
)
def test_production_accepts_random_secrets(strong):
    assert production(secret_key=strong).secret_key == strong


def test_development_keeps_its_secret_for_loopback_only():
    dev = Settings(_env_file=None)
    assert dev.listening_problem("127.0.0.1") is None
    assert dev.listening_problem("localhost") is None
    assert dev.listening_problem("::1") is None
    for host in ("0.0.0.0", "192.168.1.20", "::"):
        assert "HAOCHAPING_SECRET_KEY" in dev.listening_problem(host)
    own = Settings(_env_file=None, secret_key=secrets.token_urlsafe(48))
    assert own.listening_problem("0.0.0.0") is None


def test_session_cookie_is_secure_by_default_in_production_only():
    assert production().session_cookie_secure is True
    assert production(session_cookie_secure=False).session_cookie_secure is False
    assert Settings(_env_file=None).session_cookie_secure is False
    assert Settings(_env_file=None, session_cookie_secure=True).session_cookie_secure is True


def test_production_refuses_the_log_sms_gateway_unless_named(monkeypatch):
    with pytest.raises(ValidationError, match="HAOCHAPING_SMS_GATEWAY"):
        Settings(
            _env_file=None,
            env="production",
            secret_key=secrets.token_urlsafe(48),
            data_keys=DATA_KEYS,
        )
    assert production(sms_gateway="log").sms_gateway == "log"
    monkeypatch.setenv("HAOCHAPING_SMS_GATEWAY", "log")
    named = Settings(
        _env_file=None, env="production", secret_key=secrets.token_urlsafe(48), data_keys=DATA_KEYS
    )
    assert named.sms_gateway == "log"


def test_production_app_sends_the_session_cookie_secure_only():
    """The app's session middleware follows the setting: HTTPS only, SameSite=Lax."""
    [session] = [m for m in create_app(production()).user_middleware if m.cls is SessionMiddleware]
    assert (session.kwargs["https_only"], session.kwargs["same_site"]) == (True, "lax")
    [dev] = [
        m
        for m in create_app(Settings(_env_file=None)).user_middleware
        if m.cls is SessionMiddleware
    ]
    assert dev.kwargs["https_only"] is False
