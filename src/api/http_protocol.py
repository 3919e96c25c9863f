"""uvicorn's httptools protocol, writing a response's head and body in one write.

uvicorn writes a response's status line and headers to the socket when the
app sends `http.response.start`, and its body when the app sends
`http.response.body`: two writes, two TCP segments, for every answer. On
this machine each write to a local socket cost some 20 us of a worker's CPU
(the kernel delivers the segment and wakes the reader within the call),
about 2% of a command's (docs/benchmarks.md, issue 11, branch i11l).

`OneWriteProtocol` is uvicorn's `HttpToolsProtocol` with one difference: a
request's first write (its head, or a `100 Continue`) is held until its
next write, which then carries both, or until the event loop has run what
it was running, whichever is first. A body sent in the same step as its
head (every `Response` of Starlette, every command) goes out with it; a
streamed response's head goes out as the loop finishes its step, as soon
as it would have been read anyway. The bytes, their order and everything
else uvicorn does are unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Where a request's writes are: the first not yet written, held, written.
_FIRST, _HELD, _PASSING = 0, 1, 2


class HeldHead:
    """A request's view of the connection's transport: its first write is
    held until its second, or until the loop's current step is done."""

    __slots__ = ("held", "loop", "state", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self.held = b""
        self.state = _FIRST

    def write(self, data: bytes) -> None:
        state = self.state
        if state == _PASSING:
            self.transport.write(data)
        elif state == _HELD:
            self.state = _PASSING
            held, self.held = self.held, b""
            self.transport.write(held + data)
        else:
            self.state = _HELD
            self.held = bytes(data)
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is held (the loop calls this once the step is done):
        unless the connection is going, as uvicorn writes nothing then."""
        if self.state == _HELD:
            self.state = _PASSING
            held, self.held = self.held, b""
            if not self.transport.is_closing():
                self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # Anything else a request might ask of its transport, as the transport.
        return getattr(self.transport, name)


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, each request writing through a `HeldHead`."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        # A new request's cycle (none for an upgrade); its task has not run yet.
        if cycle is not None and cycle is not before:
            cycle.transport = HeldHead(self.transport, self.loop)  # type: ignore[assignment]
