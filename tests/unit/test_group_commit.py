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


class CountingLock:
    """A waiting save's lock that counts its wake-ups (and can run a hook first)."""

    made: list[CountingLock] = []

    def __init__(self, before_release: Any = None) -> None:
        self.lock = threading.Lock()
        self.releases = 0
        self.before_release = before_release
        CountingLock.made.append(self)

    def acquire(self) -> bool:
        return self.lock.acquire()

    def release(self) -> None:
        self.releases += 1
        if self.before_release is not None:
            hook, self.before_release = self.before_release, None
            hook()
        self.lock.release()


def queue_behind_leader(
    committer: GroupCommitter, store: Store, save: Any, names: list[str]
) -> list[threading.Thread]:
    leader = threading.Thread(target=save, args=("l",))
    leader.start()
    assert store.first_started.wait(5)
    threads = [leader]
    for name in names:  # one at a time: the queue's order is the arrival's
        t = threading.Thread(target=save, args=(name,))
        t.start()
        threads.append(t)
        while len(committer._waiting) < len(threads) - 1:
            threading.Event().wait(0.001)
    return threads


def test_a_lone_save_waits_on_nothing(monkeypatch: Any) -> None:
    import fieldledger.application.group_commit as group_commit

    CountingLock.made = []
    monkeypatch.setattr(group_commit, "allocate_lock", CountingLock)
    store = Store()
    store.release_first.set()
    committer = GroupCommitter(store.write)
    assert committer.save(["a"], None) == 1
    assert committer.save(["b"], None) == 2
    assert CountingLock.made == []
    assert not committer._leading and committer._waiting == []


def test_each_waiting_save_is_woken_once_and_the_lead_never_lapses(monkeypatch: Any) -> None:
    """The oldest waiting save is handed the lead with its batch: a save arriving
    meanwhile queues behind it instead of leading; every waiting save is woken
    exactly once (by its commit, or by the lead handed to it)."""
    import fieldledger.application.group_commit as group_commit

    CountingLock.made = []
    monkeypatch.setattr(group_commit, "allocate_lock", CountingLock)
    store = Store()
    committer = GroupCommitter(store.write, max_batch=2)
    outcomes: dict[str, Any] = {}

    def save(name: str) -> None:
        outcomes[name] = committer.save([name], None)

    threads = queue_behind_leader(committer, store, save, ["f1", "f2", "f3"])
    late: list[threading.Thread] = []

    def arrive_during_hand_off() -> None:
        # The leader has written its batch and hands the lead to f1: a save
        # arriving now finds the lead taken, and waits.
        assert committer._leading
        t = threading.Thread(target=save, args=("late",))
        t.start()
        late.append(t)
        while len(committer._waiting) < 2:  # f3 and the late one
            threading.Event().wait(0.001)

    CountingLock.made[0].before_release = arrive_during_hand_off
    store.release_first.set()
    for t in threads:
        t.join(5)
    for t in [*threads, *late]:  # the late one has started by now
        t.join(5)
        assert not t.is_alive()
    # l alone; f1 leads f1, f2; f3 leads f3 and the late save.
    assert store.transactions == [["l"], ["f1", "f2"], ["f3", "late"]]
    assert [lock.releases for lock in CountingLock.made] == [1, 1, 1, 1]
    assert all(store.rows[outcomes[n] - 1] == n for n in ["l", "f1", "f2", "f3", "late"])
    assert not committer._leading and committer._waiting == []


def test_a_failed_write_reaches_every_save_of_its_batch_and_the_lead_is_given_up() -> None:
    store = Store()
    committer = GroupCommitter(store.write)
    outcomes: dict[str, Any] = {}
    broken = True
    write = store.write

    def failing(events: Sequence[Any], receipts: list[Any]) -> list[int | None]:
        if "l" not in events and broken:
            raise OSError("connection lost")
        return write(events, receipts)

    committer.write = failing

    def save(name: str) -> None:
        try:
            outcomes[name] = committer.save([name], None)
        except OSError as e:
            outcomes[name] = e

    threads = queue_behind_leader(committer, store, save, ["f1", "f2"])
    store.release_first.set()
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    assert outcomes["l"] == 1
    assert isinstance(outcomes["f1"], OSError) and outcomes["f1"] is outcomes["f2"]
    assert not committer._leading and committer._waiting == []
    broken = False
    assert committer.save(["next"], None) == 2
