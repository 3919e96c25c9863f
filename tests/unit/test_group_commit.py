"""Group commit: concurrent saves share a transaction, yet each keeps its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError
from fieldledger.application.group_commit import GroupCommitter


class Store:
    """A fake store: refuses any transaction holding a 'conflict' event."""

    def __init__(self) -> None:
        self.transactions: list[list[Any]] = []
        self.rows: list[Any] = []
        self.first_started = threading.Event()
        self.release_first = threading.Event()

    def write(self, events: Sequence[Any], receipts: list[Any]) -> list[int | None]:
        if not self.transactions and not self.first_started.is_set():
            self.first_started.set()
            self.release_first.wait(5)
        self.transactions.append(list(events))
        if "conflict" in events:
            raise IntegrityError("duplicate version")
        start = len(self.rows)
        self.rows.extend(events)
        return list(range(start + 1, start + 1 + len(events)))


def test_a_lone_save_is_written_at_once_in_its_own_thread() -> None:
    store = Store()
    store.release_first.set()
    committer = GroupCommitter(store.write)
    assert committer.save(["a", "b"], None) == 2
    assert store.transactions == [["a", "b"]]


def test_saves_arriving_during_a_commit_are_written_together_and_each_gets_its_outcome() -> None:
    store = Store()
    committer = GroupCommitter(store.write)
    outcomes: dict[str, Any] = {}

    def save(name: str, events: list[str]) -> None:
        try:
            outcomes[name] = committer.save(events, None)
        except IntegrityError as e:
            outcomes[name] = e

    leader = threading.Thread(target=save, args=("leader", ["l1"]))
    leader.start()
    assert store.first_started.wait(5)
    followers = [
        threading.Thread(target=save, args=("ok-1", ["x1", "x2"])),
        threading.Thread(target=save, args=("bad", ["conflict"])),
        threading.Thread(target=save, args=("ok-2", ["y1"])),
    ]
    for t in followers:
        t.start()
    # Wait until all three are queued behind the leader, then let it finish.
    while len(committer._waiting) < 3:
        threading.Event().wait(0.001)
    store.release_first.set()
    for t in [leader, *followers]:
        t.join(5)
    assert outcomes["leader"] == 1
    assert isinstance(outcomes["bad"], IntegrityError)
    # The three followers were tried as one transaction, refused, then alone.
    assert sorted(store.transactions[1]) == ["conflict", "x1", "x2", "y1"]
    assert sorted(map(tuple, store.transactions[2:])) == [("conflict",), ("x1", "x2"), ("y1",)]
    assert sorted(store.rows) == ["l1", "x1", "x2", "y1"]
    assert store.rows[outcomes["ok-1"] - 1] == "x2"
    assert store.rows[outcomes["ok-2"] - 1] == "y1"


def test_a_queue_longer_than_max_batch_is_handed_on_until_every_save_is_written() -> None:
    store = Store()
    committer = GroupCommitter(store.write, max_batch=2)
    outcomes: dict[str, Any] = {}

    def save(name: str) -> None:
        outcomes[name] = committer.save([name], None)

    leader = threading.Thread(target=save, args=("l",))
    leader.start()
    assert store.first_started.wait(5)
    names = [f"f{i}" for i in range(7)]
    followers = [threading.Thread(target=save, args=(n,)) for n in names]
    for t in followers:
        t.start()
    while len(committer._waiting) < len(names):
        threading.Event().wait(0.001)
    store.release_first.set()
    for t in [leader, *followers]:
        t.join(5)
        assert not t.is_alive()
    # One transaction for the leader, then the seven in batches of at most two.
    assert [len(t) for t in store.transactions] == [1, 2, 2, 2, 1]
    assert sorted(store.rows) == sorted(["l", *names])
    assert all(store.rows[outcomes[n] - 1] == n for n in ["l", *names])
