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
caller's own thread. Each waiting save sleeps on its own condition: a commit
wakes only the saves it finished, and the save now first in the queue (the next
leader), never every waiting thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError

#: Writes events (with receipts) in one transaction; returns each event's position.
Write = Callable[[Sequence[Any], list[Any]], list[int | None]]


@dataclass(eq=False)
class PendingSave:
    events: Sequence[Any]
    receipt: Any | None
    #: Bound to the committer's lock; notified when this save is done, or when
    #: it is first in the queue and no one leads.
    wakeup: threading.Condition
    done: bool = False
    position: int | None = None
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self, write: Write, max_batch: int = 256) -> None:
        self.write = write
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[PendingSave] = []
        self._leading = False

    def save(self, events: Sequence[Any], receipt: Any | None) -> int | None:
        mine = PendingSave(events, receipt, threading.Condition(self._lock))
        with self._lock:
            self._waiting.append(mine)
            while not mine.done and self._leading:
                mine.wakeup.wait()
            if not mine.done:
                self._leading = True
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
        if not mine.done:
            try:
                self._commit(batch)
            finally:
                with self._lock:
                    self._leading = False
                    # The next leader: the oldest save still waiting (the
                    # saves just written are no longer in the queue).
                    if self._waiting:
                        self._waiting[0].wakeup.notify()
        if mine.error is not None:
            raise mine.error
        return mine.position

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

    def _finish(
        self,
        pending: PendingSave,
        *,
        position: int | None = None,
        error: BaseException | None = None,
    ) -> None:
        with self._lock:
            pending.position = position
            pending.error = error
            pending.done = True
            pending.wakeup.notify()
