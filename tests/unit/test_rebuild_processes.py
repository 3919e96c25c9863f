"""A rebuild process of `projections rebuild --jobs` ends with the command
that started it, even when that is killed (`cli.end_with_parent`): a killed
rebuild must not go on to swap in its views."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# A parent that forks one child as the rebuild command does, prints the
# child's pid once the child is ready, and waits to be killed. argv[1]:
# "guarded" calls end_with_parent in the child, as `_rebuild_group` does;
# anything else does not (the control).
PARENT = r"""
import multiprocessing, os, sys, time
from fieldledger.api.cli import end_with_parent

def child(parent, guarded, ready):
    if guarded:
        end_with_parent(parent)
    ready.set()
    time.sleep(120)

if __name__ == "__main__":
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    process = context.Process(
        target=child, args=(os.getpid(), sys.argv[1] == "guarded", ready)
    )
    process.start()
    ready.wait(60)  # the child is past end_with_parent
    print(process.pid, flush=True)
    time.sleep(120)
"""


def running(pid: int) -> bool:
    """Whether the process exists and has not ended (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextmanager
def killed_parent(mode: str) -> Iterator[int]:
    """Start a parent (`PARENT`, `mode`), kill it once its child is ready and
    yield the child's pid; the child is killed afterwards if still running."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        parent.kill()
        parent.wait()
        yield child
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)


# A Linux signal: elsewhere these tests skip, except under CI=true, where
# they fail (the suite's CI runs on Linux).
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux")
    and os.environ.get("CI", "").lower() not in ("1", "true", "yes"),
    reason="PR_SET_PDEATHSIG is Linux's",
)


def test_a_rebuild_process_ends_when_its_parent_is_killed() -> None:
    with killed_parent("guarded") as child:
        deadline = time.monotonic() + 30
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not running(child)


def test_without_it_a_forked_process_outlives_its_killed_parent() -> None:
    """The control: what the test above would see without end_with_parent."""
    with killed_parent("unguarded") as child:
        assert running(child)
