"""Satisfaction summary: given completed orders, surveys and complaints, the groups."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from tests.integration.conftest import World
from tests.integration.field import read, utc

OCTOBER = (utc("2026-09-30T16:00"), utc("2026-10-31T16:00"))  # October in Shanghai


def summary(
    world: World, group_by: str, start: datetime | None = OCTOBER[0],
    end: datetime | None = OCTOBER[1],
) -> dict[Any, dict[str, Any]]:  # fmt: skip
    groups: list[dict[str, Any]] = read(
        world.projections, "satisfaction", "summary", start=start, end=end, group_by=group_by
    )
    return {g["key"]: g for g in groups}


def done(
    world: World, at: datetime, technician: str = "tech-1", *, service_type: str = "repair",
    rejections: int = 0,
) -> UUID:  # fmt: skip
    f = world.field
    order = f.book(at - timedelta(days=1), technician=technician, service_type=service_type)
    f.arrive(order, at - timedelta(hours=2))
    f.finish(order, at, rejections=rejections)
    return order


def test_csat_dimensions_first_time_fix_and_surveys_per_technician(world: World) -> None:
    f = world.field
    a = done(world, utc("2026-10-05T02:00"))
    b = done(world, utc("2026-10-06T02:00"), rejections=1)
    c = done(world, utc("2026-10-07T02:00"))
    remote = f.book(utc("2026-10-07T02:00"), technician="tech-1")
    f.resolve_remotely(remote, utc("2026-10-08T02:00"))
    f.feedback(a, utc("2026-10-09T02:00"), csat=5, dims=(4, 4, 3, 4), praise=True)
    f.feedback(b, utc("2026-10-09T02:00"), csat=4, dims=(3, 4, 3, 4))
    f.feedback(c, utc("2026-11-09T02:00"), csat=2, dims=(2, 3, 1, 3))  # late survey, same period
    d = done(world, utc("2026-10-10T02:00"), "tech-2")
    f.feedback(d, utc("2026-10-11T02:00"), csat=4, dims=(4, 4, 4, 4))
    done(world, utc("2026-11-02T02:00"), "tech-2")  # November: not counted

    groups = summary(world, "technician")
    assert set(groups) == {"tech-1", "tech-2"}
    one = groups["tech-1"]
    assert one["csat_pct"] == 66.67  # 2 of 3 at 4 or more
    assert one["dimensions"] == {"attitude": 3.0, "skill": 3.67, "punctuality": 2.33,
                                 "promise": 3.67}  # fmt: skip
    assert one["first_time_fix_pct"] == 66.67  # 2 of 3 accepted without rejection
    assert (one["surveys_expected"], one["surveys_received"]) == (4, 3)
    assert one["below_threshold"] == ["csat_pct", "first_time_fix_pct"]
    assert (one["mean_csat"], one["praised"], one["complaints"]) == (3.67, 1, 0)
    two = groups["tech-2"]
    assert (two["csat_pct"], two["first_time_fix_pct"], two["below_threshold"]) == (100, 100, [])
    assert (two["surveys_expected"], two["surveys_received"]) == (1, 1)


def test_no_survey_yet_means_no_percentage_and_no_flag(world: World) -> None:
    world.field.resolve_remotely(world.field.book(utc("2026-10-01T02:00")), utc("2026-10-02T02:00"))
    (group,) = summary(world, "technician").values()
    assert group["csat_pct"] is None and group["first_time_fix_pct"] is None
    assert group["dimensions"] == dict.fromkeys(("attitude", "skill", "punctuality", "promise"))
    assert (group["surveys_expected"], group["surveys_received"]) == (1, 0)
    assert group["below_threshold"] == []


def test_complaints_count_for_the_staff_they_are_about(world: World) -> None:
    f = world.field
    order = done(world, utc("2026-10-05T02:00"), "tech-1", service_type="install")
    f.complaint(utc("2026-10-06T02:00"), work_order_id=order)  # about tech-1's order
    both = f.complaint(utc("2026-10-07T02:00"), staff_ids=["tech-2"])
    f.findings(both, utc("2026-10-08T02:00"), ["tech-1"])  # the findings name tech-1 too
    f.complaint(utc("2026-10-09T02:00"))  # about nobody
    f.complaint(utc("2026-11-01T02:00"), staff_ids=["tech-1"])  # November

    by_technician = summary(world, "technician")
    assert {k: g["complaints"] for k, g in by_technician.items()} == {
        "tech-1": 2, "tech-2": 1, None: 1
    }
    assert by_technician["tech-2"]["surveys_expected"] == 0
    by_service = summary(world, "service_type")
    assert {k: g["complaints"] for k, g in by_service.items()} == {"install": 1, None: 2}
    assert list(by_service) == ["install", None]  # the null group last


def test_periods_are_half_open_on_completion_time(world: World) -> None:
    done(world, utc("2026-09-30T15:59"))  # 23:59 on 30 September in Shanghai
    inside = done(world, utc("2026-09-30T16:00"))  # midnight: October
    assert inside
    assert summary(world, "technician")["tech-1"]["surveys_expected"] == 1
    assert summary(world, "technician", None, None)["tech-1"]["surveys_expected"] == 2
    assert summary(world, "service_type", None, OCTOBER[0])["repair"]["surveys_expected"] == 1
