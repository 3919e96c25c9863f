"""What the read models' handlers remember or shortcut gives what the plain
computation gives (the rebuild's speed-ups change no row): the business
calendar's walk without pauses, the SLA's remembered hours, shares and
calendar warnings, `plain` converting by type, `kind_of` by type, `EventTypes`
against `isinstance`, and `VersionedRows.update` comparing only what it sets."""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest
from fieldledger.application import database
from fieldledger.application.ledger import plain
from fieldledger.domain import sla
from fieldledger.domain.business_calendar import (
    BusinessCalendar,
    RoundTheClock,
    _advance,
    _Pauses,
)
from fieldledger.domain.complaints import Complaint
from fieldledger.domain.policy import builtin_policy
from fieldledger.domain.work_orders import WorkOrder
from fieldledger.projections import audit
from fieldledger.projections.read_model import EventTypes
from fieldledger.projections.sla import SPAN_BOUNDS, span_class
from fieldledger.projections.versions import VALID_FROM, VersionedRows
from hypothesis import given, settings
from hypothesis import strategies as st

CALENDARS = [
    BusinessCalendar(),
    BusinessCalendar(
        weekly_windows={
            wd: [(time(8, 30), time(12, 0)), (time(13, 0), time(17, 30))] for wd in range(5)
        }
    ),
    BusinessCalendar(tz="Europe/Berlin", country="DE"),
]

instants = st.datetimes(
    min_value=datetime(2019, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40))


@settings(max_examples=300, deadline=None)
@given(start=instants, duration=durations, which=st.integers(0, len(CALENDARS) - 1))
def test_adding_working_time_without_pauses_is_the_generic_walk(
    start: datetime, duration: timedelta, which: int
) -> None:
    calendar = CALENDARS[which]
    expected = _advance(calendar._running(start, _Pauses(())), start, duration)
    assert calendar._add_unpaused(start, duration) == expected
    assert BusinessCalendar.add(calendar, start, duration) == expected


@settings(max_examples=200, deadline=None)
@given(start=instants, duration=durations)
def test_round_the_clock_without_pauses_is_the_generic_walk(
    start: datetime, duration: timedelta
) -> None:
    expected = _advance(_Pauses(()).free(start, datetime.max.replace(tzinfo=UTC)), start, duration)
    assert RoundTheClock().add(start, duration) == expected


def test_negative_durations_are_still_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        BusinessCalendar()._add_unpaused(datetime(2026, 3, 2, tzinfo=UTC), -timedelta(seconds=1))
    with pytest.raises(ValueError, match="must not be negative"):
        RoundTheClock().add(datetime(2026, 3, 2, tzinfo=UTC), -timedelta(seconds=1))


def _plain_uncached(value: Any) -> Any:
    """`plain` as it was, by `isinstance` tests value by value: what `plain`,
    deciding once per type, must agree with."""
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain_uncached(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain_uncached(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain_uncached(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


@pytest.mark.parametrize(
    "hours", [Decimal("0"), Decimal("0.5"), Decimal("1.3333333"), Decimal("4"), Decimal("72")]
)
@pytest.mark.parametrize("share", [Decimal("0.5"), Decimal("0.75"), Decimal("0.3333")])
def test_remembered_hours_and_shares_equal_the_arithmetic(hours: Decimal, share: Decimal) -> None:
    allowed = sla._hours(hours)
    assert allowed == sla._hours.__wrapped__(hours)
    assert sla._hours(hours) == allowed  # answered from memory, the same
    assert sla._share(allowed, share) == sla._share.__wrapped__(allowed, share)


def test_remembered_calendar_warning_equals_the_computation() -> None:
    policy = builtin_policy()
    calendar = sla.calendar_for(policy, "Asia/Shanghai")
    for start, end in [
        (datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC)),
        (datetime(2026, 12, 30, tzinfo=UTC), datetime(2027, 1, 5, tzinfo=UTC)),
        (datetime(2031, 6, 1, tzinfo=UTC), datetime(2031, 6, 2, tzinfo=UTC)),
    ]:
        first, last = sorted((calendar.local_date(start).year, calendar.local_date(end).year))
        expected = sla._years_warning.__wrapped__(calendar, policy.calendar.country, first, last)
        assert sla.calendar_warning(calendar, policy, start, end) == expected
        assert sla.calendar_warning(calendar, policy, start, end) == expected


class _Colour(enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


@dataclasses.dataclass(frozen=True)
class _Inner:
    when: datetime
    amount: Decimal
    tags: tuple[str, ...]


@dataclasses.dataclass
class _Outer:
    inner: _Inner
    colour: _Colour
    by_day: dict[str, date]
    ids: list[UUID]


@pytest.mark.parametrize(
    "value",
    [
        None, 1, 1.5, True, "text", _Colour.RED, _Level.HIGH, Decimal("3"), Decimal("3.25"),
        datetime(2026, 3, 2, 8, 30, tzinfo=UTC), date(2026, 3, 2), uuid4(), [1, "a"], (2, None),
        {"k": Decimal("1.0")}, _Inner, _Colour,
        _Outer(
            _Inner(datetime(2026, 1, 1, tzinfo=UTC), Decimal("9.90"), ("a", "b")),
            _Colour.RED, {"d": date(2026, 1, 2)}, [uuid4()],
        ),
    ],
)  # fmt: skip
def test_plain_by_type_equals_plain_by_isinstance(value: Any) -> None:
    assert plain(value) == _plain_uncached(value)
    assert plain(value) == _plain_uncached(value)  # the second time from the type's entry
    assert type(plain(value)) is type(_plain_uncached(value))


def test_kind_of_by_type_equals_the_walk_over_kinds() -> None:
    for event_type in (WorkOrder.Booked, WorkOrder.Arrived, Complaint.Lodged):
        assert audit.kind_of(object.__new__(event_type)) == audit._kind_of_type(event_type)
    assert audit._kind_of_type(WorkOrder.Booked) == "work_order"
    assert audit._kind_of_type(Complaint.Lodged) == "complaint"


def test_event_types_answer_as_isinstance() -> None:
    test = EventTypes(WorkOrder.Assigned, Complaint.Event)
    for event_type in (WorkOrder.Assigned, WorkOrder.Arrived, Complaint.Lodged, Complaint.Closed):
        event = object.__new__(event_type)
        assert test(event) is isinstance(event, (WorkOrder.Assigned, Complaint.Event))
        assert test(event) is isinstance(event, (WorkOrder.Assigned, Complaint.Event))
    assert test(1) is False


class _FakeTx:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[Any]]] = []

    def executemany(self, statement: str, rows: list[Any]) -> None:
        self.sent.append((statement, list(rows)))


class _FakeBatch:
    def __init__(self) -> None:
        self.tx = _FakeTx()
        self.appended: list[tuple[str, tuple[str, ...], list[Any]]] = []

    def append(self, table: str, columns: tuple[str, ...], rows: list[Any]) -> None:
        self.appended.append((table, columns, list(rows)))


def _rows() -> tuple[VersionedRows, _FakeBatch]:
    batch = _FakeBatch()
    rows = VersionedRows(batch, "t", "t_history", ("k",), ("k", "a", "b", "r"))  # type: ignore[arg-type]
    rows.known_absent("x")
    return rows, batch


def test_update_to_the_same_values_changes_nothing() -> None:
    rows, _ = _rows()
    rows.position = 1
    rows.insert("x", a=1, b="s", r=0.1)
    rows.position = 2
    first = rows.get("x")
    assert rows.update("x", a=1, b="s") is first
    assert rows.update("x", r=0.1 + 1e-9) is first  # REAL read back: close is the same
    assert rows._replaced == []
    assert first is not None and first[VALID_FROM] == 1


def test_update_keeps_the_replaced_version_and_the_other_columns() -> None:
    rows, batch = _rows()
    rows.position = 1
    rows.insert("x", a=1, b="s", r=0.5)
    rows.position = 2
    row = rows.update("x", b="t")
    assert row == {"k": "x", "a": 1, "b": "t", "r": 0.5, VALID_FROM: 2}
    assert rows.get("x") == row
    assert rows._replaced == [("x", 1, "s", 0.5, 1, 2)]
    rows.position = 3
    rows.put_values(("x", 1, "t", 0.5))  # the same row: no version
    rows.put_values(("x", 2, "t", 0.5))
    assert rows._replaced[-1] == ("x", 1, "t", 0.5, 2, 3)
    rows.known_absent("y")
    assert rows.update("y", a=1) is None
    rows.flush()
    (table, _, new), (history, _, replaced) = batch.appended
    assert (table, new) == ("t", [("x", 2, "t", 0.5, 3)])
    assert history == "t_history" and len(replaced) == 2
    assert all(not rows for _, rows in batch.tx.sent)  # nothing stored before: no upserts


def test_the_audit_trails_encoder_writes_what_json_dumps_wrote() -> None:
    data = {"z": "維修", "a": [1, 2.5, None], "m": {"b": True, "a": "\u00e9"}}
    assert audit._DATA_JSON(data) == json.dumps(data, sort_keys=True, ensure_ascii=False)


def test_span_class_by_bisection_is_the_first_bound_not_exceeded() -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    spans = [timedelta(0), timedelta(microseconds=1)]
    for bound in SPAN_BOUNDS:
        spans += [bound - timedelta(microseconds=1), bound, bound + timedelta(microseconds=1)]
    spans.append(timedelta(days=9999))
    for span in spans:
        expected = next(
            (k for k, bound in enumerate(SPAN_BOUNDS) if span <= bound), len(SPAN_BOUNDS)
        )
        assert span_class(start, start + span) == expected
    assert span_class(start, None) is None


class _Text(str):
    """A subclass of str (as a StrEnum's members are)."""


_cells = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.sampled_from(
        ["", "\x00", "a\ud800b", "\udfff", _Colour.RED, "\ufffd", _Text("ok"), _Text("\x00")]
    ),
)


@settings(max_examples=300)
@given(st.integers(min_value=1, max_value=4).flatmap(
    lambda width: st.lists(st.tuples(*[_cells] * width), max_size=6)
))  # fmt: skip
def test_copy_rows_finds_unstorable_text_column_by_column(rows: list[tuple[Any, ...]]) -> None:
    """`copy_rows` decides by column which values to search: it finds
    unstorable text exactly when the search over every text value does."""
    per_value = "\n".join([v for row in rows for v in row if isinstance(v, str)])
    expected = database._UNSTORABLE.search(per_value) is not None
    assert (database._UNSTORABLE.search(database._text_of(rows)) is not None) is expected
    assert database._has_unstorable(database._text_of(rows)) is expected


@settings(max_examples=500)
@given(st.text(alphabet=st.characters(exclude_categories=(), min_codepoint=0)))
def test_the_scan_for_unstorable_text_equals_the_search(text: str) -> None:
    assert database._has_unstorable(text) is (database._UNSTORABLE.search(text) is not None)


def test_fetched_rows_are_dicts_of_their_own() -> None:
    """psycopg's dict rows are kept as they are, SQLite's rows copied to dicts."""
    import sqlite3

    fresh = [{"a": 1}, {"a": 2}]
    assert database._as_dicts(fresh) is fresh
    assert database._as_dict(fresh[0]) is fresh[0]
    connection = sqlite3.connect(":memory:")
    connection.row_factory = sqlite3.Row
    rows = connection.execute("SELECT 1 AS a UNION ALL SELECT 2").fetchall()
    assert database._as_dicts(rows) == fresh
    assert all(type(r) is dict for r in database._as_dicts(rows))
    assert database._as_dicts([]) == []


@pytest.mark.parametrize("value", [None, True, False, 0, -3, 1.5, "", "text"])
def test_values_history_data_keeps_as_they_are_are_plain(value: Any) -> None:
    """`history_data` skips `plain` for these types: `plain` returns them unchanged."""
    from fieldledger.application.ledger import _ALREADY_PLAIN

    assert type(value) in _ALREADY_PLAIN
    assert _plain_uncached(value) is value
    assert plain(value) is value


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
        datetime(2026, 3, 2, 8, 30, 0, 120, tzinfo=UTC),
        datetime.fromisoformat("2026-03-02T08:30:00.5+00:00"),
        datetime.fromisoformat("2026-03-02T08:30:00+08:00"),
        datetime(2026, 3, 2, 8, 30, tzinfo=timezone(timedelta(0))),
        datetime(2026, 3, 2, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
    ],
)
def test_stamping_an_instant_already_in_utc_equals_converting_it(value: datetime) -> None:
    """The SLA's and the audit trail's stamps skip the conversion of an instant
    already in UTC: the same text as converting it."""
    from fieldledger.application.ledger import utc_iso
    from fieldledger.projections.sla import stamp

    assert stamp(value) == value.astimezone(UTC).isoformat(timespec="microseconds")
    assert utc_iso(value) == value.astimezone(UTC).isoformat()


def test_the_sla_subjects_encoder_writes_what_json_dumps_wrote() -> None:
    from fieldledger.projections.sla import _SUBJECT_JSON

    data = {"b": [1, 2.5, None, True], "a": "工单 \u2028", "c": {"z": 1, "y": "x"}}
    assert _SUBJECT_JSON(data) == json.dumps(data, sort_keys=True)


@settings(max_examples=300)
@given(st.lists(_cells, max_size=8))
def test_parameters_made_storable_in_one_scan_equal_storable_on_each(params: list[Any]) -> None:
    assert database._storable_params(params) == tuple(map(database.storable, params))
