"""How long the business calendar takes to add 63 working hours and to measure
the working time between two instants, against the same number of plain
datetime additions measured in the same run (the baseline).

    .venv/bin/python bench/calendar_speed.py [--rounds N]

Speed lives here, not in the tests: the suite checks what the calendar answers,
this file how fast it answers.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fieldledger.domain.business_calendar import BusinessCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
H = timedelta(hours=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    calendar = BusinessCalendar()
    start = datetime(2026, 9, 30, 8, 30, tzinfo=SHANGHAI)
    end = datetime(2026, 10, 14, 17, 30, tzinfo=SHANGHAI)
    calendar.add(start, 63 * H)  # warm the caches

    t0 = time.perf_counter()
    for _ in range(rounds):
        calendar.add(start, 63 * H)
        calendar.elapsed(start, end)
    per_call = (time.perf_counter() - t0) / (2 * rounds)

    t0 = time.perf_counter()
    for _ in range(rounds):
        _ = start + 63 * H
        _ = end - start
    baseline = (time.perf_counter() - t0) / (2 * rounds)

    print(f"calendar: {per_call * 1e6:.1f} µs a call; plain datetime arithmetic: "
          f"{baseline * 1e6:.2f} µs; ratio {per_call / baseline:.0f} times")


if __name__ == "__main__":
    main()
