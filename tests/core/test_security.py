"""Masking of personal data, API keys, passwords, signed tokens, cursors: pure functions."""

from __future__ import annotations

import hashlib
import time

import pytest
from pydantic import ValidationError

from haochaping.core import security
from haochaping.core.errors import Malformed
from haochaping.core.schemas import (
    MAX_ID,
    InputModel,
    Timestamp,
    decode_cursor,
    decode_int_cursor,
    encode_cursor,
)


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧**娜"),
        ("李", "李*"),
        ("王小明", "王*明"),
        (None, None),
        ("", ""),
    ],
)
def test_names_keep_first_and_last_character(name, masked):
    assert security.mask_name(name) == masked


@pytest.mark.parametrize(
    ("cert", "masked"),
    [
        ("110101199003070011", "1101**********0011"),
        ("91330100MA2B3C4D5E", "9133**********4D5E"),
        ("E1234567", "E*******"),
        (None, None),
    ],
)
def test_certificate_numbers_show_only_their_ends(cert, masked):
    assert security.mask_cert_no(cert) == masked


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13812345678", "138****5678"),
        ("0571-8888", "057**8888"),
        ("12345", "*****"),
        (None, None),
    ],
)
def test_phone_numbers_hide_the_middle(phone, masked):
    assert security.mask_phone(phone) == masked


def test_numbers_typed_into_free_text_are_masked():
    text = "我的身份证110101199003070011，电话13812345678，流水号 2138123456789 不是电话"
    masked = security.mask_text(text)
    assert "110101199003070011" not in masked and "110101********0011" in masked
    assert "13812345678，" not in masked and "138****5678" in masked
    assert "2138123456789" in masked  # a longer run of digits is not a phone number
    assert security.mask_text(None) is None


def test_api_keys_are_random_and_stored_as_sha256():
    a, b = security.new_api_key(), security.new_api_key()
    assert a != b and a.startswith(security.API_KEY_PREFIX) and len(a) > 40
    assert security.hash_api_key(a) == hashlib.sha256(a.encode()).hexdigest()


def test_passwords_verify_only_against_their_hash():
    h = security.hash_password("correct horse")
    assert h != "correct horse"
    assert security.verify_password(h, "correct horse")
    assert not security.verify_password(h, "wrong horse")
    assert not security.verify_password(None, "correct horse")
    assert not security.verify_password("not-a-hash", "correct horse")


def test_signed_tokens_refuse_forgery_other_purposes_and_age():
    token = security.signer("s" * 40, "purpose").dumps({"uid": 7})
    assert security.load_signed("s" * 40, "purpose", token, 60) == {"uid": 7}
    assert security.load_signed("t" * 40, "purpose", token, 60) is None  # other secret
    assert security.load_signed("s" * 40, "other", token, 60) is None  # other purpose
    # A changed signature (in its middle: the last base64 character carries spare bits).
    body, sig = token.rsplit(".", 1)
    forged = f"{body}.{sig[:5]}{'A' if sig[5] != 'A' else 'B'}{sig[6:]}"
    assert security.load_signed("s" * 40, "purpose", forged, 60) is None
    assert security.load_signed("s" * 40, "purpose", "garbage", 60) is None
    # Not a dict: refused although the signature is good.
    assert (
        security.load_signed(
            "s" * 40, "purpose", security.signer("s" * 40, "purpose").dumps([1]), 60
        )
        is None
    )


def test_signed_tokens_expire(monkeypatch):
    token = security.signer("s" * 40, "purpose").dumps({"uid": 7})
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert security.load_signed("s" * 40, "purpose", token, 60) is None
    assert security.load_signed("s" * 40, "purpose", token, None) == {"uid": 7}


@pytest.mark.parametrize("key", [1, 42, MAX_ID, "330102", "代码"])
def test_cursors_round_trip(key):
    cursor = encode_cursor(key)
    assert "=" not in cursor
    assert decode_cursor(cursor) == str(key)


@pytest.mark.parametrize(
    "cursor",
    [
        "@@@",
        "a",
        encode_cursor("x"),
        encode_cursor(MAX_ID + 1),
        encode_cursor("٣"),
        encode_cursor("1" * 30),
    ],
)
def test_integer_cursors_we_did_not_make_are_malformed(cursor):
    with pytest.raises(Malformed) as exc:
        decode_int_cursor(cursor)
    assert exc.value.status_code == 400 and exc.value.code == "invalid_cursor"


def test_no_cursor_means_the_first_page():
    assert decode_cursor(None) is None and decode_int_cursor("") is None


class Probe(InputModel):
    text: str | None = None
    words: list[str] = []
    at: Timestamp | None = None


def test_input_models_refuse_nul_characters_and_unknown_fields():
    with pytest.raises(ValidationError) as exc:
        Probe(text="a\x00b")
    assert exc.value.errors()[0]["loc"] == ("text",)
    with pytest.raises(ValidationError):
        Probe(words=["ok", "\x00"])
    with pytest.raises(ValidationError):
        Probe.model_validate({"txt": "typo"})
    assert Probe(text="  好 ", words=["a"]).text == "好"


@pytest.mark.parametrize(
    "value", ["2026-01-01T08:00:00+08:00", "1900-01-01T12:00:00+00:00", "2999-12-31T00:00:00Z"]
)
def test_timestamps_in_range_are_kept_with_their_offset(value):
    assert Probe(at=value).at.utcoffset() is not None


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-01T08:00:00",
        "0001-01-01T00:00:00+08:00",
        "9999-12-31T23:59:59-01:00",
        "1899-12-31T00:00:00Z",
    ],
)
def test_timestamps_without_offset_or_out_of_range_are_refused(value):
    with pytest.raises(ValidationError):
        Probe(at=value)
