"""Group commit: the saves of concurrent commands share one transaction.

The library's PostgreSQL recorder serialises writers with an EXCLUSIVE lock on
the events table, held until commit, so concurrent commands queue for each
other's commit (and its fsync) one at a time. Here the first command to save
becomes the leader and writes its events; commands arriving meanwhile wait, and
the next leader writes all of them in one transaction: one lock, one commit.
If that transaction is refused (a version conflict or a reused idempotency key
in one of them), each save is written alone, so every command still gets its
own success or failure, and its idempotency receipt goes with its own events.
Without concurrency there is no waiting and no hand-off: the leader is the
caller's own thread, and nothing is allocated to wait on.

A waiting save sleeps on a lock of its own (a bare `_thread` lock, held until
someone wakes it; not a `threading.Condition`, which takes a new lock, a
deque and two more acquisitions per wait): a commit releases only the locks
of the saves it finished, and that of the save first in the queue, handed the
lead with the batch it is to write (so the lead never lapses while saves
wait, and no one takes the committer's lock again to claim it). Each wake-up
is one release, done after the batch's outcomes are set and outside the
committer's lock; the commit itself takes that lock once.
"""

from __future__ import annotations

import threading
from _thread import allocate_lock
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError

#: Writes events (with receipts) in one transaction; returns each event's position.
Write = Callable[[Sequence[Any], list[Any]], list[int | None]]


@dataclass(eq=False, slots=True)
class PendingSave:
    events: Sequence[Any]
    receipt: Any | None
    #: Held while this save waits; released when it is done, or when it is
    #: first in the queue and handed the lead (None for a save that never waited).
    wakeup: Any = None
    #: The saves to write, when this save was handed the lead.
    batch: list[PendingSave] | None = None
    done: bool = False
    position: int | None = None
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self, write: Write, max_batch: int = 256) -> None:
        self.write = write
        self.max_batch = max_batch
        self._lock = threading.Lock()
        #: Saves waiting for a leader; never any while no one leads.
        self._waiting: list[PendingSave] = []
        self._leading = False

    def save(self, events: Sequence[Any], receipt: Any | None) -> int | None:
        mine = PendingSave(events, receipt)
        with self._lock:
            if self._leading:
                wakeup = mine.wakeup = allocate_lock()
                wakeup.acquire()
                self._waiting.append(mine)
            else:
                self._leading = True
                wakeup = None
        if wakeup is not None:
            wakeup.acquire()  # until this save is done, or handed the lead
        if not mine.done:
            self._lead(mine, mine.batch or [mine])
        if mine.error is not None:
            raise mine.error
        return mine.position

    def _lead(self, mine: PendingSave, batch: list[PendingSave]) -> None:
        """Write `batch` (`mine` among them), then hand the lead on and wake
        the batch's other saves."""
        try:
            self._commit(batch)
        finally:
            with self._lock:
                waiting = self._waiting
                if waiting:
                    # The next leader: the oldest save still waiting (the
                    # saves just written are no longer in the queue).
                    heir: PendingSave | None = waiting[0]
                    heir_batch = waiting[: self.max_batch]
                    del waiting[: self.max_batch]
                    heir_batch[0].batch = heir_batch
                else:
                    heir = None
                    self._leading = False
            for pending in batch:
                if not pending.done:  # only if the write itself could not be tried
                    pending.error = RuntimeError("the group commit failed")
                    pending.done = True
            # The finished saves first (their answers wait), then the heir.
            for pending in batch:
                if pending is not mine:
                    pending.wakeup.release()
            if heir is not None:
                heir.wakeup.release()

    def _commit(self, batch: list[PendingSave]) -> None:
        try:
            positions = self.write(
                [e for p in batch for e in p.events],
                [p.receipt for p in batch if p.receipt is not None],
            )
        except IntegrityError as e:
            if len(batch) == 1:
                self._finish(batch[0], error=e)
                return
            for pending in batch:
                self._commit([pending])
            return
        except BaseException as e:
            for pending in batch:
                self._finish(pending, error=e)
            return
        offset = 0
        for pending in batch:
            offset += len(pending.events)
            self._finish(pending, position=positions[offset - 1] if pending.events else None)

    @staticmethod
    def _finish(
        pending: PendingSave,
        *,
        position: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Its outcome (read by its thread once woken: the wake-up orders it)."""
        pending.position = position
        pending.error = error
        pending.done = True
