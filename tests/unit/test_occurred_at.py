"""When a fact happened in the field (contract §3): occurred_at may not lie more
than 2 minutes after the server's time, nor before the aggregate's previous event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from fieldledger.domain.errors import InvalidCommand
from fieldledger.domain.facts import Context, Role
from fieldledger.domain.work_orders import Billing, Channel, Customer, Priority, WorkOrder, Zone

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def book(ctx: Context) -> WorkOrder:
    return WorkOrder.book(
        ctx, id=uuid4(), customer=Customer("A", "1"), service_type="repair",
        priority=Priority.ROUTINE, zone=Zone.URBAN, channel=Channel.PHONE,
        billing=Billing.PAID, description="", policy_version="v",
    )  # fmt: skip


def test_occurred_at_defaults_to_the_servers_time() -> None:
    wo = book(Context("d", Role.DISPATCHER, NOW))
    event = wo.collect_events()[0]
    assert event.occurred_at == NOW
    assert event.timestamp == NOW


def test_a_phone_syncing_later_records_when_it_happened() -> None:
    wo = book(Context("d", Role.DISPATCHER, NOW - timedelta(hours=3)))
    wo.assign(Context("d", Role.DISPATCHER, NOW, NOW - timedelta(hours=1)), "tech-1")
    event = wo.collect_events()[-1]
    assert (event.occurred_at, event.timestamp) == (NOW - timedelta(hours=1), NOW)


def test_occurred_at_two_minutes_ahead_is_tolerated_as_clock_skew() -> None:
    wo = book(Context("d", Role.DISPATCHER, NOW, NOW + timedelta(minutes=2)))
    assert wo.last_occurred_at == NOW + timedelta(minutes=2)


def test_occurred_at_more_than_two_minutes_ahead_is_refused() -> None:
    with pytest.raises(InvalidCommand, match="more than 2 minutes after"):
        book(Context("d", Role.DISPATCHER, NOW, NOW + timedelta(minutes=2, seconds=1)))


def test_occurred_at_before_the_previous_event_is_refused() -> None:
    wo = book(Context("d", Role.DISPATCHER, NOW))
    with pytest.raises(InvalidCommand, match="before the previous event"):
        wo.assign(Context("d", Role.DISPATCHER, NOW, NOW - timedelta(seconds=1)), "tech-1")
    assert wo.version == 1


def test_occurred_at_is_stored_in_utc_whatever_offset_it_came_with() -> None:
    shanghai = timezone(timedelta(hours=8))
    wo = book(Context("d", Role.DISPATCHER, NOW, NOW.astimezone(shanghai)))
    occurred = wo.collect_events()[0].occurred_at
    assert occurred == NOW
    assert occurred.utcoffset() == timedelta(0)


def test_a_time_without_offset_is_refused() -> None:
    with pytest.raises(InvalidCommand, match="time zone offset"):
        Context("d", Role.DISPATCHER, NOW, datetime(2026, 11, 23, 10, 0))


def test_occurred_at_may_lie_at_most_the_backdating_bound_before_recording() -> None:
    """FIELDLEDGER_MAX_BACKDATE (issue 10): default 7 days, booking included."""
    book(Context("d", Role.DISPATCHER, NOW, NOW - timedelta(days=7)))  # at the bound
    with pytest.raises(InvalidCommand, match="more than 7d before") as refused:
        book(Context("d", Role.DISPATCHER, NOW, datetime(1900, 1, 1, tzinfo=UTC)))
    assert refused.value.field == "occurred_at"
    wo = book(Context("d", Role.DISPATCHER, NOW, NOW - timedelta(days=2)))
    with pytest.raises(InvalidCommand, match="more than 1d before"):
        wo.assign(Context("d", Role.DISPATCHER, NOW, NOW - timedelta(days=1, seconds=1),
                          max_backdate=timedelta(days=1)), "tech-1")  # fmt: skip
    # `none`: no bound, for importing history.
    book(Context("d", Role.DISPATCHER, NOW, datetime(1900, 1, 1, tzinfo=UTC), max_backdate=None))


def test_a_critical_complaints_escalation_on_lodging_is_the_systems() -> None:
    from fieldledger.domain.complaints import Complainant, Complaint, ComplaintChannel, Severity

    complaint = Complaint.lodge(
        Context("app-1", Role.CLIENT_APP, NOW), id=uuid4(), customer=Complainant("A", "1"),
        channel=ComplaintChannel.PHONE, category="rude", severity=Severity.CRITICAL,
        description="x", policy_version="v",
    )  # fmt: skip
    lodged, escalated = complaint.collect_events()
    assert (lodged.actor, lodged.role) == ("app-1", "client_app")
    assert (escalated.actor, escalated.role) == ("system", "system")
    assert escalated.occurred_at == lodged.occurred_at
