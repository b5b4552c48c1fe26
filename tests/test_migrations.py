"""The schema: every model change has its migration; the shipped reason tags match the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from haochaping.db import migrate
from haochaping.evaluations.tags import national_tags

REPO = Path(__file__).resolve().parents[1]
PACKAGED_TAGS = REPO / "src" / "haochaping" / "evaluations" / "data" / "reason-codes.csv"
SPEC_TAGS = REPO / ".." / "shared" / "spec" / "reason-codes.csv"


def test_models_and_migrations_agree(settings):
    """`alembic check` on the suite's database (upgraded to head by the session fixture):
    a model change without a migration, or a migration missing a table, fails here."""
    migrate.check(settings)


@pytest.mark.skipif(not SPEC_TAGS.exists(), reason="the shared spec folder is not present")
def test_packaged_reason_codes_equal_the_spec():
    assert PACKAGED_TAGS.read_bytes() == SPEC_TAGS.read_bytes()


def test_reason_codes_follow_their_level():
    tags = national_tags()
    assert len({t.code for t in tags}) == len(tags) > 0
    assert {t.level for t in tags} == {1, 2, 3, 4, 5}
    for tag in tags:
        assert tag.code[0] == str(tag.level) and tag.text
