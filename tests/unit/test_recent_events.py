"""`RecentEvents`: the live catch-ups' shared reads answer only what the store
would (a prefix of it), and hold only a gap-free stretch of it."""

from __future__ import annotations

from uuid import uuid4

from eventsourcing.persistence import Notification
from fieldledger.projections.batches import RecentEvents


def read(*ids: int) -> list[tuple[Notification, str, str]]:
    return [
        (
            Notification(id=i, originator_id=uuid4(), originator_version=1, topic="t", state=b""),
            f"event {i}",
            f"id {i}",
        )
        for i in ids
    ]


def positions(found: list[tuple[Notification, str, str | None]] | None) -> list[int] | None:
    return None if found is None else [n.id for n, _, _ in found]


def test_a_read_is_served_from_where_it_started_up_to_its_last_event() -> None:
    recent = RecentEvents(keep=100)
    assert recent.get(1, 10, None) is None
    recent.put(5, read(5, 6, 8, 9))  # 7 was rolled back: a gap for good
    assert positions(recent.get(5, 10, None)) == [5, 6, 8, 9]
    assert positions(recent.get(7, 10, None)) == [8, 9]
    assert positions(recent.get(6, 2, None)) == [6, 8]  # at most `limit`
    assert positions(recent.get(5, 10, 6)) == [5, 6]  # none after `stop`
    assert recent.get(4, 10, None) is None  # before what it was read from
    assert recent.get(10, 10, None) is None  # after it: only the store knows


def test_a_read_right_after_extends_the_stretch_and_any_other_replaces_it() -> None:
    recent = RecentEvents(keep=100)
    recent.put(1, read(1, 2, 3))
    recent.put(4, read(5, 6))  # from 4: nothing at 4, then 5 and 6
    assert positions(recent.get(1, 10, None)) == [1, 2, 3, 5, 6]
    recent.put(3, read(3, 5, 6, 7))  # overlapping: the same events, and one more
    assert positions(recent.get(1, 10, None)) == [1, 2, 3, 5, 6, 7]
    recent.put(20, read(20, 21))  # not known what lies between 8 and 19
    assert recent.get(1, 10, None) is None
    assert recent.get(8, 10, None) is None
    assert positions(recent.get(20, 10, None)) == [20, 21]
    recent.put(30, [])  # an empty read tells nothing to keep
    assert positions(recent.get(21, 10, None)) == [21]


def test_it_keeps_the_latest_events_only() -> None:
    recent = RecentEvents(keep=3)
    recent.put(1, read(1, 2, 3))
    recent.put(4, read(4, 5))
    assert recent.get(1, 10, None) is None
    assert recent.get(2, 10, None) is None
    assert positions(recent.get(3, 10, None)) == [3, 4, 5]
    found = recent.get(4, 1, None)
    assert found is not None and found[0][1] == "event 4"  # decoded once, kept
