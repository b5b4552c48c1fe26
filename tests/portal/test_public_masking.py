"""Masking of free text for the public pages (`mask_public_text`): pure function."""

from __future__ import annotations

import pytest

from haochaping.core.security import mask_public_text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("身份证330102199001011234", "330102199001011234"),
        ("证件号 33010219900101123X 已核对", "33010219900101123X"),
        ("电话13812345678", "13812345678"),
        ("手机 138 1234 5678 联系", "138 1234 5678"),
        ("手机138-1234-5678", "138-1234-5678"),
        ("座机0571-87654321", "87654321"),
        ("座机057187654321", "057187654321"),
        ("护照E12345678", "E12345678"),
        ("港澳通行证 C1234567 已退回", "C1234567"),
    ],
)
def test_numbers_that_identify_a_person_are_masked(text, secret):
    masked = mask_public_text(text)
    assert masked is not None and secret not in masked
    assert "*" in masked


def test_known_names_are_masked_longest_first_and_the_rest_kept():
    text = "欧阳娜娜反映李娜态度差，已由张三（窗口负责人）约谈李娜。"
    masked = mask_public_text(text, ["李娜", "欧阳娜娜", "张三", "", "王"])
    assert masked == "欧**娜反映李*态度差，已由张*（窗口负责人）约谈李*。"


def test_ordinary_text_dates_and_short_numbers_are_kept():
    text = "已于2026年11月5日整改，增设2个窗口，等候时间缩短到10分钟。"
    assert mask_public_text(text, ["李娜"]) == text
    assert mask_public_text(None) is None and mask_public_text("") == ""
