"""Appraisal, table by table from contract §6: given the events, the points,
items, discipline and indicators of a staff member's month."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from fieldledger.domain.periods import parse_period
from fieldledger.domain.policy import builtin_policy, builtin_policy_text, parse_policy
from fieldledger.projections.appraisal import AppraisalView, StaffUnknown
from fieldledger.projections.catalog import READ_MODELS
from fieldledger.projections.projector import Projections
from fieldledger.projections.read_model import ProjectionSettings

from tests.integration.conftest import World
from tests.integration.field import read, utc

APPOINTMENT = utc("2026-10-14T02:00")  # 10:00 in Shanghai
BOOKED = utc("2026-10-13T02:00")


def appraisal(world: World, staff_id: str, period: str) -> dict[str, Any]:
    result: dict[str, Any] = read(
        world.projections, "appraisal", "appraisal", staff_id, parse_period(period)
    )
    return result


def ranking(world: World, period: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = read(
        world.projections, "appraisal", "ranking", parse_period(period)
    )
    return result


def brief(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(i["rule"], i["points"], i["event_type"], i["version"]) for i in items]


@pytest.mark.parametrize(
    ("late", "notice", "points", "late_arrivals", "on_time_pct"),
    [
        (timedelta(0), None, 100, 0, 100.0),
        (timedelta(minutes=-20), None, 100, 0, 100.0),
        (timedelta(minutes=3), None, 99, 1, 0.0),
        (timedelta(minutes=5), None, 99, 1, 0.0),
        (timedelta(minutes=5, seconds=1), None, 95, 1, 0.0),  # "over 5"
        (timedelta(minutes=7), None, 95, 1, 0.0),
        (timedelta(minutes=10), None, 95, 1, 0.0),
        (timedelta(minutes=12), None, 90, 1, 0.0),
        (timedelta(minutes=90), None, 90, 1, 0.0),
        (timedelta(minutes=12), "traffic jam", 100, 1, 0.0),  # warned: no points, still late
    ],
)
def test_arrival_after_the_appointment_start(
    world: World,
    late: timedelta,
    notice: str | None,
    points: int,
    late_arrivals: int,
    on_time_pct: float,
) -> None:
    order = world.field.book(BOOKED, appointment_start=APPOINTMENT, technician="tech-1")
    arrived = world.field.arrive(order, APPOINTMENT + late, notice=notice)

    got = appraisal(world, "tech-1", "2026-10")
    assert got["points"] == points
    expected_items = [] if points == 100 else [("late_arrival", points - 100, "Arrived", arrived)]
    assert brief(got["items"]) == expected_items
    if got["items"]:
        (item,) = got["items"]
        assert item["aggregate_id"] == str(order)
        assert item["occurred_at"] == (APPOINTMENT + late).isoformat()
    indicators = got["indicators"]
    assert indicators["late_arrivals"] == late_arrivals
    assert indicators["on_time_arrival_pct"] == on_time_pct
    if late_arrivals:
        (lateness,) = indicators["lateness"]
        assert lateness["work_order_id"] == str(order)
        assert (lateness["notified"], lateness["reason"]) == (notice is not None, notice)


def test_an_arrival_without_appointment_is_not_measured(world: World) -> None:
    order = world.field.book(BOOKED, technician="tech-1")
    world.field.arrive(order, APPOINTMENT + timedelta(hours=3))
    got = appraisal(world, "tech-1", "2026-10")
    assert (got["points"], got["items"]) == (100, [])
    assert got["indicators"]["on_time_arrival_pct"] is None
    assert got["indicators"]["arrivals"] == 1


def test_on_time_arrival_share(world: World) -> None:
    for i, late in enumerate([0, 0, 0, 4]):
        start = APPOINTMENT + timedelta(days=i)
        order = world.field.book(BOOKED, appointment_start=start, technician="tech-1")
        world.field.arrive(order, start + timedelta(minutes=late))
    got = appraisal(world, "tech-1", "2026-10")
    assert got["indicators"]["on_time_arrival_pct"] == 75.0
    assert got["points"] == 99


@pytest.mark.parametrize(
    ("calls", "points", "discipline"),
    [
        (1, 95, {}),
        (2, 90, {}),
        (3, 75, {"personal_call": "warning"}),  # 100 - 5*3 - 10
        (4, 70, {"personal_call": "warning"}),  # no 4th step (001 4.2.2-6)
        (5, 65, {"personal_call": "dismissal"}),
        (6, 60, {"personal_call": "dismissal"}),
    ],
)
def test_repeated_personal_calls_climb_the_ladder(
    world: World, calls: int, points: int, discipline: dict[str, str]
) -> None:
    versions = [
        world.field.conduct("tech-1", "personal_call", utc("2026-10-05T02:00") + timedelta(days=i))
        for i in range(calls)
    ]
    got = appraisal(world, "tech-1", "2026-10")
    assert got["points"] == points
    assert got["discipline"] == discipline
    expected = [("conduct", -5, "ConductRecorded", v) for v in versions]
    if calls >= 3:  # the further -10 cites the third record
        expected.insert(3, ("discipline_step", -10, "ConductRecorded", versions[2]))
    assert brief(got["items"]) == expected
    assert all(i["kind"] == "personal_call" for i in got["items"])
    assert all(i["source"] == "001 4.2.2-6" for i in got["items"])


def test_the_ladder_counts_each_kind_within_one_month(world: World) -> None:
    f = world.field
    f.conduct("tech-1", "chatting", utc("2026-10-05T02:00"))
    f.conduct("tech-1", "uniform", utc("2026-10-06T02:00"))
    f.conduct("tech-1", "chatting", utc("2026-10-07T02:00"))
    f.conduct("tech-1", "chatting", utc("2026-10-08T02:00"))  # 3rd chatting: warning, -1 more
    f.conduct("tech-1", "personal_call", utc("2026-10-20T02:00"))
    f.conduct("tech-1", "personal_call", utc("2026-10-21T02:00"))
    f.conduct("tech-1", "personal_call", utc("2026-11-02T02:00"))  # November: 1st again
    f.conduct("tech-1", "grooming", utc("2026-11-03T02:00"), points="-1.5")

    october = appraisal(world, "tech-1", "2026-10")
    assert october["points"] == 100 - 3 - 1 - 1 - 10
    assert october["discipline"] == {"chatting": "warning"}
    november = appraisal(world, "tech-1", "2026-11")
    assert november["points"] == 93.5
    assert november["discipline"] == {}
    assert [i["points"] for i in november["items"]] == [-5, -1.5]


def test_the_month_is_the_policy_time_zones(world: World) -> None:
    start = utc("2026-10-31T16:00")  # 1 November, 00:00 in Shanghai
    order = world.field.book(utc("2026-10-30T02:00"), appointment_start=start)
    arrived = world.field.arrive(order, utc("2026-10-31T16:30"))
    world.field.conduct("tech-1", "uniform", utc("2026-10-31T15:59"))  # 23:59 on 31 October

    october = appraisal(world, "tech-1", "2026-10")
    assert brief(october["items"]) == [("conduct", -1, "ConductRecorded", 2)]
    assert october["indicators"]["late_arrivals"] == 0
    november = appraisal(world, "tech-1", "2026-11")
    assert brief(november["items"]) == [("late_arrival", -10, "Arrived", arrived)]
    assert november["items"][0]["month"] == "2026-11"
    assert november["indicators"]["late_arrivals"] == 1


def _complaint_with_findings(
    world: World, severity: str, responsible: list[str], at_fault: bool = True
) -> tuple[UUID, int]:
    complaint = world.field.complaint(utc("2026-10-10T02:00"), severity=severity)
    version = world.field.findings(complaint, utc("2026-10-12T02:00"), responsible, at_fault=at_fault)
    return complaint, version


@pytest.mark.parametrize(
    ("severity", "at_fault", "points"),
    [("minor", True, 95), ("major", True, 90), ("critical", True, 90), ("major", False, 100)],
)
def test_a_complaint_naming_two_staff_charges_both(
    world: World, severity: str, at_fault: bool, points: int
) -> None:
    complaint, findings = _complaint_with_findings(world, severity, ["tech-1", "tech-2"], at_fault)
    for staff in ("tech-1", "tech-2"):
        got = appraisal(world, staff, "2026-10")
        assert got["points"] == points
        expected = [] if not at_fault else [
            ("company_at_fault", points - 100, "InvestigationRecorded", findings)
        ]
        assert brief(got["items"]) == expected
        if at_fault:
            assert got["items"][0]["aggregate_id"] == str(complaint)
        assert got["indicators"]["complaints_against"] == 1
        assert got["indicators"]["complaints_resolved"] == 0


def test_findings_recorded_again_do_not_count_twice(world: World) -> None:
    f = world.field
    complaint, first = _complaint_with_findings(world, "major", ["tech-1", "tech-2"])
    f.findings(complaint, utc("2026-10-13T02:00"), ["tech-1", "tech-2"])  # the same again
    assert appraisal(world, "tech-1", "2026-10")["points"] == 90
    assert brief(appraisal(world, "tech-2", "2026-10")["items"]) == [
        ("company_at_fault", -10, "InvestigationRecorded", first)
    ]
    # Revised: only tech-1 was responsible, and tech-3 too.
    revised = f.findings(complaint, utc("2026-11-02T02:00"), ["tech-1", "tech-3"])
    assert brief(appraisal(world, "tech-1", "2026-10")["items"]) == [
        ("company_at_fault", -10, "InvestigationRecorded", first)
    ]
    assert appraisal(world, "tech-2", "2026-10")["points"] == 100
    assert brief(appraisal(world, "tech-3", "2026-11")["items"]) == [
        ("company_at_fault", -10, "InvestigationRecorded", revised)
    ]
    # Revised again: not the company's fault after all.
    f.findings(complaint, utc("2026-11-03T02:00"), ["tech-1"], at_fault=False)
    assert appraisal(world, "tech-1", "2026-10")["points"] == 100
    assert appraisal(world, "tech-3", "2026-11")["points"] == 100
    f.resolve(complaint, utc("2026-11-04T02:00"))
    indicators = appraisal(world, "tech-1", "2026-10")["indicators"]
    assert (indicators["complaints_against"], indicators["complaints_resolved"]) == (1, 1)


def test_complaints_against_count_those_naming_them_or_their_order(world: World) -> None:
    f = world.field
    order = f.book(BOOKED, technician="tech-1")
    f.complaint(utc("2026-10-15T02:00"), work_order_id=order)
    f.complaint(utc("2026-10-16T02:00"), staff_ids=["tech-1"])
    f.complaint(utc("2026-10-17T02:00"), staff_ids=["tech-2"])
    f.complaint(utc("2026-11-01T02:00"), staff_ids=["tech-1"])  # November
    assert appraisal(world, "tech-1", "2026-10")["indicators"]["complaints_against"] == 2


def test_praise_in_feedback_credits_the_technician(world: World) -> None:
    f = world.field
    praised = f.book(BOOKED, technician="tech-1")
    f.arrive(praised, utc("2026-10-14T02:00"))
    f.finish(praised, utc("2026-10-14T04:00"))
    version = f.feedback(praised, utc("2026-10-15T02:00"), csat=5, praise=True)
    plain = f.book(BOOKED, technician="tech-1")
    f.arrive(plain, utc("2026-10-16T02:00"))
    f.finish(plain, utc("2026-10-16T04:00"), rejections=1)
    f.feedback(plain, utc("2026-10-17T02:00"), csat=2, dims=(2, 2, 2, 3))

    got = appraisal(world, "tech-1", "2026-10")
    assert got["points"] == 105  # the mean rating, 3.125, brings nothing (003 第十七條)
    assert brief(got["items"]) == [("praise", 5, "FeedbackReceived", version)]
    assert got["items"][0]["aggregate_id"] == str(praised)
    assert got["items"][0]["source"] == "001 檢查方法2"
    assert got["indicators"]["mean_csat"] == 3.5
    assert got["indicators"]["first_time_fix_pct"] == 50.0


def test_an_unknown_staff_member_is_refused(world: World) -> None:
    world.field.book(BOOKED, technician="tech-1")
    with pytest.raises(StaffUnknown):
        appraisal(world, "nobody", "2026-10")


def test_a_quarter_ranks_everyone_on_100_plus_its_deltas(world: World) -> None:
    f = world.field
    # tech-a: 12 min late in October: -10.
    a = f.book(BOOKED, appointment_start=APPOINTMENT, technician="tech-a")
    f.arrive(a, APPOINTMENT + timedelta(minutes=12))
    # tech-d: 7 min late in October and in December: -5 -5.
    for start in (APPOINTMENT, utc("2026-12-01T02:00")):
        d = f.book(start - timedelta(days=1), appointment_start=start, technician="tech-d")
        f.arrive(d, start + timedelta(minutes=7))
    # tech-b: praised in November: +5 (and rated 3 of 4: no ratings points).
    b = f.book(utc("2026-11-02T02:00"), technician="tech-b")
    f.arrive(b, utc("2026-11-03T02:00"))
    f.finish(b, utc("2026-11-03T03:00"))
    f.feedback(b, utc("2026-11-04T02:00"), praise=True, dims=(3, 3, 3, 3))
    # tech-c: out of uniform in December: -1.
    f.conduct("tech-c", "uniform", utc("2026-12-10T02:00"))
    # tech-z: first seen in January: not ranked for 2026.
    f.book(utc("2027-01-05T02:00"), technician="tech-z")

    assert ranking(world, "2026-Q4") == [
        {"staff_id": "tech-b", "points": 105, "rank": 1},
        {"staff_id": "tech-c", "points": 99, "rank": 2},
        {"staff_id": "tech-a", "points": 90, "rank": 3},
        {"staff_id": "tech-d", "points": 90, "rank": 3},
    ]
    october = ranking(world, "2026-10")
    assert october == [
        {"staff_id": "tech-d", "points": 95, "rank": 1},
        {"staff_id": "tech-a", "points": 90, "rank": 2},
    ]
    quarter = appraisal(world, "tech-d", "2026-Q4")
    assert (quarter["period"], quarter["points"]) == ("2026-Q4", 90)
    assert [i["month"] for i in quarter["items"]] == ["2026-10", "2026-12"]
    assert {(r["staff_id"], r["points"], r["rank"]) for r in ranking(world, "2027-Q1")} == {
        (s, 100, 1) for s in ("tech-a", "tech-b", "tech-c", "tech-d", "tech-z")
    }


def test_a_month_is_appraised_under_the_policy_in_force_for_it(world: World) -> None:
    """Issue 13, item 8: the policy adopted latest before the month ended; the
    time zone is the service's, applied when asked (no rebuild)."""
    f = world.field
    start = utc("2026-10-31T16:00")  # 1 November in Shanghai, still 31 October in UTC
    order = f.book(utc("2026-10-30T02:00"), appointment_start=start)  # adopts the built-in
    f.arrive(order, start + timedelta(minutes=3))
    f.finish(order, utc("2026-10-31T17:00"))
    f.feedback(order, utc("2026-11-02T02:00"), praise=True, dims=(3, 3, 3, 3))
    for day in (3, 4, 5):
        f.conduct("tech-1", "personal_call", utc(f"2026-11-0{day}T02:00"))
    for day in (3, 4, 5):
        f.conduct("tech-1", "personal_call", utc(f"2026-12-0{day}T02:00"))

    # A company's own policy file, adopted on 1 December: three rules changed.
    text = builtin_policy_text()
    for old, new in (
        ("praise = 5", "praise = 3"),
        ("{ up_to_minutes = 5, points = -1 }", "{ up_to_minutes = 5, points = 0 }"),
        ("""{ at = 3, discipline = "warning", extra = { min = -10, max = -10 } },""",
         """{ at = 3, discipline = "warning" },"""),
    ):
        assert old in text
        text = text.replace(old, new, 1)
    changed = parse_policy(text)
    builtin = builtin_policy()
    assert changed.version != builtin.version
    f.at(utc("2026-12-01T00:00")).ledger.adopt_policy(changed)

    november = appraisal(world, "tech-1", "2026-11")
    assert november["points"] == 100 - 1 + 5 - 15 - 10
    assert november["policy_version"] == builtin.version
    december = appraisal(world, "tech-1", "2026-12")
    assert december["points"] == 100 - 15  # the third call: no further 10 now
    assert december["discipline"] == {"personal_call": "warning"}
    assert december["policy_version"] == changed.version
    quarter = appraisal(world, "tech-1", "2026-Q4")
    assert quarter["policy_versions"] == {
        "2026-10": builtin.version, "2026-11": builtin.version, "2026-12": changed.version
    }
    assert quarter["points"] == 100 - 1 + 5 - 25 - 15

    def under(timezone: str, month: str) -> dict[str, Any]:
        other = Projections(world.field.ledger, READ_MODELS, ProjectionSettings(changed, timezone))
        model = other.models["appraisal"]
        assert isinstance(model, AppraisalView)
        other.catch_up("appraisal")
        with other.reading("appraisal") as (tx, t):
            return model.appraisal(tx, t, "tech-1", parse_period(month))

    # In UTC the arrival (16:03 on 31 October) is October's, under the built-in
    # policy in force then.
    october = under("UTC", "2026-10")
    assert october["points"] == 99
    assert october["indicators"]["late_arrivals"] == 1
    assert under("UTC", "2026-11")["indicators"]["late_arrivals"] == 0


def test_months_before_any_recorded_policy_use_the_current_one(world: World) -> None:
    world.field.conduct("tech-1", "chatting", utc("2026-10-05T02:00"))
    got = appraisal(world, "tech-1", "2026-10")
    assert got["policy_version"] == builtin_policy().version


def test_a_month_under_a_policy_of_the_first_shape_reads_it_as_it_was(world: World) -> None:
    """A policy adopted before contract §11 (one ladder for every kind,
    `dismissal_recommended`) still reads, under its recorded version: its month
    is judged as it was then, and the months after under the corrected rules."""
    import tomllib
    from pathlib import Path

    from fieldledger.domain.adopted_policies import AdoptedPolicy, adopted_policy_id
    from fieldledger.domain.facts import Context, Role

    old_text = (Path(__file__).parents[1] / "unit" / "policy_before_section_11.toml").read_text()
    document = tomllib.loads(old_text)
    old_version = "builtin@0ld5hape0000"
    f = world.field
    f.at(utc("2026-09-01T00:00"))
    record = AdoptedPolicy._begin(
        AdoptedPolicy.PolicyAdopted, Context("system", Role.SYSTEM, utc("2026-09-01T00:00")),
        id=adopted_policy_id(old_version), version=old_version, name="builtin",
        document=document,
    )  # fmt: skip
    f.ledger.save(record)
    for n in (2, 3, 4, 7, 8):
        f.conduct("tech-1", "absence", utc(f"2026-09-0{n}T02:00"))
    f.at(utc("2026-10-01T00:00")).ledger.adopt_policy()  # the corrected built-in
    for n in (5, 6, 7):
        f.conduct("tech-1", "absence", utc(f"2026-10-0{n}T02:00"))

    september = appraisal(world, "tech-1", "2026-09")
    assert september["policy_version"] == old_version
    assert september["points"] == 50
    assert september["discipline"] == {"absence": "dismissal"}  # was dismissal_recommended
    assert [s["discipline"] for s in september["discipline_steps"]] == [
        "warning", "demerit", "dismissal"
    ]
    october = appraisal(world, "tech-1", "2026-10")
    assert october["policy_version"] == builtin_policy().version
    assert [s["discipline"] for s in october["discipline_steps"]] == ["dismissal"]
