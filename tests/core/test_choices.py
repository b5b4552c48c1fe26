"""One place for each value and its label: the choice sets, the CHECK constraints built from
them, and the request schemas that must accept exactly their values (issue 9)."""

from __future__ import annotations

import typing

import pytest

from haochaping.appeals.choices import AppealCategory, AppealState
from haochaping.appeals.models import Appeal
from haochaping.appeals.schemas import AppealCreate
from haochaping.core.choices import IntChoiceSet, check_between
from haochaping.evaluations.choices import LEVEL_LABELS, Level
from haochaping.evaluations.models import Evaluation, ReasonTag
from haochaping.integrity.models import IntegrityFlag
from haochaping.orgs.choices import RegionTier
from haochaping.orgs.models import Region
from haochaping.workorders import schemas as wo_schemas
from haochaping.workorders.choices import STAFF_CALLBACK_METHODS, CallbackMethod, Verdict
from haochaping.workorders.models import CallbackAttempt


def check_text(model, name: str) -> str:
    (constraint,) = [
        c for c in model.__table__.constraints if c.name and str(c.name).endswith(name)
    ]
    return str(constraint.sqltext)


def test_constraints_built_from_the_enums_keep_the_migrated_text():
    # The migrations wrote these by hand: the generated text must not change.
    assert check_text(Evaluation, "channel_valid") == (
        "channel IN ('pc', 'mobile', 'qrcode', 'pad', 'terminal', 'phone', 'sms', "
        "'review', 'inspection', 'system')"
    )
    assert check_text(Evaluation, "level_range") == "level BETWEEN 1 AND 5"
    assert check_text(ReasonTag, "level_range") == "level BETWEEN 1 AND 5"
    assert check_text(Region, "tier_range") == "tier BETWEEN 1 AND 5"
    assert check_text(IntegrityFlag, "state_valid") == (
        "state IN ('open', 'cleared', 'invalidated')"
    )
    assert check_text(IntegrityFlag, "stage_valid") == "stage IN ('intake', 'batch')"
    assert check_text(Appeal, "category_valid") == (
        "category IN ('mistaken', 'malicious', 'outside_remit', 'other')"
    )
    assert check_text(Appeal, "state_valid") == "state IN ('pending', 'upheld', 'rejected')"
    assert check_text(CallbackAttempt, "method_valid") == (
        "method IN ('phone', 'sms', 'wechat', 'visit', 'link')"
    )
    assert check_text(CallbackAttempt, "verdict_valid") == (
        "verdict IS NULL OR verdict IN ('satisfied', 'basic', 'dissatisfied')"
    )


def _literal(model, field: str) -> set[str]:
    annotation = model.model_fields[field].annotation
    args = typing.get_args(annotation)
    literal = next(a for a in (annotation, *args) if typing.get_origin(a) is typing.Literal)
    return set(typing.get_args(literal))


def test_request_schemas_accept_exactly_the_choice_sets_values():
    staff_methods = {m.value for m in STAFF_CALLBACK_METHODS}
    assert _literal(wo_schemas.CallbackIn, "method") == staff_methods
    assert _literal(wo_schemas.SpotCheckCallbackIn, "method") == staff_methods
    assert staff_methods == set(CallbackMethod.values()) - {"link"}  # the rater's own
    for model in (wo_schemas.CallbackIn, wo_schemas.SpotCheckCallbackIn):
        assert _literal(model, "verdict") == set(Verdict.values())
    assert _literal(wo_schemas.CitizenVerdictIn, "verdict") == set(Verdict.values())
    assert _literal(AppealCreate, "category") == set(AppealCategory.values())


def test_one_label_per_value():
    assert CallbackMethod.VISIT.label == "上门走访"
    assert AppealState.label_of("upheld") == "申诉成立"
    assert AppealCategory.label_of("nonsense", "?") == "?"
    assert LEVEL_LABELS == {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
    assert list(LEVEL_LABELS) == [5, 4, 3, 2, 1]  # best first, as the pages list them
    assert Level(2).label == "不满意" and Level.label_of(9) == ""
    assert RegionTier.choices()[0] == (1, "省")


def test_int_choice_sets_are_ints_and_ranges_must_be_consecutive():
    class Gappy(IntChoiceSet):
        LOW = 1, "低"
        HIGH = 3, "高"

    assert Gappy.HIGH == 3 and Gappy.HIGH + 1 == 4
    with pytest.raises(AssertionError):
        check_between("x", Gappy)
    assert check_between("x", [2, 3, 4]) == "x BETWEEN 2 AND 4"
