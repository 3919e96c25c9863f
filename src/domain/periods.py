"""Reporting periods: calendar months and quarters in the company's time zone.

Appraisal is per staff member per calendar month, and a month is the company's
month (the policy's time zone, `FIELDLEDGER_TIMEZONE`), not UTC's: an arrival at
2026-10-31T16:30Z is on 1 November in Shanghai. A quarter is its three months.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from fieldledger.domain.errors import InvalidCommand

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def month_of(instant: datetime, timezone: str) -> str:
    """The calendar month (`YYYY-MM`) an instant falls in, in `timezone`."""
    local = instant.astimezone(ZoneInfo(timezone))
    return f"{local.year:04d}-{local.month:02d}"


def local_date(instant: datetime, timezone: str) -> date:
    return instant.astimezone(ZoneInfo(timezone)).date()


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant (UTC) a local day begins."""
    return datetime.combine(day, time(0), ZoneInfo(timezone)).astimezone(UTC)


def add_months(day: date, months: int) -> date:
    """The same day `months` later; clamped to the end of a shorter month
    (31 January + 1 month = 28 or 29 February)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


@dataclass(frozen=True)
class Period:
    """A month (`2026-10`) or a quarter (`2026-Q4`)."""

    name: str
    months: tuple[str, ...]

    @property
    def first_day(self) -> date:
        year, month = (int(p) for p in self.months[0].split("-"))
        return date(year, month, 1)

    @property
    def end_day(self) -> date:
        """The first day after the period."""
        return add_months(self.first_day, len(self.months))

    def starts_at(self, timezone: str) -> datetime:
        return local_midnight(self.first_day, timezone)

    def ends_at(self, timezone: str) -> datetime:
        """The instant (UTC) the period ends (exclusive)."""
        return local_midnight(self.end_day, timezone)


def parse_period(text: str, *, field: str = "period", quarters: bool = True) -> Period:
    """`YYYY-MM`, or (when `quarters`) `YYYY-Qn`; anything else names the field."""
    value = text.strip()
    month = _MONTH.match(value)
    if month is not None:
        year, number = int(month.group(1)), int(month.group(2))
        if not 1 <= number <= 12 or year < 1:
            raise InvalidCommand(field, f"{value!r} is not a month (YYYY-MM)")
        return Period(value, (value,))
    quarter = _QUARTER.match(value) if quarters else None
    if quarter is not None:
        year, q = int(quarter.group(1)), int(quarter.group(2))
        if year < 1:
            raise InvalidCommand(field, f"{value!r} is not a quarter (YYYY-Qn)")
        first = 3 * (q - 1) + 1
        return Period(value, tuple(f"{year:04d}-{m:02d}" for m in range(first, first + 3)))
    expected = "YYYY-MM or YYYY-Qn" if quarters else "YYYY-MM"
    raise InvalidCommand(field, f"{value!r} is not a period ({expected})")


_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(text: str, *, field: str = "week") -> tuple[date, date]:
    """An ISO 8601 week `YYYY-Www`: its Monday and the Monday after (exclusive)."""
    value = text.strip()
    found = _WEEK.match(value)
    if found is None:
        raise InvalidCommand(field, f"{value!r} is not an ISO week (YYYY-Www, e.g. 2026-W42)")
    try:
        monday = date.fromisocalendar(int(found.group(1)), int(found.group(2)), 1)
    except ValueError:
        raise InvalidCommand(field, f"{value!r} is not a week of that year") from None
    require_business_date(field, monday)
    return monday, date.fromordinal(monday.toordinal() + 7)


def week_of(day: date) -> str:
    """The ISO week (`YYYY-Www`) a date falls in."""
    year, week, _ = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


#: The years a business date may lie in: wide enough for any record, narrow
#: enough that a month or a day either side, and local midnight in UTC, exist.
FIRST_YEAR, LAST_YEAR = 1900, 9998


def require_business_date(field: str, day: date) -> date:
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise InvalidCommand(field, f"{day} must lie in the years {FIRST_YEAR} to {LAST_YEAR}")
    return day
