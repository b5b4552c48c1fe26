"""Synthetic identifiers with correct check characters: ID numbers, credit codes, phones."""

from __future__ import annotations

import random
from datetime import date
from operator import mul

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

# GB 32100-2015: the unified social credit code (统一社会信用代码) alphabet and weights.
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 11714: the organisation code (组织机构代码) inside a credit code.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)

_MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "157",
    "158",
    "159",
    "166",
    "176",
    "177",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "199",
)


def id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of a resident ID number (GB 11643)."""
    return _ID_CHECK[sum(map(mul, map(int, first17), _ID_WEIGHTS)) % 11]


def id_card_no(region: str, born: date, seq: int) -> str:
    """An 18-character resident ID number; `seq` odd for men, even for women."""
    first17 = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}{seq % 1000:03d}"
    return first17 + id_check_char(first17)


def is_valid_id_card_no(value: str) -> bool:
    """True when an 18-character ID number has the right check character."""
    return (
        len(value) == 18 and value[:17].isdigit() and id_check_char(value[:17]) == value[17].upper()
    )


def _org_code(body: str) -> str:
    total = sum(int(c, 36) * w for c, w in zip(body, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def credit_code(kind: str, region: str, body: str) -> str:
    """An 18-character unified social credit code: registrar and type (`kind`, e.g. "11"
    for a government body, "91" for a company), region, organisation code, check char."""
    first17 = kind + region[:6] + _org_code(body)
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return first17 + _USCC_CHARS[(31 - total % 31) % 31]


def is_valid_credit_code(value: str) -> bool:
    """True when a credit code's last character is its GB 32100 check character."""
    if len(value) != 18 or any(c not in _USCC_CHARS for c in value):
        return False
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(value[:17], _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31] == value[17]


def mobile(rng: random.Random) -> str:
    """An 11-digit mainland mobile number (synthetic)."""
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(100_000_000):08d}"
