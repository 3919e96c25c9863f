"""Reporting periods: months and quarters in the company's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.periods import add_months, month_of, parse_period

SHANGHAI = "Asia/Shanghai"


@pytest.mark.parametrize(
    ("instant", "zone", "month"),
    [
        (datetime(2026, 10, 31, 15, 59, tzinfo=UTC), SHANGHAI, "2026-10"),
        (datetime(2026, 10, 31, 16, 0, tzinfo=UTC), SHANGHAI, "2026-11"),
        (datetime(2026, 10, 31, 16, 30, tzinfo=UTC), SHANGHAI, "2026-11"),
        (datetime(2026, 10, 31, 16, 30, tzinfo=UTC), "UTC", "2026-10"),
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), SHANGHAI, "2027-01"),
    ],
)
def test_the_month_of_an_instant_is_local(instant: datetime, zone: str, month: str) -> None:
    assert month_of(instant, zone) == month


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 15), 1, date(2026, 2, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 1, 15), 12, date(2027, 1, 15)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
    ],
)
def test_add_months_clamps_to_the_end_of_a_shorter_month(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


def test_periods() -> None:
    october = parse_period("2026-10")
    assert october.months == ("2026-10",)
    assert october.starts_at(SHANGHAI) == datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert october.ends_at(SHANGHAI) == datetime(2026, 10, 31, 16, tzinfo=UTC)
    q4 = parse_period("2026-Q4")
    assert q4.months == ("2026-10", "2026-11", "2026-12")
    assert q4.ends_at(SHANGHAI) == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert parse_period("2027-Q1").months == ("2027-01", "2027-02", "2027-03")


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-Q0", "2026-Q5", "26-10", "Oct", ""])
def test_a_bad_period_names_the_field(text: str) -> None:
    with pytest.raises(InvalidCommand) as raised:
        parse_period(text)
    assert raised.value.field == "period"


def test_quarters_can_be_refused() -> None:
    with pytest.raises(InvalidCommand, match="YYYY-MM"):
        parse_period("2026-Q4", quarters=False)
