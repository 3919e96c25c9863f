"""The policy file: the built-in default is contract §6; bad files name the key."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fieldledger.domain.policy import (
    Clock,
    PolicyError,
    builtin_policy,
    builtin_policy_text,
    parse_policy,
)


def test_builtin_policy_is_the_contracts_section_six() -> None:
    p = builtin_policy()
    wo = p.sla.work_order
    assert (wo.response.urgent.clock, wo.response.urgent.hours) == (Clock.ROUND_THE_CLOCK, 1)
    assert (wo.response.priority.clock, wo.response.priority.hours) == (Clock.BUSINESS, 2)
    assert wo.response.routine.hours == 4
    assert (wo.arrival.priority.hours, wo.arrival.priority.suburban_hours) == (6, 7)
    assert wo.arrival.routine.use_appointment
    assert (wo.resolution.urgent.hours, wo.resolution.priority.hours) == (24, 16)
    assert wo.resolution.routine.hours == 24
    c = p.sla.complaint
    assert c.acknowledgement.critical.hours == 1 and c.acknowledgement.minor.hours == 24
    assert c.resolution.major.hours == 63 and c.closure.minor.hours == 135
    assert p.sla.yellow_at == Decimal("0.8")
    assert [p.appraisal.lateness_points(m) for m in (1, 5, 6, 10, 11, 90)] == [-1, -1, -5, -5, -10, -10]
    assert p.conduct.kinds["grooming"].points[0].min == Decimal("-1.5")
    assert [(s.at, s.discipline) for s in p.conduct.kinds["chatting"].ladder] == [
        (3, "warning"), (4, "demerit"), (5, "dismissal")
    ]
    call = p.conduct.kinds["personal_call"].ladder[0]
    assert call.extra is not None and call.extra.min == -10
    assert p.calendar.country == "CN"


def test_the_same_policy_has_the_same_version_and_a_change_changes_it() -> None:
    text = builtin_policy_text()
    assert parse_policy(text).version == builtin_policy().version
    changed = parse_policy(text.replace("praise = 5", "praise = 3"))
    assert changed.version != builtin_policy().version


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (("yellow_at = 0.8", "yellow_at = 1.5"), "sla.yellow_at"),
        (('urgent = { clock = "24x7", hours = 1 }', 'urgent = { clock = "1x7", hours = 1 }'),
         "sla.work_order.response.urgent.clock"),
        (("points = [{ min = -1, max = -1 }]", "points = [{ min = -1, max = -3 }]"),
         "conduct.kinds.uniform.points.0"),
        (('beyond_bands = "absence"', 'beyond_bands = "absent"'), "conduct"),
        (("retraining_after = 3", "retraining_after = 0"), "service_faults.retraining_after"),
        (("good_from = 3.5", "good_from = 5"), "appraisal.ratings.good_from"),
        (("praise = 5", "praise = 5\nbonus = 1"), "appraisal.bonus"),
        (('country = "CN"', 'country = "XX"'), "calendar.country"),
        (('subdivision = ""', 'subdivision = "ZZ"'), "calendar.subdivision"),
    ],
)
def test_a_bad_policy_is_a_one_line_error_naming_the_key(edit: tuple[str, str], key: str) -> None:
    text = builtin_policy_text().replace(*edit, 1)
    with pytest.raises(PolicyError) as error:
        parse_policy(text)
    message = str(error.value)
    assert f"'{key}'" in message
    assert "\n" not in message


def test_a_file_that_is_not_toml_says_so() -> None:
    with pytest.raises(PolicyError, match="not valid TOML"):
        parse_policy("name = ")


def test_a_copy_with_changes_is_another_version() -> None:
    changed = builtin_policy().model_copy(update={"name": "changed"})
    assert changed.version != builtin_policy().version
