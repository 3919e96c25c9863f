"""The reports' local day of an instant, kept from one event to the next
(`ReportsView._day`): always the day `local_date` gives, whatever the order
of the instants, across midnights, offset changes and days a zone skipped."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from fieldledger.domain.periods import local_date, local_midnight
from fieldledger.domain.policy import builtin_policy
from fieldledger.projections.read_model import ProjectionSettings
from fieldledger.projections.reports import ReportsView

ZONES_AND_DAYS = [
    ("Asia/Shanghai", datetime(2026, 12, 30, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 3, 7, tzinfo=UTC)),  # spring forward 03-08
    ("Europe/London", datetime(2026, 10, 24, tzinfo=UTC)),  # fall back 10-25
    ("America/Santiago", datetime(2026, 4, 3, tzinfo=UTC)),  # its change is at midnight
    ("America/Havana", datetime(2026, 3, 7, tzinfo=UTC)),  # spring forward at midnight
    ("Pacific/Apia", datetime(2011, 12, 28, tzinfo=UTC)),  # 2011-12-30 skipped
    ("Pacific/Kiritimati", datetime(2026, 12, 30, tzinfo=UTC)),  # UTC+14
]


@pytest.mark.parametrize(("zone", "first"), ZONES_AND_DAYS)
def test_a_day_kept_from_the_last_event_is_the_instant_s_local_day(
    zone: str, first: datetime
) -> None:
    instants = [first + timedelta(minutes=7 * i) for i in range(24 * 60 * 4 // 7)]
    us = timedelta(microseconds=1)
    days = {local_date(first, zone) + timedelta(days=n) for n in range(5)}
    instants += [local_midnight(d, zone) + e for d in days for e in (-us, timedelta(0), us)]
    for order in (instants, random.Random(zone).sample(instants, len(instants))):
        view = ReportsView(ProjectionSettings(builtin_policy(), zone))
        for instant in order:
            assert view._day(instant) == local_date(instant, zone).isoformat(), instant
