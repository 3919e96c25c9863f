"""The threads commands run in: one hop from the event loop and back, lean.

A command runs in a worker thread (it queries, and waits on the group commit).
anyio's `to_thread.run_sync` is general (cancel scopes, a capacity limiter, a
queue and a thread of its own per worker): some 35 us of CPU per hop, measured,
where this pool's plain hand-off (one C-level queue shared by the threads, the
answer posted back with `call_soon_threadsafe`) takes 4 to 16 (docs/benchmarks.md).

What stays the same: the function runs to its end even if the request is given
up (as anyio's `run_sync` without `abandon_on_cancel`), its exception is raised
in the awaiting task, and at most `size` threads run (anyio's default too);
a thread is started only when none is idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: As many threads as anyio's default capacity limiter lets run.
DEFAULT_SIZE = 40

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class CommandThreads:
    """A pool of daemon threads that run functions for `await`ing tasks."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in one of the threads (in a copy of this context)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call = contextvars.copy_context().run
        # Each job takes an idle thread, or starts one: a job never waits for
        # a busy thread unless `size` are running.
        with self._lock:
            start = self._idle == 0 and self._threads < self.size
            if start:
                self._threads += 1
            elif self._idle:
                self._idle -= 1
        self._jobs.put((loop, future, lambda: call(function, *args)))
        if start:
            threading.Thread(target=self._work, name="command", daemon=True).start()
        return await future

    def _work(self) -> None:
        jobs = self._jobs
        lock = self._lock
        while True:
            loop, future, job = jobs.get()
            result: Any = None
            error: BaseException | None = None
            try:
                result = job()
            except BaseException as raised:  # raised in the awaiting task
                error = raised
            # Idle before the answer is posted: the task it wakes may give the
            # next job at once, which then takes this thread, not a new one.
            with lock:
                self._idle += 1
            with contextlib.suppress(RuntimeError):  # a closed loop awaits nothing
                loop.call_soon_threadsafe(_settle, future, result, error)
            # Nothing of this job is kept alive while the thread waits for the next.
            loop = future = job = result = error = None  # type: ignore[assignment]
