"""The pipeline without a database: the registry, adding a check, the pieces checks share."""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import UTC, datetime

import pytest

from haochaping.db.crypto import DataKeys, IdentityHasher
from haochaping.integrity import detectors
from haochaping.integrity.identity import mask, normalize

BUILT_IN = {
    "staff_self_rating": (True, True),
    "source_burst": (True, True),
    "invitation_misuse": (True, True),
    "instant_pad": (False, True),
    "perfect_unit": (False, True),
    "duplicate_comment": (False, True),
    "coordinated_bad": (False, True),
}


def test_the_built_in_checks_and_where_they_run():
    got = {
        name: (c.at_intake, c.in_batch)
        for name, c in detectors.REGISTRY.items()
        if name in BUILT_IN
    }
    assert got == BUILT_IN
    labels = detectors.check_labels()
    assert all(labels[name] for name in BUILT_IN)


@pytest.fixture
def extra_check():
    @detectors.register
    class NightOwl(detectors.Check):
        """Ratings made between 2 and 4 in the morning (an example of a new check)."""

        name = "night_owl_for_test"
        label = "凌晨评价"

        async def inspect(self, guard, db, row):
            hour = row["received_at"].hour
            if 2 <= hour < 4:
                return [
                    detectors.Finding(
                        evaluation_id=row["id"],
                        org_id=row["org_id"],
                        check=self.name,
                        subject="凌晨",
                        reason="凌晨评价",
                    )
                ]
            return detectors.PASS

    yield detectors.REGISTRY["night_owl_for_test"]
    del detectors.REGISTRY["night_owl_for_test"]


async def test_a_registered_check_joins_the_intake_pipeline(extra_check):
    assert extra_check in detectors.intake_checks()
    assert extra_check not in detectors.batch_checks()
    guard = detectors.IntakeGuard(keys=DataKeys(secret="s" * 40), checks=[extra_check])
    row = {
        "id": 1,
        "org_id": 2,
        "case_id": 3,
        "channel": "pad",
        "received_at": datetime(2024, 3, 1, 2, 30, tzinfo=UTC),
    }
    assert [f.check for f in await guard.findings_for(None, [row])] == ["night_owl_for_test"]
    row["received_at"] = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    assert await guard.findings_for(None, [row]) == []
    # System default ratings are nobody's doing: no check looks at them.
    row.update(received_at=datetime(2024, 3, 1, 2, 30, tzinfo=UTC), is_default=True)
    assert await guard.findings_for(None, [row]) == []


async def test_a_failing_check_is_skipped_not_the_rating(extra_check, caplog):
    class Broken(detectors.Check):
        name = "broken_intake_for_test"
        label = "测试用"

        async def inspect(self, guard, db, row):
            raise ValueError("bug")

    guard = detectors.IntakeGuard(keys=DataKeys(secret="s" * 40), checks=[Broken(), extra_check])
    row = {
        "id": 7,
        "org_id": 2,
        "case_id": 3,
        "channel": "pad",
        "received_at": datetime(2024, 3, 1, 3, 0, tzinfo=UTC),
    }
    assert [f.check for f in await guard.findings_for(None, [row])] == ["night_owl_for_test"]
    assert "broken_intake_for_test" in caplog.text


def test_binomial_tail():
    assert detectors.binomial_tail(10, 10, 0.5) == pytest.approx(0.5**10)
    assert detectors.binomial_tail(0, 10, 0.3) == 1.0
    assert detectors.binomial_tail(11, 10, 0.3) == 0.0
    assert detectors.binomial_tail(1, 3, 0.5) == pytest.approx(1 - 0.125)
    # 60 of 60 against peers at 80 %: far below the threshold; 55 of 60 is not.
    assert detectors.binomial_tail(60, 60, 0.8) < 1e-4 < detectors.binomial_tail(55, 60, 0.8)
    assert math.isclose(detectors.binomial_tail(2, 2, 1.0), 1.0)


def test_source_windows_slide_and_stay_bounded():
    windows = detectors.SourceWindows(window_seconds=100, per_key=5, max_keys=10)

    def event(t, case_id):
        return detectors.SourceEvent(t, case_id, case_id, f"r{case_id}", 1)

    for t in range(8):
        got = windows.add("k", event(float(t), t))
    assert len(got) == 5  # only the newest few are kept per source
    got = windows.add("k", event(500.0, 99))
    assert [e.case_id for e in got] == [99]  # the old ones left the window
    for k in range(30_000):
        windows.add(("one-off", k), event(1000.0 + k, k))
    assert len(windows) <= 10_000 + 10


def test_burst_needs_many_cases_and_more_than_one_rater():
    th = detectors.Thresholds()
    same = [detectors.SourceEvent(0, i, i, "one", 1) for i in range(6)]
    assert detectors.burst_in(same, th) is None
    many = [detectors.SourceEvent(0, i, i, f"r{i}", 1) for i in range(4)]
    assert detectors.burst_in(many, th) == (4, 4)
    assert detectors.burst_in(many[:3], th) is None


def test_identifiers_are_compared_and_shown_safely():
    assert normalize("phone", "+86 138-1234-5678") == "13812345678"
    assert normalize("cert", " 33010219900101123x ") == "33010219900101123X"
    assert normalize("phone", "") is None
    assert mask("phone", "13812345678") == "138****5678"
    assert mask("ip", "203.0.113.7") == "203.0.113.*"
    assert mask("ip", "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2:*"
    assert mask("device", "ABCDEF123456") == "ABCDEF…"


def test_only_the_raters_own_sources_count():
    pad = {
        "id": 1,
        "channel": "pad",
        "device_id": "PAD-1",
        "source_ip": "10.0.0.1",
        "rater_phone": "13812345678",
    }
    assert detectors.source_keys(pad) == [("phone", "13812345678")]
    app = {**pad, "channel": "mobile"}
    assert ("device", "PAD-1") in detectors.source_keys(app)
    link = {**app, "invitation_id": 5, "user_agent": "UA"}
    assert ("ip", "10.0.0.1|UA") in detectors.source_keys(link)


def test_the_prepared_hasher_gives_the_documented_digests():
    # HMAC-SM3 under SM3("haochaping-identity-v1:" + secret) of the normalised value, computed
    # here from scratch: the stored hashes of every deployment depend on it never changing.
    hasher = IdentityHasher("k" * 40)
    key = hashlib.new("sm3", b"haochaping-identity-v1:" + b"k" * 40).digest()
    for value in (
        "33010219900101123x",
        "330102 19900101 123X",
        "３３０１０２１９９００１０１１２３ｘ",
    ):
        digest = hmac.new(key, b"33010219900101123X", "sm3").hexdigest()
        assert hasher(value, "cert") == digest
    # A canonical value hashes as it did before the canonical form: stored hashes still match.
    for value in (
        "13812345678",
        "+86 138 1234 5678",
        "0086-138-1234-5678",
        "008613812345678",
        "8613812345678",
        "１３８１２３４５６７８",
    ):
        assert hasher(value, "phone") == hmac.new(key, b"13812345678", "sm3").hexdigest()
    assert hasher(None, "cert") is None and hasher("", "phone") is None


def test_the_null_of_the_distribution_check_is_the_better_peers():
    peers = [(200, int(200 * r)) for r in (0.65, 0.72, 0.78, 0.8, 0.82, 0.86, 0.9, 0.95)]
    rate, best = detectors.peer_ceiling(peers, 0.9)
    assert 0.8 < rate < 0.82 and best == pytest.approx(0.915)
    # Peers with too few ratings to tell do not set the bar.
    assert detectors.peer_ceiling(peers + [(5, 5)], 0.9)[1] == pytest.approx(0.915)
    # A month of nothing but 非常满意 is beyond even the better peers; 60 ratings are not.
    assert detectors.binomial_tail(200, 200, best) < 1e-6 < detectors.binomial_tail(60, 60, best)
