"""When the console's board stream wakes up without a new event: at the next
instant a shown target turns yellow or red."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fieldledger.api.console.board import _next_colour_change
from fieldledger.projections.sla import BoardItem

NOW = datetime(2026, 10, 9, 2, 0, tzinfo=UTC)


def item(yellow_in: float | None, due_in: float | None) -> BoardItem:
    def at(minutes: float | None) -> datetime | None:
        return None if minutes is None else NOW + timedelta(minutes=minutes)

    return BoardItem(
        aggregate_id="a", kind="work_order", target="arrival", started_at=NOW - timedelta(hours=1),
        due_at=at(due_in), status="blue", escalation_level=0, owner_id=None,
        policy_version="v1", calendar_warning=None, yellow_from=at(yellow_in),
    )  # fmt: skip


def test_the_next_change_is_the_earliest_future_yellow_or_due_time() -> None:
    items = [item(30, 60), item(-5, 10), item(None, None)]
    assert _next_colour_change(items, NOW) == NOW + timedelta(minutes=10)


def test_nothing_left_to_change_means_no_wake_up() -> None:
    assert _next_colour_change([item(-30, -1), item(None, None)], NOW) is None
    assert _next_colour_change([], NOW) is None
