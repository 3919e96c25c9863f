"""Callbacks: monthly in the first year after completion, quarterly after;
listed on a date when due on or before it, overdue when due before it."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fieldledger.domain.periods import add_months
from fieldledger.domain.policy import builtin_policy
from fieldledger.projections.callbacks import next_callback_due

from tests.integration.conftest import World
from tests.integration.field import DISPATCHER, read, utc

POLICY = builtin_policy().callbacks


def due(world: World, on: str) -> list[tuple[str, str, bool]]:
    items: list[dict[str, Any]] = read(
        world.projections, "callbacks", "due", date.fromisoformat(on)
    )
    return [(i["work_order_id"], i["due_on"], i["overdue"]) for i in items]


def accepted_order(world: World, at: datetime) -> UUID:
    f = world.field
    order = f.book(at - timedelta(days=1))
    f.arrive(order, at - timedelta(hours=2))
    f.finish(order, at)
    return order


def test_the_first_callback_is_due_a_month_after_acceptance(world: World) -> None:
    order = str(accepted_order(world, utc("2026-01-15T02:00")))  # 15 January in Shanghai
    assert due(world, "2026-02-14") == []
    assert due(world, "2026-02-15") == [(order, "2026-02-15", False)]
    assert due(world, "2026-02-16") == [(order, "2026-02-15", True)]
    assert due(world, "2026-07-01") == [(order, "2026-02-15", True)]  # still the same call


def test_monthly_in_the_first_year_then_quarterly(world: World) -> None:
    order = accepted_order(world, utc("2026-01-15T02:00"))
    wo = str(order)
    for month in range(1, 12):  # on time: 15 February ... 15 December
        world.field.callback(order, utc(f"{add_months(date(2026, 1, 15), month)}T03:00"))
    assert due(world, "2027-01-15") == [(wo, "2027-01-15", False)]  # the 12th, still monthly
    world.field.callback(order, utc("2027-01-15T03:00"))  # a year after acceptance
    assert due(world, "2027-04-14") == []
    assert due(world, "2027-04-15") == [(wo, "2027-04-15", False)]
    world.field.callback(order, utc("2027-04-20T03:00"))  # late: the next is 3 months on
    assert due(world, "2027-07-21") == [(wo, "2027-07-20", True)]


def test_a_callback_inside_the_first_year_keeps_the_monthly_rhythm(world: World) -> None:
    order = accepted_order(world, utc("2026-01-15T02:00"))
    world.field.callback(order, utc("2027-01-10T03:00"))  # 5 days before the year is out
    assert due(world, "2027-02-10") == [(str(order), "2027-02-10", False)]


def test_the_local_date_counts_and_months_end_short(world: World) -> None:
    # 17:00 UTC on 31 January is 1 February in Shanghai: due 1 March.
    late = accepted_order(world, utc("2026-01-31T17:00"))
    # 10:00 on 31 January in Shanghai: due on the last day of February.
    early = accepted_order(world, utc("2026-01-31T02:00"))
    assert due(world, "2026-03-01") == [
        (str(early), "2026-02-28", True),
        (str(late), "2026-03-01", False),
    ]


def test_remote_resolutions_are_called_back_too_but_not_cancelled_orders(world: World) -> None:
    f = world.field
    remote = f.book(utc("2026-03-01T02:00"))
    f.resolve_remotely(remote, utc("2026-03-02T02:00"))
    cancelled = f.book(utc("2026-03-01T02:00"))
    f.wo(DISPATCHER, cancelled, "cancel", utc("2026-03-02T02:00"), reason="no longer needed")
    f.book(utc("2026-03-01T02:00"))  # still open
    assert due(world, "2026-04-02") == [(str(remote), "2026-04-02", False)]


@pytest.mark.parametrize(
    ("completed", "last", "expected"),
    [
        (date(2026, 1, 15), None, date(2026, 2, 15)),
        (date(2026, 1, 31), None, date(2026, 2, 28)),
        (date(2026, 1, 15), date(2026, 12, 15), date(2027, 1, 15)),
        (date(2026, 1, 15), date(2027, 1, 14), date(2027, 2, 14)),
        (date(2026, 1, 15), date(2027, 1, 15), date(2027, 4, 15)),
        (date(2026, 1, 15), date(2028, 6, 30), date(2028, 9, 30)),
    ],
)
def test_next_callback_due(completed: date, last: date | None, expected: date) -> None:
    assert next_callback_due(completed, last, POLICY) == expected
