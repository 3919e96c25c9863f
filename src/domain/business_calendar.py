"""Working-time arithmetic: "N working hours after t" and "working time between a and b".

No library we know of adds working hours over a calendar with official *make-up
working days* (China's 调休: a Saturday or Sunday that is worked so that a holiday
can be longer), so this module is ours. Day types come from the `holidays`
package; the arithmetic is here.

Model
-----
* A calendar has a time zone and, per weekday (0 = Monday), a list of local
  wall-clock working windows ``(start, end)`` (several windows = lunch break).
* A local date is a working day when it is an explicit ``extra_working_days``
  date, else not when it is an ``extra_days_off`` date (explicit overrides win
  over official data, both ways), else when it is an official make-up working
  day (``holidays``' ``weekend_workdays``), else not when it is a public
  holiday, else when its weekday has windows. A working day whose weekday has no
  windows (a make-up Saturday) uses Monday's windows, or the first weekday's
  that has any.
* Windows are built from local wall-clock times with `zoneinfo` and then handled
  as UTC instants, so DST days are right: 08:30-17:30 is 9 hours on any day, a
  window spanning a DST change is an hour shorter/longer. A wall time that does
  not exist (spring gap) is read with PEP 495 ``fold=0``, i.e. shifted forward by
  the gap; an ambiguous one (autumn) means its first occurrence.
* A `Pause` is a half-open interval of instants during which clocks stop (an
  order on hold); ``end=None`` means still paused. Overlapping pauses count once.
* "Working time" includes a window's end: `BusinessCalendar.is_working_time` is
  true for ``start <= t <= end``. ``add(start, 0)`` returns ``start`` (as UTC)
  unchanged, wherever it lies; ``add`` with a positive duration returns an
  instant inside a window, possibly exactly at its end (17:30, not next 08:30).
  ``add`` raises ``ValueError("clock is paused")`` when an open pause stops the
  clock before the duration is used up. ``elapsed(a, b) == -elapsed(b, a)``.
* All inputs must be timezone-aware (naive ones raise `ValueError`); every
  returned datetime is aware and in UTC.
* Holiday data is built lazily once per year and cached as frozen sets. The
  ``holidays`` package silently returns a future year's festivals without its
  make-up days (in holidays 0.109, 2027 China has none): `years_without_makeup_data` lets
  the caller report such years instead of computing with a wrong calendar.

The code reads no clock and does no I/O.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays

__all__ = [
    "DEFAULT_WEEKLY_WINDOWS",
    "MAKEUP_DAY_COUNTRIES",
    "BusinessCalendar",
    "Clock",
    "Pause",
    "RoundTheClock",
]

_FOREVER = datetime.max.replace(tzinfo=UTC)
_ZERO = timedelta(0)
_ONE_DAY = timedelta(days=1)

#: Countries whose official calendar moves weekend days to working days every
#: year, so a year with no make-up day in the `holidays` data is a year whose
#: arrangement has not been published (or not yet entered in the package).
MAKEUP_DAY_COUNTRIES = frozenset({"CN"})

_OFFICE_HOURS = ((time(8, 30), time(17, 30)),)
#: Monday-Friday 08:30-17:30.
DEFAULT_WEEKLY_WINDOWS: Mapping[int, Sequence[tuple[time, time]]] = {
    weekday: _OFFICE_HOURS for weekday in range(5)
}

_Span = tuple[datetime, datetime]


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got naive {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Pause:
    """A half-open interval ``[start, end)`` of aware instants when clocks stop."""

    start: datetime
    end: datetime | None = None  # None = still paused

    def __post_init__(self) -> None:
        start = _utc(self.start, "Pause.start")
        if self.end is not None and _utc(self.end, "Pause.end") < start:
            raise ValueError(f"pause ends ({self.end}) before it starts ({self.start})")


class Clock(Protocol):
    """What the SLA code needs from a clock; both calendars here implement it."""

    def add(
        self, start: datetime, duration: timedelta, pauses: Sequence[Pause] = ()
    ) -> datetime: ...

    def elapsed(
        self, start: datetime, end: datetime, pauses: Sequence[Pause] = ()
    ) -> timedelta: ...


class _Pauses:
    """Pauses as sorted, merged, disjoint UTC intervals (open end = `_FOREVER`)."""

    def __init__(self, pauses: Iterable[Pause]) -> None:
        spans = sorted(
            (_utc(p.start, "Pause.start"), _FOREVER if p.end is None else _utc(p.end, "Pause.end"))
            for p in pauses
        )
        starts: list[datetime] = []
        ends: list[datetime] = []
        for start, end in spans:
            if end <= start:
                continue
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        self._starts = starts
        self._ends = ends

    def resume(self, instant: datetime) -> datetime:
        """The first instant at or after `instant` that is not paused."""
        i = bisect_right(self._starts, instant) - 1
        if i >= 0 and self._ends[i] > instant:
            return self._ends[i]
        return instant

    def free(self, start: datetime, end: datetime) -> Iterator[_Span]:
        """The non-empty parts of ``[start, end)`` outside every pause, in order."""
        i = bisect_right(self._ends, start)  # first pause that ends after `start`
        cursor = start
        while cursor < end:
            if i == len(self._starts) or self._starts[i] >= end:
                yield cursor, end
                return
            if self._starts[i] > cursor:
                yield cursor, self._starts[i]
            cursor = max(cursor, self._ends[i])
            i += 1


def _advance(spans: Iterable[_Span], start: datetime, duration: timedelta) -> datetime:
    """The instant where `duration` of the running time in `spans` is used up."""
    if duration < _ZERO:
        raise ValueError(f"duration must not be negative, got {duration}")
    if duration == _ZERO:
        return start
    remaining = duration
    for span_start, span_end in spans:
        if span_end - span_start >= remaining:
            return span_start + remaining
        remaining -= span_end - span_start
    raise ValueError("clock is paused")


def _measure(spans: Iterable[_Span], end: datetime) -> timedelta:
    """Running time in `spans` before `end`."""
    total = _ZERO
    for span_start, span_end in spans:
        if span_start >= end:
            break
        total += min(span_end, end) - span_start
    return total


class RoundTheClock:
    """The 24x7 clock used for urgent work: plain elapsed time minus pauses."""

    def add(self, start: datetime, duration: timedelta, pauses: Sequence[Pause] = ()) -> datetime:
        begin = _utc(start, "start")
        if not pauses and duration > _ZERO and begin < _FOREVER and duration <= _FOREVER - begin:
            return begin + duration  # what `_advance` finds in the one span there is
        return _advance(_Pauses(pauses).free(begin, _FOREVER), begin, duration)

    def elapsed(self, start: datetime, end: datetime, pauses: Sequence[Pause] = ()) -> timedelta:
        begin, finish = _utc(start, "start"), _utc(end, "end")
        if finish < begin:
            return -self.elapsed(end, start, pauses)
        return _measure(_Pauses(pauses).free(begin, finish), finish)


@dataclass(frozen=True)
class _YearDays:
    days_off: frozenset[date]  # public holidays
    make_up: frozenset[date]  # official make-up working days


def _check_windows(
    weekday: int, windows: Sequence[tuple[time, time]]
) -> tuple[tuple[time, time], ...]:
    previous_end: time | None = None
    for start, end in windows:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError(f"weekday {weekday}: window times must be naive local times")
        if not start < end:
            raise ValueError(f"weekday {weekday}: window {start}-{end} must end after it starts")
        if previous_end is not None and start < previous_end:
            raise ValueError(f"weekday {weekday}: windows must be in order and not overlap")
        previous_end = end
    return tuple(windows)


class BusinessCalendar:
    """Working windows per weekday + public holidays + make-up days + date overrides."""

    _CACHE_LIMIT = 20_000  # days of cached windows before the cache is reset

    def __init__(
        self,
        *,
        tz: str = "Asia/Shanghai",
        country: str | None = "CN",
        weekly_windows: Mapping[int, Sequence[tuple[time, time]]] | None = None,
        extra_working_days: Iterable[date] = (),
        extra_days_off: Iterable[date] = (),
        subdivision: str | None = None,
    ) -> None:
        self._zone = ZoneInfo(tz)
        self._country = country
        self._subdivision = subdivision
        windows = DEFAULT_WEEKLY_WINDOWS if weekly_windows is None else weekly_windows
        if unknown := sorted(set(windows) - set(range(7))):
            raise ValueError(f"weekdays are 0 (Monday) to 6 (Sunday), got {unknown}")
        self._weekly = tuple(_check_windows(wd, windows.get(wd, ())) for wd in range(7))
        with_windows = [w for w in self._weekly if w]
        if not with_windows:
            raise ValueError("a business calendar needs working windows on at least one weekday")
        self._fallback = self._weekly[0] or with_windows[0]
        self._extra_on = frozenset(extra_working_days)
        self._extra_off = frozenset(extra_days_off)
        self._added: dict[tuple[datetime, timedelta, tuple[Pause, ...]], datetime] = {}
        if both := sorted(self._extra_on & self._extra_off):
            raise ValueError(f"dates both extra working days and extra days off: {both}")
        self._years: dict[int, _YearDays] = {}
        self._days: dict[date, tuple[tuple[_Span, ...], datetime]] = {}

    # -- day types ---------------------------------------------------------------

    def _year(self, year: int) -> _YearDays:
        found = self._years.get(year)
        if found is None:
            if self._country is None:
                found = _YearDays(frozenset(), frozenset())
            else:
                # Next year too: its notice may make a December day of `year` a working day
                # (holidays 0.109 already files those under `year`; this guards other versions).
                data = holidays.country_holidays(
                    self._country, subdiv=self._subdivision, years=(year, year + 1)
                )
                found = _YearDays(
                    days_off=frozenset(d for d in data if d.year == year),
                    make_up=frozenset(d for d in data.weekend_workdays if d.year == year),
                )
            self._years[year] = found
        return found

    def is_working_day(self, d: date) -> bool:
        if isinstance(d, datetime):
            raise TypeError("is_working_day takes a local date, not a datetime")
        if d in self._extra_on:
            return True
        if d in self._extra_off:
            return False
        year = self._year(d.year)
        if d in year.make_up:
            return True
        if d in year.days_off:
            return False
        return bool(self._weekly[d.weekday()])

    def years_without_makeup_data(self, years: Iterable[int]) -> list[int]:
        """Years (sorted, once each) for which the official make-up days are missing.

        Only for countries in `MAKEUP_DAY_COUNTRIES`; [] for any other country.
        Explicit ``extra_working_days`` do not count as official data.
        """
        if self._country is None or self._country.upper() not in MAKEUP_DAY_COUNTRIES:
            return []
        return sorted({y for y in years if not self._year(y).make_up})

    # -- windows -----------------------------------------------------------------

    def _instant(self, d: date, t: time) -> datetime:
        return datetime.combine(d, t, tzinfo=self._zone).astimezone(UTC)

    def _day(self, d: date) -> tuple[tuple[_Span, ...], datetime]:
        """The UTC working windows of local date `d`, and the UTC start of the next day."""
        found = self._days.get(d)
        if found is None:
            local = (self._weekly[d.weekday()] or self._fallback) if self.is_working_day(d) else ()
            spans: list[_Span] = []
            for start_time, end_time in local:
                start, end = self._instant(d, start_time), self._instant(d, end_time)
                if spans and start < spans[-1][1]:  # only possible around a DST change
                    start = spans[-1][1]
                if start < end:
                    spans.append((start, end))
            if len(self._days) >= self._CACHE_LIMIT:
                self._days.clear()
            found = self._days[d] = (tuple(spans), self._instant(d + _ONE_DAY, time(0)))
        return found

    def windows_on(self, d: date) -> list[tuple[datetime, datetime]]:
        """The working windows of local date `d` as UTC instants ([] on a day off)."""
        return list(self._day(d)[0])

    def _local_date(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()

    def local_date(self, instant: datetime) -> date:
        """The calendar's local date of an aware instant."""
        return self._local_date(_utc(instant, "instant"))

    def is_working_time(self, instant: datetime) -> bool:
        """True when `instant` lies in a window, its end included."""
        moment = _utc(instant, "instant")
        return any(start <= moment <= end for start, end in self._day(self._local_date(moment))[0])

    # -- arithmetic --------------------------------------------------------------

    def _running(self, start: datetime, pauses: _Pauses) -> Iterator[_Span]:
        """Working time outside pauses from `start` on, in order, walking day by day.

        Stops only at an open pause (otherwise it is endless: every year has
        working days). Closed pauses are jumped over in one step.
        """
        cursor = pauses.resume(start)
        while cursor < _FOREVER:
            spans, next_day = self._day(self._local_date(cursor))
            for span_start, span_end in spans:
                if span_end > cursor:
                    yield from pauses.free(max(span_start, cursor), span_end)
            cursor = pauses.resume(max(cursor, next_day))

    def add(self, start: datetime, duration: timedelta, pauses: Sequence[Pause] = ()) -> datetime:
        """The instant `duration` of working time after `start`, not counting pauses.

        Duration 0 returns `start` (in UTC) unchanged. Raises
        ``ValueError("clock is paused")`` when an open pause begins before the
        duration is used up, and `ValueError` for a negative duration.

        Answers are remembered (a pure function of its arguments): the SLA view
        recomputes an order's targets after each of its events, mostly with the
        same start, duration and pauses.
        """
        key = (start, duration, tuple(pauses))
        found = self._added.get(key)
        if found is not None:
            return found
        begin = _utc(start, "start")
        if pauses:
            answer = _advance(self._running(begin, _Pauses(pauses)), begin, duration)
        else:
            answer = self._add_unpaused(begin, duration)
        if len(self._added) >= self._CACHE_LIMIT:
            self._added.clear()
        self._added[key] = answer
        return answer

    def _add_unpaused(self, begin: datetime, duration: timedelta) -> datetime:
        """`_advance(self._running(begin, _Pauses(())), begin, duration)`, the
        same walk without its generators: with no pauses (every target at
        booking), each working window from `begin` on is used whole."""
        if duration < _ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        if duration == _ZERO:
            return begin
        remaining = duration
        cursor = begin
        while cursor < _FOREVER:
            spans, next_day = self._day(self._local_date(cursor))
            for span_start, span_end in spans:
                if span_end > cursor:
                    span_start = max(span_start, cursor)
                    if span_end - span_start >= remaining:
                        return span_start + remaining
                    remaining -= span_end - span_start
            cursor = max(cursor, next_day)
        raise ValueError("clock is paused")  # pragma: no cover - every year has working days

    def elapsed(self, start: datetime, end: datetime, pauses: Sequence[Pause] = ()) -> timedelta:
        """Working time in ``[start, end)`` outside pauses; negative when end < start."""
        begin, finish = _utc(start, "start"), _utc(end, "end")
        if finish < begin:
            return -self.elapsed(end, start, pauses)
        return _measure(self._running(begin, _Pauses(pauses)), finish)
