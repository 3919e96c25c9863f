"""Catch-up and batches: feeding read models the store's events, exactly once.

Events are read from the store in batches; each batch is applied in one
transaction that also writes the generation's tracked position (the library's
tracking recorder), so a batch is applied entirely or not at all, and never
twice. Each read model gets a fresh `Batch` (transaction, tables, its own
per-batch state) per batch.

`feed` is the one-pass form used by rebuilds and scratch builds: each event is
decoded once and fed to every view being built, all in one transaction per
batch.
"""

from __future__ import annotations

import sqlite3
import threading
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder
from fieldledger.application.database import Database, Tx
from fieldledger.application.ledger import FieldLedger
from fieldledger.projections.generations import (
    GENERATIONS,
    TRACKING_TABLES,
    Generations,
    RebuildSuperseded,
    tracking_key,
)
from fieldledger.projections.read_model import Batch, EventTypes, ReadModel, event_ids
from fieldledger.projections.unit_of_work import Pending, copy_rows

BATCH_SIZE = 500

Progress = Callable[[int, int], None]

#: One event as read for the live catch-ups: as stored, decoded (or the
#: failure to decode it), and its aggregate id as text (None if undecoded),
#: each worked out once for every view.
Read = tuple[Notification, Any, str | None]


class ProjectionFailed(Exception):
    """A read model failed on an event; it stops there until fixed and rebuilt."""

    def __init__(self, name: str, position: int, error: str) -> None:
        self.name = name
        self.position = position
        self.error = error
        super().__init__(f"projection {name} failed at position {position}: {error}")


class _Moved(Exception):
    """The generation's tracked position is not where this batch starts."""

    def __init__(self, position: int) -> None:
        self.position = position


class _Gone(Exception):
    """The generation was retired or dropped (a rebuild swapped another in)."""


def tracking_recorder(db: Database) -> TrackingRecorder:
    recorder: TrackingRecorder
    if db.dialect == "sqlite":
        assert not isinstance(db.datastore, PostgresTrackingRecorder)
        recorder = SQLiteTrackingRecorder(db.datastore)  # type: ignore[arg-type]
    else:
        recorder = PostgresTrackingRecorder(
            db.datastore,  # type: ignore[arg-type]
            tracking_table_name=TRACKING_TABLES["postgres"],
        )
    recorder.create_table()
    return recorder


def is_transient(error: BaseException) -> bool:
    """A database hiccup (lost connection, lock timeout, deadlock, busy SQLite)
    rather than a fault of the read model on an event: retried, never recorded."""
    if isinstance(error, psycopg.OperationalError | OperationalError | InterfaceError):
        return True
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        return "locked" in message or "busy" in message
    return False


@dataclass(frozen=True)
class Target:
    """One generation of one read model that a one-pass feed writes to;
    `tracked` generations get their position written with each batch."""

    name: str
    generation: int
    tracked: bool = True
    #: The read model to feed, when not the service's own (a what-if replay
    #: feeds one configured with a candidate policy).
    model: ReadModel | None = None


class RecentEvents:
    """The stretch of the store that catch-ups read last, each event decoded
    once. The live projector catches every view up in turn, each from about
    the same position: the first view reads and decodes the new events, the
    others take them from here (one read and one decoding per event instead of
    one per view).

    It holds every committed event from `first` up to the last it holds, never
    less: what one read returns is all there is up to its last event
    (positions are committed in order: the events table's lock), and a read
    is added only where it starts within that range or right after it. A read
    served from here is so the start of what the store would answer (up to the
    last event held; the next read goes to the store). Decoding does not
    depend on anything but the stored event (personal data stays sealed), so
    the decoded events are the same for every view, as in a one-pass `feed`."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._first = 0
        self._ids: list[int] = []
        self._events: list[Read] = []

    def get(self, start: int, limit: int, stop: int | None) -> list[Read] | None:
        """The events from position `start` (at most `limit`, none after
        `stop`) if held here, else None."""
        with self._lock:
            if not self._ids or not self._first <= start <= self._ids[-1]:
                return None
            i = bisect_left(self._ids, start)
            found = self._events[i : i + limit]
        if stop is not None:
            found = [e for e in found if e[0].id <= stop]
        return found or None

    def put(self, start: int, events: Sequence[Read]) -> None:
        """What a read of the store from position `start` returned."""
        if not events:
            return
        with self._lock:
            if self._ids and self._first <= start <= self._ids[-1] + 1:
                i = bisect_left(self._ids, start)
                del self._ids[i:], self._events[i:]
            else:
                self._first = start
                self._ids.clear()
                self._events.clear()
            self._ids.extend(e[0].id for e in events)
            self._events.extend(events)
            extra = len(self._ids) - self.keep
            if extra > 0:
                del self._ids[:extra], self._events[:extra]
                self._first = self._ids[0]


class Batches:
    """Applies batches of events to generations of read models."""

    def __init__(
        self,
        ledger: FieldLedger,
        db: Database,
        generations: Generations,
        models: Mapping[str, ReadModel],
        batch_size: int = BATCH_SIZE,
        feed_batch_size: int | None = None,
    ) -> None:
        if batch_size < 1 or (feed_batch_size is not None and feed_batch_size < 1):
            raise ValueError("the projection batch size must be at least 1")
        self.ledger = ledger
        self.db = db
        self.generations = generations
        self.models = models
        self.batch_size = batch_size
        #: Events per batch of a one-pass feed (`feed`: rebuilds, scratch builds).
        self.feed_batch_size = feed_batch_size or batch_size
        self.tracking = tracking_recorder(db)
        self.locks = {name: threading.Lock() for name in models}
        #: The live catch-ups' last reads, shared by the views (`RecentEvents`).
        self.recent = RecentEvents(keep=4 * batch_size)

    def position(self, name: str, generation: int) -> int:
        return self.tracking.max_tracking_id(tracking_key(name, generation)) or 0

    def claim(self, tx: Tx, name: str, generation: int) -> int:
        """Lock the generation's tracking row for this transaction; its position."""
        table = tx.table(TRACKING_TABLES[tx.dialect])
        value = tx.scalar(
            f"INSERT INTO {table} (application_name, notification_id) VALUES (?, 0) "
            "ON CONFLICT (application_name) DO UPDATE "
            f"SET notification_id = {table}.notification_id RETURNING notification_id",
            (tracking_key(name, generation),),
        )
        return int(value or 0)

    def _track(self, tx: Tx, name: str, generation: int, position: int) -> None:
        tracking = Tracking(tracking_key(name, generation), position)
        self.tracking._insert_tracking(tx.cursor, tracking)  # type: ignore[attr-defined]

    # -- one read model: catch-up ------------------------------------------------

    def catch_up(
        self,
        name: str,
        generation: int,
        *,
        until: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Project events after the generation's position, up to `until` (default:
        the head of the store). Returns the new position.

        Each batch is one transaction that first claims the generation's
        tracking row: projectors of one generation (threads, processes) take
        turns, and a batch that does not start where the tracking stands is
        rolled back, so no event is ever applied twice. A generation retired by
        a rebuild (in any process) stops being projected."""
        with self.locks[name]:
            error = self.generations.recorded_error(name, generation)
            if error is not None:
                raise ProjectionFailed(name, error[1], error[0])
            position = self.position(name, generation)
            while until is None or position < until:
                read = self._recent(position + 1, until)
                if not read:
                    break
                notifications = [n for n, _, _ in read]
                try:
                    position = self._apply_batch(
                        name, generation, position, notifications,
                        events=[(n.id, event) for n, event, _ in read],
                        ids={n.id: text for n, _, text in read if text is not None},
                    )  # fmt: skip
                except _Moved as moved:
                    position = moved.position  # another projector got there first
                    continue
                except IntegrityError:  # pragma: no cover - the claim prevents it
                    position = self.position(name, generation)
                    continue
                except _Gone:
                    break
                if progress is not None:
                    progress(len(notifications), position)
        return position

    # -- every live view at once: the projector's round ----------------------------

    def live_round(self, until: int) -> set[str]:
        """Bring the live views up to `until` together: each batch of events is
        applied to all of them in one transaction, which claims and moves all
        their tracking rows (`_start_all`, `_track_all`), as a one-pass feed
        does. Returns the views so brought up to `until`; the caller catches up
        the others one by one (`catch_up`).

        Which views stand where is one read of their generations and one of
        their positions, for the round (one view at a time, each took three
        reads, a transaction of its own and a commit per round). Left to
        `catch_up`: a view stopped at an error (it raises it again), one that
        stands elsewhere than most (another projector or a `wait_for` moved it
        meanwhile), and every view of a batch that fails in any way: the
        batch is rolled back whole and each view then goes on by itself, where
        a fault of one read model is pinned to its event and recorded while
        the others advance, exactly as before. Nothing is applied twice: a
        batch claims every view's tracking row and is refused unless each
        stands where the batch starts."""
        with ExitStack() as held:
            for name in self.models:  # always in this order: no deadlock
                held.enter_context(self.locks[name])
            try:
                standing = self._live_positions()
            except Exception:  # a database hiccup: each view goes on by itself
                return set()
            if not standing:
                return set()
            at = Counter(position for _, position in standing.values())
            position = min(at, key=lambda p: (-at[p], p))  # where most views stand
            targets = [Target(n, g) for n, (g, p) in standing.items() if p == position]
            while position < until:
                try:
                    read = self._recent(position + 1, until)
                    if not read:
                        break
                    position = self._apply_round(targets, position, read)
                except Exception:
                    return set()
            return {t.name for t in targets}
        return set()  # pragma: no cover - mypy: ExitStack may swallow

    def _live_positions(self) -> dict[str, tuple[int, int]]:
        """The live generation and tracked position of each view not stopped at
        an error, in one read (the generations joined to their tracking rows
        by `tracking_key`, `name#g<generation>`: two reads, two round trips,
        before)."""
        with self.db.read() as tx:
            rows = tx.query(
                f"SELECT g.name, g.generation, g.error, t.notification_id "
                f"FROM {tx.table(GENERATIONS)} g "
                f"LEFT JOIN {tx.table(TRACKING_TABLES[tx.dialect])} t "
                "ON t.application_name = g.name || '#g' || g.generation "
                "WHERE g.state = 'live'"
            )
        return {
            str(r["name"]): (int(r["generation"]), int(r["notification_id"] or 0))
            for r in rows
            if r["name"] in self.models and r["error"] is None
        }

    def _live_batch(
        self, tx: Tx, target: Target, events: Sequence[tuple[int, Any]], ids: Mapping[int, str]
    ) -> Batch:
        tables = self.generations.tables(target.name, target.generation)
        return Batch(tx, tables, events, bulk=True, ids=ids)

    def _apply_round(self, targets: Sequence[Target], start: int, read: Sequence[Read]) -> int:
        """One batch applied to every target in one transaction, their
        tracking rows claimed at `start` and moved to its last event; returns
        that position. The handlers' statements are pipelined (PostgreSQL):
        every view's reads at the start of the batch first, then the events,
        then every view's writes."""
        last = read[-1][0].id
        events = [(n.id, event) for n, event, _ in read]
        ids = {n.id: text for n, _, text in read if text is not None}
        steps: list[tuple[_Step, Batch]] = []
        try:
            with self.db.transaction() as tx:
                with tx.pipelined():
                    started = self._start_all(tx, targets, start)
                    steps = [(self._step(t), self._live_batch(tx, t, events, ids)) for t in targets]
                    _apply(steps, started)
                    self._track_all(tx, targets, start, last)
                # After the pipeline (psycopg pipelines no COPY), in the same
                # transaction: the rows new to their tables (`Batch.append`),
                # one COPY per table for all the round's events, not an
                # INSERT per row.
                for _step, batch in steps:
                    for table, columns, rows in batch.copies:
                        copy_rows(tx, table, columns, rows)
        finally:
            for _step, batch in steps:
                batch.release()
        return last

    def _recent(self, start: int, until: int | None) -> list[Read]:
        """The next batch of a live catch-up from position `start`, decoded:
        from `recent` when another view read it, else from the store."""
        found = self.recent.get(start, self.batch_size, until)
        if found is not None:
            return found
        notifications = self.ledger.recorder.select_notifications(
            start=start, limit=self.batch_size, stop=until
        )
        decoded = [(n.id, self._decode("?", n)) for n in notifications]
        ids = event_ids(decoded)
        read = [(n, e, ids.get(p)) for n, (p, e) in zip(notifications, decoded, strict=True)]
        self.recent.put(start, read)
        return read

    def _apply_batch(
        self,
        name: str,
        generation: int,
        start: int,
        notifications: Sequence[Notification],
        *,
        pipelined: bool = True,
        events: Sequence[tuple[int, Any]] | None = None,
        ids: Mapping[int, str] | None = None,
    ) -> int:
        """One tracked batch in one transaction; returns the new position.

        The handlers' statements are pipelined (PostgreSQL), so a batch does not
        wait for each write's answer. A statement that fails in a pipeline
        reports its error later than its event; so the batch is then tried again
        unpipelined, where a failure is pinned to its event."""
        last = notifications[-1].id
        if events is None:
            events = [(n.id, self._decode(name, n)) for n in notifications]
            ids = None
        if pipelined and self.db.dialect == "postgres":
            try:
                with self.db.transaction() as tx:
                    self._start_tracked(tx, name, generation, start)
                    with tx.pipelined():
                        self.apply(tx, name, generation, events, ids=ids)
                    self._track(tx, name, generation, last)
                return last
            except (_Moved, _Gone):
                raise
            except Exception as e:
                if is_transient(e):
                    raise
                # Fall through: apply it again, one statement at a time.
        try:
            with self.db.transaction() as tx:
                self._start_tracked(tx, name, generation, start)
                self.apply(tx, name, generation, events, ids=ids)
                self._track(tx, name, generation, last)
        except ProjectionFailed as failed:
            # Stop *at* the failing event: the events before it are applied.
            good = [n for n in notifications if n.id < failed.position]
            if good:
                self._apply_batch(name, generation, start, good, pipelined=False)
            self.generations.record_error(name, generation, failed.error, failed.position)
            raise
        return last

    def _start_tracked(self, tx: Tx, name: str, generation: int, start: int) -> None:
        claimed = self.claim(tx, name, generation)
        if claimed != start:
            raise _Moved(claimed)
        if self.generations.state_in(tx, name, generation) not in ("live", "building"):
            raise _Gone

    def _decode(self, name: str, n: Notification) -> Any | ProjectionFailed:
        """The stored event as a domain event, or the failure to decode it (which
        belongs to the read model's projection at that event)."""
        try:
            return self.ledger.mapper.to_domain_event(n)
        except Exception as e:
            return ProjectionFailed(name, n.id, f"{type(e).__name__}: {e}")

    def apply(
        self,
        tx: Tx,
        name: str,
        generation: int,
        events: Sequence[tuple[int, Any]],
        model: ReadModel | None = None,
        *,
        ids: Mapping[int, str] | None = None,
    ) -> None:
        """Feed one batch of decoded events to one generation of a read model, in
        the caller's transaction. A fault of the read model is a ProjectionFailed
        at its event; a database hiccup propagates as it is (retried, never
        recorded)."""
        step = self._step(Target(name, 0, model=model))
        batch = Batch(tx, self.generations.tables(name, generation), events, ids=ids)
        try:
            step.begin(batch)
            step.handle(batch)
            step.end(batch)
        finally:
            batch.release()

    # -- many read models at once: one pass ---------------------------------------

    def _start_all(self, tx: Tx, targets: Sequence[Target], start: int) -> Callable[[], None]:
        """Claim (lock) the tracking rows of all the generations fed, in one
        statement, and read the generations' states after it. Returns the
        check, to be called before any event is applied: each must stand at
        `start` (else `_Moved`), and each generation still be building (or
        live; else `_Gone`). In a pipeline both statements are only sent
        (`Pending`): the views' prefetches go out after them and all come
        back in one round trip at the check (or the first row a view reads).
        PostgreSQL runs them in the order sent, so the states are still read
        after the claim, as before."""
        if not targets:
            return _nothing
        table = tx.table(TRACKING_TABLES[tx.dialect])
        keys = [tracking_key(t.name, t.generation) for t in targets]
        claimed = Pending(
            tx,
            f"INSERT INTO {table} (application_name, notification_id) VALUES "
            + ", ".join("(?, 0)" for _ in keys)
            + " ON CONFLICT (application_name) DO UPDATE "
            f"SET notification_id = {table}.notification_id "
            "RETURNING application_name, notification_id",
            keys,
        )
        states = Pending(
            tx,
            f"SELECT name, generation, state FROM {tx.table(GENERATIONS)} "
            f"WHERE name IN ({', '.join('?' for _ in targets)})",
            [t.name for t in targets],
        )

        def check() -> None:
            for row in claimed.rows():
                if int(row["notification_id"]) != start:
                    raise _Moved(int(row["notification_id"]))
            found = {(r["name"], int(r["generation"])): r["state"] for r in states.rows()}
            if any(found.get((t.name, t.generation)) not in ("live", "building") for t in targets):
                raise _Gone

        return check

    def _track_all(self, tx: Tx, targets: Sequence[Target], start: int, last: int) -> None:
        """Move the claimed tracking rows from `start` to `last`, in one statement."""
        if not targets:
            return
        table = tx.table(TRACKING_TABLES[tx.dialect])
        keys = [tracking_key(t.name, t.generation) for t in targets]
        tx.execute(
            f"UPDATE {table} SET notification_id = ? WHERE notification_id = ? "
            f"AND application_name IN ({', '.join('?' for _ in keys)})",
            (last, start, *keys),
        )

    def _step(self, target: Target) -> _Step:
        model = target.model or self.models[target.name]
        return _Step(target.name, model, _wanted(model))

    def _batch(
        self,
        tx: Tx,
        target: Target,
        events: Sequence[tuple[int, Any]],
        ids: Mapping[int, str],
    ) -> Batch:
        tables = self.generations.tables(target.name, target.generation)
        return Batch(tx, tables, events, bulk=True, ids=ids)

    def feed(
        self,
        targets: Sequence[Target],
        *,
        until: int | None = None,
        progress: Progress | None = None,
        topics: Sequence[str] = (),
    ) -> dict[str, ProjectionFailed]:
        """Build fresh generations from zero (or from where they stand) in one pass
        over the store: each event decoded once and fed to every target, one
        transaction per batch for all of them.

        `topics`: the targets' handlers act on events of these topics only, so
        only those are read and decoded (a rebuild process of views that need
        few types of event, `catalog.EVENT_TYPES`); the tracked position still
        moves over the events skipped, to the end of each stretch read (up to
        `until`, by default the head as the feed starts).

        When a batch fails for some read model, the batch is rolled back and
        applied again to each tracked target alone (`catch_up`), which pins the
        failure to its event and records it; that target then drops out and the
        others go on. Returns the failures by read model."""
        active = list(targets)
        tracked = [t for t in active if t.tracked]
        positions = {t.name: self.position(t.name, t.generation) for t in tracked}
        if len(set(positions.values())) > 1:  # pragma: no cover - started together
            raise ValueError("a one-pass feed starts its targets at one position")
        position = next(iter(positions.values()), 0)
        if topics and until is None:
            until = self.ledger.recorder.max_notification_id() or 0
        # The next batch is read and decoded by a thread of its own while this
        # one is applied: its queries and decoding run while this thread waits
        # for PostgreSQL (one batch ahead, so memory stays one batch more).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as reader:
            return self._feed(reader, active, tracked, position, until, progress, topics)

    def _read(
        self, position: int, until: int | None, topics: Sequence[str] = ()
    ) -> tuple[int, Sequence[Notification], list[tuple[int, Any]], dict[int, str]]:
        """The batch after `position`, read and decoded, the position it
        reaches, and its events' ids as text (once for every view). The position
        is its last event's, or with `topics` (the events of other topics
        skipped), `until` when the read found fewer than a batch's worth up to
        there."""
        notifications = self.ledger.recorder.select_notifications(
            start=position + 1, limit=self.feed_batch_size, stop=until, topics=list(topics)
        )
        if topics and until is not None and len(notifications) < self.feed_batch_size:
            last = until
        else:
            last = notifications[-1].id if notifications else position
        events = [(n.id, self._decode("?", n)) for n in notifications]
        return last, notifications, events, event_ids(events)

    def _feed(
        self,
        reader: ThreadPoolExecutor,
        active: list[Target],
        tracked: list[Target],
        position: int,
        until: int | None,
        progress: Progress | None,
        topics: Sequence[str] = (),
    ) -> dict[str, ProjectionFailed]:
        failed: dict[str, ProjectionFailed] = {}
        ahead = reader.submit(self._read, position, until, topics)
        while active and (until is None or position < until):
            last, notifications, events, ids = ahead.result()
            if last <= position:
                break
            if until is None or last < until:
                ahead = reader.submit(self._read, last, until, topics)
            steps: list[tuple[_Step, Batch]] = []
            try:
                with self.db.transaction() as tx:
                    with tx.pipelined():
                        if tx.dialect == "postgres":
                            # A fresh build need not wait for each commit's
                            # flush: after a crash its unlogged tables are empty
                            # anyway and the rebuild starts again from zero.
                            tx.execute("SET LOCAL synchronous_commit = off")
                        started = self._start_all(tx, tracked, position)
                        # Every view's reads first (a read waits for every
                        # statement sent before it), then every view's writes.
                        # (A stretch with no event of the topics read only
                        # moves the tracked positions.)
                        steps = [
                            (self._step(t), self._batch(tx, t, events, ids))
                            for t in active
                            if events
                        ]
                        _apply(steps, started)
                        self._track_all(tx, tracked, position, last)
                    # After the pipeline (psycopg pipelines no COPY): the rows
                    # that only grow, bulk-loaded in the same transaction.
                    for _step, batch in steps:
                        for table, columns, rows in batch.copies:
                            copy_rows(tx, table, columns, rows)
                        batch.release()  # each batch's rows freed as soon as sent
            except (_Moved, _Gone):
                raise RebuildSuperseded(
                    "another rebuild replaced this one's fresh tables (or fed them meanwhile); "
                    "the live views are unchanged by this one"
                ) from None
            except Exception as e:
                if is_transient(e) or not all(t.tracked for t in active):
                    raise
                for target in list(active):
                    try:
                        self.catch_up(target.name, target.generation, until=last)
                    except ProjectionFailed as failure:
                        failed[target.name] = failure
                        active.remove(target)
                        tracked.remove(target)
            finally:
                for _step, batch in steps:
                    batch.release()
            position = last
            if progress is not None:
                progress(len(notifications), position)
        return failed


@dataclass(frozen=True)
class _Step:
    """One read model's part of a batch: its hooks, each fault pinned to its event.
    `wanted`: the types of event its `handle` acts on (`catalog.EVENT_TYPES`),
    when listed: it is not called for any other."""

    name: str
    model: ReadModel
    wanted: EventTypes | None = None

    def begin(self, batch: Batch) -> Batch:
        try:
            self.model.begin_batch(batch)
        except Exception as e:
            if is_transient(e):
                raise
            first = batch.events[0][0]
            error = f"{type(e).__name__} starting the batch from {first}: {e}"
            raise ProjectionFailed(self.name, first, error) from e
        return batch

    def handle(self, batch: Batch) -> None:
        handle, wanted = self.model.handle, self.wanted
        events = batch.events
        if wanted is not None:
            # The events it acts on, picked by their types (a few dozen in a
            # batch, each tested once) instead of a test per event; unless
            # the batch holds an event that could not be decoded (it stops
            # the view there, whatever its type would have been).
            kinds = {type(event) for _, event in events}
            if not any(issubclass(kind, ProjectionFailed) for kind in kinds):
                taken = {kind for kind in kinds if wanted.of_type(kind)}
                events = [pair for pair in events if type(pair[1]) in taken]
                wanted = None
        for position, event in events:
            if isinstance(event, ProjectionFailed):
                raise ProjectionFailed(self.name, event.position, event.error)
            if wanted is not None and not wanted(event):
                continue  # it would pass over it (tests/unit/test_rebuild_topics.py)
            try:
                handle(batch, event, position)
            except Exception as e:
                if is_transient(e):
                    raise
                raise ProjectionFailed(self.name, position, f"{type(e).__name__}: {e}") from e

    def end(self, batch: Batch) -> None:
        try:
            self.model.end_batch(batch)
        except Exception as e:
            if is_transient(e):
                raise
            events = batch.events
            error = f"{type(e).__name__} ending the batch up to {events[-1][0]}: {e}"
            raise ProjectionFailed(self.name, events[0][0], error) from e


#: Per class of read model, the types of event its handler acts on (None:
#: every event), from the catalogue.
_WANTED: dict[type[ReadModel], EventTypes | None] = {}


def _wanted(model: ReadModel) -> EventTypes | None:
    """The types of event `model`'s `handle` acts on, when the catalogue lists
    them for its class (`catalog.EVENT_TYPES`); else None."""
    kind = type(model)
    if kind not in _WANTED:
        # Imported here: the catalogue imports the read models, which import this.
        from fieldledger.projections.catalog import EVENT_TYPES, READ_MODELS

        types = EVENT_TYPES.get(model.name)
        listed = types is not None and {m.name: m for m in READ_MODELS}.get(model.name) is kind
        _WANTED[kind] = EventTypes(*types) if listed and types is not None else None
    return _WANTED[kind]


def _nothing() -> None:
    """A check with nothing to check."""


def _apply(steps: Sequence[tuple[_Step, Batch]], started: Callable[[], None] = _nothing) -> None:
    """Each view's step over its batch: every view begins, then every view
    handles its events, then every view ends (the live round and a rebuild's
    feed alike: one view's prefetch statements go out before any view writes).
    `started`: the batch's claim checked (`Batches._start_all`), once every
    view's prefetches are sent and before any event is applied."""
    for step, batch in steps:
        step.begin(batch)
    started()
    for step, batch in steps:
        step.handle(batch)
    for step, batch in steps:
        step.end(batch)
