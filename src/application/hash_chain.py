"""Tamper evidence: every stored event is hashed into two chains.

* the aggregate's chain: `event_hash = sha256(previous event_hash of the same
  aggregate ‖ originator_id ‖ version ‖ topic ‖ state)`;
* the store's chain, over the notification order:
  `chain_hash = sha256(previous chain_hash ‖ position ‖ event_hash)`.

The recorders (`event_store.py`) write one row per event into `event_hashes`
in the same transaction as the events, under the same serialisation (the
PostgreSQL table lock, the SQLite write lock), so the global chain has no
forks. `verify_chain` walks the store and the hash rows side by side and names
the first event whose row was edited, deleted, inserted or moved.
docs/audit.md says what this does and does not protect against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Notification, StoredEvent
from fieldledger.application.database import Database, Row

HASHES_TABLE = "event_hashes"
#: The "previous hash" of the first event of an aggregate and of the store.
GENESIS = "0" * 64


def canonical_id(originator_id: UUID | str) -> str:
    """The id as hashed: the dashed UUID form, whatever the dialect stores."""
    return str(originator_id) if isinstance(originator_id, UUID) else str(UUID(originator_id))


def _framed(h: Any, part: bytes) -> None:
    h.update(len(part).to_bytes(8, "big"))
    h.update(part)


def event_hash(
    previous: str | None, originator_id: UUID | str, version: int, topic: str, state: bytes
) -> str:
    """The hash of one stored event, chained to its aggregate's previous event."""
    h = hashlib.sha256(bytes.fromhex(previous or GENESIS))
    _framed(h, canonical_id(originator_id).encode())
    h.update(version.to_bytes(8, "big", signed=True))
    _framed(h, topic.encode())
    _framed(h, bytes(state))
    return h.hexdigest()


def chain_hash(previous: str | None, position: int, hash_of_event: str) -> str:
    """The store's chain: the previous chain hash, this position and its event hash."""
    h = hashlib.sha256(bytes.fromhex(previous or GENESIS))
    h.update(position.to_bytes(8, "big", signed=True))
    h.update(bytes.fromhex(hash_of_event))
    return h.hexdigest()


@dataclass(frozen=True)
class HashRow:
    position: int
    originator_id: UUID | str
    originator_version: int
    event_hash: str
    chain_hash: str


def chain_rows(
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    last_chain_hash: str | None,
    previous_event_hashes: dict[str, str],
) -> list[HashRow]:
    """The hash rows of events just inserted at `positions`.

    `last_chain_hash` is the chain hash of the store's last event before them,
    `previous_event_hashes` (by canonical id) the hash of each aggregate's event
    before its first new one; both read under the insert's lock.
    """
    if len(positions) != len(stored_events):  # pragma: no cover - the library's contract
        raise RuntimeError("every stored event needs its position to be hashed")
    previous = dict(previous_event_hashes)
    chained = last_chain_hash
    rows = []
    for position, stored in sorted(zip(positions, stored_events, strict=True), key=lambda p: p[0]):
        key = canonical_id(stored.originator_id)
        own = event_hash(
            previous.get(key), stored.originator_id, stored.originator_version,
            stored.topic, stored.state,
        )  # fmt: skip
        chained = chain_hash(chained, position, own)
        previous[key] = own
        rows.append(
            HashRow(position, stored.originator_id, stored.originator_version, own, chained)
        )
    return rows


def versions_before(stored_events: Sequence[StoredEvent]) -> dict[str, tuple[Any, int]]:
    """For each aggregate in a save, the version before its first new event (when > 0)."""
    first: dict[str, tuple[Any, int]] = {}
    for s in stored_events:
        key = canonical_id(s.originator_id)
        if key not in first or s.originator_version - 1 < first[key][1]:
            first[key] = (s.originator_id, s.originator_version - 1)
    return {k: v for k, v in first.items() if v[1] > 0}


# -- verification ---------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """The first place where the store and its hash chain disagree."""

    position: int
    aggregate_id: str
    version: int
    problem: str

    def __str__(self) -> str:
        return (
            f"hash chain broken at position {self.position} "
            f"(aggregate {self.aggregate_id}, version {self.version}): {self.problem}"
        )


@dataclass(frozen=True)
class Verdict:
    events: int
    head: int
    head_chain_hash: str | None
    broken: Break | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def _notifications(recorder: ApplicationRecorder, head: int, batch: int) -> Iterator[Notification]:
    start = 1
    while start <= head:
        notifications = recorder.select_notifications(start=start, limit=batch, stop=head)
        yield from notifications
        if len(notifications) < batch:
            return
        start = notifications[-1].id + 1


def _hash_rows(db: Database, head: int, batch: int) -> Iterator[Row]:
    after = 0
    while True:
        with db.transaction(commit=False) as tx:
            h = tx.table(HASHES_TABLE)
            rows = tx.query(
                "SELECT h.position, h.originator_id, h.originator_version, h.event_hash, "
                "h.chain_hash, p.event_hash AS previous_hash, p.position AS previous_position "
                f"FROM {h} h LEFT JOIN {h} p ON p.originator_id = h.originator_id "
                "AND p.originator_version = h.originator_version - 1 "
                "WHERE h.position > ? AND h.position <= ? ORDER BY h.position LIMIT ?",
                (after, head, batch),
            )
        yield from rows
        if len(rows) < batch:
            return
        after = int(rows[-1]["position"])


def verify_chain(
    recorder: ApplicationRecorder,
    *,
    batch_size: int = 1000,
    anchors: dict[int, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Verdict:
    """Walk every event up to the head of the store (as it is when the walk
    starts) with its hash row; stop at the first disagreement.

    `anchors` are chain hashes kept outside the database ({position: chain
    hash}); each must match, which also catches a rewritten hash table or a
    truncated store up to that anchor.
    """
    db = Database(recorder)
    head = recorder.max_notification_id() or 0
    pending_anchors = dict(anchors or {})
    events = _notifications(recorder, head, batch_size)
    rows = _hash_rows(db, head, batch_size)
    event = next(events, None)
    row = next(rows, None)
    chained: str | None = None
    count = 0

    def broken(position: int, aggregate: Any, version: int, problem: str) -> Verdict:
        return Verdict(count, head, chained, Break(position, str(aggregate), version, problem))

    while event is not None or row is not None:
        if row is None or (event is not None and event.id < row["position"]):
            assert event is not None
            return broken(event.id, canonical_id(event.originator_id), event.originator_version,
                          "the event has no hash row (inserted behind the recorder's back)")
        if event is None or row["position"] < event.id:
            return broken(
                int(row["position"]), canonical_id(row["originator_id"]),
                int(row["originator_version"]),
                "the hash chain records an event here but the store has none (deleted)",
            )  # fmt: skip
        position = event.id
        aggregate = canonical_id(event.originator_id)
        version = event.originator_version
        if (canonical_id(row["originator_id"]), int(row["originator_version"])) != (
            aggregate, version
        ):
            return broken(
                position, aggregate, version,
                f"the chain recorded aggregate {canonical_id(row['originator_id'])} version "
                f"{row['originator_version']} at this position (rows moved or renumbered)",
            )  # fmt: skip
        previous = row["previous_hash"]
        if version > 1 and previous is None:
            return broken(position, aggregate, version,
                          f"the aggregate's previous event (version {version - 1}) has no hash row")
        if previous is not None and int(row["previous_position"]) >= position:
            return broken(position, aggregate, version,
                          f"the aggregate's previous event (version {version - 1}) is recorded "
                          "after it (rows reordered)")
        expected = event_hash(
            previous if version > 1 else None, event.originator_id, version, event.topic,
            event.state,
        )  # fmt: skip
        if expected != row["event_hash"]:
            return broken(position, aggregate, version,
                          "the event's stored content (topic or state) does not match its hash "
                          "(edited, or swapped with another event)")
        following = chain_hash(chained, position, row["event_hash"])
        if following != row["chain_hash"]:
            return broken(position, aggregate, version,
                          "the chain hash does not follow from the previous one (an earlier "
                          "event was deleted or moved, or the hash table was edited)")
        chained = following
        count += 1
        anchored = pending_anchors.pop(position, None)
        if anchored is not None and anchored.lower() != chained:
            return broken(position, aggregate, version,
                          f"the chain hash {chained} differs from the anchored {anchored}")
        if progress is not None:
            progress(position)
        event = next(events, None)
        row = next(rows, None)
    if pending_anchors:
        position = min(pending_anchors)
        return Verdict(count, head, chained, Break(
            position, "-", 0, "an anchored position is not in the store (events removed "
            "from the end, or the anchor is from another store)",
        ))  # fmt: skip
    return Verdict(count, head, chained, None)


def verify_aggregate(
    stored_events: Sequence[StoredEvent], hashes: dict[int, str]
) -> dict[int, str | None]:
    """Each stored event of one aggregate against its hash row: {version: None when
    it verifies, else what is wrong}. An event verifies when its stored content,
    hashed after its predecessor's recorded hash, gives its own recorded hash, so
    an event edited below the API is named while those after it still verify
    (`verify_chain` checks the store's chain as a whole)."""
    verdicts: dict[int, str | None] = {}
    for stored in stored_events:
        version = stored.originator_version
        recorded = hashes.get(version)
        if recorded is None:
            verdicts[version] = "no hash row (inserted behind the recorder's back)"
            continue
        previous = hashes.get(version - 1) if version > 1 else None
        if version > 1 and previous is None:
            verdicts[version] = f"the previous event (version {version - 1}) has no hash row"
            continue
        expected = event_hash(
            previous, stored.originator_id, version, stored.topic, stored.state
        )
        verdicts[version] = (
            None if expected == recorded else "its stored content does not match its hash (edited)"
        )
    return verdicts
