"""The command threads: one hop to a thread and back, as anyio's `run_sync` did."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from fieldledger.api.command_threads import CommandThreads

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_a_function_runs_in_another_thread_and_answers_the_awaiting_task() -> None:
    threads = CommandThreads()

    async def main() -> tuple[int, str]:
        WHO.set("caller")
        name = await threads.run(lambda: threading.current_thread().name)
        assert name != threading.current_thread().name
        return await threads.run(lambda a, b: a + b, 2, 3), await threads.run(WHO.get)

    assert asyncio.run(main()) == (5, "caller")  # the caller's context goes along


def test_an_exception_is_raised_in_the_awaiting_task() -> None:
    threads = CommandThreads()

    def fail() -> None:
        raise LookupError("no such record")

    async def main() -> None:
        with pytest.raises(LookupError, match="no such record"):
            await threads.run(fail)
        assert await threads.run(lambda: 1) == 1  # the thread goes on serving

    asyncio.run(main())


def test_an_idle_thread_is_reused_and_at_most_size_run() -> None:
    threads = CommandThreads(size=3)
    running = threading.Semaphore(0)
    release = threading.Event()

    def hold() -> str:
        running.release()
        release.wait(5)
        return threading.current_thread().name

    async def main() -> None:
        for _ in range(5):  # one after the other: one thread does them all
            await threads.run(lambda: None)
        assert threads._threads == 1
        tasks = [asyncio.ensure_future(threads.run(hold)) for _ in range(5)]
        await asyncio.sleep(0)
        for _ in range(3):
            assert await asyncio.to_thread(running.acquire, True, 5)
        assert threads._threads == 3  # the other two wait for a thread
        release.set()
        assert len(await asyncio.gather(*tasks)) == 5

    asyncio.run(main())
