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
caller's own thread.

An `async` caller (an HTTP command on the event loop) must not block its loop:
`save_async` queues its save like any other and awaits a future; the committer's
writer thread (started on first use) leads for it, and resolves the future on
the caller's loop once the transaction is committed (or refused). A batch may
mix both kinds of caller: whoever leads writes them all.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    done: bool = False
    position: int | None = None
    error: BaseException | None = None
    #: An async caller's future, resolved on its loop when done.
    future: asyncio.Future[int | None] | None = None


def _resolve(future: asyncio.Future[int | None], position: int | None,
             error: BaseException | None) -> None:  # fmt: skip
    if future.cancelled():
        return  # the caller is gone (its client disconnected): the outcome stands
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(position)


class GroupCommitter:
    def __init__(self, write: Write, max_batch: int = 256) -> None:
        self.write = write
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[PendingSave] = []
        self._leading = False
        self._writer: threading.Thread | None = None
        self._writer_idle = False
        self._closed = False

    def save(self, events: Sequence[Any], receipt: Any | None) -> int | None:
        mine = PendingSave(events, receipt)
        with self._cond:
            self._waiting.append(mine)
            while not mine.done and self._leading:
                self._cond.wait()
            if not mine.done:
                self._leading = True
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
        if not mine.done:
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.position

    async def save_async(self, events: Sequence[Any], receipt: Any | None) -> int | None:
        """`save` for a caller on an event loop: the writer thread writes."""
        loop = asyncio.get_running_loop()
        mine = PendingSave(events, receipt, future=loop.create_future())
        with self._cond:
            if self._closed:
                raise RuntimeError("the group committer is closed")
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_forever, name="group-commit", daemon=True
                )
                self._writer.start()
            self._waiting.append(mine)
            if self._writer_idle:
                # Wake it only when it sleeps: a writer at work looks again when
                # done (a wake-up per save cost the event loop a thread switch).
                self._writer_idle = False
                self._cond.notify_all()
        assert mine.future is not None
        # Shielded: a client that disconnects does not undo a save under way;
        # its outcome is the store's either way.
        return await asyncio.shield(mine.future)

    def _write_forever(self) -> None:
        """The writer thread: lead whenever saves wait and nobody leads."""
        while True:
            with self._cond:
                while self._leading or (not self._waiting and not self._closed):
                    self._writer_idle = True
                    self._cond.wait()
                self._writer_idle = False
                if not self._waiting:
                    return  # closed, and nothing left to write
                self._leading = True
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
            try:
                self._commit(batch)
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()

    def close(self) -> None:
        """Stop the writer thread once the saves queued are written."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()

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
        with self._cond:
            pending.position = position
            pending.error = error
            pending.done = True
        future = pending.future
        if future is not None:
            # RuntimeError: its loop is closed, nobody awaits the answer any more.
            with contextlib.suppress(RuntimeError):
                future.get_loop().call_soon_threadsafe(_resolve, future, position, error)
